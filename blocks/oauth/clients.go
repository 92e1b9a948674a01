// Package oauth owns the OAuth 2.0 client registry (clients with hashed
// secrets, allowed scopes and audiences) and the blocks that authenticate
// clients and check token requests.
//
// Client secrets are hashed with argon2id (golang.org/x/crypto) and
// compared in constant time; the clear secret is shown once, when created,
// and never stored, logged or returned.
package oauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/flowd/flowd/store"
)

// Errors.
var (
	ErrNoClient      = errors.New("client not found")
	ErrClientExists  = errors.New("client already exists")
	ErrInvalidClient = errors.New("invalid client")
	ErrBadInput      = errors.New("invalid client registration")
)

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
	clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)
	scopePattern    = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]{1,128}$`) // RFC 6749 §3.3 scope-token
)

// Clients is the registry.
type Clients struct {
	kv   KV
	now  func() time.Time
	mu   sync.Mutex
	seen map[string]cacheEntry // recently verified secrets, keyed by client id
	key  [32]byte              // process-local MAC key for the cache
	ttl  time.Duration
}

type cacheEntry struct {
	mac     [32]byte
	hash    string
	expires time.Time
}

// NewClients returns a registry over kv.
func NewClients(kv KV) *Clients {
	c := &Clients{kv: kv, now: time.Now, seen: map[string]cacheEntry{}, ttl: 5 * time.Minute}
	rand.Read(c.key[:])
	return c
}

// SetClock replaces the clock (tests).
func (c *Clients) SetClock(now func() time.Time) { c.now = now }

// NewSecret returns a fresh random client secret.
func NewSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Add registers a client. For a confidential client an empty secret means
// "generate one"; the clear secret is returned (show it once).
func (c *Clients) Add(ctx context.Context, cl Client, secret string) (Client, string, error) {
	if !clientIDPattern.MatchString(cl.ID) {
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
	if cl.Public {
		if secret != "" {
			return Client{}, "", fmt.Errorf("%w: a public client has no secret", ErrBadInput)
		}
	} else {
		if secret == "" {
			secret = NewSecret()
		}
		if len(secret) < 16 {
			return Client{}, "", fmt.Errorf("%w: a client secret needs at least 16 characters", ErrBadInput)
		}
		cl.SecretHash = hashSecret(secret)
	}
	if err := checkBrowserFields(&cl); err != nil {
		return Client{}, "", err
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
	return cl.View(), secret, nil
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
	if !clientIDPattern.MatchString(id) {
		return Client{}, ErrNoClient
	}
	raw, err := c.kv.GetKV(ctx, nsClients, id)
	if err != nil {
		if isNotFound(err) {
			return Client{}, fmt.Errorf("%w: %q", ErrNoClient, id)
		}
		return Client{}, fmt.Errorf("read client %q: %w", id, err)
	}
	var cl Client
	if err := json.Unmarshal(raw, &cl); err != nil {
		return Client{}, fmt.Errorf("client %q record: %w", id, err)
	}
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
	if err := c.kv.DeleteKV(ctx, nsClients, id); err != nil {
		return fmt.Errorf("remove client %q: %w", id, err)
	}
	c.mu.Lock()
	delete(c.seen, id)
	c.mu.Unlock()
	return nil
}

// dummyHash is verified against when a client does not exist, so an
// unknown id costs the same time as a wrong secret.
var dummyHash = hashSecret("flowd-no-such-client-dummy-secret")

// Authenticate checks a client id and secret. Every failure is the same
// ErrInvalidClient (no hint whether the id exists) and costs the same.
func (c *Clients) Authenticate(ctx context.Context, id, secret string) (Client, error) {
	cl, err := c.Get(ctx, id)
	if err != nil && !errors.Is(err, ErrNoClient) {
		return Client{}, err
	}
	if errors.Is(err, ErrNoClient) || cl.Public || cl.SecretHash == "" {
		verifySecret(dummyHash, secret)
		return Client{}, ErrInvalidClient
	}
	if c.cached(cl, secret) {
		return cl, nil
	}
	if !verifySecret(cl.SecretHash, secret) {
		return Client{}, ErrInvalidClient
	}
	c.remember(cl, secret)
	return cl, nil
}

// The cache keeps, for a short time, an HMAC (process-local key) of a
// secret that verified, so a busy token endpoint does not pay argon2 on
// every request. It is bound to the stored hash: changing the secret
// invalidates it.
func (c *Clients) mac(id, secret string) [32]byte {
	m := hmac.New(sha256.New, c.key[:])
	m.Write([]byte(id))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}

func (c *Clients) cached(cl Client, secret string) bool {
	want := c.mac(cl.ID, secret)
	c.mu.Lock()
	e, ok := c.seen[cl.ID]
	c.mu.Unlock()
	return ok && e.hash == cl.SecretHash && c.now().Before(e.expires) &&
		subtle.ConstantTimeCompare(e.mac[:], want[:]) == 1
}

func (c *Clients) remember(cl Client, secret string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) > 10000 {
		clear(c.seen)
	}
	c.seen[cl.ID] = cacheEntry{mac: c.mac(cl.ID, secret), hash: cl.SecretHash, expires: c.now().Add(c.ttl)}
}

// argon2id parameters: OWASP's minimum recommendation (19 MiB, t=2, p=1).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

func hashSecret(secret string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(secret), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// verifySecret checks secret against an encoded argon2id hash in constant time.
func verifySecret(encoded, secret string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 256*1024 || t > 10 || p == 0 || p > 4 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(secret), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// Update replaces a client's editable settings (name, scopes, audiences,
// redirect URIs, post-logout URIs, grant types) with cl's, checked as Add
// checks them. The id, creation time, public/confidential kind and secret
// stay as they are.
func (c *Clients) Update(ctx context.Context, cl Client) (Client, error) {
	if !clientIDPattern.MatchString(cl.ID) {
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
	if !clientIDPattern.MatchString(id) {
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
		cl.SecretHash = hashSecret(secret)
		return json.Marshal(cl)
	})
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	delete(c.seen, id)
	c.mu.Unlock()
	return secret, nil
}

func truncateID(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
