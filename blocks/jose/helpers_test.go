package jose

// The helpers shared by the package's tests, one section a layer:
//
//   - clocks and stores: the test clock, the in-memory store, a keyset
//     manager over it, and readers of what a keyset reports;
//   - tokens and validators (the library): test keys, tokens signed byte
//     for byte, policies and validators;
//   - remote JWKS: a fake IdP serving a JWK Set, and a RemoteJWKS on it;
//   - blocks: a runtime with the core and jose blocks over a bolt store,
//     flows built as documents, and the capture nodes that end them.
//
// A helper that one test file alone needs stays in that file.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/blocks/core"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
	"github.com/flowd/flowd/store/storetest"
	gojose "github.com/go-jose/go-jose/v4"
)

// ---- clocks and stores

// testStore is the in-memory backend (store/memstore) with every update
// function called twice (storetest.TwiceUpdates), so the keyset code is
// checked against the update contract an optimistic backend relies on.
type testStore struct {
	store.Store
	mem *memstore.Store
}

func newTestStore(t testing.TB) *testStore {
	mem, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &testStore{Store: storetest.TwiceUpdates(mem), mem: mem}
}

// commitCount is the number of commits that changed something (the feed
// revision: one per committed change).
func (s *testStore) commitCount() int {
	rev, err := s.mem.Rev(context.Background())
	if err != nil {
		panic(err)
	}
	return int(rev)
}

// put writes a record as is, bypassing the keyset code.
func (s *testStore) put(kind, name string, data []byte) {
	err := s.mem.UpdateSecret(context.Background(), kind, name, func([]byte) ([]byte, error) {
		return slices.Clone(data), nil
	})
	if err != nil {
		panic(err)
	}
}

// raw reads a record as is; nil when it is missing.
func (s *testStore) raw(kind, name string) []byte {
	v, err := s.mem.GetSecret(context.Background(), kind, name)
	if err != nil {
		return nil
	}
	return v
}

var _ SecretStore = (*testStore)(nil)

// keysetEpoch is where the clock of a keyset or block test starts.
var keysetEpoch = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// newTestClock is the one injectable clock of a keyset or block test:
// keysets, validators and the runtime all read it.
func newTestClock() *enginetest.Clock { return enginetest.NewClock(keysetEpoch) }

// newKeysetsForTest is a manager over a fresh store with a test clock and
// small RSA keys (generation time, not security, is what tests care about).
func newKeysetsForTest(t testing.TB) (*Keysets, *testStore, *enginetest.Clock) {
	t.Helper()
	st := newTestStore(t)
	clk := newTestClock()
	m := NewKeysets(st)
	m.Now = clk.Now
	m.RSABits = 2048
	return m, st, clk
}

// newKeysetsWith is newKeysetsForTest holding keyset name with a key for
// each of algs.
func newKeysetsWith(t testing.TB, name string, algs ...string) (*Keysets, *testStore, *enginetest.Clock) {
	t.Helper()
	m, st, clk := newKeysetsForTest(t)
	createKeyset(t, m, name, algs...)
	return m, st, clk
}

// createKeyset creates keyset name on ks with a key for each of algs.
func createKeyset(t testing.TB, ks *Keysets, name string, algs ...string) {
	t.Helper()
	if err := ks.Create(t.Context(), name, algs...); err != nil {
		t.Fatalf("create keyset %s: %v", name, err)
	}
}

// anotherNode is a second keyset manager on st reading clk, as another
// flowd node (or process) on the same store is.
func anotherNode(st SecretStore, clk *enginetest.Clock) *Keysets {
	m := NewKeysets(st)
	m.Now = clk.Now
	return m
}

// keysByState groups a keyset's non-revoked keys: alg -> state -> kids.
func keysByState(info KeysetInfo) map[string]map[State][]string {
	out := map[string]map[State][]string{}
	for _, k := range info.Keys {
		if k.Revoked {
			continue
		}
		if out[k.Alg] == nil {
			out[k.Alg] = map[State][]string{}
		}
		out[k.Alg][k.State] = append(out[k.Alg][k.State], k.Kid)
	}
	return out
}

