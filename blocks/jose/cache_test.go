package jose

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

// swapSource serves a key list that a test replaces (as a keyset view
// or a remote JWKS refresh does: a new slice, never an edit).
type swapSource struct{ keys atomic.Pointer[[]VerifyKey] }

func newSwapSource(keys ...VerifyKey) *swapSource {
	s := &swapSource{}
	s.set(keys...)
	return s
}
func (s *swapSource) set(keys ...VerifyKey) { k := slices.Clone(keys); s.keys.Store(&k) }
func (s *swapSource) VerifyKeys(context.Context, bool) ([]VerifyKey, error) {
	return *s.keys.Load(), nil
}

// cachedAndPlain is the same policy with and without a cache, so every verdict can
// be compared with the uncached one.
func cachedAndPlain(t testing.TB, p Policy, o CacheOptions) (cached, plain *Validator) {
	t.Helper()
	plain = mustValidator(t, p)
	p.Cache = o
	cached = mustValidator(t, p)
	return cached, plain
}

// checkBoth validates token with both and fails unless both give want
// (a Reason, "" for valid).
func checkBoth(t *testing.T, cached, plain *Validator, token string, want Reason) {
	t.Helper()
	ctx := t.Context()
	_, err := cached.Validate(ctx, token)
	_, perr := plain.Validate(ctx, token)
	if got, gotPlain := tokenReason(t, err), tokenReason(t, perr); got != want || gotPlain != want {
		t.Fatalf("reason with cache %q, without %q, want %q", got, gotPlain, want)
	}
}

// primeCache validates token twice (the second time caches it) and fails
// unless it is cached.
func primeCache(t *testing.T, cached, plain *Validator, token string) {
	t.Helper()
	checkBoth(t, cached, plain, token, "")
	checkBoth(t, cached, plain, token, "")
	sum := sha256.Sum256([]byte(token))
	if e, _, _, _, _ := cached.cache.lookup(&sum); e == nil {
		t.Fatal("token not cached after two validations")
	}
}

func cacheEntries(v *Validator) int { n, _ := v.cache.stats(); return n }

func TestCacheHitIsACopy(t *testing.T) {
	ctx := t.Context()
	k := testKeyFor(t, "ES256", "a")
	src := &staticKeySource{keys: []VerifyKey{k.verify}}
	v := mustValidator(t, func() Policy { p := testPolicy(src, "ES256"); p.Cache = CacheOptions{Entries: 8}; return p }())
	token := signedToken(t, k, nil, func(c map[string]any) { c["roles"] = []any{"a"} })
	if _, err := v.Validate(ctx, token); err != nil { // seen once: not cached yet
		t.Fatal(err)
	}
	if cacheEntries(v) != 0 {
		t.Fatalf("cached on first sight")
	}
	first, err := v.Validate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	first.Claims["sub"] = "mallory"
	first.Claims["roles"].([]any)[0] = "admin"
	calls := src.calls.Load()
	second, err := v.Validate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if second.Claims["sub"] != "alice" || second.Claims["roles"].([]any)[0] != "a" {
		t.Errorf("a caller's edit reached the cache: %v", second.Claims)
	}
	if second.Header != first.Header || second.Key.JWK.KeyID != k.kid || second.Key.State != StateActive {
		t.Errorf("hit answered header %+v key %q/%s", second.Header, second.Key.JWK.KeyID, second.Key.State)
	}
	if cacheEntries(v) != 1 || src.calls.Load() != calls+1 {
		t.Errorf("cache holds %d entries, source asked %d times on the hit; want 1 and 1", cacheEntries(v), src.calls.Load()-calls)
	}
}

