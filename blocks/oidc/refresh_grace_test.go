package oidc

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

// refreshKit is a signed-in grant of web with its first refresh token.
type refreshKit struct {
	t   *testing.T
	f   *fixture
	rb  *refreshBlock
	gid string
	rt1 string
}

func newRefreshKit(t *testing.T, grace time.Duration) *refreshKit {
	t.Helper()
	f := newFixture(t, testIssuer)
	q, _ := signIn(t, f, authorizeParams("web", webCB), "")
	ex := testExchange(f.p, time.Hour)
	msg := exchangeMsg("web", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {webCB}})
	if port, err := ex.Process(t.Context(), f.clk.exec(), msg); port != "ok" || err != nil {
		t.Fatalf("%s %v %v", port, err, msg["oauth_error"])
	}
	f.st.takeWrites()
	return &refreshKit{t: t, f: f, rb: testRefresh(f.p, time.Hour, grace),
		gid: stringField(mapOf(msg["grant"]), "grant_id"), rt1: stringField(msg, "refresh_token")}
}

func (k *refreshKit) refresh(client, rt string) (string, engine.Msg) {
	k.t.Helper()
	m := exchangeMsg(client, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	port, err := k.rb.Process(k.t.Context(), k.f.clk.exec(), m)
	if err != nil {
		k.t.Fatal(err)
	}
	return port, m
}

func (k *refreshKit) active() bool {
	ok, err := grantActive(k.t.Context(), k.f.st, k.gid, k.f.clk.Now())
	if err != nil {
		k.t.Fatal(err)
	}
	return ok
}

func TestRefreshLostResponse(t *testing.T) {
	for _, tc := range []struct {
		name      string
		grace     time.Duration
		wait      time.Duration // between the lost answer and the retry
		retryPort string
		active    bool // the grant after the retry
	}{
		{"retry at once", time.Minute, 0, "ok", true},
		{"retry just inside the grace period", time.Minute, 59 * time.Second, "ok", true},
		{"retry at the end of the grace period", time.Minute, time.Minute, "invalid", false},
		{"retry long after", time.Minute, 10 * time.Minute, "invalid", false},
		{"grace period off", 0, 0, "invalid", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newRefreshKit(t, tc.grace)
			port, m := k.refresh("web", k.rt1) // its answer is lost on the way
			lost := stringField(m, "refresh_token")
			if port != "ok" || lost == "" || lost == k.rt1 {
				t.Fatalf("first refresh: %s %v", port, m)
			}
			// Rotation is one transaction: one record written.
			if w := k.f.st.takeWrites(); !slices.Equal(w, []string{"kv oidc_grants/" + k.gid}) {
				t.Fatalf("a refresh wrote %v", w)
			}
			k.f.clk.Advance(tc.wait)
			port, m = k.refresh("web", k.rt1)
			if port != tc.retryPort || k.active() != tc.active {
				t.Fatalf("retry: port %s, grant active %v; want %s, %v (%v)", port, k.active(), tc.retryPort, tc.active, m["oauth_error"])
			}
			if port != "ok" {
				if e := mapOf(m["oauth_error"]); stringField(e, "error") != "invalid_grant" {
					t.Fatalf("%v", e)
				}
				// Reuse revoked the grant: the token whose answer was lost is dead too.
				if port, _ := k.refresh("web", lost); port != "invalid" {
					t.Fatal("the lost token still refreshes after a reuse")
				}
				return
			}
			// The retry is answered with the same next token, and a new access token's grant.
			if got := stringField(m, "refresh_token"); got != lost {
				t.Fatalf("retry answered %q, want the lost %q", got, lost)
			}
			if g := mapOf(m["grant"]); g["grant_id"] != k.gid || g["subject"] != k.f.ada.Sub || g["scope"] != "openid email" {
				t.Fatalf("grant %v", g)
			}
			// The client goes on with it; then the first token is stale for good.
			port, m = k.refresh("web", lost)
			if port != "ok" || k.active() != true {
				t.Fatalf("the recovered token: %s %v", port, m["oauth_error"])
			}
			if port, _ := k.refresh("web", k.rt1); port != "invalid" || k.active() {
				t.Fatal("the first token after the client moved on: not taken as reuse")
			}
		})
	}
}

func TestRefreshRetryEdges(t *testing.T) {
	t.Run("another client presenting the rotated token", func(t *testing.T) {
		k := newRefreshKit(t, time.Minute)
		k.refresh("web", k.rt1)
		if port, _ := k.refresh("other", k.rt1); port != "invalid" || !k.active() {
			t.Fatalf("port %s, active %v: another client's try must neither work nor revoke", port, k.active())
		}
	})
	t.Run("forged and malformed tokens", func(t *testing.T) {
		k := newRefreshKit(t, time.Minute)
		mangled := []byte(k.rt1)
		mangled[len(mangled)-3] ^= 2
		for _, rt := range []string{string(mangled), k.rt1[:len(k.rt1)-1], k.rt1 + "A", strings.Repeat("A", len(k.rt1)), "x.y.z", newSecret()} {
			if port, m := k.refresh("web", rt); port != "invalid" || errorCode(m) != "invalid_grant" {
				t.Fatalf("%q: %s %v", rt, port, m["oauth_error"])
			}
		}
		if !k.active() {
			t.Fatal("a forged token revoked the grant")
		}
		if w := k.f.st.takeWrites(); len(w) != 0 {
			t.Fatalf("forged tokens wrote %v", w)
		}
	})
	t.Run("a token of the earlier format rotates once", func(t *testing.T) {
		k := newRefreshKit(t, time.Minute)
		ctx := t.Context()
		old := newSecret()
		now := k.f.clk.Now()
		if err := putRec(ctx, k.f.st, nsRefresh, hashKey(old), &refreshRecord{GrantID: k.gid, ClientID: "web", Sub: k.f.ada.Sub,
			Scope: "openid email", AuthTime: now.Unix(), Expires: now.Add(time.Hour).Unix(), Purge: now.Add(time.Hour).Unix()}); err != nil {
			t.Fatal(err)
		}
		port, m := k.refresh("web", old)
		next := stringField(m, "refresh_token")
		if port != "ok" || len(next) != refreshTokenLen {
			t.Fatalf("%s %v", port, m)
		}
		if port, _ := k.refresh("web", next); port != "ok" {
			t.Fatal("the converted token does not refresh")
		}
		if port, _ := k.refresh("web", old); port != "invalid" || k.active() {
			t.Fatal("reuse of an earlier-format token did not revoke the grant")
		}
	})
}
