package flowd_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store/storetest"
)

// TestHealth: /healthz and /readyz answer without a token, say a word per
// check and nothing more, and a flow cannot take their paths.
func TestHealth(t *testing.T) {
	st := storetest.TempBolt(t)
	fd := flowd.StartTest(t, flowd.Options{Store: st, AdminToken: "test-admin-token"})
	if err := fd.Keysets().Create(t.Context(), "main", "ES256"); err != nil {
		t.Fatal(err)
	}
	if _, err := fd.App().Import(t.Context(), helloFlow("hi"), true); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	check := func(t *testing.T, path string, wantCode int, want answer) {
		t.Helper()
		for name, h := range map[string]http.Handler{"Handler": fd.Handler(), "HealthHandler": fd.HealthHandler()} {
			code, body := get(h, path, "")
			var got answer
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("%s %s: %q is not JSON: %v", name, path, body, err)
			}
			if code != wantCode || got.Status != want.Status || len(got.Checks) != len(want.Checks) {
				t.Errorf("%s GET %s = %d %s, want %d %+v", name, path, code, body, wantCode, want)
			}
			for k, v := range want.Checks {
				if got.Checks[k] != v {
					t.Errorf("%s GET %s: check %s = %q, want %q", name, path, k, got.Checks[k], v)
				}
			}
		}
	}
	allOK := map[string]string{"store": "ok", "feed": "ok", "keys": "ok", "flows": "ok"}
	t.Run("alive and ready", func(t *testing.T) {
		check(t, "/healthz", 200, answer{Status: "ok"})
		check(t, "/readyz", 200, answer{Status: "ready", Checks: allOK})
	})
	t.Run("a flow cannot take the health paths", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			doc := strings.Replace(string(helloFlow("x")), `"/hello"`, `"`+p+`"`, 1)
			_, err := fd.App().Import(t.Context(), []byte(doc), true)
			var ve engine.ValidationErrors
			if !errors.As(err, &ve) || len(ve) != 1 || ve[0].Node != "in" || ve[0].Field != "path" || !errors.Is(err, engine.ErrInvalidFlow) {
				t.Errorf("deploy at %s: %v, want a validation error on node in, field path", p, err)
			}
		}
		if code, body := get(fd.Handler(), "/hello", ""); code != 200 || !strings.Contains(body, "hi") {
			t.Errorf("the deployed flow changed: %d %s", code, body)
		}
	})
	t.Run("store gone: not ready, still alive", func(t *testing.T) {
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		check(t, "/healthz", 200, answer{Status: "ok"})
		// An answer is reused for a quarter of a second.
		var code int
		var body string
		eventually(t, "/readyz says the store is unavailable", func() bool {
			code, body = get(fd.Handler(), "/readyz", "")
			return code != 200
		})
		if code != 503 || !strings.Contains(body, `"store":"unavailable"`) || strings.Contains(body, "closed") {
			t.Errorf("GET /readyz with the store closed = %d %s, want 503, store unavailable, no error text", code, body)
		}
	})
}
