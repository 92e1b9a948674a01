package core

import (
	"context"
	"slices"

	"github.com/flowd/flowd/engine"
)

// CheckCallTarget is the id of the lint check that a core.call names a
// sub-flow that exists among the flows linted and answers on the ports it
// wires.
const CheckCallTarget = "core.call_target"

// registerLint adds this package's lint checks to reg.
func registerLint(reg *engine.Registry) error {
	return reg.RegisterCheck(engine.Check{ID: CheckCallTarget,
		Summary: "core.call names a missing sub-flow, or ports it does not answer on", Run: lintCallTarget})
}

func lintCallTarget(_ context.Context, s *engine.LintSet) []engine.Warning {
	var out []engine.Warning
	for _, c := range s.Nodes("core.call") {
		if c.Config == nil {
			continue
		}
		target := c.Config.String("flow")
		var sub *engine.Flow
		for _, f := range s.Flows() {
			if f.ID == target {
				sub = f
			}
		}
		if sub == nil {
			out = append(out, c.Warn(CheckCallTarget, "flow",
				"flow %q is not deployed (nor among the files linted): every call fails until it is", target))
			continue
		}
		inputs := 0
		var ports []string
		for _, n := range s.Nodes() {
			if n.Flow != sub || n.Config == nil {
				continue
			}
			switch n.Node.Type {
			case "core.input":
				inputs++
			case "core.output":
				if p := n.Config.String("port"); !slices.Contains(ports, p) {
					ports = append(ports, p)
				}
			}
		}
		if inputs != 1 {
			out = append(out, c.Warn(CheckCallTarget, "flow",
				"flow %q has %d enabled core.input nodes; a sub-flow needs exactly one", target, inputs))
			continue
		}
		declared := c.Config.Strings("outputs")
		for _, p := range ports {
			if !slices.Contains(declared, p) {
				out = append(out, c.Warn(CheckCallTarget, "outputs",
					"sub-flow %q can answer on port %q, which this call does not list: such calls fail; add %q to outputs and wire it", target, p, p))
			}
		}
		for _, p := range declared {
			if !slices.Contains(ports, p) {
				out = append(out, c.Warn(CheckCallTarget, "outputs",
					"sub-flow %q has no core.output with port %q: remove it from outputs or add that output to the sub-flow", target, p))
			}
		}
	}
	return out
}
