// Package oauth owns the OAuth 2.0 client registry (clients with hashed
// secrets, allowed scopes and audiences) and the blocks that authenticate
// clients and check token requests.
//
// Secrets go through passhash: a secret flowd generates (256 random bits)
// is stored as its SHA-256, one chosen by hand as argon2id, and every
// verification that needs argon2id takes a slot of the shared, bounded
// pool. The clear secret is shown once, when created, and never stored,
// logged or returned. Failed attempts are throttled per client id.
package oauth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowd/flowd/passhash"
	"github.com/flowd/flowd/store"
)

// Errors.
var (
	ErrNoClient      = errors.New("client not found")
	ErrClientExists  = errors.New("client already exists")
	ErrInvalidClient = errors.New("invalid client")
	ErrBadInput      = errors.New("invalid client registration")
	// ErrThrottled: too many failed attempts for this client id; the
	// error is a *RetryError saying how long to wait.
	ErrThrottled = errors.New("too many failed client authentications")
	// ErrBusy: no hashing slot was free in time (passhash.ErrBusy); the
	// error is a *RetryError.
	ErrBusy = passhash.ErrBusy
)

// RetryError is a refusal that says when to come back: it wraps
// ErrThrottled or ErrBusy.
type RetryError struct {
	Err   error
	After time.Duration
}

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// RetryAfterSeconds is the Retry-After value for a RetryError: whole
// seconds, rounded up, at least 1.
func (e *RetryError) RetryAfterSeconds() int64 {
	return max(1, int64((e.After+time.Second-1)/time.Second))
}

// KV is the slice of store.KV the registry needs.
type KV interface {
	GetKV(ctx context.Context, ns, key string) ([]byte, error)
	ListKV(ctx context.Context, ns string) ([]string, error)
	DeleteKV(ctx context.Context, ns, key string) error
	UpdateKV(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, error)) error
}

const nsClients = "oauth_clients"

// Client is a registered OAuth client. SecretHash is never shown.
type Client struct {
	ID         string    `json:"id"`
	Name       string    `json:"name,omitempty"`
	Scopes     []string  `json:"scopes"`
	Audiences  []string  `json:"audiences"`
	Created    time.Time `json:"created"`
	SecretHash string    `json:"secret_hash,omitempty"`
	// Public clients have no secret (authorization code + PKCE only).
	Public bool `json:"public,omitempty"`
	// RedirectURIs are matched exactly, except for the port of an http
	// loopback IP literal (AllowsRedirectURI); PostLogoutRedirectURIs
	// always exactly.
	RedirectURIs           []string `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// GrantTypes allowed; empty means client_credentials only for
	// confidential clients.
	GrantTypes []string `json:"grant_types,omitempty"`
	// DPoPBoundAccessTokens (RFC 9449 §5.2): every token request of this
	// client must carry a DPoP proof, so all its tokens are bound to a key.
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens,omitempty"`
	// TokenEndpointAuthMethod is the one way this client authenticates:
	// client_secret_basic, client_secret_post, private_key_jwt or none;
	// empty (clients registered before flowd recorded it) means either
	// secret method for a confidential client.
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	// JWKS (a JWK Set) or JWKSURI holds the public keys of a
	// private_key_jwt client.
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI string          `json:"jwks_uri,omitempty"`
	// RequirePAR (RFC 9126 require_pushed_authorization_requests): the
	// authorization endpoint takes this client's requests only by
	// request_uri from the PAR endpoint.
	RequirePAR bool `json:"require_pushed_authorization_requests,omitempty"`
	// FirstParty clients belong to the provider's own organization: the
	// person is not asked to consent to them (firstparty.go).
	FirstParty bool `json:"first_party,omitempty"`
}

// View is what APIs and lists show of a client: no hash.
func (c Client) View() Client {
	c.SecretHash = ""
	return c
}

// AllowsScope reports whether every scope in want is allowed.
func (c *Client) AllowsScope(want []string) bool {
	for _, s := range want {
		if !slices.Contains(c.Scopes, s) {
			return false
		}
	}
	return true
}

// AllowsGrant reports whether a grant type is allowed.
func (c *Client) AllowsGrant(g string) bool {
	if len(c.GrantTypes) == 0 {
		return g == "client_credentials" && !c.Public
	}
	return slices.Contains(c.GrantTypes, g)
}

