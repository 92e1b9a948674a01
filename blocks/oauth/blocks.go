package oauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/engine"
)

// Category of the OAuth blocks in the editor's palette.
const Category = "oauth"

// RouteLister lists the routes deployed flows serve (the http Router).
type RouteLister interface {
	Patterns() []string
}

// Options configure the OAuth blocks.
type Options struct {
	// Issuer is this provider's issuer identifier (FLOWD_ISSUER).
	Issuer string
	// Routes tells discovery which endpoints deployed flows serve.
	Routes RouteLister
	Logger *slog.Logger
	// Replay remembers the jti of private_key_jwt assertions (share the
	// DPoP one: a KV cache over the shared store on a cluster); nil: in
	// memory.
	Replay jose.ReplayCache
	// HTTPClient fetches clients' jwks_uri; AllowInsecureJWKS lets one be
	// http to a loopback host (tests).
	HTTPClient        *http.Client
	AllowInsecureJWKS bool
}

// Register adds the OAuth blocks and their lint checks to reg. It needs no
// services: a runtime that deploys them gets the client registry and
// options given to Provide.
func Register(reg *engine.Registry) error {
	for _, b := range []struct {
		spec engine.Spec
		fac  engine.Factory
	}{
		{clientAuthSpec(), func(s *engine.Setup) (engine.Block, error) {
			d, err := depsFor(s)
			if err != nil {
				return nil, err
			}
			return &clientAuth{clients: d.clients, allowPublic: s.Config.Bool("allow_public")}, nil
		}},
		{clientCredentialsSpec(), newClientCredentialsFromConfig},
		{discoverySpec(), func(s *engine.Setup) (engine.Block, error) {
			d, err := depsFor(s)
			if err != nil {
				return nil, err
			}
			return newDiscoveryFromConfig(s, d.opts)
		}},
	} {
		if err := reg.Register(b.spec, observed(b.spec.Type, b.fac)); err != nil {
			return err
		}
	}
	return registerLint(reg)
}

// blockDeps is what the factories of a runtime share (Provide).
type blockDeps struct {
	clients *Clients
	opts    Options
}

// Provide gives the OAuth blocks of a runtime built with svc their client
// registry and options, and sets how clients' private_key_jwt assertions
// are checked (the issuer, the replay cache, the jwks_uri client).
func Provide(svc *engine.Services, clients *Clients, opts Options) error {
	if clients == nil {
		return errors.New("oauth: Provide needs a client registry")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	clients.SetAssertions(AssertionOptions{Issuer: opts.Issuer, Replay: opts.Replay, HTTPClient: opts.HTTPClient,
		AllowInsecureJWKS: opts.AllowInsecureJWKS})
	return engine.Provide(svc, &blockDeps{clients: clients, opts: opts})
}

// depsFor finds the services of the runtime. A node only validated on a
// runtime without them is built with no client registry (it never runs)
// and jose.ValidationIssuer as flowd's issuer.
func depsFor(s *engine.Setup) (*blockDeps, error) {
	d, err := engine.ServiceOr(s, "oauth.Provide", func() *blockDeps {
		return &blockDeps{opts: Options{Issuer: jose.ValidationIssuer}}
	})
	if err != nil {
		return nil, fmt.Errorf("no client registry: %w", err)
	}
	return d, nil
}

// SetError puts an RFC 6749 §5.2 error on the message (msg.oauth_error:
// status, error, error_description) for the flow to answer.
func SetError(msg engine.Msg, status int, code, desc string) {
	msg["oauth_error"] = map[string]any{"status": status, "error": code, "error_description": desc}
}

func clientAuthSpec() engine.Spec {
	return engine.Spec{
		Type: "oauth.client_auth", Title: "Authenticate client", Category: Category, Bounded: true,
		// It reads msg.req's one header through engine.MsgPath, which
		// does not build http.in's msg.req.
		LazyMessage: true,
		Description: "Authenticates an OAuth client from an http.in request: client_secret_basic " +
			"(Authorization: Basic), client_secret_post (client_id and client_secret in the form " +
			"body) or private_key_jwt (RFC 7523: client_assertion_type and a client_assertion JWT signed " +
			"with a key the client registered, aud the issuer or the token endpoint URL, at most 5 minutes " +
			"long, its jti used once), exactly one, and the one the client registered " +
			"(token_endpoint_auth_method). On success msg.client holds id, scopes and audiences; otherwise " +
			"msg.oauth_error holds an RFC 6749 invalid_client error (answer it with status 401). " +
			"msg.client also says whether the client is public, which grant types it may use and whether " +
			"its tokens must be DPoP-bound (dpop_bound_access_tokens, for jose.dpop). " +
			"A client id with too many recent failures leaves by \"throttled\" (answer 429), and a request " +
			"that found every password-hashing slot taken by \"busy\" (answer 503); both set " +
			"msg.retry_after (seconds, for a Retry-After header) and msg.oauth_error.",
		Fields: []engine.Field{
			{Name: "allow_public", Label: "Allow public clients", Kind: engine.KindBool,
				Help: "Also accept a public client (registered without a secret) that sends only its " +
					"client_id in the form body (token_endpoint_auth_method none). Its requests must " +
					"then be protected otherwise: PKCE for codes, rotation for refresh tokens."},
		},
		Outputs: []string{"ok", "invalid", "throttled", "busy"},
	}
}

type clientAuth struct {
	clients     *Clients
	allowPublic bool
}

var _ engine.Block = (*clientAuth)(nil)

// Process authenticates the client and tells the engine what it wrote
// (Exec.Grew: msg.client, or msg.oauth_error and msg.retry_after), so a
// run that knew its message's size still does without walking it.
func (b *clientAuth) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	port, err := b.process(ctx, msg)
	if err == nil {
		x.Grew(grewBy(msg, "client", "oauth_error", "retry_after"))
	}
	return port, err
}

