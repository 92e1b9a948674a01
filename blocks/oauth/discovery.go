package oauth

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/flowd/flowd/engine"
)

func discoverySpec() engine.Spec {
	path := func(name, label, def, help string) engine.Field {
		return engine.Field{Name: name, Label: label, Kind: engine.KindString, Default: def, Help: help}
	}
	return engine.Spec{
		Type: "oauth.discovery", Title: "Provider metadata", Category: Category,
		Description: "Builds the OpenID Connect Discovery 1.0 / RFC 8414 metadata document into " +
			"msg.payload. It lists only the endpoints that deployed flows serve right now, so " +
			"undeploying the token flow removes token_endpoint from the document.",
		Fields: []engine.Field{
			{Name: "issuer", Label: "Issuer", Kind: engine.KindString,
				Help: "The issuer identifier (an https URL in production). Empty: flowd's --issuer / FLOWD_ISSUER."},
			{Name: "signing_algs", Label: "ID token signing algorithms", Kind: engine.KindStrings,
				Default: []string{"RS256", "ES256"}, Help: "id_token_signing_alg_values_supported; OpenID requires RS256."},
			{Name: "scopes", Label: "Scopes", Kind: engine.KindStrings,
				Default: []string{"openid", "profile", "email", "offline_access"},
				Help:    "scopes_supported: the scopes a relying party may ask for (clients may have more of their own). Empty: not published."},
			{Name: "claims", Label: "Claims", Kind: engine.KindStrings,
				Default: []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "at_hash",
					"name", "preferred_username", "email", "email_verified"}, Help: "claims_supported."},
			{Name: "dpop_algs", Label: "DPoP proof algorithms", Kind: engine.KindStrings,
				Default: dpopAlgs,
				Help: "dpop_signing_alg_values_supported (RFC 9449), listed when the token endpoint is served: " +
					"the algorithms the token flow's jose.dpop allows. Empty: DPoP is not announced."},
			path("jwks_path", "JWKS path", "/.well-known/jwks.json", "Published as jwks_uri when a flow serves it."),
			path("token_path", "Token path", "/oauth/token", "Published as token_endpoint when a flow serves it."),
			path("introspection_path", "Introspection path", "/oauth/introspect", "Published as introspection_endpoint when served."),
			path("authorization_path", "Authorization path", "/oauth/authorize", "Published as authorization_endpoint when served."),
			path("userinfo_path", "Userinfo path", "/oauth/userinfo", "Published as userinfo_endpoint when served."),
			path("end_session_path", "End session path", "/oauth/logout", "Published as end_session_endpoint when served."),
			path("par_path", "PAR path", "/oauth/par", "Published as pushed_authorization_request_endpoint (RFC 9126) when served."),
			{Name: "require_par", Label: "Require PAR", Kind: engine.KindBool,
				Help: "Published as require_pushed_authorization_requests with the PAR endpoint: set it when the " +
					"authorize flow's oidc.authorize has require_par on."},
			path("revocation_path", "Revocation path", "/oauth/revoke", "Published as revocation_endpoint (RFC 7009) when served."),
		},
		Outputs: []string{"out"},
	}
}

// dpopAlgs are the algorithms a DPoP proof may use (never none or HS*).
var dpopAlgs = []string{"ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

type discovery struct {
	issuer string
	algs   []string
	scopes []string
	claims []string
	dpop   []string
	par    bool
	paths  map[string]string // metadata member -> path
	routes RouteLister
}

var _ engine.Block = (*discovery)(nil)

func newDiscoveryFromConfig(s *engine.Setup, opts Options) (engine.Block, error) {
	c := s.Config
	issuer := c.String("issuer")
	if issuer == "" {
		issuer = opts.Issuer
	}
	if issuer == "" {
		return nil, s.Errorf("issuer", "required: set it here or start flowd with --issuer")
	}
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, s.Errorf("issuer", "must be an http(s) URL without query or fragment, like https://id.example.com")
	}
	if !slices.Contains(c.Strings("signing_algs"), "RS256") {
		return nil, s.Errorf("signing_algs", "must include RS256 (OpenID Connect Discovery 1.0 §3)")
	}
	for _, a := range c.Strings("dpop_algs") {
		if !slices.Contains(dpopAlgs, a) {
			return nil, s.Errorf("dpop_algs", "%q is not an asymmetric JWS algorithm (one of %s)", a, strings.Join(dpopAlgs, ", "))
		}
	}
	d := &discovery{issuer: strings.TrimSuffix(issuer, "/"), algs: c.Strings("signing_algs"),
		scopes: c.Strings("scopes"), claims: c.Strings("claims"), dpop: c.Strings("dpop_algs"), par: c.Bool("require_par"), routes: opts.Routes, paths: map[string]string{}}
	for member, field := range map[string]string{
		"jwks_uri": "jwks_path", "token_endpoint": "token_path", "introspection_endpoint": "introspection_path",
		"authorization_endpoint": "authorization_path", "userinfo_endpoint": "userinfo_path",
		"end_session_endpoint": "end_session_path", "pushed_authorization_request_endpoint": "par_path",
		"revocation_endpoint": "revocation_path",
	} {
		p := c.String(field)
		if p != "" && !strings.HasPrefix(p, "/") {
			return nil, s.Errorf(field, "must be a path starting with /")
		}
		d.paths[member] = p
	}
	return d, nil
}

