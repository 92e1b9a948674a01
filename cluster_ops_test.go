package flowd_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/app"
	httpblock "github.com/flowd/flowd/blocks/http"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/flows/examples"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/etcd/etcdtest"
	"github.com/flowd/flowd/store/memstore"
)

const opsToken = "fd_cluster-ops-test-token"

// openHandles opens n handles (nodes) of one fresh shared store.
func openHandles(t testing.TB, backend string, n int) []store.Store {
	t.Helper()
	out := make([]store.Store, 0, n)
	switch backend {
	case "memstore":
		mem := memstore.MustNew(t, memstore.Options{})
		out = append(out, mem)
		for len(out) < n {
			out = append(out, mem.Node())
		}
	case "etcd":
		endpoint := etcdtest.Endpoint(t)
		var p [6]byte
		rand.Read(p[:])
		prefix := "flowd-test/nodes-" + hex.EncodeToString(p[:])
		key := make([]byte, 32)
		rand.Read(key)
		for len(out) < n {
			out = append(out, openEtcd(t, endpoint, prefix, key))
		}
	default:
		t.Fatalf("no backend %q", backend)
	}
	return out
}

// opsNode is one started node with its admin API served over HTTP (so
// nodes can reach each other), published in the registry.
type opsNode struct {
	id  string
	fd  *flowd.Flowd
	st  store.Store
	srv *httptest.Server
}

// startOps starts one flowd node per id on handles of one store, each
// serving on its own loopback listener, its runs in a store of its own.
func startOps(t testing.TB, backend string, ids ...string) []*opsNode {
	t.Helper()
	handles := openHandles(t, backend, len(ids))
	sink := &sinkLog{}
	nodes := make([]*opsNode, 0, len(ids))
	for i, id := range ids {
		n := &opsNode{id: id, st: handles[i]}
		var h handlerBox
		n.srv = httptest.NewServer(&h)
		t.Cleanup(n.srv.Close)
		n.fd = startNode(t, flowd.Options{Store: handles[i], Runs: memstore.MustNew(t, memstore.Options{}), NodeID: id,
			NodeAddr: n.srv.URL, AdminToken: opsToken, Issuer: "http://flowd.test", Register: sinkBlocks(id, sink)})
		h.set(n.fd.Handler())
		nodes = append(nodes, n)
	}
	return nodes
}

// handlerBox lets a test server exist (its address published in the
// registry) before the handler it serves.
type handlerBox struct{ h atomic.Pointer[http.Handler] }

func (b *handlerBox) set(h http.Handler) { b.h.Store(&h) }

func (b *handlerBox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := b.h.Load()
	if h == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	(*h).ServeHTTP(w, r)
}

// adminCall calls a node's admin API with the test token.
func adminCall(t *testing.T, n *opsNode, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, n.srv.URL+"/admin/api"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+opsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestClusterDeployAnswer: a deploy through one node's admin API answers
// every node's state: 3 nodes, one of which cannot start the flow.
func TestClusterDeployAnswer(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			nodes := startOps(t, backend, "a", "b", "c")
			a := nodes[0]
			deploy := func(t *testing.T, id string, doc []byte) app.Rollout {
				t.Helper()
				if code, body := adminCall(t, a, "PUT", "/flows/"+id, string(doc)); code >= 300 {
					t.Fatalf("save %s: %d %s", id, code, body)
				}
				code, body := adminCall(t, a, "POST", "/flows/"+id+"/deploy?wait=10s", "")
				if code != 200 {
					t.Fatalf("deploy %s: %d %s", id, code, body)
				}
				var ro app.Rollout
				if err := json.Unmarshal(body, &ro); err != nil {
					t.Fatal(err)
				}
				return ro
			}
			t.Run("every node runs it", func(t *testing.T) {
				ro := deploy(t, "hello", helloFlow("one"))
				if got, want := strings.Join(states(ro), ","), "a=applied,b=applied,c=applied"; got != want || !ro.Complete || ro.Applied != 3 {
					t.Fatalf("answer %+v, want %s", ro, want)
				}
				// applied means served: each node answers with the version at once.
				for _, n := range nodes {
					if code, body := get(n.fd.Handler(), "/hello", ""); code != 200 || !strings.Contains(body, "one") {
						t.Errorf("node %s: %d %s right after the deploy answered", n.id, code, body)
					}
				}
			})
			t.Run("a node that cannot start it is named with its reason", func(t *testing.T) {
				doc := `{"schema":"flowd/v1","id":"picky","name":"picky","nodes":[{"id":"p","type":"test.picky","x":0,"y":0}],"wires":[]}`
				ro := deploy(t, "picky", []byte(doc))
				if got, want := strings.Join(states(ro), ","), "a=applied,b=failed,c=applied"; got != want || ro.Complete || ro.Applied != 2 {
					t.Fatalf("answer %+v, want %s", ro, want)
				}
				if e := ro.Nodes[1].Error; !strings.Contains(e, "cannot start on b") || !strings.Contains(e, fmt.Sprintf("version %d", ro.Version)) {
					t.Errorf("b's error %q, want its start error for version %d", e, ro.Version)
				}
			})
		})
	}
}

