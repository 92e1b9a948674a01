// Package jose owns flowd's JOSE plumbing: keys and keysets with their
// lifecycle (next -> active -> retired -> deleted), the public JWKS of a
// keyset, JWT signing, token validation under an explicit policy, JWE
// encryption and decryption, and the flow blocks built on them.
//
// All cryptography goes through github.com/go-jose/go-jose/v4. Private key
// material never leaves this package except towards the keyset store, which
// encrypts it at rest.
package jose

import (
	"context"
	"errors"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
)

// State is where a key is in its lifecycle.
type State string

const (
	StateNext    State = "next"    // published, not yet signing
	StateActive  State = "active"  // the signing key for its alg
	StateRetired State = "retired" // published for verification until RetireAt
)

// Use is the JWK "use" member.
type Use string

const (
	UseSig Use = "sig"
	UseEnc Use = "enc"
)

// Key is one key of a keyset. JWK holds the private key (for oct keys, the
// secret); it must never be serialized anywhere except the keyset store.
type Key struct {
	Kid       string    `json:"kid"`
	Kty       string    `json:"kty"`            // RSA, EC, OKP, oct
	Crv       string    `json:"crv,omitempty"`  // P-256, P-384, P-521, Ed25519
	Size      int       `json:"size,omitempty"` // RSA modulus bits or oct key bits
	Alg       string    `json:"alg"`
	Use       Use       `json:"use"`
	State     State     `json:"state"`
	Created   time.Time `json:"created"`
	Activated time.Time `json:"activated,omitzero"`
	RetireAt  time.Time `json:"retire_at,omitzero"` // retired keys are deleted after this
	Revoked   bool      `json:"revoked,omitempty"`  // emergency revoke: never published again

	JWK gojose.JSONWebKey `json:"jwk"` // private material; stays in the store
}

// Keyset is a named, persisted list of keys.
type Keyset struct {
	Name    string    `json:"name"`
	Keys    []Key     `json:"keys"`
	Updated time.Time `json:"updated"`
	// RotatedFor is the newest scheduled tick a Rotate served
	// (RotateOptions.For): a rotation for that tick again changes nothing.
	RotatedFor time.Time `json:"rotated_for,omitzero"`
}

// SecretStore is the slice of store.Secrets the keyset store needs; a
// *store.Bolt satisfies it. Records are encrypted at rest by the store.
type SecretStore interface {
	GetSecret(ctx context.Context, kind, name string) ([]byte, error)
	UpdateSecret(ctx context.Context, kind, name string, fn func(old []byte) ([]byte, error)) error
	DeleteSecret(ctx context.Context, kind, name string) error
	ListSecrets(ctx context.Context, kind string) ([]string, error)
}

// Reason is the single reason code an invalid token leaves with.
type Reason string

const (
	ReasonMalformed       Reason = "malformed"
	ReasonTooLarge        Reason = "token_too_large"
	ReasonAlgNotAllowed   Reason = "alg_not_allowed"
	ReasonCritUnsupported Reason = "crit_unsupported"
	ReasonUnknownKid      Reason = "unknown_kid"
	ReasonBadSignature    Reason = "bad_signature"
	ReasonExpired         Reason = "token_expired"
	ReasonNotYetValid     Reason = "not_yet_valid"
	ReasonIssuedInFuture  Reason = "issued_in_future"
	ReasonWrongIssuer     Reason = "wrong_issuer"
	ReasonWrongAudience   Reason = "wrong_audience"
	ReasonWrongType       Reason = "wrong_type"
	ReasonMissingClaim    Reason = "missing_claim"
	ReasonClaimsRejected  Reason = "claims_rejected"
	ReasonDecryptFailed   Reason = "decrypt_failed"
)

// Sentinel errors.
var (
	ErrNoKeyset     = errors.New("keyset not found")
	ErrNoActiveKey  = errors.New("no active key")
	ErrKeyTooShort  = errors.New("key too short")
	ErrUnsupported  = errors.New("unsupported algorithm")
	ErrInvalidToken = errors.New("invalid token") // wrapped by *TokenError
	// ErrSigningStopped: Keysets.SignGate refused a signature.
	ErrSigningStopped = errors.New("signing stopped on this node")
)

// TokenError is why a token was refused: one Reason plus a detail that is
// safe to show (it never contains the token or key material).
type TokenError struct {
	Reason Reason
	Detail string
}

func (e *TokenError) Error() string {
	if e.Detail == "" {
		return string(e.Reason)
	}
	return string(e.Reason) + ": " + e.Detail
}

func (e *TokenError) Unwrap() error { return ErrInvalidToken }

// VerifyKey is a key a validator may check a signature with: the public part
// of an asymmetric key, or the secret of an oct key (local keysets only).
type VerifyKey struct {
	JWK   gojose.JSONWebKey // Kid, Algorithm and Use are always set
	State State             // lifecycle state for local keys; "" for remote ones
	// RetireAt, for a retired local key, is when it stops verifying.
	RetireAt time.Time
	use      *keyUse // a local key's use counter (nil for remote keys)
}

// KeySource gives a validator its candidate keys. Implementations return a
// cached, immutable slice: this sits on the request path of every token.
type KeySource interface {
	// VerifyKeys returns the current verification keys. A validator that
	// found no key for a token's kid calls again with refresh=true; a remote
	// source then refetches (rate-limited), a local one may ignore it.
	VerifyKeys(ctx context.Context, refresh bool) ([]VerifyKey, error)
}
