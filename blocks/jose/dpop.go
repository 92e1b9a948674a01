package jose

// DPoP (RFC 9449): a proof is a JWT the client signs with a key whose
// public half it puts in the header; the server checks it and binds the
// tokens it issues to that key's RFC 7638 thumbprint (cnf.jkt). A resource
// server then asks for a fresh proof on every request, over the same key
// and naming the access token (ath).
//
//	size cap ─► split (compact JWS, canonical base64url) ─► strict header:
//	  typ dpop+jwt, alg in the allow-list (asymmetric only), jwk public,
//	  no crit ─► key fits alg (curve, RSA size) ─► signature (go-jose)
//	  ─► claims: jti, htm, htu, iat (+ ath, nonce) ─► htm/htu match the
//	  request ─► iat in the window ─► nonce ─► ath ─► jti not seen before
//	  (replay cache, last: a refused proof takes no room)
//
// Every step refuses with a *TokenError whose Reason is one of the DPoP
// reasons below; a replay cache or nonce key that cannot be reached is an
// error, not a verdict.

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
)

// DPoP reasons (RFC 9449; the WWW-Authenticate error of each is
// invalid_token, except use_dpop_nonce).
const (
	// ReasonDPoPMissing: a DPoP-bound token (or a policy that requires
	// DPoP) came without a proof, or as a Bearer token.
	ReasonDPoPMissing Reason = "dpop_missing"
	// ReasonDPoPInvalid: the proof is malformed, badly signed, for another
	// request, outside the iat window, or names another access token.
	ReasonDPoPInvalid Reason = "dpop_invalid"
	// ReasonDPoPReplayed: the proof's jti was seen before.
	ReasonDPoPReplayed Reason = "dpop_replayed"
	// ReasonDPoPKeyMismatch: the proof's key is not the one the token is
	// bound to, or a DPoP proof came with a token not bound to any key.
	ReasonDPoPKeyMismatch Reason = "dpop_key_mismatch"
	// ReasonDPoPNonce: the server asks for a nonce it issued (the answer
	// carries a fresh one in the DPoP-Nonce header).
	ReasonDPoPNonce Reason = "use_dpop_nonce"
)

// DPoP defaults.
const (
	DefaultDPoPMaxAge    = 60 * time.Second
	DefaultDPoPLeeway    = 5 * time.Second
	DefaultDPoPProofSize = 8192
	maxDPoPJTI           = 256
	maxDPoPHTU           = 2048
)

