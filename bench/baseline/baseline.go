// Package baseline is the hand-written server flowd is measured against
// (bench/run.sh runs it as bench/handwritten; bench_test.go calls it in
// process): plain net/http + go-jose doing the same work as flowd's
// prebuilt jwks and protected-api flows, written the way a competent
// engineer would write it by hand (no flow engine, no traces, no
// expressions).
//
//	GET /.well-known/jwks.json  a JWK Set given at start, served from
//	                            memory with ETag/304, Cache-Control public,
//	                            max-age=900, CORS *
//	GET /api/hello              validates the bearer access token (RS256 or
//	                            ES256, key chosen by kid from that JWK Set,
//	                            iss, aud, exp/nbf/iat with 30 s leeway,
//	                            typ at+jwt) and answers its claims as JSON,
//	                            or 401 with WWW-Authenticate (RFC 6750)
//	GET /bench/hello-nocache    the same (flowd's side: jose.validate without cache)
//	POST /oauth/token           client_credentials, RS256 (token.go)
//	POST /bench/token-es256     the same, ES256
//
// It is not part of flowd; it only exists to be measured against it.
package baseline

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	maxTokenSize = 8 << 10
	leeway       = 30.0 // seconds
	jwksMaxAge   = 900  // seconds
)

var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

// Server answers both endpoints.
type Server struct {
	jwksBody     []byte
	etag         string
	cacheControl string
	contentLen   string
	keys         map[string]jose.JSONWebKey // kid -> signing key
	issuer       string
	audience     string
	tokens       *tokenIssuer // nil: no token endpoints
}

// Options configures NewServer.
type Options struct {
	JWKS     []byte // the JWK Set to publish and verify with
	Issuer   string
	Audience string
	// Clients, when set, enable the token endpoints. Their secrets are
	// hashed with argon2id here, once each.
	Clients []Client
	// RSAKey and ECKey sign access tokens; nil: generated (RSA-3072, P-256).
	RSAKey *rsa.PrivateKey
	ECKey  *ecdsa.PrivateKey
}

