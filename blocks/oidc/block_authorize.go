package oidc

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
)

// Limits on authorization request parameters. They end up in URLs and in
// stored records, so none may be unbounded.
const (
	maxStateLen = 1024
	maxNonceLen = 512
	maxScopeLen = 2048
	maxScopes   = 50
)

func authorizeSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.authorize", Title: "Check authorization request", Category: Category,
		Description: "Checks an OpenID Connect authorization request (the query of GET /oauth/authorize, or the " +
			"form body of POST /oauth/authorize): " +
			"a registered client allowed the authorization_code grant, a redirect_uri equal character for " +
			"character to one it registered (for http://127.0.0.1 and http://[::1] any port, RFC 8252 " +
			"§7.3: a native app's loopback listener), response_type=code, a scope with openid (other scopes are kept " +
			"when standard or the client's, ignored otherwise), state and nonce (echoed exactly), PKCE with S256 (required for public clients), " +
			"prompt and max_age. A request pushed to the PAR endpoint (oidc.par, RFC 9126) comes as client_id " +
			"and request_uri: the pushed request is used once, within its lifetime, by the client that pushed " +
			"it, and any other parameter is ignored. On success msg.authz holds the request. An error about the client or the " +
			"redirect URI leaves by \"invalid\" (show a page: RFC 6749 §4.1.2.1 forbids redirecting); any " +
			"other leaves by \"redirect_error\" with msg.redirect, the registered redirect URI carrying " +
			"error, error_description, state and iss.",
		Fields: []engine.Field{
			{Name: "require_pkce", Label: "Require PKCE", Kind: engine.KindEnum, Default: "public", Enum: []string{"public", "all"},
				Help: "public: public clients must send an S256 code_challenge, confidential clients may. all: every client must."},
			{Name: "require_state", Label: "Require state", Kind: engine.KindBool,
				Help: "Refuse requests without a state parameter."},
			{Name: "require_nonce", Label: "Require nonce", Kind: engine.KindBool,
				Help: "Refuse requests without a nonce parameter."},
			{Name: "standard_scopes", Label: "Standard scopes", Kind: engine.KindStrings,
				Default: []string{"openid", "profile", "email", "offline_access"},
				Help:    "Scopes every client with the authorization_code grant may request; any other must be among the client's scopes."},
			{Name: "issuer", Label: "Issuer", Kind: engine.KindString,
				Help: "The iss of authorization responses (RFC 9207). Empty: flowd's --issuer."},
			{Name: "require_par", Label: "Require PAR", Kind: engine.KindBool,
				Help: "Take requests only by request_uri from the PAR endpoint (RFC 9126), for every client. " +
					"Off: only clients registered with require_pushed_authorization_requests must."},
		},
		Outputs: []string{"ok", "redirect_error", "invalid"},
	}
}

type authorizeBlock struct {
	p            *provider
	pkceAll      bool
	requireState bool
	requireNonce bool
	standard     []string
	issuer       string
	requirePAR   bool
}

var _ engine.Block = (*authorizeBlock)(nil)

func newAuthorizeFromConfig(s *engine.Setup, p *provider) (engine.Block, error) {
	b, err := newAuthorizeBlock(s, p)
	if err != nil {
		return nil, err
	}
	b.requirePAR = s.Config.Bool("require_par")
	return b, nil
}

// newAuthorizeBlock reads the request rules oidc.authorize and oidc.par share.
func newAuthorizeBlock(s *engine.Setup, p *provider) (*authorizeBlock, error) {
	iss, err := p.issuerFor(s, "issuer")
	if err != nil {
		return nil, err
	}
	c := s.Config
	return &authorizeBlock{p: p, pkceAll: c.String("require_pkce") == "all", requireState: c.Bool("require_state"),
		requireNonce: c.Bool("require_nonce"), standard: c.Strings("standard_scopes"), issuer: iss}, nil
}

// Prompt values of OpenID Connect Core §3.1.2.1.
var promptValues = []string{"none", "login", "consent", "select_account"}

func (b *authorizeBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	q, all := authzParams(msg)
	if _, ok := q["request_uri"]; ok {
		return b.pushed(ctx, msg, q, all, x.Now())
	}
	a, prob, err := b.check(ctx, q, all, false)
	if err != nil {
		return "", err
	}
	if prob != nil {
		return prob.answer(msg, b.issuer), nil
	}
	msg["authz"] = a.toMsg()
	return "ok", nil
}

// authzProblem is a refused authorization request: shown as a page
// (page: the client or redirect URI is not known good) or sent back to the
// redirect URI with state.
type authzProblem struct {
	page            bool
	code, desc      string
	redirect, state string
}

// answer writes msg.oauth_error (and msg.redirect) and picks the port.
func (p *authzProblem) answer(msg engine.Msg, issuer string) string {
	if p.page {
		oauth.SetError(msg, 400, p.code, p.desc)
		return "invalid"
	}
	redirectError(msg, p.redirect, p.state, issuer, p.code, p.desc)
	return "redirect_error"
}