// states lists a rollout's nodes as "id=state".
func states(r app.Rollout) []string {
	var out []string
	for _, n := range r.Nodes {
		out = append(out, n.Node+"="+n.State)
	}
	return out
}

// TestClusterRouteConflict: two flows claiming one route, deployed at the
// same moment through two nodes: exactly one deploy commits, the other is
// refused before anything is stored, naming both flows and the pattern,
// and every node serves the winner.
func TestClusterRouteConflict(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			nodes := startOps(t, backend, "a", "b")
			ctx := t.Context()
			for round := range 5 {
				path := fmt.Sprintf("/same-%d", round)
				// "z" sorts after "m": a node that applies both at once
				// in id order would let the wrong one win.
				ids := []string{fmt.Sprintf("z%d", round), fmt.Sprintf("m%d", round)}
				for i, id := range ids {
					if _, err := nodes[i].fd.App().Import(ctx, routeFlow(id, path), false); err != nil {
						t.Fatal(err)
					}
				}
				errs := make([]error, 2)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i, id := range ids {
					wg.Go(func() {
						<-start
						_, errs[i] = nodes[i].fd.App().Deploy(ctx, id)
					})
				}
				close(start)
				wg.Wait()
				won := -1
				for i, err := range errs {
					switch {
					case err == nil && won >= 0:
						t.Fatalf("round %d: both deploys committed", round)
					case err == nil:
						won = i
					case !errors.Is(err, httpblock.ErrRouteConflict):
						t.Fatalf("round %d: deploy of %s: %v, want a route conflict", round, ids[i], err)
					}
				}
				if won < 0 {
					t.Fatalf("round %d: neither deploy committed: %v", round, errs)
				}
				winner, loser := ids[won], ids[1-won]
				msg := errs[1-won].Error()
				for _, want := range []string{fmt.Sprintf("%q", winner), fmt.Sprintf("%q", loser), "GET " + path} {
					if !strings.Contains(msg, want) {
						t.Errorf("round %d: error %q does not name %s", round, msg, want)
					}
				}
				rec, err := nodes[0].st.GetFlow(ctx, loser)
				if err != nil || rec.Deployed != 0 || rec.Latest != 0 {
					t.Errorf("round %d: loser %s stored as deployed %d latest %d (%v), want nothing stored", round, loser, rec.Deployed, rec.Latest, err)
				}
				for _, n := range nodes {
					eventually(t, fmt.Sprintf("round %d: node %s serves %s", round, n.id, winner), func() bool {
						code, body := get(n.fd.Handler(), path, "")
						return code == 200 && strings.Contains(body, winner)
					})
				}
			}
			t.Run("a later deploy of the loser is refused on any node", func(t *testing.T) {
				for _, n := range nodes {
					_, err := n.fd.App().Deploy(ctx, "z0")
					_, err2 := n.fd.App().Deploy(ctx, "m0")
					if (err == nil) == (err2 == nil) {
						t.Errorf("node %s: deploy z0 %v, m0 %v: want exactly one refused", n.id, err, err2)
					}
				}
			})
		})
	}
}

func routeFlow(id, path string) []byte {
	return []byte(`{"schema":"flowd/v1","id":"` + id + `","name":"` + id + `","nodes":[
	 {"id":"in","type":"http.in","config":{"method":"GET","path":"` + path + `"},"x":0,"y":0},
	 {"id":"out","type":"http.respond","config":{"body":"\"` + id + `\""},"x":1,"y":1}],
	 "wires":[{"from":"in","port":"out","to":"out"}]}`)
}

