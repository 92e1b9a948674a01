package core

import (
	"context"
	"fmt"
	"regexp"
	"slices"

	"github.com/flowd/flowd/engine"
)

// Sub-flows: core.input is a sub-flow's entry, core.output ends it with a
// port, core.call runs one from another flow (engine/call.go has the
// semantics: late binding, one step budget and deadline across the call).

var outPortPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)

func inputSpec() engine.Spec {
	return engine.Spec{
		Type:     "core.input",
		Title:    "Sub-flow input",
		Category: Category,
		Description: "Makes this flow a sub-flow: core.call nodes of other flows start it here with a copy " +
			"of their message. A flow has at most one. A manual run starts here too, for trying it out.",
		Trigger: true,
		Outputs: []string{"out"},
	}
}

type input struct{}

var (
	_ engine.Trigger = input{}
	_ engine.Entry   = input{}
)

func newInputFromConfig(*engine.Setup) (engine.Block, error) { return input{}, nil }

func (input) SubflowEntry() {}

// Process is not called for triggers; the runtime sends the message on "out".
func (input) Process(context.Context, *engine.Exec, engine.Msg) (string, error) { return "out", nil }

func (input) Start(context.Context, *engine.TriggerContext) error { return nil }

func (input) Stop(context.Context) error { return nil }

func outputSpec() engine.Spec {
	return engine.Spec{
		Type:     "core.output",
		Title:    "Sub-flow output",
		Category: Category,
		Description: "Ends a sub-flow run: the calling core.call node sends this message out of its port " +
			"of the same name. A run reaching a second output fails.",
		Fields: []engine.Field{
			{Name: "port", Label: "Port", Kind: engine.KindString, Required: true,
				Help: "The caller's port this answer leaves by, e.g. \"ok\" or \"denied\"; the core.call " +
					"node lists it in its outputs."},
		},
		Bounded: true,
		// It hands the message back as it is (Exec.Return): a Lazy value
		// in it goes back unbuilt (engine/call.go).
		LazyMessage: true,
	}
}

type output struct{ port string }

var _ engine.Block = output{}

func newOutputFromConfig(s *engine.Setup) (engine.Block, error) {
	port := s.Config.String("port")
	if !outPortPattern.MatchString(port) || port == engine.ErrorPort {
		return nil, s.Errorf("port", "%q is not a port name (letters, digits, '_', '.', '-'; not \"error\")", port)
	}
	return output{port: port}, nil
}

func (o output) Process(_ context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	return "", x.Return(o.port, msg)
}

func callSpec() engine.Spec {
	return engine.Spec{
		Type:     "core.call",
		Title:    "Call sub-flow",
		Category: Category,
		Description: "Runs another flow (one with a core.input) with a copy of the message and continues " +
			"with the message it answers, out of the port its core.output names. The call runs the " +
			"sub-flow's deployed version at the time of the call, within this run's step limit and " +
			"deadline; a failure in the sub-flow leaves by \"error\". Called from a run an http.in " +
			"started, the sub-flow can answer that request (http.respond): a response is sent once, " +
			"whichever flow sends it.",
		Fields: []engine.Field{
			{Name: "flow", Label: "Sub-flow", Kind: engine.KindString, Required: true, Help: "The id of the flow to call."},
			{Name: "outputs", Label: "Outputs", Kind: engine.KindStrings, Required: true, Ports: true,
				Help: "The ports of the sub-flow's core.output nodes this call wires, e.g. [\"ok\", \"denied\"]."},
			{Name: "inputs", Label: "Inputs", Kind: engine.KindExprMap,
				Help: "Arguments: name -> expression on this message, e.g. {\"allow_public\": \"true\"}. " +
					"The sub-flow sees each as msg.<name>; they do not come back: after the call the message " +
					"has the member it had before (or none)."},
		},
		DynamicOutputs: func(c *engine.Config) []string { return c.Strings("outputs") },
		// Inputs go through Expr.Eval, and the copy for the sub-run keeps
		// a Lazy value unbuilt (engine/call.go: copyCallMsg).
		LazyMessage: true,
	}
}

type call struct {
	flow    string
	outputs []string
	inputs  []callInput
}

// callInput is one argument of a call: a top-level message member.
type callInput struct {
	name string
	expr *engine.Expr
}

var inputNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

var _ engine.Block = (*call)(nil)

func newCallFromConfig(s *engine.Setup) (engine.Block, error) {
	flow := s.Config.String("flow")
	if !engine.ValidID(flow) {
		return nil, s.Errorf("flow", "%q is not a flow id", flow)
	}
	if flow == s.FlowID {
		return nil, s.Errorf("flow", "a flow cannot call itself")
	}
	outs := s.Config.Strings("outputs")
	if len(outs) == 0 {
		return nil, s.Errorf("outputs", "list the sub-flow's output ports this call wires")
	}
	for _, p := range outs {
		if !outPortPattern.MatchString(p) || p == engine.ErrorPort {
			return nil, s.Errorf("outputs", "%q is not a port name (letters, digits, '_', '.', '-'; not \"error\")", p)
		}
	}
	var inputs []callInput
	for _, in := range s.Config.Exprs("inputs") {
		if !inputNamePattern.MatchString(in.Name) {
			return nil, s.Errorf("inputs."+in.Name, "%q is not an input name (a letter or '_', then letters, digits, '_')", in.Name)
		}
		inputs = append(inputs, callInput{name: in.Name, expr: in.Expr})
	}
	return &call{flow: flow, outputs: slices.Clone(outs), inputs: inputs}, nil
}

func (c *call) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	arg := msg
	// size bounds the message the sub-flow starts with, when this run
	// knows the bound of its own (MessageBound): the sub-run then need not
	// walk it, nor this run the message it answers.
	bound := x.MessageBound()
	size := bound
	if len(c.inputs) > 0 {
		// A shallow copy is enough: Exec.Call copies the message deeply.
		arg = make(engine.Msg, len(msg)+len(c.inputs))
		for k, v := range msg {
			arg[k] = v
		}
		for _, in := range c.inputs {
			v, err := in.expr.Eval(x, msg)
			if err != nil {
				return "", fmt.Errorf("inputs.%s: %w", in.name, err)
			}
			arg[in.name] = v
			if size >= 0 {
				// A member replaced counts in full (an overestimate).
				size += len(in.name) + 4 + engine.MessageSize(v)
			}
		}
	}
	port, out, outSize, err := x.CallSized(ctx, c.flow, arg, size)
	if err != nil {
		return "", err
	}
	for _, in := range c.inputs {
		// Arguments do not leak back: the caller's own member of that
		// name, if any, is what it finds after the call.
		if v, had := msg[in.name]; had {
			out[in.name] = v
			if outSize >= 0 {
				outSize += len(in.name) + 4 + engine.MessageSize(v)
			}
		} else {
			delete(out, in.name)
		}
	}
	if !slices.Contains(c.outputs, port) {
		return "", fmt.Errorf("sub-flow %q answered on port %q, which this call does not list in outputs %q", c.flow, port, c.outputs)
	}
	engine.ReplaceMsg(msg, out)
	if bound >= 0 && outSize >= 0 {
		// The message is now out: tell the engine its bound as growth
		// over the one it had (never negative: Grew only adds).
		x.Grew(max(outSize-bound, 0))
	}
	return port, nil
}
