package jose

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	gojose "github.com/go-jose/go-jose/v4"
)

// fzReasons are the reasons a validation may end with.
var fzReasons = map[Reason]bool{
	ReasonMalformed: true, ReasonTooLarge: true, ReasonAlgNotAllowed: true, ReasonCritUnsupported: true,
	ReasonUnknownKid: true, ReasonBadSignature: true, ReasonExpired: true, ReasonNotYetValid: true,
	ReasonIssuedInFuture: true, ReasonWrongIssuer: true, ReasonWrongAudience: true, ReasonWrongType: true,
	ReasonMissingClaim: true, ReasonClaimsRejected: true,
}

func FuzzValidate(f *testing.F) {
	es, hs, ed := testKeyFor(f, "ES256", "a"), testKeyFor(f, "HS256", "a"), testKeyFor(f, "EdDSA", "a")
	p := testPolicy(staticSource(es, hs, ed), "ES256", "HS256", "EdDSA", "RS256")
	p.Types = []string{"jwt"}
	p.RequiredClaims = []string{"sub"}
	p.Predicate = func(c map[string]any) (bool, error) { return c["sub"] != "mallory", nil }
	v := mustValidator(f, p)
	for _, k := range []*testKey{es, hs, ed} {
		f.Add(signedToken(f, k, nil, nil))
		f.Add(signedToken(f, k, func(h map[string]any) { h["crit"] = []string{"x"}; h["x"] = 1 }, nil))
		f.Add(signedToken(f, k, func(h map[string]any) { delete(h, "kid") }, func(c map[string]any) { c["aud"] = []string{"a", testAudience} }))
		f.Add(signedToken(f, k, nil, func(c map[string]any) { c["exp"] = 1e19; c["nested"] = map[string]any{"a": []any{1, "x", nil}} }))
	}
	f.Add(signRaw(f, hs, `{"alg":"HS256","alg":"none"}`, `{"sub":"x"}`))
	f.Add(signRaw(f, hs, `{"alg":"HS256","kid":"`+hs.kid+`"}`, `{"s":"\ud83d\ude00\u00e9\n"}`))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add(strings.Repeat(".", 100))
	f.Add(`{"payload":"e30","signatures":[]}`)
	f.Add("")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, token string) {
		res, err := v.Validate(ctx, token)
		dec, decErr := Decode(token)
		if decErr != nil && dec.Header != nil {
			t.Fatal("Decode returned a header with an error")
		}
		if dec.Verified {
			t.Fatal("Decode claims to have verified")
		}
		if err == nil {
			if res == nil || res.Claims == nil || res.Claims["iss"] != testIssuer || res.Header.Alg == "" {
				t.Fatalf("accepted without a full result: %+v", res)
			}
			if decErr != nil || !reflect.DeepEqual(dec.Claims, res.Claims) {
				t.Fatalf("Decode disagrees with Validate on an accepted token: %v", decErr)
			}
			return
		}
		var te *TokenError
		if !errors.As(err, &te) || res != nil {
			t.Fatalf("not a clean *TokenError: %v", err)
		}
		if !fzReasons[te.Reason] {
			t.Fatalf("unknown reason %q", te.Reason)
		}
		if len(token) >= 16 && strings.Contains(te.Error(), token) {
			t.Fatal("the error carries the token")
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	k := jweTestKeys(f)
	allow := JWEAllow{PBES2: true, CBC: true, Zip: true}
	opts := DecrypterOptions{
		Keys:               []gojose.JSONWebKey{k.rsa, k.ec256, k.aes256, k.dir256, k.pwd},
		KeyAlgorithms:      []string{"RSA-OAEP-256", "ECDH-ES", "ECDH-ES+A256KW", "A256KW", "A256GCMKW", "dir", "PBES2-HS256+A128KW"},
		ContentEncryptions: []string{"A256GCM", "A128GCM", "A128CBC-HS256"},
		Allow:              allow,
		PBES2MaxCount:      2000, // keeps each PBES2 attempt cheap for the fuzzer
	}
	d := mustDecrypter(f, opts)
	seeds := []struct {
		key gojose.JSONWebKey
		o   EncrypterOptions
	}{
		{k.rsa, EncrypterOptions{KeyAlgorithm: "RSA-OAEP-256"}},
		{k.ec256, EncrypterOptions{KeyAlgorithm: "ECDH-ES"}},
		{k.ec256, EncrypterOptions{KeyAlgorithm: "ECDH-ES+A256KW", ContentEncryption: "A128GCM"}},
		{k.aes256, EncrypterOptions{KeyAlgorithm: "A256KW", ContentEncryption: "A128CBC-HS256", Allow: allow}},
		{k.aes256, EncrypterOptions{KeyAlgorithm: "A256GCMKW", Allow: allow, Compress: true}},
		{k.dir256, EncrypterOptions{KeyAlgorithm: "dir"}},
		{k.pwd, EncrypterOptions{KeyAlgorithm: "PBES2-HS256+A128KW", Allow: allow, PBES2Count: 1000}},
	}
	for _, s := range seeds {
		tok, err := mustEncrypter(f, s.key, s.o).Encrypt([]byte(`{"sub":"alice"}`))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
	}
	f.Add(craftJWE(`{"alg":"PBES2-HS256+A128KW","enc":"A256GCM","p2c":1000000000,"p2s":"AAAAAAAAAAA"}`, make([]byte, 24), make([]byte, 12), nil, make([]byte, 16)))
	f.Add(craftJWE(`{"alg":"dir","enc":"A256GCM","zip":"DEF"}`, nil, make([]byte, 12), []byte{1}, make([]byte, 16)))
	f.Add("....")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		out, err := d.Decrypt(token)
		if err == nil {
			if out == nil || len(out.Plaintext) > DefaultJWEMaxPlaintextSize {
				t.Fatalf("bad success: %+v", out)
			}
			return
		}
		var te *TokenError
		if !errors.As(err, &te) || te.Reason != ReasonDecryptFailed || out != nil {
			t.Fatalf("not a clean decrypt_failed: %v", err)
		}
	})
}
