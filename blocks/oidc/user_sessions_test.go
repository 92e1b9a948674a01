package oidc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestSignOutEverywhere: every provider session of the user ends (each
// browser must sign in again) and their grants are revoked as by a
// logout; offline grants, other users and sessions made afterwards are
// left alone; repeating it is harmless.
func TestSignOutEverywhere(t *testing.T) {
	k := newGrantKit(t)
	ctx := t.Context()
	k.withBob(t)
	online, cookiesA := k.grant("ada", "openid email", "")
	offline, _ := k.grant("ada", "openid offline_access", cookiesA)
	otherBrowser, cookiesB := k.grant("ada", "openid", "")
	bobs, cookiesBob := k.grant("bob", "openid", "")
	// A session that logged out on its own: its index entry names nothing.
	_, cookiesC := k.grant("ada", "openid", "")
	k.logout(cookiesC)

	res, err := k.f.users.SignOut(ctx, "ADA ") // usernames compare normalized
	if err != nil || res.Sessions != 2 {
		t.Fatalf("SignOut = %+v, %v; want 2 sessions", res, err)
	}
	k.wantGrants(t, []grantCase{
		{"browser A's grant is revoked", online, grantRevoked, "logged_out", "invalid", "invalid_grant"},
		{"browser B's grant is revoked", otherBrowser, grantRevoked, "logged_out", "invalid", "invalid_grant"},
		{"an offline_access grant survives", offline, "", "", "ok", ""},
		{"bob survives", bobs, "", "", "ok", ""},
	})
	for name, c := range map[string]string{"A": cookiesA, "B": cookiesB} {
		if k.session(c) != nil {
			t.Errorf("browser %s is still signed in", name)
		}
	}
	if k.session(cookiesBob) == nil {
		t.Error("bob was signed out")
	}
	if idx, err := getRec[userSessionsRecord](ctx, k.f.st, nsUserSessions, k.f.ada.Sub); err != nil || idx != nil {
		t.Errorf("ada's index after the sign-out: %+v %v", idx, err)
	}
	// Signing in again works and is indexed; a second sign-out ends it.
	_, cookiesD := k.grant("ada", "openid", "")
	if k.session(cookiesD) == nil {
		t.Fatal("no new session")
	}
	if res, err := k.f.users.SignOut(ctx, "ada"); err != nil || res.Sessions != 1 || k.session(cookiesD) != nil {
		t.Fatalf("second SignOut = %+v, %v", res, err)
	}
	if res, err := k.f.users.SignOut(ctx, "ada"); err != nil || res.Sessions != 0 {
		t.Fatalf("SignOut with nothing to end = %+v, %v", res, err)
	}

	t.Run("unknown user", func(t *testing.T) {
		if _, err := k.f.users.SignOut(ctx, "nobody"); !errors.Is(err, ErrNoUser) {
			t.Fatalf("err = %v, want ErrNoUser", err)
		}
	})
	t.Run("registry not registered", func(t *testing.T) {
		if _, err := NewUsers(k.f.st).SignOut(ctx, "ada"); !errors.Is(err, ErrNotRegistered) {
			t.Fatalf("err = %v, want ErrNotRegistered", err)
		}
	})
}

// storeSession stores a session as oidc.login does and indexes it.
func storeSession(t *testing.T, f *fixture, sub string, i int, expires time.Time) string {
	t.Helper()
	return storeSessionIn(t, f, f.st, sub, i, expires)
}

// storeSessionIn is storeSession on kv (the bare store inside a testStore
// hook, which must not re-enter the hook).
func storeSessionIn(t *testing.T, f *fixture, kv KV, sub string, i int, expires time.Time) string {
	t.Helper()
	key := hashKey(fmt.Sprintf("cookie-%03d-%s", i, sub))
	s := &sessionRecord{Sub: sub, AuthTime: f.clk.Now().Unix(), Expires: expires.Unix(), Purge: expires.Unix()}
	if err := putRec(t.Context(), kv, nsSessions, key, s); err != nil {
		t.Fatal(err)
	}
	if _, err := indexSession(t.Context(), kv, sub, key, s, f.clk.Now()); err != nil {
		t.Fatal(err)
	}
	return key
}

// TestUserSessionIndexBounded: the index drops expired entries and, past
// maxUserSessions, ends the oldest session rather than forget it.
func TestUserSessionIndexBounded(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	now := f.clk.Now()
	expired := storeSession(t, f, "sub-1", 0, now.Add(-time.Minute))
	var keys []string
	for i := 1; i <= maxUserSessions; i++ {
		keys = append(keys, storeSession(t, f, "sub-1", i, now.Add(time.Duration(i)*time.Minute)))
	}
	idx, err := getRec[userSessionsRecord](ctx, f.st, nsUserSessions, "sub-1")
	if err != nil || idx == nil || len(idx.Sessions) != maxUserSessions {
		t.Fatalf("index: %v, %v", idx, err)
	}
	for _, e := range idx.Sessions {
		if e.Key == expired {
			t.Fatal("an expired session stayed in the index")
		}
	}
	// Sign-in number maxUserSessions+1 ends the oldest live session.
	storeSession(t, f, "sub-1", maxUserSessions+1, now.Add(time.Hour*24))
	idx, _ = getRec[userSessionsRecord](ctx, f.st, nsUserSessions, "sub-1")
	if len(idx.Sessions) != maxUserSessions || idx.Sessions[0].Key != keys[1] {
		t.Fatalf("index after one more: %d entries, first %s", len(idx.Sessions), idx.Sessions[0].Key)
	}
	if s, _ := getRec[sessionRecord](ctx, f.st, nsSessions, keys[0]); s != nil {
		t.Error("the evicted oldest session still lives")
	}
	if s, _ := getRec[sessionRecord](ctx, f.st, nsSessions, keys[1]); s == nil {
		t.Error("the second oldest session was ended too")
	}
	if idx.Purge < now.Add(24*time.Hour).Unix() {
		t.Errorf("purge %d is before the newest session's expiry", idx.Purge)
	}
}

// TestUserSessionIndexRetrySafe: index updates run twice with a
// concurrent change in between (an optimistic store's conflict): nothing
// the first call saw leaks into the result.
func TestUserSessionIndexRetrySafe(t *testing.T) {
	t.Run("two sign-ins at once are both indexed", func(t *testing.T) {
		f := newFixture(t, testIssuer)
		exp := f.clk.Now().Add(time.Hour)
		var other string
		f.st.setBetween(once(func(ctx context.Context, _ string) {
			other = storeSessionIn(t, f, f.st.Store, "sub-2", 2, exp)
		}, nsUserSessions))
		first := storeSession(t, f, "sub-2", 1, exp)
		f.st.setBetween(nil)
		idx, err := getRec[userSessionsRecord](t.Context(), f.st, nsUserSessions, "sub-2")
		if err != nil || idx == nil || len(idx.Sessions) != 2 || idx.Sessions[0].Key == idx.Sessions[1].Key {
			t.Fatalf("index %+v %v; want %s and %s", idx, err, first, other)
		}
	})
	t.Run("a sign-in during a sign-out stays indexed", func(t *testing.T) {
		f := newFixture(t, testIssuer)
		f.users.state = f.st
		exp := f.clk.Now().Add(time.Hour)
		old := storeSession(t, f, f.ada.Sub, 1, exp)
		var fresh string
		f.st.setBetween(once(func(ctx context.Context, _ string) {
			fresh = storeSessionIn(t, f, f.st.Store, f.ada.Sub, 2, exp)
		}, nsUserSessions))
		res, err := f.users.SignOut(t.Context(), "ada")
		f.st.setBetween(nil)
		if err != nil || res.Sessions != 1 {
			t.Fatalf("SignOut = %+v, %v", res, err)
		}
		idx, _ := getRec[userSessionsRecord](t.Context(), f.st, nsUserSessions, f.ada.Sub)
		if idx == nil || len(idx.Sessions) != 1 || idx.Sessions[0].Key != fresh {
			t.Fatalf("index %+v; want only the session made during the sign-out", idx)
		}
		if s, _ := getRec[sessionRecord](t.Context(), f.st, nsSessions, old); s != nil {
			t.Error("the old session lives")
		}
	})
}

// TestRemoveSignsOut: removing a user signs them out everywhere first
// (sessions deleted, their grants revoked as by a logout, the index gone)
// and says how many sessions it ended; other users keep theirs. Without
// the provider blocks there are no sessions, and removal still works.
func TestRemoveSignsOut(t *testing.T) {
	k := newGrantKit(t)
	ctx := t.Context()
	k.withBob(t)
	adaSub := k.f.ada.Sub
	a1, cookiesA := k.grant("ada", "openid email", "")
	a2, cookiesB := k.grant("ada", "openid", "")
	bobs, cookiesBob := k.grant("bob", "openid", "")

	res, err := k.f.users.RemoveSignedOut(ctx, "Ada")
	if err != nil || res.Sessions != 2 {
		t.Fatalf("RemoveSignedOut = %+v, %v; want 2 sessions", res, err)
	}
	if _, err := k.f.users.Get(ctx, "ada"); !errors.Is(err, ErrNoUser) {
		t.Fatalf("ada still there: %v", err)
	}
	for name, tok := range map[string]tokens{"first": a1, "second": a2} {
		if why, reason := k.status(tok.grantID); why != grantRevoked || reason != "logged_out" {
			t.Errorf("%s grant: %q %q, want revoked as by a logout", name, why, reason)
		}
	}
	for name, c := range map[string]string{"A": cookiesA, "B": cookiesB} {
		if k.session(c) != nil {
			t.Errorf("browser %s still holds a session", name)
		}
	}
	if idx, err := getRec[userSessionsRecord](ctx, k.f.st, nsUserSessions, adaSub); err != nil || idx != nil {
		t.Errorf("ada's session index after removal: %+v %v", idx, err)
	}
	if why, _ := k.status(bobs.grantID); why != "" || k.session(cookiesBob) == nil {
		t.Errorf("bob was touched: grant %q", why)
	}
	if err := k.f.users.Remove(ctx, "ada"); !errors.Is(err, ErrNoUser) {
		t.Errorf("second removal: %v, want ErrNoUser", err)
	}

	t.Run("no provider blocks", func(t *testing.T) {
		users := NewUsers(k.f.st)
		if res, err := users.RemoveSignedOut(ctx, "bob"); err != nil || res.Sessions != 0 {
			t.Fatalf("%+v %v", res, err)
		}
	})
}

// TestSessionsEndedReported: OnSessionsEnded hears of every session
// flowd or an admin ends, once, with a reference to it and never its
// cookie or a token: the one a sign-in past maxUserSessions ends (not an
// entry whose session had logged out on its own), a sign-out everywhere,
// a removal (only when it ended sessions).
func TestSessionsEndedReported(t *testing.T) {
	k := newGrantKit(t)
	ctx := t.Context()
	k.withBob(t)
	take := k.hearEnded()
	signedIn := k.f.clk.Now().UTC()
	oldest, cookiesA := k.grant("ada", "openid", "")
	k.f.clk.Advance(time.Minute)
	_, cookiesB := k.grant("ada", "openid", "")
	k.logout(cookiesB) // its index entry stays, naming nothing
	keyA := hashKey(k.f.p.readCookie(queryMsg(nil, cookiesA), sessionCookie))
	for i := range maxUserSessions - 2 {
		storeSession(t, k.f, k.f.ada.Sub, i, k.f.clk.Now().Add(2*time.Hour))
	}
	if e := take(); len(e) != 0 {
		t.Fatalf("reported before the cap: %+v", e)
	}

	// Sign-in 101 ends A, the oldest live session: one report naming it.
	k.f.clk.Advance(time.Minute)
	newest, cookiesC := k.grant("ada", "openid", "")
	want := SessionsEnded{Username: "ada", Reason: EndedSessionCap, Sessions: 1, Session: keyA[:16], SignedIn: signedIn}
	e := take()
	if len(e) != 1 || e[0] != want {
		t.Fatalf("sign-in past the cap reported %+v, want exactly %+v", e, want)
	}
	if k.session(cookiesA) != nil {
		t.Fatal("the oldest session lives on")
	}
	if why, reason := k.status(oldest.grantID); why != grantRevoked || reason != "logged_out" {
		t.Errorf("the ended session's grant: %q %q", why, reason)
	}
	// Nothing secret in it: no cookie of any browser, no refresh token,
	// not the session's whole store key.
	secrets := []string{oldest.refresh, newest.refresh, keyA}
	for _, c := range []string{cookiesA, cookiesB, cookiesC} {
		for part := range strings.SplitSeq(c, ";") {
			if _, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok && v != "" {
				secrets = append(secrets, v)
			}
		}
	}
	report := fmt.Sprintf("%+v %#v", e[0], e[0])
	for _, s := range secrets {
		if strings.Contains(report, s) {
			t.Errorf("the report holds a secret: %q", s)
		}
	}

	// Sign-in 102 drops B's entry: its session had logged out, so
	// nothing ended and nothing is reported.
	k.grant("ada", "openid", "")
	if e := take(); len(e) != 0 {
		t.Fatalf("dropping a logged-out session's entry reported %+v", e)
	}

	res, err := k.f.users.SignOut(ctx, "ada")
	if err != nil {
		t.Fatal(err)
	}
	if e := take(); len(e) != 1 || e[0] != (SessionsEnded{Username: "ada", Reason: EndedSignedOut, Sessions: res.Sessions}) || res.Sessions != maxUserSessions {
		t.Fatalf("sign-out everywhere (%d sessions) reported %+v", res.Sessions, e)
	}
	if _, err := k.f.users.SignOut(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	if e := take(); len(e) != 1 || e[0] != (SessionsEnded{Username: "ada", Reason: EndedSignedOut}) {
		t.Fatalf("an admin's sign-out with nothing to end reported %+v, want it with 0 sessions", e)
	}

	k.grant("bob", "openid", "")
	if _, err := k.f.users.RemoveSignedOut(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := k.f.users.RemoveSignedOut(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	if e := take(); len(e) != 1 || e[0] != (SessionsEnded{Username: "bob", Reason: EndedUserRemoved, Sessions: 1}) {
		t.Fatalf("removals reported %+v, want bob's one session only", e)
	}
}

// hearEnded sets OnSessionsEnded to record its reports; take returns
// those made since the last take.
func (k *grantKit) hearEnded() (take func() []SessionsEnded) {
	var got []SessionsEnded
	k.f.users.OnSessionsEnded = func(_ context.Context, e SessionsEnded) { got = append(got, e) }
	return func() []SessionsEnded {
		out := got
		got = nil
		return out
	}
}
