package ui_test

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestDebuggerFormWords: policy mistakes are explained with the form's
// labels, the form starts with the prebuilt flows' settings, and the
// token is never written into the answer.
func TestDebuggerFormWords(t *testing.T) {
	t.Parallel()
	env, c, d := adminPage(t, "/admin/debugger")
	if aud, _ := d.Find(tid("debugger-audience")).Attr("value"); aud != "flowd-api" {
		t.Errorf("audience starts as %q", aud)
	}
	if iss, _ := d.Find(tid("debugger-issuer")).Attr("value"); iss != env.URL {
		t.Errorf("issuer starts as %q", iss)
	}
	now := time.Now().Unix()
	tok := signToken(t, env, map[string]any{"exp": now + 600, "iat": now, "sub": "ada"})
	base := url.Values{"token": {tok}, "source": {"keyset"}, "keyset": {"main"}, "algorithms": {"ES256"},
		"issuer": {env.URL}, "audience": {"flowd-api"}, "leeway": {"30s"}, "require_exp": {"true"}}
	for _, tc := range []struct{ name, field, value, want string }{
		{"no algorithms", "algorithms", "", "Algorithms: the allow-list is empty"},
		{"alg none", "algorithms", "none", "Algorithms: \"none\" is never allowed"},
		{"no audience", "audience", "", "Audience: required unless \"audience optional\" is ticked"},
		{"bad leeway", "leeway", "soon", "Leeway: \"soon\" is not a duration like 30s"},
		{"http JWKS", "source", "remote", "JWKS URL: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{}
			for k, v := range base {
				form[k] = v
			}
			form.Set(tc.field, tc.value)
			if tc.field == "source" {
				form.Set("jwks_url", "http://idp.example/jwks")
			}
			res, body := c.Post(t, "/admin/debugger", form)
			if res.StatusCode != 400 {
				t.Fatalf("status %d", res.StatusCode)
			}
			msg := doc(t, body).Find(tid("debugger-error")).Text()
			if !strings.HasPrefix(msg, tc.want) {
				t.Errorf("error %q, want it to start with %q", msg, tc.want)
			}
			if strings.Contains(body, tok) {
				t.Error("the token is written into the page")
			}
		})
	}
}
