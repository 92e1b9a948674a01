package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/flows/examples"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/storetest"
)

// logs collects a logger's text lines; runs log from their own goroutines.
type logs struct{ enginetest.LogBuffer }

func (l *logs) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// about returns the lines about prebuilt flows.
func (l *logs) about() []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, "prebuilt flow") || strings.Contains(line, "example flow") {
			out = append(out, line)
		}
	}
	return out
}

// checkLogs wants exactly one line per entry of want, each line holding
// every one of the entry's parts.
func checkLogs(t *testing.T, l *logs, want [][]string) {
	t.Helper()
	got := l.about()
	if len(got) != len(want) {
		t.Errorf("%d log lines about prebuilt flows, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for _, parts := range want {
		n := 0
		for _, line := range got {
			has := true
			for _, p := range parts {
				has = has && strings.Contains(line, p)
			}
			if has {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d log lines with %q, want 1:\n%s", n, parts, strings.Join(got, "\n"))
		}
	}
}

func canonical(t *testing.T, doc string) string {
	t.Helper()
	f, err := engine.DecodeFlow([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.EncodeFlow(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestExampleUpgrade: a start after the first brings prebuilt flows that
// are exactly an earlier shipped version up to the shipped one, and leaves
// every flow someone changed, deleted or rolled back. The first start
// installs v1 of example "a" and records its sum; the second ships next.
func TestExampleUpgrade(t *testing.T) {
	v1 := doc("a", "")
	v2 := strings.Replace(v1, `"name":"a"`, `"name":"a, v2"`, 1)
	mine := strings.Replace(v1, `"name":"a"`, `"name":"a, mine"`, 1)
	failing := strings.Replace(v2, `"x":0,"y":0`, `"x":0,"y":0,"config":{"fail_start":true}`, 1)
	var indented bytes.Buffer
	if err := json.Indent(&indented, []byte(v1), "", "\t"); err != nil {
		t.Fatal(err)
	}
	warned := []string{"level=WARN", "was changed here", "flow=a", "flowd import --deploy flows/examples/a.json"}
	tests := []struct {
		name   string
		change func(ctx context.Context, a *app.App) error // between the two starts
		next   string                                      // example a at the second start
		// The flow after the second start ("" draft: there is none).
		draft           string
		status          string
		rev             int64
		deployed        int
		running         int // version in the runtime, 0: none
		history         []string
		logs            [][]string
		startsAgainSame bool // a third start changes nothing
	}{
		{
			name: "unchanged and deployed: upgraded and deployed", next: v2,
			draft: v2, status: app.StatusDeployed, rev: 2, deployed: 2, running: 2, history: []string{v1, v2},
			logs:            [][]string{{"level=INFO", "prebuilt flow upgraded", "flow=a", "from_version=1", "to_version=2"}},
			startsAgainSame: true,
		},
		{
			name:   "unchanged and undeployed: the draft upgraded, still undeployed",
			change: func(ctx context.Context, a *app.App) error { return a.Undeploy(ctx, "a") }, next: v2,
			draft: v2, status: app.StatusUndeployed, rev: 2, deployed: 0, running: 0, history: []string{v1},
			logs:            [][]string{{"level=INFO", "draft upgraded", "flow=a"}},
			startsAgainSame: true,
		},
		{
			name: "shipped example unchanged: nothing saved", next: v1,
			draft: v1, status: app.StatusDeployed, rev: 1, deployed: 1, running: 1, history: []string{v1},
			startsAgainSame: true,
		},
		{
			name: "shipped example reformatted: nothing saved", next: indented.String(),
			draft: v1, status: app.StatusDeployed, rev: 1, deployed: 1, running: 1, history: []string{v1},
			startsAgainSame: true,
		},
		{
			name: "changed and deployed here: left, warned",
			change: func(ctx context.Context, a *app.App) error {
				_, err := a.Import(ctx, []byte(mine), true)
				return err
			},
			next:  v2,
			draft: mine, status: app.StatusDeployed, rev: 2, deployed: 2, running: 2, history: []string{v1, mine},
			logs:            [][]string{warned},
			startsAgainSame: true,
		},
		{
			name: "changed here, not deployed: left, warned",
			change: func(ctx context.Context, a *app.App) error {
				_, err := a.PutFlow(ctx, "a", []byte(mine), store.AnyRev)
				return err
			},
			next:  v2,
			draft: mine, status: app.StatusChanged, rev: 2, deployed: 1, running: 1, history: []string{v1},
			logs:            [][]string{warned},
			startsAgainSame: true,
		},
		{
			name: "rolled back from the shipped version: left, warned",
			change: func(ctx context.Context, a *app.App) error {
				if _, err := a.Import(ctx, []byte(v2), true); err != nil {
					return err
				}
				_, _, err := a.Restore(ctx, "a", 1, 0)
				return err
			},
			next:  v2,
			draft: v1, status: app.StatusDeployed, rev: 3, deployed: 3, running: 3, history: []string{v1, v2, v1},
			logs:            [][]string{warned},
			startsAgainSame: true,
		},
		{
			name:   "deleted: not installed again",
			change: func(ctx context.Context, a *app.App) error { return a.DeleteFlow(ctx, "a", store.AnyRev) },
			next:   v2,
			// The zero values: no flow.
			startsAgainSame: true,
		},
		{
			// The failed attempt stays in the history, the draft goes back
			// to what runs; the next start tries again.
			name: "the upgrade does not deploy: the old version keeps running", next: failing,
			draft: v1, status: app.StatusDeployed, rev: 3, deployed: 1, running: 1, history: []string{v1, failing},
			logs: [][]string{{"level=ERROR", "prebuilt flow not upgraded", "flow=a", "version=1", "route taken"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "flowd.db")
			a, closeA := open(t, path, fstest.MapFS{"a.json": {Data: []byte(v1)}})
			if tt.change != nil {
				if err := tt.change(t.Context(), a); err != nil {
					t.Fatal(err)
				}
			}
			closeA()

			var l logs
			next := fstest.MapFS{"a.json": {Data: []byte(tt.next)}}
			a, closeA = openLogged(t, path, next, l.logger())
			checkExample(t, a, tt.draft, tt.status, tt.rev, tt.deployed, tt.running, tt.history)
			checkLogs(t, &l, tt.logs)
			closeA()

			if !tt.startsAgainSame {
				return
			}
			a, closeA = open(t, path, next)
			defer closeA()
			checkExample(t, a, tt.draft, tt.status, tt.rev, tt.deployed, tt.running, tt.history)
		})
	}
}

// checkExample checks flow "a": its draft, status, revision, deployed
// version, the version in the runtime and the documents of its versions,
// oldest first. An empty draft means the flow must not exist.
func checkExample(t *testing.T, a *app.App, draft, status string, rev int64, deployed, running int, history []string) {
	t.Helper()
	ctx := t.Context()
	info, err := a.Info(ctx, "a")
	if draft == "" {
		if !errors.Is(err, app.ErrNotFound) {
			t.Fatalf("flow a: %v, want it gone", err)
		}
		if n, ok := a.Deployed("a"); ok {
			t.Errorf("deleted flow runs version %d", n)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	doc, _, err := a.Export(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if want := canonical(t, draft); string(doc) != want {
		t.Errorf("draft:\n%s\nwant:\n%s", doc, want)
	}
	if info.Status != status || info.Rev != rev || info.Deployed != deployed || info.Latest != len(history) {
		t.Errorf("status %s rev %d deployed %d latest %d, want %s %d %d %d",
			info.Status, info.Rev, info.Deployed, info.Latest, status, rev, deployed, len(history))
	}
	n, ok := a.Deployed("a")
	if !ok {
		n = 0
	}
	if n != running {
		t.Errorf("runtime runs version %d, want %d", n, running)
	}
	vs, err := a.Versions(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(history) {
		t.Fatalf("%d versions, want %d", len(vs), len(history))
	}
	for i, want := range history {
		v := vs[len(vs)-1-i] // newest first
		if v.N != i+1 || string(v.Doc) != canonical(t, want) {
			t.Errorf("version %d (want %d):\n%s\nwant:\n%s", v.N, i+1, v.Doc, canonical(t, want))
		}
	}
}

// TestStartTwice: Start again, on the same App or after a restart, finds
// nothing to upgrade and saves nothing.
func TestStartTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flowd.db")
	v2 := strings.Replace(doc("a", ""), `"name":"a"`, `"name":"a, v2"`, 1)
	_, closeA := open(t, path, fstest.MapFS{"a.json": {Data: []byte(doc("a", ""))}})
	closeA()
	var l logs
	next := fstest.MapFS{"a.json": {Data: []byte(v2)}, "b.json": {Data: []byte(doc("b", ""))}}
	a, closeA := openLogged(t, path, next, l.logger())
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkExample(t, a, v2, app.StatusDeployed, 2, 2, 2, []string{doc("a", ""), v2})
	checkLogs(t, &l, [][]string{{"level=INFO", "prebuilt flow upgraded", "flow=a"}})
	closeA()
	a, closeA = openLogged(t, path, next, l.logger())
	defer closeA()
	checkExample(t, a, v2, app.StatusDeployed, 2, 2, 2, []string{doc("a", ""), v2})
	checkLogs(t, &l, [][]string{{"level=INFO", "prebuilt flow upgraded", "flow=a"}})
	// b is new in this release but the store is not fresh: indistinguishable
	// from an example deleted on purpose, so it is not installed.
	if _, err := a.Info(t.Context(), "b"); !errors.Is(err, app.ErrNotFound) {
		t.Fatalf("new example b: %v, want not installed", err)
	}
}

// oldDataFolder is a store as an earlier release left it: flow id holds
// doc, deployed as version 1, and the examples were installed (so the
// store is not fresh) before sums were recorded. It is closed when the
// test ends.
func oldDataFolder(t *testing.T, id string, doc []byte) *store.Bolt {
	t.Helper()
	ctx := t.Context()
	st := storetest.TempBolt(t)
	if _, err := st.PutFlow(ctx, id, doc, store.MustCreate); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddVersion(ctx, id, doc, "deploy"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetKV(ctx, "system", "examples_installed", []byte("2026-11-22T12:00:00Z")); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestEndSessionUpgrade: a data folder from before prebuilt flows were
// upgraded holds end-session as flowd shipped it at c0c667c, deployed, and
// no recorded sums: the compiled list recognises it, and the start deploys
// the shipped end-session (with the confirm and cancelled wires) as version
// 2. Other examples missing from the folder stay missing.
func TestEndSessionUpgrade(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "end-session-c0c667c.json"))
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := fs.ReadFile(examples.FS, "end-session.json")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	st := oldDataFolder(t, "end-session", old)
	for _, start := range []struct {
		name string
		logs [][]string
	}{
		{"upgrade", [][]string{{"level=INFO", "prebuilt flow upgraded", "flow=end-session", "from_version=1", "to_version=2"}}},
		{"restart", nil},
	} {
		t.Run(start.name, func(t *testing.T) {
			var l logs
			fd, err := flowd.New(flowd.Options{Store: storetest.TwiceUpdates(st), Issuer: "http://127.0.0.1:8080", Examples: examples.FS, Logger: l.logger()})
			if err != nil {
				t.Fatal(err)
			}
			defer fd.Close(context.Background())
			if err := fd.Start(ctx); err != nil {
				t.Fatal(err)
			}
			a := fd.App()
			list, err := a.ListFlows(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 {
				t.Fatalf("%d flows, want end-session only", len(list))
			}
			info := list[0]
			if info.ID != "end-session" || info.Status != app.StatusDeployed || info.Deployed != 2 || info.Latest != 2 {
				t.Fatalf("%s: status %s deployed %d latest %d, want deployed 2 of 2", info.ID, info.Status, info.Deployed, info.Latest)
			}
			if n, ok := a.Deployed("end-session"); !ok || n != 2 {
				t.Fatalf("runtime runs %d %v, want 2", n, ok)
			}
			v1, err := a.Version(ctx, "end-session", 1)
			if err != nil || !bytes.Equal(v1.Doc, old) {
				t.Fatalf("version 1 is not the old end-session: %v", err)
			}
			v2, err := a.Version(ctx, "end-session", 2)
			if err != nil || !bytes.Equal(v2.Doc, shipped) {
				t.Fatalf("version 2 is not the shipped end-session: %v", err)
			}
			checkLogs(t, &l, start.logs)
		})
	}
}

// TestSubflowExampleUpgrade: a data folder from before the prebuilt flows
// shared the client-auth sub-flow holds token as shipped at 8206c10. The
// upgraded token calls client-auth, which is new in this release: the
// start installs and deploys it, though the store is not fresh, because a
// shipped example calls it. Examples nothing calls stay missing, and once
// a start recorded client-auth, deleting it is for good.
func TestSubflowExampleUpgrade(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "token-8206c10.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	st := oldDataFolder(t, "token", old)
	var running *flowd.Flowd
	start := func(t *testing.T) *app.App {
		if running != nil {
			running.Close(context.Background())
		}
		fd, err := flowd.New(flowd.Options{Store: st, Issuer: "http://127.0.0.1:8080", Examples: examples.FS})
		if err != nil {
			t.Fatal(err)
		}
		running = fd
		if err := fd.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return fd.App()
	}
	defer func() { running.Close(context.Background()) }()
	ids := func(t *testing.T, a *app.App) []string {
		list, err := a.ListFlows(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range list {
			out = append(out, f.ID+":"+f.Status)
		}
		return out
	}
	t.Run("upgrade installs the called sub-flow", func(t *testing.T) {
		a := start(t)
		want := []string{"client-auth:" + app.StatusDeployed, "token:" + app.StatusDeployed}
		if got := ids(t, a); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("flows %q, want %q", got, want)
		}
		if n, ok := a.Deployed("token"); !ok || n != 2 {
			t.Fatalf("token runs version %d %v, want the upgrade (2)", n, ok)
		}
		if _, ok := a.Deployed("client-auth"); !ok {
			t.Fatal("client-auth is not deployed")
		}
	})
	t.Run("deleted after it was recorded: stays deleted", func(t *testing.T) {
		a := start(t)
		info, err := a.Info(ctx, "client-auth")
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Undeploy(ctx, "client-auth"); err != nil {
			t.Fatal(err)
		}
		if err := a.DeleteFlow(ctx, "client-auth", info.Rev); err != nil {
			t.Fatal(err)
		}
		a = start(t)
		if got := ids(t, a); len(got) != 1 || got[0] != "token:"+app.StatusDeployed {
			t.Fatalf("flows %q, want token only", got)
		}
	})
}
