package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

type testClock struct{ name string }

// TestServices: one value per type, a second Provide of a type is refused,
// and a factory that misses its service fails the deploy with an error
// matching both ErrInvalidFlow and ErrNoService; a validation still builds.
func TestServices(t *testing.T) {
	svc := engine.NewServices()
	if err := engine.Provide(svc, &testClock{"a"}); err != nil {
		t.Fatal(err)
	}
	if err := engine.Provide(svc, &testClock{"b"}); err == nil || !strings.Contains(err.Error(), "already provided") {
		t.Errorf("second Provide: %v, want already provided", err)
	}
	if err := engine.Provide[*testClock](nil, &testClock{}); err == nil {
		t.Error("Provide on nil Services succeeded")
	}
	if c, ok := engine.Lookup[*testClock](svc); !ok || c.name != "a" {
		t.Errorf("Lookup = %v %v, want the first value", c, ok)
	}
	if _, ok := engine.Lookup[testClock](svc); ok {
		t.Error("Lookup of the value type found the pointer type's service")
	}
	if _, ok := engine.Lookup[*testClock](nil); ok {
		t.Error("Lookup on nil Services found something")
	}

	var built string // the clock the last factory call got
	reg := engine.NewRegistry()
	reg.MustRegister(engine.Spec{Type: "test.clock", Outputs: []string{"out"}}, func(s *engine.Setup) (engine.Block, error) {
		c, err := engine.ServiceOr(s, "provideClock", func() *testClock { return &testClock{"offline"} })
		if err != nil {
			return nil, err
		}
		built = c.name
		return engine.BlockFunc(func(context.Context, *engine.Exec, engine.Msg) (string, error) { return "out", nil }), nil
	})
	f := enginetest.Flow(t, "f", []enginetest.Node{{ID: "n", Type: "test.clock"}})
	for _, tc := range []struct {
		name          string
		svc           *engine.Services
		wantValidated string
		wantErr       error
	}{
		{"provided", svc, "a", nil},
		{"missing", nil, "offline", engine.ErrNoService},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := enginetest.Runtime(t, reg, engine.Options{Services: tc.svc})
			if err := rt.Validate(t.Context(), f); err != nil || built != tc.wantValidated {
				t.Errorf("validate: %v, built on %q, want %q", err, built, tc.wantValidated)
			}
			err := rt.Deploy(t.Context(), f, 1)
			if tc.wantErr == nil && err != nil {
				t.Errorf("deploy: %v", err)
			}
			if tc.wantErr != nil && (!errors.Is(err, tc.wantErr) || !errors.Is(err, engine.ErrInvalidFlow) ||
				!strings.Contains(err.Error(), "provideClock")) {
				t.Errorf("deploy: %v, want %v and ErrInvalidFlow, naming provideClock", err, tc.wantErr)
			}
		})
	}
}
