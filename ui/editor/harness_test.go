package editor_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/store/storetest"
	"github.com/flowd/flowd/ui/editor"
	"github.com/flowd/flowd/ui/uitest"
)

const (
	testCSRF = "csrf-test-token"
	// testToken is the admin API token the harness adds to the page's API
	// calls, as the ui package's session bridge does.
	testToken  = "fd_editor-harness-token"
	testIssuer = "https://issuer.test"
	// csp is the UI's policy (ui.CSP): the editor must work under it.
	csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

type env struct {
	h   *editor.Handler
	fd  *flowd.Flowd
	srv *httptest.Server
	// csrfFailures counts state-changing requests without the token.
	csrfFailures int
}

// stubLayout stands in for the ui package's layout.
func stubLayout(title, _ string, body templ.Component) templ.Component {
	return templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		if _, err := io.WriteString(w, "<!doctype html><html><head><meta charset=\"utf-8\"><title>"+templ.EscapeString(title)+"</title></head><body>"); err != nil {
			return err
		}
		if err := body.Render(ctx, w); err != nil {
			return err
		}
		_, err := io.WriteString(w, "</body></html>")
		return err
	})
}

// newEnv builds a flowd on a temp bbolt file and serves the editor routes
// and the admin API (behind a CSRF check like the ui package's, the API
// with the token its session bridge stands for) and the flow endpoints on
// one httptest server. opts adjust the flowd options (a snapshot rate).
func newEnv(t *testing.T, opts ...func(*flowd.Options)) *env {
	t.Helper()
	fd := uitest.NewFlowd(t, flowd.Options{Store: storetest.TempBolt(t), Issuer: testIssuer, AdminToken: testToken}, opts...)
	e := &env{fd: fd}
	h := editor.New(fd.App(), editor.Options{
		Layout:   stubLayout,
		CSRF:     func(*http.Request) string { return testCSRF },
		Registry: fd.App().Registry(),
	})
	e.h = h
	admin := http.NewServeMux()
	h.Register(admin)
	root := http.NewServeMux()
	root.Handle("/admin/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Header.Get("X-CSRF-Token") != testCSRF {
			e.csrfFailures++
			http.Error(w, "csrf", http.StatusForbidden)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/admin/api/") && r.Header.Get("Authorization") == "" {
			r.Header.Set("Authorization", "Bearer "+testToken) // the session bridge
			fd.AdminHandler().ServeHTTP(w, r)
			return
		}
		admin.ServeHTTP(w, r)
	}))
	root.Handle("/", fd.FlowHandler())
	e.srv = httptest.NewServer(root)
	t.Cleanup(func() {
		e.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fd.Close(ctx)
	})
	return e
}

func (e *env) importFlow(t *testing.T, doc string, deploy bool) {
	t.Helper()
	if _, err := e.fd.App().Import(t.Context(), []byte(doc), deploy); err != nil {
		t.Fatal(err)
	}
}

// do sends a request with the CSRF token and returns status, headers, body.
func (e *env) do(t *testing.T, method, path, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-CSRF-Token", testCSRF)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}
