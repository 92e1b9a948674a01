package oauth

// private_key_jwt (RFC 7523 §2.2, OpenID Connect Core §9): the client
// signs a short-lived JWT with its private key and sends it as
// client_assertion; flowd verifies it with the public keys the client
// registered, inline (jwks) or by URL (jwks_uri, fetched and cached by
// blocks/jose's remote JWKS source: https only, size-capped, refetched at
// most every 30 s for an unknown kid).
//
//	client_assertion ─► size cap ─► sub (unverified) names the client ─►
//	client registered for private_key_jwt ─► jose.Validator: alg allow-list
//	(asymmetric only), key by kid, signature, iss = sub = client_id, aud one
//	value (the issuer or the token endpoint URL), exp required ─► lifetime
//	at most 5 min ─► jti never seen before (the shared replay cache)

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/flowd/flowd/blocks/jose"
)

// Token endpoint authentication methods (RFC 7591 §2).
const (
	AuthSecretBasic   = "client_secret_basic"
	AuthSecretPost    = "client_secret_post"
	AuthPrivateKeyJWT = "private_key_jwt"
	AuthNone          = "none"
)

// AssertionType is the client_assertion_type of a JWT client assertion.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Limits of client assertions.
const (
	MaxAssertionLifetime = 5 * time.Minute
	maxAssertionBytes    = 8 << 10
	maxJWKSBytes         = 64 << 10
	assertionLeeway      = 30 * time.Second
	maxAssertionCache    = 1000
)

// AssertionAlgorithms are the algorithms a client assertion may use: never
// none, never HMAC (the keys flowd holds for the client are public).
var AssertionAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// AssertionOptions configure private_key_jwt.
type AssertionOptions struct {
	// Issuer is this server's issuer identifier: an assertion's aud must be
	// it or the token endpoint URL (Issuer + TokenPath).
	Issuer    string
	TokenPath string // default /oauth/token
	// Replay remembers the jti of assertions; nil: an in-memory cache.
	Replay jose.ReplayCache
	// HTTPClient fetches jwks_uri; AllowInsecureJWKS lets it be http to a
	// loopback host (tests).
	HTTPClient        *http.Client
	AllowInsecureJWKS bool
	Now               func() time.Time
}

// assertions verifies client assertions; built by SetAssertions.
type assertions struct {
	opts     AssertionOptions
	audience []string
	mu       sync.Mutex
	cache    map[string]*jose.Validator // client id + registration fingerprint
}

// SetAssertions configures private_key_jwt (oauth.Register calls it).
func (c *Clients) SetAssertions(o AssertionOptions) {
	if o.TokenPath == "" {
		o.TokenPath = "/oauth/token"
	}
	if o.Now == nil {
		o.Now = c.now
	}
	if o.Replay == nil {
		o.Replay = jose.NewMemoryReplayCache(jose.DefaultReplayEntries, o.Now)
	}
	iss := strings.TrimSuffix(o.Issuer, "/")
	c.assert = &assertions{opts: o, audience: []string{iss, iss + o.TokenPath}, cache: map[string]*jose.Validator{}}
}

// AssertionError is why a client assertion was refused: a reason safe to
// show (RFC 6749 invalid_client). It wraps ErrInvalidClient.
type AssertionError struct{ Reason string }

func (e *AssertionError) Error() string { return "client assertion refused: " + e.Reason }
func (e *AssertionError) Unwrap() error { return ErrInvalidClient }

func refuse(format string, args ...any) error {
	return &AssertionError{Reason: fmt.Sprintf(format, args...)}
}

