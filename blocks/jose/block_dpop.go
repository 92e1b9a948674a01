package jose

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/flowd/flowd/engine"
)

// dpopFields are the proof policy fields shared by jose.dpop (token
// endpoint) and jose.validate (resource, prefixed dpop_).
func dpopFields(prefix string) []engine.Field {
	return []engine.Field{
		{Name: prefix + "algorithms", Label: "DPoP proof algorithms", Kind: engine.KindStrings, Default: DefaultDPoPAlgorithms,
			Help: "The algorithms a DPoP proof may be signed with; asymmetric only (never none or HS*)."},
		{Name: prefix + "nonce", Label: "Require a server nonce", Kind: engine.KindBool,
			Help: "Proofs must carry a nonce this server issued (RFC 9449 §8). A proof without one is refused " +
				"with use_dpop_nonce and msg.dpop_nonce holds the nonce to send in the DPoP-Nonce header."},
		{Name: prefix + "max_age", Label: "DPoP proof max age", Kind: engine.KindDuration, Default: "60s", Min: "1s", Max: "10m",
			Help: "How old a proof (its iat) may be. Its jti is remembered that long, on every node."},
		{Name: prefix + "url_base", Label: "Public base URL", Kind: engine.KindString,
			Help: "This server's URL as clients address it: a proof's htu must be this base plus the request " +
				"path. Empty: flowd's issuer (--issuer / FLOWD_ISSUER)."},
	}
}

// dpopConfig builds a verifier from the fields of dpopFields.
func dpopConfig(s *engine.Setup, d *blockDeps, prefix string) (*DPoPVerifier, string, error) {
	c := s.Config
	var nonces *NonceSource
	if c.Bool(prefix + "nonce") {
		nonces = d.nonces
	}
	v, err := NewDPoPVerifier(DPoPPolicy{Algorithms: c.Strings(prefix + "algorithms"), MaxAge: c.Duration(prefix + "max_age"),
		Leeway: DefaultDPoPLeeway, Replay: d.replay, Nonces: nonces, Now: d.now})
	if err != nil {
		field := prefix + "algorithms"
		if strings.Contains(err.Error(), "max age") {
			field = prefix + "max_age"
		}
		return nil, "", s.Errorf(field, "%s", strings.TrimPrefix(err.Error(), ErrDPoPPolicy.Error()+": "))
	}
	base := c.String(prefix + "url_base")
	if base == "" {
		base = d.issuer
	}
	if base == "" {
		return nil, "", s.Errorf(prefix+"url_base", "required: start flowd with --issuer or set the public base URL")
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, "", s.Errorf(prefix+"url_base", "must be an http(s) URL without query or fragment, like https://id.example.com")
	}
	return v, strings.TrimSuffix(base, "/"), nil
}

// requestLine reads msg.req's method and path as http.in writes them.
func requestLine(msg engine.Msg) (method, path string) {
	// engine.MsgPath reads http.in's msg.req without building it.
	method, _ = engine.MsgPath(msg, "req", "method").(string)
	path, _ = engine.MsgPath(msg, "req", "path").(string)
	return method, path
}

func dpopSpec() engine.Spec {
	fields := []engine.Field{
		{Name: "require", Label: "Require DPoP", Kind: engine.KindBool,
			Help: "Refuse every token request without a proof. Off: a client registered with " +
				"dpop_bound_access_tokens must send one, others may."},
	}
	fields = append(fields, dpopFields("")...)
	return engine.Spec{
		Type: "jose.dpop", Title: "DPoP proof (token request)", Category: Category, Bounded: true,
		// msg.req and msg.client are read through engine.MsgPath.
		LazyMessage: true,
		Description: "Checks the DPoP proof (RFC 9449) of a token request from http.in: one DPoP header, " +
			"typ dpop+jwt, an allowed asymmetric alg, a public jwk, the signature, htm and htu matching this " +
			"request, iat within the max age, an optional server nonce, and a jti never seen before (on any " +
			"node). With a valid proof it leaves by \"ok\" with msg.dpop {jkt, alg} (jkt: the RFC 7638 " +
			"thumbprint for the token's cnf.jkt) and msg.token_type \"DPoP\"; without one (allowed) by \"ok\" " +
			"with msg.token_type \"Bearer\". Otherwise by \"invalid\" with an RFC 9449 msg.oauth_error " +
			"(invalid_dpop_proof or use_dpop_nonce; answer 400). With nonces on, msg.dpop_nonce is the nonce " +
			"for the DPoP-Nonce header. Put it after oauth.client_auth: msg.client.dpop_bound_access_tokens " +
			"makes a proof required for that client.",
		Fields:  fields,
		Outputs: []string{portOK, portInvalid},
	}
}

type dpopBlock struct {
	v       *DPoPVerifier
	base    string
	require bool
}

var _ engine.Block = (*dpopBlock)(nil)

func newDPoPFromConfig(s *engine.Setup, d *blockDeps) (engine.Block, error) {
	v, base, err := dpopConfig(s, d, "")
	if err != nil {
		return nil, err
	}
	return &dpopBlock{v: v, base: base, require: s.Config.Bool("require")}, nil
}

// Process checks the proof and tells the engine what it wrote (Exec.Grew,
// each member counted in full), so the blocks after it need not walk the
// message to know its size.
func (b *dpopBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	port, err := b.process(ctx, msg)
	if err == nil {
		n := 0
		for _, k := range [...]string{"dpop", "token_type", "dpop_nonce", "oauth_error"} {
			if v, ok := msg[k]; ok {
				n += len(k) + 4 + engine.MessageSize(v)
			}
		}
		x.Grew(n)
	}
	return port, err
}

