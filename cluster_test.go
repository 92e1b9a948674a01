package flowd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/flows/examples"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/etcd"
	"github.com/flowd/flowd/store/memstore"
)

// converge is how long a test waits for a change made on one node to show
// on another before failing. The feed brings it in milliseconds; the bound
// is for a loaded CI machine, and a passing test never waits it out.
const converge = 10 * time.Second

// eventually polls cond until it holds or converge passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(converge)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen within %s", what, converge)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// beforeDeadline is ctx ending a little before the test binary's
// -timeout (if one is set), so that a wait on an event that never comes
// fails with the test's message rather than the binary's panic.
func beforeDeadline(t testing.TB, ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := d.Deadline(); ok {
			return context.WithDeadline(ctx, deadline.Add(-5*time.Second))
		}
	}
	return context.WithCancel(ctx)
}

// fired is one run of test.sink: the node it ran on and the tick it served.
type fired struct {
	node         string
	scheduledFor string
}

// sinkLog collects test.sink runs across nodes.
type sinkLog struct {
	mu   sync.Mutex
	runs []fired
}

func (l *sinkLog) add(f fired) {
	l.mu.Lock()
	l.runs = append(l.runs, f)
	l.mu.Unlock()
}

func (l *sinkLog) all() []fired {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.runs)
}

// picky is a trigger that cannot start on node b.
type picky struct{ node string }

func (picky) Process(context.Context, *engine.Exec, engine.Msg) (string, error) { return "out", nil }
func (p picky) Start(context.Context, *engine.TriggerContext) error {
	if p.node == "b" {
		return errors.New("cannot start on b")
	}
	return nil
}
func (picky) Stop(context.Context) error { return nil }

// sinkBlocks registers test.sink, which records the node and the tick,
// and test.picky, a trigger that starts on every node but b.
func sinkBlocks(node string, log *sinkLog) func(*engine.Registry) error {
	return func(reg *engine.Registry) error {
		if err := reg.Register(engine.Spec{Type: "test.picky", Trigger: true, Outputs: []string{"out"}},
			func(*engine.Setup) (engine.Block, error) { return picky{node: node}, nil }); err != nil {
			return err
		}
		return reg.Register(engine.Spec{Type: "test.sink", Outputs: []string{"out"}},
			func(*engine.Setup) (engine.Block, error) {
				return engine.BlockFunc(func(_ context.Context, _ *engine.Exec, m engine.Msg) (string, error) {
					sch, _ := m["schedule"].(map[string]any)
					at, _ := sch["scheduled_for"].(string)
					log.add(fired{node: node, scheduledFor: at})
					return "out", nil
				}), nil
			})
	}
}

// cluster is two flowd nodes on two handles of one store.
type cluster struct {
	a, b *flowd.Flowd
	st   store.Store // node a's handle, for looking at the shared state
	sink *sinkLog
}

// backends are the shared stores the cluster tests run on: memstore
// handles (one state in this process, standing in for a cluster) and etcd
// clients on one etcd prefix (skipped without etcd-server locally, failed
// under CI=true). openHandles opens them.
var backends = []string{"memstore", "etcd"}

// newCluster starts node b first and waits until it holds the scheduler
// role, so tests know which node ticks. Each node keeps its runs in a
// memstore of its own.
func newCluster(t testing.TB, backend string) *cluster {
	t.Helper()
	h := openHandles(t, backend, 2)
	sa, sb := h[0], h[1]
	c := &cluster{st: sa, sink: &sinkLog{}}
	start := func(id string, st store.Store) *flowd.Flowd {
		return startNode(t, flowd.Options{Store: st, Runs: memstore.MustNew(t, memstore.Options{}), NodeID: id,
			Issuer: "http://flowd.test", Register: sinkBlocks(id, c.sink)})
	}
	c.b = start("b", sb)
	eventually(t, "node b holds the scheduler role", c.b.Scheduler().Leading)
	c.a = start("a", sa)
	return c
}

