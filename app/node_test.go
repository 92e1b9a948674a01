package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
	"github.com/flowd/flowd/store/storetest"
)

// startNode starts an App on st (one node) that follows variable writes,
// its runs in a store of its own.
func startNode(t *testing.T, st store.Store, id string) *app.App {
	t.Helper()
	return startApp(t, app.Config{Store: storetest.TwiceUpdates(st), Registry: registry(), NodeID: id}, true)
}

// startApp starts an App with cfg, its runs in a store of its own (with
// vars, it follows variable writes), and closes it when the test ends.
func startApp(t *testing.T, cfg app.Config, vars bool) *app.App {
	t.Helper()
	cfg.Runs = memstore.MustNew(t, memstore.Options{})
	a, err := app.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if vars {
		a.OnChange(a.VarsHook())
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return a
}

// caughtUp waits until a has applied everything committed so far.
func caughtUp(t *testing.T, st store.Store, a *app.App) {
	t.Helper()
	rev, err := st.Rev(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for a.Applied() < rev {
		if time.Now().After(deadline) {
			t.Fatalf("node %s did not apply revision %d (at %d)", a.NodeID(), rev, a.Applied())
		}
		time.Sleep(time.Millisecond)
	}
}

func seen(t *testing.T, tr *engine.Trace) any {
	t.Helper()
	return tr.Steps[1].Msg.(map[string]any)["seen"]
}

// TestNodesFollowTheStore: two Apps on two handles of one store. A deploy,
// a delete and flow variables written on one are what the other runs.
func TestNodesFollowTheStore(t *testing.T) {
	mem := memstore.MustNew(t, memstore.Options{})
	na, nb := mem, mem.Node()
	a, b := startNode(t, na, "a"), startNode(t, nb, "b")
	ctx := t.Context()

	if _, err := a.Import(ctx, []byte(doc("f", "")), true); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, mem, b)
	if v, ok := b.Deployed("f"); !ok || v != 1 {
		t.Fatalf("b runs f version %d (%v), want 1", v, ok)
	}
	steps := []struct {
		name string
		on   *app.App
		want float64 // the variable the run sees before adding one
	}{
		{"first run, on a", a, 0},
		{"b sees a's write", b, 1},
		{"a sees b's write", a, 2},
		{"and b again", b, 3},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			caughtUp(t, mem, st.on)
			tr, err := st.on.Run(ctx, "f", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := seen(t, tr); got != st.want {
				t.Errorf("seen = %v, want %v", got, st.want)
			}
		})
	}
	t.Run("a delete on b stops the flow on a", func(t *testing.T) {
		if err := b.DeleteFlow(ctx, "f", store.AnyRev); err != nil {
			t.Fatal(err)
		}
		caughtUp(t, mem, a)
		if _, ok := a.Deployed("f"); ok {
			t.Error("a still runs the deleted flow")
		}
		nodes, err := mem.Nodes(ctx)
		if err != nil || len(nodes) != 2 || nodes[0].ID != "a" || nodes[1].ID != "b" {
			t.Fatalf("Nodes = %+v, %v; want a and b", nodes, err)
		}
	})
}
