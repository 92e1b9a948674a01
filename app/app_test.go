package app_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
	"github.com/flowd/flowd/store/storetest"
)

type trigger struct{ fail bool }

func (trigger) Process(context.Context, *engine.Exec, engine.Msg) (string, error) { return "out", nil }
func (t trigger) Start(context.Context, *engine.TriggerContext) error {
	if t.fail {
		return errors.New("route taken")
	}
	return nil
}
func (trigger) Stop(context.Context) error { return nil }

func registry() *engine.Registry {
	reg := engine.NewRegistry()
	reg.MustRegister(engine.Spec{Type: "test.manual", Trigger: true, Outputs: []string{"out"},
		Fields: []engine.Field{{Name: "fail_start", Kind: engine.KindBool}}},
		func(s *engine.Setup) (engine.Block, error) { return trigger{fail: s.Config.Bool("fail_start")}, nil })
	reg.MustRegister(engine.Spec{Type: "test.var", Outputs: []string{"out"},
		Fields: []engine.Field{{Name: "name", Kind: engine.KindString, Required: true}}},
		func(s *engine.Setup) (engine.Block, error) {
			name := s.Config.String("name")
			return engine.BlockFunc(func(ctx context.Context, x *engine.Exec, m engine.Msg) (string, error) {
				n, _ := x.Vars().Get(name)
				f, _ := n.(float64)
				m["seen"] = f
				return "out", x.Vars().Set(ctx, name, f+1)
			}), nil
		})
	return reg
}

func doc(id, extra string) string {
	return `{"schema":"flowd/v1","id":"` + id + `","name":"` + id + `","nodes":[
	 {"id":"t","type":"test.manual","x":0,"y":0` + extra + `},
	 {"id":"v","type":"test.var","config":{"name":"count"},"x":1,"y":1}],
	 "wires":[{"from":"t","port":"out","to":"v"}]}`
}

func open(t *testing.T, path string, examples fstest.MapFS) (*app.App, func()) {
	t.Helper()
	return openLogged(t, path, examples, nil)
}

// openLogged is open with a logger (nil: discard).
func openLogged(t *testing.T, path string, examples fstest.MapFS, log *slog.Logger) (*app.App, func()) {
	t.Helper()
	st := storetest.BoltAt(t, path)
	// Every update function runs twice, as on an optimistic backend.
	cfg := app.Config{Store: storetest.TwiceUpdates(st), Registry: registry(), Logger: log}
	if examples != nil {
		cfg.Examples = examples
	}
	a, err := app.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return a, func() {
		if err := a.Close(context.Background()); err != nil {
			t.Error(err)
		}
		st.Close()
	}
}