func (b *clientAuth) process(ctx context.Context, msg engine.Msg) (string, error) {
	// The Authorization header, read once (through msg.req, unbuilt).
	auth, _ := engine.MsgPath(msg, authorizationPath...).(string)
	if assertion, id, isJWT, err := clientAssertion(msg, auth); isJWT {
		if err != nil {
			SetError(msg, 401, "invalid_client", err.Error())
			return "invalid", nil
		}
		cl, err := b.clients.AuthenticateAssertion(ctx, assertion, id)
		var ae *AssertionError
		if errors.As(err, &ae) {
			SetError(msg, 401, "invalid_client", ae.Error())
			return "invalid", nil
		}
		if err != nil {
			return "", err
		}
		setClient(msg, cl)
		return "ok", nil
	}
	if b.allowPublic {
		if id, ok := publicClientID(msg, auth); ok {
			cl, err := b.clients.Get(ctx, id)
			if err != nil && !errors.Is(err, ErrNoClient) {
				return "", err
			}
			if err == nil && cl.Public && (cl.TokenEndpointAuthMethod == "" || cl.TokenEndpointAuthMethod == AuthNone) {
				setClient(msg, cl)
				return "ok", nil
			}
			// Not a public client: fail exactly like a wrong secret.
			_, err = b.clients.Authenticate(ctx, id, "")
			return authFailure(msg, err)
		}
	}
	id, secret, err := clientCredentials(msg, auth)
	if err != nil {
		SetError(msg, 401, "invalid_client", err.Error())
		return "invalid", nil
	}
	cl, err := b.clients.Authenticate(ctx, id, secret)
	if err != nil {
		return authFailure(msg, err)
	}
	used := AuthSecretPost
	if auth != "" {
		used = AuthSecretBasic
	}
	if m := cl.TokenEndpointAuthMethod; m != "" && m != used {
		SetError(msg, 401, "invalid_client", "this client is registered to authenticate with "+m)
		return "invalid", nil
	}
	setClient(msg, cl)
	return "ok", nil
}

// clientAssertion reads a private_key_jwt request: isJWT when the body has
// client_assertion or client_assertion_type; err when it is malformed or
// mixed with another method.
func clientAssertion(msg engine.Msg, auth string) (assertion, clientID string, isJWT bool, err error) {
	body, _ := engine.MsgPath(msg, "body").(map[string]any)
	typ, hasType := body["client_assertion_type"]
	a, hasAssertion := body["client_assertion"]
	if !hasType && !hasAssertion {
		return "", "", false, nil
	}
	assertion, _ = a.(string)
	clientID, _ = body["client_id"].(string)
	switch {
	case typ != AssertionType:
		return "", "", true, errors.New("client_assertion_type must be " + AssertionType)
	case assertion == "":
		return "", "", true, errors.New("client_assertion is required")
	case auth != "" || body["client_secret"] != nil:
		return "", "", true, errors.New("use one client authentication method, not both")
	}
	if all, ok := engine.MsgPath(msg, "body_all").(map[string][]string); ok && (len(all["client_assertion"]) > 1 || len(all["client_assertion_type"]) > 1) {
		return "", "", true, errors.New("client_assertion is repeated")
	}
	return assertion, clientID, true, nil
}

// authorizationPath is msg.req.headers.authorization (a variable: a
// literal variadic list would be allocated on every call).
var authorizationPath = []string{"req", "headers", "authorization"}