func keyInfo(t *testing.T, info KeysetInfo, kid string) KeyInfo {
	t.Helper()
	for _, k := range info.Keys {
		if k.Kid == kid {
			return k
		}
	}
	t.Fatalf("kid %s not in keyset %s", kid, info.Name)
	return KeyInfo{}
}

func hasKid(info KeysetInfo, kid string) bool {
	return slices.ContainsFunc(info.Keys, func(k KeyInfo) bool { return k.Kid == kid })
}

// assertOneActivePerAlg checks the invariant on what the manager reports.
func assertOneActivePerAlg(t *testing.T, info KeysetInfo) {
	t.Helper()
	for alg, states := range keysByState(info) {
		if n := len(states[StateActive]); n != 1 {
			t.Errorf("alg %s: %d active keys, want 1", alg, n)
		}
	}
}

// jsonMembers decodes a JSON object.
func jsonMembers(t testing.TB, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return m
}

// jwkMembers is the JSON object of a JWK.
func jwkMembers(t testing.TB, k gojose.JSONWebKey) map[string]any {
	t.Helper()
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatalf("marshal JWK: %v", err)
	}
	return jsonMembers(t, b)
}

// runWhile calls work in a loop from n goroutines (g numbers the
// goroutine, i its calls) until change returns; a goroutine stops early
// when work returns false. Run with -race, it checks what runs
// concurrently with a change such as a rotation.
func runWhile(n int, work func(g, i int) bool, change func()) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if !work(g, i) {
					return
				}
			}
		})
	}
	change()
	close(stop)
	wg.Wait()
}

// ---- tokens and validators

// The issuer and audience of testPolicy and validClaims.
const (
	testIssuer   = "https://idp.example"
	testAudience = "api://flowd"
)

// testNow is the fixed clock of the validation tests.
var testNow = time.Unix(1_700_000_000, 0)

// staticKeySource is a KeySource over fixed keys. After a refresh it serves
// afterRefresh when that is set (a rotation seen by the IdP), and it
// counts calls.
type staticKeySource struct {
	keys         []VerifyKey
	afterRefresh []VerifyKey
	err          error
	calls        atomic.Int32
	refreshes    atomic.Int32
	refreshed    atomic.Bool
}

func (s *staticKeySource) VerifyKeys(_ context.Context, refresh bool) ([]VerifyKey, error) {
	s.calls.Add(1)
	if refresh {
		s.refreshes.Add(1)
		s.refreshed.Store(true)
	}
	if s.err != nil {
		return nil, s.err
	}
	if s.refreshed.Load() && s.afterRefresh != nil {
		return s.afterRefresh, nil
	}
	return s.keys, nil
}

func staticSource(keys ...*testKey) *staticKeySource {
	s := &staticKeySource{}
	for _, k := range keys {
		s.keys = append(s.keys, k.verify)
	}
	return s
}

// testKey is a test key: its private half signs, verify is what a source
// hands the validator.
type testKey struct {
	alg    string
	kid    string
	priv   any // *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey, []byte
	verify VerifyKey
}

var (
	testKeyCacheMu sync.Mutex
	testKeyCache   = map[string]*testKey{}
)

// testKeyFor returns the cached test key for alg (RSA generation is slow);
// name tells apart several keys of one alg.
func testKeyFor(t testing.TB, alg, name string) *testKey {
	t.Helper()
	testKeyCacheMu.Lock()
	defer testKeyCacheMu.Unlock()
	id := alg + "/" + name
	if k, ok := testKeyCache[id]; ok {
		return k
	}
	k := newTestKey(t, alg, "kid-"+alg+"-"+name)
	testKeyCache[id] = k
	return k
}

