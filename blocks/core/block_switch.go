package core

import (
	"context"
	"fmt"

	"github.com/flowd/flowd/engine"
)

// ElsePort is where core.switch sends a message that matched no rule.
const ElsePort = "else"

func switchSpec() engine.Spec {
	return engine.Spec{
		Type:        "core.switch",
		Bounded:     true, // see engine.Spec.Bounded
		LazyMessage: true, // conditions go through Expr.Eval
		Title:       "Switch",
		Category:    Category,
		Description: "Routes the message by rules: it leaves by the port of the first rule, " +
			"in order, whose condition is true, or by \"else\" when none is.",
		Fields: []engine.Field{
			{Name: "rules", Label: "Rules", Kind: engine.KindRules, Required: true, Result: "bool", Ports: true,
				Help: "Ordered list of {name, expr}. Each name becomes an output port; each expr " +
					"is a condition such as msg.user?.role == \"admin\" (?. tolerates a missing msg.user). A condition that fails (msg.age > 18 " +
					"with no msg.age) sends the message to \"error\"; write (msg.age ?? 0) > 18 for optional fields."},
		},
		Outputs: []string{ElsePort},
		DynamicOutputs: func(c *engine.Config) []string {
			rules := c.Exprs("rules")
			ports := make([]string, 0, len(rules))
			for _, r := range rules {
				ports = append(ports, r.Name)
			}
			return ports
		},
	}
}

type rule struct {
	port string
	cond *engine.Expr // compiled with Result "bool"
}

// switchBlock sends the message to the first matching rule only. The
// engine's Block returns one port per message, so a "send to every match"
// mode would need fan-out support from the engine: Process cannot return
// several ports.
type switchBlock struct {
	rules []rule
}

var _ engine.Block = (*switchBlock)(nil)

func newSwitchFromConfig(s *engine.Setup) (engine.Block, error) {
	named := s.Config.Exprs("rules")
	if len(named) == 0 {
		// The engine's Required check lets an empty list through.
		return nil, s.Errorf("rules", "required: add at least one rule")
	}
	var rules []rule
	for _, r := range named {
		if r.Name == ElsePort || r.Name == engine.ErrorPort {
			return nil, s.Errorf("rules", "rule name %q is reserved for the block's own port; pick another", r.Name)
		}
		rules = append(rules, rule{port: r.Name, cond: r.Expr})
	}
	return newSwitch(rules), nil
}

func newSwitch(rules []rule) *switchBlock { return &switchBlock{rules: rules} }

func (b *switchBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	for _, r := range b.rules {
		ok, err := r.cond.EvalBool(x, msg)
		if err != nil {
			return "", fmt.Errorf("rule %q: %w", r.port, err)
		}
		if ok {
			x.Grew(0) // the message is as it came: its known size holds
			return r.port, nil
		}
	}
	x.Grew(0)
	return ElsePort, nil
}