// TestCacheKeyChanges: every change of the key that verified a cached
// token decides the next use, exactly as without the cache.
func TestCacheKeyChanges(t *testing.T) {
	a, b := testKeyFor(t, "ES256", "a"), testKeyFor(t, "ES256", "b")
	other := newTestKey(t, "ES256", a.kid) // same kid, other material
	retiring := a.verify
	retiring.State, retiring.RetireAt = StateRetired, testNow.Add(time.Minute)
	tests := []struct {
		name    string
		after   []VerifyKey
		advance time.Duration
		want    Reason
	}{
		{"key removed (revoked, remote set without the kid)", []VerifyKey{b.verify}, 0, ReasonUnknownKid},
		{"no keys at all", []VerifyKey{}, 0, ReasonUnknownKid},
		{"kid now names other material", []VerifyKey{other.verify, b.verify}, 0, ReasonBadSignature},
		{"retired, before its deadline", []VerifyKey{retiring, b.verify}, 0, ""},
		{"retired, past its deadline", []VerifyKey{retiring, b.verify}, 2 * time.Minute, ReasonUnknownKid},
		{"a key added (rotation): entry kept", []VerifyKey{a.verify, b.verify}, 0, ""},
		{"alg member changed to another alg", []VerifyKey{func() VerifyKey {
			k := a.verify
			k.JWK.Algorithm = "ES384"
			return k
		}()}, 0, ReasonAlgNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := enginetest.NewClock(testNow)
			src := newSwapSource(a.verify)
			p := testPolicy(src, "ES256")
			p.Now = clk.Now
			cached, plain := cachedAndPlain(t, p, CacheOptions{Entries: 8})
			token := signedToken(t, a, nil, nil)
			primeCache(t, cached, plain, token)
			src.set(tc.after...)
			clk.Advance(tc.advance)
			checkBoth(t, cached, plain, token, tc.want)
			if tc.want == "" {
				res, err := cached.Validate(t.Context(), token)
				if err != nil {
					t.Fatal(err)
				}
				if res.Key.State != tc.after[0].State {
					t.Errorf("hit answered key state %q, want the current %q", res.Key.State, tc.after[0].State)
				}
			} else if cacheEntries(cached) != 0 {
				t.Errorf("refused token still cached")
			}
		})
	}
}

// TestCacheRevokeOnEveryNode: a keyset revoke on one node refuses the
// cached token on that node at once, and on another node as soon as its
// view follows the store (Reload, which the store feed drives).
func TestCacheRevokeOnEveryNode(t *testing.T) {
	ctx := t.Context()
	m1, st, clk := newKeysetsWith(t, "main", "ES256")
	m2 := anotherNode(st, clk)
	token, kid, err := NewSigner(m1).Sign(ctx, SignRequest{Keyset: "main", Alg: "ES256", TTL: time.Hour,
		Issuer: testIssuer, Audience: []string{testAudience}})
	if err != nil {
		t.Fatal(err)
	}
	node := func(m *Keysets) (cached, plain *Validator) {
		p := testPolicy(m.Source("main"), "ES256")
		p.Now = clk.Now
		return cachedAndPlain(t, p, CacheOptions{Entries: 8})
	}
	c1, p1 := node(m1)
	c2, p2 := node(m2)
	primeCache(t, c1, p1, token)
	primeCache(t, c2, p2, token)
	if _, err := m1.Rotate(ctx, "main", RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	checkBoth(t, c1, p1, token, "") // the signing key is still next/active/retired: valid
	if err := m1.Revoke(ctx, "main", kid); err != nil {
		t.Fatal(err)
	}
	checkBoth(t, c1, p1, token, ReasonUnknownKid)
	if err := m2.Reload(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	checkBoth(t, c2, p2, token, ReasonUnknownKid)
}

func TestCacheTimes(t *testing.T) {
	k := testKeyFor(t, "ES256", "a")
	tests := []struct {
		name    string
		claims  func(map[string]any)
		policy  func(*Policy)
		advance time.Duration
		want    Reason
	}{
		{"within exp", nil, nil, 5 * time.Minute, ""},
		{"within exp plus leeway", nil, func(p *Policy) { p.Leeway = time.Minute }, 10*time.Minute + 30*time.Second, ""},
		{"past exp", nil, nil, 10*time.Minute + time.Second, ReasonExpired},
		{"past exp plus leeway", nil, func(p *Policy) { p.Leeway = time.Minute }, 11*time.Minute + time.Second, ReasonExpired},
		{"past max age", nil, func(p *Policy) { p.MaxAge = time.Minute }, time.Minute, ReasonExpired},
		{"clock set back before nbf", func(c map[string]any) { c["nbf"] = testNow.Unix() - 5 }, nil, -time.Minute, ReasonNotYetValid},
		{"clock set back before iat", nil, nil, -time.Minute, ReasonIssuedInFuture},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := enginetest.NewClock(testNow)
			p := testPolicy(newSwapSource(k.verify), "ES256")
			p.Now = clk.Now
			if tc.policy != nil {
				tc.policy(&p)
			}
			cached, plain := cachedAndPlain(t, p, CacheOptions{Entries: 8})
			token := signedToken(t, k, nil, tc.claims)
			primeCache(t, cached, plain, token)
			clk.Advance(tc.advance)
			checkBoth(t, cached, plain, token, tc.want)
		})
	}
	t.Run("no exp: never cached", func(t *testing.T) {
		p := testPolicy(newSwapSource(k.verify), "ES256")
		p.RequireExp = false
		cached, plain := cachedAndPlain(t, p, CacheOptions{Entries: 8})
		checkBoth(t, cached, plain, signedToken(t, k, nil, func(c map[string]any) { delete(c, "exp") }), "")
		if cacheEntries(cached) != 0 {
			t.Errorf("a token without exp was cached")
		}
	})
}

