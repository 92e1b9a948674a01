package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine/enginetest"
)

func envOf(m map[string]string) env { return func(k string) string { return m[k] } }

// flowdCmd runs one CLI command to completion.
func flowdCmd(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb enginetest.LogBuffer
	code = run(t.Context(), args, envOf(vars), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

type server struct {
	addr   string // host:port
	base   string // scheme://host:port
	out    *enginetest.LogBuffer
	errs   *enginetest.LogBuffer // the log
	stop   context.CancelFunc
	done   chan int
	client *http.Client
}

var listenRE = regexp.MustCompile(`flowd listening on (https?://(\S+))`)

// startServer runs `flowd serve` on port 0 in a data folder.
func startServer(t *testing.T, data string) *server {
	t.Helper()
	return serveWith(t, &cli{getenv: envOf(nil)}, "--data", data)
}

// serveWith runs `flowd serve --addr 127.0.0.1:0 args...` with c's
// environment and settings; its output goes to the server's buffers.
func serveWith(t *testing.T, c *cli, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{out: &enginetest.LogBuffer{}, errs: &enginetest.LogBuffer{}, stop: cancel, done: make(chan int, 1), client: &http.Client{Timeout: 10 * time.Second}}
	written := make(chan struct{}, 1)
	c.stdin, c.stdout, c.stderr = strings.NewReader(""), notifyWriter{s.out, written}, s.errs
	go func() {
		s.done <- c.main(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...))
	}()
	// Starting builds every flow and, on a first start, generates keys
	// (RSA-3072 under -race): no budget but the test's own.
	wait, stop := beforeDeadline(t)
	defer stop()
	for {
		// The banner's last line written before serving is the admin
		// UI's (cli.go): tests read the whole banner.
		out := s.out.String()
		if m := listenRE.FindStringSubmatch(out); m != nil && strings.Contains(out, "Admin UI: ") {
			s.base, s.addr = m[1], m[2]
			break
		}
		select {
		case code := <-s.done:
			t.Fatalf("serve exited with %d: %s %s", code, s.out, s.errs)
		case <-wait.Done():
			t.Fatalf("serve did not start before the test's deadline: %s %s", s.out, s.errs)
		case <-written:
		}
	}
	t.Cleanup(func() { s.shutdown(t) })
	return s
}

func (s *server) shutdown(t *testing.T) {
	if s.stop == nil {
		return
	}
	s.stop()
	s.stop = nil
	wait, stop := beforeDeadline(t)
	defer stop()
	select {
	case code := <-s.done:
		if code != 0 {
			log := s.errs.String()
			t.Errorf("serve exited with %d: ...%s", code, log[max(0, len(log)-2000):])
		}
	case <-wait.Done():
		t.Error("serve did not shut down before the test's deadline")
	}
}

// notifyWriter writes to a LogBuffer and signals written (without
// blocking) after each write, so a reader waits for output, not a clock.
type notifyWriter struct {
	buf     *enginetest.LogBuffer
	written chan<- struct{}
}

func (w notifyWriter) Write(p []byte) (int, error) {
	n, err := w.buf.Write(p)
	select {
	case w.written <- struct{}{}:
	default:
	}
	return n, err
}

// beforeDeadline ends a little before the test binary's -timeout (never,
// without one), so that a wait for an event that never comes fails with
// the test's message rather than the binary's panic.
func beforeDeadline(t *testing.T) (context.Context, context.CancelFunc) {
	if deadline, ok := t.Deadline(); ok {
		return context.WithDeadline(context.Background(), deadline.Add(-5*time.Second))
	}
	return context.WithCancel(context.Background())
}

func (s *server) get(t *testing.T, path string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.base+path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeAndCLI(t *testing.T) {
	data := filepath.Join(t.TempDir(), "flowd-data")
	s := startServer(t, data)

	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{"master.key", 0o600}, {"admin.token", 0o600}, {"flowd.db", 0o600}} {
		st, err := os.Stat(filepath.Join(data, f.name))
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: readable by others", f.name, st.Mode().Perm())
		}
	}
	tok, _ := os.ReadFile(filepath.Join(data, "admin.token"))
	if !strings.Contains(s.out.String(), "admin.token") || strings.Contains(s.out.String(), strings.TrimSpace(string(tok))) {
		t.Fatalf("first start must say where the token is, never print it:\n%s", s.out)
	}

	// The example flow was installed and deployed on first start.
	if code, body := s.get(t, "/hello?name=ada", nil); code != 200 || !strings.Contains(body, `"hello, ada"`) {
		t.Fatalf("/hello: %d %s", code, body)
	}

	// The CLI reaches the server's admin API while the server holds the database.
	vars := map[string]string{"FLOWD_DATA": data}
	tour := filepath.Join("..", "..", "flows", "tour", "greet.json")
	// The server is one node: the deploy answer names it as running the version.
	if code, out, errs := flowdCmd(t, vars, "import", "--deploy", tour); code != 0 || !strings.Contains(out, `imported flow "greet" (deployed)`) ||
		!strings.Contains(out, "version 1 runs on 1 of 1 node(s)") {
		t.Fatalf("import: %d %s %s", code, out, errs)
	}
	code, out, errs := flowdCmd(t, vars, "run", "greet", "--input", `{"name":"ada"}`)
	if code != 0 {
		t.Fatalf("run: %d %s %s", code, out, errs)
	}
	var tr struct {
		Status string
		Steps  []struct {
			Node, Port string
			Msg        map[string]any
		}
	}
	if err := json.Unmarshal([]byte(out), &tr); err != nil {
		t.Fatalf("run output: %v\n%s", err, out)
	}
	if tr.Status != "ok" || len(tr.Steps) != 4 || tr.Steps[2].Port != "vip" || tr.Steps[3].Msg["vip"] != true {
		t.Fatalf("trace: %s", out)
	}
	want, _ := os.ReadFile(tour)
	if code, out, _ := flowdCmd(t, vars, "export", "greet"); code != 0 || out != string(want) {
		t.Fatalf("export differs from the imported file:\n%s", out)
	}
	code, apiBody := s.get(t, "/admin/api/flows/greet", map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(tok))})
	if code != 200 || apiBody != string(want) {
		t.Fatalf("API export differs: %d\n%s", code, apiBody)
	}
	if code, out, _ := flowdCmd(t, vars, "flows"); code != 0 || !strings.Contains(out, "greet") || !strings.Contains(out, "hello") {
		t.Fatalf("flows: %d %s", code, out)
	}

	// A second server on the same data folder is refused, not hung.
	if code, _, errs := flowdCmd(t, vars, "serve", "--addr", "127.0.0.1:0"); code != 1 || !strings.Contains(errs, "locked") {
		t.Fatalf("second serve: %d %s", code, errs)
	}

	// After shutdown the CLI opens the database itself.
	s.shutdown(t)
	if code, out, errs := flowdCmd(t, vars, "flows", "--json"); code != 0 || !strings.Contains(out, `"greet"`) {
		t.Fatalf("offline flows: %d %s %s", code, out, errs)
	}
	code, out, errs = flowdCmd(t, vars, "run", "greet", "--input", `{"name":"bob"}`)
	if code != 0 || !strings.Contains(out, `"hello, bob"`) {
		t.Fatalf("offline run: %d %s %s", code, out, errs)
	}
	// The offline run's trace was persisted: a restarted server shows it.
	s = startServer(t, data)
	code, runs := s.get(t, "/admin/api/flows/greet/runs", map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(tok))})
	if code != 200 || strings.Count(runs, `"trigger": "start"`) != 2 {
		t.Fatalf("runs after restart: %d %s", code, runs)
	}
}

