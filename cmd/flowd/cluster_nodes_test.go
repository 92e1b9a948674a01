package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
)

// Node-side cluster behaviour with the real binary: what one node changes,
// the others follow from the store's feed, without a restart.

// admin calls node n's admin API and decodes the JSON answer.
func (c *cluster) admin(t *testing.T, n *node, method, path string, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, "http://"+balancerHost+"/admin/api"+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.vars["FLOWD_ADMIN_TOKEN"])
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := via(n).Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, n.id, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if out == nil {
		out = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, out
}

// waitFor polls cond every 10 ms until it holds (failing the test after
// 20 s) and returns how long it took: a measurement, not an assertion.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("%s: not after 20 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func echoFlow(id, path, answer string) string {
	return fmt.Sprintf(`{"schema":"flowd/v1","id":%q,"name":%q,"nodes":[
 {"id":"in","type":"http.in","config":{"method":"GET","path":%q}},
 {"id":"out","type":"http.respond","config":{"body":%q}}],
 "wires":[{"from":"in","port":"out","to":"out"}]}`, id, id, path, `"`+answer+`"`)
}

// TestClusterDeployRotateRevoke: a deploy on node a is served by b and c;
// a rotation on a shows on b's JWKS and b verifies what a signs after it;
// a revocation on a leaves every node's JWKS, and no node signs with the
// revoked key.
func TestClusterDeployRotateRevoke(t *testing.T) {
	c := startCluster(t, 3, nil)
	p := c.provider(t)
	a, b := c.nodes[0], c.nodes[1]

	t.Run("deploy on a served by b and c", func(t *testing.T) {
		for v, answer := range []string{"first", "second"} {
			doc := echoFlow("probe", "/probe", answer)
			var status int
			var out map[string]any
			if v == 0 {
				status, out = c.admin(t, a, "POST", "/flows?deploy=true", doc)
			} else {
				if status, out = c.admin(t, a, "PUT", "/flows/probe", doc); status == 200 {
					status, out = c.admin(t, a, "POST", "/flows/probe/deploy", "")
				}
			}
			if status/100 != 2 {
				t.Fatalf("deploy %d on %s: %d %v", v+1, a.id, status, out)
			}
			for _, n := range c.nodes[1:] {
				took := waitFor(t, "deploy served on "+n.id, func() bool {
					code, body := getVia(t, n, "/probe")
					return code == 200 && strings.TrimSpace(body) == `"`+answer+`"`
				})
				t.Logf("version %d served on %s %v after the deploy answered", v+1, n.id, took)
			}
		}
	})

	t.Run("rotate on a: b publishes the new kid and verifies a's tokens", func(t *testing.T) {
		before := jwksKids(t, b)
		status, out := c.admin(t, a, "POST", "/keysets/main/rotate", `{}`)
		if status != 200 {
			t.Fatalf("rotate on %s: %d %v", a.id, status, out)
		}
		after := jwksKids(t, a)
		var fresh []string
		for _, k := range after {
			if !slices.Contains(before, k) {
				fresh = append(fresh, k)
			}
		}
		if len(fresh) == 0 {
			t.Fatalf("rotation published no new kid on %s: before %v after %v", a.id, before, after)
		}
		for _, n := range c.nodes[1:] {
			took := waitFor(t, "new kid on "+n.id, func() bool {
				kids := jwksKids(t, n)
				for _, k := range fresh {
					if !slices.Contains(kids, k) {
						return false
					}
				}
				return true
			})
			t.Logf("new kid %v in %s's JWKS %v after the rotation answered", fresh, n.id, took)
		}
		at, kid := clientToken(t, a)
		for _, n := range c.nodes {
			if code, body := apiHello(t, n, at); code != 200 {
				t.Errorf("/api/hello on %s with %s's token (kid %s): %d %s", n.id, a.id, kid, code, body)
			}
		}
	})

	t.Run("revoke on a: gone from every JWKS, no node signs with it", func(t *testing.T) {
		at, kid := clientToken(t, a)
		status, out := c.admin(t, a, "POST", "/keysets/main/keys/"+url.PathEscape(kid)+"/revoke", `{}`)
		if status != 200 {
			t.Fatalf("revoke %s on %s: %d %v", kid, a.id, status, out)
		}
		for _, n := range c.nodes {
			took := waitFor(t, "revoked kid gone on "+n.id, func() bool { return !slices.Contains(jwksKids(t, n), kid) })
			t.Logf("revoked kid gone from %s's JWKS %v after the revoke answered", n.id, took)
			if code, _ := apiHello(t, n, at); code != 401 {
				t.Errorf("/api/hello on %s with a token of the revoked key: %d, want 401", n.id, code)
			}
			if status, body := tokenRaw(t, n); status == 200 {
				if _, k := jwtKid(t, body); k == kid {
					t.Errorf("%s still signs with the revoked key %s", n.id, kid)
				}
			}
		}
	})
	_ = p
}

