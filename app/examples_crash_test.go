package app_test

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/flows/examples"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/storetest"
)

var errCrashed = errors.New("crashed: process killed before this write")

// crashStore lets the first limit writes through and fails every later
// one, as if the process died just before write limit+1: the store holds
// exactly what was committed up to that point. limit < 0 never crashes
// and just counts.
type crashStore struct {
	store.Store
	mu     sync.Mutex
	limit  int
	writes int
}

func (s *crashStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func (s *crashStore) write() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit >= 0 && s.writes >= s.limit {
		return errCrashed
	}
	s.writes++
	return nil
}

// then counts a write and does it, or fails it after the crash.
func (s *crashStore) then(do func() error) error {
	if err := s.write(); err != nil {
		return err
	}
	return do()
}

// thenValue is then for a write that returns a value.
func thenValue[T any](s *crashStore, do func() (T, error)) (T, error) {
	if err := s.write(); err != nil {
		var zero T
		return zero, err
	}
	return do()
}

func (s *crashStore) PutFlow(ctx context.Context, id string, doc []byte, ifRev int64) (store.FlowRecord, error) {
	return thenValue(s, func() (store.FlowRecord, error) { return s.Store.PutFlow(ctx, id, doc, ifRev) })
}

func (s *crashStore) DeleteFlow(ctx context.Context, id string, ifRev int64) error {
	return s.then(func() error { return s.Store.DeleteFlow(ctx, id, ifRev) })
}

func (s *crashStore) AddVersion(ctx context.Context, id string, doc []byte, note string) (store.Version, error) {
	return thenValue(s, func() (store.Version, error) { return s.Store.AddVersion(ctx, id, doc, note) })
}

func (s *crashStore) SetDeployed(ctx context.Context, id string, n int) error {
	return s.then(func() error { return s.Store.SetDeployed(ctx, id, n) })
}

func (s *crashStore) Deploy(ctx context.Context, r store.DeployRequest) (int, int64, error) {
	if err := s.write(); err != nil {
		return 0, 0, err
	}
	return s.Store.Deploy(ctx, r)
}

func (s *crashStore) CreateKV(ctx context.Context, ns, key string, val []byte) error {
	return s.then(func() error { return s.Store.CreateKV(ctx, ns, key, val) })
}

func (s *crashStore) SetKV(ctx context.Context, ns, key string, val []byte) error {
	return s.then(func() error { return s.Store.SetKV(ctx, ns, key, val) })
}

func (s *crashStore) DeleteKV(ctx context.Context, ns, key string) error {
	return s.then(func() error { return s.Store.DeleteKV(ctx, ns, key) })
}

func (s *crashStore) UpdateKV(ctx context.Context, ns, key string, fn func([]byte) ([]byte, error)) error {
	return s.then(func() error { return s.Store.UpdateKV(ctx, ns, key, fn) })
}

func (s *crashStore) UpdateSecret(ctx context.Context, kind, name string, fn func([]byte) ([]byte, error)) error {
	return s.then(func() error { return s.Store.UpdateSecret(ctx, kind, name, fn) })
}

func (s *crashStore) DeleteSecret(ctx context.Context, kind, name string) error {
	return s.then(func() error { return s.Store.DeleteSecret(ctx, kind, name) })
}

// firstStart runs a first start whose process dies before write limit+1
// (limit < 0: no crash) and returns how many writes went through.
func firstStart(t *testing.T, path string, examples fstest.MapFS, limit int) int {
	t.Helper()
	bolt := storetest.BoltAt(t, path)
	defer bolt.Close()
	cs := &crashStore{Store: bolt, limit: limit}
	a, err := app.New(app.Config{Store: cs, Runs: bolt, Registry: registry(), Examples: examples})
	if err != nil {
		t.Fatal(err)
	}
	err = a.Start(t.Context())
	if limit < 0 && err != nil {
		t.Fatalf("first start without a crash: %v", err)
	}
	_ = a.Close(context.Background()) // the crashed process would not flush anything either
	return cs.count()
}

