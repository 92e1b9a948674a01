package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/flowd/flowd/store"
)

const keyAdminToken = "admin_token_sha256"

// NewToken returns a fresh random API token.
func NewToken() string {
	var b [32]byte
	rand.Read(b[:])
	return "fd_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// Tokens checks admin API tokens. Tokens are 256-bit random strings, so a
// SHA-256 of the token is what the store keeps (not the token); comparison
// is constant time.
type Tokens struct {
	// OnChange, if set, hears that the admin API token was replaced
	// (never the token), after it is stored (the audit log).
	OnChange func(ctx context.Context)
	st       store.KV
	fixed    []byte // sha256 of FLOWD_ADMIN_TOKEN, if set
	hash     atomic.Pointer[[]byte]
}

// NewTokens returns a checker. A non-empty fixed token (FLOWD_ADMIN_TOKEN)
// is the only one accepted.
func NewTokens(st store.KV, fixed string) *Tokens {
	t := &Tokens{st: st}
	if fixed != "" {
		h := sha256.Sum256([]byte(fixed))
		t.fixed = h[:]
	}
	return t
}

// Ensure makes sure a token exists. It returns a new token (to be shown
// once) when none was stored and no fixed token is set, else "".
func (t *Tokens) Ensure(ctx context.Context) (string, error) {
	if t.fixed != nil {
		return "", nil
	}
	h, err := t.st.GetKV(ctx, nsSystem, keyAdminToken)
	if err == nil {
		t.hash.Store(&h)
		return "", nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	tok := NewToken()
	return tok, t.Set(ctx, tok)
}

// Fixed reports whether the token is fixed (FLOWD_ADMIN_TOKEN).
func (t *Tokens) Fixed() bool { return t.fixed != nil }

// Set replaces the stored token.
func (t *Tokens) Set(ctx context.Context, token string) error {
	h := sha256.Sum256([]byte(token))
	hs := h[:]
	if err := t.st.SetKV(ctx, nsSystem, keyAdminToken, hs); err != nil {
		return fmt.Errorf("store admin token: %w", err)
	}
	t.hash.Store(&hs)
	if t.OnChange != nil {
		t.OnChange(ctx)
	}
	return nil
}

// Reload re-reads the stored token hash, for a change another node made
// (a rotated token must be refused everywhere at once). A missing record
// clears the cache: Check then reads through.
func (t *Tokens) Reload(ctx context.Context) error {
	if t.fixed != nil {
		return nil
	}
	h, err := t.st.GetKV(ctx, nsSystem, keyAdminToken)
	if errors.Is(err, store.ErrNotFound) {
		t.hash.Store(nil)
		return nil
	}
	if err != nil {
		t.hash.Store(nil) // fail to reading through, never to a stale token
		return fmt.Errorf("reload admin token: %w", err)
	}
	t.hash.Store(&h)
	return nil
}

// Hook keeps the cached token hash in step with the store.
func (t *Tokens) Hook() Hook {
	return Hook{Name: "admin token", Match: store.Filter{Kinds: []store.Kind{store.KindKV}, Group: nsSystem},
		Changed: func(ctx context.Context, c store.Change) {
			if c.Name == keyAdminToken {
				t.Reload(ctx) //nolint:errcheck // Reload cleared the cache on failure
			}
		},
		Resync: func(ctx context.Context) { t.Reload(ctx) }, //nolint:errcheck // as above
	}
}

// Check reports whether token is the admin token.
func (t *Tokens) Check(ctx context.Context, token string) bool {
	if token == "" {
		return false
	}
	h := sha256.Sum256([]byte(token))
	want := t.fixed
	if want == nil {
		p := t.hash.Load()
		if p == nil {
			stored, err := t.st.GetKV(ctx, nsSystem, keyAdminToken)
			if err != nil {
				return false
			}
			// CompareAndSwap: a Reload that ran meanwhile (a rotation
			// seen through the feed) wins over this older read.
			t.hash.CompareAndSwap(nil, &stored)
			p = &stored
		}
		want = *p
	}
	return subtle.ConstantTimeCompare(h[:], want) == 1
}
