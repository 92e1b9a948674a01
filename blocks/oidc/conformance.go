package oidc

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/engine"
)

// authzParams returns the parameters of an authorization request: the
// query of a GET, the form body of a POST (OpenID Connect Core §3.1.2.1:
// both must be supported; a POST's query is not read, so a parameter
// cannot be half in each).
func authzParams(msg engine.Msg) (map[string]any, map[string][]string) {
	if stringField(reqOf(msg), "method") == "POST" {
		return formParams(msg)
	}
	return queryParams(msg)
}

// knownScopes keeps the requested scopes a client may ask for and drops
// the others: OpenID Connect Core §3.1.2.1 says scope values the server
// does not understand are ignored, so an unknown or unregistered scope
// narrows the grant instead of failing the request.
func knownScopes(requested, standard, client []string) []string {
	out := make([]string, 0, len(requested))
	for _, s := range requested {
		if slices.Contains(standard, s) || slices.Contains(client, s) {
			out = append(out, s)
		}
	}
	return out
}

// hintFields are oidc.session's settings for id_token_hint.
func hintFields() []engine.Field {
	return []engine.Field{
		{Name: "keyset", Label: "Keyset", Kind: engine.KindString, Default: "main",
			Help: "Keyset whose keys (next, active, retired) verify an id_token_hint."},
		{Name: "algorithms", Label: "Hint algorithms", Kind: engine.KindStrings, Default: []string{"RS256", "ES256"},
			Help: "Algorithms an id_token_hint may be signed with."},
	}
}

// hintChecker verifies an id_token_hint (at the authorization endpoint and
// at logout): an ID token this provider signed (expired is fine, OpenID
// Connect Core §3.1.2.1), issued to the requesting client. It reads the
// node's keyset and algorithms fields.
type hintChecker struct {
	policy jose.Policy
	v      *jose.Validator
}

func newHintChecker(s *engine.Setup, p *provider, iss string) (*hintChecker, error) {
	c := s.Config
	if c.String("keyset") == "" {
		return nil, s.Errorf("keyset", "required")
	}
	for _, a := range c.Strings("algorithms") {
		if !slices.Contains(idTokenAlgs, a) {
			return nil, s.Errorf("algorithms", "%q is not an ID token algorithm (%v)", a, idTokenAlgs)
		}
	}
	pol := jose.DefaultPolicy()
	pol.Algorithms = c.Strings("algorithms")
	pol.Source = p.Keysets.Source(c.String("keyset"))
	pol.Issuer = iss
	pol.AudienceOptional = true // the caller checks it against the client
	pol.Types = []string{"JWT"} // an access token (at+jwt) is not a hint
	pol.Leeway = 30 * time.Second
	pol.RequiredClaims = []string{"sub", "aud", "iat"}
	v, err := jose.NewValidator(pol)
	if err != nil {
		return nil, s.Errorf("algorithms", "%v", err)
	}
	return &hintChecker{policy: pol, v: v}, nil
}

// errBadHint: the hint is not an ID token of this provider for the client.
var errBadHint = errors.New("id_token_hint is not an ID token from this provider for this client")

// subject verifies a hint and returns its subject. Only a store or key
// failure is an error other than errBadHint.
func (h *hintChecker) subject(ctx context.Context, hint, clientID string, now time.Time) (string, error) {
	claims, err := checkIDTokenHint(ctx, h.v, h.policy, hint, now)
	var te *jose.TokenError
	if errors.As(err, &te) {
		return "", errBadHint
	}
	if err != nil {
		return "", err
	}
	if !slices.Contains(audiences(claims["aud"]), clientID) {
		return "", errBadHint
	}
	sub := stringField(claims, "sub")
	if sub == "" {
		return "", errBadHint
	}
	return sub, nil
}

func audiences(v any) []string {
	if s, ok := v.(string); ok {
		return []string{s}
	}
	var out []string
	if l, ok := v.([]any); ok {
		for _, e := range l {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}
