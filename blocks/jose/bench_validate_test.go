package jose

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
)

// BenchmarkValidate compares the full Validator (size cap, strict header,
// allow-list, key choice, go-jose verify, strict claims and every claim
// check) with the least a caller of go-jose alone would do: parse,
// verify, decode the claims. Target: flowd within 10% of gojose for the
// asymmetric algorithms.
//
//	go test -run='^$' -bench=Validate -benchmem -count=3 ./blocks/jose/
func BenchmarkValidate(b *testing.B) {
	for _, alg := range []string{"ES256", "RS256", "EdDSA", "HS256"} {
		token, v, algs, key := benchValidateSetup(b, alg)
		b.Run(alg+"/flowd", func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Validate(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/gojose", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := verifyGoJoseOnly(token, algs, key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkValidatePaired runs both paths alternately in every iteration
// and reports their ratio, so that load from other processes (this
// machine is shared) hits both sides alike.
//
//	go test -run='^$' -bench=ValidatePaired -count=5 ./blocks/jose/
func BenchmarkValidatePaired(b *testing.B) {
	for _, alg := range []string{"ES256", "RS256", "EdDSA", "HS256"} {
		token, v, algs, key := benchValidateSetup(b, alg)
		b.Run(alg, func(b *testing.B) {
			ctx := context.Background()
			var flowd, raw time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, err := v.Validate(ctx, token); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := verifyGoJoseOnly(token, algs, key); err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				flowd += t1.Sub(t0)
				raw += t2.Sub(t1)
			}
			b.ReportMetric(float64(flowd.Nanoseconds())/float64(b.N), "flowd-ns/op")
			b.ReportMetric(float64(raw.Nanoseconds())/float64(b.N), "gojose-ns/op")
			b.ReportMetric(float64(flowd)/float64(raw), "flowd/gojose")
		})
	}
}

// benchValidateSetup is a token of alg, a Validator that accepts it, and
// what go-jose alone needs to verify it.
func benchValidateSetup(b *testing.B, alg string) (token string, v *Validator, algs []gojose.SignatureAlgorithm, key any) {
	b.Helper()
	k := testKeyFor(b, alg, "a")
	token = signedToken(b, k, nil, nil)
	v = mustValidator(b, testPolicy(staticSource(testKeyFor(b, alg, "b"), k), alg))
	return token, v, []gojose.SignatureAlgorithm{gojose.SignatureAlgorithm(alg)}, k.verify.JWK.Key
}

// verifyGoJoseOnly is the least a caller of go-jose alone would do: parse,
// verify, decode the claims.
func verifyGoJoseOnly(token string, algs []gojose.SignatureAlgorithm, key any) error {
	obj, err := gojose.ParseSignedCompact(token, algs)
	if err != nil {
		return err
	}
	payload, err := obj.Verify(key)
	if err != nil {
		return err
	}
	var claims map[string]any
	return json.Unmarshal(payload, &claims)
}