func (d *discovery) Process(_ context.Context, _ *engine.Exec, msg engine.Msg) (string, error) {
	if d.routes == nil {
		return "", errors.New("oauth.discovery: flowd was built without an HTTP router")
	}
	served := map[string]bool{}
	for _, p := range d.routes.Patterns() {
		_, path, _ := strings.Cut(p, " ")
		if path == "" {
			path = p
		}
		served[path] = true
	}
	doc := map[string]any{
		"issuer":                                d.issuer,
		"subject_types_supported":               []any{"public"},
		"id_token_signing_alg_values_supported": anyList(d.algs),
		"claims_supported":                      anyList(d.claims),
		"response_types_supported":              []any{},
	}
	grants := []any{}
	for member, p := range d.paths {
		if p != "" && served[p] {
			doc[member] = d.issuer + p
		}
	}
	if _, ok := doc["token_endpoint"]; ok {
		grants = append(grants, "client_credentials")
		doc["token_endpoint_auth_methods_supported"] = []any{"client_secret_basic", "client_secret_post", "private_key_jwt"}
		doc["token_endpoint_auth_signing_alg_values_supported"] = anyList(AssertionAlgorithms)
		if len(d.dpop) > 0 {
			doc["dpop_signing_alg_values_supported"] = anyList(d.dpop)
		}
	}
	if _, ok := doc["introspection_endpoint"]; ok {
		doc["introspection_endpoint_auth_methods_supported"] = []any{"client_secret_basic", "client_secret_post", "private_key_jwt"}
		doc["introspection_endpoint_auth_signing_alg_values_supported"] = anyList(AssertionAlgorithms)
	}
	if _, ok := doc["authorization_endpoint"]; ok {
		doc["response_types_supported"] = []any{"code"}
		doc["response_modes_supported"] = []any{"query"}
		doc["code_challenge_methods_supported"] = []any{"S256"}
		grants = append(grants, "authorization_code", "refresh_token")
		// RFC 9207: the authorization response carries iss.
		doc["authorization_response_iss_parameter_supported"] = true
		if _, ok := doc["token_endpoint"]; ok {
			// Public clients (native and browser apps) send only client_id.
			doc["token_endpoint_auth_methods_supported"] = []any{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
		}
	}
	if _, ok := doc["pushed_authorization_request_endpoint"]; ok {
		doc["require_pushed_authorization_requests"] = d.par
	}
	if _, ok := doc["revocation_endpoint"]; ok {
		doc["revocation_endpoint_auth_methods_supported"] = []any{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
	}
	requestObjects(doc)
	doc["grant_types_supported"] = grants
	if len(d.scopes) > 0 {
		doc["scopes_supported"] = anyList(d.scopes)
	}
	msg["payload"] = doc
	return "out", nil
}

// requestObjects states what the authorization endpoint does with request
// objects: nothing. Both members are written because an omitted one
// means true (OpenID Connect Discovery 1.0 §3).
func requestObjects(doc map[string]any) {
	if _, ok := doc["authorization_endpoint"]; !ok {
		return
	}
	doc["request_parameter_supported"] = false
	// request_uri is accepted only as a reference to a request pushed to
	// the PAR endpoint (RFC 9126), which a client learns from
	// pushed_authorization_request_endpoint; request objects by reference
	// (OIDC Core 6.2) are not fetched.
	doc["request_uri_parameter_supported"] = false
}