// TestCachePolicyOnHit: the hit path applies the whole policy itself.
// A redeploy builds a new Validator with a new cache; here the cache of
// one policy is handed to another to show that even then nothing a
// changed policy refuses gets through.
func TestCachePolicyOnHit(t *testing.T) {
	k := testKeyFor(t, "ES256", "a")
	tests := []struct {
		name   string
		change func(*Policy)
		want   Reason
	}{
		{"audience", func(p *Policy) { p.Audience = []string{"api://other"} }, ReasonWrongAudience},
		{"issuer", func(p *Policy) { p.Issuer = "https://other.example" }, ReasonWrongIssuer},
		{"alg allow-list", func(p *Policy) { p.Algorithms = []string{"RS256"} }, ReasonAlgNotAllowed},
		{"types", func(p *Policy) { p.Types = []string{"at+jwt"} }, ReasonWrongType},
		{"required claims", func(p *Policy) { p.RequiredClaims = []string{"scope"} }, ReasonMissingClaim},
		{"max age", func(p *Policy) { p.MaxAge = time.Second }, ReasonExpired},
		{"predicate", func(p *Policy) { p.Predicate = func(map[string]any) (bool, error) { return false, nil } }, ReasonClaimsRejected},
		{"unchanged", func(*Policy) {}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := newSwapSource(k.verify)
			p := testPolicy(src, "ES256")
			first := mustValidator(t, func() Policy { q := p; q.Cache = CacheOptions{Entries: 8}; return q }())
			token := signedToken(t, k, nil, nil)
			for range 2 { // the second validation caches it
				if _, err := first.Validate(t.Context(), token); err != nil {
					t.Fatal(err)
				}
			}
			if n, _ := first.cache.stats(); n != 1 {
				t.Fatalf("token not cached")
			}
			tc.change(&p)
			plain := mustValidator(t, p)
			changed := mustValidator(t, p)
			changed.cache = first.cache // the old policy's entries
			checkBoth(t, changed, plain, token, tc.want)
		})
	}
}

// TestCacheForgery: a token that differs from a cached one in any byte is
// judged in full, and the cached one stays valid.
func TestCacheForgery(t *testing.T) {
	for _, alg := range []string{"ES256", "RS256", "HS256"} {
		t.Run(alg, func(t *testing.T) {
			k := testKeyFor(t, alg, "a")
			cached, plain := cachedAndPlain(t, testPolicy(newSwapSource(k.verify), alg), CacheOptions{Entries: 64})
			token := signedToken(t, k, nil, nil)
			primeCache(t, cached, plain, token)
			dot1 := indexByte(token, '.', 0)
			dot2 := indexByte(token, '.', dot1+1)
			positions := map[string][]int{
				"header":    {0, dot1 / 2, dot1 - 1},
				"payload":   {dot1 + 1, (dot1 + dot2) / 2, dot2 - 1},
				"signature": {dot2 + 1, (dot2 + len(token)) / 2, len(token) - 2},
			}
			for part, ps := range positions {
				for _, i := range ps {
					for _, c := range []byte{'A', 'B', '_', '-'} {
						if token[i] == c {
							continue
						}
						forged := token[:i] + string(c) + token[i+1:]
						_, err := cached.Validate(t.Context(), forged)
						_, perr := plain.Validate(t.Context(), forged)
						got, want := tokenReason(t, err), tokenReason(t, perr)
						if got == "" || got != want {
							t.Fatalf("%s byte %d -> %q: reason %q with cache, %q without", part, i, c, got, want)
						}
					}
				}
			}
			for _, extra := range []string{token + "A", token[:len(token)-1], " " + token} {
				_, err := cached.Validate(t.Context(), extra)
				_, perr := plain.Validate(t.Context(), extra)
				if got, want := tokenReason(t, err), tokenReason(t, perr); got == "" || got != want {
					t.Fatalf("length change: reason %q with cache, %q without", got, want)
				}
			}
			if cacheEntries(cached) != 1 {
				t.Errorf("cache holds %d entries, want only the genuine token", cacheEntries(cached))
			}
			checkBoth(t, cached, plain, token, "")
		})
	}
}

