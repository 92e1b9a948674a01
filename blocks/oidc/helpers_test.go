package oidc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
)

const (
	testIssuer   = "https://id.example.com"
	testPassword = "correct horse battery staple"
	webSecret    = "web-secret-0123456789"
	webCB        = "https://app.example.com/cb"
)

// clock is the test kit's fake clock, shared by the keysets and the
// blocks, with a shortcut for a run at its time.
type clock struct{ *enginetest.Clock }

// exec is a run at the clock's time.
func (c clock) exec() *engine.Exec { return &engine.Exec{Started: c.Now()} }

// fixture is a provider over a fresh store: clients web (confidential),
// spa (public), svc (client_credentials only); user ada.
type fixture struct {
	p     *provider
	st    *testStore
	clk   clock
	ada   User
	users *Users
}

func newFixture(t *testing.T, issuer string) *fixture {
	t.Helper()
	mem := memstore.MustNew(t, memstore.Options{})
	st := &testStore{Store: mem}
	clk := clock{enginetest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	ks := jose.NewKeysets(mem)
	ks.Now = clk.Now
	ks.RSABits = 2048
	ctx := t.Context()
	if err := ks.Ensure(ctx, "main", "RS256", "ES256"); err != nil {
		t.Fatal(err)
	}
	clients := oauth.NewClients(st)
	for _, c := range []struct {
		cl     oauth.Client
		secret string
	}{
		{oauth.Client{ID: "web", Name: "Web", Scopes: []string{"openid", "profile", "email", "billing"},
			RedirectURIs: []string{webCB, webCB + "?tenant=1"}, PostLogoutRedirectURIs: []string{"https://app.example.com/bye"}}, webSecret},
		{oauth.Client{ID: "other", RedirectURIs: []string{"https://other.example.com/cb"}}, "other-secret-0123456789"},
		{oauth.Client{ID: "spa", Public: true, RedirectURIs: []string{"http://127.0.0.1:5173/cb"}}, ""},
		{oauth.Client{ID: "svc", Scopes: []string{"read"}}, "svc-secret-0123456789"},
	} {
		if _, _, err := clients.Add(ctx, c.cl, c.secret); err != nil {
			t.Fatal(err)
		}
	}
	users := NewUsers(st)
	users.SetClock(clk.Now)
	ada, err := users.Add(ctx, User{Username: "ada", Email: "ada@example.com", EmailVerified: true, Name: "Ada"}, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{Deps: Deps{State: st, Secrets: st, Clients: clients, Users: users, Keysets: ks}, issuer: issuer,
		secure: strings.HasPrefix(issuer, "https://"), signer: jose.NewSigner(ks), log: discard()}
	st.takeWrites() // the set-up's
	return &fixture{p: p, st: st, clk: clk, ada: ada, users: users}
}

// testHintChecker checks id_token_hint as newHintChecker builds it for
// keyset main and algorithms RS256 and ES256, at the fixture's clock.
func testHintChecker(t *testing.T, f *fixture) *hintChecker {
	t.Helper()
	pol := jose.DefaultPolicy()
	pol.Algorithms, pol.Source, pol.Issuer = []string{"RS256", "ES256"}, f.p.Keysets.Source("main"), testIssuer
	pol.AudienceOptional, pol.Types, pol.Leeway, pol.RequiredClaims = true, []string{"JWT"}, 30*time.Second, []string{"sub", "aud", "iat"}
	pol.Now = f.clk.Now
	v, err := jose.NewValidator(pol)
	if err != nil {
		t.Fatal(err)
	}
	return &hintChecker{policy: pol, v: v}
}

// testExchange is oidc.code_exchange for audience flowd-api, issuing
// refresh tokens that live refreshTTL.
func testExchange(p *provider, refreshTTL time.Duration) *codeExchangeBlock {
	return &codeExchangeBlock{p: p, tokenGrant: tokenGrant{audience: "flowd-api", refreshTTL: refreshTTL}, issueRefresh: true}
}

// testRefresh is oidc.refresh for audience flowd-api, with its refresh
// token lifetime and retry grace period.
func testRefresh(p *provider, refreshTTL, grace time.Duration) *refreshBlock {
	return &refreshBlock{p: p, tokenGrant: tokenGrant{audience: "flowd-api", refreshTTL: refreshTTL}, grace: grace}
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// queryMsg is an http.in message for GET ?params.
func queryMsg(params url.Values, cookie string) engine.Msg {
	return engine.Msg{"req": map[string]any{"method": "GET", "path": "/oauth/authorize", "query": firstValues(params),
		"query_all": map[string][]string(params), "headers": testHeaders(cookie, ""), "remote_addr": "192.0.2.7:5555"}}
}

// formMsg is an http.in message for a form POST.
func formMsg(form url.Values, cookie, authorization string) engine.Msg {
	return engine.Msg{"req": map[string]any{"method": "POST", "path": "/oauth/authorize", "query": map[string]any{},
		"headers": testHeaders(cookie, authorization), "remote_addr": "192.0.2.7:5555"},
		"body": firstValues(form), "body_all": map[string][]string(form)}
}

// firstValues is each parameter's first value, as http.in puts it in
// msg.req.query or msg.body.
func firstValues(v url.Values) map[string]any {
	first := map[string]any{}
	for k, vs := range v {
		first[k] = vs[0]
	}
	return first
}

// testHeaders are the request headers of a test message: cookie and
// authorization when not empty.
func testHeaders(cookie, authorization string) map[string]any {
	headers := map[string]any{}
	if cookie != "" {
		headers["cookie"] = cookie
	}
	if authorization != "" {
		headers["authorization"] = authorization
	}
	return headers
}

// errorCode is the OAuth error code a block set (msg.oauth_error.error).
func errorCode(msg engine.Msg) string { return stringField(mapOf(msg["oauth_error"]), "error") }

// wantPort fails t unless a block left by want without an error.
func wantPort(t *testing.T, port string, err error, msg engine.Msg, want string) {
	t.Helper()
	if err != nil || port != want {
		t.Fatalf("port %q err %v, want %q (%v)", port, err, want, msg["oauth_error"])
	}
}

// cookieHeader turns msg.cookies (Set-Cookie values) into a Cookie header.
func cookieHeader(msg engine.Msg) string {
	var parts []string
	list, _ := msg["cookies"].([]any)
	for _, c := range list {
		nv, _, _ := strings.Cut(c.(string), ";")
		parts = append(parts, nv)
	}
	return strings.Join(parts, "; ")
}

func redirectQuery(t *testing.T, msg engine.Msg) url.Values {
	t.Helper()
	u, err := url.Parse(stringField(msg, "redirect"))
	if err != nil || stringField(msg, "redirect") == "" {
		t.Fatalf("no redirect: %v", msg)
	}
	return u.Query()
}

// testStore is the store every oidc test runs on. It runs every update
// function twice, as an optimistic backend (etcd) does after a conflict:
// a first call on the record as read, its result dropped, then the real
// one; between them, between (when set) may change the record the way a
// concurrent request would. A function that keeps state from its first
// call, or has side effects, fails the tests. It also counts writes.
type testStore struct {
	*memstore.Store
	mu      sync.Mutex
	writes  []string // "kv <ns>/<key>" or "secret <kind>/<name>", in order
	between func(ns, key string)
}

func (s *testStore) wrote(what string) {
	s.mu.Lock()
	s.writes = append(s.writes, what)
	s.mu.Unlock()
}

// takeWrites returns the writes since the last call and forgets them.
func (s *testStore) takeWrites() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.writes
	s.writes = nil
	return w
}

// setBetween sets the hook run between the two calls of an update
// function (nil: none).
func (s *testStore) setBetween(fn func(ns, key string)) {
	s.mu.Lock()
	s.between = fn
	s.mu.Unlock()
}

// twice calls fn on what read returns (the records as they are now),
// runs the between hook for each record touched, then calls update with
// fn: the real transaction, which calls it again.
func twice[V any](s *testStore, read func() (V, error), touched []store.KVRef, update func(func(V) (V, error)) error,
	fn func(V) (V, error)) error {
	old, err := read()
	if err != nil {
		return err
	}
	// As on etcd: an error from the function ends the update at once.
	if _, err := fn(old); err != nil {
		return err
	}
	s.mu.Lock()
	between := s.between
	s.mu.Unlock()
	if between != nil {
		for _, r := range touched {
			between(r.NS, r.Key)
		}
	}
	return update(fn)
}

// readOne is a read for twice: a copy of the record, nil when missing.
func readOne(get func() ([]byte, error)) func() ([]byte, error) {
	return func() ([]byte, error) {
		v, err := get()
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return bytes.Clone(v), err
	}
}

func (s *testStore) UpdateKV(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, error)) error {
	s.wrote("kv " + ns + "/" + key)
	return twice(s, readOne(func() ([]byte, error) { return s.Store.GetKV(ctx, ns, key) }), []store.KVRef{{NS: ns, Key: key}},
		func(f func([]byte) ([]byte, error)) error { return s.Store.UpdateKV(ctx, ns, key, f) }, fn)
}

// UpdateKVs calls fn twice too: once on the records as they are, then
// (after the between hook, once per record) in the store's transaction.
func (s *testStore) UpdateKVs(ctx context.Context, refs []store.KVRef, fn func(old [][]byte) ([][]byte, error)) error {
	for _, r := range refs {
		s.wrote("kv " + r.NS + "/" + r.Key)
	}
	if fn == nil || store.CheckKVRefs(refs) != nil {
		return s.Store.UpdateKVs(ctx, refs, fn) // the store reports it
	}
	read := func() ([][]byte, error) {
		old := make([][]byte, len(refs))
		for i, r := range refs {
			v, err := readOne(func() ([]byte, error) { return s.Store.GetKV(ctx, r.NS, r.Key) })()
			if err != nil {
				return nil, err
			}
			old[i] = v
		}
		return old, nil
	}
	return twice(s, read, refs, func(f func([][]byte) ([][]byte, error)) error { return s.Store.UpdateKVs(ctx, refs, f) }, fn)
}

func (s *testStore) UpdateSecret(ctx context.Context, kind, name string, fn func(old []byte) ([]byte, error)) error {
	s.wrote("secret " + kind + "/" + name)
	return twice(s, readOne(func() ([]byte, error) { return s.Store.GetSecret(ctx, kind, name) }), []store.KVRef{{NS: kind, Key: name}},
		func(f func([]byte) ([]byte, error)) error { return s.Store.UpdateSecret(ctx, kind, name, f) }, fn)
}

func (s *testStore) CreateKV(ctx context.Context, ns, key string, val []byte) error {
	s.wrote("kv " + ns + "/" + key)
	return s.Store.CreateKV(ctx, ns, key, val)
}

func (s *testStore) SetKV(ctx context.Context, ns, key string, val []byte) error {
	s.wrote("kv " + ns + "/" + key)
	return s.Store.SetKV(ctx, ns, key, val)
}

func (s *testStore) DeleteKV(ctx context.Context, ns, key string) error {
	s.wrote("kv " + ns + "/" + key)
	return s.Store.DeleteKV(ctx, ns, key)
}

func (s *testStore) DeleteSecret(ctx context.Context, kind, name string) error {
	s.wrote("secret " + kind + "/" + name)
	return s.Store.DeleteSecret(ctx, kind, name)
}
