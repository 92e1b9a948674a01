package oidc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

// fakeKV is a KV whose calls go to the function fields when set, else to
// the wrapped store.
type fakeKV struct {
	KV
	getKV    func(ctx context.Context, ns, key string) ([]byte, error)
	updateKV func(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, error)) error
}

func (k fakeKV) UpdateKV(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, error)) error {
	if k.updateKV != nil {
		return k.updateKV(ctx, ns, key, fn)
	}
	return k.KV.UpdateKV(ctx, ns, key, fn)
}

func (k fakeKV) GetKV(ctx context.Context, ns, key string) ([]byte, error) {
	if k.getKV != nil {
		return k.getKV(ctx, ns, key)
	}
	return k.KV.GetKV(ctx, ns, key)
}

var errDiskGone = errors.New("disk gone")

func TestGrantActive(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	now := f.clk.Now()
	later := now.Add(time.Hour).Unix()
	live, revoked, tombstone, expired, expiredNow, gone, unknown := newID(), newID(), newID(), newID(), newID(), newID(), newID()
	bob, err := f.users.Add(ctx, User{Username: "bob"}, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	for id, g := range map[string]*grantRecord{
		live:       {ClientID: "web", Sub: f.ada.Sub, Purge: later},
		revoked:    {ClientID: "web", Sub: f.ada.Sub, Purge: later},
		expired:    {ClientID: "web", Sub: f.ada.Sub, Purge: now.Add(-time.Second).Unix()},
		expiredNow: {ClientID: "web", Sub: f.ada.Sub, Purge: now.Unix()}, // cleanup deletes it now
		gone:       {ClientID: "web", Sub: bob.Sub, Purge: later},
	} {
		g.ID = id
		if err := putRec(ctx, f.st, nsGrants, id, g); err != nil {
			t.Fatal(err)
		}
	}
	if err := revokeGrant(ctx, f.st, revoked, "web", "refresh_token_reused", now, time.Hour); err != nil {
		t.Fatal(err)
	}
	// A replay that raced the first exchange leaves a revoked record
	// without client or subject.
	if err := revokeGrant(ctx, f.st, tombstone, "web", "code_replayed", now, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := f.users.Remove(ctx, "bob"); err != nil {
		t.Fatal(err)
	}

	person := func(gid any) map[string]any {
		return map[string]any{"sub": f.ada.Sub, "client_id": "web", "scope": "openid", "gid": gid}
	}
	with := func(c map[string]any, k string, v any) map[string]any {
		c[k] = v
		return c
	}
	without := func(c map[string]any, k string) map[string]any {
		delete(c, k)
		return c
	}
	for _, tc := range []struct {
		name   string
		claims map[string]any
		port   string
		reason string
	}{
		{"live grant", person(live), "active", ""},
		{"client credentials: no gid", map[string]any{"sub": "svc", "client_id": "svc", "scope": "read"}, "active", ""},
		{"revoked grant", person(revoked), "inactive", grantRevoked},
		{"revoked tombstone", person(tombstone), "inactive", grantRevoked},
		{"unknown grant", person(unknown), "inactive", grantUnknown},
		{"expired grant", person(expired), "inactive", grantExpired},
		{"grant expiring this second", person(expiredNow), "inactive", grantExpired},
		{"user removed", with(person(gone), "sub", bob.Sub), "inactive", userUnknown},
		{"another client's grant", with(person(live), "client_id", "other"), "inactive", grantMismatch},
		{"another person's grant", with(person(live), "sub", bob.Sub), "inactive", grantMismatch},
		{"no client_id", without(person(live), "client_id"), "inactive", grantMismatch},
		{"no sub", without(person(live), "sub"), "inactive", grantMismatch},
		{"gid null", person(nil), "inactive", grantMalformed},
		{"gid number", person(float64(42)), "inactive", grantMalformed},
		{"gid true", person(true), "inactive", grantMalformed},
		{"gid list", person([]any{live}), "inactive", grantMalformed},
		{"gid object", person(map[string]any{"id": live}), "inactive", grantMalformed},
		{"gid empty", person(""), "inactive", grantMalformed},
		{"gid short", person("g1"), "inactive", grantMalformed},
		{"gid too long", person(live + "A"), "inactive", grantMalformed},
		{"gid huge", person(strings.Repeat("A", 1<<16)), "inactive", grantMalformed},
		{"gid path", person("../../../../oidc_users/ada"), "inactive", grantMalformed},
		{"gid padded", person(live[:21] + "="), "inactive", grantMalformed},
		{"gid with NUL", person(live[:21] + "\x00"), "inactive", grantMalformed},
		{"gid with space", person(" " + live[1:]), "inactive", grantMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &grantActiveBlock{p: f.p}
			msg := engine.Msg{"claims": tc.claims, "token_header": map[string]any{"alg": "RS256"}}
			port, err := b.Process(ctx, f.clk.exec(), msg)
			if err != nil {
				t.Fatal(err)
			}
			inv := mapOf(msg["invalid"])
			_, hasClaims := msg["claims"]
			_, hasHeader := msg["token_header"]
			if port != tc.port || stringField(inv, "reason") != tc.reason || (tc.reason != "") != (stringField(inv, "detail") != "") ||
				hasClaims != (tc.port == "active") || hasHeader != (tc.port == "active") {
				t.Fatalf("port %q, msg %v; want %q %q", port, msg, tc.port, tc.reason)
			}
		})
	}

	t.Run("the clock moves on", func(t *testing.T) {
		b := &grantActiveBlock{p: f.p}
		x := &engine.Exec{Started: time.Unix(later, 0)}
		port, err := b.Process(ctx, x, engine.Msg{"claims": person(live)})
		if err != nil || port != "inactive" {
			t.Fatalf("%s %v", port, err)
		}
	})
}

// TestGrantActiveFailsClosed: what cannot be checked is an error, and the
// message loses its claims, so no branch can answer them as active.
func TestGrantActiveFailsClosed(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	gid := newID()
	if err := putRec(ctx, f.st, nsGrants, gid, &grantRecord{ID: gid, ClientID: "web", Sub: f.ada.Sub,
		Purge: f.clk.Now().Add(time.Hour).Unix()}); err != nil {
		t.Fatal(err)
	}
	corrupt := newID()
	if err := f.st.UpdateKV(ctx, nsGrants, corrupt, func([]byte) ([]byte, error) { return []byte(`{"id":`), nil }); err != nil {
		t.Fatal(err)
	}
	failGrants := fakeKV{KV: f.st, getKV: func(ctx context.Context, ns, key string) ([]byte, error) {
		if ns == nsGrants {
			return nil, errDiskGone
		}
		return f.st.GetKV(ctx, ns, key)
	}}
	failUsers := fakeKV{KV: f.st, getKV: func(ctx context.Context, ns, key string) ([]byte, error) {
		if ns == nsUserSubs {
			return nil, errDiskGone
		}
		return f.st.GetKV(ctx, ns, key)
	}}
	person := map[string]any{"sub": f.ada.Sub, "client_id": "web", "gid": gid}
	for _, tc := range []struct {
		name   string
		state  KV
		users  *Users
		msg    engine.Msg
		err    error  // wanted in the chain; nil: any
		errHas string // wanted in the text
	}{
		{"grant store fails", failGrants, f.users, engine.Msg{"claims": person}, errDiskGone, "oidc.grant_active"},
		{"user store fails", f.st, NewUsers(failUsers), engine.Msg{"claims": person}, errDiskGone, "oidc.grant_active"},
		{"corrupt grant record", f.st, f.users, engine.Msg{"claims": map[string]any{"sub": f.ada.Sub, "client_id": "web", "gid": corrupt}},
			nil, "oidc_grants record"},
		{"no claims", f.st, f.users, engine.Msg{}, nil, "put jose.validate before it"},
		{"claims not an object", f.st, f.users, engine.Msg{"claims": "eyJ..."}, nil, "put jose.validate before it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &provider{Deps: f.p.Deps, issuer: f.p.issuer, secure: f.p.secure, signer: f.p.signer, log: f.p.log}
			p.State, p.Users = tc.state, tc.users
			b := &grantActiveBlock{p: p}
			port, err := b.Process(ctx, f.clk.exec(), tc.msg)
			if err == nil || port != "" || (tc.err != nil && !errors.Is(err, tc.err)) || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("port %q, err %v; want an error with %q", port, err, tc.errHas)
			}
			if _, ok := tc.msg["claims"]; ok {
				t.Fatalf("claims kept on the error branch: %v", tc.msg)
			}
		})
	}
}
