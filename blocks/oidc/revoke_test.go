package oidc

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

// codeGrant signs ada in for client, exchanges the code and returns the
// grant id and the refresh token.
func codeGrant(t *testing.T, f *fixture, client, redirect string) (gid, rt string) {
	t.Helper()
	q, _ := signIn(t, f, authorizeParams(client, redirect), "")
	ex := testExchange(f.p, time.Hour)
	msg := exchangeMsg(client, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {redirect}})
	if port, err := ex.Process(t.Context(), f.clk.exec(), msg); port != "ok" || err != nil {
		t.Fatalf("%s %v %v", port, err, msg["oauth_error"])
	}
	return stringField(mapOf(msg["grant"]), "grant_id"), stringField(msg, "refresh_token")
}

// revokeMsg is a revocation request from an authenticated client.
func revokeMsg(client string, form url.Values) engine.Msg {
	msg := formMsg(form, "", "")
	msg["client"] = map[string]any{"id": client}
	return msg
}

func TestRevokeRefreshToken(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	rb := &revokeBlock{p: f.p}
	webGrant, webRT := codeGrant(t, f, "web", webCB)
	otherGrant, otherRT := codeGrant(t, f, "other", "https://other.example.com/cb")
	f.st.takeWrites()
	for _, tc := range []struct {
		name, client string
		form         url.Values
		port, code   string
		ends         string // the grant this request must end; "" none
	}{
		{"another client's refresh token: no effect", "web", url.Values{"token": {otherRT}}, "done", "", ""},
		{"malformed token", "web", url.Values{"token": {"not a token"}}, "done", "", ""},
		{"a refresh token with a wrong MAC", "web", url.Values{"token": {webRT[:len(webRT)-3] + "AAA"}}, "done", "", ""},
		{"unknown secret-shaped token", "web", url.Values{"token": {newSecret()}}, "done", "", ""},
		{"huge token", "web", url.Values{"token": {strings.Repeat("A", 1<<20)}}, "done", "", ""},
		{"JWT-shaped token goes to the access token check", "web", url.Values{"token": {"a.b.c"}}, "access_token", "", ""},
		{"no token", "web", url.Values{"token_type_hint": {"refresh_token"}}, "invalid", "invalid_request", ""},
		{"repeated token", "web", url.Values{"token": {webRT, otherRT}}, "invalid", "invalid_request", ""},
		{"own refresh token, unknown hint", "web", url.Values{"token": {webRT}, "token_type_hint": {"id_token"}}, "done", "", webGrant},
		{"replayed revocation", "web", url.Values{"token": {webRT}}, "done", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := revokeMsg(tc.client, tc.form)
			port, err := rb.Process(ctx, f.clk.exec(), msg)
			wantPort(t, port, err, msg, tc.port)
			if got := errorCode(msg); got != tc.code {
				t.Fatalf("error %q, want %q", got, tc.code)
			}
			w := f.st.takeWrites()
			if tc.ends == "" && len(w) != 0 {
				t.Fatalf("a request that changes nothing wrote %v", w)
			}
			if tc.ends != "" {
				if _, why, _ := grantStatus(ctx, f.st, tc.ends, f.clk.Now()); why != grantRevoked {
					t.Fatalf("grant %s: %q", tc.ends, why)
				}
			}
			if _, why, _ := grantStatus(ctx, f.st, otherGrant, f.clk.Now()); why != "" {
				t.Fatalf("another client's grant ended: %q", why)
			}
		})
	}
	// The revoked grant refreshes no more.
	m := exchangeMsg("web", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {webRT}})
	if port, err := testRefresh(f.p, time.Hour, 0).Process(ctx, f.clk.exec(), m); port != "invalid" || err != nil {
		t.Fatalf("refresh after revocation: %s %v", port, err)
	}
}

