package oauth

import (
	"context"
	"slices"

	"github.com/flowd/flowd/engine"
)

// CheckDiscoveryRS256 is the id of the lint check that an OpenID provider
// whose discovery document promises RS256 ID tokens signs them with RS256.
const CheckDiscoveryRS256 = "oauth.discovery_rs256"

// registerLint adds this package's lint checks to reg.
func registerLint(reg *engine.Registry) error {
	return reg.RegisterCheck(engine.Check{ID: CheckDiscoveryRS256,
		Summary: "discovery promises RS256 ID tokens but no ID token signer uses RS256",
		Run:     lintDiscoveryRS256})
}

// lintDiscoveryRS256: OpenID Connect Discovery requires RS256 among the ID
// token algorithms (a deploy error otherwise), and clients may rely on it;
// ID tokens all signed with another alg fail at such clients.
func lintDiscoveryRS256(_ context.Context, s *engine.LintSet) []engine.Warning {
	idTokens := s.Nodes("oidc.id_token")
	if len(idTokens) == 0 || slices.ContainsFunc(idTokens, func(n *engine.LintNode) bool {
		return n.Config == nil || n.Config.String("alg") == "RS256"
	}) {
		return nil
	}
	var out []engine.Warning
	for _, n := range s.Nodes("oauth.discovery") {
		if n.Config == nil || !slices.Contains(n.Config.Strings("signing_algs"), "RS256") {
			continue
		}
		out = append(out, n.Warn(CheckDiscoveryRS256, "signing_algs",
			"the provider metadata promises RS256 ID tokens, but no oidc.id_token node signs with RS256 (%s uses %s): set alg RS256 on an oidc.id_token node, with RS256 keys in its keyset",
			idTokens[0].Label(), idTokens[0].Config.String("alg")))
	}
	return out
}
