package main

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine/enginetest"
)

func login(t *testing.T, addr, password string) int {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.PostForm("http://"+addr+"/admin/login", url.Values{"password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestAdminPassword(t *testing.T) {
	data := t.TempDir()
	// First start: no password yet, and serve says how to set one.
	s := startServer(t, data)
	if !strings.Contains(s.out.String(), "set a password first: flowd admin password") {
		t.Errorf("serve output: %s", s.out)
	}
	if got := login(t, s.addr, "whatever password"); got != http.StatusForbidden {
		t.Errorf("login without a password set: %d", got)
	}
	// While the server runs, the command goes through its admin API.
	var out, errb enginetest.LogBuffer
	code := run(t.Context(), []string{"admin", "password", "--data", data}, envOf(nil),
		strings.NewReader("a long enough password\n"), &out, &errb)
	if code != 0 {
		t.Fatalf("admin password (server running): %d %s", code, errb.String())
	}
	if got := login(t, s.addr, "a long enough password"); got != http.StatusSeeOther {
		t.Errorf("login: %d", got)
	}
	s.shutdown(t)

	// Without a server it opens the database; --password-file, too short.
	file := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(file, []byte("short\n"), 0o600)
	if code, _, stderr := flowdCmd(t, nil, "admin", "password", "--data", data, "--password-file", file); code != 1 || !strings.Contains(stderr, "at least 12") {
		t.Errorf("short password: %d %s", code, stderr)
	}
	os.WriteFile(file, []byte("another long password\n"), 0o600)
	if code, stdout, stderr := flowdCmd(t, nil, "admin", "password", "--data", data, "--password-file", file); code != 0 {
		t.Fatalf("admin password (offline): %d %s %s", code, stdout, stderr)
	}
	s = startServer(t, data)
	if strings.Contains(s.out.String(), "set a password first") {
		t.Errorf("serve still asks for a password: %s", s.out)
	}
	if got := login(t, s.addr, "another long password"); got != http.StatusSeeOther {
		t.Errorf("login with the new password: %d", got)
	}
	if code, _, _ := flowdCmd(t, nil, "admin", "password", "--data", data); code != 2 {
		t.Errorf("no password on stdin: want usage error, got %d", code)
	}
}
