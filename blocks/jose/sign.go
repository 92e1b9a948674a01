package jose

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
)

// ErrBadClaims is a sign request whose claims cannot make a token: a
// registered claim of the wrong type, a claim that contradicts a request
// field, or no expiry.
var ErrBadClaims = errors.New("invalid claims")

const (
	signDefaultTyp = "JWT"
	signMaxTypLen  = 64
	signJTIBytes   = 16 // 128 random bits
)

// SignRequest is one JWT to mint.
type SignRequest struct {
	Keyset string
	// Alg picks the active key; "" means the keyset's only signing alg.
	Alg string
	// Typ is the "typ" header, e.g. "at+jwt" for RFC 9068 access tokens;
	// "" means "JWT".
	Typ string
	// Claims are copied, never modified. A registered claim set here wins
	// over the defaults below, but must agreeClaim with a request field that
	// sets it too (Issuer vs iss, TTL vs exp, ...): a mismatch is an
	// ErrBadClaims rather than a silent choice, so claims taken from a
	// message cannot override what the flow configured.
	Claims map[string]any
	// TTL sets exp = iat + TTL. Without a TTL, Claims must carry exp.
	TTL      time.Duration
	Issuer   string   // iss
	Subject  string   // sub
	Audience []string // aud: a string for one audience, an array for more
	// NotBefore sets nbf; zero means nbf = iat.
	NotBefore time.Time
	// OmitJTI leaves out the random 128-bit jti that is added by default.
	OmitJTI bool
	// ownClaims: Claims is a map the caller made for this request alone
	// (jose.sign), so the registered claims are added to it in place
	// instead of to a copy.
	ownClaims bool
}

// Signer mints JWTs with the active keys of keysets. It is safe for
// concurrent use; the go-jose signer of each active key (per typ) is built
// once and dropped when the keyset changes.
type Signer struct {
	keysets *Keysets
}

// NewSigner returns a Signer over keysets; its clock is keysets.Now.
func NewSigner(keysets *Keysets) *Signer { return &Signer{keysets: keysets} }

// Sign mints a compact JWS for req and returns it with the kid that signed
// it. The header carries alg, kid and typ; iat, exp, nbf and jti are
// filled in unless Claims sets them, iss/sub/aud from the request fields.
func (s *Signer) Sign(ctx context.Context, req SignRequest) (token, kid string, err error) {
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	typ := req.Typ
	if typ == "" {
		typ = signDefaultTyp
	}
	if err := checkSignTyp(typ); err != nil {
		return "", "", err
	}
	if gate := s.keysets.SignGate; gate != nil {
		if err := gate(); err != nil {
			return "", "", fmt.Errorf("%w: %w", ErrSigningStopped, err)
		}
	}
	ak, err := s.keysets.activeKey(ctx, req.Keyset, req.Alg)
	if err != nil {
		return "", "", err
	}
	if ak.key.Use != UseSig {
		return "", "", fmt.Errorf("%w: %s is an encryption algorithm", ErrUnsupported, ak.key.Alg)
	}
	claims, err := buildSignClaims(req, s.keysets.now())
	if err != nil {
		return "", "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrBadClaims, err)
	}
	signer, err := ak.signer(typ)
	if err != nil {
		return "", "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", "", fmt.Errorf("jose: sign with %s key %s: %w", ak.key.Alg, ak.key.Kid, err)
	}
	token, err = jws.CompactSerialize()
	if err != nil {
		return "", "", fmt.Errorf("jose: serialize token: %w", err)
	}
	return token, ak.key.Kid, nil
}

// signer returns the cached go-jose signer for typ, building it on first
// use. At most maxCachedTyps are cached; a rare extra typ is built per call.
func (ak *activeKey) signer(typ string) (gojose.Signer, error) {
	if m := ak.signers.Load(); m != nil {
		if s, ok := (*m)[typ]; ok {
			return s, nil
		}
	}
	opts := (&gojose.SignerOptions{}).
		WithType(gojose.ContentType(typ)).
		WithHeader("kid", ak.key.Kid)
	s, err := gojose.NewSigner(gojose.SigningKey{Algorithm: gojose.SignatureAlgorithm(ak.key.Alg), Key: ak.key.JWK.Key}, opts)
	if err != nil {
		return nil, fmt.Errorf("jose: signer for %s key %s: %w", ak.key.Alg, ak.key.Kid, err)
	}
	ak.mu.Lock()
	defer ak.mu.Unlock()
	cur := ak.signers.Load()
	if cur != nil {
		if s, ok := (*cur)[typ]; ok {
			return s, nil
		}
		if len(*cur) >= maxCachedTyps {
			return s, nil
		}
	}
	next := map[string]gojose.Signer{typ: s}
	if cur != nil {
		maps.Copy(next, *cur)
	}
	ak.signers.Store(&next)
	return s, nil
}

