package oidc

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

// tokens is what one code exchange gave a client.
type tokens struct {
	grantID, refresh string
}

// grantKit signs people in, exchanges their codes and logs them out with
// the blocks the prebuilt flows use.
type grantKit struct {
	*logoutKit
	ex *codeExchangeBlock
	rb *refreshBlock
}

func newGrantKit(t *testing.T) *grantKit {
	k := newLogoutKit(t)
	return &grantKit{logoutKit: k,
		ex: testExchange(k.f.p, 24*time.Hour),
		rb: testRefresh(k.f.p, 24*time.Hour, 0)}
}

// code signs username in (or reuses cookies' session) for scope and
// returns the code and the browser's cookies.
func (k *grantKit) code(username, scope, cookies string) (string, string) {
	k.t.Helper()
	params := authorizeParams("web", webCB)
	params.Set("scope", scope)
	q, cookies := signInAs(k.t, k.f, username, params, cookies)
	return q.Get("code"), cookies
}

// codeWithRecord signs username in for scope in a fresh browser and
// returns the code and its stored record.
func (k *grantKit) codeWithRecord(username, scope string) (string, *codeRecord) {
	k.t.Helper()
	code, _ := k.code(username, scope, "")
	rec, err := getRec[codeRecord](k.t.Context(), k.f.st, nsCodes, hashKey(code))
	if err != nil || rec == nil {
		k.t.Fatalf("code record %v %v", rec, err)
	}
	return code, rec
}

// exchange redeems a code; the port and the tokens.
func (k *grantKit) exchange(code string) (string, tokens) {
	k.t.Helper()
	msg := exchangeMsg("web", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}})
	port, err := k.ex.Process(k.t.Context(), k.f.clk.exec(), msg)
	if err != nil {
		k.t.Fatal(err)
	}
	return port, tokens{stringField(mapOf(msg["grant"]), "grant_id"), stringField(msg, "refresh_token")}
}

// grant signs in (or reuses the browser's session) and exchanges the code.
func (k *grantKit) grant(username, scope, cookies string) (tokens, string) {
	k.t.Helper()
	code, cookies := k.code(username, scope, cookies)
	port, tok := k.exchange(code)
	if port != "ok" || tok.grantID == "" || tok.refresh == "" {
		k.t.Fatalf("exchange: %s %v", port, tok)
	}
	return tok, cookies
}

// refresh uses a refresh token: the port and the OAuth error code.
func (k *grantKit) refresh(token string) (string, string) {
	k.t.Helper()
	msg := exchangeMsg("web", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}})
	port, err := k.rb.Process(k.t.Context(), k.f.clk.exec(), msg)
	if err != nil {
		k.t.Fatal(err)
	}
	return port, errorCode(msg)
}

// status is why the grant is not live ("" when it is) and its revoke reason.
func (k *grantKit) status(gid string) (string, string) {
	k.t.Helper()
	g, why, err := grantStatus(k.t.Context(), k.f.st, gid, k.f.clk.Now())
	if err != nil {
		k.t.Fatal(err)
	}
	if g == nil {
		return why, ""
	}
	return why, g.Revoked
}

// grantCase is what one grant looks like after a sign-out: why it is not
// live and its revoke reason ("" when it is live), and what a refresh
// with its token answers (port and OAuth error code).
type grantCase struct {
	name          string
	tok           tokens
	why, reason   string
	port, errCode string
}

// wantGrants checks each grant's status and refresh answer, a subtest each.
func (k *grantKit) wantGrants(t *testing.T, cases []grantCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			why, reason := k.status(tc.tok.grantID)
			port, code := k.refresh(tc.tok.refresh)
			if why != tc.why || reason != tc.reason || port != tc.port || code != tc.errCode {
				t.Fatalf("status %q %q, refresh %s %q; want %q %q, %s %q", why, reason, port, code, tc.why, tc.reason, tc.port, tc.errCode)
			}
		})
	}
}

// withBob adds user bob, with Users able to end sessions (as oidc.Provide
// sets it up).
func (k *grantKit) withBob(t *testing.T) {
	t.Helper()
	k.f.users.state = k.f.st // as oidc.Provide does
	if _, err := k.f.users.Add(t.Context(), User{Username: "bob"}, testPassword); err != nil {
		t.Fatal(err)
	}
}

