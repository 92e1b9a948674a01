package jose

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/blocks/jose/josetest"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/store/storetest"
	gojose "github.com/go-jose/go-jose/v4"
)

// The DPoP clients of these tests are josetest.Signers: proofs as
// RFC 9449 §4.2 describes them (typ dpop+jwt, the public key in the jwk
// header, claims jti, htm, htu, iat (+ ath, nonce)).

func dpopClaims(htm, htu string, iat time.Time) map[string]any {
	return map[string]any{"jti": josetest.JTI(), "htm": htm, "htu": htu, "iat": iat.Unix()}
}

func TestDPoPVerify(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	const url = "https://id.example.com/oauth/token"
	client := josetest.NewES256(t)
	other := josetest.NewES256(t)
	rsaSmall, _ := rsa.GenerateKey(rand.Reader, 1024)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)

	privateHeader := func() *gojose.SignerOptions {
		o := &gojose.SignerOptions{}
		o.WithType("dpop+jwt")
		o.WithHeader("jwk", gojose.JSONWebKey{Key: client.Key, Algorithm: "ES256"})
		return o
	}
	typed := func(typ string) *gojose.SignerOptions {
		o := &gojose.SignerOptions{EmbedJWK: true}
		o.WithType(gojose.ContentType(typ))
		return o
	}
	otherKeyHeader := func() *gojose.SignerOptions {
		o := &gojose.SignerOptions{}
		o.WithType("dpop+jwt")
		o.WithHeader("jwk", gojose.JSONWebKey{Key: other.Key.Public()})
		return o
	}
	tests := []struct {
		name   string
		make   func() string
		method string
		url    string
		token  string
		want   Reason // "" accepted
		detail string
	}{
		{"valid", func() string { return client.DPoPProof(t, dpopClaims("POST", url, now)) }, "POST", url, "", "", ""},
		{"valid EdDSA", func() string {
			c := &josetest.Signer{Key: edKey, Alg: gojose.EdDSA}
			return c.DPoPProof(t, dpopClaims("POST", url, now))
		}, "POST", url, "", "", ""},
		{"htu normalized: case, default port, query, fragment, percent-encoding", func() string {
			return client.DPoPProof(t, dpopClaims("POST", "HTTPS://ID.Example.com:443/oauth/%74oken?x=1#f", now))
		}, "POST", url, "", "", ""},
		{"with ath", func() string {
			c := dpopClaims("GET", "https://id.example.com/api", now)
			c["ath"] = josetest.ATH("the-token")
			return client.DPoPProof(t, c)
		}, "GET", "https://id.example.com/api", "the-token", "", ""},
		{"missing", func() string { return "" }, "POST", url, "", ReasonDPoPMissing, "no DPoP proof"},
		{"htm mismatch", func() string { return client.DPoPProof(t, dpopClaims("GET", url, now)) }, "POST", url, "", ReasonDPoPInvalid, "htm"},
		{"htu other path", func() string {
			return client.DPoPProof(t, dpopClaims("POST", "https://id.example.com/oauth/other", now))
		}, "POST", url, "", ReasonDPoPInvalid, "htu"},
		{"htu other host", func() string {
			return client.DPoPProof(t, dpopClaims("POST", "https://evil.example.com/oauth/token", now))
		}, "POST", url, "", ReasonDPoPInvalid, "htu"},
		{"htu other scheme", func() string {
			return client.DPoPProof(t, dpopClaims("POST", "http://id.example.com/oauth/token", now))
		}, "POST", url, "", ReasonDPoPInvalid, "htu"},
		{"iat too old", func() string { return client.DPoPProof(t, dpopClaims("POST", url, now.Add(-2*time.Minute))) }, "POST", url, "", ReasonDPoPInvalid, "too old"},
		{"iat in the future", func() string { return client.DPoPProof(t, dpopClaims("POST", url, now.Add(time.Minute))) }, "POST", url, "", ReasonDPoPInvalid, "future"},
		{"typ jwt", func() string { return client.Sign(t, dpopClaims("POST", url, now), typed("JWT")) }, "POST", url, "", ReasonDPoPInvalid, "typ"},
		{"private key in header", func() string { return client.Sign(t, dpopClaims("POST", url, now), privateHeader()) }, "POST", url, "", ReasonDPoPInvalid, "private key"},
		{"jwk of another key", func() string { return client.Sign(t, dpopClaims("POST", url, now), otherKeyHeader()) }, "POST", url, "", ReasonDPoPInvalid, "bad signature"},
		{"RSA 1024", func() string {
			c := &josetest.Signer{Key: rsaSmall, Alg: gojose.RS256}
			return c.DPoPProof(t, dpopClaims("POST", url, now))
		}, "POST", url, "", ReasonDPoPInvalid, "too weak"},
		{"alg none", func() string {
			h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"dpop+jwt"}`))
			p, _ := json.Marshal(dpopClaims("POST", url, now))
			return h + "." + base64.RawURLEncoding.EncodeToString(p) + "."
		}, "POST", url, "", ReasonDPoPInvalid, "alg"},
		{"HS256 with the public key as secret", func() string {
			pub, _ := json.Marshal(gojose.JSONWebKey{Key: client.Key.Public()})
			h := map[string]any{"alg": "HS256", "typ": "dpop+jwt", "jwk": json.RawMessage(pub)}
			hb, _ := json.Marshal(h)
			p, _ := json.Marshal(dpopClaims("POST", url, now))
			return base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(p) + ".c2ln"
		}, "POST", url, "", ReasonDPoPInvalid, "alg"},
		{"no jwk", func() string {
			o := &gojose.SignerOptions{}
			o.WithType("dpop+jwt")
			return client.Sign(t, dpopClaims("POST", url, now), o)
		}, "POST", url, "", ReasonDPoPInvalid, "no jwk"},
		{"oversize", func() string {
			c := dpopClaims("POST", url, now)
			c["pad"] = strings.Repeat("a", DefaultDPoPProofSize)
			return client.DPoPProof(t, c)
		}, "POST", url, "", ReasonDPoPInvalid, "longer than"},
		{"no jti", func() string {
			c := dpopClaims("POST", url, now)
			delete(c, "jti")
			return client.DPoPProof(t, c)
		}, "POST", url, "", ReasonDPoPInvalid, "jti"},
		{"iat a string", func() string {
			c := dpopClaims("POST", url, now)
			c["iat"] = "now"
			return client.DPoPProof(t, c)
		}, "POST", url, "", ReasonDPoPInvalid, "iat"},
		{"ath of another token", func() string {
			c := dpopClaims("GET", "https://id.example.com/api", now)
			c["ath"] = josetest.ATH("another-token")
			return client.DPoPProof(t, c)
		}, "GET", "https://id.example.com/api", "the-token", ReasonDPoPInvalid, "ath"},
		{"ath missing at a resource", func() string { return client.DPoPProof(t, dpopClaims("GET", "https://id.example.com/api", now)) },
			"GET", "https://id.example.com/api", "the-token", ReasonDPoPInvalid, "ath"},
		{"ath at the token endpoint", func() string {
			c := dpopClaims("POST", url, now)
			c["ath"] = josetest.ATH("x")
			return client.DPoPProof(t, c)
		}, "POST", url, "", ReasonDPoPInvalid, "ath"},
		{"not a JWS", func() string { return "a.b" }, "POST", url, "", ReasonDPoPInvalid, "compact JWS"},
		{"two proofs joined (two DPoP headers)", func() string {
			return client.DPoPProof(t, dpopClaims("POST", url, now)) + ", " + client.DPoPProof(t, dpopClaims("POST", url, now))
		}, "POST", url, "", ReasonDPoPInvalid, "compact JWS"},
	}
	v, err := NewDPoPVerifier(DPoPPolicy{Replay: NewMemoryReplayCache(100, clock), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := v.Verify(t.Context(), DPoPRequest{Proof: tc.make(), Method: tc.method, URL: tc.url, AccessToken: tc.token})
			if got := tokenReason(t, err); got != tc.want || (err == nil) != (tc.want == "") {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
			if tc.want != "" {
				if !strings.Contains(err.Error(), tc.detail) {
					t.Errorf("error %q does not say %q", err, tc.detail)
				}
				if p != nil {
					t.Error("a refused proof returned a result")
				}
				return
			}
			if p.JTI == "" || p.JKT == "" || p.IssuedAt.Unix() != now.Unix() {
				t.Errorf("proof %+v", p)
			}
		})
	}

	t.Run("thumbprint is RFC 7638 and a replay is refused", func(t *testing.T) {
		proof := client.DPoPProof(t, dpopClaims("POST", url, now))
		p, err := v.Verify(t.Context(), DPoPRequest{Proof: proof, Method: "POST", URL: url})
		if err != nil || p.JKT != client.Thumbprint(t) {
			t.Fatalf("jkt %v %v, want %s", p, err, client.Thumbprint(t))
		}
		if _, err := v.Verify(t.Context(), DPoPRequest{Proof: proof, Method: "POST", URL: url}); tokenReason(t, err) != ReasonDPoPReplayed {
			t.Fatalf("replay: %v", err)
		}
	})
}

func TestDPoPPolicyRefusals(t *testing.T) {
	mem := NewMemoryReplayCache(10, nil)
	for _, tc := range []struct {
		name string
		p    DPoPPolicy
		want string
	}{
		{"HMAC", DPoPPolicy{Algorithms: []string{"HS256"}, Replay: mem}, "symmetric"},
		{"none", DPoPPolicy{Algorithms: []string{"none"}, Replay: mem}, "unknown"},
		{"no replay cache", DPoPPolicy{}, "replay cache"},
		{"max age too long", DPoPPolicy{MaxAge: time.Hour, Replay: mem}, "max age"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDPoPVerifier(tc.p)
			if !errors.Is(err, ErrDPoPPolicy) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDPoPNonce(t *testing.T) {
	clk := enginetest.NewClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	clock := clk.Now
	bolt := storetest.TempBolt(t)
	nonces := NewNonceSource(bolt, time.Minute, clock)
	v, err := NewDPoPVerifier(DPoPPolicy{Replay: NewKVReplayCache(bolt, "replay", clock), Nonces: nonces, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	const url = "https://id.example.com/oauth/token"
	c := josetest.NewES256(t)
	withNonce := func(n string) string {
		cl := dpopClaims("POST", url, clock())
		if n != "" {
			cl["nonce"] = n
		}
		return c.DPoPProof(t, cl)
	}
	ctx := t.Context()
	n, err := nonces.Nonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Another source over the same store (another node) issues the same.
	if n2, _ := NewNonceSource(bolt, time.Minute, clock).Nonce(ctx); n2 != n {
		t.Errorf("a second node issues %q, the first %q", n2, n)
	}
	for _, tc := range []struct {
		name    string
		advance time.Duration
		nonce   string
		want    Reason
	}{
		{"no nonce", 0, "", ReasonDPoPNonce},
		{"forged nonce", 0, base64.RawURLEncoding.EncodeToString(make([]byte, 24)), ReasonDPoPNonce},
		{"issued nonce", 0, n, ""},
		{"next window: still good", time.Minute, n, ""},
		{"two windows on: stale", time.Minute, n, ReasonDPoPNonce},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk.Advance(tc.advance)
			_, err := v.Verify(ctx, DPoPRequest{Proof: withNonce(tc.nonce), Method: "POST", URL: url})
			if got := tokenReason(t, err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

func TestKVReplayCache(t *testing.T) {
	clk := enginetest.NewClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	clock := clk.Now
	bolt := storetest.TempBolt(t)
	ctx := t.Context()
	a := NewKVReplayCache(bolt, "replay", clock)
	b := NewKVReplayCache(bolt, "replay", clock) // another node
	exp := clk.Now().Add(time.Minute)
	if ok, err := a.Claim(ctx, "k1", exp); !ok || err != nil {
		t.Fatalf("first claim: %v %v", ok, err)
	}
	if ok, err := b.Claim(ctx, "k1", exp); ok || err != nil {
		t.Fatalf("claim on another node: %v %v, want a replay", ok, err)
	}
	if ok, _ := a.Claim(ctx, "k2", clk.Now().Add(2*time.Hour)); !ok {
		t.Fatal("second key")
	}
	clk.Advance(time.Hour)
	if n, err := a.Purge(ctx); n != 1 || err != nil {
		t.Fatalf("purge removed %d (%v), want the one expired record", n, err)
	}
	if keys, _ := bolt.ListKV(ctx, "replay"); len(keys) != 1 || !strings.HasSuffix(keys[0], ".k2") {
		t.Fatalf("left %v", keys)
	}
}

func TestMemoryReplayCacheBounded(t *testing.T) {
	clk := enginetest.NewClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	clock := clk.Now
	c := NewMemoryReplayCache(3, clock)
	ctx := t.Context()
	for _, k := range []string{"a", "b", "c"} {
		if ok, err := c.Claim(ctx, k, clk.Now().Add(time.Minute)); !ok || err != nil {
			t.Fatal(k, ok, err)
		}
	}
	if _, err := c.Claim(ctx, "d", clk.Now().Add(time.Minute)); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("full cache: %v", err)
	}
	if ok, _ := c.Claim(ctx, "a", clk.Now().Add(time.Minute)); ok {
		t.Fatal("replay accepted")
	}
	clk.Advance(2 * time.Minute)
	if ok, err := c.Claim(ctx, "d", clk.Now().Add(time.Minute)); !ok || err != nil || c.Len() != 1 {
		t.Fatalf("after expiry: %v %v len %d", ok, err, c.Len())
	}
}

// BenchmarkDPoPVerify: one proof check, with the replay cache in memory and
// in the store's KV (one bbolt write transaction per proof).
func BenchmarkDPoPVerify(b *testing.B) {
	bolt := storetest.TempBolt(b)
	const url = "https://id.example.com/api"
	c := josetest.NewES256(b)
	for _, bc := range []struct {
		name  string
		cache ReplayCache
	}{
		{"memory", NewMemoryReplayCache(1<<20, nil)},
		{"kv", NewKVReplayCache(bolt, "replay", nil)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			v, err := NewDPoPVerifier(DPoPPolicy{Replay: bc.cache})
			if err != nil {
				b.Fatal(err)
			}
			proofs := make([]string, b.N)
			for i := range proofs {
				cl := dpopClaims("GET", url, time.Now())
				cl["ath"] = josetest.ATH("tok")
				proofs[i] = c.DPoPProof(b, cl)
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := v.Verify(b.Context(), DPoPRequest{Proof: proofs[i], Method: "GET", URL: url, AccessToken: "tok"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