// TestClusterRuns: each node keeps its own runs; the admin API of any
// node lists them all, each with its node, and says which node it could
// not ask instead of failing.
func TestClusterRuns(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			nodes := startOps(t, backend, "a", "b", "c")
			a := nodes[0]
			if code, body := adminCall(t, a, "PUT", "/flows/hello", string(helloFlow("hi"))); code >= 300 {
				t.Fatalf("save: %d %s", code, body)
			}
			if code, body := adminCall(t, a, "POST", "/flows/hello/deploy?wait=10s", ""); code != 200 || !strings.Contains(string(body), `"complete": true`) {
				t.Fatalf("deploy: %d %s", code, body)
			}
			ran := map[string]int{"a": 1, "b": 2, "c": 3}
			for _, n := range nodes {
				for range ran[n.id] {
					if code, _ := get(n.fd.Handler(), "/hello", ""); code != 200 {
						t.Fatalf("node %s: /hello %d", n.id, code)
					}
				}
			}
			type listing struct {
				Runs []struct {
					ID   string `json:"id"`
					Node string `json:"node"`
					Flow string `json:"flow"`
				} `json:"runs"`
				Nodes []app.NodeRuns `json:"nodes"`
			}
			list := func(t *testing.T, via *opsNode) listing {
				t.Helper()
				code, body := adminCall(t, via, "GET", "/flows/hello/runs", "")
				if code != 200 {
					t.Fatalf("runs via %s: %d %s", via.id, code, body)
				}
				var l listing
				if err := json.Unmarshal(body, &l); err != nil {
					t.Fatal(err)
				}
				return l
			}
			for _, via := range nodes {
				t.Run("all nodes' runs via "+via.id, func(t *testing.T) {
					l := list(t, via)
					got := map[string]int{}
					for _, r := range l.Runs {
						if r.Flow != "hello" || r.ID == "" {
							t.Errorf("run %+v", r)
						}
						got[r.Node]++
					}
					if fmt.Sprint(got) != fmt.Sprint(ran) {
						t.Errorf("runs per node %v, want %v", got, ran)
					}
					if len(l.Nodes) != 3 {
						t.Fatalf("nodes %+v, want 3", l.Nodes)
					}
					for _, n := range l.Nodes {
						if !n.OK || n.Error != "" {
							t.Errorf("node %+v, want answered", n)
						}
					}
				})
			}
			t.Run("one run of another node by id", func(t *testing.T) {
				var id string
				for _, r := range list(t, a).Runs {
					if r.Node == "c" {
						id = r.ID
					}
				}
				code, body := adminCall(t, a, "GET", "/flows/hello/runs/"+id, "")
				if code != 200 || !strings.Contains(string(body), `"node": "c"`) || !strings.Contains(string(body), id) {
					t.Fatalf("run %s via a: %d %s", id, code, body)
				}
			})
			t.Run("an unreachable node is named, the others listed", func(t *testing.T) {
				nodes[2].srv.Close() // c stays registered, its address no longer answers
				l := list(t, a)
				got := map[string]int{}
				for _, r := range l.Runs {
					got[r.Node]++
				}
				if got["a"] != 1 || got["b"] != 2 || got["c"] != 0 {
					t.Errorf("runs per node %v, want a's and b's", got)
				}
				var c app.NodeRuns
				for _, n := range l.Nodes {
					if n.Node == "c" {
						c = n
					}
				}
				if c.OK || !strings.Contains(c.Error, "unreachable") {
					t.Errorf("c listed as %+v, want not ok and unreachable", c)
				}
			})
		})
	}
}