func indexByte(s string, c byte, from int) int {
	for i := from; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// TestCacheBounds: a flood of distinct valid tokens never takes the cache
// past either bound; the most recent tokens are the ones kept.
func TestCacheBounds(t *testing.T) {
	k := testKeyFor(t, "HS256", "a")
	tests := []struct {
		name    string
		opts    CacheOptions
		padding int
	}{
		{"entry bound", CacheOptions{Entries: 50, Bytes: 1 << 20}, 0},
		{"byte bound", CacheOptions{Entries: 10000, Bytes: 64 << 10}, 2000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := mustValidator(t, func() Policy {
				p := testPolicy(newSwapSource(k.verify), "HS256")
				p.Cache = tc.opts
				return p
			}())
			var last []string
			for i := range 2000 {
				token := signedToken(t, k, nil, func(c map[string]any) {
					c["jti"] = fmt.Sprint(i)
					c["pad"] = strings.Repeat("x", tc.padding)
				})
				for range 2 { // the second validation caches it
					if _, err := v.Validate(t.Context(), token); err != nil {
						t.Fatal(err)
					}
				}
				n, bytes := v.cache.stats()
				if seen := len(v.cache.seen); seen > tc.opts.Entries {
					t.Fatalf("seen set holds %d hashes, bound %d", seen, tc.opts.Entries)
				}
				if n > tc.opts.Entries || bytes > tc.opts.Bytes {
					t.Fatalf("after %d tokens: %d entries, %d bytes; bounds %d, %d", i+1, n, bytes, tc.opts.Entries, tc.opts.Bytes)
				}
				last = append(last, token)
			}
			n, _ := v.cache.stats()
			if n == 0 {
				t.Fatal("nothing cached")
			}
			// The newest token is a hit (no key source call), the oldest a miss.
			newest, oldest := last[len(last)-1], last[0]
			sum1, sum2 := sha256.Sum256([]byte(newest)), sha256.Sum256([]byte(oldest))
			if e, _, _, _, _ := v.cache.lookup(&sum1); e == nil {
				t.Errorf("the newest token was evicted")
			}
			if e, _, _, _, _ := v.cache.lookup(&sum2); e != nil {
				t.Errorf("the oldest token survived a flood of %d", len(last))
			}
		})
	}
}

// TestCacheConcurrent runs hits, misses, key swaps and evictions at once
// (for the race detector) and checks no token is ever accepted while its
// key is absent.
func TestCacheConcurrent(t *testing.T) {
	a, b := testKeyFor(t, "HS256", "a"), testKeyFor(t, "HS256", "b")
	src := newSwapSource(a.verify, b.verify)
	p := testPolicy(src, "HS256")
	p.Cache = CacheOptions{Entries: 20}
	v := mustValidator(t, p)
	var tokens []string
	for i := range 40 {
		k := a
		if i%2 == 1 {
			k = b
		}
		tokens = append(tokens, signedToken(t, k, nil, func(c map[string]any) { c["jti"] = fmt.Sprint(i) }))
	}
	var withA atomic.Bool
	withA.Store(true)
	var wg sync.WaitGroup
	var bad atomic.Int32
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				tok := tokens[(i*7+w)%len(tokens)]
				// Read the key state before validating: a token of key a
				// accepted although a was already gone before the call is a bug.
				gone := !withA.Load()
				_, err := v.Validate(context.Background(), tok)
				if err == nil && gone && (i*7+w)%len(tokens)%2 == 0 {
					bad.Add(1)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			if i == 25 {
				src.set(b.verify)
				withA.Store(false)
				continue
			}
			if i > 25 {
				src.set(b.verify) // a new view without a each time
			}
			time.Sleep(100 * time.Microsecond)
		}
	})
	wg.Wait()
	if bad.Load() != 0 {
		t.Errorf("%d tokens of a removed key were accepted", bad.Load())
	}
}

