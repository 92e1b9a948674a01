package flowd_test

import (
	"net/http/httptest"
	"testing"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/flows/examples"
)

// TestHandler: the one-listener handler sends /admin/ to the admin UI and
// API, /admin to /admin/, and everything else to the flows, and unclean
// paths cannot reach the admin side without its checks.
func TestHandler(t *testing.T) {
	fd := flowd.StartTest(t, flowd.Options{Examples: examples.FS, AdminToken: "test-admin-token", Issuer: "http://flowd.test"})
	h := fd.Handler()
	do := func(path, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	tests := []struct {
		path, token string
		status      int
		location    string
	}{
		{"/.well-known/jwks.json", "", 200, ""},
		{"/.well-known/openid-configuration", "", 200, ""},
		{"/no/such/route", "", 404, ""},
		{"/admin", "", 301, "/admin/"},
		{"/admin?x=1", "", 301, "/admin/?x=1"},
		{"/admin/api/flows", "", 401, ""},
		{"/admin/api/flows", "wrong", 401, ""},
		{"/admin/api/flows", "test-admin-token", 200, ""},
	}
	for _, tt := range tests {
		w := do(tt.path, tt.token)
		if w.Code != tt.status {
			t.Errorf("GET %s: %d, want %d (%s)", tt.path, w.Code, tt.status, w.Body)
		}
		if tt.location != "" && w.Header().Get("Location") != tt.location {
			t.Errorf("GET %s: Location %q, want %q", tt.path, w.Header().Get("Location"), tt.location)
		}
	}
	// Unclean paths are redirected (to their clean form, or to the admin
	// login), never served.
	for _, p := range []string{"/x/../admin/api/flows", "/admin/../admin/api/flows", "/.well-known/../admin/api/flows"} {
		if w := do(p, ""); w.Code < 300 || w.Code > 399 {
			t.Errorf("GET %s: %d, want a redirect", p, w.Code)
		}
	}
}

// TestAdminPasswordSet: false until a password exists, true with
// Options.AdminPassword (one stored by `flowd admin password`: cmd/flowd's
// TestAdminPassword).
func TestAdminPasswordSet(t *testing.T) {
	if flowd.NewTest(t, flowd.Options{}).AdminPasswordSet(t.Context()) {
		t.Error("a password without one set")
	}
	if !flowd.NewTest(t, flowd.Options{AdminPassword: "correct horse battery"}).AdminPasswordSet(t.Context()) {
		t.Error("no password with Options.AdminPassword")
	}
}
