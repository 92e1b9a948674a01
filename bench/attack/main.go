// Command attack runs the three attacks of issue 10 against a live
// `flowd serve` on loopback and prints what each costs flowd: growth of
// its resident memory, growth of flowd.db, and the latency of GET /hello
// (the prebuilt hello flow, no token needed) measured while the attack
// runs. It is a benchmark, not a test: it prints numbers and the targets
// beside them, and fails only when it cannot set up.
//
//	go run ./bench/attack                      # builds ./cmd/flowd of this tree
//	go run ./bench/attack -flowd /tmp/flowd    # an already built binary
//	go run ./bench/attack -only a -serve-args "--max-conns-per-addr 0"
//
// The attacks (targets from the issue):
//
//	a  1000 connections send only the headers of POST /oauth/token with
//	   Content-Length: 1048576 and hold them open       (<= +64 MiB RSS)
//	b  64 concurrent wrong client secrets at /oauth/token while a correct
//	   client keeps asking for tokens                   (<= +256 MiB RSS, the
//	   correct client still gets its tokens)
//	c  10,000 unauthenticated GET /oauth/authorize with a valid client,
//	   redirect URI and long state/nonce                (flowd.db < +1 MiB)
//
// All traffic goes to 127.0.0.1 and every attack is bounded in count and
// time; flowd runs in a temporary data folder that is removed at the end.
// RSS is read from /proc/PID/status: VmRSS before and after, and VmHWM
// (reset through /proc/PID/clear_refs before each attack) as the peak.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "attack:", err)
		os.Exit(1)
	}
}

type config struct {
	bin       string
	serveArgs []string
	only      string
	conns     int           // attack a
	hold      time.Duration // attack a
	bad       int           // attack b: concurrent wrong secrets
	badFor    time.Duration // attack b
	authorize int           // attack c: requests
	workers   int           // attack c
}

func run() error {
	var c config
	var src, serveArgs string
	flag.StringVar(&c.bin, "flowd", "", "flowd binary to attack (default: build ./cmd/flowd of -src)")
	flag.StringVar(&src, "src", ".", "source tree to build flowd from when -flowd is not given")
	flag.StringVar(&serveArgs, "serve-args", "", "extra flags for flowd serve, space separated")
	flag.StringVar(&c.only, "only", "abc", "which attacks to run")
	flag.IntVar(&c.conns, "conns", 1000, "attack a: connections")
	flag.DurationVar(&c.hold, "hold", 20*time.Second, "attack a: how long the connections are held")
	flag.IntVar(&c.bad, "bad", 64, "attack b: concurrent wrong secrets")
	flag.DurationVar(&c.badFor, "bad-for", 15*time.Second, "attack b: duration")
	flag.IntVar(&c.authorize, "authorize", 10000, "attack c: requests")
	flag.IntVar(&c.workers, "workers", 4, "attack c: concurrent clients")
	flag.Parse()
	c.serveArgs = strings.Fields(serveArgs)
	raiseFileLimit()

	tmp, err := os.MkdirTemp("", "flowd-attack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if c.bin == "" {
		c.bin = filepath.Join(tmp, "flowd")
		build := exec.Command("go", "build", "-o", c.bin, "./cmd/flowd")
		build.Dir, build.Stdout, build.Stderr = src, os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build flowd: %w", err)
		}
	}
	fmt.Printf("flowd %s %s; each attack on a fresh flowd in its own data folder\n", c.bin, strings.Join(c.serveArgs, " "))
	fmt.Printf("latency probe: sequential GET /hello on one keep-alive connection, every 20 ms\n\n")
	attacks := []struct {
		key, name, target string
		run               func(*flowd, config) string
	}{
		{"a", fmt.Sprintf("a: %d connections announcing 1 MiB bodies", c.conns), "<= +64 MiB RSS", attackBodies},
		{"b", fmt.Sprintf("b: %d concurrent wrong client secrets", c.bad), "<= +256 MiB RSS, correct client served", attackSecrets},
		{"c", fmt.Sprintf("c: %d unauthenticated GET /oauth/authorize", c.authorize), "flowd.db < +1 MiB", attackAuthorize},
	}
	for _, a := range attacks {
		if !strings.Contains(c.only, a.key) {
			continue
		}
		f, err := startFlowd(c.bin, filepath.Join(tmp, "data-"+a.key), c.serveArgs)
		if err != nil {
			return err
		}
		if err := f.setupClients(); err != nil {
			f.stop()
			return err
		}
		f.measure(a.name, a.target, func() string { return a.run(f, c) })
		f.stop()
	}
	return nil
}

// raiseFileLimit lifts the soft open-file limit to the hard one: attack a
// holds 1000 sockets here and flowd (which inherits it) as many.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

type flowd struct {
	cmd  *exec.Cmd
	data string
	base string // http://127.0.0.1:port
	addr string
	bin  string
}

