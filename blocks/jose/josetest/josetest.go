// Package josetest is the test kit for the JWTs an OAuth client makes:
// private_key_jwt client assertions (RFC 7523 §2.2) and DPoP proofs
// (RFC 9449 §4.2), signed with go-jose as a real client would. The blocks'
// own tests (jose, oauth) and the binary's end-to-end tests share it, so
// each does not carry its own signer. It imports go-jose only, so
// blocks/jose's internal tests may use it.
package josetest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"

	gojose "github.com/go-jose/go-jose/v4"
)

// Signer is a client's private key and the JWS algorithm it signs with.
type Signer struct {
	Key crypto.Signer
	Alg gojose.SignatureAlgorithm
	Kid string // the kid header of Sign with nil options, and of JWKS
}

// NewES256 is a client with a fresh P-256 key; its Kid is the key's
// RFC 7638 thumbprint.
func NewES256(t testing.TB) *Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := &Signer{Key: k, Alg: gojose.ES256}
	s.Kid = s.Thumbprint(t)
	return s
}

// Thumbprint is the base64url RFC 7638 SHA-256 thumbprint of the public
// key (a DPoP key's cnf.jkt).
func (s *Signer) Thumbprint(t testing.TB) string {
	t.Helper()
	tp, err := (&gojose.JSONWebKey{Key: s.Key.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// JWKS is the public JWK Set a private_key_jwt client registers: one
// signature key with the Kid and Alg.
func (s *Signer) JWKS(t testing.TB) []byte {
	t.Helper()
	b, err := json.Marshal(gojose.JSONWebKeySet{Keys: []gojose.JSONWebKey{{Key: s.Key.Public(), KeyID: s.Kid, Algorithm: string(s.Alg), Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Sign is the compact JWS of claims with the header opts give; nil opts
// give the kid header only (a client assertion).
func (s *Signer) Sign(t testing.TB, claims map[string]any, opts *gojose.SignerOptions) string {
	t.Helper()
	if opts == nil {
		opts = (&gojose.SignerOptions{}).WithHeader("kid", s.Kid)
	}
	return Sign(t, gojose.SigningKey{Algorithm: s.Alg, Key: s.Key}, opts, claims)
}

// DPoPOptions are a DPoP proof's header options: typ dpop+jwt and the
// public key as jwk.
func DPoPOptions() *gojose.SignerOptions {
	return (&gojose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
}

// DPoPProof is a DPoP proof of claims (jti, htm, htu, iat, ...).
func (s *Signer) DPoPProof(t testing.TB, claims map[string]any) string {
	t.Helper()
	return s.Sign(t, claims, DPoPOptions())
}

// Sign is the compact JWS of claims (as JSON) that go-jose's own signer
// makes with key and opts.
func Sign(t testing.TB, key gojose.SigningKey, opts *gojose.SignerOptions, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gojose.NewSigner(key, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// JTI is a fresh random token id.
func JTI() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ATH is a DPoP proof's ath claim for an access token: the base64url
// SHA-256 of its text (RFC 9449 §4.2).
func ATH(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
