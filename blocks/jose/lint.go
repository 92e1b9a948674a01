package jose

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flowd/flowd/engine"
)

// Lint check ids of this package.
const (
	CheckOverlap          = "jose.overlap"
	CheckValidateAudience = "jose.validate_audience"
	CheckUnpublished      = "jose.unpublished_keyset"
	CheckUnrotated        = "jose.unrotated_keyset"
	CheckDecryptError     = "jose.decrypt_error_unwired"
)

// registerLint adds this package's lint checks to reg. They relate nodes
// across the flows linted together: tokens signed in one flow, the keyset
// rotated in another, its JWKS published in a third. (A jose.validate
// without issuer or audience is a deploy error already, see policyFields;
// only an explicit audience_optional is left to lint.)
func registerLint(reg *engine.Registry) error {
	checks := []engine.Check{
		{ID: CheckOverlap, Summary: "a keyset's retire_after is shorter than its longest token lifetime plus its JWKS max-age", Run: lintOverlap},
		{ID: CheckValidateAudience, Summary: "jose.validate accepts tokens for any audience", Run: lintAudience},
		{ID: CheckUnpublished, Summary: "tokens are signed with a keyset no jose.jwks node publishes", Run: lintUnpublished},
		{ID: CheckUnrotated, Summary: "jose.validate trusts a keyset no schedule rotates", Run: lintUnrotated},
		engine.ErrorPortCheck(CheckDecryptError, "fails on any token it cannot decrypt or a key source it cannot reach", "jose.decrypt"),
	}
	for _, c := range checks {
		if err := reg.RegisterCheck(c); err != nil {
			return err
		}
	}
	return nil
}

// signer is a node that signs tokens with a keyset for a lifetime: a
// jose.sign, or any block with keyset, alg and ttl fields (oidc.id_token).
type signer struct {
	n      *engine.LintNode
	keyset string
	alg    string
	ttl    time.Duration
}

func signers(s *engine.LintSet) []signer {
	var out []signer
	for _, n := range s.Nodes() {
		if n.Config == nil || n.Spec == nil || !hasFields(n.Spec, "keyset", "alg", "ttl") {
			continue
		}
		out = append(out, signer{n: n, keyset: n.Config.String("keyset"), alg: n.Config.String("alg"), ttl: n.Config.Duration("ttl")})
	}
	return out
}

func hasFields(s *engine.Spec, names ...string) bool {
	for _, name := range names {
		if !slices.ContainsFunc(s.Fields, func(f engine.Field) bool { return f.Name == name }) {
			return false
		}
	}
	return true
}

// publishers returns the jose.jwks nodes serving keyset name.
func publishers(s *engine.LintSet, name string) []*engine.LintNode {
	var out []*engine.LintNode
	for _, n := range s.Nodes("jose.jwks") {
		if n.Config != nil && n.Config.String("keyset") == name {
			out = append(out, n)
		}
	}
	return out
}

// scheduledRotations returns the jose.rotate nodes (mode rotate) of keyset
// name that a schedule.cron trigger reaches.
func scheduledRotations(s *engine.LintSet, name string) []*engine.LintNode {
	var out []*engine.LintNode
	for _, n := range s.Nodes("jose.rotate") {
		if n.Config == nil || n.Config.String("keyset") != name || n.Config.String("mode") == "ensure" {
			continue
		}
		if slices.ContainsFunc(s.Triggers(n), func(t *engine.LintNode) bool { return t.Node.Type == "schedule.cron" }) {
			out = append(out, n)
		}
	}
	return out
}

func isHMAC(alg string) bool { return strings.HasPrefix(alg, "HS") }

