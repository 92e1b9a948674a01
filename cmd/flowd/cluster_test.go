package main

// Out-of-process cluster tests: the real flowd binary, three times, on a
// three-member etcd, all started by the test on free loopback ports and
// killed by PID in cleanup (also when a test fails or times out). A
// round-robin transport stands in for the load balancer: every request
// goes to the next node, whatever URL the client used.
//
// They need the etcd binary (Debian's etcd-server): without it they skip
// locally and fail under CI=true (etcdtest.Unavailable).

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flowd/flowd/store/etcd/etcdtest"
)

// balancerHost is the host name clients use for the cluster; the
// round-robin transport sends each request to a node instead.
const balancerHost = "lb.flowd.test"

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// flowdBinary builds cmd/flowd once per test binary.
func flowdBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flowd-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "flowd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// node is one flowd process.
type node struct {
	id   string
	data string
	addr string // host:port
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// Kill ends the process at once (SIGKILL).
func (n *node) Kill() { _ = n.cmd.Process.Kill(); <-n.done }

func (n *node) Log() string {
	b, _ := os.ReadFile(n.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// cluster is three flowd nodes on a three-member etcd.
type cluster struct {
	etcd  []*etcdtest.Server
	nodes []*node
	vars  map[string]string // environment every node and CLI call shares
	lb    *http.Client      // round-robin over the live nodes
	next  atomic.Uint64
	mu    sync.Mutex
	live  []*node
}

var clusterListenRE = regexp.MustCompile(`flowd listening on https?://(\S+)`)

// startCluster starts etcd (3 members) and n flowd nodes with the same
// master key, admin token and issuer. extra is added to every node's
// environment.
func startCluster(t *testing.T, n int, extra map[string]string) *cluster {
	t.Helper()
	return startNodes(t, n, extra, true)
}

// startNodes is startCluster; without etcd it starts the nodes on bbolt
// in their own data folders (the one-node baseline of the benchmark).
func startNodes(t *testing.T, n int, extra map[string]string, withEtcd bool) *cluster {
	t.Helper()
	if withEtcd && etcdtest.Binary() == "" {
		etcdtest.Unavailable(t, "the out-of-process cluster tests start their own etcd members")
	}
	bin := flowdBinary(t)
	c := &cluster{}
	var b [6]byte
	_, _ = rand.Read(b[:])
	tok := make([]byte, 32)
	_, _ = rand.Read(tok)
	c.vars = map[string]string{
		"FLOWD_MASTER_KEY":  newMasterKey(),
		"FLOWD_ADMIN_TOKEN": hex.EncodeToString(tok),
		"FLOWD_ISSUER":      "http://" + balancerHost,
		"FLOWD_LOG":         "info",
	}
	if withEtcd {
		c.etcd = etcdtest.StartCluster(t, 3)
		var eps []string
		for _, s := range c.etcd {
			eps = append(eps, strings.TrimPrefix(s.Endpoint, "http://"))
		}
		c.vars["FLOWD_STORE"] = "etcd://" + strings.Join(eps, ",") + "/flowd-test/cl-" + hex.EncodeToString(b[:])
	}
	for k, v := range extra {
		c.vars[k] = v
	}
	for i := range n {
		c.nodes = append(c.nodes, c.startNode(t, bin, fmt.Sprintf("node-%c", 'a'+i)))
	}
	c.live = append([]*node(nil), c.nodes...)
	c.lb = &http.Client{Timeout: 20 * time.Second, Transport: roundRobin{c}}
	return c
}

func (c *cluster) startNode(t *testing.T, bin, id string) *node {
	t.Helper()
	n := &node{id: id, data: t.TempDir(), done: make(chan struct{})}
	n.log = filepath.Join(n.data, "serve.log")
	logf, err := os.Create(n.log)
	if err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", n.data, "--node-id", id)
	n.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + n.data}
	for k, v := range c.vars {
		n.cmd.Env = append(n.cmd.Env, k+"="+v)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	n.cmd.Stdout, n.cmd.Stderr = pw, logf
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	logf.Close()
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		_ = n.cmd.Process.Signal(syscall.SIGCONT)
		_ = n.cmd.Process.Kill()
		<-n.done
		if t.Failed() {
			t.Logf("log of %s:\n%s", n.id, n.Log())
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			if m := clusterListenRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
		pr.Close()
	}()
	select {
	case n.addr = <-found:
	case <-n.done:
		t.Fatalf("%s exited at start:\n%s", id, n.Log())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start:\n%s", id, n.Log())
	}
	// Ready: the store answers, the feed is followed, keys are loaded.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + n.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 30s:\n%s", id, n.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return n
}

// drop takes n out of the balancer (it was killed).
func (c *cluster) drop(n *node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, l := range c.live {
		if l == n {
			c.live = append(c.live[:i], c.live[i+1:]...)
			return
		}
	}
}

func (c *cluster) pick() *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live[int(c.next.Add(1)-1)%len(c.live)]
}

// roundRobin sends each request to the next live node.
type roundRobin struct{ c *cluster }

func (rr roundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	n := rr.c.pick()
	out := req.Clone(req.Context())
	out.URL.Host = n.addr
	out.Host = balancerHost
	return http.DefaultTransport.RoundTrip(out)
}

// via returns a client that sends every request to node n.
func via(n *node) *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		out := req.Clone(req.Context())
		out.URL.Host = n.addr
		out.Host = balancerHost
		return http.DefaultTransport.RoundTrip(out)
	}), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// cli runs a CLI command against node n's admin API.
func (c *cluster) cli(t *testing.T, n *node, args ...string) string {
	t.Helper()
	vars := map[string]string{"FLOWD_DATA": n.data, "FLOWD_ADMIN_TOKEN": c.vars["FLOWD_ADMIN_TOKEN"],
		"FLOWD_MASTER_KEY": c.vars["FLOWD_MASTER_KEY"]}
	if st := c.vars["FLOWD_STORE"]; st != "" {
		vars["FLOWD_STORE"] = st
	}
	return mustCmd(t, vars, args...)
}

// provider returns the OpenID provider helpers aimed at the balancer,
// with the users and clients of the single-node tests.
func (c *cluster) provider(t *testing.T) *provider {
	t.Helper()
	a := c.nodes[0]
	c.cli(t, a, "users", "add", "--username", "ada", "--password", adaPassword, "--email", "ada@example.com")
	c.cli(t, a, "clients", "add", "--id", "web", "--first-party", "--secret", rpSecret, "--scopes", "openid profile email",
		"--redirect-uris", webCB, "--post-logout-redirect-uris", byeURI)
	c.cli(t, a, "clients", "add", "--id", "svc", "--secret", "svc-secret-0123456789", "--scopes", "read")
	s := &server{addr: balancerHost, base: "http://" + balancerHost, client: c.lb}
	return &provider{s: s, issuer: "http://" + balancerHost}
}

// lbBrowser is a browser (cookie jar, no redirects followed) behind the
// balancer.
func (c *cluster) lbBrowser() *browser {
	b := newBrowser(false)
	b.c.Transport = roundRobin{c}
	return b
}

// signInCode runs one sign-in through the balancer and returns a code and
// its PKCE verifier.
func (c *cluster) signInCode(t *testing.T, p *provider) (code, verifier string) {
	t.Helper()
	verifier, challenge := pkcePair()
	q := p.signIn(t, c.lbBrowser(), authzParams("web", webCB, challenge), "ada", adaPassword)
	if q.Get("code") == "" {
		t.Fatalf("no code in %v", q)
	}
	return q.Get("code"), verifier
}

func refreshForm(rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
}