// openEtcd opens a store (one node's client) on the etcd at endpoint under
// prefix, closed when the test ends.
func openEtcd(t testing.TB, endpoint, prefix string, key []byte) store.Store {
	t.Helper()
	cli, err := etcd.Dial(etcd.ClientConfig{Target: etcd.Target{Endpoints: []string{strings.TrimPrefix(endpoint, "http://")}}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := etcd.Open(context.Background(), etcd.Options{Client: cli, OwnClient: true, Prefix: prefix, MasterKey: key})
	if err != nil {
		_ = cli.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// startNode starts a flowd node with opts and closes it when the test
// ends.
func startNode(t testing.TB, opts flowd.Options) *flowd.Flowd {
	t.Helper()
	fd, err := flowd.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := fd.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Close waits for runs in flight (a key rotation takes seconds
		// under -race on a loaded machine): no budget but the test's.
		ctx, cancel := beforeDeadline(t, context.Background())
		defer cancel()
		if err := fd.Close(ctx); err != nil {
			t.Errorf("Close %s: %v", opts.NodeID, err)
		}
	})
	return fd
}

func helloFlow(body string) []byte {
	return []byte(`{"schema":"flowd/v1","id":"hello","name":"hello","nodes":[
	 {"id":"in","type":"http.in","config":{"method":"GET","path":"/hello"},"x":0,"y":0},
	 {"id":"out","type":"http.respond","config":{"body":"\"` + body + `\""},"x":1,"y":1}],
	 "wires":[{"from":"in","port":"out","to":"out"}]}`)
}

func get(h http.Handler, path, token string) (int, string) {
	req := httptest.NewRequest("GET", path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	body, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(body)
}

// jwksKids is what the node's /.well-known/jwks.json (the prebuilt jwks
// flow, deployed on the other node) publishes.
func jwksKids(t testing.TB, fd *flowd.Flowd) []string {
	t.Helper()
	code, body := get(fd.Handler(), "/.well-known/jwks.json", "")
	if code != 200 {
		return nil
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func signerKid(fd *flowd.Flowd) string {
	k, err := fd.Keysets().ActiveSigner(context.Background(), "main", "ES256")
	if err != nil {
		return ""
	}
	return k.Kid
}

// TestTwoNodes: what one node changes, the other serves, through the
// shared store's feed alone.
func TestTwoNodes(t *testing.T) {
	for _, be := range backends {
		t.Run(be, func(t *testing.T) { testTwoNodes(t, newCluster(t, be)) })
	}
}

func testTwoNodes(t *testing.T, c *cluster) {
	ctx := t.Context()

	t.Run("a deploy on one is served by the other", func(t *testing.T) {
		for _, body := range []string{"one", "two"} {
			if _, err := c.a.App().Import(ctx, helloFlow(body), true); err != nil {
				t.Fatalf("deploy on a: %v", err)
			}
			eventually(t, "b serves version "+body, func() bool {
				code, got := get(c.b.Handler(), "/hello", "")
				return code == 200 && strings.Contains(got, body)
			})
		}
		if err := c.a.App().Undeploy(ctx, "hello"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "b stops serving the undeployed flow", func() bool {
			code, _ := get(c.b.Handler(), "/hello", "")
			return code == 404
		})
	})

	t.Run("a deploy error reaches the caller with node and field", func(t *testing.T) {
		doc := strings.Replace(string(helloFlow("x")), `"/hello"`, `"/healthz"`, 1)
		_, err := c.a.App().Import(ctx, []byte(doc), true)
		var ve engine.ValidationErrors
		if !asValidation(err, &ve) || ve[0].Node != "in" || ve[0].Field != "path" {
			t.Fatalf("deploy at /healthz: %v, want a validation error on node in, field path", err)
		}
	})

	t.Run("a flow that cannot start on one node is listed in its registry entry", func(t *testing.T) {
		doc := `{"schema":"flowd/v1","id":"picky","name":"picky","nodes":[{"id":"p","type":"test.picky","x":0,"y":0}],"wires":[]}`
		if _, err := c.a.App().Import(ctx, []byte(doc), true); err != nil {
			t.Fatalf("deploy on a (where it starts): %v", err)
		}
		eventually(t, "b reports the flow it could not start", func() bool {
			nodes, err := c.st.Nodes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range nodes {
				if n.ID == "b" {
					return strings.Contains(n.Problems["picky"], "cannot start on b")
				}
			}
			return false
		})
		// /readyz answers are reused for a quarter of a second: ask Ready.
		if got := c.b.Ready(ctx); got["flows"] != "failing" {
			t.Errorf("b Ready = %v, want flows failing", got)
		}
		if got := c.a.Ready(ctx); got["flows"] != "ok" {
			t.Errorf("a Ready = %v, want flows ok", got)
		}
		eventually(t, "b /readyz answers 503", func() bool {
			code, body := get(c.b.Handler(), "/readyz", "")
			return code == 503 && strings.Contains(body, `"flows":"failing"`)
		})
		if err := c.a.App().DeleteFlow(ctx, "picky", store.AnyRev); err != nil {
			t.Fatal(err)
		}
		eventually(t, "b is ready again", func() bool { code, _ := get(c.b.Handler(), "/readyz", ""); return code == 200 })
	})

	t.Run("a rotation on one is signed with and published by the other", func(t *testing.T) {
		if err := c.a.Keysets().Create(ctx, "main", "ES256"); err != nil {
			t.Fatal(err)
		}
		jwks, err := fs.ReadFile(examples.FS, "jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.a.App().Import(ctx, jwks, true); err != nil {
			t.Fatal(err)
		}
		eventually(t, "b serves the JWKS", func() bool { return len(jwksKids(t, c.b)) == 2 })
		eventually(t, "b signs with a's key", func() bool { return signerKid(c.b) != "" && signerKid(c.b) == signerKid(c.a) })
		before := signerKid(c.b) // b's view is cached from here on
		rot, err := c.a.Keysets().Rotate(ctx, "main", jose.RotateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "b signs with the rotated key", func() bool { return signerKid(c.b) == rot.Activated[0] })
		if before == rot.Activated[0] {
			t.Fatalf("rotation did not change the active key")
		}
		eventually(t, "b publishes a's new next key", func() bool { return slices.Contains(jwksKids(t, c.b), rot.Created[0]) })
		// The ETag is the body's hash: both nodes answer the same one, so
		// If-None-Match works across the load balancer.
		ra, rb := httptest.NewRecorder(), httptest.NewRecorder()
		c.a.Handler().ServeHTTP(ra, httptest.NewRequest("GET", "/.well-known/jwks.json", nil))
		c.b.Handler().ServeHTTP(rb, httptest.NewRequest("GET", "/.well-known/jwks.json", nil))
		if ea, eb := ra.Header().Get("ETag"), rb.Header().Get("ETag"); ea == "" || ea != eb {
			t.Errorf("ETag on a %q, on b %q; want the same", ea, eb)
		}
	})

	t.Run("a revoke on one disappears from the other's JWKS", func(t *testing.T) {
		kid := signerKid(c.a)
		if !slices.Contains(jwksKids(t, c.b), kid) {
			t.Fatalf("b does not publish %s before the revoke", kid)
		}
		if err := c.a.Keysets().Revoke(ctx, "main", kid); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the revoked key leaves b's JWKS", func() bool { return !slices.Contains(jwksKids(t, c.b), kid) })
		if signerKid(c.b) == kid {
			t.Errorf("b still signs with the revoked key")
		}
	})

	t.Run("an admin token rotated on one is refused by the other", func(t *testing.T) {
		old, err := c.a.EnsureAdminToken(ctx)
		if err != nil || old == "" {
			t.Fatalf("EnsureAdminToken = %q, %v", old, err)
		}
		eventually(t, "b accepts the token", func() bool {
			code, _ := get(c.b.Handler(), "/admin/api/flows", old)
			return code == 200
		})
		tok, err := c.a.RotateAdminToken(ctx)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "b refuses the old token", func() bool {
			code, _ := get(c.b.Handler(), "/admin/api/flows", old)
			return code == 401
		})
		if code, _ := get(c.b.Handler(), "/admin/api/flows", tok); code != 200 {
			t.Errorf("b refuses the new token: %d", code)
		}
	})

	t.Run("a client secret replaced on one is refused by the other", func(t *testing.T) {
		s1, s2 := "first-secret-0123456789", "second-secret-0123456789"
		if _, _, err := c.a.Clients().Add(ctx, oauth.Client{ID: "svc"}, s1); err != nil {
			t.Fatal(err)
		}
		// b verifies s1 once: its hasher now remembers the success.
		if _, err := c.b.Clients().Authenticate(ctx, "svc", s1); err != nil {
			t.Fatalf("b refuses the first secret: %v", err)
		}
		if err := c.a.Clients().Remove(ctx, "svc"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.b.Clients().Authenticate(ctx, "svc", s1); !errors.Is(err, oauth.ErrInvalidClient) {
			t.Fatalf("b after the client was removed on a: %v, want ErrInvalidClient", err)
		}
		if _, _, err := c.a.Clients().Add(ctx, oauth.Client{ID: "svc"}, s2); err != nil {
			t.Fatal(err)
		}
		if _, err := c.b.Clients().Authenticate(ctx, "svc", s1); !errors.Is(err, oauth.ErrInvalidClient) {
			t.Errorf("b with the replaced secret: %v, want ErrInvalidClient", err)
		}
		if _, err := c.b.Clients().Authenticate(ctx, "svc", s2); err != nil {
			t.Errorf("b refuses the new secret: %v", err)
		}
	})

	t.Run("a per-second schedule fires once per tick across both; a pause on one stops the other", func(t *testing.T) {
		if !c.b.Scheduler().Leading() || c.a.Scheduler().Leading() {
			t.Fatalf("leading: a %v, b %v; want only b", c.a.Scheduler().Leading(), c.b.Scheduler().Leading())
		}
		doc := `{"schema":"flowd/v1","id":"tick","name":"tick","nodes":[
		 {"id":"cron","type":"schedule.cron","config":{"spec":"* * * * * *"},"x":0,"y":0},
		 {"id":"sink","type":"test.sink","x":1,"y":1}],
		 "wires":[{"from":"cron","port":"out","to":"sink"}]}`
		if _, err := c.a.App().Import(ctx, []byte(doc), true); err != nil {
			t.Fatal(err)
		}
		eventually(t, "three ticks", func() bool { return len(c.sink.all()) >= 3 })
		// Pause on a, the node that does not tick: b must stop.
		if err := c.a.Scheduler().Pause(ctx, "tick", "cron"); err != nil {
			t.Fatal(err)
		}
		paused := len(c.sink.all())
		// The record is paused in the store; each tick's claim reads it in
		// the same transaction, so at most a tick claimed before the pause
		// may still land. Wait for two more ticks' worth of claims to be
		// refused.
		raw := func() string {
			v, _ := c.st.GetKV(ctx, "schedule", "tick/cron")
			return string(v)
		}
		time.Sleep(2500 * time.Millisecond)
		runs := c.sink.all()
		if len(runs) > paused+1 {
			t.Errorf("%d runs after the pause (record %s), want at most 1 in flight", len(runs)-paused, raw())
		}
		seen := map[string]bool{}
		for _, r := range runs {
			if r.node != "b" {
				t.Errorf("tick %s fired on %s, want only b (the leader)", r.scheduledFor, r.node)
			}
			if seen[r.scheduledFor] {
				t.Errorf("tick %s fired twice", r.scheduledFor)
			}
			seen[r.scheduledFor] = true
		}
		if !strings.Contains(raw(), `"paused":true`) || !strings.Contains(raw(), `"claimed_by":"b"`) {
			t.Errorf("schedule record %s, want paused and claimed by b", raw())
		}
	})

	t.Run("the other node takes the scheduler role when the leader stops", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, converge)
		defer cancel()
		if err := c.b.Scheduler().Stop(ctx); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a leads", c.a.Scheduler().Leading)
	})

	t.Run("both nodes are ready", func(t *testing.T) {
		for name, fd := range map[string]*flowd.Flowd{"a": c.a, "b": c.b} {
			if code, body := get(fd.Handler(), "/readyz", ""); code != 200 {
				t.Errorf("%s /readyz: %d %s", name, code, body)
			}
		}
	})
}

func asValidation(err error, ve *engine.ValidationErrors) bool {
	return errors.As(err, ve) && len(*ve) > 0
}

// BenchmarkPropagation measures how long a change made on one node takes
// to show on the other (two flowd nodes on one memstore): each op makes
// the change on a and polls b until it sees it, so it includes the change
// itself (deploy_same_node is that part for a deploy).
func BenchmarkPropagation(b *testing.B) {
	for _, be := range backends {
		b.Run(be, func(b *testing.B) { benchPropagation(b, newCluster(b, be)) })
	}
}

func benchPropagation(b *testing.B, c *cluster) {
	ctx := context.Background()
	if err := c.a.Keysets().Create(ctx, "main", "ES256"); err != nil {
		b.Fatal(err)
	}
	eventually(b, "b loads the keyset", func() bool { return signerKid(c.b) != "" })
	b.Run("deploy_same_node", func(b *testing.B) {
		// The baseline: a deploy returns once the deploying node runs it.
		for i := 0; b.Loop(); i++ {
			if _, err := c.a.App().Import(ctx, helloFlow(fmt.Sprintf("w%d", i)), true); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("deploy", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			body := fmt.Sprintf("v%d", i)
			if _, err := c.a.App().Import(ctx, helloFlow(body), true); err != nil {
				b.Fatal(err)
			}
			for {
				if code, got := get(c.b.Handler(), "/hello", ""); code == 200 && strings.Contains(got, body) {
					break
				}
				runtime.Gosched()
			}
		}
	})
	b.Run("rotation", func(b *testing.B) {
		for b.Loop() {
			// Retired keys go at the next rotation: the keyset stays small.
			rot, err := c.a.Keysets().Rotate(ctx, "main", jose.RotateOptions{RetireAfter: time.Nanosecond})
			if err != nil {
				b.Fatal(err)
			}
			for signerKid(c.b) != rot.Activated[0] {
				runtime.Gosched()
			}
		}
	})
	b.Run("admin_token", func(b *testing.B) {
		if _, err := c.a.EnsureAdminToken(ctx); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			tok, err := c.a.RotateAdminToken(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for {
				if code, _ := get(c.b.Handler(), "/admin/api/flows", tok); code == 200 {
					break
				}
				runtime.Gosched()
			}
		}
	})
}
