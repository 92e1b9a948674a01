package app_test

import (
	"context"
	"errors"
	"testing"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
)

// TestLoadDeployed: an App that does not follow the store (the CLI's
// offline run) deploys one flow's stored deployed version on demand, and
// refuses a flow never deployed or unknown, writing nothing.
func TestLoadDeployed(t *testing.T) {
	st := memstore.MustNew(t, memstore.Options{})
	first, err := app.New(app.Config{Store: st, Registry: registry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		id     string
		deploy bool
	}{{"a", true}, {"b", false}} {
		if _, err := first.Import(t.Context(), []byte(doc(d.id, "")), d.deploy); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	a, err := app.New(app.Config{Store: st, Registry: registry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	if _, ok := a.Deployed("a"); ok {
		t.Fatal("a runs before LoadDeployed")
	}
	for _, tc := range []struct {
		id      string
		want    int
		wantErr error
	}{
		{"a", 1, nil},
		{"b", 0, engine.ErrNotDeployed},
		{"ghost", 0, store.ErrNotFound},
	} {
		t.Run(tc.id, func(t *testing.T) {
			n, err := a.LoadDeployed(t.Context(), tc.id)
			if n != tc.want || !errors.Is(err, tc.wantErr) {
				t.Fatalf("LoadDeployed = %d, %v; want %d, %v", n, err, tc.want, tc.wantErr)
			}
			v, ok := a.Deployed(tc.id)
			if ok != (tc.want > 0) || v != tc.want {
				t.Errorf("Deployed = %d %v", v, ok)
			}
			if tc.want == 0 {
				return
			}
			if _, err := a.Run(t.Context(), tc.id, "", nil); err != nil {
				t.Errorf("run: %v", err)
			}
			if trs := a.Traces(tc.id); len(trs) != 1 {
				t.Errorf("traces = %d, want 1", len(trs))
			}
		})
	}
	rec, err := st.GetFlow(t.Context(), "b")
	if err != nil || rec.Deployed != 0 {
		t.Errorf("b after LoadDeployed: %+v %v, want still undeployed", rec, err)
	}
}