// AuthenticateAssertion authenticates a client by a JWT assertion.
// clientID is the request's client_id parameter ("" when absent); when
// given it must name the assertion's subject.
func (c *Clients) AuthenticateAssertion(ctx context.Context, assertion, clientID string) (Client, error) {
	a := c.assert
	if a == nil {
		return Client{}, refuse("private_key_jwt is not configured")
	}
	if len(assertion) > maxAssertionBytes {
		return Client{}, refuse("longer than %d bytes", maxAssertionBytes)
	}
	sub, err := unverifiedSubject(assertion)
	if err != nil {
		return Client{}, err
	}
	if clientID != "" && clientID != sub {
		return Client{}, refuse("client_id does not match the assertion's sub")
	}
	cl, err := c.Get(ctx, sub)
	switch {
	case err != nil && !errors.Is(err, ErrNoClient):
		return Client{}, err
	case err != nil, cl.TokenEndpointAuthMethod != AuthPrivateKeyJWT:
		// One answer for both: whether a client id exists is not told.
		return Client{}, refuse("no client registered for private_key_jwt has this id")
	}
	v, err := a.validator(cl)
	if err != nil {
		return Client{}, err
	}
	res, err := v.Validate(ctx, assertion)
	var te *jose.TokenError
	switch {
	case errors.As(err, &te):
		return Client{}, refuse("%s", te.Reason)
	case errors.Is(err, jose.ErrKeySourceUnavailable):
		return Client{}, fmt.Errorf("client %q jwks_uri: %w", cl.ID, err)
	case err != nil:
		return Client{}, err
	}
	claims := res.Claims
	if s, _ := claims["sub"].(string); s != cl.ID {
		return Client{}, refuse("sub must be the client_id")
	}
	// RFC 7523bis: one audience value, so an assertion made for another
	// server cannot also name this one.
	if list, isList := claims["aud"].([]any); isList && len(list) != 1 {
		return Client{}, refuse("aud must be a single value")
	}
	jti, _ := claims["jti"].(string)
	if jti == "" || len(jti) > 256 {
		return Client{}, refuse("jti must be a string of 1 to 256 bytes")
	}
	exp, _ := claims["exp"].(float64)
	now := a.opts.Now()
	expT := time.Unix(int64(exp), 0)
	if expT.Sub(now) > MaxAssertionLifetime+assertionLeeway {
		return Client{}, refuse("lives longer than %s", MaxAssertionLifetime)
	}
	if iat, ok := claims["iat"].(float64); ok && exp-iat > MaxAssertionLifetime.Seconds() {
		return Client{}, refuse("lives longer than %s", MaxAssertionLifetime)
	}
	key := sha256.Sum256([]byte(cl.ID + "\x00" + jti))
	fresh, err := a.opts.Replay.Claim(ctx, "client-jwt:"+base64.RawURLEncoding.EncodeToString(key[:]), expT.Add(assertionLeeway+time.Second))
	if err != nil {
		return Client{}, fmt.Errorf("client assertion replay cache: %w", err)
	}
	if !fresh {
		return Client{}, refuse("jti was used before")
	}
	return cl, nil
}