func lintOverlap(_ context.Context, s *engine.LintSet) []engine.Warning {
	var out []engine.Warning
	sigs := signers(s)
	for _, rot := range s.Nodes("jose.rotate") {
		if rot.Config == nil || rot.Config.String("mode") == "ensure" {
			continue
		}
		name, alg := rot.Config.String("keyset"), rot.Config.String("alg")
		retire := rot.Config.Duration("retire_after")
		var longest *signer
		for i := range sigs {
			sg := &sigs[i]
			if sg.keyset != name || (alg != "" && sg.alg != alg) {
				continue
			}
			if longest == nil || sg.ttl > longest.ttl {
				longest = sg
			}
		}
		if longest == nil {
			continue
		}
		var maxAge time.Duration
		var cache *engine.LintNode
		if !isHMAC(longest.alg) {
			for _, p := range publishers(s, name) {
				if a := p.Config.Duration("max_age"); cache == nil || a > maxAge {
					maxAge, cache = a, p
				}
			}
		}
		// The rule is RolloverPolicy's (one place); the lint feeds it this
		// rotation's signers of the same alg, and no JWKS cache for HMAC.
		need := RolloverPolicy{TokenTTL: longest.ttl, JWKSMaxAge: maxAge}.MinRetireAfter()
		if retire >= need {
			continue
		}
		cacheText := "no jose.jwks node publishes it"
		if cache != nil {
			cacheText = fmt.Sprintf("%s lets verifiers cache its JWKS for %s", cache.Label(), engine.FormatDuration(maxAge))
		}
		out = append(out, rot.Warn(CheckOverlap, "retire_after",
			"keyset %q: %s signs tokens valid for %s and %s, so a key retired for only %s disappears while tokens it signed are still valid: set retire_after to at least %s (and max_token_ttl to %s)",
			name, longest.n.Label(), engine.FormatDuration(longest.ttl), cacheText, engine.FormatDuration(retire), engine.FormatDuration(need), engine.FormatDuration(longest.ttl)))
		if longest.n.Flow != rot.Flow {
			out = append(out, longest.n.Warn(CheckOverlap, "ttl",
				"tokens valid for %s outlive keyset %q's overlap: %s keeps retired keys for %s (JWKS max-age %s): lower ttl to at most %s or raise that retire_after to %s",
				engine.FormatDuration(longest.ttl), name, rot.Label(), engine.FormatDuration(retire), engine.FormatDuration(maxAge), engine.FormatDuration(max(retire-maxAge, 0)), engine.FormatDuration(need)))
		}
	}
	return out
}

// lintAudience: jose.validate requires an audience unless audience_optional
// is on (a deploy error otherwise); on, it accepts tokens minted for any
// other service of the issuer. Introspection does that by design and
// silences this check.
func lintAudience(_ context.Context, s *engine.LintSet) []engine.Warning {
	var out []engine.Warning
	for _, n := range s.Nodes("jose.validate") {
		if n.Config == nil || !n.Config.Bool("audience_optional") || len(n.Config.Strings("audience")) > 0 {
			continue
		}
		out = append(out, n.Warn(CheckValidateAudience, "audience_optional",
			"audience_optional with no audience: a token minted for any other service of this issuer is accepted here; list the audience this API expects and turn audience_optional off"))
	}
	return out
}

func lintUnpublished(_ context.Context, s *engine.LintSet) []engine.Warning {
	var out []engine.Warning
	for _, sg := range signers(s) {
		if isHMAC(sg.alg) || sg.keyset == "" || len(publishers(s, sg.keyset)) > 0 {
			continue
		}
		out = append(out, sg.n.Warn(CheckUnpublished, "keyset",
			"signs with keyset %q, which no jose.jwks node of the flows linted publishes, so verifiers elsewhere cannot check these tokens: add a flow serving jose.jwks for %q (or silence this check if only this server verifies them)",
			sg.keyset, sg.keyset))
	}
	return out
}

func lintUnrotated(_ context.Context, s *engine.LintSet) []engine.Warning {
	var out []engine.Warning
	for _, n := range s.Nodes("jose.validate") {
		if n.Config == nil || n.Config.String("source") == sourceRemote {
			continue
		}
		name := n.Config.String("keyset")
		if name == "" || len(scheduledRotations(s, name)) > 0 {
			continue
		}
		out = append(out, n.Warn(CheckUnrotated, "keyset",
			"trusts keyset %q, which no jose.rotate under a schedule.cron rotates, so a leaked key stays trusted forever: add a scheduled rotation (see the key-rollover flow)",
			name))
	}
	return out
}
