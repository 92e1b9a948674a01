package oidc

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestUsersSetPassword(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	for _, tc := range []struct {
		name, user, password string
		err                  error
	}{
		{"short", "ada", "short", ErrBadUser},
		{"huge", "ada", strings.Repeat("x", maxPasswordLen+1), ErrBadUser},
		{"unknown user", "nobody", "a new long password", ErrNoUser},
		{"hostile name", "../" + strings.Repeat("x", 300), "a new long password", ErrNoUser},
		{"ok, name normalized", " ADA ", "a new long password", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.users.SetPassword(ctx, tc.user, tc.password); !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
		})
	}
	if _, err := f.users.Authenticate(ctx, "ada", testPassword); err == nil {
		t.Error("the old password still works")
	}
	u, err := f.users.Authenticate(ctx, "ada", "a new long password")
	if err != nil || u.Sub != f.ada.Sub {
		t.Errorf("new password: %+v %v", u, err)
	}
}

// TestSetPasswordSignsOut: an admin setting a person's password (the old
// one may be known to someone else) ends every provider session of that
// person and revokes the grants made in them, as a sign-out everywhere
// does (offline_access grants stay), and OnSessionsEnded hears of it once
// as EndedPasswordSet with the count, also when nothing was open. A
// refused password ends nothing and reports nothing; other people keep
// their sessions.
func TestSetPasswordSignsOut(t *testing.T) {
	k := newGrantKit(t)
	ctx := t.Context()
	k.withBob(t)
	take := k.hearEnded()
	online, cookiesA := k.grant("ada", "openid email", "")
	offline, _ := k.grant("ada", "openid offline_access", cookiesA)
	second, cookiesB := k.grant("ada", "openid", "")
	bobs, cookiesBob := k.grant("bob", "openid", "")

	for _, tc := range []struct {
		name, user, password string
		err                  error
	}{
		{"too short", "ada", "short", ErrBadUser},
		{"unknown user", "nobody", "a new long password", ErrNoUser},
	} {
		if _, err := k.f.users.SetPasswordSignedOut(ctx, tc.user, tc.password); !errors.Is(err, tc.err) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	if e := take(); len(e) != 0 || k.session(cookiesA) == nil {
		t.Fatalf("a refused password reported %+v or ended a session", e)
	}

	res, err := k.f.users.SetPasswordSignedOut(ctx, " Ada ", "a new long password")
	if err != nil || res.Sessions != 2 {
		t.Fatalf("SetPasswordSignedOut = %+v, %v; want 2 sessions ended", res, err)
	}
	if e := take(); len(e) != 1 || e[0] != (SessionsEnded{Username: "ada", Reason: EndedPasswordSet, Sessions: 2}) {
		t.Fatalf("reported %+v, want one password_set with 2 sessions", e)
	}
	for name, c := range map[string]string{"A": cookiesA, "B": cookiesB} {
		if k.session(c) != nil {
			t.Errorf("browser %s still holds a session signed in with the old password", name)
		}
	}
	k.wantGrants(t, []grantCase{
		{"a grant of the first session is revoked", online, grantRevoked, "logged_out", "invalid", "invalid_grant"},
		{"a grant of the second session is revoked", second, grantRevoked, "logged_out", "invalid", "invalid_grant"},
		{"an offline_access grant stays, as after a sign-out everywhere", offline, "", "", "ok", ""},
		{"bob's grant stays", bobs, "", "", "ok", ""},
	})
	if k.session(cookiesBob) == nil {
		t.Error("bob's session ended")
	}
	if idx, err := getRec[userSessionsRecord](ctx, k.f.st, nsUserSessions, k.f.ada.Sub); err != nil || idx != nil {
		t.Errorf("ada's session index after the reset: %+v %v", idx, err)
	}
	if _, err := k.f.users.Authenticate(ctx, "ada", testPassword); !errors.Is(err, ErrInvalidLogin) {
		t.Errorf("the old password: %v", err)
	}

	// Nothing open: the reset is still reported, with 0.
	if res, err := k.f.users.SetPasswordSignedOut(ctx, "ada", "another long password"); err != nil || res.Sessions != 0 {
		t.Fatalf("second reset: %+v %v", res, err)
	}
	if e := take(); len(e) != 1 || e[0] != (SessionsEnded{Username: "ada", Reason: EndedPasswordSet}) {
		t.Fatalf("a reset with nothing to end reported %+v, want it with 0 sessions", e)
	}

	t.Run("no provider blocks", func(t *testing.T) {
		users := NewUsers(k.f.st)
		var heard []SessionsEnded
		users.OnSessionsEnded = func(_ context.Context, e SessionsEnded) { heard = append(heard, e) }
		if res, err := users.SetPasswordSignedOut(ctx, "bob", "bob's new password"); err != nil || res.Sessions != 0 {
			t.Fatalf("%+v %v", res, err)
		}
		if len(heard) != 1 || heard[0] != (SessionsEnded{Username: "bob", Reason: EndedPasswordSet}) {
			t.Fatalf("reported %+v", heard)
		}
	})
}

// sessionDeleteFailsKV fails deleting provider sessions: a sign-out
// everywhere stops at its first session.
type sessionDeleteFailsKV struct{ KV }

func (k sessionDeleteFailsKV) DeleteKV(ctx context.Context, ns, key string) error {
	if ns == nsSessions {
		return errDiskGone
	}
	return k.KV.DeleteKV(ctx, ns, key)
}

// TestSetPasswordSignOutFails: when the sign-out after the new password
// fails, the password stays set (it is the safer half), the error says
// so (ErrSignOutIncomplete, wrapping the cause) and the report is marked
// incomplete; signing out again ends the session.
func TestSetPasswordSignOutFails(t *testing.T) {
	k := newGrantKit(t)
	ctx := t.Context()
	k.withBob(t)
	_, cookies := k.grant("ada", "openid", "")
	var got []SessionsEnded
	k.f.users.OnSessionsEnded = func(_ context.Context, e SessionsEnded) { got = append(got, e) }
	k.f.users.state = sessionDeleteFailsKV{k.f.st}
	_, err := k.f.users.SetPasswordSignedOut(ctx, "ada", "a new long password")
	if !errors.Is(err, ErrSignOutIncomplete) || !errors.Is(err, errDiskGone) {
		t.Fatalf("err %v, want ErrSignOutIncomplete wrapping the cause", err)
	}
	if len(got) != 1 || got[0] != (SessionsEnded{Username: "ada", Reason: EndedPasswordSet, Incomplete: true}) {
		t.Fatalf("reported %+v, want one incomplete password_set", got)
	}
	if _, err := k.f.users.Authenticate(ctx, "ada", "a new long password"); err != nil {
		t.Fatalf("the new password is not set: %v", err)
	}
	k.f.users.state = k.f.st
	if res, err := k.f.users.SignOut(ctx, "ada"); err != nil || res.Sessions != 1 || k.session(cookies) != nil {
		t.Fatalf("signing out again: %+v %v", res, err)
	}
}

// TestSignInRacingAPasswordReset: a sign-in that checked the old password
// but indexes its session only after a reset signed the person out (the
// reset's sign-out read the index first) must not leave a session signed
// in with the old password: the sign-in looks the user up again after
// indexing, sees the new password and ends its session.
func TestSignInRacingAPasswordReset(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	f.users.state = f.st
	msg := queryMsg(authorizeParams("web", webCB), "")
	if port, err := testAuthorizeBlock(f).Process(ctx, f.clk.exec(), msg); port != "ok" || err != nil {
		t.Fatalf("authorize: %s %v", port, err)
	}
	if port, err := (&sessionBlock{p: f.p, issuer: testIssuer}).Process(ctx, f.clk.exec(), msg); port != "login" || err != nil {
		t.Fatalf("session: %s %v", port, err)
	}
	if _, err := (&loginPageBlock{p: f.p, ttl: 10 * time.Minute}).Process(ctx, f.clk.exec(), msg); err != nil {
		t.Fatal(err)
	}
	tx, csrf := formFields(t, stringField(msg, "payload"))
	post := formMsg(url.Values{"tx": {tx}, "csrf": {csrf}, "username": {"ada"}, "password": {testPassword}}, cookieHeader(msg), "")

	// The admin's reset runs after the sign-in checked the password,
	// just before the sign-in indexes its session.
	var resetErr error
	f.st.setBetween(once(func(ctx context.Context, _ string) {
		_, resetErr = f.users.SetPasswordSignedOut(ctx, "ada", "a new long password")
	}, nsUserSessions))
	port, err := newTestLogin(f).Process(ctx, f.clk.exec(), post)
	f.st.setBetween(nil)
	if err != nil || resetErr != nil {
		t.Fatalf("login %v, reset %v", err, resetErr)
	}
	if port != "invalid" || f.p.readCookie(queryMsg(nil, cookieHeader(post)), sessionCookie) != "" {
		t.Errorf("the racing sign-in: port %s, cookies %q; want it refused, no session cookie", port, cookieHeader(post))
	}
	if res, err := f.users.SignOut(ctx, "ada"); err != nil || res.Sessions != 0 {
		t.Fatalf("after the race ada holds %d live sessions (%v), want none", res.Sessions, err)
	}
}
