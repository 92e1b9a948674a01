package jose

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

// TestRolloverPolicyFor reads a keyset's overlap and token lifetimes from
// deployed flow documents: only nodes on that keyset count, ensure-mode
// jose.rotate sets no overlap, left-out fields take their spec defaults,
// and a keyset nothing deploys gets jose.rotate's defaults.
func TestRolloverPolicyFor(t *testing.T) {
	reg := enginetest.Registry(t, Register)
	// oidc.id_token as blocks/oidc declares it, for its ttl default.
	reg.MustRegister(engine.Spec{Type: "oidc.id_token", Title: "ID token", Category: "test", Outputs: []string{"out"},
		Fields: []engine.Field{{Name: "keyset", Kind: engine.KindString, Default: "main"}, {Name: "ttl", Kind: engine.KindDuration, Default: "1h"}}},
		func(*engine.Setup) (engine.Block, error) { return nil, nil })
	decode := func(doc string) *engine.Flow {
		f, err := engine.DecodeFlow([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	rollover := decode(`{"schema":"flowd/v1","id":"r","name":"r","nodes":[
	  {"id":"ensure","type":"jose.rotate","config":{"keyset":"main","mode":"ensure","retire_after":"500h"},"x":0,"y":0},
	  {"id":"daily","type":"jose.rotate","config":{"keyset":"main","retire_after":"72h","max_token_ttl":"2h"},"x":0,"y":0},
	  {"id":"hourly","type":"jose.rotate","config":{"keyset":"main","retire_after":"3h"},"x":0,"y":0},
	  {"id":"other","type":"jose.rotate","config":{"keyset":"other","retire_after":"900h","jwks_max_age":"20h"},"x":0,"y":0}]}`)
	signers := decode(`{"schema":"flowd/v1","id":"s","name":"s","nodes":[
	  {"id":"sign","type":"jose.sign","config":{"keyset":"main","ttl":"5h"},"x":0,"y":0},
	  {"id":"idt","type":"oidc.id_token","config":{"keyset":"main","ttl":"6h"},"x":0,"y":0},
	  {"id":"idt2","type":"oidc.id_token","x":0,"y":0},
	  {"id":"jwks","type":"jose.jwks","config":{"keyset":"main","max_age":"40m"},"x":0,"y":0},
	  {"id":"jwks2","type":"jose.jwks","config":{"keyset":"other"},"x":0,"y":0}]}`)
	for _, tt := range []struct {
		name       string
		flows      []*engine.Flow
		keyset     string
		retire     time.Duration
		configured bool
		shortest   time.Duration
		ttl, age   time.Duration
		sources    []string
	}{
		{"rotation and signers", []*engine.Flow{rollover, signers}, "main", 72 * time.Hour, true, 3 * time.Hour,
			6 * time.Hour, 40 * time.Minute, []string{"r/daily", "r/hourly", "s/idt", "s/idt2", "s/jwks", "s/sign"}},
		{"rotation alone", []*engine.Flow{rollover}, "main", 72 * time.Hour, true, 3 * time.Hour,
			2 * time.Hour, 15 * time.Minute, []string{"r/daily", "r/hourly"}},
		{"signers alone", []*engine.Flow{signers}, "main", DefaultRetireAfter, false, 0,
			6 * time.Hour, 40 * time.Minute, []string{"s/idt", "s/idt2", "s/jwks", "s/sign"}},
		{"another keyset", []*engine.Flow{rollover, signers}, "other", 900 * time.Hour, true, 900 * time.Hour,
			time.Hour, 20 * time.Hour, []string{"r/other", "s/jwks2"}},
		{"nothing deployed", nil, "main", DefaultRetireAfter, false, 0, defaultMaxTokenTTL, defaultJWKSMaxAge, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := RolloverPolicyFor(reg, tt.flows, tt.keyset)
			if p.RetireAfter != tt.retire || p.Configured != tt.configured || p.ShortestRetire != tt.shortest ||
				p.TokenTTL != tt.ttl || p.JWKSMaxAge != tt.age || !slices.Equal(p.Sources, tt.sources) {
				t.Errorf("got %+v\nwant retire %s configured %v shortest %s ttl %s age %s sources %v",
					p, tt.retire, tt.configured, tt.shortest, tt.ttl, tt.age, tt.sources)
			}
			if p.MinRetireAfter() != tt.ttl+tt.age {
				t.Errorf("MinRetireAfter %s", p.MinRetireAfter())
			}
		})
	}

	t.Run("overlap check", func(t *testing.T) {
		p := RolloverPolicyFor(reg, []*engine.Flow{rollover, signers}, "main")
		now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		if msg := p.CheckOverlap(p.MinRetireAfter(), []string{"kid1"}, now); msg != "" {
			t.Errorf("the minimum refused: %s", msg)
		}
		msg := p.CheckOverlap(time.Second, []string{"kid1", "kid2"}, now)
		for _, want := range []string{"retire_after 1s", "the 6h40m keyset", "live up to 6h and", "kid1, kid2", "unknown_kid",
			"from 2026-12-01T10:00:01Z until 2026-12-01T16:00:00Z", "s/sign"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%q does not say %q", msg, want)
			}
		}
	})
}
