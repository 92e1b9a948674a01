package app_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
)

var errSameName = errors.New("name taken")

// sameName is a CheckCluster that refuses a flow named like a deployed one.
func sameName(f *engine.Flow, deployed []*engine.Flow) error {
	for _, o := range deployed {
		if o.Name == f.Name {
			return fmt.Errorf("%w: flow %q is named %q too", errSameName, o.ID, f.Name)
		}
	}
	return nil
}

func named(id, name string) []byte {
	return []byte(strings.Replace(doc(id, ""), `"name":"`+id+`"`, `"name":"`+name+`"`, 1))
}

// TestCheckClusterSeesTheStore: the check runs against what the store
// says is deployed, also after a flow was deleted and created again under
// its id on another node (its version numbers restart).
func TestCheckClusterSeesTheStore(t *testing.T) {
	ctx := t.Context()
	mem := memstore.MustNew(t, memstore.Options{})
	start := func(st store.Store, id string) *app.App {
		a, err := app.New(app.Config{Store: st, Runs: memstore.MustNew(t, memstore.Options{}), Registry: registry(), NodeID: id,
			CheckCluster: sameName})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Close(context.Background()) })
		return a
	}
	a, b := start(mem, "a"), start(mem.Node(), "b")
	steps := []struct {
		name    string
		on      *app.App
		do      func(*app.App) error
		refused bool
	}{
		{"x named shared", a, func(n *app.App) error { _, err := n.Import(ctx, named("x", "shared"), true); return err }, false},
		{"y named shared is refused", a, func(n *app.App) error { _, err := n.Import(ctx, named("y", "shared"), true); return err }, true},
		{"the same on the other node", b, func(n *app.App) error { _, err := n.Import(ctx, named("y", "shared"), true); return err }, true},
		{"x deleted on b", b, func(n *app.App) error { return n.DeleteFlow(ctx, "x", store.AnyRev) }, false},
		{"x created again on b under another name", b, func(n *app.App) error { _, err := n.Import(ctx, named("x", "other"), true); return err }, false},
		{"now y named shared deploys on a", a, func(n *app.App) error { _, err := n.Import(ctx, named("y", "shared"), true); return err }, false},
		{"and z named other is refused on a", a, func(n *app.App) error { _, err := n.Import(ctx, named("z", "other"), true); return err }, true},
	}
	for _, st := range steps {
		err := st.do(st.on)
		if st.refused != errors.Is(err, errSameName) || (!st.refused && err != nil) {
			t.Fatalf("%s: %v (refused wanted: %v)", st.name, err, st.refused)
		}
	}
}
