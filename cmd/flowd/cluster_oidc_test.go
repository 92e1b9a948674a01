package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/store/etcd/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestClusterCodeRedeemedOnce: one authorization code sent 30 times at
// once through the balancer (three nodes): exactly one exchange succeeds
// (the exchange is one store transaction: code spent, grant created,
// session and consent linked), the 29 others are invalid_grant, and the
// replays revoke the grant on every node (RFC 6749 4.1.2): the winner's
// access token fails at userinfo, its refresh token is refused.
func TestClusterCodeRedeemedOnce(t *testing.T) {
	c := startCluster(t, 3, nil)
	p := c.provider(t)
	code, verifier := c.signInCode(t, p)
	type answer struct {
		status int
		body   string
	}
	answers := make([]answer, 30)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range answers {
		wg.Go(func() {
			<-start
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}, "code_verifier": {verifier}}
			req, _ := http.NewRequestWithContext(t.Context(), "POST", p.issuer+"/oauth/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("web", rpSecret)
			resp, err := c.lb.Do(req)
			if err != nil {
				answers[i] = answer{0, err.Error()}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answers[i] = answer{resp.StatusCode, string(b)}
		})
	}
	close(start)
	wg.Wait()
	var at, rt string
	wins, refusals := 0, 0
	for i, a := range answers {
		switch {
		case a.status == 200:
			wins++
			at = between(a.body, `"access_token":"`, `"`)
			rt = between(a.body, `"refresh_token":"`, `"`)
		case a.status == 400 && strings.Contains(a.body, `"invalid_grant"`):
			refusals++
		default:
			t.Errorf("exchange %d: %d %s (want 200 once, else 400 invalid_grant)", i, a.status, a.body)
		}
	}
	t.Logf("%d of 30 concurrent exchanges succeeded, %d refused", wins, refusals)
	if wins != 1 || refusals != 29 {
		t.Fatalf("%d of 30 concurrent exchanges of one code succeeded and %d were refused, want exactly 1 and 29", wins, refusals)
	}
	// The replays ended the grant: its access token is refused on every node.
	for _, n := range c.nodes {
		if status, www := userinfoVia(t, n, at); status != 401 || !strings.Contains(www, "grant_revoked") {
			t.Errorf("userinfo on %s after the replays: %d %q, want 401 grant_revoked", n.id, status, www)
		}
	}
	if rt == "" {
		t.Fatal("the winning exchange carried no refresh token")
	}
	status, body := tokenVia(t, c.nodes[0], refreshForm(rt))
	wantOAuthError(t, status, body, 400, "invalid_grant")
}

// TestClusterRefreshReuse: a refresh token chain rotated on node a and b;
// the stale first token presented on node c revokes the grant, and every
// node then refuses the newest refresh token and the access tokens.
func TestClusterRefreshReuse(t *testing.T) {
	c := startCluster(t, 3, nil)
	p := c.provider(t)
	code, verifier := c.signInCode(t, p)
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	status, body := tokenVia(t, a, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}, "code_verifier": {verifier}})
	if status != 200 {
		t.Fatalf("exchange on %s: %d %v", a.id, status, body)
	}
	rt1 := body["refresh_token"].(string)
	status, body = tokenVia(t, a, refreshForm(rt1))
	if status != 200 {
		t.Fatalf("refresh on %s: %d %v", a.id, status, body)
	}
	rt2, at2 := body["refresh_token"].(string), body["access_token"].(string)
	status, body = tokenVia(t, b, refreshForm(rt2))
	if status != 200 {
		t.Fatalf("refresh on %s: %d %v", b.id, status, body)
	}
	rt3 := body["refresh_token"].(string)
	// The stolen first token comes back on a third node.
	status, body = tokenVia(t, cc, refreshForm(rt1))
	wantOAuthError(t, status, body, 400, "invalid_grant")
	for _, n := range c.nodes {
		status, body := tokenVia(t, n, refreshForm(rt3))
		if status != 400 || body["error"] != "invalid_grant" {
			t.Errorf("newest refresh token on %s after the reuse: %d %v, want 400 invalid_grant", n.id, status, body)
		}
		if status, www := userinfoVia(t, n, at2); status != 401 || !strings.Contains(www, "grant_revoked") {
			t.Errorf("userinfo on %s after the reuse: %d %q, want 401 grant_revoked", n.id, status, www)
		}
	}
}