var (
	scopePattern = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]{1,128}$`) // RFC 6749 §3.3 scope-token
)

// validClientID reports whether id is a client id:
// ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$, checked without the regexp engine
// (the token endpoint checks an id on every request; TestValidClientID
// holds it to that regexp).
func validClientID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == ':' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// Clients is the registry.
type Clients struct {
	// OnChange, if set, hears of clients added ("added") and removed
	// ("removed") by id, after the write (the audit log). Set before use.
	OnChange func(ctx context.Context, what, id string)
	assert   *assertions
	kv       KV
	now      func() time.Time
	hasher   *passhash.Hasher
	throttle *passhash.Throttle
	decoded  decodedClients // see clientmemo.go
}

// Throttle defaults per client id: 10 free failures, then a wait from 1 s
// doubling to 5 min; at most 10,000 ids remembered.
const (
	ThrottleFree = 10
	ThrottleBase = time.Second
	ThrottleMax  = 5 * time.Minute
	ThrottleSize = 10000
)

// malformedKey is the one throttle key of every id that cannot exist, so
// ids made up by a flood do not each take a row.
const malformedKey = "\x00malformed"

// NewClients returns a registry over kv, with a hashing pool of its own
// (default size) until SetHasher gives it the process's shared one.
func NewClients(kv KV) *Clients {
	c := &Clients{kv: kv, now: time.Now, hasher: passhash.New(passhash.Options{})}
	c.throttle = passhash.NewThrottle(passhash.ThrottleOptions{Free: ThrottleFree, Base: ThrottleBase, Max: ThrottleMax,
		Size: ThrottleSize, Now: func() time.Time { return c.now() }})
	return c
}

// SetHasher makes the registry use h, the pool shared with the other
// password checks. Call it before use.
func (c *Clients) SetHasher(h *passhash.Hasher) { c.hasher = h }

// SetThrottle replaces the per-client-id failure throttle. Call it before use.
func (c *Clients) SetThrottle(t *passhash.Throttle) { c.throttle = t }

// SetClock replaces the clock (tests).
func (c *Clients) SetClock(now func() time.Time) { c.now = now }

// NewSecret returns a fresh random client secret.
func NewSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Add registers a client. For a confidential client an empty secret means
// "generate one" (stored as its SHA-256: 256 random bits need no slow
// hash); a secret chosen by hand is stored as argon2id. The clear secret
// is returned (show it once).
func (c *Clients) Add(ctx context.Context, cl Client, secret string) (Client, string, error) {
	if !utf8.ValidString(cl.ID) {
		return Client{}, "", fmt.Errorf("%w: the client id is not valid UTF-8", ErrBadInput)
	}
	if !validClientID(cl.ID) {
		return Client{}, "", fmt.Errorf("%w: client id %q must be 1-128 letters, digits, '_', '.', ':' or '-'", ErrBadInput, cl.ID)
	}
	for _, s := range cl.Scopes {
		if !scopePattern.MatchString(s) {
			return Client{}, "", fmt.Errorf("%w: scope %q is not an RFC 6749 scope token", ErrBadInput, s)
		}
	}
	for _, a := range cl.Audiences {
		if a == "" || strings.ContainsAny(a, " \t\r\n") {
			return Client{}, "", fmt.Errorf("%w: audience %q must be a non-empty URI or name without spaces", ErrBadInput, a)
		}
	}
	if err := checkName(cl.Name); err != nil {
		return Client{}, "", err
	}
	if err := checkAuthMethod(&cl, secret); err != nil {
		return Client{}, "", err
	}
	keyAuth := cl.TokenEndpointAuthMethod == AuthPrivateKeyJWT
	generate := !cl.Public && !keyAuth && secret == ""
	switch {
	case cl.Public && secret != "":
		return Client{}, "", fmt.Errorf("%w: a public client has no secret", ErrBadInput)
	case cl.Public || generate || keyAuth:
	case len(secret) < 16:
		return Client{}, "", fmt.Errorf("%w: a client secret needs at least 16 characters", ErrBadInput)
	case len(secret) > maxSecretLen:
		return Client{}, "", fmt.Errorf("%w: a client secret has at most %d bytes", ErrBadInput, maxSecretLen)
	case !utf8.ValidString(secret):
		return Client{}, "", fmt.Errorf("%w: the client secret is not valid UTF-8", ErrBadInput)
	}
	if err := checkBrowserFields(&cl); err != nil {
		return Client{}, "", err
	}
	switch {
	case generate:
		secret = NewSecret()
		cl.SecretHash = passhash.HashRandom(secret)
	case !cl.Public && !keyAuth:
		h, err := c.hasher.Hash(ctx, secret)
		if err != nil {
			return Client{}, "", fmt.Errorf("hash client secret: %w", err)
		}
		cl.SecretHash = h
	}
	cl.Scopes = dedupe(cl.Scopes)
	cl.Audiences = dedupe(cl.Audiences)
	cl.Created = c.now().UTC().Truncate(time.Second)
	err := c.kv.UpdateKV(ctx, nsClients, cl.ID, func(old []byte) ([]byte, error) {
		if old != nil {
			return nil, fmt.Errorf("%w: %q", ErrClientExists, cl.ID)
		}
		return json.Marshal(cl)
	})
	if err != nil {
		return Client{}, "", err
	}
	if c.OnChange != nil {
		c.OnChange(ctx, "added", cl.ID)
	}
	return cl.View(), secret, nil
}

// maxSecretLen bounds a hand-set secret (argon2 of a huge input is a
// cheap way to make the server work).
const maxSecretLen = 1024

// checkName refuses a display name that is not clean text: invalid UTF-8,
// U+FFFD (what a JSON decoder leaves of invalid UTF-8), control
// characters, or more than 256 bytes.
func checkName(name string) error {
	switch {
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: the client name is not valid UTF-8", ErrBadInput)
	case strings.ContainsRune(name, utf8.RuneError):
		return fmt.Errorf("%w: the client name contains U+FFFD (the replacement character left by invalid UTF-8)", ErrBadInput)
	case len(name) > 256:
		return fmt.Errorf("%w: the client name has more than 256 bytes", ErrBadInput)
	case strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return fmt.Errorf("%w: the client name contains control characters", ErrBadInput)
	}
	return nil
}

func dedupe(in []string) []string {
	out := []string{}
	for _, s := range in {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Get returns a client (with its hash, for authentication).
func (c *Clients) Get(ctx context.Context, id string) (Client, error) {
	if !validClientID(id) {
		return Client{}, ErrNoClient
	}
	raw, err := c.kv.GetKV(ctx, nsClients, id)
	if err != nil {
		if isNotFound(err) {
			c.decoded.forget(id)
			return Client{}, fmt.Errorf("%w: %q", ErrNoClient, id)
		}
		return Client{}, fmt.Errorf("read client %q: %w", id, err)
	}
	if cl, ok := c.decoded.get(id, raw); ok {
		return cl, nil
	}
	var cl Client
	if err := json.Unmarshal(raw, &cl); err != nil {
		return Client{}, fmt.Errorf("client %q record: %w", id, err)
	}
	c.decoded.put(id, raw, cl)
	return cl, nil
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// List returns every client (views, no hashes), sorted by id.
func (c *Clients) List(ctx context.Context) ([]Client, error) {
	ids, err := c.kv.ListKV(ctx, nsClients)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	out := make([]Client, 0, len(ids))
	for _, id := range ids {
		cl, err := c.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, cl.View())
	}
	return out, nil
}

// Remove deletes a client.
func (c *Clients) Remove(ctx context.Context, id string) error {
	if _, err := c.Get(ctx, id); err != nil {
		return err
	}
	// A cached verification needs the record: it ends with it.
	if err := c.kv.DeleteKV(ctx, nsClients, id); err != nil {
		return fmt.Errorf("remove client %q: %w", id, err)
	}
	if c.OnChange != nil {
		c.OnChange(ctx, "removed", id)
	}
	return nil
}

// Authenticate checks a client id and secret. Every failure is the same
// ErrInvalidClient (no hint whether the id exists) and costs the same:
// one argon2id computation in a slot of the shared pool, whether the id
// is unknown, its secret argon2id or a generated one. Refusals that say
// "come back later" are *RetryError: ErrThrottled (too many failures for
// this id) or ErrBusy (no hashing slot in time).
//
// A secret that verified in the last few minutes is recognized from the
// hasher's cache (passhash.Hasher.VerifyCached: an HMAC bound to the
// stored hash), and a right generated secret from its SHA-256: neither
// needs argon2id or a slot, nor meets the throttle, so a client whose id
// an attacker hammers keeps getting tokens.
func (c *Clients) Authenticate(ctx context.Context, id, secret string) (Client, error) {
	cl, err := c.Get(ctx, id)
	if err != nil && !errors.Is(err, ErrNoClient) {
		return Client{}, err
	}
	known := err == nil && !cl.Public && cl.SecretHash != ""
	if known && (passhash.IsRandom(cl.SecretHash) && quickMatch(cl.SecretHash, secret) || c.hasher.Cached(cl.SecretHash, secret)) {
		return cl, nil
	}
	key := id
	if !validClientID(id) {
		key = malformedKey
	}
	// The throttle is checked before and counts after: counting before
	// (as the sign-in form does) would refuse a burst of parallel requests
	// carrying the right secret. Parallel wrong guesses that all pass the
	// check are bounded by the pool.
	if wait := c.throttle.Wait(key); wait > 0 {
		return Client{}, &RetryError{Err: ErrThrottled, After: wait}
	}
	var ok bool
	if known {
		ok, err = c.hasher.VerifyCached(ctx, cl.SecretHash, secret)
	} else {
		err = c.hasher.Fail(ctx, id, secret)
	}
	if err != nil {
		if errors.Is(err, passhash.ErrBusy) {
			return Client{}, &RetryError{Err: ErrBusy, After: c.hasher.RetryAfter()}
		}
		return Client{}, fmt.Errorf("verify client secret: %w", err)
	}
	if !ok {
		c.throttle.Fail(key)
		return Client{}, ErrInvalidClient
	}
	c.throttle.Reset(key)
	return cl, nil
}

// quickMatch compares a generated secret with its SHA-256 (no slot).
func quickMatch(encoded, secret string) bool {
	want := passhash.HashRandom(secret)
	return subtle.ConstantTimeCompare([]byte(encoded), []byte(want)) == 1
}

// Update replaces a client's editable settings (name, scopes, audiences,
// redirect URIs, post-logout URIs, grant types) with cl's, checked as Add
// checks them. The id, creation time, public/confidential kind and secret
// stay as they are.
func (c *Clients) Update(ctx context.Context, cl Client) (Client, error) {
	if !validClientID(cl.ID) {
		return Client{}, fmt.Errorf("%w: %q", ErrNoClient, truncateID(cl.ID))
	}
	var out Client
	err := c.kv.UpdateKV(ctx, nsClients, cl.ID, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, fmt.Errorf("%w: %q", ErrNoClient, cl.ID)
		}
		var cur Client
		if err := json.Unmarshal(old, &cur); err != nil {
			return nil, fmt.Errorf("client %q record: %w", cl.ID, err)
		}
		next := cur
		next.Name, next.Scopes, next.Audiences = cl.Name, cl.Scopes, cl.Audiences
		next.RedirectURIs, next.PostLogoutRedirectURIs, next.GrantTypes = cl.RedirectURIs, cl.PostLogoutRedirectURIs, cl.GrantTypes
		for _, s := range next.Scopes {
			if !scopePattern.MatchString(s) {
				return nil, fmt.Errorf("%w: scope %q is not an RFC 6749 scope token", ErrBadInput, s)
			}
		}
		for _, a := range next.Audiences {
			if a == "" || strings.ContainsAny(a, " \t\r\n") {
				return nil, fmt.Errorf("%w: audience %q must be a non-empty URI or name without spaces", ErrBadInput, a)
			}
		}
		if err := checkBrowserFields(&next); err != nil {
			return nil, err
		}
		next.Scopes = dedupe(next.Scopes)
		next.Audiences = dedupe(next.Audiences)
		out = next
		return json.Marshal(next)
	})
	if err != nil {
		return Client{}, err
	}
	return out.View(), nil
}

// RenewSecret gives a confidential client a new generated secret and
// returns it (show it once); the old one stops working at once.
func (c *Clients) RenewSecret(ctx context.Context, id string) (string, error) {
	if !validClientID(id) {
		return "", fmt.Errorf("%w: %q", ErrNoClient, truncateID(id))
	}
	secret := NewSecret()
	err := c.kv.UpdateKV(ctx, nsClients, id, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, fmt.Errorf("%w: %q", ErrNoClient, id)
		}
		var cl Client
		if err := json.Unmarshal(old, &cl); err != nil {
			return nil, fmt.Errorf("client %q record: %w", id, err)
		}
		if cl.Public {
			return nil, fmt.Errorf("%w: client %q is public: it has no secret", ErrBadInput, id)
		}
		if cl.TokenEndpointAuthMethod == AuthPrivateKeyJWT {
			return nil, fmt.Errorf("%w: client %q authenticates with private_key_jwt: it has no secret", ErrBadInput, id)
		}
		cl.SecretHash = passhash.HashRandom(secret)
		return json.Marshal(cl)
	})
	if err != nil {
		return "", err
	}
	// The verification cache is bound to the stored hash: the old secret
	// misses it from now on.
	return secret, nil
}

func truncateID(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
