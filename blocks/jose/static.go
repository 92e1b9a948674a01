package jose

import (
	"context"
	"log/slog"
)

// StaticKeys is a KeySource over a fixed set of public keys, such as the
// jwks an OAuth client registered inline.
type StaticKeys []VerifyKey

// VerifyKeys implements KeySource.
func (s StaticKeys) VerifyKeys(context.Context, bool) ([]VerifyKey, error) { return s, nil }

// ParseJWKSet reads a JWK Set of public signature keys with the rules of a
// remote one: strict JSON, at most 100 keys, each with a well-shaped kid,
// no private members, an alg that fits the key, RSA of 2048 bits or more.
// Keys that fail are skipped; a set with none left is an error wrapping
// ErrJWKSFetch.
func ParseJWKSet(raw []byte) (StaticKeys, error) {
	keys, err := parseRemoteJWKS(raw, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	return StaticKeys(keys), nil
}