// authFailure picks the port for a failed Authenticate.
func authFailure(msg engine.Msg, err error) (string, error) {
	var retry *RetryError
	switch {
	case errors.Is(err, ErrInvalidClient), err == nil:
		SetError(msg, 401, "invalid_client", "client authentication failed")
		return "invalid", nil
	case errors.As(err, &retry) && errors.Is(err, ErrThrottled):
		msg["retry_after"] = retry.RetryAfterSeconds()
		SetError(msg, 429, "invalid_client", "too many failed attempts for this client: retry later")
		return "throttled", nil
	case errors.As(err, &retry) && errors.Is(err, ErrBusy):
		msg["retry_after"] = retry.RetryAfterSeconds()
		// RFC 6749 has temporarily_unavailable for the authorization
		// endpoint only; it says what happened here too.
		SetError(msg, 503, "temporarily_unavailable", "the server is busy: retry later")
		return "busy", nil
	}
	return "", err
}

// setClient writes msg.client. grant_types is the effective list (what
// AllowsGrant allows), so flows need not know the defaults.
func setClient(msg engine.Msg, cl Client) {
	grants := make([]any, 0, len(knownGrants))
	for i, g := range knownGrants {
		if cl.AllowsGrant(g) {
			grants = append(grants, knownGrantValues[i]) // boxed once
		}
	}
	msg["client"] = map[string]any{"id": cl.ID, "scopes": anyList(cl.Scopes), "audiences": anyList(cl.Audiences),
		"public": cl.Public, "grant_types": grants, "dpop_bound_access_tokens": cl.DPoPBoundAccessTokens}
}

// knownGrantValues are knownGrants as message values, boxed once.
var knownGrantValues = func() []any {
	out := make([]any, len(knownGrants))
	for i, g := range knownGrants {
		out[i] = g
	}
	return out
}()

// publicClientID returns the client_id of a request that carries no client
// credentials at all (no Authorization header, no client_secret).
func publicClientID(msg engine.Msg, auth string) (string, bool) {
	body, _ := engine.MsgPath(msg, "body").(map[string]any)
	if auth != "" {
		return "", false
	}
	if _, has := body["client_secret"]; has {
		return "", false
	}
	id, _ := body["client_id"].(string)
	return id, id != ""
}

func anyList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// clientCredentials extracts id and secret per RFC 6749 §2.3.1: the Basic
// credentials are form-urlencoded before base64.
func clientCredentials(msg engine.Msg, auth string) (id, secret string, err error) {
	body, _ := engine.MsgPath(msg, "body").(map[string]any)
	postID, _ := body["client_id"].(string)
	postSecret, _ := body["client_secret"].(string)
	if auth != "" {
		if postSecret != "" {
			return "", "", errors.New("use one client authentication method, not both")
		}
		if len(auth) < 6 || !strings.EqualFold(auth[:6], "basic ") {
			return "", "", errors.New("unsupported authorization scheme")
		}
		raw, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(auth[6:]))
		if derr != nil {
			return "", "", errors.New("malformed Basic credentials")
		}
		u, p, ok := strings.Cut(string(raw), ":")
		if !ok {
			return "", "", errors.New("malformed Basic credentials")
		}
		if id, err = url.QueryUnescape(u); err == nil {
			secret, err = url.QueryUnescape(p)
		}
		if err != nil || id == "" {
			return "", "", errors.New("malformed Basic credentials")
		}
		if postID != "" && postID != id {
			return "", "", errors.New("client_id does not match the authenticated client")
		}
		return id, secret, nil
	}
	if postID == "" || postSecret == "" {
		return "", "", errors.New("client authentication required")
	}
	return postID, postSecret, nil
}

func clientCredentialsSpec() engine.Spec {
	return engine.Spec{
		Type: "oauth.client_credentials", Title: "Client credentials grant", Category: Category,
		// Adds msg.grant: scopes and audience from the client's own lists, so bounded.
		Bounded: true,
		// Reads through engine.MsgPath only.
		LazyMessage: true,
		Description: "Checks a token request (RFC 6749 §4.4) from an authenticated client " +
			"(msg.client, from oauth.client_auth): grant_type, requested scopes within the " +
			"client's, and an RFC 8707 resource the client may use. On success msg.grant holds " +
			"client_id, subject, scope (space separated) and audience; otherwise msg.oauth_error " +
			"holds the RFC 6749 §5.2 error (answer it with status 400).",
		Fields: []engine.Field{
			{Name: "default_audience", Label: "Default audience", Kind: engine.KindString, Required: true,
				Help: "The audience (aud) of tokens requested without a resource parameter."},
			{Name: "max_scopes", Label: "Max scopes", Kind: engine.KindInt, Default: 50, Min: "1", Max: "500",
				Help: "Requests naming more scopes are refused."},
		},
		Outputs: []string{"ok", "invalid"},
	}
}

