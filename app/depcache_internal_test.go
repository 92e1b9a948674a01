package app

import (
	"context"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
)

// forgetOnRead is a store whose GetVersion of one flow first runs hook:
// the feed delivering a delete while deployedFlows reads the store.
type forgetOnRead struct {
	store.Store
	flow string
	hook func()
}

func (s *forgetOnRead) GetVersion(ctx context.Context, id string, n int) (store.Version, error) {
	if id == s.flow && s.hook != nil {
		s.hook()
	}
	return s.Store.GetVersion(ctx, id, n)
}

// TestDeployedFlowsDoesNotRestoreForgotten: a delete that lands while a
// cluster check reads the deployed flows drops the deleted flow's cached
// versions for good; the pass's own copy of the cache, taken before the
// delete, does not put them back (x created again restarts at version 1,
// which would then be checked against the deleted x's document).
func TestDeployedFlowsDoesNotRestoreForgotten(t *testing.T) {
	ctx := t.Context()
	mem := memstore.MustNew(t, memstore.Options{})
	for _, id := range []string{"x", "y"} {
		doc := []byte(`{"schema":"flowd/v1","id":"` + id + `","name":"` + id + `","nodes":[],"wires":[]}`)
		if _, err := mem.PutFlow(ctx, id, doc, store.AnyRev); err != nil {
			t.Fatal(err)
		}
		if _, err := mem.AddVersion(ctx, id, doc, "test"); err != nil {
			t.Fatal(err)
		}
	}
	st := &forgetOnRead{Store: mem, flow: "y"}
	a, err := New(Config{Store: st, Runs: mem, Registry: engine.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	stale := &engine.Flow{ID: "x", Name: "deleted x"}
	a.deployed = map[versionKey]*engine.Flow{{"x", 1}: stale}
	st.hook = func() { a.forgetDeployed("x") }

	ds := store.DesiredState{Flows: []store.Deployment{{Flow: "x", Version: 1}, {Flow: "y", Version: 1}}}
	if _, _, err := a.deployedFlows(ctx, &engine.Flow{ID: "z"}, ds, true); err != nil {
		t.Fatal(err)
	}
	a.depMu.Lock()
	got := a.deployed[versionKey{"x", 1}]
	a.depMu.Unlock()
	if got == stale {
		t.Fatal("the deleted flow's cached version x/1 is back in the cache after forgetDeployed")
	}
}