// TestClusterKeyUsage: tokens verified on two nodes add up on the keysets
// API of either; a node that leaves takes its counts with it.
func TestClusterKeyUsage(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			nodes := startOps(t, backend, "a", "b")
			a, b := nodes[0], nodes[1]
			ctx := t.Context()
			if err := a.fd.Keysets().Create(ctx, "main", "ES256"); err != nil {
				t.Fatal(err)
			}
			doc, err := fs.ReadFile(examples.FS, "protected-api.json")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.fd.App().DeployWait(ctx, mustImport(t, a, doc), 10*time.Second); err != nil {
				t.Fatal(err)
			}
			tok, _, err := jose.NewSigner(a.fd.Keysets()).Sign(ctx, jose.SignRequest{Keyset: "main", Alg: "ES256", Typ: "at+jwt",
				Issuer: "http://flowd.test", Subject: "alice", Audience: []string{"flowd-api"}, TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			kid := signerKid(a.fd)
			verified := map[*opsNode]int{a: 2, b: 3}
			for n, times := range verified {
				for range times {
					eventually(t, "node "+n.id+" verifies the token", func() bool {
						code, _ := get(n.fd.Handler(), "/api/hello", tok)
						return code == 200
					})
				}
			}
			usage := func(t *testing.T, via *opsNode) jose.KeyUsage {
				t.Helper()
				code, body := adminCall(t, via, "GET", "/keysets/main", "")
				if code != 200 {
					t.Fatalf("keyset via %s: %d %s", via.id, code, body)
				}
				var ks struct {
					Usage []jose.KeyUsage `json:"usage"`
				}
				if err := json.Unmarshal(body, &ks); err != nil {
					t.Fatal(err)
				}
				for _, u := range ks.Usage {
					if u.Kid == kid {
						return u
					}
				}
				t.Fatalf("no usage of %s in %s", kid, body)
				return jose.KeyUsage{}
			}
			for _, n := range nodes {
				if err := n.fd.App().FlushNodeData(ctx); err != nil {
					t.Fatal(err)
				}
			}
			for _, via := range nodes {
				t.Run("summed via "+via.id, func(t *testing.T) {
					u := usage(t, via)
					if u.Verified != 5 || u.LastHour != 5 || u.LastVerified.IsZero() {
						t.Errorf("usage %+v, want 5 verified, 5 in the last hour", u)
					}
				})
			}
			t.Run("a node that leaves takes its counts", func(t *testing.T) {
				cctx, cancel := context.WithTimeout(context.Background(), converge)
				defer cancel()
				if err := b.fd.Close(cctx); err != nil {
					t.Fatal(err)
				}
				if err := b.st.Close(); err != nil {
					t.Fatal(err)
				}
				if u := usage(t, a); u.Verified != 2 || u.LastHour != 2 {
					t.Errorf("usage on a after b left %+v, want a's 2", u)
				}
			})
		})
	}
}

func mustImport(t *testing.T, n *opsNode, doc []byte) string {
	t.Helper()
	info, err := n.fd.App().Import(t.Context(), doc, false)
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}

// BenchmarkClusterOps: what the operations cost on 3 nodes: a deploy
// answered once every node runs it, and a merged runs list (20 runs on
// each node). Not a pass/fail test; numbers in the closing note.
//
//	go test -run '^$' -bench BenchmarkClusterOps -benchtime=50x .
func BenchmarkClusterOps(b *testing.B) {
	for _, backend := range backends {
		b.Run(backend, func(b *testing.B) { benchClusterOps(b, backend) })
	}
}

func benchClusterOps(b *testing.B, backend string) {
	nodes := startOps(b, backend, "a", "b", "c")
	a := nodes[0]
	ctx := context.Background()
	if _, err := a.fd.App().Import(ctx, helloFlow("v0"), false); err != nil {
		b.Fatal(err)
	}
	b.Run("deploy answered by 3 nodes", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if _, err := a.fd.App().PutFlow(ctx, "hello", helloFlow(fmt.Sprintf("v%d", i)), store.AnyRev); err != nil {
				b.Fatal(err)
			}
			ro, err := a.fd.App().DeployWait(ctx, "hello", 10*time.Second)
			if err != nil || !ro.Complete {
				b.Fatalf("deploy: %+v %v", ro, err)
			}
		}
	})
	for _, n := range nodes {
		for range 20 {
			if code, _ := get(n.fd.Handler(), "/hello", ""); code != 200 {
				b.Fatalf("node %s: /hello %d", n.id, code)
			}
		}
	}
	b.Run("runs list merged from 3 nodes", func(b *testing.B) {
		for b.Loop() {
			view, err := a.fd.App().ClusterRuns(ctx, "hello", 100)
			if err != nil || len(view.Runs) != 60 {
				b.Fatalf("runs: %d %v", len(view.Runs), err)
			}
		}
	})
}