func (b *dpopBlock) process(ctx context.Context, msg engine.Msg) (string, error) {
	delete(msg, "dpop")
	if err := setNonce(ctx, msg, b.v); err != nil {
		return "", err
	}
	proof := requestHeader(msg, "dpop")
	forced, _ := engine.MsgPath(msg, "client", "dpop_bound_access_tokens").(bool)
	if proof == "" {
		if b.require || forced {
			return dpopTokenError(msg, tokenErr(ReasonDPoPMissing, "this client must send a DPoP proof")), nil
		}
		msg["token_type"] = "Bearer"
		return portOK, nil
	}
	method, path := requestLine(msg)
	p, err := b.v.Verify(ctx, DPoPRequest{Proof: proof, Method: method, URL: b.base + path})
	var te *TokenError
	switch {
	case errors.As(err, &te):
		return dpopTokenError(msg, te), nil
	case err != nil:
		return "", err
	}
	msg["dpop"] = map[string]any{"jkt": p.JKT, "alg": p.Alg}
	msg["token_type"] = "DPoP"
	return portOK, nil
}

// setNonce puts a fresh nonce on the message when the verifier uses them.
func setNonce(ctx context.Context, msg engine.Msg, v *DPoPVerifier) error {
	if v.Nonces() == nil {
		return nil
	}
	n, err := v.Nonces().Nonce(ctx)
	if err != nil {
		return err
	}
	msg["dpop_nonce"] = n
	return nil
}

// dpopTokenError is the token endpoint's answer to a refused proof
// (RFC 9449 §5: invalid_dpop_proof, or use_dpop_nonce).
func dpopTokenError(msg engine.Msg, te *TokenError) string {
	code := "invalid_dpop_proof"
	if te.Reason == ReasonDPoPNonce {
		code = "use_dpop_nonce"
	}
	msg["oauth_error"] = map[string]any{"status": 400, "error": code, "error_description": string(te.Reason) + ": " + te.Detail}
	return portInvalid
}

// DPoP modes of jose.validate.
const (
	dpopOff     = "off"
	dpopAllow   = "allow"
	dpopRequire = "require"
)

// resourceDPoP is jose.validate's DPoP check (RFC 9449 §7).
type resourceDPoP struct {
	mode string
	v    *DPoPVerifier // nil when off
	base string
}

// authToken reads the Authorization header: the scheme (Bearer or DPoP,
// any case) and the token.
func authToken(msg engine.Msg) (scheme, token string) {
	auth := requestHeader(msg, "authorization")
	name, rest, ok := strings.Cut(strings.TrimLeft(auth, " \t"), " ")
	if !ok {
		return "", ""
	}
	tok := strings.Trim(rest, " \t")
	switch {
	case tok == "":
		return "", ""
	case strings.EqualFold(name, "bearer"):
		return "Bearer", tok
	case strings.EqualFold(name, "dpop"):
		return "DPoP", tok
	}
	return "", ""
}

// jktOf is the cnf.jkt claim of a token, "" when it has none.
func jktOf(claims map[string]any) string {
	cnf, _ := claims["cnf"].(map[string]any)
	jkt, _ := cnf["jkt"].(string)
	return jkt
}

// check judges the DPoP side of a request whose token verified.
func (r *resourceDPoP) check(ctx context.Context, msg engine.Msg, scheme, token string, claims map[string]any) (*TokenError, error) {
	jkt := jktOf(claims)
	if r.mode == dpopOff || scheme == "Bearer" {
		switch {
		case jkt != "":
			return tokenErr(ReasonDPoPMissing, "this token is DPoP-bound: send it as Authorization: DPoP with a proof"), nil
		case r.mode == dpopRequire:
			return tokenErr(ReasonDPoPMissing, "this resource needs a DPoP-bound token and a proof"), nil
		}
		return nil, nil
	}
	if err := setNonce(ctx, msg, r.v); err != nil {
		return nil, err
	}
	proof := requestHeader(msg, "dpop")
	if proof == "" {
		return tokenErr(ReasonDPoPMissing, "Authorization: DPoP needs a DPoP proof header"), nil
	}
	method, path := requestLine(msg)
	p, err := r.v.Verify(ctx, DPoPRequest{Proof: proof, Method: method, URL: r.base + path, AccessToken: token})
	var te *TokenError
	switch {
	case errors.As(err, &te):
		return te, nil
	case err != nil:
		return nil, err
	case jkt == "":
		return tokenErr(ReasonDPoPKeyMismatch, "the token is not DPoP-bound"), nil
	case p.JKT != jkt:
		return tokenErr(ReasonDPoPKeyMismatch, "the proof's key is not the key the token is bound to"), nil
	}
	msg["dpop"] = map[string]any{"jkt": p.JKT, "alg": p.Alg}
	return nil, nil
}

// challenge is the WWW-Authenticate value for a refused request
// (RFC 6750 §3, RFC 9449 §7.1): the scheme the client used, or both when
// it sent none, naming the error and the reason.
func (r *resourceDPoP) challenge(scheme string, te *TokenError) string {
	dpop := "DPoP realm=\"flowd\", algs=\"" + strings.Join(r.v.Algorithms(), " ") + "\""
	if te.Reason == ReasonTokenMissing {
		if r.mode == dpopRequire {
			return dpop
		}
		return "Bearer realm=\"flowd\", " + dpop
	}
	errCode := "invalid_token"
	if te.Reason == ReasonDPoPNonce {
		errCode = "use_dpop_nonce"
	}
	desc := ", error=\"" + errCode + "\", error_description=\"" + string(te.Reason) + "\""
	if scheme == "DPoP" || strings.HasPrefix(string(te.Reason), "dpop_") || te.Reason == ReasonDPoPNonce {
		return dpop + desc
	}
	return "Bearer realm=\"flowd\"" + desc
}