// TestFirstStartCrashConverges kills the first start before each of its
// writes in turn; the next start must end with every prebuilt flow
// deployed, saying so in the log when it finished an interrupted install,
// and a third start must change nothing. A flow undeployed by hand after
// that stays undeployed.
func TestFirstStartCrashConverges(t *testing.T) {
	examples := fstest.MapFS{
		"a.json": {Data: []byte(doc("a", ""))},
		"b.json": {Data: []byte(doc("b", ""))},
		"c.json": {Data: []byte(doc("c", ""))},
	}
	ids := []string{"a", "b", "c"}
	total := firstStart(t, filepath.Join(t.TempDir(), "flowd.db"), examples, -1)
	if total < 2*len(ids) {
		t.Fatalf("a clean first start made %d writes, want at least a save and a deploy per flow", total)
	}
	for crashAt := 0; crashAt <= total; crashAt++ {
		t.Run("crash before write "+strconv.Itoa(crashAt+1), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "flowd.db")
			firstStart(t, path, examples, crashAt)
			var l logs
			a, closeA := openLogged(t, path, examples, l.logger())
			for _, id := range ids {
				info, err := a.Info(t.Context(), id)
				if err != nil {
					t.Fatalf("flow %s after the restart: %v", id, err)
				}
				if info.Status != app.StatusDeployed || info.Deployed != 1 || info.Latest != 1 {
					t.Errorf("flow %s: status %s deployed v%d latest v%d, want deployed v1 of 1", id, info.Status, info.Deployed, info.Latest)
				}
				if n, ok := a.Deployed(id); !ok || n != 1 {
					t.Errorf("flow %s runs version %d (%v), want 1", id, n, ok)
				}
			}
			for _, line := range l.about() {
				if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
					t.Errorf("restart logged a problem: %s", line)
				}
			}
			if err := a.Undeploy(t.Context(), "b"); err != nil {
				t.Fatal(err)
			}
			closeA()
			a, closeA = open(t, path, examples)
			defer closeA()
			for _, id := range ids {
				info, err := a.Info(t.Context(), id)
				if err != nil {
					t.Fatal(err)
				}
				want := app.StatusDeployed
				if id == "b" {
					want = app.StatusUndeployed
				}
				if info.Status != want || info.Latest != 1 {
					t.Errorf("third start: flow %s %s with %d versions, want %s with 1", id, info.Status, info.Latest, want)
				}
			}
		})
	}
}

// shippedStart runs a start of flowd with the prebuilt flows this binary
// ships over bolt, crashing before write limit+1 (limit < 0: never), and
// returns the writes that went through.
func shippedStart(t *testing.T, bolt store.Store, limit int, log *slog.Logger) (*flowd.Flowd, int) {
	t.Helper()
	cs := &crashStore{Store: bolt, limit: limit}
	fd, err := flowd.New(flowd.Options{Store: cs, Runs: bolt.(store.Runs), Issuer: "http://127.0.0.1:8080", Examples: examples.FS, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	fd.Keysets().RSABits = 2048 // generation time, not strength, matters here
	if err := fd.Start(t.Context()); err != nil && limit < 0 {
		t.Fatalf("start: %v", err)
	}
	return fd, cs.count()
}

// TestShippedFirstStartCrashConverges is TestFirstStartCrashConverges with
// the real prebuilt flows (token, protected-api, key-rollover, ...): after
// a first start killed before any one of its writes, the next start has
// every one of them deployed.
func TestShippedFirstStartCrashConverges(t *testing.T) {
	names, err := fs.Glob(examples.FS, "*.json")
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.BoltAt(t, filepath.Join(t.TempDir(), "flowd.db"))
	fd, total := shippedStart(t, st, -1, nil)
	fd.Close(context.Background())
	st.Close()
	if total < 2*len(names) {
		t.Fatalf("a clean first start made %d writes for %d flows", total, len(names))
	}
	for crashAt := 0; crashAt < total; crashAt++ {
		t.Run("crash before write "+strconv.Itoa(crashAt+1), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "flowd.db")
			st := storetest.BoltAt(t, path)
			fd, _ := shippedStart(t, st, crashAt, nil)
			fd.Close(context.Background())
			st.Close()

			st = storetest.BoltAt(t, path)
			defer st.Close()
			var l logs
			fd, _ = shippedStart(t, st, -1, l.logger())
			defer fd.Close(context.Background())
			for _, name := range names {
				id := strings.TrimSuffix(name, ".json")
				info, err := fd.App().Info(t.Context(), id)
				if err != nil {
					t.Errorf("flow %s after the restart: %v", id, err)
					continue
				}
				if info.Status != app.StatusDeployed {
					t.Errorf("flow %s is %s after the restart, want deployed", id, info.Status)
				}
			}
			for _, line := range l.about() {
				if strings.Contains(line, "level=ERROR") {
					t.Errorf("restart logged: %s", line)
				}
			}
		})
	}
}
