package jose

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/flowd/flowd/engine"
)

// Defaults of jose.rotate. Their sum is the smallest safe retire_after: a
// token signed just before a rotation lives max_token_ttl, and a verifier
// may hold the JWKS it fetched just before that for jwks_max_age more.
const (
	defaultRotateRetireAfter = 48 * time.Hour
	defaultMaxTokenTTL       = time.Hour
	defaultJWKSMaxAge        = 15 * time.Minute
)

func rotateSpec() engine.Spec {
	return engine.Spec{
		Type:     "jose.rotate",
		Title:    "Rotate keys",
		Category: Category,
		Description: "Rolls a keyset's keys over in one store transaction: the next key starts " +
			"signing, the active key is retired (still published, so tokens it signed keep " +
			"verifying) until retire_after has passed, a fresh next key is made, and retired keys " +
			"past their deadline are deleted. A keyset that does not exist yet is created with an " +
			"active and a next key per algorithm instead (no rotation on that first run). " +
			"msg.rotation lists the kids: activated, retired, created, deleted, and keyset_created; " +
			"already_done is true when a schedule run's tick (msg.schedule.scheduled_for) was rotated for already: " +
			"a tick fired twice rotates once. " +
			"With mode ensure it only creates a missing keyset (or algorithm) and never rotates: " +
			"wire it to a start-up trigger so a fresh server has keys before its first rotation.",
		Fields: []engine.Field{
			{Name: "mode", Label: "Mode", Kind: engine.KindEnum, Enum: []string{"rotate", "ensure"}, Default: "rotate",
				Help: "rotate: roll the keys over (creating the keyset first if missing). ensure: only " +
					"create the keyset or algorithm if missing; an existing keyset is left alone."},
			{Name: "keyset", Label: "Keyset", Kind: engine.KindString, Ref: engine.RefKeyset, Required: true,
				Help: "Name of the keyset to rotate, e.g. \"main\"."},
			{Name: "alg", Label: "Algorithm", Kind: engine.KindEnum, Enum: Algorithms(),
				Help: "Rotate only this algorithm's keys (created if the keyset has none). Empty: " +
					"every algorithm the keyset has keys for."},
			{Name: "algs", Label: "Algorithms of a new keyset", Kind: engine.KindStrings,
				Default: []string{"RS256", "ES256"},
				Help: "When the keyset does not exist yet and no algorithm is set above, it is " +
					"created with keys for these algorithms."},
			{Name: "retire_after", Label: "Keep retired keys for", Kind: engine.KindDuration,
				Default: defaultRotateRetireAfter.String(), Min: "1m",
				Help: "How long a retired key stays published for verification. It must be at " +
					"least max_token_ttl + jwks_max_age, or tokens signed just before a rotation " +
					"fail while still valid."},
			{Name: "max_token_ttl", Label: "Longest token lifetime", Kind: engine.KindDuration,
				Default: defaultMaxTokenTTL.String(), Min: "1s",
				Help: "The longest ttl any flow signs tokens with from this keyset (jose.sign ttl)."},
			{Name: "jwks_max_age", Label: "JWKS cache lifetime", Kind: engine.KindDuration,
				Default: defaultJWKSMaxAge.String(),
				Help: "How long verifiers may cache the keyset's JWKS (the jose.jwks max_age, or " +
					"the longest cache your verifiers use)."},
		},
		Outputs: []string{portOut},
	}
}

type rotateBlock struct {
	ks          *Keysets
	keyset      string
	alg         string   // "" = every alg
	newAlgs     []string // algs of a keyset this block creates
	retireAfter time.Duration
	ensureOnly  bool
}

var _ engine.Block = (*rotateBlock)(nil)

func newRotateFromConfig(s *engine.Setup, d *blockDeps) (engine.Block, error) {
	c := s.Config
	name := c.String("keyset")
	if err := checkKeysetField(s, "keyset", name); err != nil {
		return nil, err
	}
	retire, ttl, maxAge := c.Duration("retire_after"), c.Duration("max_token_ttl"), c.Duration("jwks_max_age")
	if retire < ttl+maxAge {
		return nil, s.Errorf("retire_after",
			"%s is too short: a token signed just before a rotation is valid for max_token_ttl (%s) "+
				"and a verifier may serve the old JWKS from its cache for jwks_max_age (%s), so the "+
				"retired key must stay published for at least %s + %s = %s",
			retire, ttl, maxAge, ttl, maxAge, ttl+maxAge)
	}
	alg := c.String("alg")
	newAlgs := c.Strings("algs")
	if alg != "" {
		newAlgs = []string{alg}
	} else if len(newAlgs) == 0 {
		return nil, s.Errorf("algs", "required when no algorithm is set: the algorithms of a new keyset")
	}
	for _, a := range newAlgs {
		if _, err := lookupKeyAlg(a); err != nil {
			return nil, s.Errorf("algs", "%v (known: %v)", err, Algorithms())
		}
	}
	b := newRotate(d.ks, name, alg, newAlgs, retire)
	b.ensureOnly = c.String("mode") == "ensure"
	return b, nil
}

