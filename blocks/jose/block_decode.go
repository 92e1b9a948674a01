package jose

import (
	"context"

	"github.com/flowd/flowd/engine"
)

func decodeSpec() engine.Spec {
	return engine.Spec{
		Type:     "jose.decode",
		Title:    "Decode token (UNVERIFIED)",
		Category: Category,
		Description: "Shows a token's header and claims WITHOUT checking its signature or anything " +
			"else: for debugging and for routing before validation (e.g. picking a policy by iss), " +
			"never for access decisions. msg.decoded = {verified: false, kind: JWS or JWE, header, " +
			"claims (JWS only)}. A token that is not a compact JWS or JWE leaves by \"invalid\" " +
			"with msg.invalid {reason, detail}.",
		Fields: []engine.Field{
			{Name: "token", Label: "Token", Kind: engine.KindExpr, Help: tokenFieldHelp},
		},
		Outputs: []string{portOut, portInvalid},
	}
}

type decodeBlock struct {
	token *engine.Expr
}

var _ engine.Block = (*decodeBlock)(nil)

func newDecodeFromConfig(s *engine.Setup, _ *blockDeps) (engine.Block, error) {
	return newDecode(s.Config.Expr("token")), nil
}

func newDecode(token *engine.Expr) *decodeBlock { return &decodeBlock{token: token} }

func (b *decodeBlock) Process(_ context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	token, te, err := readToken(x, msg, b.token)
	if err != nil {
		return "", err
	}
	if te != nil {
		msg["invalid"] = map[string]any{"reason": string(te.Reason), "detail": te.Detail}
		return portInvalid, nil
	}
	d, err := Decode(token)
	if err != nil {
		return verdict(msg, err)
	}
	out := map[string]any{"verified": false, "kind": d.Kind, "header": d.Header}
	if d.Claims != nil {
		out["claims"] = d.Claims
	}
	delete(msg, "invalid")
	msg["decoded"] = out
	return portOut, nil
}
