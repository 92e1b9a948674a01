package jose

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/engine/enginetest"
	gojose "github.com/go-jose/go-jose/v4"
)

func TestNewRemoteJWKSRefusesBadURLs(t *testing.T) {
	tests := []struct {
		name string
		o    RemoteJWKSOptions
	}{
		{"http without opt-in", RemoteJWKSOptions{URL: "http://127.0.0.1/jwks"}},
		{"http to a remote host", RemoteJWKSOptions{URL: "http://idp.example/jwks", AllowLoopbackHTTP: true}},
		{"ftp", RemoteJWKSOptions{URL: "ftp://idp.example/jwks"}},
		{"file", RemoteJWKSOptions{URL: "file:///etc/passwd"}},
		{"no host", RemoteJWKSOptions{URL: "https:///jwks"}},
		{"credentials", RemoteJWKSOptions{URL: "https://user:pw@idp.example/jwks"}},
		{"garbage", RemoteJWKSOptions{URL: "::"}},
		{"min TTL above max", RemoteJWKSOptions{URL: "https://idp.example/jwks", MinTTL: time.Hour, MaxTTL: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewRemoteJWKS(tt.o); !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	for _, u := range []string{"https://idp.example/jwks", "http://localhost:8080/jwks", "http://[::1]/jwks"} {
		if _, err := NewRemoteJWKS(RemoteJWKSOptions{URL: u, AllowLoopbackHTTP: true}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestRemoteJWKSCachesAndHonoursMaxAge(t *testing.T) {
	k1, k2 := testKeyFor(t, "ES256", "a"), testKeyFor(t, "ES256", "b")
	idp, srv := newIdP(t, 200, publicJWKS(t, k1), http.Header{"Cache-Control": {"public, max-age=120"}})
	clock := enginetest.NewClock(testNow)
	r := newTestRemote(t, srv.URL, clock, nil)

	keys, err := r.VerifyKeys(t.Context(), false)
	if err != nil || kidsOf(keys) != k1.kid {
		t.Fatalf("first fetch: %q %v", kidsOf(keys), err)
	}
	idp.set(200, publicJWKS(t, k1, k2), nil)
	clock.Advance(119 * time.Second)
	if keys, _ = r.VerifyKeys(t.Context(), false); kidsOf(keys) != k1.kid || idp.requests.Load() != 1 {
		t.Fatalf("within max-age: %q after %d requests", kidsOf(keys), idp.requests.Load())
	}
	clock.Advance(2 * time.Second)
	if keys, _ = r.VerifyKeys(t.Context(), false); kidsOf(keys) != k1.kid+","+k2.kid || idp.requests.Load() != 2 {
		t.Fatalf("after max-age: %q after %d requests", kidsOf(keys), idp.requests.Load())
	}
}

func TestRemoteJWKSTTLBounds(t *testing.T) {
	r, err := NewRemoteJWKS(RemoteJWKSOptions{URL: "https://idp.example/jwks"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cc   string
		want time.Duration
	}{
		{"", 15 * time.Minute},
		{"max-age=600", 10 * time.Minute},
		{"public, max-age=3600, must-revalidate", time.Hour},
		{"max-age=1", time.Minute},
		{"max-age=0", time.Minute},
		{"max-age=99999999999999", 24 * time.Hour},
		{"max-age=-5", 15 * time.Minute},
		{"max-age=abc", 15 * time.Minute},
		{`max-age="300"`, 5 * time.Minute},
		{"no-store", time.Minute},
		{"no-cache, max-age=600", time.Minute},
		{"MAX-AGE=120", 2 * time.Minute},
	}
	for _, tt := range tests {
		if got := r.ttl(tt.cc); got != tt.want {
			t.Errorf("ttl(%q) = %s, want %s", tt.cc, got, tt.want)
		}
	}
}

func TestRemoteJWKSRefreshCooldown(t *testing.T) {
	k1 := testKeyFor(t, "ES256", "a")
	idp, srv := newIdP(t, 200, publicJWKS(t, k1), nil)
	clock := enginetest.NewClock(testNow)
	r := newTestRemote(t, srv.URL, clock, nil)

	v := mustValidator(t, testPolicy(r, "ES256"))
	// An attacker sprays tokens with random kids.
	for i := range 200 {
		tok := signedToken(t, k1, func(h map[string]any) { h["kid"] = fmt.Sprintf("random-%d", i) }, nil)
		if _, err := v.Validate(t.Context(), tok); tokenReason(t, err) != ReasonUnknownKid {
			t.Fatalf("spray %d: %v", i, err)
		}
		clock.Advance(100 * time.Millisecond) // 20 s in all, inside one cooldown
	}
	if n := idp.requests.Load(); n != 1 {
		t.Fatalf("the IdP saw %d requests during one cooldown, want 1", n)
	}
	clock.Advance(DefaultJWKSCooldown)
	if _, err := r.VerifyKeys(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	if n := idp.requests.Load(); n != 2 {
		t.Fatalf("after the cooldown: %d requests, want 2", n)
	}
}

func TestRemoteJWKSRotationSeenOnUnknownKid(t *testing.T) {
	k1, k2 := testKeyFor(t, "RS256", "a"), testKeyFor(t, "RS256", "b")
	idp, srv := newIdP(t, 200, publicJWKS(t, k1), http.Header{"Cache-Control": {"max-age=3600"}})
	clock := enginetest.NewClock(testNow)
	v := mustValidator(t, testPolicy(newTestRemote(t, srv.URL, clock, nil), "RS256"))
	if _, err := v.Validate(t.Context(), signedToken(t, k1, nil, nil)); err != nil {
		t.Fatal(err)
	}
	idp.set(200, publicJWKS(t, k1, k2), nil) // the IdP rotates in k2
	clock.Advance(DefaultJWKSCooldown)
	res, err := v.Validate(t.Context(), signedToken(t, k2, nil, nil))
	if err != nil {
		t.Fatalf("token of the new key: %v", err)
	}
	if res.Key.JWK.KeyID != k2.kid || res.Key.State != "" {
		t.Errorf("key %s state %q", res.Key.JWK.KeyID, res.Key.State)
	}
	if n := idp.requests.Load(); n != 2 {
		t.Errorf("requests = %d, want 2", n)
	}
}

func TestRemoteJWKSServesStaleSetWhenFetchFails(t *testing.T) {
	k1 := testKeyFor(t, "ES256", "a")
	idp, srv := newIdP(t, 200, publicJWKS(t, k1), http.Header{"Cache-Control": {"max-age=60"}})
	clock := enginetest.NewClock(testNow)
	r := newTestRemote(t, srv.URL, clock, nil)
	if _, err := r.VerifyKeys(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	for _, failure := range []struct {
		status int
		body   []byte
	}{
		{500, []byte("oops")},
		{200, []byte(`{"keys":[]}`)},
		{200, []byte(`not json`)},
		{200, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"x","alg":"HS256"}]}`)},
		{200, bytes.Repeat([]byte(" "), DefaultJWKSMaxBytes+1)},
	} {
		idp.set(failure.status, failure.body, nil)
		clock.Advance(2 * time.Minute)
		keys, err := r.VerifyKeys(t.Context(), false)
		if err != nil || kidsOf(keys) != k1.kid {
			t.Fatalf("status %d: keys %q, err %v", failure.status, kidsOf(keys), err)
		}
	}
}

func TestRemoteJWKSFirstFetchFailure(t *testing.T) {
	idp, srv := newIdP(t, 503, nil, nil)
	clock := enginetest.NewClock(testNow)
	r := newTestRemote(t, srv.URL, clock, nil)
	for range 10 {
		if _, err := r.VerifyKeys(t.Context(), true); !errors.Is(err, ErrJWKSFetch) {
			t.Fatalf("err = %v", err)
		}
	}
	if n := idp.requests.Load(); n != 1 {
		t.Fatalf("a down IdP got %d requests in one cooldown, want 1", n)
	}
	k := testKeyFor(t, "ES256", "a")
	v := mustValidator(t, testPolicy(r, "ES256"))
	if _, err := v.Validate(t.Context(), signedToken(t, k, nil, nil)); !errors.Is(err, ErrKeySourceUnavailable) {
		t.Fatalf("Validate: %v", err)
	}
}

func TestRemoteJWKSSizeCap(t *testing.T) {
	k1 := testKeyFor(t, "ES256", "a")
	body := publicJWKS(t, k1)
	idp, srv := newIdP(t, 200, body, nil)
	for _, tt := range []struct {
		name string
		max  int64
		ok   bool
	}{{"at the cap", int64(len(body)), true}, {"one byte over", int64(len(body)) - 1, false}} {
		t.Run(tt.name, func(t *testing.T) {
			idp.set(200, body, nil)
			r := newTestRemote(t, srv.URL, enginetest.NewClock(testNow), func(o *RemoteJWKSOptions) { o.MaxResponseBytes = tt.max })
			_, err := r.VerifyKeys(t.Context(), false)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestRemoteJWKSRefusesSchemeChangingRedirect(t *testing.T) {
	k1 := testKeyFor(t, "ES256", "a")
	plain, plainSrv := newIdP(t, 200, publicJWKS(t, k1), nil)
	tlsSrv := httptest.NewTLSServer(http.RedirectHandler(plainSrv.URL+"/jwks", http.StatusFound))
	defer tlsSrv.Close()
	r := newTestRemote(t, tlsSrv.URL, enginetest.NewClock(testNow), func(o *RemoteJWKSOptions) { o.Client = tlsSrv.Client() })
	if _, err := r.VerifyKeys(t.Context(), false); !errors.Is(err, ErrJWKSFetch) {
		t.Fatalf("err = %v", err)
	}
	if n := plain.requests.Load(); n != 0 {
		t.Fatalf("the http target got %d requests", n)
	}
	// A same-scheme redirect is followed.
	tls2 := httptest.NewTLSServer(plain)
	defer tls2.Close()
	redir := httptest.NewTLSServer(http.RedirectHandler(tls2.URL, http.StatusFound))
	defer redir.Close()
	r = newTestRemote(t, redir.URL, enginetest.NewClock(testNow), func(o *RemoteJWKSOptions) { o.Client = tls2.Client() })
	if _, err := r.VerifyKeys(t.Context(), false); err != nil {
		t.Fatalf("same-scheme redirect: %v", err)
	}
}

func TestRemoteJWKSTimeout(t *testing.T) {
	idp, srv := newIdP(t, 200, nil, nil)
	idp.holdRequests()
	defer close(idp.hold)
	r := newTestRemote(t, srv.URL, enginetest.NewClock(testNow), func(o *RemoteJWKSOptions) { o.Timeout = 100 * time.Millisecond })
	start := time.Now()
	if _, err := r.VerifyKeys(t.Context(), false); !errors.Is(err, ErrJWKSFetch) {
		t.Fatalf("err = %v", err)
	}
	t.Logf("gave up after %s", time.Since(start))
}

func TestRemoteJWKSSkipsBadKeys(t *testing.T) {
	good := testKeyFor(t, "ES256", "a")
	goodRSA := testKeyFor(t, "RS256", "a")
	pub := func(k *testKey) map[string]any { return jwkMembers(t, k.verify.JWK.Public()) }
	privMap := jwkMembers(t, gojose.JSONWebKey{Key: good.priv, KeyID: "private", Algorithm: "ES256"})
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallMap := jwkMembers(t, gojose.JSONWebKey{Key: &small.PublicKey, KeyID: "rsa-1024"})
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384Map := jwkMembers(t, gojose.JSONWebKey{Key: &p384.PublicKey, KeyID: "p384-as-es256", Algorithm: "ES256"})

	entries := []struct {
		name   string
		key    any
		admits bool
	}{
		{"good EC", pub(good), true},
		{"good RSA without alg", withMembers(pub(goodRSA), "alg", nil), true},
		{"private members", privMap, false},
		{"missing kid", withMembers(pub(good), "kid", nil), false},
		{"kid not a string", withMembers(pub(good), "kid", 7), false},
		{"kid too long", withMembers(pub(good), "kid", strings.Repeat("k", 300)), false},
		{"unparseable", withMembers(pub(good), "x", "!!!"), false},
		{"point off the curve", withMembers(pub(good), "y", "UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgnw"), false},
		{"oct secret", map[string]any{"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "kid": "oct", "alg": "HS256"}, false},
		{"use enc", withMembers(pub(good), "use", "enc", "kid", "enc"), false},
		{"key_ops encrypt", withMembers(pub(good), "key_ops", []string{"encrypt"}, "kid", "ops"), false},
		{"key_ops verify", withMembers(pub(good), "key_ops", []string{"verify"}, "kid", "ops-ok"), true},
		{"alg RSA-OAEP", withMembers(pub(goodRSA), "alg", "RSA-OAEP", "kid", "oaep"), false},
		{"alg none", withMembers(pub(good), "alg", "none", "kid", "none"), false},
		{"alg of another curve", p384Map, false},
		{"RSA 1024", smallMap, false},
		{"unknown kty", map[string]any{"kty": "XYZ", "kid": "xyz"}, false},
		{"not an object", "a string", false},
	}
	var set []any
	want := []string{}
	for _, e := range entries {
		set = append(set, e.key)
		if e.admits {
			want = append(want, e.key.(map[string]any)["kid"].(string))
		}
	}
	body, _ := json.Marshal(map[string]any{"keys": set})
	_, srv := newIdP(t, 200, body, nil)
	var logs bytes.Buffer
	r := newTestRemote(t, srv.URL, enginetest.NewClock(testNow), func(o *RemoteJWKSOptions) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	keys, err := r.VerifyKeys(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := kidsOf(keys); got != strings.Join(want, ",") {
		t.Fatalf("admitted %q, want %q", got, strings.Join(want, ","))
	}
	if n := strings.Count(logs.String(), "skipping a key"); n != len(entries)-len(want) {
		t.Errorf("%d skip lines for %d bad keys:\n%s", n, len(entries)-len(want), logs.String())
	}
	if d, _ := privMap["d"].(string); d == "" || strings.Contains(logs.String(), d) {
		t.Error("the log carries private key material")
	}
}

func TestRemoteJWKSSingleFlight(t *testing.T) {
	k1 := testKeyFor(t, "ES256", "a")
	idp, srv := newIdP(t, 200, publicJWKS(t, k1), nil)
	idp.holdRequests()
	r := newTestRemote(t, srv.URL, enginetest.NewClock(testNow), nil)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			keys, err := r.VerifyKeys(context.Background(), true)
			if err == nil && kidsOf(keys) != k1.kid {
				err = fmt.Errorf("keys %q", kidsOf(keys))
			}
			errs <- err
		})
	}
	time.Sleep(50 * time.Millisecond) // let them all queue on the one fetch
	close(idp.hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := idp.requests.Load(); n != 1 {
		t.Fatalf("%d requests for 32 concurrent callers, want 1", n)
	}
}

func TestRemoteJWKSCallerCancellation(t *testing.T) {
	idp, srv := newIdP(t, 200, publicJWKS(t, testKeyFor(t, "ES256", "a")), nil)
	idp.holdRequests()
	r := newTestRemote(t, srv.URL, enginetest.NewClock(testNow), nil)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := r.VerifyKeys(ctx, false); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	close(idp.hold)
	// The shared fetch was not cancelled with the caller: it lands.
	deadline := time.Now().Add(5 * time.Second)
	for {
		keys, err := r.VerifyKeys(t.Context(), false)
		if err == nil && len(keys) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fetch never landed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRemoteJWKSConditionalRefetch(t *testing.T) {
	k1 := testKeyFor(t, "ES256", "a")
	idp, srv := newIdP(t, 200, publicJWKS(t, k1), http.Header{"ETag": {`"v1"`}, "Cache-Control": {"max-age=60"}})
	clock := enginetest.NewClock(testNow)
	r := newTestRemote(t, srv.URL, clock, nil)
	if _, err := r.VerifyKeys(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	clock.Advance(61 * time.Second)
	keys, err := r.VerifyKeys(t.Context(), false)
	if err != nil || kidsOf(keys) != k1.kid || idp.requests.Load() != 2 {
		t.Fatalf("after 304: %q %v (%d requests)", kidsOf(keys), err, idp.requests.Load())
	}
	// The 304 renewed the TTL.
	clock.Advance(30 * time.Second)
	if _, err := r.VerifyKeys(t.Context(), false); err != nil || idp.requests.Load() != 2 {
		t.Fatalf("TTL not renewed: %d requests", idp.requests.Load())
	}
}