// deployTick deploys flow tick, which logs every second, through the
// first node.
func (c *cluster) deployTick(t *testing.T) {
	t.Helper()
	doc := `{"schema":"flowd/v1","id":"tick","name":"tick","nodes":[
 {"id":"cron","type":"schedule.cron","config":{"spec":"@every 1s"}},
 {"id":"log","type":"core.log","config":{"message":"\"tick\""}}],
 "wires":[{"from":"cron","port":"out","to":"log"}]}`
	if status, out := c.admin(t, c.nodes[0], "POST", "/flows?deploy=true", doc); status/100 != 2 {
		t.Fatalf("deploy: %d %v", status, out)
	}
}

// TestClusterSchedule: a per-second schedule on three nodes fires once
// per tick (no scheduled_for twice across the nodes' runs); after the
// scheduler leader is SIGKILLed, another node fires the following ticks.
func TestClusterSchedule(t *testing.T) {
	c := startCluster(t, 3, map[string]string{"FLOWD_SNAPSHOTS_PER_SECOND": "1000"})
	c.deployTick(t)
	time.Sleep(10 * time.Second)
	ticks := c.scheduledFor(t, c.nodes)
	leader := c.schedulerLeader(t)
	t.Logf("10 s: %d ticks, leader %s", countTicks(ticks), leader.id)
	if n := countTicks(ticks); n < 5 {
		t.Fatalf("a per-second schedule fired %d times in 10 s: %v", n, ticks)
	}
	checkOnce(t, ticks)

	killed := time.Now()
	leader.Kill()
	c.drop(leader)
	var rest []*node
	for _, n := range c.nodes {
		if n != leader {
			rest = append(rest, n)
		}
	}
	took := waitFor(t, "a tick on another node after the leader was killed", func() bool {
		for _, fors := range c.scheduledFor(t, rest) {
			for _, f := range fors {
				if f.After(killed) {
					return true
				}
			}
		}
		return false
	})
	t.Logf("cron moved %v after SIGKILL of %s (session TTL 5 s)", took, leader.id)
	time.Sleep(3 * time.Second)
	// The dead leader's runs are lost with its runs.db; what the others
	// fired is once per tick.
	checkOnce(t, c.scheduledFor(t, rest))
}

