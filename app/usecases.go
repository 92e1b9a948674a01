package app

import (
	"context"
	"fmt"

	"github.com/flowd/flowd/engine"
)

// The read-only views of this node's runtime and the one local deploy the
// CLI needs, so callers go through App instead of holding the runtime or
// the store (and bypassing the invariants App keeps: deploys go through
// the desired state, the store is written only here).

// Deployed returns the version of flow id this node runs, if any.
func (a *App) Deployed(id string) (version int, ok bool) { return a.rt.Deployed(id) }

// DeployedFlow returns a copy of the document of flow id this node runs,
// with its version.
func (a *App) DeployedFlow(id string) (*engine.Flow, int, bool) { return a.rt.DeployedFlow(id) }

// Traces returns this node's recent traces of flow id in memory, newest
// first (Runs adds the persisted ones).
func (a *App) Traces(id string) []*engine.Trace { return a.rt.Traces(id) }

// Lint runs the registry's lint checks on flows as they would be
// deployed: the given documents in place of the deployed versions of the
// same ids, next to every other flow this node runs. Warnings are for the
// given flows only.
func (a *App) Lint(ctx context.Context, flows ...*engine.Flow) []engine.Warning {
	return a.rt.LintFlows(ctx, flows...)
}

// CheckFlow checks a decoded flow exactly as a deploy would (Validate,
// for a document already decoded), without storing it.
func (a *App) CheckFlow(ctx context.Context, f *engine.Flow) error { return a.validate(ctx, f) }

// LoadDeployed builds and starts, in this process only, the version the
// store records as deployed for flow id, and returns it. Nothing is
// written: the CLI's offline `flowd run` uses it to run one flow without
// following the store (Start does that for every flow). A flow never
// deployed is an error wrapping engine.ErrNotDeployed.
func (a *App) LoadDeployed(ctx context.Context, id string) (int, error) {
	rec, err := a.st.GetFlow(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("flow %q: %w", id, err)
	}
	if rec.Deployed == 0 {
		return 0, fmt.Errorf("flow %q: %w", id, engine.ErrNotDeployed)
	}
	v, err := a.Version(ctx, id, rec.Deployed)
	if err != nil {
		return 0, err
	}
	f, err := engine.DecodeFlow(v.Doc)
	if err != nil {
		return 0, fmt.Errorf("flow %q version %d: %w", id, v.N, err)
	}
	if err := a.rt.Deploy(ctx, f, v.N); err != nil {
		return 0, err
	}
	return v.N, nil
}