const (
	goodSecret   = "good-secret-0123456789abcdef"
	targetSecret = "target-secret-0123456789abcdef"
	webSecret    = "web-secret-0123456789abcdef"
	redirectURI  = "http://127.0.0.1:9/callback"
)

func startFlowd(bin, data string, extra []string) (*flowd, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	args := append([]string{"serve", "--data", data, "--addr", addr}, extra...)
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = io.Discard // flowd logs every refused or cut request
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	f := &flowd{cmd: cmd, data: data, base: "http://" + addr, addr: addr, bin: bin}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			if !sent && strings.HasPrefix(sc.Text(), "flowd listening on") {
				ready <- true
				sent = true
			}
		}
		if !sent {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			f.stop()
			return nil, errors.New("flowd exited before listening")
		}
	case <-time.After(60 * time.Second):
		f.stop()
		return nil, errors.New("flowd did not start within 60 s")
	}
	return f, nil
}

func (f *flowd) stop() {
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = f.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = f.cmd.Process.Kill()
		<-done
	}
}

// setupClients registers the attack's OAuth clients through the running
// server's admin API (the CLI finds it through the data folder).
func (f *flowd) setupClients() error {
	for _, args := range [][]string{
		{"--id", "good", "--secret", goodSecret, "--scopes", "read"},
		{"--id", "target", "--secret", targetSecret, "--scopes", "read"},
		{"--id", "web", "--secret", webSecret, "--scopes", "openid profile", "--redirect-uris", redirectURI},
	} {
		cmd := exec.Command(f.bin, append([]string{"clients", "add", "--data", f.data}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("clients add %s: %v: %s", args[1], err, out)
		}
	}
	return nil
}

// status reads a field of /proc/PID/status in KiB.
func (f *flowd) status(field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", f.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return -1
}

func (f *flowd) dbSize() int64 {
	st, err := os.Stat(filepath.Join(f.data, "flowd.db"))
	if err != nil {
		return -1
	}
	return st.Size()
}

// measure runs one attack with the latency probe beside it and prints the
// resource figures.
func (f *flowd) measure(name, target string, attack func() string) {
	// Reset the peak RSS so VmHWM is this attack's peak (Linux >= 4.0).
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", f.cmd.Process.Pid), []byte("5"), 0)
	rss0, db0 := f.status("VmRSS"), f.dbSize()
	ctx, cancel := context.WithCancel(context.Background())
	probe := make(chan probeResult, 1)
	go func() { probe <- f.probe(ctx) }()
	detail := attack()
	cancel()
	p := <-probe
	rss1, hwm, db1 := f.status("VmRSS"), f.status("VmHWM"), f.dbSize()
	fmt.Printf("== %s (target %s)\n", name, target)
	fmt.Printf("   %s\n", detail)
	fmt.Printf("   RSS before %s, peak %s (+%s), after %s\n", mib(rss0<<10), mib(hwm<<10), mib((hwm-rss0)<<10), mib(rss1<<10))
	fmt.Printf("   flowd.db before %s, after %s (+%s)\n", mib(db0), mib(db1), mib(db1-db0))
	fmt.Printf("   GET /hello during the attack: %s\n\n", p)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

type probeResult struct {
	lat    []time.Duration
	failed int
}

func (p probeResult) String() string {
	if len(p.lat) == 0 {
		return fmt.Sprintf("no answer (%d failed)", p.failed)
	}
	slices.Sort(p.lat)
	q := func(x float64) time.Duration { return p.lat[min(len(p.lat)-1, int(x*float64(len(p.lat))))] }
	return fmt.Sprintf("p50 %s, p99 %s, max %s over %d requests, %d failed",
		q(0.50).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond),
		p.lat[len(p.lat)-1].Round(10*time.Microsecond), len(p.lat), p.failed)
}

// probe asks GET /hello every 20 ms on one keep-alive connection, opened
// before the attack starts, until ctx ends.
func (f *flowd) probe(ctx context.Context) probeResult {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	var r probeResult
	for ctx.Err() == nil {
		start := time.Now()
		resp, err := client.Get(f.base + "/hello")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			r.failed++
		} else {
			r.lat = append(r.lat, time.Since(start))
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	return r
}

// attackBodies opens c.conns connections that each send the headers of a
// 1 MiB token request and no body, holds them for c.hold and reports how
// many flowd accepted and how many it closed by itself in that time.
func attackBodies(f *flowd, c config) string {
	req := "POST /oauth/token HTTP/1.1\r\nHost: " + f.addr + "\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
		"Content-Length: 1048576\r\n\r\n"
	var opened, refused atomic.Int64
	var conns []net.Conn
	var closedAfter []time.Duration // when flowd closed or answered each, from the attack's start
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(c.hold)
	for range c.conns {
		conn, err := net.DialTimeout("tcp", f.addr, 5*time.Second)
		if err != nil {
			refused.Add(1)
			continue
		}
		if _, err := io.WriteString(conn, req); err != nil {
			refused.Add(1)
			conn.Close()
			continue
		}
		opened.Add(1)
		mu.Lock()
		conns = append(conns, conn)
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn.SetReadDeadline(deadline)
			// Anything flowd sends (an error answer) or a close ends the hold.
			_, err := conn.Read(make([]byte, 1))
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				mu.Lock()
				closedAfter = append(closedAfter, time.Since(start))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, conn := range conns {
		conn.Close()
	}
	slices.Sort(closedAfter)
	early := 0 // closed within 2 s: refused by a connection limit
	for _, d := range closedAfter {
		if d < 2*time.Second {
			early++
		}
	}
	detail := fmt.Sprintf("%d connections sent headers (%d could not); within the %s hold flowd closed %d at once "+
		"(connection limit) and cut %d later", opened.Load(), refused.Load(), c.hold, early, len(closedAfter)-early)
	if late := closedAfter[early:]; len(late) > 0 {
		detail += fmt.Sprintf(" (after %s to %s: body read deadline)", late[0].Round(100*time.Millisecond),
			late[len(late)-1].Round(100*time.Millisecond))
	}
	return detail
}

func tokenRequest(ctx context.Context, client *http.Client, base, id, secret string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/oauth/token",
		strings.NewReader("grant_type=client_credentials&scope=read"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// attackSecrets sends c.bad concurrent streams of wrong secrets for
// client "target" for c.badFor, while client "good" asks for tokens one
// after the other.
func attackSecrets(f *flowd, c config) string {
	ctx, cancel := context.WithTimeout(context.Background(), c.badFor)
	defer cancel()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: c.bad + 1}}
	var mu sync.Mutex
	statuses := map[string]int{}
	var wg sync.WaitGroup
	for i := range c.bad {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				code, err := tokenRequest(ctx, client, f.base, "target", fmt.Sprintf("wrong-secret-%d-%d-0123456789", i, n))
				key := strconv.Itoa(code)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					key = "error"
				}
				mu.Lock()
				statuses[key]++
				mu.Unlock()
			}
		}()
	}
	var good []time.Duration
	var goodFailed, goodUnfinished int
	goodClient := &http.Client{Timeout: 30 * time.Second}
	for ctx.Err() == nil {
		start := time.Now()
		code, err := tokenRequest(ctx, goodClient, f.base, "good", goodSecret)
		switch {
		case err == nil && code == http.StatusOK:
			good = append(good, time.Since(start))
		case ctx.Err() == nil:
			goodFailed++
		default:
			goodUnfinished++ // still waiting when the attack ended
		}
	}
	wg.Wait()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range statuses {
			if !yield(k) {
				return
			}
		}
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s x%d", k, statuses[k]))
	}
	return fmt.Sprintf("wrong secrets answered: %s; correct client: %d tokens, %d failed, %d unanswered at the end, latency %s",
		strings.Join(parts, ", "), len(good), goodFailed, goodUnfinished, probeResult{lat: good})
}