// scheduledFor reads the runs of flow "tick" of the given nodes: node id
// -> the scheduled_for of each run. One node's runs list merges every
// live node's runs (each naming its node), so it asks the first node and
// requires every given node to have answered.
func (c *cluster) scheduledFor(t *testing.T, nodes []*node) map[string][]time.Time {
	t.Helper()
	out := map[string][]time.Time{}
	via := nodes[0]
	status, body := c.admin(t, via, "GET", "/flows/tick/runs?limit=1000", "")
	if status != 200 {
		t.Fatalf("runs via %s: %d %v", via.id, status, body)
	}
	raw, _ := json.Marshal(body["nodes"])
	var answered []struct {
		Node  string `json:"node"`
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &answered); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, n := range nodes {
		want[n.id] = true
	}
	for _, a := range answered {
		if want[a.Node] && !a.OK {
			t.Fatalf("runs via %s: node %s did not answer: %s", via.id, a.Node, a.Error)
		}
		delete(want, a.Node)
	}
	if len(want) > 0 {
		t.Fatalf("runs via %s: nodes %v not in the merged list %s", via.id, want, raw)
	}
	raw, _ = json.Marshal(body["runs"])
	var runs []struct {
		Node  string `json:"node"`
		Steps []struct {
			Msg struct {
				Schedule struct {
					ScheduledFor time.Time `json:"scheduled_for"`
				} `json:"schedule"`
			} `json:"msg"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(raw, &runs); err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if len(r.Steps) == 0 || r.Steps[0].Msg.Schedule.ScheduledFor.IsZero() || r.Node == "" {
			t.Fatalf("a run on %s without its node or msg.schedule.scheduled_for: %s", r.Node, raw)
		}
		if slices.ContainsFunc(nodes, func(n *node) bool { return n.id == r.Node }) {
			out[r.Node] = append(out[r.Node], r.Steps[0].Msg.Schedule.ScheduledFor)
		}
	}
	return out
}

func countTicks(m map[string][]time.Time) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}

// checkOnce fails t if a tick ran twice anywhere.
func checkOnce(t *testing.T, m map[string][]time.Time) {
	t.Helper()
	seen := map[time.Time]string{}
	for node, fors := range m {
		for _, f := range fors {
			if other, ok := seen[f]; ok {
				t.Errorf("tick %s ran on %s and on %s", f.Format(time.RFC3339Nano), other, node)
			}
			seen[f] = node
		}
	}
}

// schedulerLeader is the live node whose log last says it fires the
// schedules.
func (c *cluster) schedulerLeader(t *testing.T) *node {
	t.Helper()
	var best *node
	var bestAt string
	for _, n := range c.nodes {
		b, _ := os.ReadFile(n.log)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "this node fires the schedules") {
				if at := strings.Fields(line)[0]; at > bestAt {
					best, bestAt = n, at
				}
			}
		}
	}
	if best == nil {
		t.Fatal("no node says it fires the schedules")
	}
	return best
}

func jwksKids(t *testing.T, n *node) []string {
	t.Helper()
	code, body := getVia(t, n, "/.well-known/jwks.json")
	if code != 200 {
		t.Fatalf("JWKS on %s: %d %s", n.id, code, body)
	}
	var set gojose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	return kids
}

// tokenRaw asks node n for a client_credentials token of client "svc".
func tokenRaw(t *testing.T, n *node) (int, map[string]any) {
	t.Helper()
	s := &server{base: "http://" + balancerHost, client: via(n)}
	status, _, body := postForm(t, s, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "svc", "svc-secret-0123456789")
	return status, body
}

func clientToken(t *testing.T, n *node) (token, kid string) {
	t.Helper()
	status, body := tokenRaw(t, n)
	if status != 200 {
		t.Fatalf("client_credentials on %s: %d %v", n.id, status, body)
	}
	return jwtKid(t, body)
}

func jwtKid(t *testing.T, body map[string]any) (token, kid string) {
	t.Helper()
	at, _ := body["access_token"].(string)
	var hdr struct {
		Kid string `json:"kid"`
	}
	part, _, _ := strings.Cut(at, ".")
	raw, err := decodeSeg(part)
	if err != nil || json.Unmarshal(raw, &hdr) != nil {
		t.Fatalf("access token header: %v %q", err, part)
	}
	return at, hdr.Kid
}

// bearerVia GETs path at the balancer's host through node n with the
// access token at: status, headers and body.
func bearerVia(t *testing.T, n *node, path, at string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+balancerHost+path, nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := via(n).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func apiHello(t *testing.T, n *node, at string) (int, string) {
	t.Helper()
	code, _, body := bearerVia(t, n, "/api/hello", at)
	return code, body
}

func decodeSeg(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// TestClusterAdminLimiterBehindBalancer: the admin login limiter counts
// per client address across the nodes, and behind a trusted balancer the
// client address is X-Forwarded-For's, not the balancer's. Wrong
// passwords from one client spread round-robin over three nodes are
// throttled once the cluster-wide count passes the free failures (5),
// although no node saw five; another client behind the same balancer,
// and the balancer's own address, are not held up.
func TestClusterAdminLimiterBehindBalancer(t *testing.T) {
	c := startCluster(t, 3, map[string]string{
		"FLOWD_ADMIN_PASSWORD":  "the right admin password 1234",
		"FLOWD_TRUSTED_PROXIES": "127.0.0.1",
	})
	login := func(client, password string) int {
		t.Helper()
		form := url.Values{"password": {password}}
		req, _ := http.NewRequestWithContext(t.Context(), "POST", "http://"+balancerHost+"/admin/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if client != "" {
			req.Header.Set("X-Forwarded-For", client)
		}
		resp, err := c.lb.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	const attacker, other = "203.0.113.66", "198.51.100.23"
	for i := range 5 {
		if code := login("1.2.3.4, "+attacker, fmt.Sprintf("guess %d", i)); code != 401 {
			t.Fatalf("guess %d: %d, want 401", i+1, code)
		}
	}
	// Five failures, at most two on any node: the next attempts (a node's
	// feed may trail by a moment) are refused before the password is
	// checked. With per-node counts it would take fifteen; within the
	// three tries below no node would reach five.
	throttled := false
	for i := range 3 {
		if code := login(attacker, "still guessing"); code == 429 {
			throttled = true
			break
		} else if code != 401 {
			t.Fatalf("attempt %d after five failures: %d", 6+i, code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !throttled {
		t.Fatal("five failures spread over three nodes did not throttle the client")
	}
	// The first backoff is 1 s, shorter than three requests may take on a
	// loaded machine: wait out each backoff and fail again (2 s, 4 s, 8 s)
	// so the checks below run well inside one.
	for range 3 {
		deadline := time.Now().Add(20 * time.Second)
		for {
			code := login(attacker, "still guessing")
			if code == 401 {
				break
			}
			if code != 429 || time.Now().After(deadline) {
				t.Fatalf("waiting out the backoff: %d", code)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	// Every node's feed has brought the last failure before the checks
	// (the backoff is now 8 s).
	time.Sleep(time.Second)
	// On every node, even with the right password.
	for _, n := range c.nodes {
		if code := login(attacker, "the right admin password 1234"); code != 429 {
			t.Errorf("the throttled client with the right password (next node after %s): %d, want 429", n.id, code)
		}
	}
	if code := login(other, "wrong again"); code != 401 {
		t.Errorf("another client behind the balancer: %d, want 401 (not throttled)", code)
	}
	if code := login("", "wrong for the balancer"); code != 401 {
		t.Errorf("the balancer's own address: %d, want 401 (not throttled)", code)
	}
}
