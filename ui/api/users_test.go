package api_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/blocks/oidc"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store/storetest"
	"github.com/flowd/flowd/ui/api"
)

func TestUsersAPI(t *testing.T) {
	st := storetest.TempBolt(t)
	a := startApp(t, app.Config{Store: st, Registry: engine.NewRegistry()})
	h := api.New(a, tokenIs(keysetToken), nil)
	users := oidc.NewUsers(st)
	api.RegisterUsers(h, users)
	call := func(method, path, body, token string) (int, string) {
		req := httptest.NewRequest(method, api.Prefix+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	for _, tc := range []struct {
		name, method, path, body, token string
		status                          int
		want, never                     string
	}{
		{"no token", "GET", "/users", "", "", 401, "", ""},
		{"add", "POST", "/users", `{"username":"Ada","password":"correct horse battery","email":"ada@example.com","email_verified":true,"name":"Ada"}`, keysetToken, 201, `"username": "ada"`, "password"},
		{"duplicate", "POST", "/users", `{"username":"ada","password":"correct horse battery"}`, keysetToken, 409, `"user_exists"`, ""},
		{"short password", "POST", "/users", `{"username":"bob","password":"short"}`, keysetToken, 400, "at least 8", ""},
		{"unknown field", "POST", "/users", `{"username":"bob","password":"long enough pw","admin":true}`, keysetToken, 400, "unknown field", ""},
		{"list", "GET", "/users", "", keysetToken, 200, `"email_verified": true`, "argon2"},
		{"remove unknown", "DELETE", "/users/nobody", "", keysetToken, 404, `"no_user"`, ""},
		{"remove", "DELETE", "/users/ADA", "", keysetToken, 200, `"sessions": 0`, ""},
		{"list empty", "GET", "/users", "", keysetToken, 200, `"users": []`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(tc.method, tc.path, tc.body, tc.token)
			if status != tc.status || !strings.Contains(body, tc.want) || (tc.never != "" && strings.Contains(body, tc.never)) {
				t.Fatalf("%d %s", status, body)
			}
		})
	}
}