func newTestKey(t testing.TB, alg, kid string) *testKey {
	t.Helper()
	var priv, pub any
	var err error
	switch alg[:2] {
	case "RS", "PS":
		var k *rsa.PrivateKey
		k, err = rsa.GenerateKey(rand.Reader, 2048)
		priv, pub = k, &k.PublicKey
	case "ES":
		curve := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		var k *ecdsa.PrivateKey
		k, err = ecdsa.GenerateKey(curve, rand.Reader)
		priv, pub = k, &k.PublicKey
	case "Ed":
		var p ed25519.PublicKey
		var k ed25519.PrivateKey
		p, k, err = ed25519.GenerateKey(rand.Reader)
		priv, pub = k, p
	case "HS":
		secret := make([]byte, jwsAlgTable[alg].minSecret)
		_, err = rand.Read(secret)
		priv, pub = secret, secret
	default:
		t.Fatalf("no test key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{alg: alg, kid: kid, priv: priv, verify: VerifyKey{
		JWK:   gojose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"},
		State: StateActive,
	}}
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// signRaw signs header and payload exactly as given (any bytes, any
// alg name) with k's private key using the stdlib primitives for k.alg.
func signRaw(t testing.TB, k *testKey, header, payload string) string {
	t.Helper()
	input := b64url([]byte(header)) + "." + b64url([]byte(payload))
	return input + "." + b64url(rawSignature(t, k.alg, k.priv, []byte(input)))
}

func rawSignature(t testing.TB, alg string, priv any, input []byte) []byte {
	t.Helper()
	hashes := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}
	h := hashes[alg[len(alg)-3:]]
	digest := func() []byte {
		hh := h.New()
		hh.Write(input)
		return hh.Sum(nil)
	}
	var sig []byte
	var err error
	switch key := priv.(type) {
	case *rsa.PrivateKey:
		if strings.HasPrefix(alg, "PS") {
			sig, err = rsa.SignPSS(rand.Reader, key, h, digest(), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, key, h, digest())
		}
	case *ecdsa.PrivateKey:
		r, s, e := ecdsa.Sign(rand.Reader, key, digest())
		if e != nil {
			t.Fatal(e)
		}
		size := (key.Curve.Params().BitSize + 7) / 8
		sig = make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
	case ed25519.PrivateKey:
		sig = ed25519.Sign(key, input)
	case []byte:
		newHash := map[crypto.Hash]func() hash.Hash{crypto.SHA256: sha256.New, crypto.SHA384: sha512.New384, crypto.SHA512: sha512.New}[h]
		mac := hmac.New(newHash, key)
		mac.Write(input)
		sig = mac.Sum(nil)
	default:
		t.Fatalf("cannot sign with %T", priv)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// validClaims are valid claims for testPolicy at testNow.
func validClaims() map[string]any {
	return map[string]any{
		"iss": testIssuer, "aud": testAudience, "sub": "alice",
		"iat": testNow.Unix() - 10, "exp": testNow.Unix() + 600,
	}
}

func jwtHeader(k *testKey) map[string]any {
	return map[string]any{"alg": k.alg, "kid": k.kid, "typ": "JWT"}
}

// signedToken signs claims with k under the standard header, after edit.
func signedToken(t testing.TB, k *testKey, editHeader func(map[string]any), editClaims func(map[string]any)) string {
	t.Helper()
	h, c := jwtHeader(k), validClaims()
	if editHeader != nil {
		editHeader(h)
	}
	if editClaims != nil {
		editClaims(c)
	}
	return signRaw(t, k, mustJSON(t, h), mustJSON(t, c))
}

func testPolicy(src KeySource, algs ...string) Policy {
	p := DefaultPolicy()
	p.Algorithms = algs
	p.Source = src
	p.Issuer = testIssuer
	p.Audience = []string{testAudience}
	p.Now = func() time.Time { return testNow }
	return p
}

func mustValidator(t testing.TB, p Policy) *Validator {
	t.Helper()
	v, err := NewValidator(p)
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	return v
}

// tokenReason returns the reason of a *TokenError, failing on other errors.
func tokenReason(t testing.TB, err error) Reason {
	t.Helper()
	if err == nil {
		return ""
	}
	var te *TokenError
	if !errors.As(err, &te) {
		t.Fatalf("error is not a *TokenError: %v", err)
	}
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("TokenError does not unwrap to ErrInvalidToken")
	}
	return te.Reason
}

// allJWSAlgs is every signature algorithm flowd signs and validates.
var allJWSAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512"}

// allKeyAlgs is every algorithm flowd makes keys for.
var allKeyAlgs = append(slices.Clone(allJWSAlgs), "RSA-OAEP-256", "ECDH-ES+A256KW", "A256KW", "dir")

// ---- remote JWKS

// fakeIdP is a JWKS endpoint whose answer the test changes as it goes.
type fakeIdP struct {
	mu       sync.Mutex
	body     []byte
	status   int
	header   http.Header
	requests atomic.Int32
	hold     chan struct{} // when set, requests wait for it to close
}

func (p *fakeIdP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	p.mu.Lock()
	body, status, hold := p.body, p.status, p.hold
	for k, v := range p.header {
		w.Header()[k] = v
	}
	p.mu.Unlock()
	if hold != nil {
		<-hold
	}
	if status == 0 {
		status = http.StatusOK
	}
	if status == http.StatusOK && w.Header().Get("ETag") != "" && r.Header.Get("If-None-Match") == w.Header().Get("ETag") {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (p *fakeIdP) set(status int, body []byte, header http.Header) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status, p.body, p.header = status, body, header
}

// holdRequests makes requests wait until the test closes p.hold.
func (p *fakeIdP) holdRequests() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = make(chan struct{})
}

// newIdP starts a fakeIdP whose first answer is status, body and header;
// its server closes when the test ends.
func newIdP(t testing.TB, status int, body []byte, header http.Header) (*fakeIdP, *httptest.Server) {
	t.Helper()
	idp := &fakeIdP{}
	idp.set(status, body, header)
	srv := httptest.NewServer(idp)
	t.Cleanup(srv.Close)
	return idp, srv
}

// publicJWKS is the public JWK Set of keys.
func publicJWKS(t testing.TB, keys ...*testKey) []byte {
	t.Helper()
	set := gojose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.verify.JWK.Public())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newTestRemote(t testing.TB, url string, clock *enginetest.Clock, edit func(*RemoteJWKSOptions)) *RemoteJWKS {
	t.Helper()
	o := RemoteJWKSOptions{URL: url, AllowLoopbackHTTP: true, Now: clock.Now}
	if edit != nil {
		edit(&o)
	}
	r, err := NewRemoteJWKS(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func kidsOf(keys []VerifyKey) string {
	var kids []string
	for _, k := range keys {
		kids = append(kids, k.JWK.KeyID)
	}
	return strings.Join(kids, ",")
}

// ---- blocks

// Flows of the block tests are built as documents and decoded like the app
// does, run from core.manual, and every branch ends in a test.capture node
// that keeps the message it got:
//
//	core.manual --out--> jose.x --port--> test.capture ("got_<port>")

// blockEnv is a keyset manager over a real bolt store, a registry with the
// core and jose blocks, and a runtime.
type blockEnv struct {
	ks  *Keysets
	st  store.Store // bbolt with every update function called twice
	reg *engine.Registry
	svc *engine.Services // what the runtime's factories look up
	rt  *engine.Runtime
	clk *enginetest.Clock

	// The test.capture nodes keep the message itself, not a copy as
	// enginetest.Sink does: TestBlockJWKSServesCachedBytes checks that
	// jose.jwks hands on the manager's cached bytes.
	mu   sync.Mutex
	caps map[string]engine.Msg // capture node id -> last message
}

func newBlockEnv(t testing.TB) *blockEnv {
	t.Helper()
	e := &blockEnv{st: storetest.TwiceUpdates(storetest.TempBolt(t)), clk: newTestClock(), caps: map[string]engine.Msg{}}
	e.ks = NewKeysets(e.st)
	e.ks.Now = e.clk.Now
	e.ks.RSABits = 2048 // generation time, not strength, matters here
	e.reg = enginetest.Registry(t, core.Register, Register)
	e.svc = engine.NewServices()
	if err := Provide(e.svc, e.ks, Options{Now: e.clk.Now, AllowInsecureJWKS: true}); err != nil {
		t.Fatal(err)
	}
	e.reg.MustRegister(engine.Spec{Type: "test.capture", Title: "capture", Category: enginetest.Category},
		func(s *engine.Setup) (engine.Block, error) {
			node := s.NodeID
			return engine.BlockFunc(func(_ context.Context, _ *engine.Exec, m engine.Msg) (string, error) {
				e.mu.Lock()
				e.caps[node] = m
				e.mu.Unlock()
				return "", nil
			}), nil
		})
	e.rt = enginetest.Runtime(t, e.reg, engine.Options{Now: e.clk.Now, Services: e.svc})
	return e
}

// chainFlow is the usual flow: manual -> one block -> a capture node per
// port ("got_<port>", including "got_error").
func chainFlow(t testing.TB, id, typ string, config map[string]any, ports ...string) *engine.Flow {
	t.Helper()
	nodes := []enginetest.Node{{ID: "start", Type: "core.manual"}, {ID: "b", Type: typ, Config: config}}
	wires := []string{"start:out->b"}
	for _, p := range append(ports, engine.ErrorPort) {
		nodes = append(nodes, enginetest.Node{ID: "got_" + p, Type: "test.capture"})
		wires = append(wires, "b:"+p+"->got_"+p)
	}
	return enginetest.Flow(t, id, nodes, wires...)
}

func (e *blockEnv) deploy(t testing.TB, f *engine.Flow) {
	t.Helper()
	v, _ := e.rt.Deployed(f.ID)
	if err := e.rt.Deploy(t.Context(), f, v+1); err != nil {
		t.Fatalf("deploy %s: %v", f.ID, err)
	}
}

// run runs a deployed flow with msg and returns the port node "b" took and
// the message that port's capture node got.
func (e *blockEnv) run(t testing.TB, flow string, msg engine.Msg) (string, engine.Msg) {
	t.Helper()
	tr, err := e.rt.Run(t.Context(), flow, "", msg)
	if err != nil {
		t.Fatalf("run %s: %v", flow, err)
	}
	port := portOf(tr, "b")
	e.mu.Lock()
	defer e.mu.Unlock()
	got := e.caps["got_"+port]
	delete(e.caps, "got_"+port)
	return port, got
}

// portOf is the port a node took in a trace.
func portOf(tr *engine.Trace, node string) string {
	for _, s := range tr.Steps {
		if s.Node == node {
			return s.Port
		}
	}
	return ""
}

// invalidReason returns msg.invalid.reason.
func invalidReason(msg engine.Msg) string {
	inv, _ := msg["invalid"].(map[string]any)
	r, _ := inv["reason"].(string)
	return r
}

// errorText returns the message of the error port.
func errorText(msg engine.Msg) string {
	e, _ := msg["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

// ensure creates keyset with a key for each of algs, as needed.
func (e *blockEnv) ensure(t testing.TB, keyset string, algs ...string) {
	t.Helper()
	if err := e.ks.Ensure(t.Context(), keyset, algs...); err != nil {
		t.Fatalf("ensure keyset %s: %v", keyset, err)
	}
}

// validateTimes creates keyset "main" with an ES256 key, deploys flow
// "v" (jose.validate), signs a token and validates it n times, and
// returns the token.
func (e *blockEnv) validateTimes(t testing.TB, n int) string {
	t.Helper()
	createKeyset(t, e.ks, "main", "ES256")
	e.deploy(t, chainFlow(t, "v", "jose.validate", validateConfig("main", "ES256"), "valid", "invalid"))
	tok, _ := e.sign(t, "s", signConfig("main", "ES256"))
	for range n {
		if port, msg := e.run(t, "v", engine.Msg{"token": tok}); port != "valid" {
			t.Fatalf("port %q, invalid %v", port, msg["invalid"])
		}
	}
	return tok
}

// signFlow is manual -> jose.sign -> capture.
func (e *blockEnv) sign(t testing.TB, flow string, config map[string]any) (token, kid string) {
	t.Helper()
	if _, ok := e.rt.Deployed(flow); !ok {
		e.deploy(t, chainFlow(t, flow, "jose.sign", config, "out"))
	}
	port, msg := e.run(t, flow, engine.Msg{})
	if port != "out" {
		t.Fatalf("sign: port %q, error %q", port, errorText(msg))
	}
	return msg["token"].(string), msg["token_kid"].(string)
}

// validateConfig is the config of a jose.validate node that accepts what
// signConfig mints.
func validateConfig(keyset string, algs ...string) map[string]any {
	return map[string]any{
		"token": "msg.token", "keyset": keyset, "algorithms": algs,
		"issuer": "https://issuer.test", "audience": []string{"api"},
	}
}

func signConfig(keyset, alg string) map[string]any {
	return map[string]any{
		"keyset": keyset, "alg": alg, "issuer": "'https://issuer.test'",
		"subject": "'user-1'", "audience": "'api'", "ttl": "1h",
	}
}

// withMembers returns a copy of m with the given members replaced (nil deletes).
func withMembers(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}
