package jose

import (
	"cmp"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	gojose "github.com/go-jose/go-jose/v4"

	"github.com/flowd/flowd/engine"
)

// A keyset lives in the SecretStore as one record:
//
//	kind "keyset" / name -> JSON {"v":1, "name", "keys": [Key with its private "jwk"], "updated"}
//
// Every change is one UpdateSecret transaction that decodes the record,
// applies the change, checks the invariants (validateKeyset) and writes it
// back. Keys move next -> active -> retired -> deleted; Rotate does all the
// moves of a rollover in that one transaction.
//
// Keysets keeps, per keyset, an immutable view built once per change: the
// public JWKS bytes and ETag, the VerifyKeys slice, the active key per alg
// with its cached go-jose signers. Readers load the view with one atomic
// load; writers (serialized per keyset) replace it.

const secretKind = "keyset"

// keysetFormat is the record's "v"; bump it with a migration in decodeKeyset.
const keysetFormat = 1

// DefaultRetireAfter is how long Rotate keeps a retired key published when
// RotateOptions.RetireAfter is zero: the retire_after jose.rotate defaults
// to, so a rotation from code matches the shipped key-rollover flow. It
// must outlast the longest token TTL plus the JWKS cache lifetime of every
// verifier.
const DefaultRetireAfter = defaultRotateRetireAfter

const (
	maxKeysPerKeyset = 100 // Generate in a loop without Rotate would grow forever
	maxKeysetName    = 64
	maxCachedTyps    = 16 // cached go-jose signers per active key (one per typ)
)

// Sentinel errors of the keyset manager (see also types.go).
var (
	ErrKeysetExists  = errors.New("keyset already exists")
	ErrKeyNotFound   = errors.New("key not found")
	ErrInvalidKeyset = errors.New("invalid keyset") // bad name, or a keyset that breaks an invariant
)

// KeysetInfo is the public description of a keyset (no key material).
type KeysetInfo struct {
	Name    string    `json:"name"`
	Keys    []KeyInfo `json:"keys"`
	Updated time.Time `json:"updated"`
}

// RotateOptions tunes Keysets.Rotate.
type RotateOptions struct {
	// Alg rotates the keys of one algorithm; "" rotates every algorithm the
	// keyset has (non-revoked) keys for.
	Alg string
	// RetireAfter is how long the old active key stays published after it
	// is retired. Zero means DefaultRetireAfter; negative is an error.
	RetireAfter time.Duration
	// Now overrides the manager's clock for this rotation.
	Now time.Time
	// For, when set, is the scheduled tick this rotation serves (a
	// schedule's scheduled_for). It is stored with the keyset, in the
	// rotation's own transaction, and a Rotate For a tick at or before the
	// stored one changes nothing and reports AlreadyDone: a tick fired
	// twice, or re-run after a node died in it, rotates once.
	For time.Time
}

// Rotation reports what a Rotate did, by kid.
type Rotation struct {
	Activated []string `json:"activated,omitempty"` // next -> active, or generated active
	Retired   []string `json:"retired,omitempty"`   // active -> retired
	Created   []string `json:"created,omitempty"`   // new keys (the new next keys)
	Deleted   []string `json:"deleted,omitempty"`   // retired keys past RetireAt
	// Evicted are retired keys deleted before their RetireAt because the
	// keyset was at its key cap (revoked keys first, then the oldest
	// deadlines). Tokens they signed stop verifying: Rotate logs a warning.
	Evicted []string `json:"evicted,omitempty"`
	// AlreadyDone: RotateOptions.For was served by an earlier rotation;
	// nothing changed.
	AlreadyDone bool `json:"already_done,omitempty"`
}

// Keysets manages named keysets over a SecretStore and caches what the
// request path needs. Set Now and RSABits before first use; after that a
// *Keysets is safe for concurrent use.
type Keysets struct {
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// OnKeyEvent, if set, hears of every key lifecycle change this manager
	// writes (see KeyEvent), after the write, with the ctx of the call
	// that made it. It must not block for long.
	OnKeyEvent func(ctx context.Context, ev KeyEvent)
	// RSABits is the size of generated RSA keys (0: 3072).
	RSABits int
	// Log hears of retired keys a rotation had to evict early to stay
	// within the key cap (nil: slog.Default()).
	Log *slog.Logger
	// SignGate, if set, is asked before every signature (Signer.Sign); an
	// error refuses it and is returned, wrapped in ErrSigningStopped. flowd
	// sets it on a cluster node, whose keys may be stale (a revocation
	// missed) while its change feed is down.
	SignGate func() error
	// UsagePeers, if set, returns the other nodes' latest UsageReport by
	// node id, which ClusterUsage adds to this process's counts (flowd
	// reads them from the store's node records).
	UsagePeers func(ctx context.Context) (map[string][]byte, error)

	store SecretStore

	mu      sync.RWMutex
	entries map[string]*ksEntry

	subMu   sync.Mutex
	subs    map[int]func(name string)
	nextSub int
}

// NewKeysets returns a manager over store. Nothing is read until a keyset
// is asked for.
func NewKeysets(store SecretStore) *Keysets {
	return &Keysets{store: store, entries: map[string]*ksEntry{}, subs: map[int]func(string){}}
}

// ksEntry is one keyset's cache slot. mu serializes this process's writes,
// reloads and cold loads of the keyset; cache hits never take it.
type ksEntry struct {
	name    string
	mu      sync.Mutex
	view    atomic.Pointer[ksView]
	version atomic.Uint64
	uses    map[string]*keyUse // by kid, carried from view to view (under mu)
	// creating is set while an Ensure makes a keyset that was missing, and
	// stays set if it fails (its flow tries again), until the keyset is
	// seen in the store: reads then answer "not yet" (see notYet).
	creating atomic.Bool
	// making is closed when the Ensure making the missing keyset now
	// returns (nil: none is running); readers wait on it a little.
	making atomic.Pointer[chan struct{}]
	// spare are keys, by alg, generated for a change of this keyset that
	// did not write them (under mu; see putSpare).
	spare map[string][]Key
}