// DefaultDPoPAlgorithms are the proof algorithms allowed unless a policy
// lists others: every asymmetric JWS algorithm flowd verifies.
var DefaultDPoPAlgorithms = []string{"ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

// ErrDPoPPolicy wraps every refusal of NewDPoPVerifier.
var ErrDPoPPolicy = errors.New("invalid DPoP policy")

// ReplayCache remembers single-use values (a DPoP proof's jti, a client
// assertion's jti) until they expire.
type ReplayCache interface {
	// Claim records key until exp and reports whether it was new; false
	// means it was claimed before and has not expired: a replay.
	Claim(ctx context.Context, key string, exp time.Time) (bool, error)
}

// DPoPPolicy configures a DPoPVerifier.
type DPoPPolicy struct {
	// Algorithms allowed for proofs; asymmetric only. Empty: DefaultDPoPAlgorithms.
	Algorithms []string
	// MaxAge is how old (by iat) a proof may be; Leeway how far in the
	// future its iat may lie (clock skew). Zero: the defaults.
	MaxAge, Leeway time.Duration
	// MaxProofSize caps the proof before parsing. Zero: DefaultDPoPProofSize.
	MaxProofSize int
	// Replay remembers jtis; required.
	Replay ReplayCache
	// Nonces, when set, makes a proof carry a nonce it issued.
	Nonces *NonceSource
	Now    func() time.Time
}

// DPoPVerifier checks DPoP proofs. It is built once (at deploy) and safe
// for concurrent use.
type DPoPVerifier struct {
	algs    map[string]*jwsAlgInfo
	maxAge  time.Duration
	leeway  time.Duration
	maxSize int
	replay  ReplayCache
	nonces  *NonceSource
	now     func() time.Time
}

// NewDPoPVerifier checks a policy and builds its verifier.
func NewDPoPVerifier(p DPoPPolicy) (*DPoPVerifier, error) {
	v := &DPoPVerifier{algs: map[string]*jwsAlgInfo{}, maxAge: p.MaxAge, leeway: p.Leeway, maxSize: p.MaxProofSize,
		replay: p.Replay, nonces: p.Nonces, now: p.Now}
	algs := p.Algorithms
	if len(algs) == 0 {
		algs = DefaultDPoPAlgorithms
	}
	for _, a := range algs {
		info := jwsAlgTable[a]
		switch {
		case info == nil:
			return nil, fmt.Errorf("%w: algorithms: unknown or unsupported algorithm %q", ErrDPoPPolicy, a)
		case info.family == familyHMAC:
			return nil, fmt.Errorf("%w: algorithms: %s is symmetric: a DPoP proof is signed with a private key and carries its public key", ErrDPoPPolicy, a)
		}
		v.algs[a] = info
	}
	if v.maxAge == 0 {
		v.maxAge = DefaultDPoPMaxAge
	}
	if v.leeway == 0 {
		v.leeway = DefaultDPoPLeeway
	}
	switch {
	case v.maxAge < time.Second || v.maxAge > 10*time.Minute:
		return nil, fmt.Errorf("%w: max age: must be between 1s and 10m", ErrDPoPPolicy)
	case v.leeway < 0 || v.leeway > 5*time.Minute:
		return nil, fmt.Errorf("%w: leeway: must be between 0 and 5m", ErrDPoPPolicy)
	case v.replay == nil:
		return nil, fmt.Errorf("%w: a replay cache is required", ErrDPoPPolicy)
	}
	if v.maxSize <= 0 {
		v.maxSize = DefaultDPoPProofSize
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// Algorithms lists the allowed proof algorithms (for discovery).
func (v *DPoPVerifier) Algorithms() []string {
	out := make([]string, 0, len(v.algs))
	for _, a := range DefaultDPoPAlgorithms {
		if v.algs[a] != nil {
			out = append(out, a)
		}
	}
	return out
}

// Nonces returns the verifier's nonce source, nil when nonces are off.
func (v *DPoPVerifier) Nonces() *NonceSource { return v.nonces }

// DPoPRequest is the HTTP request a proof must be for.
type DPoPRequest struct {
	Proof  string // the DPoP header
	Method string
	// URL is the request's URL as the server's public address (the issuer)
	// spells it, e.g. https://id.example.com/oauth/token; query and fragment
	// are ignored (RFC 9449 §4.3).
	URL string
	// AccessToken, at a resource server, is the token the proof must name
	// (ath); empty at the token endpoint.
	AccessToken string
}

// DPoPProof is a verified proof.
type DPoPProof struct {
	JKT      string // RFC 7638 SHA-256 thumbprint of the proof's key, base64url
	JTI      string
	Alg      string
	IssuedAt time.Time
}

// Verify checks a proof against the request it came with.
func (v *DPoPVerifier) Verify(ctx context.Context, r DPoPRequest) (*DPoPProof, error) {
	bad := func(detail string) error { return tokenErr(ReasonDPoPInvalid, detail) }
	if r.Proof == "" {
		return nil, tokenErr(ReasonDPoPMissing, "no DPoP proof header")
	}
	if len(r.Proof) > v.maxSize {
		return nil, bad(fmt.Sprintf("the proof is longer than %d bytes", v.maxSize))
	}
	segs, ok := splitCompact(r.Proof)
	if !ok || len(segs) != 3 {
		return nil, bad("the proof is not a compact JWS")
	}
	hdr, terr := decodeHeader(segs[0])
	if terr != nil {
		return nil, bad("header: " + terr.Detail)
	}
	typ, _ := hdr["typ"].(string)
	alg, _ := hdr["alg"].(string)
	info := v.algs[alg]
	switch {
	case !strings.EqualFold(typ, "dpop+jwt"):
		return nil, bad("typ must be dpop+jwt")
	case info == nil:
		return nil, bad("alg is not allowed for DPoP proofs")
	case hdr["crit"] != nil:
		return nil, bad("crit is not supported in DPoP proofs")
	case hdr["jwk"] == nil:
		return nil, bad("the header has no jwk")
	}
	if _, isObj := hdr["jwk"].(map[string]any); !isObj {
		return nil, bad("jwk is not a JSON object")
	}
	if _, priv := hdr["jwk"].(map[string]any)["d"]; priv {
		return nil, bad("the jwk header holds a private key")
	}
	jwk, payload, detail := verifyEmbedded(r.Proof, info)
	if detail != "" {
		return nil, bad(detail)
	}
	claims, err := parseStrictObject(payload, maxClaimsDepth)
	if err != nil {
		return nil, bad("claims: " + err.Error())
	}
	jti, _ := claims["jti"].(string)
	htm, _ := claims["htm"].(string)
	htu, _ := claims["htu"].(string)
	iat, hasIat, iatOK := numericClaim(claims, "iat")
	switch {
	case jti == "" || len(jti) > maxDPoPJTI:
		return nil, bad(fmt.Sprintf("jti must be a string of 1 to %d bytes", maxDPoPJTI))
	case htm == "":
		return nil, bad("htm is missing")
	case htu == "":
		return nil, bad("htu is missing")
	case !hasIat || !iatOK:
		return nil, bad("iat must be a number")
	case htm != r.Method:
		return nil, bad("htm does not match the request method")
	}
	want, ok1 := normalizeHTU(r.URL)
	got, ok2 := normalizeHTU(htu)
	if !ok1 {
		return nil, fmt.Errorf("dpop: the request URL %q cannot be compared: %w", truncateText(r.URL, 80), ErrDPoPPolicy)
	}
	if !ok2 || got != want {
		return nil, bad("htu does not match the request URL")
	}
	now := v.now()
	nowS := float64(now.Unix()) + float64(now.Nanosecond())/1e9
	switch {
	case iat > nowS+v.leeway.Seconds():
		return nil, bad("iat is in the future")
	case iat < nowS-v.maxAge.Seconds()-v.leeway.Seconds():
		return nil, bad("iat is too old: make a fresh proof")
	}
	if v.nonces != nil {
		nonce, _ := claims["nonce"].(string)
		fresh, err := v.nonces.Check(ctx, nonce)
		if err != nil {
			return nil, fmt.Errorf("dpop: %w", err)
		}
		if !fresh {
			return nil, tokenErr(ReasonDPoPNonce, "the proof must carry the nonce of the DPoP-Nonce header")
		}
	}
	ath, hasAth := claims["ath"]
	if r.AccessToken != "" {
		athS, _ := ath.(string)
		sum := sha256.Sum256([]byte(r.AccessToken))
		if subtle.ConstantTimeCompare([]byte(athS), []byte(base64.RawURLEncoding.EncodeToString(sum[:]))) != 1 {
			return nil, bad("ath does not match the access token")
		}
	} else if hasAth {
		return nil, bad("ath is only for requests that carry an access token")
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, bad("the jwk has no thumbprint")
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	// Kept past the last moment the proof could be accepted again.
	exp := time.Unix(int64(iat), 0).Add(v.maxAge + 2*v.leeway + time.Second)
	key := sha256.Sum256([]byte(jkt + "\x00" + jti))
	fresh, err := v.replay.Claim(ctx, "dpop:"+base64.RawURLEncoding.EncodeToString(key[:]), exp)
	if err != nil {
		return nil, fmt.Errorf("dpop: replay cache: %w", err)
	}
	if !fresh {
		return nil, tokenErr(ReasonDPoPReplayed, "this proof (jti) was used before")
	}
	return &DPoPProof{JKT: jkt, JTI: jti, Alg: alg, IssuedAt: time.Unix(int64(iat), 0)}, nil
}

// verifyEmbedded verifies a JWS with the public key of its own jwk header,
// after checking the key is public and fits the algorithm. A go-jose panic
// is a malformed proof.
func verifyEmbedded(token string, info *jwsAlgInfo) (jwk *gojose.JSONWebKey, payload []byte, detail string) {
	defer func() {
		if recover() != nil {
			jwk, payload, detail = nil, nil, "the proof is malformed"
		}
	}()
	obj, err := gojose.ParseSignedCompact(token, info.parse)
	if err != nil || len(obj.Signatures) != 1 {
		return nil, nil, "the proof is not a valid JWS"
	}
	k := obj.Signatures[0].Protected.JSONWebKey
	switch {
	case k == nil:
		return nil, nil, "the header has no usable jwk"
	case !k.IsPublic():
		return nil, nil, "the jwk header must hold a public key"
	case !k.Valid():
		return nil, nil, "the jwk header holds an invalid key"
	}
	material, fit := info.fit(&VerifyKey{JWK: *k})
	switch fit {
	case fitMismatch:
		return nil, nil, "the jwk does not fit alg"
	case fitWeak:
		return nil, nil, "the jwk is too weak"
	}
	payload, err = obj.Verify(material)
	if err != nil {
		return nil, nil, "bad signature"
	}
	return k, payload, ""
}

// normalizeHTU reduces a URL to what RFC 9449 §4.3 compares: scheme and
// host lowercased, the default port dropped, the path with its
// percent-encoding normalized (RFC 3986 §6.2.2, §6.2.3), query and
// fragment gone.
func normalizeHTU(s string) (string, bool) {
	if s == "" || len(s) > maxDPoPHTU {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if scheme == "https" && port == "443" || scheme == "http" && port == "80" {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	path := u.Path // decoded: %7E and ~ compare equal
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + (&url.URL{Path: path}).EscapedPath(), true
}

// DPoPThumbprint is the RFC 7638 SHA-256 thumbprint (base64url) of a
// public JWK, as cnf.jkt carries it.
func DPoPThumbprint(k *gojose.JSONWebKey) (string, error) {
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
