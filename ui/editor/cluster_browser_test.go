package editor_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
	"github.com/flowd/flowd/ui/uitest"
)

// lateHandler lets a test server exist (its URL published as a node's
// address) before the flowd it serves.
type lateHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := l.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "starting", http.StatusServiceUnavailable)
}

// TestBrowserClusterRuns: the editor on node a lists the runs node b made
// (each tagged with its node), and says that node c could not be asked.
func TestBrowserClusterRuns(t *testing.T) {
	mem := memstore.MustNew(t, memstore.Options{})
	// Node b: its own flowd on a handle of the shared store, serving its
	// runs to the other nodes.
	var hb lateHandler
	srvB := httptest.NewServer(&hb)
	t.Cleanup(srvB.Close)
	b, err := flowd.New(flowd.Options{Store: mem.Node(), Runs: memstore.MustNew(t, memstore.Options{}), NodeID: "b",
		NodeAddr: srvB.URL, Issuer: testIssuer})
	if err != nil {
		t.Fatal(err)
	}
	h := b.Handler()
	hb.h.Store(&h)
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	// Node c: registered at an address nobody answers.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	c := mem.Node()
	if err := c.Register(t.Context(), store.NodeInfo{ID: "c", Addr: gone.URL}); err != nil {
		t.Fatal(err)
	}
	// Node a: the editor's.
	e := newEnv(t, func(o *flowd.Options) {
		o.Store, o.Runs, o.NodeID = mem, memstore.MustNew(t, memstore.Options{}), "a"
	})
	e.importFlow(t, lightFlow, true)
	var runOnB string
	// Until b applied the deploy (it follows the store's feed): poll for up
	// to 10 s, not a fixed count of back-to-back tries a loaded machine
	// can exhaust before b's reconcile loop runs.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		w := httptest.NewRecorder()
		b.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/l/ok", nil))
		if w.Code == 200 {
			runs, err := b.App().Runs(t.Context(), "l", 1)
			if err != nil || len(runs) != 1 {
				t.Fatalf("b's runs %v %v", runs, err)
			}
			runOnB = runs[0].ID
			break
		}
	}
	if runOnB == "" {
		t.Fatal("b never served /l/ok")
	}
	onA := e.fire(t, "/l/ok")

	ctx := browser(t)
	openEditor(t, ctx, e, "l")
	waitJS(t, ctx, "b's run listed", `!!`+q("run-"+runOnB))
	waitJS(t, ctx, "a's run listed", `!!`+q("run-"+onA.ID))
	tag := func(id string) string {
		return uitest.JS[string](t, ctx, `(`+q("run-"+id)+`.querySelector('[data-testid="run-node"]') || {}).textContent || ''`)
	}
	if got := tag(runOnB); got != "b" {
		t.Errorf("b's run tagged %q, want b", got)
	}
	if got := tag(onA.ID); got != "a" {
		t.Errorf("a's run tagged %q, want a", got)
	}
	note := uitest.JS[string](t, ctx, `(`+q("runs-missing-c")+` || {}).textContent || ''`)
	if !strings.Contains(note, "node c") || !strings.Contains(note, "unreachable") {
		t.Errorf("missing-node note %q, want node c unreachable", note)
	}
}