func TestCacheOptionsChecked(t *testing.T) {
	k := testKeyFor(t, "ES256", "a")
	for _, o := range []CacheOptions{{Entries: -1}, {Entries: MaxCacheEntries + 1}, {Entries: 1, Bytes: -1}, {Entries: 1, Bytes: MaxCacheBytes + 1}} {
		p := testPolicy(newSwapSource(k.verify), "ES256")
		p.Cache = o
		if _, err := NewValidator(p); err == nil {
			t.Errorf("NewValidator accepted %+v", o)
		}
	}
}

// TestBlockValidateCache: jose.validate caches by default; a revoke and a
// redeploy with another audience decide the next run of a cached token.
func TestBlockValidateCache(t *testing.T) {
	e := newBlockEnv(t)
	e.ensure(t, "cache", "ES256")
	tok, kid := e.sign(t, "sign-cache", signConfig("cache", "ES256"))
	msg := func() engine.Msg { return engine.Msg{"token": tok} }
	for _, tc := range []struct {
		name   string
		config map[string]any
		want   string
	}{
		{"default", validateConfig("cache", "ES256"), ""},
		{"off", withMembers(validateConfig("cache", "ES256"), "cache", 0), ""},
		{"redeploy with another audience", withMembers(validateConfig("cache", "ES256"), "audience", []string{"other"}), "wrong_audience"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.deploy(t, chainFlow(t, "val-cache", "jose.validate", tc.config, "valid", "invalid"))
			for range 2 {
				port, out := e.run(t, "val-cache", msg())
				if got := invalidReason(out); got != tc.want || (tc.want == "") != (port == "valid") {
					t.Fatalf("port %q reason %q, want %q", port, got, tc.want)
				}
			}
		})
	}
	e.deploy(t, chainFlow(t, "val-cache", "jose.validate", validateConfig("cache", "ES256"), "valid", "invalid"))
	for range 2 { // the second run caches the token
		if port, _ := e.run(t, "val-cache", msg()); port != "valid" {
			t.Fatalf("port %q before the revoke", port)
		}
	}
	if err := e.ks.Revoke(t.Context(), "cache", kid); err != nil {
		t.Fatal(err)
	}
	if port, out := e.run(t, "val-cache", msg()); port != "invalid" || invalidReason(out) != "unknown_kid" {
		t.Fatalf("after revoke: port %q reason %q, want invalid unknown_kid", port, invalidReason(out))
	}
	for _, bad := range []any{-1, MaxCacheEntries + 1} {
		if ve := enginetest.DeployError(t, e.rt, chainFlow(t, "val-bad", "jose.validate", withMembers(validateConfig("cache", "ES256"), "cache", bad), "valid", "invalid")); ve.Field != "cache" {
			t.Errorf("cache %v: refusal names field %q", bad, ve.Field)
		}
	}
}

// BenchmarkValidateCached is a cache hit against a full validation.
//
//	go test -run='^$' -bench=ValidateCached -benchmem ./blocks/jose/
func BenchmarkValidateCached(b *testing.B) {
	for _, alg := range []string{"ES256", "RS256"} {
		k := testKeyFor(b, alg, "a")
		token := signedToken(b, k, nil, nil)
		for _, entries := range []int{0, DefaultCacheEntries} {
			p := testPolicy(newSwapSource(k.verify), alg)
			p.Cache = CacheOptions{Entries: entries}
			v := mustValidator(b, p)
			b.Run(fmt.Sprintf("%s/cache=%d", alg, entries), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.Validate(context.Background(), token); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
