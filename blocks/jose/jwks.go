package jose

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
)

// JWKS returns the public JWK Set of a keyset and its strong ETag, from
// the cache: the public parts of the next, active and retired asymmetric
// keys (signing and encryption), active keys first, each with kid, alg and
// use. oct keys and private members never appear. The body is serialized
// once per keyset change; every call returns the same bytes, which callers
// must not modify.
func (m *Keysets) JWKS(ctx context.Context, name string) (body []byte, etag string, err error) {
	v, err := m.view(ctx, name)
	if err != nil {
		return nil, "", err
	}
	return v.jwks, v.etag, nil
}

// jwksETag is a strong ETag (RFC 9110 §8.8.3): the quoted base64url SHA-256
// of the body, so it changes exactly when the bytes do.
func jwksETag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"`
}
