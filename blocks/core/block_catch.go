package core

import (
	"context"

	"github.com/flowd/flowd/engine"
)

func catchSpec() engine.Spec {
	return engine.Spec{
		Type:     "core.catch",
		Title:    "Catch",
		Category: Category,
		Description: "Starts a run when a run fails (a block error no \"error\" wire handled, a limit, a " +
			"deadline). msg.error holds flow, version, node, message, run_id and trigger. With scope flow " +
			"it catches failures of its own flow and also gets the failing step's message as msg.message; " +
			"with scope global it catches failures of every other flow (an error flow), without their " +
			"messages. A catch run that fails is traced but caught by nobody.",
		Trigger: true,
		Fields: []engine.Field{
			{Name: "scope", Label: "Scope", Kind: engine.KindEnum, Enum: []string{engine.CatchFlow, engine.CatchGlobal},
				Default: engine.CatchFlow, Help: "flow: failed runs of this flow. global: failed runs of every other flow."},
		},
		Outputs: []string{"out"},
	}
}

// catch is a trigger the runtime fires itself when a run fails.
type catch struct{ scope string }

var (
	_ engine.Block   = catch{}
	_ engine.Trigger = catch{}
	_ engine.Catcher = catch{}
)

func newCatchFromConfig(s *engine.Setup) (engine.Block, error) {
	return newCatch(s.Config.String("scope")), nil
}

func newCatch(scope string) catch { return catch{scope: scope} }

func (c catch) CatchScope() string { return c.scope }

// Process is not called for triggers; the runtime sends the message on "out".
func (catch) Process(context.Context, *engine.Exec, engine.Msg) (string, error) { return "out", nil }

func (catch) Start(context.Context, *engine.TriggerContext) error { return nil }

func (catch) Stop(context.Context) error { return nil }
