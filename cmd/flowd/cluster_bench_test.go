package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestClusterBench is the cluster benchmark (bench/cluster/run.sh runs it;
// docs/benchmarks.md has the numbers). It is a measurement, not a test:
// it runs only with FLOWD_BENCH_CLUSTER=1 and fails only when the set-up
// does. One node on bbolt against three nodes on a three-member etcd,
// all on this machine's loopback:
//
//   - client_credentials tokens, GET /api/hello with a token, the JWKS:
//     req/s and p99 from a closed-loop load of BENCH_CONNS workers for
//     BENCH_SECONDS each, requests spread round-robin over the nodes;
//   - full authorization-code sign-ins (authorize, sign-in form, code
//     exchange: three requests, one argon2id hash) the same way;
//   - on etcd, store round trips per request: the unary KV and lease
//     calls all members answered during the load (their /metrics), per
//     successful request (background traffic included: feed, registry);
//   - deploy to all nodes: a deploy on node a until b and c serve it;
//   - revoke to all nodes: a revoke on node a until the kid is gone from
//     every node's JWKS.
//
// BENCH_PARTS (default "loads,signin,propagation") picks what runs.
func TestClusterBench(t *testing.T) {
	if os.Getenv("FLOWD_BENCH_CLUSTER") != "1" {
		t.Skip("a benchmark: set FLOWD_BENCH_CLUSTER=1 (bench/cluster/run.sh)")
	}
	conns := envInt("BENCH_CONNS", 16)
	secs := envInt("BENCH_SECONDS", 5)
	rounds := envInt("BENCH_PROPAGATION", 50)
	parts := os.Getenv("BENCH_PARTS")
	if parts == "" {
		parts = "loads,signin,propagation"
	}
	part := func(name string) bool { return slices.Contains(strings.Split(parts, ","), name) }
	type setup struct {
		name  string
		nodes int
		etcd  bool
	}
	var report []string
	for _, s := range []setup{{"1 node, bbolt", 1, false}, {"3 nodes, 3-member etcd", 3, true}} {
		t.Run(s.name, func(t *testing.T) {
			c := startNodes(t, s.nodes, map[string]string{"FLOWD_LOG": "warn"}, s.etcd)
			c.provider(t) // ada, client web (sign-ins), client svc (client_credentials)
			at, _ := clientToken(t, c.nodes[0])
			tokenForm := url.Values{"grant_type": {"client_credentials"}}.Encode()
			loads := []struct {
				name string
				req  func(ctx context.Context) *http.Request
			}{
				{"client_credentials token", func(ctx context.Context) *http.Request {
					r, _ := http.NewRequestWithContext(ctx, "POST", "http://"+balancerHost+"/oauth/token", strings.NewReader(tokenForm))
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					r.SetBasicAuth("svc", "svc-secret-0123456789")
					return r
				}},
				{"GET /api/hello", func(ctx context.Context) *http.Request {
					r, _ := http.NewRequestWithContext(ctx, "GET", "http://"+balancerHost+"/api/hello", nil)
					r.Header.Set("Authorization", "Bearer "+at)
					return r
				}},
				{"GET /.well-known/jwks.json", func(ctx context.Context) *http.Request {
					r, _ := http.NewRequestWithContext(ctx, "GET", "http://"+balancerHost+"/.well-known/jwks.json", nil)
					return r
				}},
			}
			if !part("loads") {
				loads = nil
			}
			for _, l := range loads {
				res := c.load(t, conns, time.Duration(secs)*time.Second, func(ctx context.Context, client *http.Client) error {
					return expect200(client.Do(l.req(ctx)))
				})
				line := fmt.Sprintf("| %s | %s | %.0f | %s | %s | %d | %s |", s.name, l.name, res.rps, ms(res.p50), ms(res.p99), res.errors, res.trips)
				t.Log(line)
				report = append(report, line)
			}
			if part("signin") {
				// Spread over users: a user keeps at most 100 sessions.
				// Fewer workers: each sign-in hashes a password (argon2id),
				// and a node's hashing pool answers 503 when it is full.
				signers := envInt("BENCH_SIGNIN_CONNS", 4)
				users := c.addUsers(t, signers)
				var next atomic.Uint64
				res := c.load(t, signers, time.Duration(secs)*time.Second, func(ctx context.Context, client *http.Client) error {
					_, _, err := c.signInOnce(ctx, client, users[next.Add(1)%uint64(len(users))])
					return err
				})
				line := fmt.Sprintf("| %s | sign-in (authorize, form, code exchange), %d workers | %.1f | %s | %s | %d | %s |", s.name, signers, res.rps, ms(res.p50), ms(res.p99), res.errors, res.trips)
				t.Log(line)
				report = append(report, line)
			}
			if s.nodes < 3 || !part("propagation") {
				return
			}
			dep := c.deployPropagation(t, rounds)
			line := fmt.Sprintf("| %s | deploy on a, served by b and c | %d deploys | %s | %s | | |", s.name, len(dep), ms(pct(dep, 50)), ms(pct(dep, 99)))
			t.Log(line)
			report = append(report, line)
			rev, call, after := c.revokePropagation(t, rounds)
			for _, r := range []struct {
				what string
				d    []time.Duration
			}{
				{"revoke on a, gone from every JWKS", rev},
				{"of which the revoke call", call},
				{"gone from every JWKS after the revoke answered (0: before)", after},
			} {
				line = fmt.Sprintf("| %s | %s | %d revokes | %s | %s | | |", s.name, r.what, len(r.d), ms(pct(r.d, 50)), ms(pct(r.d, 99)))
				t.Log(line)
				report = append(report, line)
			}
		})
	}
	t.Log("\n| setup | load | req/s | p50 | p99 | errors | etcd round trips per request |\n|---|---|---|---|---|---|---|\n" + strings.Join(report, "\n"))
}

type loadResult struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
	firstErr error
	trips    string // etcd round trips per successful op ("" without etcd)
}