// TestRestart: examples install once, deployed flows come back after a
// restart with their variables and traces, undeployed ones stay down.
func TestRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flowd.db")
	examples := fstest.MapFS{
		"a.json":      {Data: []byte(doc("a", ""))},
		"broken.json": {Data: []byte(`{"schema":"flowd/v1","id":"broken"`)},
	}
	a, closeA := open(t, path, examples)
	list, err := a.ListFlows(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != "a" || list[0].Status != app.StatusDeployed {
		t.Fatalf("after first start: %+v", list)
	}
	for i := 0; i < 3; i++ {
		if _, err := a.Run(t.Context(), "a", "", nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Import(t.Context(), []byte(doc("b", "")), false); err != nil {
		t.Fatal(err)
	}
	closeA()

	// Delete the example: a restart must not reinstall it.
	a, closeA = open(t, path, examples)
	if v, ok := a.Deployed("a"); !ok || v != 1 {
		t.Fatalf("a not redeployed: %v %v", v, ok)
	}
	if _, ok := a.Deployed("b"); ok {
		t.Fatal("b was never deployed but runs")
	}
	tr, err := a.Run(t.Context(), "a", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.Steps[1].Msg.(map[string]any)["seen"]; got != float64(3) {
		t.Fatalf("flow variable after restart = %v, want 3", got)
	}
	runs, err := a.Runs(t.Context(), "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 4 {
		t.Fatalf("runs after restart = %d, want 4 (3 persisted + 1)", len(runs))
	}
	if err := a.DeleteFlow(t.Context(), "a", store.AnyRev); err != nil {
		t.Fatal(err)
	}
	closeA()
	a, closeA = open(t, path, examples)
	defer closeA()
	if _, err := a.Info(t.Context(), "a"); !errors.Is(err, app.ErrNotFound) {
		t.Fatalf("deleted example came back: %v", err)
	}
}

// deployedA opens an App in the test's temp folder, closed when the test
// ends, with flow a imported and deployed.
func deployedA(t *testing.T) *app.App {
	t.Helper()
	a, closeA := open(t, filepath.Join(t.TempDir(), "flowd.db"), nil)
	t.Cleanup(closeA)
	if _, err := a.Import(t.Context(), []byte(doc("a", "")), true); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestFailedDeployKeepsOldVersion: a version the runtime refuses (trigger
// cannot start) leaves the previous version running and recorded.
func TestFailedDeployKeepsOldVersion(t *testing.T) {
	a := deployedA(t)
	if _, err := a.PutFlow(t.Context(), "a", []byte(doc("a", `,"config":{"fail_start":true}`)), store.AnyRev); err != nil {
		t.Fatal(err)
	}
	_, err := a.Deploy(t.Context(), "a")
	if err == nil || !strings.Contains(err.Error(), "route taken") {
		t.Fatalf("deploy error = %v", err)
	}
	info, _ := a.Info(t.Context(), "a")
	if info.Deployed != 1 || info.Status != app.StatusChanged {
		t.Fatalf("after failed deploy: deployed=%d status=%s", info.Deployed, info.Status)
	}
	if v, ok := a.Deployed("a"); !ok || v != 1 {
		t.Fatalf("runtime version %d %v, want 1", v, ok)
	}
	// An invalid draft is saved (work in progress) and shown as invalid,
	// but never deployed.
	if _, err := a.PutFlow(t.Context(), "a", []byte(strings.Replace(doc("a", ""), "test.var", "test.nope", 1)), store.AnyRev); err != nil {
		t.Fatal(err)
	}
	info, _ = a.Info(t.Context(), "a")
	if info.Status != app.StatusInvalid || !strings.Contains(info.Problem, "test.nope") {
		t.Fatalf("status %s problem %q", info.Status, info.Problem)
	}
	if _, err := a.Deploy(t.Context(), "a"); !errors.Is(err, engine.ErrInvalidFlow) {
		t.Fatalf("deploy of invalid draft: %v", err)
	}
}

func TestUndeploy(t *testing.T) {
	a := deployedA(t)
	if err := a.Undeploy(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Run(t.Context(), "a", "", nil); !errors.Is(err, engine.ErrNotDeployed) {
		t.Fatalf("run after undeploy: %v", err)
	}
	info, _ := a.Info(t.Context(), "a")
	if info.Status != app.StatusUndeployed {
		t.Fatalf("status %s", info.Status)
	}
}

// onlyShared is a store without run traces, as a cluster store is.
type onlyShared struct{ store.Store }

// TestRunsSeam: traces go to Config.Runs when it is set, not to the shared
// store; a shared store that keeps no runs needs it.
func TestRunsSeam(t *testing.T) {
	ctx := t.Context()
	shared := memstore.MustNew(t, memstore.Options{})
	if _, err := app.New(app.Config{Store: onlyShared{shared}, Registry: registry()}); err == nil {
		t.Fatal("New accepted a store without runs and no Runs")
	}
	local := memstore.MustNew(t, memstore.Options{})
	a, err := app.New(app.Config{Store: onlyShared{shared}, Runs: local, Registry: registry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Import(ctx, []byte(doc("a", "")), true); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Run(ctx, "a", "", nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(context.Background()); err != nil { // flushes the trace writer
		t.Fatal(err)
	}
	if runs, err := local.ListRuns(ctx, "a", 0); err != nil || len(runs) != 1 {
		t.Errorf("runs in Config.Runs = %d, %v; want 1", len(runs), err)
	}
	if runs, err := shared.ListRuns(ctx, "a", 0); err != nil || len(runs) != 0 {
		t.Errorf("runs in the shared store = %d, %v; want 0", len(runs), err)
	}
	// Deleting the flow reaches the separate run store too.
	b, err := app.New(app.Config{Store: onlyShared{shared}, Runs: local, Registry: registry()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	if err := b.DeleteFlow(ctx, "a", store.AnyRev); err != nil {
		t.Fatal(err)
	}
	if runs, err := local.ListRuns(ctx, "a", 0); err != nil || len(runs) != 0 {
		t.Errorf("runs of a deleted flow = %d, %v; want 0", len(runs), err)
	}
}
