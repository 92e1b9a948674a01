package baseline

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/argon2"
)

// The token endpoint of the baseline: what flowd's token flow does for
// grant_type=client_credentials, by hand.
//
//	POST /oauth/token        RS256 access token (RFC 9068 at+jwt)
//	POST /bench/token-es256  the same with ES256 (bench/benchflows derives flowd's side)
//
// Client authentication: client_secret_basic or client_secret_post, the
// client from memory, the secret checked with argon2id (flowd's
// parameters: m=19 MiB, t=2, p=1) at most two at a time, a success
// remembered for 5 minutes under an HMAC of the stored hash and the
// secret (flowd's passhash cache). Then grant_type, scopes within the
// client's, an RFC 8707 resource among its audiences, and a token with
// iss, sub, aud, iat, exp (1 h), nbf, jti (128 random bits), client_id
// and scope, signed with a go-jose signer built once per key.

// argon2id parameters of flowd's passhash.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	secretTTL    = 5 * time.Minute
	maxForm      = 1 << 20
	tokenTTL     = 3600
	maxScopes    = 50
)

// Client is a registered OAuth client; Secret is hashed at New and not kept.
type Client struct {
	ID        string
	Secret    string
	Scopes    []string
	Audiences []string
}

type client struct {
	id        string
	salt, key []byte // argon2id
	hashID    string // what the success cache is keyed on (the stored hash)
	scopes    []string
	audiences []string
}

type tokenIssuer struct {
	issuer, audience string
	clients          map[string]*client
	rs256, es256     jose.Signer
	hmacKey          [32]byte
	slots            chan struct{} // argon2id computations at once

	mu     sync.Mutex
	recent map[[32]byte]time.Time // successes, by HMAC(hash, secret)
}

// newTokenIssuer hashes the clients' secrets and builds the signers. nil
// keys are generated with flowd's sizes (RSA-3072, P-256).
func newTokenIssuer(issuer, audience string, clients []Client, rsaKey *rsa.PrivateKey, ecKey *ecdsa.PrivateKey) (*tokenIssuer, error) {
	t := &tokenIssuer{issuer: issuer, audience: audience, clients: map[string]*client{},
		slots: make(chan struct{}, 2), recent: map[[32]byte]time.Time{}}
	if _, err := rand.Read(t.hmacKey[:]); err != nil {
		return nil, err
	}
	for _, c := range clients {
		salt := make([]byte, 16)
		if _, err := rand.Read(salt); err != nil {
			return nil, err
		}
		key := argon2.IDKey([]byte(c.Secret), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
		t.clients[c.ID] = &client{id: c.ID, salt: salt, key: key,
			hashID: base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(key),
			scopes: c.Scopes, audiences: c.Audiences}
	}
	var err error
	if rsaKey == nil {
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 3072); err != nil {
			return nil, err
		}
	}
	if ecKey == nil {
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, err
		}
	}
	if t.rs256, err = newSigner(jose.RS256, rsaKey, "bench-rs256"); err != nil {
		return nil, err
	}
	if t.es256, err = newSigner(jose.ES256, ecKey, "bench-es256"); err != nil {
		return nil, err
	}
	return t, nil
}

func newSigner(alg jose.SignatureAlgorithm, key any, kid string) (jose.Signer, error) {
	opts := (&jose.SignerOptions{}).WithType("at+jwt").WithHeader(jose.HeaderKey("kid"), kid)
	return jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
}

// oauthError is an RFC 6749 §5.2 answer.
type oauthError struct {
	status            int
	code, description string
}

