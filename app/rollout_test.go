package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
	"github.com/flowd/flowd/store/storetest"
)

// failingRegistry is registry() on a node where test.manual cannot start
// (a node whose route is taken by something else, or a rolling upgrade).
func failingRegistry() *engine.Registry {
	reg := engine.NewRegistry()
	reg.MustRegister(engine.Spec{Type: "test.manual", Trigger: true, Outputs: []string{"out"},
		Fields: []engine.Field{{Name: "fail_start", Kind: engine.KindBool}}},
		func(s *engine.Setup) (engine.Block, error) { return trigger{fail: true}, nil })
	reg.MustRegister(engine.Spec{Type: "test.var", Outputs: []string{"out"},
		Fields: []engine.Field{{Name: "name", Kind: engine.KindString, Required: true}}},
		func(s *engine.Setup) (engine.Block, error) {
			return engine.BlockFunc(func(context.Context, *engine.Exec, engine.Msg) (string, error) { return "out", nil }), nil
		})
	return reg
}

func startNodeReg(t *testing.T, st store.Store, id string, reg *engine.Registry) *app.App {
	t.Helper()
	return startApp(t, app.Config{Store: st, Registry: reg, NodeID: id}, false)
}

// states is a rollout's nodes as "id=state".
func states(r app.Rollout) []string {
	var out []string
	for _, n := range r.Nodes {
		out = append(out, n.Node+"="+n.State)
	}
	return out
}

// TestDeployWait: a deploy answers each live node's state: applied,
// failed with the reason the node gave, or behind when the wait ends.
func TestDeployWait(t *testing.T) {
	t.Run("one node on bbolt", func(t *testing.T) {
		st := storetest.TempBolt(t)
		a := startNodeReg(t, st, "solo", registry())
		if _, err := a.PutFlow(t.Context(), "f", []byte(doc("f", "")), store.MustCreate); err != nil {
			t.Fatal(err)
		}
		r, err := a.DeployWait(t.Context(), "f", 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r.Version != 1 || r.Generation == 0 || strings.Join(states(r), ",") != "solo=applied" || r.Applied != 1 || !r.Complete {
			t.Errorf("rollout = %+v, want version 1 applied on solo", r)
		}
		if r.Nodes[0].Generation < r.Generation {
			t.Errorf("solo reports generation %d, below the deploy's %d", r.Nodes[0].Generation, r.Generation)
		}
	})

	t.Run("three nodes, one cannot run it, one never answers", func(t *testing.T) {
		mem := memstore.MustNew(t, memstore.Options{})
		a := startNodeReg(t, mem, "a", registry())
		startNodeReg(t, mem.Node(), "b", registry())
		startNodeReg(t, mem.Node(), "c", failingRegistry())
		// A registered node whose reconcile loop never runs: a stuck node.
		stuck := mem.Node()
		if err := stuck.Register(t.Context(), store.NodeInfo{ID: "d"}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.PutFlow(t.Context(), "f", []byte(doc("f", "")), store.MustCreate); err != nil {
			t.Fatal(err)
		}
		r, err := a.DeployWait(t.Context(), "f", 200*time.Millisecond)
		if err != nil {
			t.Fatalf("deploy on a (which runs it): %v", err)
		}
		if got, want := strings.Join(states(r), ","), "a=applied,b=applied,c=failed,d=behind"; got != want {
			t.Errorf("states %s, want %s", got, want)
		}
		if r.Applied != 2 || r.Complete {
			t.Errorf("applied %d complete %v, want 2 and false", r.Applied, r.Complete)
		}
		if c := r.Nodes[2]; !strings.Contains(c.Error, "route taken") || !strings.Contains(c.Error, "version 1") {
			t.Errorf("c's error %q, want its start error for version 1", c.Error)
		}
		if d := r.Nodes[3]; d.Generation != 0 || d.Error != "" {
			t.Errorf("d = %+v, want generation 0 and no error", d)
		}
		// The stuck node leaves: the next deploy is complete but for c.
		if err := stuck.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := a.PutFlow(t.Context(), "g", []byte(doc("g", "")), store.MustCreate); err != nil {
			t.Fatal(err)
		}
		r, err = a.DeployWait(t.Context(), "g", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(states(r), ","), "a=applied,b=applied,c=failed"; got != want {
			t.Errorf("second deploy: states %s, want %s", got, want)
		}
	})

	t.Run("a registry that cannot be read does not fail a committed deploy", func(t *testing.T) {
		mem := memstore.MustNew(t, memstore.Options{})
		a := startNodeReg(t, noRegistry{mem}, "a", registry())
		if _, err := a.PutFlow(t.Context(), "f", []byte(doc("f", "")), store.MustCreate); err != nil {
			t.Fatal(err)
		}
		r, err := a.DeployWait(t.Context(), "f", time.Second)
		if err != nil {
			t.Fatalf("deploy: %v", err)
		}
		if got := strings.Join(states(r), ","); got != "a=applied" || r.Complete || !strings.Contains(r.Note, "node registry cannot be read") {
			t.Errorf("rollout %+v, want a applied, not complete, with a note", r)
		}
		if rec, err := mem.GetFlow(t.Context(), "f"); err != nil || rec.Deployed != 1 {
			t.Errorf("stored deployed %d (%v), want 1", rec.Deployed, err)
		}
	})

	t.Run("no wait answers at once", func(t *testing.T) {
		mem := memstore.MustNew(t, memstore.Options{})
		a := startNodeReg(t, mem, "a", registry())
		stuck := mem.Node()
		if err := stuck.Register(t.Context(), store.NodeInfo{ID: "z"}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.PutFlow(t.Context(), "f", []byte(doc("f", "")), store.MustCreate); err != nil {
			t.Fatal(err)
		}
		r, err := a.DeployWait(t.Context(), "f", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(states(r), ","), "a=applied,z=behind"; got != want {
			t.Errorf("states %s, want %s", got, want)
		}
	})
}

// noRegistry is a store whose node registry cannot be listed.
type noRegistry struct{ store.Store }

func (noRegistry) Nodes(context.Context) ([]store.NodeInfo, error) {
	return nil, fmt.Errorf("etcd: %w", store.ErrUnavailable)
}
