package jose

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
)

// RemoteJWKS is a KeySource that fetches an identity provider's JWK Set
// over HTTPS and caches it.
//
//	VerifyKeys(refresh=false): cached set while fresh; refetch when stale
//	VerifyKeys(refresh=true):  refetch unless the last attempt was within
//	                           RefreshCooldown (a kid-spraying attacker gets
//	                           the cached set, the IdP sees one request)
//	a failed fetch:            keep serving the last good set
//	concurrent callers:        share one in-flight fetch
//
// Keys are admitted one by one (admitJWK): a bad key is skipped and logged,
// the rest of the set is kept. A key without an alg member is kept; it can
// only verify algorithms its kty/crv allows and the validator's allow-list
// names (EC keys: exactly one ES alg per curve; OKP Ed25519: EdDSA; RSA:
// any RS/PS alg on the list). Symmetric keys are never admitted from a
// remote set.
type RemoteJWKS struct {
	url      string
	client   *http.Client
	maxBytes int64
	minTTL   time.Duration
	maxTTL   time.Duration
	defTTL   time.Duration
	cooldown time.Duration
	log      *slog.Logger
	now      func() time.Time

	mu          sync.Mutex
	keys        []VerifyKey // last good set; replaced, never mutated
	expires     time.Time
	etag        string
	lastAttempt time.Time
	lastErr     error
	inflight    *jwksFetch
}

type jwksFetch struct {
	done chan struct{}
	keys []VerifyKey
	err  error
}

// RemoteJWKSOptions configures NewRemoteJWKS. Zero values take defaults.
type RemoteJWKSOptions struct {
	// URL of the JWK Set: https, or http to a loopback host when
	// AllowLoopbackHTTP is set (tests, a sidecar on the same machine).
	URL               string
	AllowLoopbackHTTP bool
	// Client is copied; its CheckRedirect is replaced so a redirect can
	// never change scheme, and a zero Timeout becomes Timeout below.
	Client  *http.Client
	Timeout time.Duration // default 5s
	// MaxResponseBytes caps the body; default 256 KiB.
	MaxResponseBytes int64
	// Cache-Control max-age is honoured within [MinTTL, MaxTTL]; DefaultTTL
	// applies when the response has none. Defaults 1m, 24h, 15m.
	MinTTL, MaxTTL, DefaultTTL time.Duration
	// RefreshCooldown is the least time between two fetches that were not
	// due to expiry; default 30s.
	RefreshCooldown time.Duration
	Logger          *slog.Logger
	Now             func() time.Time
}

// Defaults of RemoteJWKSOptions.
const (
	DefaultJWKSTimeout     = 5 * time.Second
	DefaultJWKSMaxBytes    = 256 << 10
	DefaultJWKSMinTTL      = time.Minute
	DefaultJWKSMaxTTL      = 24 * time.Hour
	DefaultJWKSTTL         = 15 * time.Minute
	DefaultJWKSCooldown    = 30 * time.Second
	maxJWKSRedirects       = 3
	maxJWKSDepth           = 8
	maxRemoteKeysPerFetch  = 100
	remoteJWKSUserAgent    = "flowd-jwks/1"
	remoteJWKSAcceptHeader = "application/jwk-set+json, application/json;q=0.9"
)

// ErrJWKSFetch wraps every failure to get a usable key set.
var ErrJWKSFetch = errors.New("fetching JWKS failed")

var _ KeySource = (*RemoteJWKS)(nil)

// NewRemoteJWKS checks the options (errors wrap ErrInvalidPolicy); it does
// not fetch: the first VerifyKeys does.
func NewRemoteJWKS(o RemoteJWKSOptions) (*RemoteJWKS, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("%w: remote JWKS: invalid URL", ErrInvalidPolicy)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !o.AllowLoopbackHTTP || !isLoopbackHost(u.Hostname()) {
			return nil, fmt.Errorf("%w: remote JWKS: http is only allowed to a loopback host with AllowLoopbackHTTP", ErrInvalidPolicy)
		}
	default:
		return nil, fmt.Errorf("%w: remote JWKS: URL scheme must be https", ErrInvalidPolicy)
	}
	r := &RemoteJWKS{
		url:      u.String(),
		maxBytes: o.MaxResponseBytes,
		minTTL:   o.MinTTL,
		maxTTL:   o.MaxTTL,
		defTTL:   o.DefaultTTL,
		cooldown: o.RefreshCooldown,
		log:      o.Logger,
		now:      o.Now,
	}
	setDefault(&r.maxBytes, DefaultJWKSMaxBytes)
	setDefault(&r.minTTL, DefaultJWKSMinTTL)
	setDefault(&r.maxTTL, DefaultJWKSMaxTTL)
	setDefault(&r.defTTL, DefaultJWKSTTL)
	setDefault(&r.cooldown, DefaultJWKSCooldown)
	if r.maxBytes < 0 || r.minTTL < 0 || r.cooldown < 0 || r.minTTL > r.maxTTL ||
		r.defTTL < r.minTTL || r.defTTL > r.maxTTL {
		return nil, fmt.Errorf("%w: remote JWKS: inconsistent limits", ErrInvalidPolicy)
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	c := http.Client{}
	if o.Client != nil {
		c = *o.Client
	}
	if c.Timeout == 0 {
		c.Timeout = o.Timeout
		setDefault(&c.Timeout, DefaultJWKSTimeout)
	}
	scheme := u.Scheme
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxJWKSRedirects {
			return errors.New("too many redirects")
		}
		if req.URL.Scheme != scheme {
			return errors.New("redirect changes scheme")
		}
		return nil
	}
	r.client = &c
	return r, nil
}