func TestRevokeAccessToken(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	ab := &revokeAccessBlock{p: f.p}
	ga := &grantActiveBlock{p: f.p}
	webGrant, _ := codeGrant(t, f, "web", webCB)
	exp := f.clk.Now().Add(time.Hour).Unix()
	person := func() map[string]any {
		return map[string]any{"client_id": "web", "sub": f.ada.Sub, "gid": webGrant, "jti": newID(), "exp": exp}
	}
	svcJTI := newID()
	service := func() map[string]any {
		return map[string]any{"client_id": "svc", "sub": "svc", "jti": svcJTI, "exp": exp}
	}
	active := func(claims map[string]any) string {
		t.Helper()
		port, err := ga.Process(ctx, f.clk.exec(), engine.Msg{"claims": claims})
		if err != nil {
			t.Fatal(err)
		}
		return port
	}
	if active(person()) != "active" || active(service()) != "active" {
		t.Fatal("tokens not active before revocation")
	}
	f.st.takeWrites()
	for _, tc := range []struct {
		name, client, typ string
		claims            map[string]any
		port, code        string
		writes            bool
	}{
		{"an ID token", "web", "JWT", person(), "unsupported", "unsupported_token_type", false},
		{"another client's person token", "other", "at+jwt", person(), "done", "", false},
		{"another client's service token", "web", "at+jwt", service(), "done", "", false},
		{"service token without jti", "svc", "at+jwt", map[string]any{"client_id": "svc", "exp": exp}, "done", "", false},
		{"service token with a huge jti", "svc", "at+jwt", map[string]any{"client_id": "svc", "jti": strings.Repeat("j", 5000), "exp": exp}, "done", "", false},
		{"service token, expired", "svc", "at+jwt", map[string]any{"client_id": "svc", "jti": newID(), "exp": f.clk.Now().Unix() - 1}, "done", "", false},
		{"malformed gid", "web", "at+jwt", map[string]any{"client_id": "web", "gid": 42, "exp": exp}, "done", "", false},
		{"own service token", "svc", "application/at+jwt", service(), "done", "", true},
		{"own service token again", "svc", "at+jwt", service(), "done", "", true},
		{"own person token", "web", "at+jwt", person(), "done", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := revokeMsg(tc.client, url.Values{"token": {"x.y.z"}})
			msg["claims"], msg["token_header"] = tc.claims, map[string]any{"typ": tc.typ}
			port, err := ab.Process(ctx, f.clk.exec(), msg)
			wantPort(t, port, err, msg, tc.port)
			if got := errorCode(msg); got != tc.code {
				t.Fatalf("error %q, want %q", got, tc.code)
			}
			if w := f.st.takeWrites(); len(w) > 0 != tc.writes {
				t.Fatalf("writes %v, want some: %v", w, tc.writes)
			}
		})
	}
	// Introspection's check refuses both now: the person's by its
	// grant, the service's by its jti, until the latter expires.
	if port := active(person()); port != "inactive" {
		t.Fatalf("person token after revocation: %s", port)
	}
	msg := engine.Msg{"claims": service()}
	if port, _ := ga.Process(ctx, f.clk.exec(), msg); port != "inactive" || mapOf(msg["invalid"])["reason"] != "token_revoked" {
		t.Fatalf("service token after revocation: %s %v", port, msg["invalid"])
	}
	if active(map[string]any{"client_id": "svc", "sub": "svc", "jti": newID(), "exp": exp}) != "active" {
		t.Fatal("another service token was refused")
	}
	f.clk.Advance(time.Hour)
	counts, err := cleanup(ctx, f.st, f.clk.Now())
	if err != nil || counts[nsRevokedTokens] != 1 {
		t.Fatalf("cleanup: %v %v", counts, err)
	}
	// The block needs jose.validate before it.
	if _, err := ab.Process(ctx, f.clk.exec(), revokeMsg("svc", url.Values{"token": {"x.y.z"}})); err == nil {
		t.Fatal("no error without msg.claims")
	}
}
