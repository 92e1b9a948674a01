// Package etcdtest gives tests an etcd server: the one named by
// FLOWD_TEST_ETCD (CI starts Debian's etcd-server and exports it), or a
// single member started from the etcd binary on free loopback ports, with a
// temporary data directory, stopped by PID when the test ends.
//
// Without either, a test skips locally and fails when CI=true: CI must not
// go green by skipping.
package etcdtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// EnvEndpoint names a running etcd for the tests (a client URL).
const EnvEndpoint = "FLOWD_TEST_ETCD"

// Endpoint returns the client URL of an etcd server for t: FLOWD_TEST_ETCD
// when set, else a server of its own (see Start). Without FLOWD_TEST_ETCD
// every call starts a new server: call it once per test and share the URL.
func Endpoint(t testing.TB) string {
	t.Helper()
	if ep := os.Getenv(EnvEndpoint); ep != "" {
		if !strings.Contains(ep, "://") {
			ep = "http://" + ep
		}
		return ep
	}
	return Start(t).Endpoint
}

// Binary returns the path of the etcd binary, or "" if there is none.
func Binary() string {
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd"
	}
	return ""
}

// Unavailable skips t, or fails it when CI=true.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("no etcd for this test under CI=true: %s (set %s or install etcd-server)", why, EnvEndpoint)
	}
	t.Skipf("no etcd: %s (set %s or install etcd-server)", why, EnvEndpoint)
}

// Server is an etcd process owned by one test.
type Server struct {
	Endpoint string
	cmd      *exec.Cmd
	log      string
	http     *http.Client
}

// Start runs a single-member etcd from the binary on free loopback ports.
// The process is SIGCONTed (in case a test stopped it) and killed by PID in
// t's cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartCluster(t, 1)[0]
}

// StartCluster runs an n-member etcd cluster from the binary on free
// loopback ports, each member with its own temporary data directory, and
// waits until every member is healthy. Cleanup kills them by PID.
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	return start(t, n, nil)
}

func start(t testing.TB, n int, tf *TLSFiles) []*Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		Unavailable(t, "etcd binary not found")
	}
	type member struct{ name, client, peer string }
	members := make([]member, n)
	var initial []string
	scheme := "http://"
	hc := &http.Client{Timeout: time.Second}
	if tf != nil {
		scheme = "https://"
		hc = tf.httpClient(t)
	}
	for i := range members {
		m := member{
			name:   "m" + strconv.Itoa(i),
			client: scheme + "127.0.0.1:" + strconv.Itoa(freePort(t)),
			peer:   "http://127.0.0.1:" + strconv.Itoa(freePort(t)),
		}
		members[i] = m
		initial = append(initial, m.name+"="+m.peer)
	}
	servers := make([]*Server, n)
	exits := make([]chan struct{}, n)
	for i, m := range members {
		dir := t.TempDir()
		logPath := filepath.Join(dir, "etcd.log")
		logf, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		args := []string{
			"--name", m.name, "--data-dir", filepath.Join(dir, "data"),
			"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
			"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-token", "flowd-test",
			// The leader election timeout bounds how long a stopped and
			// resumed member takes to lead again; small keeps tests short.
			"--heartbeat-interval", "50", "--election-timeout", "500",
		}
		if tf != nil {
			args = append(args, "--cert-file", tf.serverCert, "--key-file", tf.serverKey,
				"--trusted-ca-file", tf.CA, "--client-cert-auth")
		}
		cmd := exec.Command(bin, args...)
		// etcd 3.4 starts on amd64 and ppc64le only, unless told it runs
		// on an architecture it does not support (Debian's arm64 package).
		cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH)
		cmd.Stdout, cmd.Stderr = logf, logf
		err = cmd.Start()
		logf.Close()
		if err != nil {
			t.Fatalf("start etcd: %v", err)
		}
		s := &Server{Endpoint: m.client, cmd: cmd, log: logPath, http: hc}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGCONT)
			_ = cmd.Process.Kill()
			<-exited
		})
		servers[i], exits[i] = s, exited
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, s := range servers {
		for !s.healthy() {
			select {
			case <-exits[i]:
				t.Fatalf("etcd %s exited at start:\n%s", members[i].name, s.Log())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("etcd %s not healthy after 30s:\n%s", members[i].name, s.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return servers
}

// Kill ends the process at once (SIGKILL), as a crash would.
func (s *Server) Kill() error { return s.cmd.Process.Kill() }

// PID is the etcd process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop freezes the process (SIGSTOP): its sockets stay open but nothing
// answers, as with a member cut off by a partition. It returns once the
// kernel reports the process stopped: a signal is delivered
// asynchronously, and on a busy machine a request sent right after kill(2)
// could still be answered.
func (s *Server) Stop() error {
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	stat := fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		b, err := os.ReadFile(stat)
		if err != nil {
			return nil // no procfs: the signal is all we can do
		}
		// The state is the field after the parenthesized command name.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
			return nil
		}
	}
	return fmt.Errorf("etcd pid %d not stopped 5 s after SIGSTOP", s.cmd.Process.Pid)
}

// Continue resumes a stopped process (SIGCONT).
func (s *Server) Continue() error { return s.cmd.Process.Signal(syscall.SIGCONT) }

// WaitHealthy polls /health until the member answers healthy or ctx ends.
func (s *Server) WaitHealthy(ctx context.Context) error {
	for !s.healthy() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd at %s not healthy: %w", s.Endpoint, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// Log returns the tail of the server's log, for failure messages.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func (s *Server) healthy() bool {
	resp, err := s.http.Get(s.Endpoint + "/health")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("listener address %v is not TCP", l.Addr())
	}
	return addr.Port
}
