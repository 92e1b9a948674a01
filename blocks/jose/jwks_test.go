package jose

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"testing"
	"time"
	"unsafe"

	gojose "github.com/go-jose/go-jose/v4"
)

// publicMembers are the only members a published JWK may have.
var publicMembers = map[string]bool{"kty": true, "kid": true, "alg": true, "use": true, "crv": true, "x": true, "y": true, "n": true, "e": true}

func TestJWKSPublicOnly(t *testing.T) {
	ctx := t.Context()
	m, _, clk := newKeysetsWith(t, "pub", allKeyAlgs...)
	clk.Advance(time.Minute)
	if _, err := m.Rotate(ctx, "pub", RotateOptions{}); err != nil { // next + active + retired for every alg
		t.Fatal(err)
	}
	info, _ := m.Get(ctx, "pub")
	if err := m.Revoke(ctx, "pub", keysByState(info)["EdDSA"][StateRetired][0]); err != nil {
		t.Fatal(err)
	}
	info, _ = m.Get(ctx, "pub")

	want := map[string]KeyInfo{} // kid -> key expected in the JWKS
	for _, k := range info.Keys {
		if !k.Revoked && k.Kty != "oct" {
			want[k.Kid] = k
		}
	}
	body, etag, err := m.JWKS(ctx, "pub")
	if err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	if !regexp.MustCompile(`^"[A-Za-z0-9_-]{43}"$`).MatchString(etag) {
		t.Errorf("ETag %s is not a quoted base64url SHA-256", etag)
	}

	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("JWKS is not JSON: %v", err)
	}
	if len(doc) != 1 || doc["keys"] == nil {
		t.Fatalf("JWKS members = %v, want only keys", slices.Collect(maps.Keys(doc)))
	}
	var keys []map[string]any
	if err := json.Unmarshal(doc["keys"], &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(want) {
		t.Errorf("JWKS has %d keys, want %d (asymmetric, not revoked)", len(keys), len(want))
	}
	seen := map[string]bool{}
	for i, jk := range keys {
		for name := range jk {
			if !publicMembers[name] {
				t.Errorf("key %d has member %q", i, name)
			}
		}
		kid, _ := jk["kid"].(string)
		alg, _ := jk["alg"].(string)
		use, _ := jk["use"].(string)
		if kid == "" || alg == "" || use == "" {
			t.Errorf("key %d lacks kid/alg/use: %v", i, jk)
		}
		if jk["kty"] == "oct" {
			t.Errorf("oct key %s published", kid)
		}
		k, ok := want[kid]
		if !ok {
			t.Errorf("unexpected key %s (%s) in JWKS", kid, alg)
			continue
		}
		seen[kid] = true
		if alg != k.Alg || use != string(k.Use) || jk["kty"] != k.Kty {
			t.Errorf("key %s: alg/use/kty = %s/%s/%v, want %s/%s/%s", kid, alg, use, jk["kty"], k.Alg, k.Use, k.Kty)
		}
		raw, _ := json.Marshal(jk)
		var parsed gojose.JSONWebKey
		if err := parsed.UnmarshalJSON(raw); err != nil || !parsed.IsPublic() {
			t.Errorf("key %s does not parse as a public JWK: %v", kid, err)
		}
		if got := rfc7638(t, raw); got != kid {
			t.Errorf("key %s: thumbprint %s", kid, got)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("JWKS misses keys: have %d of %d", len(seen), len(want))
	}
	if s := keys[0]["kid"].(string); want[s].State != StateActive {
		t.Errorf("first published key is %s, want an active key", want[s].State)
	}
}

func TestJWKSETagChangesIffContentChanges(t *testing.T) {
	ctx := t.Context()
	m, _, clk := newKeysetsWith(t, "et", "ES256", "HS256")
	body0, etag0, _ := m.JWKS(ctx, "et")

	steps := []struct {
		name        string
		do          func() error
		wantChanged bool
	}{
		{"rotate HS256 only (oct keys are not published)", func() error {
			_, err := m.Rotate(ctx, "et", RotateOptions{Alg: "HS256"})
			return err
		}, false},
		{"reload without change", func() error { return m.Reload(ctx, "et") }, false},
		{"ensure existing algs", func() error { return m.Ensure(ctx, "et", "ES256") }, false},
		{"rotate ES256", func() error {
			_, err := m.Rotate(ctx, "et", RotateOptions{Alg: "ES256"})
			return err
		}, true},
		{"add an EdDSA key", func() error { return m.Ensure(ctx, "et", "EdDSA") }, true},
	}
	prevBody, prevTag := body0, etag0
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clk.Advance(time.Minute)
			if err := st.do(); err != nil {
				t.Fatal(err)
			}
			body, etag, err := m.JWKS(ctx, "et")
			if err != nil {
				t.Fatal(err)
			}
			contentChanged := string(body) != string(prevBody)
			if contentChanged != st.wantChanged {
				t.Errorf("content changed = %v, want %v", contentChanged, st.wantChanged)
			}
			if (etag != prevTag) != contentChanged {
				t.Errorf("ETag changed = %v, content changed = %v", etag != prevTag, contentChanged)
			}
			prevBody, prevTag = body, etag
		})
	}
}

// TestJWKSServedFromCache: serving does not re-marshal. The same backing
// array comes back on every call and a call allocates nothing.
func TestJWKSServedFromCache(t *testing.T) {
	ctx := t.Context()
	m, _, _ := newKeysetsWith(t, "hot", "ES256", "HS256")
	b1, e1, _ := m.JWKS(ctx, "hot")
	b2, e2, _ := m.JWKS(ctx, "hot")
	if unsafe.SliceData(b1) != unsafe.SliceData(b2) || e1 != e2 {
		t.Errorf("JWKS returned a different backing array without a change")
	}
	if cap(b1) != len(b1) {
		t.Errorf("JWKS body has spare capacity %d > %d: an append by a caller would write into the cache", cap(b1), len(b1))
	}
	src := m.Source("hot")
	if allocs := testing.AllocsPerRun(1000, func() { _, _, _ = m.JWKS(ctx, "hot") }); allocs != 0 {
		t.Errorf("JWKS allocates %.1f times per call, want 0", allocs)
	}
	if allocs := testing.AllocsPerRun(1000, func() { _, _ = src.VerifyKeys(ctx, false) }); allocs != 0 {
		t.Errorf("VerifyKeys allocates %.1f times per call, want 0", allocs)
	}
	if _, err := m.Rotate(ctx, "hot", RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	b3, _, _ := m.JWKS(ctx, "hot")
	if unsafe.SliceData(b3) == unsafe.SliceData(b1) {
		t.Errorf("JWKS not rebuilt after a change")
	}
}

func BenchmarkJWKS(b *testing.B) {
	ctx := b.Context()
	m, _, _ := newKeysetsForTest(b)
	if err := m.Create(ctx, "bench", "ES256", "RS256", "EdDSA"); err != nil {
		b.Fatal(err)
	}
	if _, _, err := m.JWKS(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		body, _, _ := m.JWKS(ctx, "bench")
		if len(body) == 0 {
			b.Fatal("empty")
		}
	}
}

func BenchmarkVerifyKeys(b *testing.B) {
	ctx := b.Context()
	m, _, _ := newKeysetsForTest(b)
	if err := m.Create(ctx, "bench", "ES256", "HS256"); err != nil {
		b.Fatal(err)
	}
	src := m.Source("bench")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if vks, _ := src.VerifyKeys(ctx, false); len(vks) == 0 {
				b.Fatal("no keys")
			}
		}
	})
}
