package josetest_test

import (
	"encoding/json"
	"testing"

	gojose "github.com/go-jose/go-jose/v4"

	"github.com/flowd/flowd/blocks/jose/josetest"
)

// TestSigner checks what the kit's JWTs hold: a relying party that reads
// the client's registered JWKS verifies its assertions, and a DPoP
// proof carries the public key (never the private one) in its header.
func TestSigner(t *testing.T) {
	s := josetest.NewES256(t)
	if s.Kid != s.Thumbprint(t) {
		t.Errorf("Kid %q, want the thumbprint %q", s.Kid, s.Thumbprint(t))
	}
	var set gojose.JSONWebKeySet
	if err := json.Unmarshal(s.JWKS(t), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].KeyID != s.Kid || set.Keys[0].Algorithm != "ES256" || set.Keys[0].Use != "sig" || !set.Keys[0].IsPublic() {
		t.Fatalf("JWKS = %+v, want one public ES256 sig key with kid %s", set.Keys, s.Kid)
	}
	claims := map[string]any{"sub": "ann", "jti": josetest.JTI()}
	tests := []struct {
		name    string
		token   string
		kid     string
		typ     any
		withJWK bool
	}{
		{"assertion", s.Sign(t, claims, nil), s.Kid, nil, false},
		{"dpop proof", s.DPoPProof(t, claims), "", "dpop+jwt", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jws, err := gojose.ParseSigned(tt.token, []gojose.SignatureAlgorithm{gojose.ES256})
			if err != nil {
				t.Fatal(err)
			}
			h := jws.Signatures[0].Protected
			if h.KeyID != tt.kid || h.ExtraHeaders["typ"] != tt.typ || (h.JSONWebKey != nil) != tt.withJWK {
				t.Errorf("header kid %q typ %v jwk %v, want kid %q typ %v jwk %v", h.KeyID, h.ExtraHeaders["typ"], h.JSONWebKey != nil, tt.kid, tt.typ, tt.withJWK)
			}
			if h.JSONWebKey != nil && !h.JSONWebKey.IsPublic() {
				t.Error("the proof's jwk header holds the private key")
			}
			payload, err := jws.Verify(set.Keys[0].Key)
			if err != nil {
				t.Fatalf("the registered key does not verify: %v", err)
			}
			var got map[string]any
			if err := json.Unmarshal(payload, &got); err != nil || got["sub"] != "ann" || got["jti"] != claims["jti"] {
				t.Errorf("payload %s (%v), want the claims %v", payload, err, claims)
			}
		})
	}
	if josetest.JTI() == josetest.JTI() {
		t.Error("JTI repeats")
	}
}

// TestATH is RFC 9449 §7.1's example: the ath of its access token.
func TestATH(t *testing.T) {
	if got, want := josetest.ATH("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"), "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"; got != want {
		t.Errorf("ATH = %q, want %q", got, want)
	}
}