// unverifiedSubject reads sub from an assertion's payload, to find the
// client whose keys will verify it.
func unverifiedSubject(assertion string) (string, error) {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return "", refuse("not a compact JWS")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", refuse("malformed")
	}
	var c struct {
		Sub any `json:"sub"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return "", refuse("malformed")
	}
	sub, ok := c.Sub.(string)
	if !ok || sub == "" {
		return "", refuse("sub is missing")
	}
	return sub, nil
}

// validator returns the client's validator, built once per registration.
func (a *assertions) validator(cl Client) (*jose.Validator, error) {
	fp := sha256.Sum256(append([]byte(cl.JWKSURI+"\x00"), cl.JWKS...))
	id := cl.ID + "\x00" + hex.EncodeToString(fp[:])
	a.mu.Lock()
	v := a.cache[id]
	a.mu.Unlock()
	if v != nil {
		return v, nil
	}
	var src jose.KeySource
	if cl.JWKSURI != "" {
		r, err := jose.NewRemoteJWKS(jose.RemoteJWKSOptions{URL: cl.JWKSURI, AllowLoopbackHTTP: a.opts.AllowInsecureJWKS,
			Client: a.opts.HTTPClient, Now: a.opts.Now})
		if err != nil {
			return nil, fmt.Errorf("client %q jwks_uri: %w", cl.ID, err)
		}
		src = r
	} else {
		keys, err := jose.ParseJWKSet(cl.JWKS)
		if err != nil {
			return nil, fmt.Errorf("client %q jwks: %w", cl.ID, err)
		}
		src = keys
	}
	p := jose.DefaultPolicy()
	p.Algorithms = AssertionAlgorithms
	p.Source = src
	p.Issuer = cl.ID
	p.Audience = a.audience
	p.Leeway = assertionLeeway
	p.RequiredClaims = []string{"sub", "jti"}
	p.MaxTokenSize = maxAssertionBytes
	p.Now = a.opts.Now
	v, err := jose.NewValidator(p)
	if err != nil {
		return nil, fmt.Errorf("client %q assertion policy: %w", cl.ID, err)
	}
	a.mu.Lock()
	if len(a.cache) >= maxAssertionCache {
		// Bounded: starting over costs a JWKS parse (or fetch) per client.
		clear(a.cache)
	}
	a.cache[id] = v
	a.mu.Unlock()
	return v, nil
}

// checkAuthMethod checks a registration's authentication method and keys
// (called by Add) and fills the method in when it follows from the rest.
func checkAuthMethod(cl *Client, secret string) error {
	if strings.TrimSpace(string(cl.JWKS)) == "null" {
		cl.JWKS = nil // an API caller that sent "jwks": null sent nothing
	}
	hasKeys := len(cl.JWKS) > 0 || cl.JWKSURI != ""
	if cl.TokenEndpointAuthMethod == "" {
		switch {
		case hasKeys:
			cl.TokenEndpointAuthMethod = AuthPrivateKeyJWT
		case cl.Public:
			cl.TokenEndpointAuthMethod = AuthNone
		}
	}
	switch cl.TokenEndpointAuthMethod {
	case "", AuthSecretBasic, AuthSecretPost:
		if cl.Public {
			return fmt.Errorf("%w: a public client authenticates with none", ErrBadInput)
		}
		if hasKeys {
			return fmt.Errorf("%w: jwks and jwks_uri are for private_key_jwt", ErrBadInput)
		}
	case AuthNone:
		if !cl.Public || hasKeys {
			return fmt.Errorf("%w: token_endpoint_auth_method none is for public clients (no secret, no keys)", ErrBadInput)
		}
	case AuthPrivateKeyJWT:
		switch {
		case cl.Public:
			return fmt.Errorf("%w: a public client has no keys to authenticate with", ErrBadInput)
		case secret != "":
			return fmt.Errorf("%w: a private_key_jwt client has no secret", ErrBadInput)
		case len(cl.JWKS) > 0 && cl.JWKSURI != "":
			return fmt.Errorf("%w: give jwks or jwks_uri, not both", ErrBadInput)
		case !hasKeys:
			return fmt.Errorf("%w: private_key_jwt needs the client's public keys (jwks or jwks_uri)", ErrBadInput)
		case len(cl.JWKS) > maxJWKSBytes:
			return fmt.Errorf("%w: jwks is larger than %d bytes", ErrBadInput, maxJWKSBytes)
		}
		if len(cl.JWKS) > 0 {
			if _, err := jose.ParseJWKSet(cl.JWKS); err != nil {
				return fmt.Errorf("%w: jwks: %v", ErrBadInput, err)
			}
		}
		if cl.JWKSURI != "" {
			u, err := url.Parse(cl.JWKSURI)
			loopback := u != nil && (u.Hostname() == "127.0.0.1" || u.Hostname() == "::1" || u.Hostname() == "localhost")
			if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || !(u.Scheme == "https" || u.Scheme == "http" && loopback) {
				return fmt.Errorf("%w: jwks_uri must be an https URL", ErrBadInput)
			}
		}
	default:
		return fmt.Errorf("%w: token_endpoint_auth_method %q is not one of %s, %s, %s, %s", ErrBadInput,
			truncate(cl.TokenEndpointAuthMethod, 64), AuthSecretBasic, AuthSecretPost, AuthPrivateKeyJWT, AuthNone)
	}
	return nil
}
