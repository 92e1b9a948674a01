package oidc

import (
	"context"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"
)

// These tests run an update function's two calls (testStore) with a
// concurrent change in between, as an optimistic backend sees a conflict:
// the first call saw the record before the change, the second after. The
// outcome must be the second call's.

// once runs fn the first time the hook sees ns, then never again.
func once(fn func(ctx context.Context, key string), ns string) func(string, string) {
	var o sync.Once
	return func(gotNS, key string) {
		if gotNS == ns {
			o.Do(func() { fn(context.Background(), key) })
		}
	}
}

func TestStoreCallsUpdateFunctionsTwice(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	calls := 0
	err := f.st.UpdateKV(ctx, "oidc_test", "k", func(old []byte) ([]byte, error) {
		calls++
		return []byte("v"), nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("calls %d, err %v", calls, err)
	}
	seen := ""
	f.st.setBetween(once(func(ctx context.Context, key string) { f.st.Store.SetKV(ctx, "oidc_test", key, []byte("changed")) }, "oidc_test"))
	defer f.st.setBetween(nil)
	f.st.UpdateKV(ctx, "oidc_test", "k", func(old []byte) ([]byte, error) { seen = string(old); return old, nil })
	if seen != "changed" {
		t.Fatalf("the second call saw %q, want the concurrent change", seen)
	}
}

func TestUpdateFunctionsAfterAConflict(t *testing.T) {
	t.Run("refresh racing a logout issues nothing", func(t *testing.T) {
		k := newRefreshKit(t, time.Minute)
		k.f.st.setBetween(once(func(ctx context.Context, gid string) {
			if err := revokeGrant(ctx, k.f.st.Store, gid, "web", "logged_out", k.f.clk.Now(), time.Hour); err != nil {
				t.Error(err)
			}
		}, nsGrants))
		defer k.f.st.setBetween(nil)
		if port, m := k.refresh("web", k.rt1); port != "invalid" || m["refresh_token"] != nil || m["grant"] != nil {
			t.Fatalf("a refresh whose grant was revoked meanwhile: %s %v", port, m)
		}
	})
	t.Run("a logout confirmation spent by a concurrent answer", func(t *testing.T) {
		k := newLogoutKit(t)
		victim, _ := k.browser()
		token := k.ask(url.Values{"client_id": {"web"}}, victim)
		k.f.st.setBetween(once(func(ctx context.Context, key string) {
			if err := k.f.st.Store.DeleteKV(ctx, nsLogout, key); err != nil {
				t.Error(err)
			}
		}, nsLogout))
		defer k.f.st.setBetween(nil)
		wantRefused(t, k.post(url.Values{"csrf": {token}, "action": {"logout"}}, victim))
		if k.session(victim) == nil {
			t.Fatal("the session ended on a confirmation another request had spent")
		}
	})
	t.Run("a sign-in form posted twice at once signs in once", func(t *testing.T) {
		f := newFixture(t, testIssuer)
		_, m := getAuthorize(t, f, authorizeParams("web", webCB), "")
		tx, csrf, value := formOf(t, m)
		f.st.setBetween(once(func(ctx context.Context, key string) {
			if err := f.st.Store.SetKV(ctx, nsTx, key, []byte(`{"purge":9999999999}`)); err != nil {
				t.Error(err)
			}
		}, nsTx))
		defer f.st.setBetween(nil)
		post := formMsg(url.Values{"tx": {tx}, "csrf": {csrf}, "username": {"ada"}, "password": {testPassword}}, "__Host-flowd_tx_"+tx+"="+value, "")
		if port, err := newTestLogin(f).Process(t.Context(), f.clk.exec(), post); err != nil || port != "invalid" || post["session"] != nil {
			t.Fatalf("%s %v", port, err)
		}
	})
	t.Run("a throttle refusal gone by the second call", func(t *testing.T) {
		f := newFixture(t, testIssuer)
		ctx := t.Context()
		th := throttle{free: 1, ipFree: 1, base: time.Minute, max: time.Hour}
		now := f.clk.Now()
		th.reserve(ctx, f.st, "u:x", th.free, now)
		f.st.setBetween(once(func(ctx context.Context, key string) { f.st.Store.DeleteKV(ctx, nsThrottle, key) }, nsThrottle))
		defer f.st.setBetween(nil)
		if wait, err := th.reserve(ctx, f.st, "u:x", th.free, now); wait != 0 || err != nil {
			t.Fatalf("wait %v, err %v: the count was reset meanwhile", wait, err)
		}
	})
	t.Run("a code spent by a concurrent exchange revokes what that one made", func(t *testing.T) {
		k := newGrantKit(t)
		code, rec := k.codeWithRecord("ada", "openid")
		// Between the two calls another node's exchange commits: the code
		// spent and its grant live, in one transaction.
		k.f.st.setBetween(once(func(ctx context.Context, key string) {
			spent := *rec
			spent.Used = true
			if err := putRec(ctx, k.f.st.Store, nsCodes, key, &spent); err != nil {
				t.Error(err)
			}
			g := &grantRecord{ID: rec.GrantID, ClientID: "web", Sub: rec.Sub, Scope: rec.Scope, RefreshGen: 1,
				RefreshExpires: k.f.clk.Now().Add(time.Hour).Unix(), Purge: k.f.clk.Now().Add(time.Hour).Unix()}
			if err := putRec(ctx, k.f.st.Store, nsGrants, rec.GrantID, g); err != nil {
				t.Error(err)
			}
		}, nsCodes))
		defer k.f.st.setBetween(nil)
		if port, tok := k.exchange(code); port != "invalid" || tok.grantID != "" || tok.refresh != "" {
			t.Fatalf("an exchange of a code spent meanwhile: %s %v", port, tok)
		}
		g, err := getRec[grantRecord](t.Context(), k.f.st, nsGrants, rec.GrantID)
		if err != nil || g == nil || g.Revoked != "code_replayed" {
			t.Fatalf("the other exchange's grant after the replay: %+v %v, want revoked code_replayed", g, err)
		}
	})
	t.Run("a logout between the calls refuses the exchange", func(t *testing.T) {
		k := newGrantKit(t)
		code, rec := k.codeWithRecord("ada", "openid")
		k.f.st.setBetween(once(func(ctx context.Context, key string) {
			if _, err := revokeSessionGrants(ctx, k.f.st.Store, key, k.f.clk.Now()); err != nil {
				t.Error(err)
			}
		}, nsSessionGrants))
		defer k.f.st.setBetween(nil)
		if port, tok := k.exchange(code); port != "invalid" || tok.grantID != "" || tok.refresh != "" {
			t.Fatalf("an exchange whose session logged out meanwhile: %s %v", port, tok)
		}
		if g, err := getRec[grantRecord](t.Context(), k.f.st, nsGrants, rec.GrantID); err != nil || g != nil {
			t.Fatalf("grant %+v %v, want none", g, err)
		}
		if sg, _ := getRec[sessionGrantsRecord](t.Context(), k.f.st, nsSessionGrants, rec.Session); sg == nil || len(sg.Grants) != 0 {
			t.Fatalf("session index %+v, want ended without the refused grant", sg)
		}
	})
	t.Run("cleanup counts what it deleted", func(t *testing.T) {
		f := newFixture(t, testIssuer)
		ctx := t.Context()
		now := f.clk.Now()
		putRec(ctx, f.st, nsCodes, "a", &codeRecord{Purge: now.Add(-time.Second).Unix()})
		putRec(ctx, f.st, nsCodes, "b", &codeRecord{Purge: now.Add(-time.Second).Unix()})
		// "b" is refreshed by a concurrent request: kept, and not counted.
		f.st.setBetween(func(ns, key string) {
			if ns == nsCodes && key == "b" {
				f.st.Store.SetKV(context.Background(), ns, key, []byte(`{"purge":9999999999}`))
			}
		})
		defer f.st.setBetween(nil)
		counts, err := cleanup(ctx, f.st, now)
		keys, _ := f.st.ListKV(ctx, nsCodes)
		if err != nil || counts[nsCodes] != 1 || !slices.Equal(keys, []string{"b"}) {
			t.Fatalf("counts %v, kept %v, err %v", counts, keys, err)
		}
	})
}
