package jose

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flowd/flowd/engine"
)

// ErrOverlapTooShort refuses a rotation whose retire_after is shorter than
// the keyset's tokens may live plus verifiers may cache its JWKS.
var ErrOverlapTooShort = errors.New("retire_after too short")

// RolloverPolicy is what the deployed flows say about one keyset's rollover. It is
// read from the flow documents (the deployed versions), so a rotation from
// the admin API or UI uses the same overlap as the keyset's scheduled
// rotation without anything being copied to the keyset record that could
// go stale when a flow changes.
type RolloverPolicy struct {
	Keyset string
	// RetireAfter is the overlap manual rotations use: the longest
	// retire_after of the deployed jose.rotate nodes (mode rotate) on this
	// keyset, or DefaultRetireAfter when none is deployed.
	RetireAfter time.Duration
	// Configured tells whether RetireAfter comes from a deployed jose.rotate.
	Configured bool
	// ShortestRetire is the shortest deployed retire_after (0: none): the
	// one that bites if tokens outlive it.
	ShortestRetire time.Duration
	// TokenTTL is the longest lifetime of a token signed with the keyset:
	// jose.sign and oidc.id_token ttl, and the max_token_ttl jose.rotate
	// declares (defaultMaxTokenTTL when nothing is deployed).
	TokenTTL time.Duration
	// JWKSMaxAge is the longest a verifier may cache the keyset's JWKS:
	// jose.jwks max_age and jose.rotate's jwks_max_age.
	JWKSMaxAge time.Duration
	// Sources names the nodes read, "flow/node", sorted.
	Sources []string
}

// tokenTTLFields are the block types that sign tokens with a keyset, and
// their lifetime field. oidc.id_token lives in blocks/oidc (which imports
// this package), hence a name rather than a reference.
var tokenTTLFields = map[string]string{"jose.sign": "ttl", "oidc.id_token": "ttl"}

// MinRetireAfter is the shortest safe overlap: a token signed just before
// the rotation lives TokenTTL, and a verifier may keep the JWKS it fetched
// before that for JWKSMaxAge more. It is the one rule: rotations from the
// API and UI (CheckOverlap) and the jose.overlap lint both apply it.
func (p RolloverPolicy) MinRetireAfter() time.Duration { return p.TokenTTL + p.JWKSMaxAge }

// RolloverPolicyFor reads the policy of keyset from the deployed flows; reg gives
// the defaults of fields a document leaves out.
func RolloverPolicyFor(reg *engine.Registry, flows []*engine.Flow, keyset string) RolloverPolicy {
	p := RolloverPolicy{Keyset: keyset}
	var sawTTL, sawAge bool
	for _, f := range flows {
		for _, n := range f.Nodes {
			cfg := func(field string) string { return configText(reg, n, field) }
			dur := func(field string) time.Duration {
				d, _ := time.ParseDuration(cfg(field))
				return d
			}
			if cfg("keyset") != keyset {
				continue
			}
			switch {
			case n.Type == "jose.rotate" && cfg("mode") != "ensure":
				ra := dur("retire_after")
				if p.ShortestRetire == 0 || ra < p.ShortestRetire {
					p.ShortestRetire = ra
				}
				p.RetireAfter = max(p.RetireAfter, ra)
				p.Configured = true
				p.TokenTTL, p.JWKSMaxAge = max(p.TokenTTL, dur("max_token_ttl")), max(p.JWKSMaxAge, dur("jwks_max_age"))
				sawTTL, sawAge = true, true
			case tokenTTLFields[n.Type] != "":
				p.TokenTTL = max(p.TokenTTL, dur(tokenTTLFields[n.Type]))
				sawTTL = true
			case n.Type == "jose.jwks":
				p.JWKSMaxAge = max(p.JWKSMaxAge, dur("max_age"))
				sawAge = true
			default:
				continue
			}
			p.Sources = append(p.Sources, f.ID+"/"+n.ID)
		}
	}
	if !p.Configured {
		p.RetireAfter = DefaultRetireAfter
	}
	if !sawTTL {
		p.TokenTTL = defaultMaxTokenTTL
	}
	if !sawAge {
		p.JWKSMaxAge = defaultJWKSMaxAge
	}
	slices.Sort(p.Sources)
	return p
}

// configText is a node's config field as text: the JSON string, or the
// spec's default when the document leaves it out.
func configText(reg *engine.Registry, n engine.Node, field string) string {
	if raw, ok := n.Config[field]; ok && string(raw) != "null" {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return string(raw)
	}
	if reg == nil {
		return ""
	}
	spec, ok := reg.Spec(n.Type)
	if !ok {
		return ""
	}
	for _, fl := range spec.Fields {
		if fl.Name == field && fl.Default != nil {
			return fmt.Sprint(fl.Default)
		}
	}
	return ""
}

// CheckOverlap says what a rotation at now keeping retired keys for
// retireAfter breaks, given the kids it retires (the active keys now).
// It returns "" when retireAfter is long enough; otherwise a sentence
// naming the minimum, the tokens at risk and until when.
func (p RolloverPolicy) CheckOverlap(retireAfter time.Duration, retiring []string, now time.Time) string {
	need := p.MinRetireAfter()
	if retireAfter >= need {
		return ""
	}
	keys := "the active key"
	if len(retiring) > 0 {
		keys = "the active key(s) " + strings.Join(retiring, ", ")
	}
	return fmt.Sprintf("retire_after %s is shorter than the %s keyset %q needs: its tokens live up to %s and "+
		"verifiers may cache its JWKS for %s (from %s). Tokens signed by %s before %s would fail verification "+
		"with unknown_kid from %s until %s, when the last of them expires",
		engine.FormatDuration(retireAfter), engine.FormatDuration(need), p.Keyset, engine.FormatDuration(p.TokenTTL), engine.FormatDuration(p.JWKSMaxAge), p.sourceText(),
		keys, now.UTC().Format(time.RFC3339), now.Add(retireAfter).UTC().Format(time.RFC3339),
		now.Add(p.TokenTTL).UTC().Format(time.RFC3339))
}

func (p RolloverPolicy) sourceText() string {
	if len(p.Sources) == 0 {
		return "the jose.rotate defaults: no deployed flow uses the keyset"
	}
	return "deployed nodes " + strings.Join(p.Sources, ", ")
}