// logout logs the browser out with a hint for its session: no question.
func (k *grantKit) logout(cookies string) {
	k.t.Helper()
	sess := k.session(cookies)
	r := k.get(url.Values{"id_token_hint": {k.hint(sess.Sub, sess.AuthTime)}, "post_logout_redirect_uri": {byeURI}}, cookies)
	wantLoggedOut(k.t, r, byeURI)
}

func TestLogoutRevokesTheSessionsGrants(t *testing.T) {
	k := newGrantKit(t)
	ctx := t.Context()
	bob, err := k.f.users.Add(ctx, User{Username: "bob"}, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	// Browser A: ada, two grants, one of them offline.
	online, cookiesA := k.grant("ada", "openid email", "")
	offline, _ := k.grant("ada", "openid offline_access", cookiesA)
	pending, _ := k.code("ada", "openid", cookiesA) // issued, exchanged after the logout
	// Browser B: ada again, another session. Browser C: bob.
	otherSession, _ := k.grant("ada", "openid", "")
	otherUser, _ := k.grant("bob", "openid", "")
	// A grant from before grants recorded their session.
	legacy := newID()
	if err := putRec(ctx, k.f.st, nsGrants, legacy, &grantRecord{ID: legacy, ClientID: "web", Sub: k.f.ada.Sub,
		Scope: "openid", Created: k.f.clk.Now().Unix(), Purge: k.f.clk.Now().Add(time.Hour).Unix()}); err != nil {
		t.Fatal(err)
	}
	g, err := getRec[grantRecord](ctx, k.f.st, nsGrants, online.grantID)
	if err != nil || g == nil || !isHashKey(g.Session) || g.Session == k.f.p.readCookie(queryMsg(nil, cookiesA), sessionCookie) {
		t.Fatalf("the grant records its session's hash, never the cookie: %+v %v", g, err)
	}
	if bob.Sub == k.f.ada.Sub {
		t.Fatal("two users, one sub")
	}

	k.logout(cookiesA)

	k.wantGrants(t, []grantCase{
		{"the session's grant is revoked", online, grantRevoked, "logged_out", "invalid", "invalid_grant"},
		{"an offline_access grant survives", offline, "", "", "ok", ""},
		{"ada's other session survives", otherSession, "", "", "ok", ""},
		{"bob survives", otherUser, "", "", "ok", ""},
	})
	t.Run("a grant without a recorded session survives", func(t *testing.T) {
		if why, _ := k.status(legacy); why != "" {
			t.Fatalf("legacy grant %q", why)
		}
	})
	t.Run("a code of the ended session is refused", func(t *testing.T) {
		port, tok := k.exchange(pending)
		if port != "invalid" || tok.grantID != "" || tok.refresh != "" {
			t.Fatalf("%s %v", port, tok)
		}
	})
	t.Run("access tokens of the revoked grant are inactive", func(t *testing.T) {
		gb := &grantActiveBlock{p: k.f.p}
		msg := engine.Msg{"claims": map[string]any{"sub": k.f.ada.Sub, "client_id": "web", "scope": "openid email", "gid": online.grantID}}
		port, err := gb.Process(ctx, k.f.clk.exec(), msg)
		if err != nil || port != "inactive" || stringField(mapOf(msg["invalid"]), "reason") != grantRevoked {
			t.Fatalf("%s %v %v", port, err, msg)
		}
	})
}

func TestLogoutRevocationPaths(t *testing.T) {
	for _, tc := range []struct {
		name    string
		logout  func(k *grantKit, cookies string)
		revoked bool
	}{
		{"confirmed", func(k *grantKit, cookies string) {
			csrf := k.ask(url.Values{}, cookies)
			wantLoggedOut(k.t, k.post(url.Values{"csrf": {csrf}, "action": {"logout"}}, cookies), "")
		}, true},
		{"cancelled", func(k *grantKit, cookies string) {
			csrf := k.ask(url.Values{}, cookies)
			if r := k.post(url.Values{"csrf": {csrf}, "action": {"stay"}}, cookies); r.port != "cancelled" {
				k.t.Fatalf("%s", r.port)
			}
		}, false},
		{"only asked", func(k *grantKit, cookies string) { k.ask(url.Values{}, cookies) }, false},
		{"a hint for an earlier sign-in is only a question", func(k *grantKit, cookies string) {
			k.ask(url.Values{"id_token_hint": {k.hint(k.f.ada.Sub, k.session(cookies).AuthTime-1)}}, cookies)
		}, false},
		{"expired session: nobody signed in, nothing asked, nothing revoked", func(k *grantKit, cookies string) {
			k.f.clk.Advance(2 * time.Hour) // past the test login's 1h session
			wantLoggedOut(k.t, k.get(url.Values{}, cookies), "")
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newGrantKit(t)
			tok, cookies := k.grant("ada", "openid", "")
			tc.logout(k, cookies)
			why, _ := k.status(tok.grantID)
			if (why == grantRevoked) != tc.revoked || (why != "" && why != grantRevoked) {
				t.Fatalf("grant %q, want revoked %v", why, tc.revoked)
			}
		})
	}
}

func TestLogoutRevocationStoreErrorFailsTheLogout(t *testing.T) {
	for _, ns := range []string{nsSessionGrants, nsGrants} {
		t.Run(ns, func(t *testing.T) {
			k := newGrantKit(t)
			tok, cookies := k.grant("ada", "openid", "")
			sess := k.session(cookies)
			failing := true
			k.f.p.State = fakeKV{KV: k.f.st, updateKV: func(ctx context.Context, n, key string, fn func([]byte) ([]byte, error)) error {
				if failing && n == ns {
					return errDiskGone
				}
				return k.f.st.UpdateKV(ctx, n, key, fn)
			}}
			msg := queryMsg(url.Values{"id_token_hint": {k.hint(sess.Sub, sess.AuthTime)}}, cookies)
			reqOf(msg)["path"] = "/oauth/logout"
			port, err := k.es.Process(t.Context(), k.f.clk.exec(), msg)
			if !errors.Is(err, errDiskGone) || port != "" || msg["cookies"] != nil || msg["redirect"] != nil {
				t.Fatalf("want the error, got %q %v %v", port, err, msg)
			}
			if k.session(cookies) == nil {
				t.Fatal("the session was ended though its grants may live")
			}
			// Once the store is back, the same logout works.
			failing = false
			k.logout(cookies)
			if why, _ := k.status(tok.grantID); why != grantRevoked {
				t.Fatalf("grant %q after retry", why)
			}
		})
	}
}

func TestSessionGrantIndex(t *testing.T) {
	k := newGrantKit(t)
	ctx := t.Context()
	key := hashKey(newSecret())
	t.Run("bounded", func(t *testing.T) {
		// A code issued in a session whose index is full is refused, and
		// spent: nothing is linked, no grant made.
		code, rec := k.codeWithRecord("ada", "openid")
		if rec.Session == "" {
			t.Fatalf("code record without a session: %v", rec)
		}
		key = rec.Session
		purge := k.f.clk.Now().Add(time.Hour).Unix()
		if err := updateRec(ctx, k.f.st, nsSessionGrants, key, func(*sessionGrantsRecord) (*sessionGrantsRecord, error) {
			return &sessionGrantsRecord{Grants: make([]sessionGrant, maxSessionGrants), Purge: purge}, nil
		}); err != nil {
			t.Fatal(err)
		}
		msg := exchangeMsg("web", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}})
		port, err := k.ex.Process(ctx, k.f.clk.exec(), msg)
		if err != nil || port != "invalid" || !strings.Contains(stringField(mapOf(msg["oauth_error"]), "error_description"), "too many authorizations") {
			t.Fatalf("exchange with the session index full: %s %v %v", port, msg["oauth_error"], err)
		}
		if g, err := getRec[grantRecord](ctx, k.f.st, nsGrants, rec.GrantID); err != nil || g != nil {
			t.Fatalf("grant made anyway: %v %v", g, err)
		}
		if c, _ := getRec[codeRecord](ctx, k.f.st, nsCodes, hashKey(code)); c == nil || !c.Used {
			t.Fatalf("code not spent: %v", c)
		}
	})
	t.Run("cleaned up with the grants", func(t *testing.T) {
		k.f.clk.Advance(2 * time.Hour)
		if _, err := cleanup(ctx, k.f.st, k.f.clk.Now()); err != nil {
			t.Fatal(err)
		}
		rec, err := getRec[sessionGrantsRecord](ctx, k.f.st, nsSessionGrants, key)
		if err != nil || rec != nil {
			t.Fatalf("%v %v", rec, err)
		}
	})
	t.Run("hostile keys in msg.session are not recorded", func(t *testing.T) {
		for _, bad := range []any{"", "../oidc_grants/x", hashKey("x") + "0", "ABCDEF" + hashKey("x")[6:], 42} {
			_, got, _ := sessionFromMsg(engine.Msg{"session": map[string]any{"sub": "s", "auth_time": 1, "key": bad}})
			if got != "" {
				t.Fatalf("%v accepted", bad)
			}
		}
	})
}