type clientCredentialsBlock struct {
	defaultAudience string
	maxScopes       int
}

var _ engine.Block = (*clientCredentialsBlock)(nil)

func newClientCredentialsFromConfig(s *engine.Setup) (engine.Block, error) {
	return &clientCredentialsBlock{defaultAudience: s.Config.String("default_audience"), maxScopes: int(s.Config.Int("max_scopes"))}, nil
}

// Process checks the request and tells the engine what it wrote
// (Exec.Grew: msg.grant or msg.oauth_error), so the blocks after it need
// not walk the message to know its size.
func (b *clientCredentialsBlock) Process(_ context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	port, err := b.process(msg)
	if err == nil {
		x.Grew(grewBy(msg, "grant", "oauth_error"))
	}
	return port, err
}

// grewBy is what the members keys of msg add to its estimated size, each
// counted in full, written by the block or not (an overestimate).
func grewBy(msg engine.Msg, keys ...string) int {
	n := 0
	for _, k := range keys {
		if v, ok := msg[k]; ok {
			n += len(k) + 4 + engine.MessageSize(v)
		}
	}
	return n
}

func (b *clientCredentialsBlock) process(msg engine.Msg) (string, error) {
	client, _ := engine.MsgPath(msg, "client").(map[string]any)
	id, _ := client["id"].(string)
	if id == "" {
		return "", errors.New("oauth.client_credentials needs msg.client: put oauth.client_auth before it")
	}
	body, _ := engine.MsgPath(msg, "body").(map[string]any)
	grant, _ := body["grant_type"].(string)
	switch {
	case grant == "":
		SetError(msg, 400, "invalid_request", "grant_type is required")
		return "invalid", nil
	case grant != "client_credentials":
		SetError(msg, 400, "unsupported_grant_type", "this endpoint issues client_credentials tokens")
		return "invalid", nil
	}
	// msg.client from oauth.client_auth lists the grants the client may
	// use; a public client never may use this one.
	if pub, _ := client["public"].(bool); pub {
		SetError(msg, 400, "unauthorized_client", "a public client cannot use the client_credentials grant")
		return "invalid", nil
	}
	if grants, ok := client["grant_types"]; ok && !listHas(grants, "client_credentials") {
		SetError(msg, 400, "unauthorized_client", "this client may not use the client_credentials grant")
		return "invalid", nil
	}
	scopeParam, _ := body["scope"].(string)
	requested := strings.Fields(scopeParam)
	if len(requested) > b.maxScopes {
		SetError(msg, 400, "invalid_scope", "too many scopes requested")
		return "invalid", nil
	}
	if len(requested) == 0 {
		requested = StringList(client["scopes"])
	}
	for _, s := range requested {
		if !listHas(client["scopes"], s) {
			SetError(msg, 400, "invalid_scope", fmt.Sprintf("scope %q is not allowed for this client", truncate(s, 64)))
			return "invalid", nil
		}
	}
	audience := b.defaultAudience
	var resources []string
	if all, ok := engine.MsgPath(msg, "body_all").(map[string][]string); ok {
		resources = all["resource"]
	} else if r, ok := body["resource"].(string); ok && r != "" {
		resources = []string{r}
	}
	switch len(resources) {
	case 0:
	case 1:
		u, err := url.Parse(resources[0])
		if err != nil || !u.IsAbs() || u.Fragment != "" {
			SetError(msg, 400, "invalid_target", "resource must be an absolute URI without a fragment")
			return "invalid", nil
		}
		if !listHas(client["audiences"], resources[0]) {
			SetError(msg, 400, "invalid_target", "this client may not request tokens for that resource")
			return "invalid", nil
		}
		audience = resources[0]
	default:
		SetError(msg, 400, "invalid_target", "request one resource per token")
		return "invalid", nil
	}
	var idv any = id // boxed once for both members
	msg["grant"] = map[string]any{"client_id": idv, "subject": idv, "scope": strings.Join(dedupe(requested), " "), "audience": audience}
	return "ok", nil
}

// StringList reads a message value that holds strings ([]string, or []any
// as decoded JSON gives); other elements are skipped.
func StringList(v any) []string {
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		out := make([]string, 0, len(l))
		for _, e := range l {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// listHas is slices.Contains(StringList(v), s), without making the list.
func listHas(v any, s string) bool {
	switch l := v.(type) {
	case []string:
		return slices.Contains(l, s)
	case []any:
		for _, e := range l {
			if es, ok := e.(string); ok && es == s {
				return true
			}
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