// attackAuthorize sends c.authorize sign-in starts with the longest state
// and nonce accepted, from c.workers concurrent clients.
func attackAuthorize(f *flowd, c config) string {
	verifier := strings.Repeat("v", 64)
	sum := sha256.Sum256([]byte(verifier))
	// The longest state (1024) and nonce (512) flowd accepts.
	q := url.Values{"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {redirectURI},
		"scope": {"openid profile"}, "state": {strings.Repeat("s", 1024)}, "nonce": {strings.Repeat("n", 512)},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	target := f.base + "/oauth/authorize?" + q.Encode()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: c.workers},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var next atomic.Int64
	var mu sync.Mutex
	statuses := map[int]int{}
	var redirected string // an error flowd redirected with, if any
	var errs atomic.Int64
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(c.authorize) && ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", target, nil)
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++
				if loc, err := url.Parse(resp.Header.Get("Location")); err == nil && loc.Query().Get("error") != "" {
					redirected = loc.Query().Get("error") + ": " + loc.Query().Get("error_description")
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	var parts []string
	for _, k := range slices.Sorted(func(yield func(int) bool) {
		for k := range statuses {
			if !yield(k) {
				return
			}
		}
	}) {
		parts = append(parts, fmt.Sprintf("%d x%d", k, statuses[k]))
	}
	if redirected != "" {
		parts = append(parts, "redirected with error "+redirected)
	}
	return fmt.Sprintf("%d requests in %s (%.0f/s): %s, %d errors", c.authorize, took.Round(time.Millisecond),
		float64(c.authorize)/took.Seconds(), strings.Join(parts, ", "), errs.Load())
}
