package ui

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
	"github.com/flowd/flowd/store/storetest"
)

// newMemKV is the in-memory store with every update function called
// twice, as an optimistic backend may.
func newMemKV(t testing.TB) store.Store {
	return storetest.TwiceUpdates(memstore.MustNew(t, memstore.Options{}))
}

func TestSessionExpiryAndSweep(t *testing.T) {
	kv := newMemKV(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ss := &sessions{kv: kv, now: func() time.Time { return now }}
	id, sess, err := ss.create(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/admin/flows", nil)
	req.AddCookie(&http.Cookie{Name: cookieName, Value: id})
	if got, ok := ss.fromRequest(req); !ok || got.CSRF != sess.CSRF {
		t.Fatal("fresh session not found")
	}
	if _, err := kv.GetKV(t.Context(), nsSessions, id); err == nil {
		t.Error("the raw session id is a store key: it must be stored hashed")
	}
	id2, _, _ := ss.create(t.Context())
	now = now.Add(sessionTTL)
	if _, ok := ss.fromRequest(req); ok {
		t.Error("expired session accepted")
	}
	ss.sweep(t.Context())
	if keys, _ := kv.ListKV(t.Context(), nsSessions); len(keys) != 0 {
		t.Errorf("after sweep: %d sessions (second id %s...)", len(keys), id2[:4])
	}
}

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(func() time.Time { return now })
	for range ipFailures {
		if ok, _ := l.allow("1.2.3.4"); !ok {
			t.Fatal("blocked too early")
		}
		l.fail("1.2.3.4")
	}
	if ok, wait := l.allow("1.2.3.4"); ok || wait <= 0 {
		t.Errorf("not blocked after %d failures", ipFailures)
	}
	if ok, _ := l.allow("5.6.7.8"); !ok {
		t.Error("another address is blocked by one address's failures")
	}
	now = now.Add(failWindow + time.Second)
	if ok, _ := l.allow("1.2.3.4"); !ok {
		t.Error("still blocked after the window")
	}
	// Global backoff: many addresses failing together slow everyone down.
	for i := range globalFailures {
		l.fail("10.0.0." + string(rune('0'+i%10)) + string(rune('a'+i/10)))
	}
	if ok, _ := l.allow("9.9.9.9"); ok {
		t.Error("no global backoff")
	}
	now = now.Add(5 * time.Second)
	if ok, _ := l.allow("9.9.9.9"); !ok {
		t.Error("global backoff did not end")
	}
}

func TestPasswords(t *testing.T) {
	kv := newMemKV(t)
	p := NewPasswords(kv, "")
	if p.IsSet(t.Context()) {
		t.Fatal("set on an empty store")
	}
	if _, err := p.Check(t.Context(), "x"); err != ErrNoPassword {
		t.Errorf("Check without a password: %v", err)
	}
	if err := p.Set(t.Context(), "short"); err == nil {
		t.Error("short password accepted")
	}
	if err := p.Set(t.Context(), "a long enough password"); err != nil {
		t.Fatal(err)
	}
	b, _ := kv.GetKV(t.Context(), nsUI, keyPassword)
	if string(b[:10]) != "$argon2id$" {
		t.Errorf("stored %q", b)
	}
	for pw, want := range map[string]bool{"a long enough password": true, "a long enough passwore": false, "": false} {
		if ok, _ := p.Check(t.Context(), pw); ok != want {
			t.Errorf("Check(%q) = %v", pw, ok)
		}
	}
	fixed := NewPasswords(kv, "the fixed password")
	if ok, _ := fixed.Check(t.Context(), "a long enough password"); ok {
		t.Error("a fixed password must be the only one accepted")
	}
	if ok, _ := fixed.Check(t.Context(), "the fixed password"); !ok {
		t.Error("fixed password refused")
	}
}
