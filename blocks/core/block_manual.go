package core

import (
	"context"

	"github.com/flowd/flowd/engine"
)

func manualSpec() engine.Spec {
	return engine.Spec{
		Type:     "core.manual",
		Title:    "Manual",
		Category: Category,
		Description: "Starts a run only when someone runs the flow by hand: the editor's " +
			"Run button, the admin API's run action, or Runtime.Run from Go. " +
			"It has no schedule and listens on nothing.",
		Trigger: true,
		Outputs: []string{"out"},
	}
}

// manual is a trigger that never fires on its own: the runtime starts its
// runs directly (Runtime.Run), so Start and Stop have nothing to do.
type manual struct{}

var (
	_ engine.Block   = manual{}
	_ engine.Trigger = manual{}
)

func newManualFromConfig(*engine.Setup) (engine.Block, error) { return newManual(), nil }

func newManual() manual { return manual{} }

// Process is not called for triggers; the runtime sends the message on "out".
func (manual) Process(context.Context, *engine.Exec, engine.Msg) (string, error) {
	return "out", nil
}

func (manual) Start(context.Context, *engine.TriggerContext) error { return nil }

func (manual) Stop(context.Context) error { return nil }