// check checks the parameters of an authorization request, from the query
// or (pushed) from a PAR body.
func (b *authorizeBlock) check(ctx context.Context, q map[string]any, all map[string][]string, pushed bool) (authzRequest, *authzProblem, error) {
	page := func(code, desc string) (authzRequest, *authzProblem, error) {
		return authzRequest{}, &authzProblem{page: true, code: code, desc: desc}, nil
	}
	// Until client and redirect URI are known good, nothing may redirect.
	clientID := stringField(q, "client_id")
	if len(all["client_id"]) > 1 || clientID == "" {
		return page("invalid_request", "The request has no valid client_id.")
	}
	cl, err := b.p.Clients.Get(ctx, clientID)
	if errors.Is(err, oauth.ErrNoClient) {
		return page("invalid_client", "The application is not registered.")
	}
	if err != nil {
		return authzRequest{}, nil, fmtErr("oidc.authorize", err)
	}
	redirect := stringField(q, "redirect_uri")
	if len(all["redirect_uri"]) > 1 || redirect == "" || !cl.AllowsRedirectURI(redirect) {
		return page("invalid_request", "The redirect_uri is missing or not registered for this application.")
	}
	state := stringField(q, "state")
	if len(state) > maxStateLen || len(all["state"]) > 1 {
		// A state that cannot be echoed exactly is not echoed at all.
		state = ""
	}
	fail := func(code, desc string) (authzRequest, *authzProblem, error) {
		return authzRequest{}, &authzProblem{code: code, desc: desc, redirect: redirect, state: state}, nil
	}
	if name := repeated(all); name != "" {
		return fail("invalid_request", "A parameter is repeated.")
	}
	if len(stringField(q, "state")) > maxStateLen {
		return fail("invalid_request", "state is too long.")
	}
	if _, ok := q["request"]; ok {
		return fail("request_not_supported", "Request objects are not supported.")
	}
	if _, ok := q["request_uri"]; ok {
		return fail("invalid_request", "request_uri is not allowed in a pushed authorization request.")
	}
	if !pushed && (b.requirePAR || cl.RequirePAR) {
		return fail("invalid_request", "This application must push its authorization requests (PAR, RFC 9126) and send the request_uri.")
	}
	switch rt := stringField(q, "response_type"); {
	case rt == "":
		return fail("invalid_request", "response_type is required.")
	case rt != "code":
		return fail("unsupported_response_type", "Only response_type=code is supported.")
	}
	if rm, ok := q["response_mode"]; ok && rm != "query" {
		return fail("invalid_request", "Only response_mode=query is supported.")
	}
	if !cl.AllowsGrant(oauth.GrantAuthorizationCode) {
		return fail("unauthorized_client", "This application may not use the authorization code flow.")
	}
	scopeParam := stringField(q, "scope")
	scopes := strings.Fields(scopeParam)
	switch {
	case len(scopeParam) > maxScopeLen || len(scopes) > maxScopes:
		return fail("invalid_scope", "Too many scopes.")
	case !slices.Contains(scopes, "openid"):
		return fail("invalid_scope", "The openid scope is required.")
	}
	scopes = knownScopes(scopes, b.standard, cl.Scopes)
	if b.requireState && state == "" {
		return fail("invalid_request", "state is required.")
	}
	nonce := stringField(q, "nonce")
	switch {
	case len(nonce) > maxNonceLen:
		return fail("invalid_request", "nonce is too long.")
	case b.requireNonce && nonce == "":
		return fail("invalid_request", "nonce is required.")
	}
	challenge, method := stringField(q, "code_challenge"), stringField(q, "code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return fail("invalid_request", "code_challenge_method without code_challenge.")
	case challenge == "" && (cl.Public || b.pkceAll):
		return fail("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256.")
	case challenge != "" && method != "S256":
		// Absent means plain (RFC 7636 §4.3), which a leaked request defeats.
		return fail("invalid_request", "code_challenge_method must be S256.")
	case challenge != "" && !isS256Challenge(challenge):
		return fail("invalid_request", "code_challenge must be a base64url SHA-256 (43 characters).")
	}
	prompt := strings.Fields(stringField(q, "prompt"))
	for _, p := range prompt {
		if !slices.Contains(promptValues, p) {
			return fail("invalid_request", "Unknown prompt value.")
		}
	}
	if slices.Contains(prompt, "none") && len(prompt) > 1 {
		return fail("invalid_request", "prompt=none cannot be combined with other values.")
	}
	maxAge := int64(-1)
	if v, ok := q["max_age"]; ok {
		n, err := strconv.ParseInt(v.(string), 10, 64)
		if err != nil || n < 0 || n > 1<<31 {
			return fail("invalid_request", "max_age must be a non-negative number of seconds.")
		}
		maxAge = n
	}
	a := authzRequest{ClientID: cl.ID, ClientName: cl.Name, RedirectURI: redirect, Scope: strings.Join(dedupe(scopes), " "),
		State: state, Nonce: nonce, CodeChallenge: challenge, Prompt: prompt, MaxAge: maxAge}
	if a.ClientName == "" {
		a.ClientName = cl.ID
	}
	if !pendingFits(a) {
		// It could not wait in a sign-in cookie (pending.go).
		return fail("invalid_request", "The request is too large: state, nonce, scope and redirect_uri together must stay under about 2.5 KB.")
	}
	return a, nil, nil
}

// isS256Challenge checks the shape of BASE64URL(SHA256(verifier)).
func isS256Challenge(s string) bool { return looksLikeSecret(s) }

func dedupe(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
