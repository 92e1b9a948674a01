package enginetest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
)

// Runtime returns a runtime on reg with opts (opts.Registry is set to reg),
// closed when the test ends.
func Runtime(t testing.TB, reg *engine.Registry, opts engine.Options) *engine.Runtime {
	t.Helper()
	opts.Registry = reg
	rt, err := engine.New(opts)
	if err != nil {
		t.Fatalf("enginetest: engine.New: %v", err)
	}
	t.Cleanup(func() {
		if err := rt.Close(context.Background()); err != nil {
			t.Errorf("enginetest: closing the runtime: %v", err)
		}
	})
	return rt
}

// Deploy deploys f as version 1, failing the test if the engine refuses it.
func Deploy(t testing.TB, rt *engine.Runtime, f *engine.Flow) {
	t.Helper()
	if err := rt.Deploy(context.Background(), f, 1); err != nil {
		t.Fatalf("enginetest: deploy %q: %v", f.ID, err)
	}
}

// DeployError deploys f, which must be refused as invalid, and returns the
// first validation error (it names the node and field).
func DeployError(t testing.TB, rt *engine.Runtime, f *engine.Flow) *engine.ValidationError {
	t.Helper()
	err := rt.Deploy(context.Background(), f, 1)
	if !errors.Is(err, engine.ErrInvalidFlow) {
		t.Fatalf("enginetest: deploy %q: error = %v, want one wrapping engine.ErrInvalidFlow", f.ID, err)
	}
	ve := engine.FirstValidation(err)
	if ve == nil {
		t.Fatalf("enginetest: deploy %q: error %v holds no ValidationError", f.ID, err)
	}
	return ve
}

// Run deploys f on a fresh runtime over reg and runs msg through it from
// the flow's trigger (its only one, or its core.manual node), as the
// admin API's run does. The error is the run's failure, if it failed; the
// trace is returned either way when the run started.
func Run(t testing.TB, reg *engine.Registry, f *engine.Flow, msg engine.Msg) (*engine.Trace, error) {
	t.Helper()
	rt := Runtime(t, reg, engine.Options{})
	Deploy(t, rt, f)
	return rt.Run(context.Background(), f.ID, "", msg)
}

// Registry returns a new registry holding the block types of each
// register function (a block package's Register), failing the test if one
// refuses.
func Registry(t testing.TB, register ...func(*engine.Registry) error) *engine.Registry {
	t.Helper()
	reg := engine.NewRegistry()
	for _, r := range register {
		if err := r(reg); err != nil {
			t.Fatalf("enginetest: Register: %v", err)
		}
	}
	return reg
}

// Refused deploys f, which must be refused as invalid, and checks its
// first validation error against want: the same Node, Field, Line and
// Column (both 0 for a problem outside an expression), and a message
// containing want.Msg ("" takes any). It returns the error.
func Refused(t testing.TB, rt *engine.Runtime, f *engine.Flow, want engine.ValidationError) *engine.ValidationError {
	t.Helper()
	ve := DeployError(t, rt, f)
	if ve.Node != want.Node || ve.Field != want.Field || ve.Line != want.Line || ve.Column != want.Column ||
		!strings.Contains(ve.Msg, want.Msg) {
		t.Errorf("enginetest: deploy %q refused at node %q field %q line %d column %d: %q;\n"+
			"want node %q field %q line %d column %d, a message containing %q",
			f.ID, ve.Node, ve.Field, ve.Line, ve.Column, ve.Msg, want.Node, want.Field, want.Line, want.Column, want.Msg)
	}
	return ve
}
