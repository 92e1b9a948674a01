package engine

import (
	"context"
	"time"
)

// Observer is the seam between the runtime (and the blocks) and whatever
// counts what they do: a Prometheus registry, a test's fake, nothing.
// Everything is resolved at deploy: the runtime asks once per flow version
// and once per node for the instruments it will use, so a run updates a
// counter it already holds and never looks up, formats or allocates a
// label.
//
//	deploy:  Observer.Runs(flow)                  -> RunObserver (per version)
//	         Observer.StepErrors(flow, node, type) -> Counter    (per node)
//	run:     RunObserver.Finished(ok, duration)    once per run
//	         Counter.Inc()                         per failed step
//
// Block packages report domain events the same way: a package defines the
// interface of its events (jose.Observer: validations by reason, JWKS
// answers) and a factory type-asserts Setup.Observer to it. The engine
// knows none of those interfaces, and the blocks know no metrics library.
//
// Implementations must be safe for concurrent use and must not block.
type Observer interface {
	// Runs returns the run instrument of one flow.
	Runs(flow string) RunObserver
	// StepErrors returns the counter of one node's failed steps (a block
	// error, a panic, a deadline inside the block).
	StepErrors(flow, node, blockType string) Counter
}

// RunObserver records finished runs of one flow.
type RunObserver interface {
	// Finished is called once per run, ok false when the run failed.
	Finished(ok bool, d time.Duration)
}

// Counter is one pre-resolved monotonic counter.
type Counter interface {
	Inc()
}

// NopObserver observes nothing; it is Setup.Observer when the runtime has
// no observer, so blocks never check for nil.
type NopObserver struct{}

func (NopObserver) Runs(string) RunObserver                   { return nopRun{} }
func (NopObserver) StepErrors(string, string, string) Counter { return NopCounter{} }

type nopRun struct{}

func (nopRun) Finished(bool, time.Duration) {}

// NopCounter counts nothing.
type NopCounter struct{}

func (NopCounter) Inc() {}

var _ Observer = NopObserver{}

type actorKey struct{}

// WithActor returns ctx naming who acts through the calls made with it:
// "admin-ui", "api-token", "flow <flow>/<node>". The audit log records it
// with the changes those calls make (keys, flows).
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom is the actor of ctx, "system" when none was named.
func ActorFrom(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "system"
}
