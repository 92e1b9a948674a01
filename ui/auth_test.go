package ui

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/store"
)

// memKV is a store.KV in memory.
type memKV struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemKV() *memKV { return &memKV{m: map[string][]byte{}} }

func (k *memKV) GetKV(_ context.Context, ns, key string) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[ns+"/"+key]
	if !ok {
		return nil, store.ErrNotFound
	}
	return v, nil
}

func (k *memKV) SetKV(_ context.Context, ns, key string, val []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[ns+"/"+key] = val
	return nil
}

func (k *memKV) DeleteKV(_ context.Context, ns, key string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, ns+"/"+key)
	return nil
}

func (k *memKV) ListKV(_ context.Context, ns string) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for key := range k.m {
		if len(key) > len(ns) && key[:len(ns)+1] == ns+"/" {
			out = append(out, key[len(ns)+1:])
		}
	}
	return out, nil
}

func (k *memKV) UpdateKV(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, error)) error {
	old, _ := k.GetKV(ctx, ns, key)
	v, err := fn(old)
	if err != nil {
		return err
	}
	if v == nil {
		return k.DeleteKV(ctx, ns, key)
	}
	return k.SetKV(ctx, ns, key, v)
}

func (k *memKV) CreateKV(_ context.Context, ns, key string, val []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.m[ns+"/"+key]; ok {
		return store.ErrConflict
	}
	k.m[ns+"/"+key] = val
	return nil
}

func TestSessionExpiryAndSweep(t *testing.T) {
	kv := newMemKV()
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
	kv := newMemKV()
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