func TestValidateCommand(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"schema":"flowd/v1","id":"x","name":"x","nodes":[
	  {"id":"a","type":"core.manual","x":0,"y":0},
	  {"id":"b","type":"core.set","config":{"set":{"y":"1 +"}},"x":0,"y":0}],
	  "wires":[{"from":"a","port":"out","to":"ghost"}]}`), 0o644)
	code, out, _ := flowdCmd(t, nil, "validate", bad, filepath.Join("..", "..", "flows", "tour", "greet.json"))
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, out)
	}
	for _, want := range []string{`node "b": field "set.y": line 1, column 3`, `node "ghost": field "wires[0].to"`, "greet.json: ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = flowdCmd(t, nil, "schema")
	var schema map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &schema) != nil || !strings.Contains(out, `"core.switch"`) {
		t.Fatalf("schema: %d %s", code, out)
	}
	if code, _, errs := flowdCmd(t, nil, "frobnicate"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Fatalf("unknown command: %d %s", code, errs)
	}
}

func TestSnapshotsPerSecondEnv(t *testing.T) {
	code, _, stderr := flowdCmd(t, map[string]string{"FLOWD_SNAPSHOTS_PER_SECOND": "lots"},
		"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir())
	if code == 0 || !strings.Contains(stderr, "FLOWD_SNAPSHOTS_PER_SECOND") || !strings.Contains(stderr, "integer") {
		t.Errorf("bad value: exit %d, %s", code, stderr)
	}
}

// TestValidateSchemaBare: validate and schema build a bare registry. They
// write no file anywhere (TMPDIR is a file, so no temp folder can be made;
// the working and data folders stay empty) and never read a master key: a
// garbage FLOWD_MASTER_KEY changes nothing.
// The flows use blocks of every package, so each one is built without its
// services, and a config mistake a factory finds is still reported.
func TestValidateSchemaBare(t *testing.T) {
	cwd, data, flows := t.TempDir(), t.TempDir(), t.TempDir()
	tmp := filepath.Join(flows, "tmp-is-a-file")
	os.WriteFile(tmp, nil, 0o644)
	t.Setenv("TMPDIR", tmp)
	t.Chdir(cwd)
	good := filepath.Join(flows, "good.json")
	os.WriteFile(good, []byte(`{"schema":"flowd/v1","id":"good","name":"g","nodes":[
	  {"id":"tick","type":"schedule.cron","config":{"spec":"@daily"},"x":0,"y":0},
	  {"id":"in","type":"http.in","config":{"path":"/t"},"x":0,"y":0},
	  {"id":"auth","type":"oauth.client_auth","x":0,"y":0},
	  {"id":"sign","type":"jose.sign","config":{"keyset":"main","alg":"ES256"},"x":0,"y":0},
	  {"id":"rot","type":"jose.rotate","config":{"keyset":"main","alg":"ES256"},"x":0,"y":0},
	  {"id":"id","type":"oidc.id_token","x":0,"y":0},
	  {"id":"out","type":"http.respond","x":0,"y":0}],
	  "wires":[{"from":"in","port":"out","to":"auth"},{"from":"auth","port":"ok","to":"sign"},
	   {"from":"sign","port":"out","to":"id"},{"from":"id","port":"out","to":"out"},{"from":"tick","port":"out","to":"rot"}]}`), 0o644)
	bad := filepath.Join(flows, "bad.json")
	os.WriteFile(bad, []byte(`{"schema":"flowd/v1","id":"bad","name":"b","nodes":[
	  {"id":"tick","type":"schedule.cron","config":{"spec":"61 * * * *"},"x":0,"y":0},
	  {"id":"check","type":"jose.validate","config":{"keyset":"main","algorithms":["ES256"],"audience_optional":true,"source":"remote"},"x":0,"y":0}],
	  "wires":[{"from":"tick","port":"out","to":"check"}]}`), 0o644)
	env := map[string]string{"FLOWD_MASTER_KEY": "not a key", "FLOWD_DATA": data}
	code, out, errs := flowdCmd(t, env, "validate", good)
	if code != 0 || !strings.Contains(out, "good.json: ok") {
		t.Errorf("validate good: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = flowdCmd(t, env, "validate", bad)
	for _, want := range []string{`node "tick": field "spec"`, `node "check": field "keyset"`} {
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("validate bad: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
	if code, out, _ = flowdCmd(t, env, "schema"); code != 0 || !strings.Contains(out, `"oidc.id_token"`) {
		t.Errorf("schema: exit %d %.200s", code, out)
	}
	for _, dir := range []string{cwd, data} {
		if ents, err := os.ReadDir(dir); err != nil || len(ents) > 0 {
			t.Errorf("%s holds %v (%v), want nothing", dir, ents, err)
		}
	}
}