func checkSignTyp(typ string) error {
	if len(typ) > signMaxTypLen {
		return fmt.Errorf("%w: typ longer than %d bytes", ErrBadClaims, signMaxTypLen)
	}
	for i := 0; i < len(typ); i++ {
		if typ[i] < 0x21 || typ[i] > 0x7e {
			return fmt.Errorf("%w: typ must be printable ASCII without spaces", ErrBadClaims)
		}
	}
	return nil
}

// buildSignClaims copies req.Claims and fills in the registered claims.
func buildSignClaims(req SignRequest, now time.Time) (map[string]any, error) {
	claims := req.Claims
	if !req.ownClaims || claims == nil {
		claims = make(map[string]any, len(req.Claims)+7)
		maps.Copy(claims, req.Claims)
	}

	for _, name := range []string{"iat", "exp", "nbf"} {
		if v, ok := claims[name]; ok && !isClaimNumber(v) {
			return nil, fmt.Errorf("%w: %s must be a number (seconds since the epoch)", ErrBadClaims, name)
		}
	}
	for _, name := range []string{"iss", "sub", "jti"} {
		if v, ok := claims[name]; ok {
			if _, isString := v.(string); !isString {
				return nil, fmt.Errorf("%w: %s must be a string", ErrBadClaims, name)
			}
		}
	}

	iat := now.Unix()
	if _, ok := claims["iat"]; !ok {
		claims["iat"] = iat
	}
	switch {
	case req.TTL < 0:
		return nil, fmt.Errorf("%w: negative TTL", ErrBadClaims)
	case req.TTL > 0:
		exp := now.Add(req.TTL).Unix()
		if err := agreeClaim(claims, "exp", exp); err != nil {
			return nil, err
		}
	default:
		if _, ok := claims["exp"]; !ok {
			return nil, fmt.Errorf("%w: a TTL or an exp claim is required", ErrBadClaims)
		}
	}
	if !req.NotBefore.IsZero() {
		if err := agreeClaim(claims, "nbf", req.NotBefore.Unix()); err != nil {
			return nil, err
		}
	} else if _, ok := claims["nbf"]; !ok {
		claims["nbf"] = iat
	}
	if _, ok := claims["jti"]; !ok && !req.OmitJTI {
		var b [signJTIBytes]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("jose: random jti: %w", err)
		}
		claims["jti"] = base64.RawURLEncoding.EncodeToString(b[:])
	}
	if req.Issuer != "" {
		if err := agreeClaim(claims, "iss", req.Issuer); err != nil {
			return nil, err
		}
	}
	if req.Subject != "" {
		if err := agreeClaim(claims, "sub", req.Subject); err != nil {
			return nil, err
		}
	}
	if len(req.Audience) > 0 {
		if slices.Contains(req.Audience, "") {
			return nil, fmt.Errorf("%w: empty audience", ErrBadClaims)
		}
		var aud any = req.Audience[0]
		if len(req.Audience) > 1 {
			aud = slices.Clone(req.Audience)
		}
		if cur, ok := claims["aud"]; ok {
			have, valid := claimAudience(cur)
			if !valid || !slices.Equal(sortedStrings(have), sortedStrings(req.Audience)) {
				return nil, fmt.Errorf("%w: aud in claims differs from the request's audience", ErrBadClaims)
			}
		} else {
			claims["aud"] = aud
		}
	}
	if cur, ok := claims["aud"]; ok {
		if _, valid := claimAudience(cur); !valid {
			return nil, fmt.Errorf("%w: aud must be a string or an array of strings", ErrBadClaims)
		}
	}
	return claims, nil
}

// agreeClaim sets claims[name] = want, or checks that the value already there
// is the same.
func agreeClaim[T string | int64](claims map[string]any, name string, want T) error {
	cur, ok := claims[name]
	if !ok {
		claims[name] = want
		return nil
	}
	same := false
	switch w := any(want).(type) {
	case string:
		same = cur == w
	case int64:
		n, isNum := claimNumber(cur)
		same = isNum && n == float64(w)
	}
	if !same {
		return fmt.Errorf("%w: %s in claims differs from the request", ErrBadClaims, name)
	}
	return nil
}

func isClaimNumber(v any) bool {
	_, ok := claimNumber(v)
	return ok
}

func claimNumber(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int8:
		return float64(n), true
	case int16:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint:
		return float64(n), true
	case uint8:
		return float64(n), true
	case uint16:
		return float64(n), true
	case uint32:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float32:
		return float64(n), true
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// claimAudience reads an aud claim: a string or a list of strings.
func claimAudience(v any) ([]string, bool) {
	switch a := v.(type) {
	case string:
		return []string{a}, true
	case []string:
		return a, true
	case []any:
		out := make([]string, 0, len(a))
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

func sortedStrings(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
