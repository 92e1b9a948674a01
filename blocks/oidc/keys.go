package oidc

import (
	"context"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/flowd/flowd/store"
)

// The provider key is 32 random bytes kept as one sealed secret in the
// store (encrypted at rest with the master key), made on first use and
// read once per process. Two keys are derived from it with HKDF-SHA256,
// one per purpose, so that neither can stand in for the other:
//
//	sign-in cookies   XChaCha20-Poly1305 (random 192-bit nonces: no limit
//	                  on how many cookies one key may seal)
//	refresh tokens    HMAC-SHA256 over grant id and generation
//
// Every node of a cluster reads the same secret, so a cookie sealed by one
// opens on another and a refresh token minted by one verifies on another.
const (
	keyKind = "oidc"
	keyName = "provider_key"
	keyLen  = 32
)

// ErrProviderKey: the stored provider key is not one flowd made.
var ErrProviderKey = errors.New("oidc: the stored provider key is malformed")

// Secrets is the slice of store.Secrets the provider key needs.
type Secrets interface {
	GetSecret(ctx context.Context, kind, name string) ([]byte, error)
	UpdateSecret(ctx context.Context, kind, name string, fn func(old []byte) ([]byte, error)) error
}

// providerKeys are the keys derived from the provider key.
type providerKeys struct {
	cookie  cipher.AEAD
	refresh []byte
}

// keyCache loads the provider key once per process.
type keyCache struct {
	mu   sync.Mutex
	keys *providerKeys
}

// keys returns the derived keys, creating the provider key on first use.
// Creation is create-if-absent: of two nodes starting at once, both end up
// with the one that was written first.
func (p *provider) keys(ctx context.Context) (*providerKeys, error) {
	p.keyCache.mu.Lock()
	defer p.keyCache.mu.Unlock()
	if p.keyCache.keys != nil {
		return p.keyCache.keys, nil
	}
	raw, err := p.Secrets.GetSecret(ctx, keyKind, keyName)
	if errors.Is(err, store.ErrNotFound) {
		fresh := make([]byte, keyLen)
		rand.Read(fresh)
		err = p.Secrets.UpdateSecret(ctx, keyKind, keyName, func(old []byte) ([]byte, error) {
			raw = fresh // reset on every call: the function may run again
			if old != nil {
				raw = append([]byte(nil), old...)
				return old, nil
			}
			return fresh, nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("oidc: provider key: %w", err)
	}
	k, err := deriveKeys(raw)
	if err != nil {
		return nil, err
	}
	p.keyCache.keys = k
	return k, nil
}

func deriveKeys(raw []byte) (*providerKeys, error) {
	if len(raw) != keyLen {
		return nil, ErrProviderKey
	}
	ck, err := hkdf.Key(sha256.New, raw, nil, "flowd oidc sign-in cookie v1", chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("oidc: derive cookie key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(ck)
	if err != nil {
		return nil, fmt.Errorf("oidc: cookie cipher: %w", err)
	}
	rk, err := hkdf.Key(sha256.New, raw, nil, "flowd oidc refresh token v1", 32)
	if err != nil {
		return nil, fmt.Errorf("oidc: derive refresh key: %w", err)
	}
	return &providerKeys{cookie: aead, refresh: rk}, nil
}

// seal encrypts plain for a cookie: base64url(nonce || ciphertext). ad
// binds it to its purpose and name; it opens only with the same ad.
func (k *providerKeys) seal(plain, ad []byte) string {
	nonce := make([]byte, k.cookie.NonceSize(), k.cookie.NonceSize()+len(plain)+k.cookie.Overhead())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(k.cookie.Seal(nonce, nonce, plain, ad))
}

// errUnsealed: a cookie that is not base64url, too short, or fails
// authentication (tampered, made by another key, or moved to another name).
var errUnsealed = errors.New("cookie does not open")

func (k *providerKeys) open(value string, ad []byte) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < k.cookie.NonceSize()+k.cookie.Overhead() {
		return nil, errUnsealed
	}
	n := k.cookie.NonceSize()
	plain, err := k.cookie.Open(nil, raw[:n], raw[n:], ad)
	if err != nil {
		return nil, errUnsealed
	}
	return plain, nil
}

// sealedLen is the length of seal's output for n bytes of plain text.
func (k *providerKeys) sealedLen(n int) int {
	return base64.RawURLEncoding.EncodedLen(k.cookie.NonceSize() + n + k.cookie.Overhead())
}

// mac is the refresh-token MAC of a grant's generation.
func (k *providerKeys) mac(msg []byte) []byte {
	h := hmac.New(sha256.New, k.refresh)
	h.Write(msg)
	return h.Sum(nil)
}
