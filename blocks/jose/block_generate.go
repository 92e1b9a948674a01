package jose

import (
	"context"
	"fmt"

	"github.com/flowd/flowd/engine"
)

func generateKeySpec() engine.Spec {
	return engine.Spec{
		Type:     "jose.generate_key",
		Title:    "Generate key",
		Category: Category,
		Description: "Adds one new key to an existing keyset and puts its public description " +
			"(kid, alg, use, state, dates; never key material) at msg.key. A \"next\" key is " +
			"published in the JWKS but does not sign until a rotation activates it; an \"active\" " +
			"key is only accepted for an algorithm that has none (use jose.rotate to replace one). " +
			"A missing keyset is an error: jose.rotate creates keysets.",
		Fields: []engine.Field{
			{Name: "keyset", Label: "Keyset", Kind: engine.KindString, Ref: engine.RefKeyset, Required: true,
				Help: "Name of the keyset, e.g. \"main\": letters, digits, '-', '_' and '.'."},
			{Name: "alg", Label: "Algorithm", Kind: engine.KindEnum, Required: true, Enum: Algorithms(),
				Help: "Algorithm of the new key. RS*/PS* make RSA keys, ES* EC keys, EdDSA Ed25519 " +
					"keys, HS* HMAC secrets (never published); RSA-OAEP-256, ECDH-ES+A256KW, A256KW " +
					"and dir make encryption keys."},
			{Name: "use", Label: "Use", Kind: engine.KindEnum, Enum: []string{string(UseSig), string(UseEnc)},
				Help: "Optional check of the key's use: sig or enc. Empty: the algorithm decides."},
			{Name: "state", Label: "State", Kind: engine.KindEnum, Default: string(StateNext),
				Enum: []string{string(StateNext), string(StateActive)},
				Help: "next: published, signs after the next rotation (the usual choice). active: " +
					"signs at once; only for an algorithm the keyset has no key for yet."},
		},
		Outputs: []string{portOut},
	}
}

type generateKeyBlock struct {
	ks     *Keysets
	keyset string
	alg    string
	use    Use
	state  State
}

var _ engine.Block = (*generateKeyBlock)(nil)

func newGenerateKeyFromConfig(s *engine.Setup, d *blockDeps) (engine.Block, error) {
	c := s.Config
	name := c.String("keyset")
	if err := checkKeysetField(s, "keyset", name); err != nil {
		return nil, err
	}
	alg := c.String("alg")
	use, err := AlgorithmUse(alg)
	if err != nil {
		return nil, s.Errorf("alg", "%v", err)
	}
	if u := Use(c.String("use")); u != "" && u != use {
		return nil, s.Errorf("use", "%s keys have use %q, not %q", alg, use, u)
	}
	return newGenerateKey(d.ks, name, alg, use, State(c.String("state"))), nil
}

func newGenerateKey(ks *Keysets, keyset, alg string, use Use, state State) *generateKeyBlock {
	return &generateKeyBlock{ks: ks, keyset: keyset, alg: alg, use: use, state: state}
}

func (b *generateKeyBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	ctx = actingNode(ctx, x)
	info, err := b.ks.Generate(ctx, b.keyset, b.alg, b.use, b.state)
	if err != nil {
		return "", fmt.Errorf("generate %s key in keyset %q: %w", b.alg, b.keyset, err)
	}
	msg["key"] = keyInfoMap(info)
	return portOut, nil
}