// TestClusterEtcdLeaderKilled: refresh-token chains run through the
// balancer while the etcd leader is SIGKILLed. Clients retry a refresh
// that got no answer or a 5xx with the same token (the grace period makes
// that a retry, not a reuse). Afterwards every chain's last acknowledged
// refresh token still redeems, and none was refused: no acknowledged
// write was lost, and no lost answer was taken for a reuse.
func TestClusterEtcdLeaderKilled(t *testing.T) {
	c := startCluster(t, 3, nil)
	p := c.provider(t)
	const chains = 4
	type chain struct {
		rt       string
		acked    int
		retries  int
		refusals []string
	}
	cs := make([]*chain, chains)
	for i := range cs {
		code, verifier := c.signInCode(t, p)
		status, body := p.exchange(t, "web", rpSecret, code, webCB, verifier)
		if status != 200 {
			t.Fatalf("exchange: %d %v", status, body)
		}
		cs[i] = &chain{rt: body["refresh_token"].(string)}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, ch := range cs {
		wg.Go(func() {
			for ctx.Err() == nil {
				status, body, err := tokenLB(ctx, c, refreshForm(ch.rt))
				switch {
				case err != nil || status >= 500:
					ch.retries++
					time.Sleep(50 * time.Millisecond)
				case status == 200:
					ch.rt = body["refresh_token"].(string)
					ch.acked++
				default:
					ch.refusals = append(ch.refusals, fmt.Sprintf("%d %v", status, body))
					return
				}
			}
		})
	}
	time.Sleep(2 * time.Second)
	leader := c.etcdLeader(t)
	t.Logf("killing etcd leader %s", leader.Endpoint)
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, ch := range cs {
		t.Logf("chain %d: %d refreshes acknowledged, %d retried", i, ch.acked, ch.retries)
		if len(ch.refusals) > 0 {
			t.Errorf("chain %d: refused during the load: %v", i, ch.refusals)
			continue
		}
		if ch.acked == 0 {
			t.Errorf("chain %d: no refresh acknowledged in 8 s", i)
			continue
		}
		// The last acknowledged token redeems, and its successor too: the
		// grant is alive and the chain intact.
		rt := ch.rt
		for step := range 2 {
			var status int
			var body map[string]any
			deadline := time.Now().Add(10 * time.Second)
			for {
				var err error
				status, body, err = tokenLB(t.Context(), c, refreshForm(rt))
				if err == nil && status < 500 || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if status != 200 {
				t.Errorf("chain %d step %d: the last acknowledged refresh token: %d %v", i, step, status, body)
				break
			}
			rt = body["refresh_token"].(string)
		}
	}
}

// TestClusterEtcdLeaderKilledSignIns: full sign-ins (authorize, the
// sign-in form, the code exchange) run through the balancer while the
// etcd leader is SIGKILLed; a client whose sign-in failed anywhere starts
// a new one (it never replays a code). Afterwards every acknowledged
// sign-in holds: its refresh token redeems, and its code, spent, is
// refused as a replay, which revokes the grant (the refresh token just
// issued is refused). No acknowledged write was lost, none was applied
// twice.
func TestClusterEtcdLeaderKilledSignIns(t *testing.T) {
	c := startCluster(t, 3, nil)
	c.provider(t)
	users := c.addUsers(t, 4)
	type signIn struct{ code, rt string }
	var mu sync.Mutex
	var acked []signIn
	failed := 0
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, user := range users {
		wg.Go(func() {
			// Below the 100 sessions a user keeps: none is signed out.
			for n := 0; ctx.Err() == nil && n < 90; n++ {
				code, rt, err := c.signInOnce(ctx, c.lb, user)
				mu.Lock()
				if err == nil {
					acked = append(acked, signIn{code, rt})
				} else if ctx.Err() == nil {
					failed++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(3 * time.Second)
	leader := c.etcdLeader(t)
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	t.Logf("killing etcd leader %s after %d sign-ins", leader.Endpoint, before)
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	t.Logf("%d sign-ins acknowledged (%d after the kill), %d failed and started again", len(acked), len(acked)-before, failed)
	if len(acked) <= before {
		t.Fatalf("no sign-in acknowledged after the etcd leader was killed (%d failed)", failed)
	}
	// until retries a request the store could not answer yet (the cluster
	// may still be settling); any other answer is final.
	until := func(form url.Values) (int, map[string]any) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			status, body, err := tokenLB(t.Context(), c, form)
			if err == nil && status < 500 || time.Now().After(deadline) {
				return status, body
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i, s := range acked {
		status, body := until(refreshForm(s.rt))
		if status != 200 {
			t.Errorf("sign-in %d: its acknowledged refresh token: %d %v, want 200", i, status, body)
			continue
		}
		next, _ := body["refresh_token"].(string)
		status, body = until(url.Values{"grant_type": {"authorization_code"}, "code": {s.code}, "redirect_uri": {webCB}})
		if status != 400 || body["error"] != "invalid_grant" {
			t.Errorf("sign-in %d: its spent code again: %d %v, want 400 invalid_grant", i, status, body)
		}
		if status, body := until(refreshForm(next)); status != 400 || body["error"] != "invalid_grant" {
			t.Errorf("sign-in %d: refresh after the code replay: %d %v, want 400 invalid_grant (grant revoked)", i, status, body)
		}
	}
}

// etcdLeader asks the members which one leads.
func (c *cluster) etcdLeader(t *testing.T) *etcdtest.Server {
	t.Helper()
	var eps []string
	for _, s := range c.etcd {
		eps = append(eps, s.Endpoint)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for _, s := range c.etcd {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		st, err := cli.Status(ctx, s.Endpoint)
		cancel()
		if err == nil && st.Leader == st.Header.MemberId {
			return s
		}
	}
	t.Fatal("no etcd member says it leads")
	return nil
}

// tokenVia posts to node n's token endpoint as client "web".
func tokenVia(t *testing.T, n *node, form url.Values) (int, map[string]any) {
	t.Helper()
	s := &server{base: "http://" + balancerHost, client: via(n)}
	status, _, body := postForm(t, s, "/oauth/token", form, "web", rpSecret)
	return status, body
}

// tokenLB posts to the token endpoint through the balancer as client
// "web" and reports transport errors instead of failing the test.
func tokenLB(ctx context.Context, c *cluster, form url.Values) (int, map[string]any, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+balancerHost+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("web", rpSecret)
	resp, err := c.lb.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := jsonUnmarshal(raw, &body); err != nil {
		return resp.StatusCode, map[string]any{"raw": string(raw)}, nil
	}
	return resp.StatusCode, body, nil
}

func userinfoVia(t *testing.T, n *node, at string) (int, string) {
	t.Helper()
	code, hdr, _ := bearerVia(t, n, "/oauth/userinfo", at)
	return code, hdr.Get("WWW-Authenticate")
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	j := strings.Index(s, end)
	if j < 0 {
		return ""
	}
	return s[:j]
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// TestClusterQuorumLost: two of three etcd members frozen (SIGSTOP).
// Writing endpoints answer 503 with Retry-After within the store's
// deadline (never a hang, never a 200 that was not written), JWKS keeps
// answering from memory, /readyz says not ready; after SIGCONT everything
// recovers without restarting a node.
func TestClusterQuorumLost(t *testing.T) {
	c := startCluster(t, 3, nil)
	p := c.provider(t)
	code, verifier := c.signInCode(t, p)
	status, body := p.exchange(t, "web", rpSecret, code, webCB, verifier)
	if status != 200 {
		t.Fatalf("exchange: %d %v", status, body)
	}
	rt := body["refresh_token"].(string)
	// A flow that signs and touches the store no other way.
	signDoc := `{"schema":"flowd/v1","id":"signer","name":"signer","nodes":[
 {"id":"in","type":"http.in","config":{"method":"GET","path":"/sign"}},
 {"id":"sign","type":"jose.sign","config":{"keyset":"main","alg":"RS256","subject":"\"probe\"","ttl":"1m"}},
 {"id":"out","type":"http.respond","config":{"body":"msg.token"}}],
 "wires":[{"from":"in","port":"out","to":"sign"},{"from":"sign","port":"out","to":"out"}]}`
	if status, out := c.admin(t, c.nodes[0], "POST", "/flows?deploy=true", signDoc); status/100 != 2 {
		t.Fatalf("deploy the signer: %d %v", status, out)
	}
	for _, n := range c.nodes {
		if code, body := getVia(t, n, "/sign"); code != 200 {
			t.Fatalf("/sign on %s: %d %s", n.id, code, body)
		}
	}
	for _, s := range c.etcd[1:] {
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.nodes {
		// A refresh writes the grant: refused as unavailable, not failed.
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+balancerHost+"/oauth/token", strings.NewReader(refreshForm(rt).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("web", rpSecret)
		resp, err := via(n).Do(req)
		if err != nil {
			cancel()
			t.Fatalf("refresh on %s with quorum lost: %v (want a 503 within the store deadline)", n.id, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("refresh on %s with quorum lost: %d Retry-After %q %s, want 503 with Retry-After", n.id, resp.StatusCode, resp.Header.Get("Retry-After"), raw)
		}
		if code, jwks := getVia(t, n, "/.well-known/jwks.json"); code != 200 || !strings.Contains(jwks, `"kid"`) {
			t.Errorf("JWKS on %s with quorum lost: %d %s", n.id, code, jwks)
		}
		if code, ready := waitReady(t, n, 503); code != 503 {
			t.Errorf("/readyz on %s with quorum lost: %d %s, want 503", n.id, code, ready)
		}
	}
	// Past maxKeyStaleness without a word from the feed, no node signs:
	// it may have missed a revocation. 503, like any store outage.
	for _, n := range c.nodes {
		var code int
		var body string
		waitFor(t, "signing stopped on "+n.id, func() bool {
			code, body = getVia(t, n, "/sign")
			return code != 200
		})
		if code != 503 || !strings.Contains(body, "temporarily_unavailable") {
			t.Errorf("/sign on %s with its feed silent: %d %s, want 503 temporarily_unavailable", n.id, code, body)
		}
		if !strings.Contains(n.Log(), "signing stopped on this node") {
			t.Errorf("%s's log does not say why it stopped signing", n.id)
		}
		// "stale" (signing stopped) or "failing" (the keys cannot be read).
		if _, ready := getVia(t, n, "/readyz"); strings.Contains(ready, `"keys":"ok"`) {
			t.Errorf("/readyz on %s with signing stopped: %s, want keys not ok", n.id, ready)
		}
	}
	for _, s := range c.etcd[1:] {
		if err := s.Continue(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.nodes {
		if code, ready := waitReady(t, n, 200); code != 200 {
			t.Errorf("/readyz on %s after SIGCONT: %d %s, want 200", n.id, code, ready)
		}
	}
	for _, n := range c.nodes {
		if code, body := getVia(t, n, "/sign"); code != 200 {
			t.Errorf("/sign on %s after recovery: %d %s", n.id, code, body)
		}
	}
	// The refresh token refused meanwhile was not spent: it still works,
	// on every node in turn.
	for _, n := range c.nodes {
		status, body := tokenVia(t, n, refreshForm(rt))
		if status != 200 {
			t.Fatalf("refresh on %s after recovery: %d %v", n.id, status, body)
		}
		rt = body["refresh_token"].(string)
	}
}

func getVia(t *testing.T, n *node, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+balancerHost+path, nil)
	resp, err := via(n).Do(req)
	if err != nil {
		t.Fatalf("GET %s on %s: %v", path, n.id, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitReady polls n's /readyz until it answers want (30 s at most) and
// returns the last answer.
func waitReady(t *testing.T, n *node, want int) (int, string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := getVia(t, n, "/readyz")
		if code == want || time.Now().After(deadline) {
			return code, body
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// signInOnce is one full sign-in of user at client "web" through client's
// transport (its own cookies): authorize, the sign-in form, the code
// exchange. It returns the code and the refresh token, or an error for
// any answer but the expected one (never failing the test: loads count
// errors).
//
// A user keeps at most 100 sessions (the oldest is signed out, its grants
// revoked): loads spread their sign-ins over users (addUsers).
func (c *cluster) signInOnce(ctx context.Context, client *http.Client, user string) (code, rt string, err error) {
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar, Transport: client.Transport, Timeout: client.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string, form url.Values, basic bool) (*http.Response, string, error) {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, "http://"+balancerHost+path, body)
		if err != nil {
			return nil, "", err
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if basic {
			req.SetBasicAuth("web", rpSecret)
		}
		resp, err := cl.Do(req)
		if err != nil {
			return nil, "", err
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(raw), err
	}
	verifier, challenge := pkcePair()
	resp, page, err := do("GET", "/oauth/authorize?"+authzParams("web", webCB, challenge).Encode(), nil, false)
	if err != nil {
		return "", "", err
	}
	form := url.Values{"username": {user}, "password": {adaPassword}}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if resp.StatusCode != 200 || form.Get("tx") == "" {
		return "", "", fmt.Errorf("authorize: %d", resp.StatusCode)
	}
	resp, _, err = do("POST", "/oauth/authorize", form, false)
	if err != nil {
		return "", "", err
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || loc == nil || loc.Query().Get("code") == "" {
		return "", "", fmt.Errorf("sign-in: %d", resp.StatusCode)
	}
	code = loc.Query().Get("code")
	resp, raw, err := do("POST", "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {webCB}, "code_verifier": {verifier}}, true)
	if err != nil {
		return code, "", err
	}
	rt = between(raw, `"refresh_token":"`, `"`)
	if resp.StatusCode != 200 || rt == "" {
		return code, "", fmt.Errorf("code exchange: %d %s", resp.StatusCode, raw)
	}
	return code, rt, nil
}

// addUsers adds users user0 ... user<n-1> (password adaPassword) and
// returns their names.
func (c *cluster) addUsers(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for i := range n {
		name := fmt.Sprintf("user%d", i)
		c.cli(t, c.nodes[0], "users", "add", "--username", name, "--password", adaPassword)
		out = append(out, name)
	}
	return out
}
