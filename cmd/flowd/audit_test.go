package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowd/flowd/audit"
)

// TestAuditCLI: `flowd audit` reads the log from the data folder, and
// through the admin API when a server holds it; changes the CLI makes on
// the folder are the "cli" actor's, those through the API the token's.
func TestAuditCLI(t *testing.T) {
	data := filepath.Join(t.TempDir(), "flowd-data")
	hello := filepath.Join("..", "..", "flows", "examples", "hello.json")
	first := startServer(t, data) // creates the data folder
	first.shutdown(t)
	if code, out, errs := flowdCmd(t, nil, "import", "--data", data, "--deploy", hello); code != 0 {
		t.Fatalf("import: %d %s %s", code, out, errs)
	}
	list := func(args ...string) []audit.Event {
		t.Helper()
		code, out, errs := flowdCmd(t, nil, append([]string{"audit", "--data", data, "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("audit %v: %d %s %s", args, code, out, errs)
		}
		var page struct {
			Events []audit.Event `json:"events"`
		}
		if err := json.Unmarshal([]byte(out), &page); err != nil {
			t.Fatalf("audit --json: %v\n%s", err, out)
		}
		return page.Events
	}
	brief := func(evs []audit.Event) string {
		var b []string
		for _, e := range evs {
			b = append(b, e.Type+" "+e.Subject+" "+e.Actor)
		}
		return strings.Join(b, "; ")
	}
	if got, want := brief(list("--subject", "hello", "--limit", "2")), "flow.deployed hello cli; flow.saved hello cli"; got != want {
		t.Errorf("local: %s, want %s", got, want)
	}
	s := startServer(t, data)
	if code, _ := s.get(t, "/hello", nil); code != 200 {
		t.Fatalf("hello: %d", code)
	}
	// Through the server: its API, with the token from the data folder.
	if got, want := brief(list("--type", "flow.deployed", "--subject", "hello", "--limit", "1")), "flow.deployed hello cli"; got != want {
		t.Errorf("remote: %s, want %s", got, want)
	}
	if code, _, errs := flowdCmd(t, nil, "audit", "--data", data, "--since", "yesterday"); code != 2 || !strings.Contains(errs, "RFC 3339") {
		t.Errorf("bad --since: %d %s", code, errs)
	}
	code, out, _ := flowdCmd(t, nil, "audit", "--data", data, "--limit", "1")
	if code != 0 || !strings.Contains(out, "TIME") || !strings.Contains(out, "more: flowd audit --before ") {
		t.Errorf("table: %d %s", code, out)
	}
}