func expect200(resp *http.Response, err error) error {
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// load runs workers closed-loop ops for d (after a 1 s warm-up); each op
// gets a client whose requests go round-robin over the nodes.
func (c *cluster) load(t *testing.T, workers int, d time.Duration, op func(ctx context.Context, client *http.Client) error) loadResult {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	client := &http.Client{Timeout: 10 * time.Second, Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		out := req.Clone(req.Context())
		out.URL.Host = c.pick().addr
		out.Host = balancerHost
		return tr.RoundTrip(out)
	}), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var firstErr error
	run := func(d time.Duration) ([]time.Duration, int) {
		ctx, cancel := context.WithTimeout(t.Context(), d)
		defer cancel()
		var mu sync.Mutex
		var lat []time.Duration
		errs := 0
		var wg sync.WaitGroup
		firstErr = nil
		for range workers {
			wg.Go(func() {
				var mine []time.Duration
				bad := 0
				for ctx.Err() == nil {
					start := time.Now()
					if err := op(ctx, client); err != nil {
						if ctx.Err() == nil {
							bad++
							mu.Lock()
							if firstErr == nil {
								firstErr = err
							}
							mu.Unlock()
						}
						continue
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				lat, errs = append(lat, mine...), errs+bad
				mu.Unlock()
			})
		}
		wg.Wait()
		return lat, errs
	}
	run(time.Second)
	before := c.etcdCalls(t)
	lat, errs := run(d)
	res := loadResult{rps: float64(len(lat)) / d.Seconds(), p50: pct(lat, 50), p99: pct(lat, 99), errors: errs, firstErr: firstErr}
	if firstErr != nil {
		t.Logf("%d failed, the first: %v", errs, firstErr)
	}
	if len(c.etcd) > 0 && len(lat) > 0 {
		res.trips = fmt.Sprintf("%.1f", float64(c.etcdCalls(t)-before)/float64(len(lat)))
	}
	return res
}

// etcdCallRE matches the unary KV and lease calls in etcd's /metrics.
var etcdCallRE = regexp.MustCompile(`(?m)^grpc_server_started_total\{grpc_method="(Range|Txn|Put|DeleteRange|LeaseGrant|LeaseRevoke)",grpc_service="etcdserverpb\.(KV|Lease)",grpc_type="unary"\} (\d+)`)

// etcdCalls sums the unary KV and lease calls every etcd member answered.
func (c *cluster) etcdCalls(t *testing.T) int64 {
	t.Helper()
	var n int64
	for _, s := range c.etcd {
		resp, err := http.Get(s.Endpoint + "/metrics")
		if err != nil {
			continue // a killed member answers no more
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, m := range etcdCallRE.FindAllStringSubmatch(string(raw), -1) {
			v, _ := strconv.ParseInt(m[3], 10, 64)
			n += v
		}
	}
	return n
}

// deployPropagation deploys n versions of a flow on node a and times each
// from sending the deploy until b and c serve it.
func (c *cluster) deployPropagation(t *testing.T, n int) []time.Duration {
	t.Helper()
	a := c.nodes[0]
	var out []time.Duration
	for i := range n {
		answer := "v" + strconv.Itoa(i)
		doc := echoFlow("probe", "/probe", answer)
		start := time.Now()
		var status int
		var body map[string]any
		if i == 0 {
			status, body = c.admin(t, a, "POST", "/flows?deploy=true", doc)
		} else if status, body = c.admin(t, a, "PUT", "/flows/probe", doc); status == 200 {
			status, body = c.admin(t, a, "POST", "/flows/probe/deploy", "")
		}
		if status/100 != 2 {
			t.Fatalf("deploy %d: %d %v", i, status, body)
		}
		for _, nd := range c.nodes[1:] {
			for {
				code, b := getVia(t, nd, "/probe")
				if code == 200 && strings.TrimSpace(b) == `"`+answer+`"` {
					break
				}
				if time.Since(start) > 20*time.Second {
					t.Fatalf("deploy %d not served on %s after 20 s", i, nd.id)
				}
				time.Sleep(time.Millisecond)
			}
		}
		out = append(out, time.Since(start))
	}
	return out
}

// revokePropagation rotates keyset main on node a (a fresh next key is
// published), then revokes that key on a and times until it is gone
// from every node's JWKS. It stops early if a rotation is refused (the
// keyset's key cap) and returns what it measured.
func (c *cluster) revokePropagation(t *testing.T, n int) (total, call, afterAnswer []time.Duration) {
	t.Helper()
	a := c.nodes[0]
	var out, calls, after []time.Duration
	for i := range n {
		before := jwksKids(t, a)
		status, body := c.admin(t, a, "POST", "/keysets/main/rotate", `{"force":true,"retire_after":"1s"}`)
		if status != 200 {
			t.Logf("rotation %d refused, stopping at %d revokes: %d %v", i, len(out), status, body)
			break
		}
		var kid string
		for _, k := range jwksKids(t, a) {
			if !slices.Contains(before, k) {
				kid = k
			}
		}
		if kid == "" {
			t.Fatalf("rotation %d published no new kid", i)
		}
		for _, nd := range c.nodes {
			for !slices.Contains(jwksKids(t, nd), kid) {
				time.Sleep(time.Millisecond)
			}
		}
		// The JWKS are watched while the revoke call runs: the key may be
		// gone everywhere before the call answers (a fresh next key is
		// generated after the revocation committed).
		start := time.Now()
		answer := make(chan time.Time, 1)
		go func() {
			defer func() { answer <- time.Now() }() // also after a t.Fatal in admin
			status, body := c.admin(t, a, "POST", "/keysets/main/keys/"+url.PathEscape(kid)+"/revoke", `{}`)
			if status != 200 {
				t.Errorf("revoke %d: %d %v", i, status, body)
			}
		}()
		for _, nd := range c.nodes {
			for slices.Contains(jwksKids(t, nd), kid) {
				if time.Since(start) > 20*time.Second {
					t.Fatalf("revoked kid still on %s after 20 s", nd.id)
				}
				time.Sleep(time.Millisecond)
			}
		}
		gone := time.Now()
		answered := <-answer
		if t.Failed() {
			t.FailNow()
		}
		out, after = append(out, gone.Sub(start)), append(after, max(0, gone.Sub(answered)))
		calls = append(calls, answered.Sub(start))
	}
	return out, calls, after
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// TestClusterFailover measures the scheduler leader's fail-over again and
// again (bench/cluster/run.sh; FLOWD_BENCH_CLUSTER=1): a per-second
// schedule on three nodes, the node that fires it SIGKILLed and replaced
// by a fresh node, BENCH_FAILOVERS times. Each sample is the time from the
// kill until another node says it fires the schedules, and until a tick
// scheduled after the kill ran there (up to a second later: the schedule
// is per second). It fails only on a duplicate tick or a set-up error;
// the target (session TTL 5 s + 1 s) is for the report.
func TestClusterFailover(t *testing.T) {
	if os.Getenv("FLOWD_BENCH_CLUSTER") != "1" {
		t.Skip("a benchmark: set FLOWD_BENCH_CLUSTER=1 (bench/cluster/run.sh)")
	}
	kills := envInt("BENCH_FAILOVERS", 5)
	bin := flowdBinary(t)
	c := startCluster(t, 3, map[string]string{"FLOWD_SNAPSHOTS_PER_SECOND": "1000"})
	c.deployTick(t)
	leads := func(n *node) int {
		b, _ := os.ReadFile(n.log)
		return strings.Count(string(b), "this node fires the schedules")
	}
	var elected, ticked []time.Duration
	for i := range kills {
		time.Sleep(3 * time.Second) // steady state: the leader ticks
		leader := c.schedulerLeader(t)
		c.mu.Lock()
		rest := slices.DeleteFunc(slices.Clone(c.live), func(n *node) bool { return n == leader })
		c.mu.Unlock()
		before := map[*node]int{}
		for _, n := range rest {
			before[n] = leads(n)
		}
		killed := time.Now()
		leader.Kill()
		c.drop(leader)
		var took time.Duration
		for took == 0 {
			for _, n := range rest {
				if leads(n) > before[n] {
					took = time.Since(killed)
				}
			}
			if time.Since(killed) > 30*time.Second {
				t.Fatalf("kill %d: no node took the scheduler role in 30 s", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
		waitFor(t, "a tick after the kill", func() bool {
			for _, fors := range c.scheduledFor(t, rest) {
				for _, f := range fors {
					if f.After(killed) {
						return true
					}
				}
			}
			return false
		})
		tick := time.Since(killed)
		elected, ticked = append(elected, took), append(ticked, tick)
		t.Logf("| fail-over %d | %s killed | role taken after %s | first tick after %s |", i+1, leader.id, ms(took), ms(tick))
		checkOnce(t, c.scheduledFor(t, rest))
		n := c.startNode(t, bin, fmt.Sprintf("node-r%d", i+1))
		c.mu.Lock()
		c.nodes, c.live = append(c.nodes, n), append(c.live, n)
		c.mu.Unlock()
	}
	t.Logf("| scheduler fail-over (%d kills, session TTL 5 s) | role taken: %s | first tick: %s | max %s / %s |",
		kills, list(elected), list(ticked), ms(slices.Max(elected)), ms(slices.Max(ticked)))
}

func list(d []time.Duration) string {
	var s []string
	for _, x := range d {
		s = append(s, fmt.Sprintf("%.2f", x.Seconds()))
	}
	return strings.Join(s, ", ") + " s"
}