func (t *tokenIssuer) handler(signer func(*tokenIssuer) jose.Signer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := t.issue(r, signer(t))
		if err != nil {
			var oe *oauthError
			if !errors.As(err, &oe) {
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			if oe.status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="flowd"`)
			}
			w.Header().Set("Pragma", "no-cache")
			writeJSON(w, oe.status, map[string]any{"error": oe.code, "error_description": oe.description})
			return
		}
		w.Header().Set("Pragma", "no-cache")
		writeJSON(w, http.StatusOK, body)
	}
}

func (e *oauthError) Error() string { return e.code + ": " + e.description }

func oerr(status int, code, desc string) error {
	return &oauthError{status: status, code: code, description: desc}
}

func (t *tokenIssuer) issue(r *http.Request, signer jose.Signer) (map[string]any, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return nil, oerr(400, "invalid_request", "the body is not a form")
	}
	cl, err := t.authenticate(r.Context(), r)
	if err != nil {
		return nil, err
	}
	switch grant := r.PostForm.Get("grant_type"); {
	case grant == "":
		return nil, oerr(400, "invalid_request", "grant_type is required: authorization_code, refresh_token or client_credentials")
	case grant != "client_credentials":
		return nil, oerr(400, "unsupported_grant_type", "grant_type must be authorization_code, refresh_token or client_credentials")
	}
	requested := strings.Fields(r.PostForm.Get("scope"))
	if len(requested) > maxScopes {
		return nil, oerr(400, "invalid_scope", "too many scopes requested")
	}
	if len(requested) == 0 {
		requested = cl.scopes
	}
	for _, s := range requested {
		if !slices.Contains(cl.scopes, s) {
			return nil, oerr(400, "invalid_scope", fmt.Sprintf("scope %q is not allowed for this client", s))
		}
	}
	audience := t.audience
	switch res := r.PostForm["resource"]; len(res) {
	case 0:
	case 1:
		u, err := url.Parse(res[0])
		if err != nil || !u.IsAbs() || u.Fragment != "" {
			return nil, oerr(400, "invalid_target", "resource must be an absolute URI without a fragment")
		}
		if !slices.Contains(cl.audiences, res[0]) {
			return nil, oerr(400, "invalid_target", "this client may not request tokens for that resource")
		}
		audience = res[0]
	default:
		return nil, oerr(400, "invalid_target", "request one resource per token")
	}
	var seen []string
	for _, s := range requested {
		if !slices.Contains(seen, s) {
			seen = append(seen, s)
		}
	}
	scope := strings.Join(seen, " ")
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return nil, err
	}
	now := time.Now().Unix()
	claims, err := json.Marshal(map[string]any{"iss": t.issuer, "sub": cl.id, "aud": audience,
		"iat": now, "nbf": now, "exp": now + tokenTTL, "jti": base64.RawURLEncoding.EncodeToString(jti[:]),
		"client_id": cl.id, "scope": scope})
	if err != nil {
		return nil, err
	}
	jws, err := signer.Sign(claims)
	if err != nil {
		return nil, err
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return nil, err
	}
	return map[string]any{"access_token": token, "token_type": "Bearer", "expires_in": tokenTTL, "scope": scope}, nil
}

// authenticate implements client_secret_basic and client_secret_post
// (RFC 6749 §2.3.1: Basic credentials are form-urlencoded first).
func (t *tokenIssuer) authenticate(ctx context.Context, r *http.Request) (*client, error) {
	bad := oerr(401, "invalid_client", "client authentication failed")
	var id, secret string
	postID, postSecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if auth := r.Header.Get("Authorization"); auth != "" {
		if postSecret != "" {
			return nil, oerr(401, "invalid_client", "use one client authentication method, not both")
		}
		if len(auth) < 6 || !strings.EqualFold(auth[:6], "basic ") {
			return nil, oerr(401, "invalid_client", "unsupported authorization scheme")
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(auth[6:]))
		if err != nil {
			return nil, oerr(401, "invalid_client", "malformed Basic credentials")
		}
		u, p, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, oerr(401, "invalid_client", "malformed Basic credentials")
		}
		if id, err = url.QueryUnescape(u); err == nil {
			secret, err = url.QueryUnescape(p)
		}
		if err != nil || id == "" {
			return nil, oerr(401, "invalid_client", "malformed Basic credentials")
		}
		if postID != "" && postID != id {
			return nil, oerr(401, "invalid_client", "client_id does not match the authenticated client")
		}
	} else {
		if postID == "" || postSecret == "" {
			return nil, oerr(401, "invalid_client", "client authentication required")
		}
		id, secret = postID, postSecret
	}
	cl := t.clients[id]
	if cl == nil {
		return nil, bad
	}
	m := hmac.New(sha256.New, t.hmacKey[:])
	m.Write([]byte(cl.hashID))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	now := time.Now()
	t.mu.Lock()
	exp, ok := t.recent[k]
	t.mu.Unlock()
	if ok && now.Before(exp) {
		return cl, nil
	}
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	got := argon2.IDKey([]byte(secret), cl.salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	<-t.slots
	if subtle.ConstantTimeCompare(got, cl.key) != 1 {
		return nil, bad
	}
	t.mu.Lock()
	if len(t.recent) >= 10000 {
		clear(t.recent)
	}
	t.recent[k] = now.Add(secretTTL)
	t.mu.Unlock()
	return cl, nil
}
