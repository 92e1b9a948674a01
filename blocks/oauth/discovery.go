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
			path("jwks_path", "JWKS path", "/.well-known/jwks.json", "Published as jwks_uri when a flow serves it."),
			path("token_path", "Token path", "/oauth/token", "Published as token_endpoint when a flow serves it."),
			path("introspection_path", "Introspection path", "/oauth/introspect", "Published as introspection_endpoint when served."),
			path("authorization_path", "Authorization path", "/oauth/authorize", "Published as authorization_endpoint when served."),
			path("userinfo_path", "Userinfo path", "/oauth/userinfo", "Published as userinfo_endpoint when served."),
			path("end_session_path", "End session path", "/oauth/logout", "Published as end_session_endpoint when served."),
			path("revocation_path", "Revocation path", "/oauth/revoke", "Published as revocation_endpoint (RFC 7009) when served."),
		},
		Outputs: []string{"out"},
	}
}

type discovery struct {
	issuer string
	algs   []string
	scopes []string
	claims []string
	paths  map[string]string // metadata member -> path
	routes RouteLister
}

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
	d := &discovery{issuer: strings.TrimSuffix(issuer, "/"), algs: c.Strings("signing_algs"),
		scopes: c.Strings("scopes"), claims: c.Strings("claims"), routes: opts.Routes, paths: map[string]string{}}
	for member, field := range map[string]string{
		"jwks_uri": "jwks_path", "token_endpoint": "token_path", "introspection_endpoint": "introspection_path",
		"authorization_endpoint": "authorization_path", "userinfo_endpoint": "userinfo_path",
		"end_session_endpoint": "end_session_path", "revocation_endpoint": "revocation_path",
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
		doc["token_endpoint_auth_methods_supported"] = []any{"client_secret_basic", "client_secret_post"}
	}
	if _, ok := doc["introspection_endpoint"]; ok {
		doc["introspection_endpoint_auth_methods_supported"] = []any{"client_secret_basic", "client_secret_post"}
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
			doc["token_endpoint_auth_methods_supported"] = []any{"client_secret_basic", "client_secret_post", "none"}
		}
	}
	if _, ok := doc["revocation_endpoint"]; ok {
		doc["revocation_endpoint_auth_methods_supported"] = []any{"client_secret_basic", "client_secret_post", "none"}
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
// means true (OpenID Connect Discovery 1.0 §3). This is the one place to
// change when the endpoint accepts request_uri (PAR, RFC 9126).
func requestObjects(doc map[string]any) {
	if _, ok := doc["authorization_endpoint"]; !ok {
		return
	}
	doc["request_parameter_supported"] = false
	doc["request_uri_parameter_supported"] = false
}