func setDefault[T int64 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// VerifyKeys implements KeySource.
func (r *RemoteJWKS) VerifyKeys(ctx context.Context, refresh bool) ([]VerifyKey, error) {
	r.mu.Lock()
	now := r.now()
	fresh := r.keys != nil && now.Before(r.expires)
	if fresh && !refresh {
		keys := r.keys
		r.mu.Unlock()
		return keys, nil
	}
	call := r.inflight
	if call == nil {
		if !r.lastAttempt.IsZero() && now.Sub(r.lastAttempt) < r.cooldown {
			// Too soon to ask the IdP again: what we have is the answer.
			lastErr := r.lastErr
			r.mu.Unlock()
			return r.orStale(lastErr)
		}
		call = &jwksFetch{done: make(chan struct{})}
		r.inflight = call
		r.lastAttempt = now
		etag := r.etag
		if r.keys == nil {
			etag = ""
		}
		// The fetch belongs to no single caller: one caller giving up must
		// not fail the others. The client timeout bounds it.
		go r.fetch(context.WithoutCancel(ctx), etag, call)
	}
	r.mu.Unlock()

	select {
	case <-call.done:
	case <-ctx.Done():
		return r.orStale(ctx.Err())
	}
	if call.err != nil {
		return r.orStale(call.err)
	}
	return call.keys, nil
}

// orStale answers with the last good set when there is one (stale beats
// nothing: the keys were valid when fetched), else with err.
func (r *RemoteJWKS) orStale(err error) ([]VerifyKey, error) {
	r.mu.Lock()
	keys := r.keys
	r.mu.Unlock()
	if keys != nil {
		return keys, nil
	}
	return nil, err
}

// fetch runs one request and publishes its outcome.
func (r *RemoteJWKS) fetch(ctx context.Context, etag string, call *jwksFetch) {
	keys, newETag, ttl, notModified, err := r.get(ctx, etag)

	r.mu.Lock()
	switch {
	case err != nil:
		r.lastErr = err
		call.err = err
		r.log.Warn("jose: remote JWKS fetch failed; serving the last good set if any",
			"url", r.url, "error", err)
	case notModified:
		r.expires = r.now().Add(ttl)
		r.lastErr = nil
		call.keys = r.keys
	default:
		r.keys, r.etag, r.lastErr = keys, newETag, nil
		r.expires = r.now().Add(ttl)
		call.keys = keys
	}
	r.inflight = nil
	r.mu.Unlock()
	close(call.done)
}

func (r *RemoteJWKS) get(ctx context.Context, etag string) (keys []VerifyKey, newETag string, ttl time.Duration, notModified bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, "", 0, false, fmt.Errorf("%w: %w", ErrJWKSFetch, err)
	}
	req.Header.Set("Accept", remoteJWKSAcceptHeader)
	req.Header.Set("User-Agent", remoteJWKSUserAgent)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, "", 0, false, fmt.Errorf("%w: %w", ErrJWKSFetch, err)
	}
	defer resp.Body.Close()
	ttl = r.ttl(resp.Header.Get("Cache-Control"))
	if resp.StatusCode == http.StatusNotModified && etag != "" {
		return nil, "", ttl, true, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", 0, false, fmt.Errorf("%w: HTTP status %d", ErrJWKSFetch, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, r.maxBytes+1))
	if err != nil {
		return nil, "", 0, false, fmt.Errorf("%w: reading body: %w", ErrJWKSFetch, err)
	}
	if int64(len(body)) > r.maxBytes {
		return nil, "", 0, false, fmt.Errorf("%w: response larger than %d bytes", ErrJWKSFetch, r.maxBytes)
	}
	keys, err = parseRemoteJWKS(body, r.log)
	if err != nil {
		return nil, "", 0, false, err
	}
	return keys, resp.Header.Get("ETag"), ttl, false, nil
}

// ttl reads max-age from Cache-Control and clamps it; no-store and
// no-cache mean the shortest TTL we allow, not "fetch every time".
func (r *RemoteJWKS) ttl(cc string) time.Duration {
	ttl := r.defTTL
	for _, d := range strings.Split(cc, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			return r.minTTL
		case "max-age":
			if secs, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64); err == nil && secs >= 0 {
				if secs > int64(r.maxTTL/time.Second) {
					secs = int64(r.maxTTL / time.Second)
				}
				ttl = time.Duration(secs) * time.Second
			}
		}
	}
	return min(max(ttl, r.minTTL), r.maxTTL)
}