// ksView is everything derived from one version of a keyset. It is never
// modified after it is published.
type ksView struct {
	version uint64
	record  [sha256.Size]byte // hash of the stored record, to see if Reload changed anything
	info    KeysetInfo
	jwks    []byte
	etag    string
	verify  []VerifyKey
	active  map[string]*activeKey // by alg
	decrypt []Key                 // non-revoked enc keys, active first
}

// activeKey is the signing key of one alg with its go-jose signers, one per
// typ header value, built on first use and dropped with the view.
type activeKey struct {
	key     Key
	mu      sync.Mutex
	signers atomic.Pointer[map[string]gojose.Signer]
}

func (m *Keysets) now() time.Time {
	if m.Now != nil {
		return storeTime(m.Now())
	}
	return storeTime(time.Now())
}

func (m *Keysets) keyOptions(now time.Time) KeyOptions {
	return KeyOptions{RSABits: m.RSABits, Now: func() time.Time { return now }}
}

// checkKeysetName keeps names short and boring: they end up in URLs, store
// keys and logs.
func checkKeysetName(name string) error {
	if name == "" || len(name) > maxKeysetName {
		return fmt.Errorf("%w: name must be 1 to %d characters", ErrInvalidKeyset, maxKeysetName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' && i > 0
		if !ok {
			return fmt.Errorf("%w: name %q: use letters, digits, '-', '_' and '.' (not first)", ErrInvalidKeyset, name)
		}
	}
	return nil
}

// lookup returns the entry for name, or nil.
func (m *Keysets) lookup(name string) *ksEntry {
	m.mu.RLock()
	e := m.entries[name]
	m.mu.RUnlock()
	return e
}

// entry returns the entry for name, creating it.
func (m *Keysets) entry(name string) *ksEntry {
	if e := m.lookup(name); e != nil {
		return e
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[name]
	if e == nil {
		e = &ksEntry{name: name}
		m.entries[name] = e
	}
	return e
}

// view returns the cached view of name, loading it from the store on a
// miss. The fast path takes a read lock and an atomic load, no allocation.
func (m *Keysets) view(ctx context.Context, name string) (*ksView, error) {
	e := m.lookup(name)
	if e != nil {
		if v := e.view.Load(); v != nil {
			return v, nil
		}
	}
	if err := checkKeysetName(name); err != nil {
		return nil, err
	}
	if e == nil || e.creating.Load() {
		// Probe before creating the entry: asking for a keyset that does
		// not exist (a JWKS URL with a made-up name) leaves nothing behind.
		// And before taking the lock of a keyset whose first keys are being
		// made: that holds it for as long as key generation takes (minutes
		// on a loaded machine). A request waits for that at most
		// PendingWait, then is told "not yet".
		_, _, err := m.read(ctx, name)
		if err != nil && e != nil && errors.Is(err, ErrNoKeyset) && e.waitMade(ctx) {
			_, _, err = m.read(ctx, name)
		}
		if err != nil {
			return nil, m.notYet(e, name, err)
		}
		e = m.entry(name)
	}
	// Load under the entry lock so that a load cannot publish a view older
	// than a concurrent write or Delete.
	e.mu.Lock()
	defer e.mu.Unlock()
	if v := e.view.Load(); v != nil {
		return v, nil
	}
	ks, record, err := m.read(ctx, name)
	if err != nil {
		return nil, m.notYet(e, name, err)
	}
	return e.publish(ks, record)
}

// PendingWait is how long a read of a keyset whose first keys are being
// made waits for them before it is told "not yet": long enough for the
// usual generation (an RSA-3072 key takes about a second), short enough
// that a client of a loaded server gets an answer it can act on.
const PendingWait = 10 * time.Second

// waitMade waits, up to PendingWait or ctx, for the running Ensure of the
// missing keyset to return; false if none runs or it did not return.
func (e *ksEntry) waitMade(ctx context.Context) bool {
	p := e.making.Load()
	if p == nil {
		return false
	}
	t := time.NewTimer(PendingWait)
	defer t.Stop()
	select {
	case <-*p:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// PendingRetryAfter is the Retry-After of a refusal for a keyset whose
// first keys are not made yet: about what generating them takes.
const PendingRetryAfter = 5 * time.Second

// notYet turns the ErrNoKeyset of a keyset that an Ensure is creating (or
// failed to create, and is retried by its flow) into an
// engine.UnavailableError: the JWKS and token endpoints then answer 503
// with Retry-After and say why, instead of a 500. It still wraps
// ErrNoKeyset.
func (m *Keysets) notYet(e *ksEntry, name string, err error) error {
	if e == nil || !e.creating.Load() || !errors.Is(err, ErrNoKeyset) {
		return err
	}
	return &engine.UnavailableError{Public: fmt.Sprintf("keyset %q has no keys yet; try again shortly", name),
		RetryAfter: PendingRetryAfter, Err: err}
}

// read loads and decodes a keyset from the store. SecretStore has no
// not-found sentinel this package may import, so a failed GetSecret is
// told apart from a missing record by listing the names: two read
// transactions, and only on the error path (a JWKS request for a made-up
// name must not cost a write transaction).
func (m *Keysets) read(ctx context.Context, name string) (Keyset, [sha256.Size]byte, error) {
	data, err := m.store.GetSecret(ctx, secretKind, name)
	if err != nil {
		names, lerr := m.store.ListSecrets(ctx, secretKind)
		if lerr == nil && !slices.Contains(names, name) {
			return Keyset{}, [sha256.Size]byte{}, fmt.Errorf("%w: %q", ErrNoKeyset, name)
		}
		if lerr == nil {
			// Listed: it may have been written between the two reads (a
			// first generation finishing); read it once more.
			data, err = m.store.GetSecret(ctx, secretKind, name)
		}
		if err != nil {
			return Keyset{}, [sha256.Size]byte{}, fmt.Errorf("jose: read keyset %q: %w", name, err)
		}
	}
	ks, err := decodeKeyset(name, data)
	if err != nil {
		return Keyset{}, [sha256.Size]byte{}, err
	}
	return ks, sha256.Sum256(data), nil
}

// --- store codec -----------------------------------------------------------

// storedKey is Key without its methods, so encoding/json writes the private
// JWK. It is used only here, on the way to and from the store.
type storedKey Key

type storedKeyset struct {
	V          int         `json:"v"`
	Name       string      `json:"name"`
	Keys       []storedKey `json:"keys"`
	Updated    time.Time   `json:"updated"`
	RotatedFor time.Time   `json:"rotated_for,omitzero"`
}

func encodeKeyset(ks Keyset) ([]byte, error) {
	rec := storedKeyset{V: keysetFormat, Name: ks.Name, Updated: ks.Updated, RotatedFor: ks.RotatedFor,
		Keys: make([]storedKey, len(ks.Keys))}
	for i, k := range ks.Keys {
		rec.Keys[i] = storedKey(k)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		// go-jose's marshal errors describe key types, not values.
		return nil, fmt.Errorf("jose: encode keyset %q: %w", ks.Name, err)
	}
	return data, nil
}

// decodeKeyset parses a stored record and checks it as strictly as a write:
// a damaged or hand-edited record fails here rather than at signing time.
func decodeKeyset(name string, data []byte) (Keyset, error) {
	var rec storedKeyset
	if err := json.Unmarshal(data, &rec); err != nil {
		// Never include data: it holds private keys. json errors carry
		// offsets and type names only.
		return Keyset{}, fmt.Errorf("%w: decode %q: %w", ErrInvalidKeyset, name, err)
	}
	if rec.V > keysetFormat {
		return Keyset{}, fmt.Errorf("%w: %q has format %d, this flowd reads up to %d", ErrInvalidKeyset, name, rec.V, keysetFormat)
	}
	if rec.Name != name {
		return Keyset{}, fmt.Errorf("%w: record %q names itself %q", ErrInvalidKeyset, name, rec.Name)
	}
	ks := Keyset{Name: rec.Name, Updated: storeTime(rec.Updated), RotatedFor: storeTime(rec.RotatedFor),
		Keys: make([]Key, len(rec.Keys))}
	for i, sk := range rec.Keys {
		k := Key(sk)
		k.Created, k.Activated, k.RetireAt = storeTime(k.Created), storeTime(k.Activated), storeTime(k.RetireAt)
		if rk, ok := k.JWK.Key.(*rsa.PrivateKey); ok {
			// go-jose builds the key without the precomputed values that
			// make signing fast; do it once here, before the key is shared.
			rk.Precompute()
		}
		ks.Keys[i] = k
	}
	if err := validateKeyset(ks); err != nil {
		return Keyset{}, err
	}
	return ks, nil
}

// validateKeyset checks every invariant a stored keyset must hold. Nothing
// that fails it is written.
func validateKeyset(ks Keyset) error {
	if err := checkKeysetName(ks.Name); err != nil {
		return err
	}
	if len(ks.Keys) > maxKeysPerKeyset {
		return fmt.Errorf("%w: %q has %d keys (maximum %d); rotate to delete retired keys", ErrInvalidKeyset, ks.Name, len(ks.Keys), maxKeysPerKeyset)
	}
	seen := make(map[string]bool, len(ks.Keys))
	present := map[string]bool{}
	active := map[string]int{}
	for _, k := range ks.Keys {
		if err := validateKey(k); err != nil {
			return fmt.Errorf("%w: %q: %w", ErrInvalidKeyset, ks.Name, err)
		}
		if seen[k.Kid] {
			return fmt.Errorf("%w: %q: duplicate kid %s", ErrInvalidKeyset, ks.Name, k.Kid)
		}
		seen[k.Kid] = true
		if k.Revoked {
			continue
		}
		present[k.Alg] = true
		if k.State == StateActive {
			active[k.Alg]++
		}
	}
	for _, alg := range mapKeysSorted(present) {
		if n := active[alg]; n != 1 {
			return fmt.Errorf("%w: %q has %d active %s keys (want exactly one)", ErrInvalidKeyset, ks.Name, n, alg)
		}
	}
	return nil
}

// validateKey checks one key: its description matches its material, the
// JWK carries kid, alg and use, and its state is coherent.
func validateKey(k Key) error {
	spec, err := lookupKeyAlg(k.Alg)
	if err != nil {
		return fmt.Errorf("key %s: %w", k.Kid, err)
	}
	if k.Kid == "" {
		return fmt.Errorf("%s key without kid", k.Alg)
	}
	if k.Use != spec.use {
		return fmt.Errorf("key %s: use %q for %s", k.Kid, k.Use, k.Alg)
	}
	if k.JWK.KeyID != k.Kid || k.JWK.Algorithm != k.Alg || k.JWK.Use != string(k.Use) {
		return fmt.Errorf("key %s: JWK kid/alg/use do not match the key", k.Kid)
	}
	kty, crv, size, err := checkMaterial(spec, k.JWK.Key)
	if err != nil {
		return fmt.Errorf("key %s: %w", k.Kid, err)
	}
	if kty != k.Kty || crv != k.Crv || size != k.Size {
		return fmt.Errorf("key %s: kty/crv/size do not match the key material", k.Kid)
	}
	if kty != "oct" {
		tp, err := jwkThumbprint(&k.JWK)
		if err != nil {
			return fmt.Errorf("key %s: %w", k.Kid, err)
		}
		if tp != k.Kid {
			return fmt.Errorf("key %s: kid is not the RFC 7638 thumbprint", k.Kid)
		}
	}
	switch k.State {
	case StateNext, StateActive:
		if k.Revoked {
			return fmt.Errorf("key %s: revoked but %s", k.Kid, k.State)
		}
	case StateRetired:
		if k.RetireAt.IsZero() {
			return fmt.Errorf("key %s: retired without retire_at", k.Kid)
		}
	default:
		return fmt.Errorf("key %s: unknown state %q", k.Kid, k.State)
	}
	return nil
}

// --- views -----------------------------------------------------------------

func stateRank(s State) int {
	switch s {
	case StateActive:
		return 0
	case StateNext:
		return 1
	default:
		return 2
	}
}

// publishOrder puts active keys first: some clients take the first key
// with a matching alg when a token has no kid.
func publishOrder(a, b Key) int {
	return cmp.Or(
		cmp.Compare(stateRank(a.State), stateRank(b.State)),
		cmp.Compare(a.Alg, b.Alg),
		a.Created.Compare(b.Created),
		cmp.Compare(a.Kid, b.Kid),
	)
}

// buildView derives everything the request path needs from one version of
// a keyset. It is the only place the JWKS is serialized.
func buildView(ks Keyset, record [sha256.Size]byte, version uint64) (*ksView, error) {
	v := &ksView{
		version: version,
		record:  record,
		active:  map[string]*activeKey{},
		verify:  []VerifyKey{},
		info:    KeysetInfo{Name: ks.Name, Updated: ks.Updated, Keys: make([]KeyInfo, len(ks.Keys))},
	}
	for i, k := range ks.Keys {
		v.info.Keys[i] = k.PublicInfo()
	}
	live := make([]Key, 0, len(ks.Keys))
	for _, k := range ks.Keys {
		if !k.Revoked {
			live = append(live, k)
		}
	}
	slices.SortStableFunc(live, publishOrder)

	set := gojose.JSONWebKeySet{Keys: []gojose.JSONWebKey{}}
	for _, k := range live {
		pub, isPublic := k.publicJWK()
		if isPublic {
			set.Keys = append(set.Keys, pub)
		}
		switch k.Use {
		case UseSig:
			vk := VerifyKey{State: k.State}
			if k.State == StateRetired {
				vk.RetireAt = k.RetireAt
			}
			if isPublic {
				vk.JWK = pub
			} else {
				vk.JWK = gojose.JSONWebKey{Key: k.JWK.Key, KeyID: k.Kid, Algorithm: k.Alg, Use: string(k.Use)}
			}
			v.verify = append(v.verify, vk)
		case UseEnc:
			v.decrypt = append(v.decrypt, k)
		}
		if k.State == StateActive {
			v.active[k.Alg] = &activeKey{key: k}
		}
	}
	body, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("jose: serialize JWKS of %q: %w", ks.Name, err)
	}
	// Clipped so that a caller's append copies instead of writing into the
	// shared backing array.
	v.jwks = slices.Clip(body)
	v.etag = jwksETag(body)
	v.verify = slices.Clip(v.verify)
	v.decrypt = slices.Clip(v.decrypt)
	return v, nil
}

// --- reads -----------------------------------------------------------------

// Get describes a keyset (public information only).
func (m *Keysets) Get(ctx context.Context, name string) (KeysetInfo, error) {
	v, err := m.view(ctx, name)
	if err != nil {
		return KeysetInfo{}, err
	}
	info := v.info
	info.Keys = slices.Clone(info.Keys)
	return info, nil
}

// List returns the names of all keysets in the store.
func (m *Keysets) List(ctx context.Context) ([]string, error) {
	names, err := m.store.ListSecrets(ctx, secretKind)
	if err != nil {
		return nil, fmt.Errorf("jose: list keysets: %w", err)
	}
	return names, nil
}

// Version is a counter that grows whenever this manager's cached view of
// the keyset changes; 0 means not loaded. Compare it to notice changes
// without subscribing.
func (m *Keysets) Version(name string) uint64 {
	if e := m.lookup(name); e != nil {
		if v := e.view.Load(); v != nil {
			return v.version
		}
	}
	return 0
}

// ActiveSigner returns the active key of alg in the keyset, from the cache.
// alg "" picks the keyset's only active signing key, and fails if there are
// several. The Key holds private material: use it to sign or decrypt, never
// to display (PublicInfo is for that).
func (m *Keysets) ActiveSigner(ctx context.Context, name, alg string) (Key, error) {
	ak, err := m.activeKey(ctx, name, alg)
	if err != nil {
		return Key{}, err
	}
	return ak.key, nil
}

func (m *Keysets) activeKey(ctx context.Context, name, alg string) (*activeKey, error) {
	v, err := m.view(ctx, name)
	if err != nil {
		return nil, err
	}
	if alg != "" {
		if ak := v.active[alg]; ak != nil {
			return ak, nil
		}
		return nil, fmt.Errorf("%w: keyset %q has no active %s key", ErrNoActiveKey, name, alg)
	}
	var found *activeKey
	for _, ak := range v.active {
		if ak.key.Use != UseSig {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%w: keyset %q has several signing algorithms; name one", ErrNoActiveKey, name)
		}
		found = ak
	}
	if found == nil {
		return nil, fmt.Errorf("%w: keyset %q has no active signing key", ErrNoActiveKey, name)
	}
	return found, nil
}

// Source returns a KeySource over the keyset's verification keys: the
// public parts of next, active and retired asymmetric signing keys and the
// secrets of oct (HMAC) keys, each with its State; revoked keys are left
// out. VerifyKeys returns the cached slice without allocating; refresh is
// ignored (use Reload when another process changed the store).
func (m *Keysets) Source(name string) KeySource {
	return &localSource{m: m, name: name, e: m.entry(name)}
}

type localSource struct {
	m    *Keysets
	name string
	e    *ksEntry
}

var _ KeySource = (*localSource)(nil)

func (s *localSource) VerifyKeys(ctx context.Context, _ bool) ([]VerifyKey, error) {
	if v := s.e.view.Load(); v != nil {
		return v.verify, nil
	}
	v, err := s.m.view(ctx, s.name)
	if err != nil {
		return nil, err
	}
	return v.verify, nil
}

// --- change notification ---------------------------------------------------

// Subscribe registers fn to be called with a keyset's name after every
// change this manager makes or sees (writes, Reload finding a change,
// Delete). fn runs on the changing goroutine after the cache is rebuilt;
// it must not block. cancel removes it.
func (m *Keysets) Subscribe(fn func(name string)) (cancel func()) {
	m.subMu.Lock()
	id := m.nextSub
	m.nextSub++
	m.subs[id] = fn
	m.subMu.Unlock()
	return func() {
		m.subMu.Lock()
		delete(m.subs, id)
		m.subMu.Unlock()
	}
}

func (m *Keysets) notify(name string) {
	m.subMu.Lock()
	fns := make([]func(string), 0, len(m.subs))
	for _, fn := range m.subs {
		fns = append(fns, fn)
	}
	m.subMu.Unlock()
	for _, fn := range fns {
		fn(name)
	}
}

// --- writes ----------------------------------------------------------------

// keyGen hands out new keys inside a change.
type keyGen interface {
	newKey(alg string, now time.Time) (Key, error)
}

// countGen is the dry run's generator: it counts the keys a change needs so
// they can be generated before the store transaction (RSA generation takes
// seconds and must not hold the store's write lock).
type countGen struct {
	need map[string]int
	n    int
}

func (c *countGen) newKey(alg string, now time.Time) (Key, error) {
	spec, err := lookupKeyAlg(alg)
	if err != nil {
		return Key{}, err
	}
	c.need[alg]++
	c.n++
	return Key{Kid: fmt.Sprintf("dry-run-%d", c.n), Alg: alg, Use: spec.use, Created: now}, nil
}

// poolGen serves pre-generated keys and generates more if the transaction
// saw a different keyset than the dry run. reset starts an attempt of the
// update function over (a store may call it more than once): each attempt
// takes the same keys, so a retry generates nothing the first did not.
type poolGen struct {
	keys map[string][]Key
	used map[string]int // keys taken by the current attempt
	opts KeyOptions
}

func (p *poolGen) reset() { clear(p.used) }

// unused are the pool's keys the last attempt did not take.
func (p *poolGen) unused() map[string][]Key {
	out := map[string][]Key{}
	for alg, keys := range p.keys {
		for _, k := range keys[min(p.used[alg], len(keys)):] {
			if k.Kid != "" { // a slot whose generation was cut short
				out[alg] = append(out[alg], k)
			}
		}
	}
	return out
}

// maxSpare bounds the spare keys kept per alg: an Ensure needs two.
const maxSpare = 4

// putSpare keeps keys generated for a change that did not write them (it
// failed, or needed fewer), for the keyset's next change to take instead
// of generating: on a loaded machine an attempt that ran out of time (a
// run's deadline) still hands its keys on, so the next attempt gets
// further. They were never stored nor published. The caller holds e.mu.
func (e *ksEntry) putSpare(keys map[string][]Key) {
	for alg, ks := range keys {
		if e.spare == nil {
			e.spare = map[string][]Key{}
		}
		e.spare[alg] = append(e.spare[alg], ks...)
		if n := len(e.spare[alg]); n > maxSpare {
			e.spare[alg] = slices.Delete(e.spare[alg], 0, n-maxSpare)
		}
	}
}

// takeSpare takes up to n spare keys of alg. The caller holds e.mu.
func (e *ksEntry) takeSpare(alg string, n int) []Key {
	have := e.spare[alg]
	n = min(n, len(have))
	if n == 0 {
		return nil
	}
	out := slices.Clone(have[len(have)-n:])
	e.spare[alg] = slices.Delete(have, len(have)-n, len(have))
	return out
}

func (p *poolGen) newKey(alg string, now time.Time) (Key, error) {
	if i := p.used[alg]; i < len(p.keys[alg]) {
		p.used[alg] = i + 1
		k := p.keys[alg][i]
		k.Created = now
		return k, nil
	}
	return NewKey(alg, "", p.opts)
}

// pregenerate makes the keys a dry run asked for, in parallel, taking the
// entry's spare keys first. The caller holds e.mu.
func (m *Keysets) pregenerate(ctx context.Context, e *ksEntry, need map[string]int, now time.Time) (*poolGen, error) {
	opts := m.keyOptions(now)
	pool := &poolGen{keys: map[string][]Key{}, used: map[string]int{}, opts: opts}
	type job struct {
		alg string
		i   int
	}
	var jobs []job
	for _, alg := range mapKeysSorted(need) {
		pool.keys[alg] = make([]Key, need[alg])
		spare := e.takeSpare(alg, need[alg])
		copy(pool.keys[alg], spare)
		for i := len(spare); i < need[alg]; i++ {
			jobs = append(jobs, job{alg, i})
		}
	}
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for j, jb := range jobs {
		if err := ctx.Err(); err != nil {
			errs[j] = err
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			k, err := NewKey(jb.alg, "", opts)
			if err != nil {
				errs[j] = err
				return
			}
			pool.keys[jb.alg][jb.i] = k
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		e.putSpare(pool.unused()) // what was made before ctx ended
		return nil, err
	}
	return pool, nil
}

type createMode int

const (
	mustExist  createMode = iota
	mayCreate             // Ensure
	mustCreate            // Create
)

// change is one modification of a keyset, run twice: first as a dry run on
// a copy (with countGen) to learn which keys to generate, then inside the
// store transaction on the freshly read keyset.
type change func(ks *Keyset, gen keyGen) error

// mutate applies ch to the keyset in one store transaction, checks the
// invariants before writing, and rebuilds the cache.
func (m *Keysets) mutate(ctx context.Context, name string, mode createMode, now time.Time, ch change) error {
	if err := checkKeysetName(name); err != nil {
		return err
	}
	e := m.entry(name)
	var before Keyset // for the events of this change; missing: all keys are new
	if m.OnKeyEvent != nil {
		before, _, _ = m.read(ctx, name)
	}
	changed, err := m.mutateLocked(ctx, e, mode, now, ch)
	if changed {
		m.notify(name)
		m.keyEvents(ctx, name, before, now)
	}
	return err
}

func (m *Keysets) mutateLocked(ctx context.Context, e *ksEntry, mode createMode, now time.Time, ch change) (changed bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	name := e.name

	// Dry run on a fresh read: the cache may be stale if another process
	// wrote the store.
	cur, _, err := m.read(ctx, name)
	switch {
	case errors.Is(err, ErrNoKeyset) && mode != mustExist:
		cur = Keyset{Name: name}
		if mode == mayCreate {
			e.creating.Store(true)
			made := make(chan struct{})
			e.making.Store(&made)
			defer func() {
				e.making.Store(nil)
				close(made)
			}()
		}
	case err != nil:
		return false, err
	case mode == mustCreate:
		e.creating.Store(false)
		return false, fmt.Errorf("%w: %q", ErrKeysetExists, name)
	default:
		e.creating.Store(false)
	}
	counter := &countGen{need: map[string]int{}}
	dry := cur
	dry.Keys = slices.Clone(cur.Keys)
	if err := ch(&dry, counter); err != nil {
		return false, err
	}
	pool, err := m.pregenerate(ctx, e, counter.need, now)
	if err != nil {
		return false, err
	}
	keep := true // whether pool's unused keys may serve a later change
	defer func() {
		if keep {
			e.putSpare(pool.unused())
		}
	}()

	var result Keyset
	var written []byte
	var fnErr error // our own refusal, returned as is
	err = m.store.UpdateSecret(ctx, secretKind, name, func(old []byte) ([]byte, error) {
		fnErr = nil
		pool.reset()
		ks, data, err := applyChange(name, old, mode, now, ch, pool)
		if err != nil {
			fnErr = err
			return nil, err
		}
		result, written = ks, data
		return data, nil
	})
	if errors.Is(err, errUnchanged) {
		pool.reset()      // nothing was written: every key is still unused
		return false, nil // nothing to write, nothing to tell
	}
	if err != nil {
		pool.reset() // a failed store call wrote nothing
		if fnErr != nil && errors.Is(err, fnErr) {
			// Our own refusal: a duplicate kid would say a spare key was
			// written after all, so none of these keys is used again.
			keep = false
			return false, fnErr
		}
		return false, fmt.Errorf("jose: write keyset %q: %w", name, err)
	}
	if _, err := e.publish(result, sha256.Sum256(written)); err != nil {
		// The write happened; drop the cache so the next read rebuilds it.
		e.view.Store(nil)
		return true, err
	}
	return true, nil
}

// errUnchanged aborts a transaction whose change changed nothing (Ensure of
// present algs, a second Revoke): no write, no cache rebuild, no
// notification.
var errUnchanged = errors.New("jose: keyset unchanged")

// applyChange is the body of the store transaction: decode, change, check,
// encode.
func applyChange(name string, old []byte, mode createMode, now time.Time, ch change, gen keyGen) (Keyset, []byte, error) {
	var ks Keyset
	switch {
	case old == nil && mode == mustExist:
		return Keyset{}, nil, fmt.Errorf("%w: %q", ErrNoKeyset, name)
	case old == nil:
		ks = Keyset{Name: name}
	case mode == mustCreate:
		return Keyset{}, nil, fmt.Errorf("%w: %q", ErrKeysetExists, name)
	default:
		var err error
		if ks, err = decodeKeyset(name, old); err != nil {
			return Keyset{}, nil, err
		}
	}
	var before []byte
	if old != nil {
		before, _ = encodeKeyset(Keyset{Name: ks.Name, Keys: ks.Keys})
	}
	if err := ch(&ks, gen); err != nil {
		return Keyset{}, nil, err
	}
	if before != nil {
		// ch may have changed ks.Keys in place, so compare encodings.
		if after, err := encodeKeyset(Keyset{Name: ks.Name, Keys: ks.Keys}); err == nil && string(after) == string(before) {
			return Keyset{}, nil, errUnchanged
		}
	}
	ks.Updated = now
	if err := validateKeyset(ks); err != nil {
		return Keyset{}, nil, err
	}
	data, err := encodeKeyset(ks)
	if err != nil {
		return Keyset{}, nil, err
	}
	return ks, data, nil
}

// Create makes a new keyset with an active and a next key for each alg. It
// fails with ErrKeysetExists if the keyset is there.
func (m *Keysets) Create(ctx context.Context, name string, algs ...string) error {
	now := m.now()
	return m.mutate(ctx, name, mustCreate, now, ensureAlgs(algs, now))
}

// Ensure makes the keyset if it is missing and gives every alg that has no
// keys yet an active and a next key. Existing keys are left alone.
func (m *Keysets) Ensure(ctx context.Context, name string, algs ...string) error {
	now := m.now()
	return m.mutate(ctx, name, mayCreate, now, ensureAlgs(algs, now))
}

func ensureAlgs(algs []string, now time.Time) change {
	return func(ks *Keyset, gen keyGen) error {
		for _, alg := range algs {
			if _, err := lookupKeyAlg(alg); err != nil {
				return err
			}
			if hasLiveKey(ks, alg) {
				continue
			}
			if err := addKey(ks, gen, alg, StateActive, now); err != nil {
				return err
			}
			if err := addKey(ks, gen, alg, StateNext, now); err != nil {
				return err
			}
		}
		return nil
	}
}

// Generate adds one new key of alg to the keyset in state next or active.
// A next key needs an active key of the same alg; an active key is refused
// when one exists (Rotate replaces it). use "" means the alg's use.
func (m *Keysets) Generate(ctx context.Context, name, alg string, use Use, state State) (KeyInfo, error) {
	spec, err := lookupKeyAlg(alg)
	if err != nil {
		return KeyInfo{}, err
	}
	if _, err := spec.resolveUse(use); err != nil {
		return KeyInfo{}, err
	}
	now := m.now()
	var added KeyInfo
	err = m.mutate(ctx, name, mustExist, now, func(ks *Keyset, gen keyGen) error {
		if err := checkAddState(ks, alg, state); err != nil {
			return err
		}
		if err := addKey(ks, gen, alg, state, now); err != nil {
			return err
		}
		added = ks.Keys[len(ks.Keys)-1].PublicInfo()
		return nil
	})
	if err != nil {
		return KeyInfo{}, err
	}
	return added, nil
}

// Import adds an existing private JWK (see ImportKey) to the keyset in
// state next or active, with the same rules as Generate. A key already in
// the keyset, revoked or not, is refused.
func (m *Keysets) Import(ctx context.Context, name string, jwk []byte, alg string, use Use, state State) (KeyInfo, error) {
	now := m.now()
	k, err := ImportKey(jwk, alg, use, m.keyOptions(now))
	if err != nil {
		return KeyInfo{}, err
	}
	err = m.mutate(ctx, name, mustExist, now, func(ks *Keyset, _ keyGen) error {
		if err := checkAddState(ks, k.Alg, state); err != nil {
			return err
		}
		if slices.ContainsFunc(ks.Keys, func(o Key) bool { return o.Kid == k.Kid }) {
			return fmt.Errorf("%w: key %s is already in keyset %q", ErrInvalidKeyset, k.Kid, name)
		}
		nk := k
		nk.State = state
		if state == StateActive {
			nk.Activated = now
		}
		ks.Keys = append(ks.Keys, nk)
		return nil
	})
	if err != nil {
		return KeyInfo{}, err
	}
	info := k.PublicInfo()
	info.State = state
	if state == StateActive {
		info.Activated = now
	}
	return info, nil
}

func checkAddState(ks *Keyset, alg string, state State) error {
	switch state {
	case StateActive:
		if liveIndex(ks, alg, StateActive) >= 0 {
			return fmt.Errorf("%w: %q already has an active %s key; use Rotate", ErrInvalidKeyset, ks.Name, alg)
		}
	case StateNext:
		if liveIndex(ks, alg, StateActive) < 0 {
			return fmt.Errorf("%w: %q has no active %s key; add an active key first", ErrInvalidKeyset, ks.Name, alg)
		}
	default:
		return fmt.Errorf("%w: new keys are next or active, not %q", ErrInvalidKeyset, state)
	}
	return nil
}

// Rotate rolls the keys of one alg (or of every alg) over in one store
// transaction: the oldest next key becomes active, the old active key is
// retired until now+RetireAfter, a new next key is generated, and retired
// keys past their RetireAt are deleted. An alg with no next key gets a
// freshly generated active key (and a new next).
func (m *Keysets) Rotate(ctx context.Context, name string, opts RotateOptions) (Rotation, error) {
	now := storeTime(opts.Now)
	if opts.Now.IsZero() {
		now = m.now()
	}
	retireAfter := opts.RetireAfter
	switch {
	case retireAfter == 0:
		retireAfter = DefaultRetireAfter
	case retireAfter < 0:
		return Rotation{}, fmt.Errorf("%w: negative RetireAfter", ErrInvalidKeyset)
	}
	if opts.Alg != "" {
		if _, err := lookupKeyAlg(opts.Alg); err != nil {
			return Rotation{}, err
		}
	}
	forTick := storeTime(opts.For)
	var rot Rotation
	err := m.mutate(ctx, name, mustExist, now, func(ks *Keyset, gen keyGen) error {
		rot = Rotation{}
		if !forTick.IsZero() {
			if !ks.RotatedFor.Before(forTick) {
				rot.AlreadyDone = true
				return errUnchanged
			}
			ks.RotatedFor = forTick
		}
		// Prune first: the keys retired below have RetireAt in the future.
		kept := ks.Keys[:0]
		for _, k := range ks.Keys {
			if k.State == StateRetired && now.After(k.RetireAt) {
				rot.Deleted = append(rot.Deleted, k.Kid)
				continue
			}
			kept = append(kept, k)
		}
		clear(ks.Keys[len(kept):])
		ks.Keys = kept

		algs := liveAlgs(ks)
		if opts.Alg != "" {
			if !slices.Contains(algs, opts.Alg) {
				return fmt.Errorf("%w: keyset %q has no %s keys to rotate; use Ensure", ErrNoActiveKey, ks.Name, opts.Alg)
			}
			algs = []string{opts.Alg}
		}
		for _, alg := range algs {
			if err := rotateAlg(ks, gen, alg, now, retireAfter, &rot); err != nil {
				return err
			}
		}
		rot.Evicted = evictRetired(ks, maxKeysPerKeyset)
		return nil
	})
	if errors.Is(err, errUnchanged) && rot.AlreadyDone {
		return Rotation{AlreadyDone: true}, nil // refused by the dry run
	}
	if err != nil {
		return Rotation{}, err
	}
	if len(rot.Evicted) > 0 {
		m.log().Warn("keyset at its key cap: retired keys deleted before their deadline; tokens they signed no longer verify",
			"keyset", name, "evicted", rot.Evicted, "cap", maxKeysPerKeyset)
	}
	return rot, nil
}

func (m *Keysets) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.Default()
}

// evictRetired deletes retired keys until the keyset holds at most limit
// keys and returns their kids. A scheduled rotation must never fail because
// quick manual rotations filled the keyset with retired keys still within
// their deadline; of the keys that may go, revoked ones (no longer
// published) go first, then those whose deadline is nearest, which have
// the fewest live tokens left. Next and active keys are never evicted.
func evictRetired(ks *Keyset, limit int) []string {
	over := len(ks.Keys) - limit
	if over <= 0 {
		return nil
	}
	var cand []int
	for i, k := range ks.Keys {
		if k.State == StateRetired {
			cand = append(cand, i)
		}
	}
	slices.SortFunc(cand, func(a, b int) int {
		ka, kb := ks.Keys[a], ks.Keys[b]
		if ka.Revoked != kb.Revoked {
			if ka.Revoked {
				return -1
			}
			return 1
		}
		return cmp.Or(ka.RetireAt.Compare(kb.RetireAt), cmp.Compare(ka.Kid, kb.Kid))
	})
	cand = cand[:min(over, len(cand))]
	drop := make(map[int]bool, len(cand))
	evicted := make([]string, 0, len(cand))
	for _, i := range cand {
		drop[i] = true
		evicted = append(evicted, ks.Keys[i].Kid)
	}
	kept := ks.Keys[:0]
	for i, k := range ks.Keys {
		if !drop[i] {
			kept = append(kept, k)
		}
	}
	clear(ks.Keys[len(kept):])
	ks.Keys = kept
	return evicted
}

func rotateAlg(ks *Keyset, gen keyGen, alg string, now time.Time, retireAfter time.Duration, rot *Rotation) error {
	old := liveIndex(ks, alg, StateActive)
	if next := liveIndex(ks, alg, StateNext); next >= 0 {
		ks.Keys[next].State = StateActive
		ks.Keys[next].Activated = now
		rot.Activated = append(rot.Activated, ks.Keys[next].Kid)
	} else {
		if err := addKey(ks, gen, alg, StateActive, now); err != nil {
			return err
		}
		kid := ks.Keys[len(ks.Keys)-1].Kid
		rot.Activated = append(rot.Activated, kid)
		rot.Created = append(rot.Created, kid)
	}
	if old >= 0 {
		ks.Keys[old].State = StateRetired
		ks.Keys[old].RetireAt = now.Add(retireAfter)
		rot.Retired = append(rot.Retired, ks.Keys[old].Kid)
	}
	if err := addKey(ks, gen, alg, StateNext, now); err != nil {
		return err
	}
	rot.Created = append(rot.Created, ks.Keys[len(ks.Keys)-1].Kid)
	return nil
}

// Revoke takes a key out at once: it is marked revoked and retired, leaves
// the JWKS and the verification keys with this change, and is deleted by
// the next Rotate. Revoking the active key promotes the next key (or
// generates a new active key) so signing goes on; the alg gets a fresh
// next key if it has none. Revoking a revoked key is a no-op.
//
// The revocation commits first, on its own, so that it reaches every node
// at once; the fresh next key (an RSA key takes up to seconds to generate
// on a busy machine) follows in a second change before Revoke returns.
//
// Like Rotate, a Revoke at the key cap evicts retired keys (revoked ones
// first, so usually the key just revoked) rather than fail: an emergency
// revoke must not be blocked by old keys.
func (m *Keysets) Revoke(ctx context.Context, name, kid string) error {
	now := m.now()
	var evicted []string
	var needNext string
	err := m.mutate(ctx, name, mustExist, now, func(ks *Keyset, gen keyGen) error {
		evicted, needNext = nil, "" // the function may run again
		alg, err := revokeKey(ks, gen, kid, now)
		if err != nil {
			return err
		}
		if alg != "" && liveIndex(ks, alg, StateNext) < 0 {
			needNext = alg
		}
		evicted = evictRetired(ks, maxKeysPerKeyset)
		return nil
	})
	if err == nil && needNext != "" {
		now := m.now()
		var more []string
		err = m.mutate(ctx, name, mustExist, now, func(ks *Keyset, gen keyGen) error {
			more = nil
			if liveIndex(ks, needNext, StateNext) >= 0 || liveIndex(ks, needNext, StateActive) < 0 {
				return nil // topped up meanwhile, or the alg is gone
			}
			if err := addKey(ks, gen, needNext, StateNext, now); err != nil {
				return err
			}
			more = evictRetired(ks, maxKeysPerKeyset)
			return nil
		})
		evicted = append(evicted, more...)
	}
	if len(evicted) > 0 {
		m.log().Warn("keyset at its key cap: retired keys deleted before their deadline; tokens they signed no longer verify",
			"keyset", name, "evicted", evicted, "cap", maxKeysPerKeyset)
	}
	return err
}

// revokeKey revokes kid and promotes the alg's next key if kid was active
// (generating an active key only when there is no next one). It returns
// the alg of a key that was live, "" otherwise; a next key for that alg is
// the caller's to add.
func revokeKey(ks *Keyset, gen keyGen, kid string, now time.Time) (string, error) {
	i := slices.IndexFunc(ks.Keys, func(k Key) bool { return k.Kid == kid })
	if i < 0 {
		return "", fmt.Errorf("%w: %q in keyset %q", ErrKeyNotFound, kid, ks.Name)
	}
	k := &ks.Keys[i]
	if k.Revoked {
		return "", nil
	}
	alg, wasLive := k.Alg, k.State != StateRetired
	k.Revoked, k.State, k.RetireAt = true, StateRetired, now
	if !wasLive {
		return "", nil
	}
	if liveIndex(ks, alg, StateActive) < 0 {
		if next := liveIndex(ks, alg, StateNext); next >= 0 {
			ks.Keys[next].State = StateActive
			ks.Keys[next].Activated = now
		} else if err := addKey(ks, gen, alg, StateActive, now); err != nil {
			return "", err
		}
	}
	return alg, nil
}

// Delete removes a keyset and all its keys from the store.
func (m *Keysets) Delete(ctx context.Context, name string) error {
	if err := checkKeysetName(name); err != nil {
		return err
	}
	e := m.entry(name)
	e.mu.Lock()
	err := m.store.UpdateSecret(ctx, secretKind, name, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, fmt.Errorf("%w: %q", ErrNoKeyset, name)
		}
		return nil, nil
	})
	if err == nil {
		e.view.Store(nil)
		e.creating.Store(false)
	}
	e.mu.Unlock()
	if err != nil {
		if errors.Is(err, ErrNoKeyset) {
			return err
		}
		return fmt.Errorf("jose: delete keyset %q: %w", name, err)
	}
	m.notify(name)
	m.emit(ctx, KeyEvent{Kind: EventKeysetDeleted, Keyset: name})
	return nil
}

// Reload rebuilds the cache of a keyset from the store, for changes made by
// another process (the CLI). Subscribers hear of it only if it changed.
func (m *Keysets) Reload(ctx context.Context, name string) error {
	if err := checkKeysetName(name); err != nil {
		return err
	}
	e := m.entry(name)
	changed, err := m.reloadLocked(ctx, e)
	if changed {
		m.notify(name)
	}
	return err
}

func (m *Keysets) reloadLocked(ctx context.Context, e *ksEntry) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ks, record, err := m.read(ctx, e.name)
	if errors.Is(err, ErrNoKeyset) {
		return e.view.Swap(nil) != nil, err
	}
	if err != nil {
		return false, err
	}
	if cur := e.view.Load(); cur != nil && cur.record == record {
		return false, nil
	}
	if _, err := e.publish(ks, record); err != nil {
		return false, err
	}
	return true, nil
}

// --- helpers over a keyset being changed -------------------------------------

// liveIndex is the index of the oldest non-revoked key of alg in state, or -1.
func liveIndex(ks *Keyset, alg string, state State) int {
	best := -1
	for i, k := range ks.Keys {
		if k.Alg != alg || k.State != state || k.Revoked {
			continue
		}
		if best < 0 || k.Created.Before(ks.Keys[best].Created) {
			best = i
		}
	}
	return best
}

func hasLiveKey(ks *Keyset, alg string) bool {
	return slices.ContainsFunc(ks.Keys, func(k Key) bool { return k.Alg == alg && !k.Revoked })
}

// liveAlgs lists the algs with non-revoked keys, sorted.
func liveAlgs(ks *Keyset) []string {
	set := map[string]bool{}
	for _, k := range ks.Keys {
		if !k.Revoked {
			set[k.Alg] = true
		}
	}
	return mapKeysSorted(set)
}

func addKey(ks *Keyset, gen keyGen, alg string, state State, now time.Time) error {
	k, err := gen.newKey(alg, now)
	if err != nil {
		return err
	}
	k.State = state
	if state == StateActive {
		k.Activated = now
	}
	ks.Keys = append(ks.Keys, k)
	return nil
}

func mapKeysSorted[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
