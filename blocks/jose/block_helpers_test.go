package jose

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/blocks/core"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/storetest"
)

// Helpers of the block tests (prefix bt). Flows are built as documents and
// decoded like the app does, run from core.manual, and every branch ends in
// a bt.capture node that keeps a copy of the message it got:
//
//	core.manual --out--> jose.x --port--> bt.capture ("got_<port>")

// btClock is the one injectable clock of a test: keysets, validators and
// the runtime all read it.
type btClock struct {
	mu sync.Mutex
	t  time.Time
}

func newBtClock() *btClock { return &btClock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)} }

func (c *btClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *btClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// btEnv is a keyset manager over a real bolt store, a registry with the
// core and jose blocks, and a runtime.
type btEnv struct {
	ks  *Keysets
	st  store.Store // bbolt with every update function called twice
	reg *engine.Registry
	svc *engine.Services // what the runtime's factories look up
	rt  *engine.Runtime
	clk *btClock

	mu   sync.Mutex
	caps map[string]engine.Msg // capture node id -> last message
}

func newBtEnv(t testing.TB) *btEnv {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "flowd.db"), store.BoltOptions{MasterKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &btEnv{st: storetest.TwiceUpdates(st), clk: newBtClock(), caps: map[string]engine.Msg{}}
	e.ks = NewKeysets(e.st)
	e.ks.Now = e.clk.Now
	e.ks.RSABits = 2048 // generation time, not strength, matters here
	e.reg = engine.NewRegistry()
	if err := core.Register(e.reg); err != nil {
		t.Fatal(err)
	}
	if err := Register(e.reg); err != nil {
		t.Fatal(err)
	}
	e.svc = engine.NewServices()
	if err := Provide(e.svc, e.ks, Options{Now: e.clk.Now, AllowInsecureJWKS: true}); err != nil {
		t.Fatal(err)
	}
	e.reg.MustRegister(engine.Spec{Type: "bt.capture", Title: "capture", Category: "test"},
		func(s *engine.Setup) (engine.Block, error) {
			node := s.NodeID
			return engine.BlockFunc(func(_ context.Context, _ *engine.Exec, m engine.Msg) (string, error) {
				e.mu.Lock()
				e.caps[node] = m
				e.mu.Unlock()
				return "", nil
			}), nil
		})
	e.rt, err = engine.New(engine.Options{Registry: e.reg, Now: e.clk.Now, Services: e.svc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.rt.Close(context.Background()) })
	return e
}

// btNode is one node of a test flow.
type btNode = enginetest.Node

// btFlow writes a flow document and decodes it. Wires are "from:port->to".
func btFlow(t testing.TB, id string, nodes []btNode, wires ...string) *engine.Flow {
	t.Helper()
	return enginetest.Flow(t, id, nodes, wires...)
}

// btChain is the usual flow: manual -> one block -> a capture node per
// port ("got_<port>", including "got_error").
func btChain(t testing.TB, id, typ string, config map[string]any, ports ...string) *engine.Flow {
	t.Helper()
	nodes := []btNode{{ID: "start", Type: "core.manual"}, {ID: "b", Type: typ, Config: config}}
	wires := []string{"start:out->b"}
	for _, p := range append(ports, engine.ErrorPort) {
		nodes = append(nodes, btNode{ID: "got_" + p, Type: "bt.capture"})
		wires = append(wires, "b:"+p+"->got_"+p)
	}
	return btFlow(t, id, nodes, wires...)
}

func (e *btEnv) deploy(t testing.TB, f *engine.Flow) {
	t.Helper()
	v, _ := e.rt.Deployed(f.ID)
	if err := e.rt.Deploy(t.Context(), f, v+1); err != nil {
		t.Fatalf("deploy %s: %v", f.ID, err)
	}
}

// run runs a deployed flow with msg and returns the port node "b" took and
// the message that port's capture node got.
func (e *btEnv) run(t testing.TB, flow string, msg engine.Msg) (string, engine.Msg) {
	t.Helper()
	tr, err := e.rt.Run(t.Context(), flow, "", msg)
	if err != nil {
		t.Fatalf("run %s: %v", flow, err)
	}
	port := btPort(tr, "b")
	e.mu.Lock()
	defer e.mu.Unlock()
	got := e.caps["got_"+port]
	delete(e.caps, "got_"+port)
	return port, got
}

// btPort is the port a node took in a trace.
func btPort(tr *engine.Trace, node string) string {
	for _, s := range tr.Steps {
		if s.Node == node {
			return s.Port
		}
	}
	return ""
}

// btReason returns msg.invalid.reason.
func btReason(msg engine.Msg) string {
	inv, _ := msg["invalid"].(map[string]any)
	r, _ := inv["reason"].(string)
	return r
}

// btErrorText returns the message of the error port.
func btErrorText(msg engine.Msg) string {
	e, _ := msg["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

// deployErr deploys f expecting a refusal, and returns its first
// validation error.
func (e *btEnv) deployErr(t testing.TB, f *engine.Flow) *engine.ValidationError {
	t.Helper()
	err := e.rt.Deploy(t.Context(), f, 1)
	if err == nil {
		t.Fatalf("deploy %s: succeeded, want a refusal", f.ID)
	}
	ve := engine.FirstValidation(err)
	if ve == nil {
		t.Fatalf("deploy %s: %v is not a validation error", f.ID, err)
	}
	return ve
}

// signFlow is manual -> jose.sign -> capture.
func (e *btEnv) sign(t testing.TB, flow string, config map[string]any) (token, kid string) {
	t.Helper()
	if _, ok := e.rt.Deployed(flow); !ok {
		e.deploy(t, btChain(t, flow, "jose.sign", config, "out"))
	}
	port, msg := e.run(t, flow, engine.Msg{})
	if port != "out" {
		t.Fatalf("sign: port %q, error %q", port, btErrorText(msg))
	}
	return msg["token"].(string), msg["token_kid"].(string)
}

// btPolicy is the config of a jose.validate node that accepts what
// btSignConfig mints.
func btPolicy(keyset string, algs ...string) map[string]any {
	return map[string]any{
		"token": "msg.token", "keyset": keyset, "algorithms": algs,
		"issuer": "https://issuer.test", "audience": []string{"api"},
	}
}

func btSignConfig(keyset, alg string) map[string]any {
	return map[string]any{
		"keyset": keyset, "alg": alg, "issuer": "'https://issuer.test'",
		"subject": "'user-1'", "audience": "'api'", "ttl": "1h",
	}
}

// btWith returns a copy of m with the given members replaced (nil deletes).
func btWith(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}