// parseRemoteJWKS reads a JWK Set strictly and admits its keys one by one.
// A set with no usable key is an error, so a broken response never
// replaces a good set.
func parseRemoteJWKS(body []byte, log *slog.Logger) ([]VerifyKey, error) {
	if err := validateStrictJSON(body, maxJWKSDepth); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJWKSFetch, err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil || set.Keys == nil {
		return nil, fmt.Errorf("%w: not a JWK Set", ErrJWKSFetch)
	}
	if len(set.Keys) > maxRemoteKeysPerFetch {
		return nil, fmt.Errorf("%w: more than %d keys", ErrJWKSFetch, maxRemoteKeysPerFetch)
	}
	keys := make([]VerifyKey, 0, len(set.Keys))
	for i, raw := range set.Keys {
		k, err := admitJWK(raw, false)
		if err != nil {
			log.Warn("jose: remote JWKS: skipping a key", "index", i, "reason", err.Error())
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no usable key in the set", ErrJWKSFetch)
	}
	return keys, nil
}

// Why admitJWK refused a key. The text names the problem, never a value.
var (
	errJWKPrivate  = errors.New("private or secret key material")
	errJWKKid      = errors.New("kid missing or badly shaped")
	errJWKUse      = errors.New("not a signature key (use/key_ops)")
	errJWKAlg      = errors.New("alg unknown or not a signature alg for this key type")
	errJWKUnparsed = errors.New("key does not parse")
	errJWKTooWeak  = errors.New("key too weak")
	errJWKMember   = errors.New("member of the wrong type")
)

// privateJWKNames are the JWK members that carry private or secret
// material (RFC 7518 §6, RFC 9964 priv).
var privateJWKNames = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// admitJWK turns one JWK into a VerifyKey, or says why it cannot verify
// signatures for flowd: it needs a well-shaped kid, use sig (or none),
// key_ops with verify (or none), an alg (when present) that is a JWS alg
// fitting its kty/crv, and go-jose must parse it. Private members refuse
// it; allowSecret admits oct keys (secrets from a local configuration,
// never from a remote set).
func admitJWK(raw []byte, allowSecret bool) (VerifyKey, error) {
	m, err := parseStrictObject(raw, maxJWKSDepth)
	if err != nil {
		return VerifyKey{}, errJWKUnparsed
	}
	kty, _ := m["kty"].(string)
	for _, name := range privateJWKNames {
		if _, ok := m[name]; ok && !(allowSecret && kty == "oct" && name == "k") {
			return VerifyKey{}, errJWKPrivate
		}
	}
	kid, ok := m["kid"].(string)
	if !ok || !kidShapeOK(kid) {
		return VerifyKey{}, errJWKKid
	}
	var use, alg string
	if headerString(m, "use", &use) != nil || headerString(m, "alg", &alg) != nil {
		return VerifyKey{}, errJWKMember
	}
	if use != "" && use != string(UseSig) {
		return VerifyKey{}, errJWKUse
	}
	if ops, ok := m["key_ops"]; ok {
		list, ok := ops.([]any)
		if !ok {
			return VerifyKey{}, errJWKMember
		}
		verify := false
		for _, op := range list {
			verify = verify || op == "verify"
		}
		if !verify {
			return VerifyKey{}, errJWKUse
		}
	}
	var jwk gojose.JSONWebKey
	if err := parseJWKGuarded(&jwk, raw); err != nil {
		return VerifyKey{}, errJWKUnparsed
	}
	vk := VerifyKey{JWK: jwk}
	switch key := jwk.Key.(type) {
	case *rsa.PublicKey:
		if key.N.BitLen() < minVerifyRSABits || key.E < 3 || key.E%2 == 0 {
			return VerifyKey{}, errJWKTooWeak
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	case []byte:
		if !allowSecret {
			return VerifyKey{}, errJWKPrivate
		}
	default:
		return VerifyKey{}, errJWKUnparsed
	}
	if alg == "" {
		// Without alg a key must fit at least one JWS alg by its type (an
		// oct key never does: it must name its HMAC alg).
		for _, info := range jwsAlgTable {
			if _, fit := info.fit(&vk); fit == fitOK {
				return vk, nil
			}
		}
		return VerifyKey{}, errJWKAlg
	}
	info, ok := jwsAlgTable[alg]
	if !ok {
		return VerifyKey{}, errJWKAlg
	}
	switch _, fit := info.fit(&vk); fit {
	case fitMismatch:
		return VerifyKey{}, errJWKAlg
	case fitWeak:
		return VerifyKey{}, errJWKTooWeak
	}
	return vk, nil
}

// parseJWKGuarded keeps a go-jose panic on a hostile key a parse error.
func parseJWKGuarded(dst *gojose.JSONWebKey, raw []byte) (err error) {
	defer func() {
		if recover() != nil {
			err = errJWKUnparsed
		}
	}()
	return dst.UnmarshalJSON(raw)
}
