package uitest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/flows/examples"
	"github.com/flowd/flowd/store/storetest"
)

// Password and Token are what Start sets.
const (
	Password = "correct horse battery staple"
	Token    = "uitest-admin-token"
)

// Env is a running flowd.
type Env struct {
	URL string
	FD  *flowd.Flowd
	Srv *httptest.Server
	Log *enginetest.LogBuffer // everything flowd logged
}

// Start runs flowd with the prebuilt flows installed and deployed, the
// admin password Password and the API token Token. opts adjust the flowd
// options (a hashing pool a test holds).
func Start(t testing.TB, opts ...func(*flowd.Options)) *Env {
	t.Helper()
	st := storetest.TempBolt(t)
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	base := "http://" + srv.Listener.Addr().String()
	logs := &enginetest.LogBuffer{}
	fd := NewFlowd(t, flowd.Options{Store: st, AdminToken: Token, AdminPassword: Password, Examples: examples.FS,
		Issuer: base, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, opts...)
	// key-rollover creates keyset main from its start-up trigger, which
	// runs in the background: wait for it so tests see a settled server.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := fd.Keysets().Get(context.Background(), "main"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("keyset main was not created by the key-rollover flow")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mux.Handle("/", fd.FlowHandler())
	mux.Handle("/admin/", fd.AdminHandler())
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		_ = fd.Close(context.Background())
	})
	return &Env{URL: base, FD: fd, Srv: srv, Log: logs}
}

// NewFlowd builds a flowd from fo, adjusted by opts, and starts it; the
// caller closes it.
func NewFlowd(t testing.TB, fo flowd.Options, opts ...func(*flowd.Options)) *flowd.Flowd {
	t.Helper()
	for _, o := range opts {
		o(&fo)
	}
	fd, err := flowd.New(fo)
	if err != nil {
		t.Fatal(err)
	}
	if err := fd.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return fd
}

// GetStatus sends GET url with an Authorization header unless auth is
// empty, and returns the status.
func GetStatus(t testing.TB, url, auth string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// NextData reads the event stream r up to its next "data:" line and
// returns the data (without the line end); the test fails if none comes
// within the given time.
func NextData(t testing.TB, r *bufio.Reader, within time.Duration) string {
	t.Helper()
	data := make(chan string, 1)
	go func() {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				data <- "error: " + err.Error()
				return
			}
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				data <- strings.TrimSuffix(d, "\n")
				return
			}
		}
	}()
	select {
	case d := <-data:
		return d
	case <-time.After(within):
		t.Fatalf("no event within %v", within)
		return ""
	}
}

// StreamEnds fails the test unless the stream r ends cleanly (EOF) within
// the given time.
func StreamEnds(t testing.TB, r io.Reader, within time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, r)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(within):
		t.Fatalf("stream still open after %v", within)
	}
}

// Client is a browser-like HTTP client: cookies, no redirects followed.
type Client struct {
	*http.Client
	Base string
	CSRF string
}

// NewClient returns a client without a session.
func (e *Env) NewClient() *Client {
	jar, _ := cookiejar.New(nil)
	return &Client{Base: e.URL, Client: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Login returns a client logged in with Password, its CSRF token read
// from the flows page.
func (e *Env) Login(t testing.TB) *Client {
	t.Helper()
	c := e.NewClient()
	res := c.PostForm(t, "/admin/login", url.Values{"password": {Password}, "next": {"/admin/flows"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: status %d", res.StatusCode)
	}
	page := c.GetBody(t, "/admin/flows")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token on the flows page")
	}
	c.CSRF = m[1]
	return c
}

// Get does a GET; the body is read and closed.
func (c *Client) Get(t testing.TB, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.Base+path, nil)
	return c.Do(t, req)
}

// GetBody does a GET that must answer 200 and returns the body.
func (c *Client) GetBody(t testing.TB, path string) string {
	t.Helper()
	res, body := c.Get(t, path)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", path, res.StatusCode, body)
	}
	return body
}

// PostForm posts a form (add "csrf" yourself; see Post).
func (c *Client) PostForm(t testing.TB, path string, form url.Values) *http.Response {
	t.Helper()
	res, _ := c.PostFormBody(t, path, form)
	return res
}

// PostFormBody posts a form and returns the response and body.
func (c *Client) PostFormBody(t testing.TB, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.Base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.Do(t, req)
}

// Post posts a form with the session's CSRF token.
func (c *Client) Post(t testing.TB, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", c.CSRF)
	return c.PostFormBody(t, path, form)
}

// Do sends req and reads the body.
func (c *Client) Do(t testing.TB, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := c.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// API calls the admin JSON API with the bearer token.
func (e *Env) API(t testing.TB, method, path string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, e.URL+"/admin/api"+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}