// NewServer is New with token endpoints.
func NewServer(o Options) (*Server, error) {
	s, err := New(o.JWKS, o.Issuer, o.Audience)
	if err != nil {
		return nil, err
	}
	if len(o.Clients) > 0 {
		if s.tokens, err = newTokenIssuer(o.Issuer, o.Audience, o.Clients, o.RSAKey, o.ECKey); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// New parses the JWK Set the server publishes and verifies with; tokens
// must carry iss == issuer and audience in aud.
func New(jwksBody []byte, issuer, audience string) (*Server, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwksBody, &set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	keys := make(map[string]jose.JSONWebKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.KeyID == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		keys[k.KeyID] = k
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS has no signing keys with a kid")
	}
	sum := sha256.Sum256(jwksBody)
	return &Server{
		jwksBody:     jwksBody,
		etag:         `"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"`,
		cacheControl: "public, max-age=" + strconv.Itoa(jwksMaxAge),
		contentLen:   strconv.Itoa(len(jwksBody)),
		keys:         keys,
		issuer:       issuer,
		audience:     audience,
	}, nil
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cache-Control", s.cacheControl)
	h.Set("ETag", s.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, s.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Content-Length", s.contentLen)
	w.Write(s.jwksBody) //nolint:errcheck // the client left
}

// etagMatch applies If-None-Match (RFC 9110 §13.1.2), weak comparison.
func etagMatch(header, etag string) bool {
	if strings.TrimSpace(header) == "*" {
		return true
	}
	for tag := range strings.SplitSeq(header, ",") {
		if strings.TrimPrefix(strings.TrimSpace(tag), "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

func (s *Server) hello(w http.ResponseWriter, r *http.Request) {
	claims, reason := s.validate(r.Header.Get("Authorization"))
	if reason != "" {
		challenge := `Bearer realm="flowd"`
		if reason != "token_missing" {
			challenge += `, error="invalid_token", error_description="` + reason + `"`
		} else {
			// The protected-api flow also offers DPoP (RFC 9449 §7.1).
			challenge += `, DPoP realm="flowd", algs="ES256 ES384 ES512 EdDSA RS256 RS384 RS512 PS256 PS384 PS512"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_token", "error_description": reason})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"hello": claims["sub"], "scope": claims["scope"], "claims": claims})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes()) //nolint:errcheck // the client left
}

// validate checks an Authorization header value and returns the verified
// claims, or the RFC 6750 error_description reason code flowd would give.
func (s *Server) validate(authz string) (map[string]any, string) {
	scheme, token, ok := strings.Cut(authz, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, "token_missing"
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, "token_missing"
	}
	if len(token) > maxTokenSize {
		return nil, "token_too_large"
	}
	jws, err := jose.ParseSignedCompact(token, allowedAlgs)
	if err != nil {
		return nil, "malformed"
	}
	if len(jws.Signatures) != 1 {
		return nil, "malformed"
	}
	hdr := jws.Signatures[0].Header
	if !typeOK(hdr.ExtraHeaders[jose.HeaderType]) {
		return nil, "wrong_type"
	}
	key, ok := s.keys[hdr.KeyID]
	if !ok {
		return nil, "unknown_kid"
	}
	if !keyFits(key, hdr.Algorithm) {
		return nil, "alg_not_allowed"
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, "bad_signature"
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, "malformed"
	}
	if reason := s.checkClaims(claims); reason != "" {
		return nil, reason
	}
	return claims, ""
}

// typeOK accepts typ at+jwt, case-insensitively, with or without the
// application/ prefix (RFC 7515 §4.1.9, RFC 9068 §2.1).
func typeOK(typ any) bool {
	t, ok := typ.(string)
	if !ok {
		return false
	}
	return strings.EqualFold(t, "at+jwt") || strings.EqualFold(t, "application/at+jwt")
}

// keyFits: go-jose matches kid only, so check the key's alg and kind.
func keyFits(k jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch alg {
	case string(jose.RS256):
		pub, ok := k.Key.(*rsa.PublicKey)
		return ok && pub.N.BitLen() >= 2048
	case string(jose.ES256):
		pub, ok := k.Key.(*ecdsa.PublicKey)
		return ok && pub.Curve == elliptic.P256()
	}
	return false
}

func (s *Server) checkClaims(c map[string]any) string {
	now := float64(time.Now().UnixNano()) / 1e9
	exp, hasExp, ok1 := number(c, "exp")
	nbf, hasNbf, ok2 := number(c, "nbf")
	iat, hasIat, ok3 := number(c, "iat")
	switch {
	case !ok1 || !ok2 || !ok3:
		return "malformed"
	case !hasExp:
		return "missing_claim"
	case now > exp+leeway:
		return "token_expired"
	case hasNbf && nbf > now+leeway:
		return "not_yet_valid"
	case hasIat && iat > now+leeway:
		return "issued_in_future"
	}
	iss, ok := c["iss"].(string)
	if !ok {
		return "missing_claim"
	}
	if iss != s.issuer {
		return "wrong_issuer"
	}
	switch aud := c["aud"].(type) {
	case string:
		if aud == s.audience {
			return ""
		}
	case []any:
		for _, a := range aud {
			if a == s.audience {
				return ""
			}
		}
	case nil:
		return "missing_claim"
	default:
		return "malformed"
	}
	return "wrong_audience"
}

// number reads a NumericDate claim: absent is fine, a non-number is not.
func number(c map[string]any, name string) (v float64, present, ok bool) {
	raw, present := c[name]
	if !present {
		return 0, false, true
	}
	v, ok = raw.(float64)
	return v, true, ok
}

// Handler routes GET /.well-known/jwks.json and GET /api/hello.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/jwks.json", s.jwks)
	mux.HandleFunc("GET /api/hello", s.hello)
	// flowd's /api/hello with jose.validate's cache off: the same work here.
	mux.HandleFunc("GET /bench/hello-nocache", s.hello)
	if s.tokens != nil {
		mux.HandleFunc("POST /oauth/token", s.tokens.handler(func(t *tokenIssuer) jose.Signer { return t.rs256 }))
		mux.HandleFunc("POST /bench/token-es256", s.tokens.handler(func(t *tokenIssuer) jose.Signer { return t.es256 }))
	}
	return mux
}

// Keys is the number of signing keys in the JWK Set.
func (s *Server) Keys() int { return len(s.keys) }