func newRotate(ks *Keysets, keyset, alg string, newAlgs []string, retireAfter time.Duration) *rotateBlock {
	return &rotateBlock{ks: ks, keyset: keyset, alg: alg, newAlgs: slices.Clone(newAlgs), retireAfter: retireAfter}
}

func (b *rotateBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	ctx = actingNode(ctx, x)
	rot, ensured, created, err := b.ensure(ctx)
	if err != nil {
		b.failed(x, "creating", err)
		return "", err
	}
	if !ensured && !b.ensureOnly {
		rot, err = b.ks.Rotate(ctx, b.keyset, RotateOptions{Alg: b.alg, RetireAfter: b.retireAfter, For: scheduledTick(msg)})
		if err != nil {
			b.failed(x, "rotating", err)
			return "", fmt.Errorf("rotate keyset %q: %w", b.keyset, err)
		}
	}
	msg["rotation"] = map[string]any{
		"activated":      nonNil(rot.Activated),
		"retired":        nonNil(rot.Retired),
		"created":        nonNil(rot.Created),
		"deleted":        nonNil(rot.Deleted),
		"evicted":        nonNil(rot.Evicted),
		"keyset_created": created,
		"already_done":   rot.AlreadyDone,
	}
	return portOut, nil
}

// failed logs a failed creation or rotation with the keyset's name, so
// an operator finds it by keyset whatever runs the block. The errors of
// this package name kids and algorithms, never key material.
func (b *rotateBlock) failed(x *engine.Exec, doing string, err error) {
	if x == nil || x.Logger == nil {
		return
	}
	x.Logger.Warn("jose.rotate: "+doing+" keys failed", "keyset", b.keyset, "run", x.RunID, "err", err)
}

// ensure creates the keyset, or the block's alg in it, when missing, and
// reports whether it did (ensured) and whether the keyset itself is new.
// Keys made here have signed nothing yet, so rotating them at once would
// only publish a third key: such a run stops after creating them.
func (b *rotateBlock) ensure(ctx context.Context) (rot Rotation, ensured, created bool, err error) {
	info, err := b.ks.Get(ctx, b.keyset)
	created = errors.Is(err, ErrNoKeyset)
	if err != nil && !created {
		return Rotation{}, false, false, fmt.Errorf("rotate keyset %q: %w", b.keyset, err)
	}
	if !created && (b.alg == "" || hasLiveAlg(info, b.alg)) {
		return Rotation{}, false, false, nil
	}
	if err := b.ks.Ensure(ctx, b.keyset, b.newAlgs...); err != nil {
		return Rotation{}, false, false, fmt.Errorf("create keys in keyset %q: %w", b.keyset, err)
	}
	after, err := b.ks.Get(ctx, b.keyset)
	if err != nil {
		return Rotation{}, false, false, fmt.Errorf("rotate keyset %q: %w", b.keyset, err)
	}
	for _, k := range after.Keys {
		if slices.ContainsFunc(info.Keys, func(o KeyInfo) bool { return o.Kid == k.Kid }) {
			continue
		}
		rot.Created = append(rot.Created, k.Kid)
		if k.State == StateActive {
			rot.Activated = append(rot.Activated, k.Kid)
		}
	}
	return rot, true, created, nil
}

// scheduledTick is the tick a schedule.cron run serves (its
// msg.schedule.scheduled_for), or zero for any other run, manual runs of a
// schedule included (a person asking rotates every time). With it a
// rotation is done once per tick, however often the tick is fired.
func scheduledTick(msg engine.Msg) time.Time {
	sch, ok := msg["schedule"].(map[string]any)
	if !ok || sch["manual"] == true {
		return time.Time{}
	}
	s, ok := sch["scheduled_for"].(string)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func hasLiveAlg(info KeysetInfo, alg string) bool {
	return slices.ContainsFunc(info.Keys, func(k KeyInfo) bool { return k.Alg == alg && !k.Revoked })
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
