package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/passhash"
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
	l := newLimiter(func() time.Time { return now }, nil)
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
	if ok, _ := l.allow("[2001:db8::1]:1"); !ok {
		t.Error("an IPv6 address is blocked")
	}
	now = now.Add(failWindow + time.Second)
	if ok, _ := l.allow("1.2.3.4"); !ok {
		t.Error("still blocked after the backoff")
	}
	// Many addresses failing once each: past accountFailures, addresses
	// that failed wait for the account's backoff; fresh ones do not.
	for i := range accountFailures {
		l.fail(fmt.Sprintf("10.0.0.%d", i))
	}
	for _, tc := range []struct {
		name, addr string
		ok         bool
	}{
		{"an address that failed once waits for the account", "10.0.0.1", false},
		{"fresh address", "192.0.2.1", true},
		{"fresh IPv6 /64", "[2001:db8:0:1::5]:443", true},
	} {
		if ok, wait := l.allow(tc.addr); ok != tc.ok || !ok && wait <= 0 {
			t.Errorf("%s: allow = %v, %s", tc.name, ok, wait)
		}
	}
	now = now.Add(2 * time.Minute)
	if ok, _ := l.allow("10.0.0.1"); !ok {
		t.Error("the account's backoff did not end")
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

// The fixed password (FLOWD_ADMIN_PASSWORD) is never argon2id-hashed, at
// start or at login; a stored one is checked in the shared pool, which
// answers ErrBusy when full.
func TestPasswordsHashingPool(t *testing.T) {
	var n atomic.Int32
	entered, hold := make(chan struct{}, 10), make(chan struct{})
	var holding atomic.Bool
	h := passhash.New(passhash.Options{Concurrency: 1, Wait: time.Millisecond, Observe: func(int) {
		n.Add(1)
		if holding.Load() {
			entered <- struct{}{}
			<-hold
		}
	}})
	fixed := NewPasswords(newMemKV(t), "the fixed password")
	fixed.SetHasher(h)
	for _, pw := range []string{"the fixed password", "wrong"} {
		if _, err := fixed.Check(t.Context(), pw); err != nil {
			t.Fatal(err)
		}
	}
	if n.Load() != 0 {
		t.Fatalf("the fixed password cost %d argon2id computations, want 0", n.Load())
	}
	stored := NewPasswords(newMemKV(t), "")
	stored.SetHasher(h)
	if err := stored.Set(t.Context(), "a long enough password"); err != nil {
		t.Fatal(err)
	}
	holding.Store(true)
	done := make(chan struct{})
	go func() { stored.Check(context.Background(), "first"); close(done) }() //nolint:errcheck
	<-entered
	if _, err := stored.Check(t.Context(), "a long enough password"); !errors.Is(err, passhash.ErrBusy) {
		t.Fatalf("full pool: %v, want ErrBusy", err)
	}
	close(hold)
	<-done
}
