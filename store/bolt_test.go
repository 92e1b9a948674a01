package store_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/storetest"
)

func newKey(t testing.TB) []byte {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

func openAt(t testing.TB, path string, opts store.BoltOptions) *store.Bolt {
	t.Helper()
	s, err := store.OpenBolt(path, opts)
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openAt(t, filepath.Join(t.TempDir(), "flowd.db"), store.BoltOptions{MasterKey: newKey(t)})
	})
}

// rawUpdate edits a closed database file directly, as damage or an attacker
// with write access to the file would.
func rawUpdate(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func TestReopenPersists(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "flowd.db")
	key := newKey(t)
	started := time.Date(2025, 6, 1, 10, 0, 0, 123456789, time.UTC)

	s := openAt(t, path, store.BoltOptions{MasterKey: key})
	if _, err := s.PutFlow(ctx, "f", []byte("draft"), store.MustCreate); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutFlow(ctx, "f", []byte("draft2"), 1); err != nil {
		t.Fatal(err)
	}
	v1, err := s.AddVersion(ctx, "f", []byte("v1"), "deploy")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddVersion(ctx, "f", []byte("v2"), "restore of v1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeployed(ctx, "f", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendRuns(ctx, []store.RunRecord{{Flow: "f", ID: "r1", Started: started, Data: []byte("trace")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetKV(ctx, "vars", "x", []byte("42")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetKV(ctx, "vars", "empty", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateSecret(ctx, "jwk", "main", func([]byte) ([]byte, error) { return []byte("private"), nil }); err != nil {
		t.Fatal(err)
	}
	before, err := s.GetFlow(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path, store.BoltOptions{MasterKey: key})
	rec, err := s.GetFlow(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	if rec.ID != "f" || string(rec.Doc) != "draft2" || rec.Rev != 2 || rec.Deployed != 1 || rec.Latest != 2 || !rec.Updated.Equal(before.Updated) {
		t.Errorf("flow after reopen = %+v, want %+v", rec, before)
	}
	got1, err := s.GetVersion(ctx, "f", 1)
	if err != nil || string(got1.Doc) != "v1" || got1.Note != "deploy" || !got1.Created.Equal(v1.Created) {
		t.Errorf("version 1 after reopen = %+v, %v", got1, err)
	}
	run, err := s.GetRun(ctx, "f", "r1")
	if err != nil || string(run.Data) != "trace" || !run.Started.Equal(started) {
		t.Errorf("run after reopen = %+v, %v", run, err)
	}
	if v, err := s.GetKV(ctx, "vars", "x"); err != nil || string(v) != "42" {
		t.Errorf("kv after reopen = %q, %v", v, err)
	}
	if v, err := s.GetKV(ctx, "vars", "empty"); err != nil || len(v) != 0 {
		t.Errorf("empty kv after reopen = %q, %v; want empty, found", v, err)
	}
	if v, err := s.GetSecret(ctx, "jwk", "main"); err != nil || string(v) != "private" {
		t.Errorf("secret after reopen = %q, %v", v, err)
	}
}

func TestClock(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	s := openAt(t, filepath.Join(t.TempDir(), "flowd.db"), store.BoltOptions{Now: func() time.Time { return now }})
	rec, err := s.PutFlow(ctx, "f", nil, store.AnyRev)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.AddVersion(ctx, "f", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetFlow(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	// Returned and stored times are the same value, in UTC.
	for name, tm := range map[string]time.Time{"PutFlow Updated": rec.Updated, "GetFlow Updated": got.Updated, "Created": v.Created} {
		if tm != now.UTC() {
			t.Errorf("%s = %v, want %v", name, tm, now.UTC())
		}
	}
}

func TestRunsPerFlowOption(t *testing.T) {
	ctx := t.Context()
	s := openAt(t, filepath.Join(t.TempDir(), "flowd.db"), store.BoltOptions{RunsPerFlow: 3})
	base := time.Now()
	for i := range 5 {
		r := store.RunRecord{Flow: "f", ID: fmt.Sprintf("r%d", i), Started: base.Add(time.Duration(i) * time.Second)}
		if err := s.AppendRuns(ctx, []store.RunRecord{r}); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := s.ListRuns(ctx, "f", 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	if got, want := strings.Join(ids, ","), "r4,r3,r2"; got != want {
		t.Errorf("runs = %s, want %s", got, want)
	}

	_, err = store.OpenBolt(filepath.Join(t.TempDir(), "x.db"), store.BoltOptions{RunsPerFlow: -1})
	if !errors.Is(err, store.ErrInvalid) {
		t.Errorf("RunsPerFlow -1: error = %v, want ErrInvalid", err)
	}
}

func TestMasterKey(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "flowd.db")
	key, other := newKey(t), newKey(t)
	setSecret := func(s store.Store) error {
		return s.UpdateSecret(ctx, "jwk", "main", func([]byte) ([]byte, error) { return []byte("private"), nil })
	}

	// A store opened without a key works, except for secrets.
	s := openAt(t, path, store.BoltOptions{})
	if err := s.SetKV(ctx, "ns", "k", []byte("v")); err != nil {
		t.Fatalf("SetKV without a master key: %v", err)
	}
	err := setSecret(s)
	if !errors.Is(err, store.ErrNoMasterKey) || !strings.Contains(err.Error(), "FLOWD_MASTER_KEY") {
		t.Errorf("UpdateSecret without a key: error = %v, want ErrNoMasterKey naming FLOWD_MASTER_KEY", err)
	}
	s.Close()

	// The first key given is recorded.
	s = openAt(t, path, store.BoltOptions{MasterKey: key})
	if err := setSecret(s); err != nil {
		t.Fatal(err)
	}
	s.Close()

	_, err = store.OpenBolt(path, store.BoltOptions{MasterKey: other})
	if !errors.Is(err, store.ErrMasterKey) || !strings.Contains(err.Error(), path) {
		t.Errorf("open with another key: error = %v, want ErrMasterKey naming %s", err, path)
	}
	_, err = store.OpenBolt(path, store.BoltOptions{MasterKey: key[:16]})
	if !errors.Is(err, store.ErrInvalid) {
		t.Errorf("open with a 16-byte key: error = %v, want ErrInvalid", err)
	}

	// Without a key the data stays readable, secrets stay shut.
	s = openAt(t, path, store.BoltOptions{})
	if _, err := s.GetSecret(ctx, "jwk", "main"); !errors.Is(err, store.ErrNoMasterKey) {
		t.Errorf("GetSecret without a key: error = %v, want ErrNoMasterKey", err)
	}
	if _, err := s.ListSecrets(ctx, "jwk"); !errors.Is(err, store.ErrNoMasterKey) {
		t.Errorf("ListSecrets without a key: error = %v, want ErrNoMasterKey", err)
	}
	if err := s.DeleteSecret(ctx, "jwk", "main"); !errors.Is(err, store.ErrNoMasterKey) {
		t.Errorf("DeleteSecret without a key: error = %v, want ErrNoMasterKey", err)
	}
	if v, err := s.GetKV(ctx, "ns", "k"); err != nil || string(v) != "v" {
		t.Errorf("GetKV without a key = %q, %v", v, err)
	}
	s.Close()

	s = openAt(t, path, store.BoltOptions{MasterKey: key})
	if v, err := s.GetSecret(ctx, "jwk", "main"); err != nil || string(v) != "private" {
		t.Errorf("GetSecret with the right key = %q, %v", v, err)
	}
}

func TestTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flowd.db")
	s := openAt(t, path, store.BoltOptions{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(store.BucketMeta).Put(store.KeySchemaVersion, binary.BigEndian.AppendUint64(nil, 7))
	})
	_, err := store.OpenBolt(path, store.BoltOptions{})
	if !errors.Is(err, store.ErrTooNew) {
		t.Fatalf("error = %v, want ErrTooNew", err)
	}
	if want := fmt.Sprintf("store: %s has schema version 7 but this flowd knows up to 1: upgrade flowd", path); err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}
	// The refusal must leave the file as it was for the newer flowd.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(store.BucketMeta).Get(store.KeySchemaVersion); binary.BigEndian.Uint64(v) != 7 {
			t.Errorf("schema version after refusal = %x, want 7", v)
		}
		return nil
	})
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flowd.db")
	openAt(t, path, store.BoltOptions{})
	_, err := store.OpenBolt(path, store.BoltOptions{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Errorf("second open: error = %v, want ErrLocked naming %s", err, path)
	}
}

func TestOpenErrorsHaveContext(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "not.db")
	if err := os.WriteFile(notDB, bytes.Repeat([]byte("garbage!"), 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{notDB, filepath.Join(dir, "missing", "dir", "flowd.db")} {
		_, err := store.OpenBolt(path, store.BoltOptions{})
		if err == nil || !strings.HasPrefix(err.Error(), "store: open "+path+": ") {
			t.Errorf("OpenBolt(%s) error = %v, want it to start with %q", path, err, "store: open "+path+": ")
		}
	}
}

func TestSecretsEncryptedAtRest(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "flowd.db")
	s := openAt(t, path, store.BoltOptions{MasterKey: newKey(t)})
	const secret, plain = "s3cr3t-VALUE-4f1c9a0e77", "pl41n-VALUE-6be0d2c1"
	if err := s.UpdateSecret(ctx, "jwk", "main", func([]byte) ([]byte, error) { return []byte(secret), nil }); err != nil {
		t.Fatal(err)
	}
	// The control: a KV value is plain, so the scan below can find values.
	if err := s.SetKV(ctx, "ns", "k", []byte(plain)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(plain)) {
		t.Fatal("control value not found in the raw file: the scan is broken")
	}
	if bytes.Contains(raw, []byte(secret)) {
		t.Error("secret value found in plaintext in the database file")
	}
}

func TestSecretBoundToName(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "flowd.db")
	key := newKey(t)
	s := openAt(t, path, store.BoltOptions{MasterKey: key})
	for _, name := range []string{"a", "b"} {
		if err := s.UpdateSecret(ctx, "jwk", name, func([]byte) ([]byte, error) { return []byte("value of " + name), nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.UpdateSecret(ctx, "client", "c", func([]byte) ([]byte, error) { return []byte("client"), nil }); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Copy a's sealed bytes over b, and into another kind under a's name.
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		secrets := tx.Bucket(store.BucketSecrets)
		sealed := bytes.Clone(secrets.Bucket([]byte("jwk")).Get([]byte("a")))
		if err := secrets.Bucket([]byte("jwk")).Put([]byte("b"), sealed); err != nil {
			return err
		}
		return secrets.Bucket([]byte("client")).Put([]byte("a"), sealed)
	})

	s = openAt(t, path, store.BoltOptions{MasterKey: key})
	tests := []struct{ kind, name string }{{"jwk", "b"}, {"client", "a"}}
	for _, tt := range tests {
		v, err := s.GetSecret(ctx, tt.kind, tt.name)
		if err == nil || v != nil || !errors.Is(err, store.ErrMasterKey) {
			t.Errorf("GetSecret %s/%s of moved ciphertext = %q, %v; want ErrMasterKey and no value", tt.kind, tt.name, v, err)
		}
		// An update must not silently replace what it cannot read.
		called := false
		err = s.UpdateSecret(ctx, tt.kind, tt.name, func([]byte) ([]byte, error) { called = true; return []byte("x"), nil })
		if err == nil || called {
			t.Errorf("UpdateSecret %s/%s of moved ciphertext: error %v, fn called %v", tt.kind, tt.name, err, called)
		}
	}
	if v, err := s.GetSecret(ctx, "jwk", "a"); err != nil || string(v) != "value of a" {
		t.Errorf("original secret = %q, %v", v, err)
	}
}

func TestCorruptRecord(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "flowd.db")
	s := openAt(t, path, store.BoltOptions{})
	if _, err := s.PutFlow(ctx, "f", []byte("{}"), store.AnyRev); err != nil {
		t.Fatal(err)
	}
	s.Close()
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(store.BucketFlows).Bucket([]byte("f")).Put(store.KeyRev, []byte{1, 2, 3})
	})
	s = openAt(t, path, store.BoltOptions{})
	_, err := s.GetFlow(ctx, "f")
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("GetFlow of a damaged record: error = %v, want a corrupt record error", err)
	}
	if _, err := s.ListFlows(ctx); err == nil {
		t.Error("ListFlows with a damaged record: no error")
	}
}

func TestLoadMasterKeyEnv(t *testing.T) {
	key := bytes.Repeat([]byte{0xfb, 0xef, 0x01, 0x7e}, 8) // has +/ and -_ in base64
	tests := []struct {
		name    string
		env     string
		want    []byte
		wantErr string
	}{
		{"base64 std", base64.StdEncoding.EncodeToString(key), key, ""},
		{"base64 raw std", base64.RawStdEncoding.EncodeToString(key), key, ""},
		{"base64 url", base64.URLEncoding.EncodeToString(key), key, ""},
		{"base64 raw url", base64.RawURLEncoding.EncodeToString(key), key, ""},
		{"hex", hex.EncodeToString(key), key, ""},
		{"hex upper", strings.ToUpper(hex.EncodeToString(key)), key, ""},
		{"surrounding space", " " + base64.StdEncoding.EncodeToString(key) + "\n", key, ""},
		{"16 bytes base64", base64.StdEncoding.EncodeToString(key[:16]), nil, "decodes to 16 bytes, want 32"},
		{"33 bytes base64", base64.StdEncoding.EncodeToString(append(key, 1)), nil, "decodes to 33 bytes, want 32"},
		{"62 hex chars", hex.EncodeToString(key[:31]), nil, "want 32"},
		{"garbage", "not a key!!", nil, "neither base64 nor 64 hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			got, created, err := store.LoadMasterKey(dir, func(k string) string {
				if k == store.MasterKeyEnv {
					return tt.env
				}
				return ""
			})
			if tt.wantErr != "" {
				if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "FLOWD_MASTER_KEY") {
					t.Errorf("error = %v, want ErrInvalid naming FLOWD_MASTER_KEY and containing %q", err, tt.wantErr)
				}
				if err != nil && strings.TrimSpace(tt.env) != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.env)) {
					t.Errorf("error %q repeats the key", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) || created {
				t.Errorf("key = %x, created = %v; want %x, false", got, created, tt.want)
			}
			// The environment wins: no key file is made.
			if _, err := os.Stat(filepath.Join(dir, store.MasterKeyFile)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("key file exists although %s was set (stat error %v)", store.MasterKeyEnv, err)
			}
		})
	}
}

func TestLoadMasterKeyFile(t *testing.T) {
	noEnv := func(string) string { return "" }
	dir := filepath.Join(t.TempDir(), "data") // created on demand
	key, created, err := store.LoadMasterKey(dir, noEnv)
	if err != nil || !created || len(key) != 32 {
		t.Fatalf("first load = %d bytes, created %v, %v; want a new 32-byte key", len(key), created, err)
	}
	path := filepath.Join(dir, store.MasterKeyFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", perm)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only the key file (temp file left behind?)", len(entries))
	}

	again, created, err := store.LoadMasterKey(dir, noEnv)
	if err != nil || created || !bytes.Equal(again, key) {
		t.Errorf("second load = %x, created %v, %v; want the same key, not created", again, created, err)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = store.LoadMasterKey(dir, noEnv)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("0644 key file: error = %v, want one telling to chmod 600", err)
	}

	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = store.LoadMasterKey(dir, noEnv)
	if !errors.Is(err, store.ErrInvalid) || strings.Contains(err.Error(), "short") {
		t.Errorf("bad key file: error = %v, want ErrInvalid not repeating the content", err)
	}
}

// Crash safety: a child process writes and acknowledges each write on
// stdout once the call has returned; it is SIGKILLed mid-stream, and every
// acknowledged write must be in the file when it is opened again.

const (
	crashPathEnv = "FLOWD_STORE_CRASH_CHILD_DB"
	crashKeyEnv  = "FLOWD_STORE_CRASH_CHILD_KEY"
	crashAcks    = 300 // kv acks to wait for before the kill
)

func crashDoc(rev int64) string { return fmt.Sprintf(`{"rev":%d}`, rev) }

func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashPathEnv)
	if path == "" {
		t.Skip("helper process for TestCrashSafety")
	}
	key, err := hex.DecodeString(os.Getenv(crashKeyEnv))
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.OpenBolt(path, store.BoltOptions{MasterKey: key})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Bounded so an orphaned child cannot run forever; the parent kills it
	// long before.
	for i := range 100_000 {
		k, v := fmt.Sprintf("k%06d", i), fmt.Sprintf("v%06d-%d", i, i*7919)
		if err := s.SetKV(ctx, "crash", k, []byte(v)); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ack kv %s %s\n", k, v)
		if i%20 == 0 {
			rec, err := s.PutFlow(ctx, "f", []byte(crashDoc(int64(i/20+1))), store.AnyRev)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Printf("ack flow %d\n", rec.Rev)
			var n int
			if err := s.UpdateSecret(ctx, "crash", "counter", func(old []byte) ([]byte, error) {
				if old != nil {
					n, _ = strconv.Atoi(string(old))
				}
				n++
				return []byte(strconv.Itoa(n)), nil
			}); err != nil {
				t.Fatal(err)
			}
			fmt.Printf("ack secret %d\n", n)
		}
	}
}

func TestCrashSafety(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SIGKILL crash test runs on Linux")
	}
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "crash.db")
	key := newKey(t)

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashPathEnv+"="+path, crashKeyEnv+"="+hex.EncodeToString(key))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	kv := map[string]string{}
	var flowRev, secretN int64
	killed := false
	r := bufio.NewReader(stdout)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			// A line cut by the kill has no newline and was never acknowledged.
			if err != io.EOF {
				t.Fatal(err)
			}
			break
		}
		switch f := strings.Fields(line); {
		case len(f) == 4 && f[0] == "ack" && f[1] == "kv":
			kv[f[2]] = f[3]
		case len(f) == 3 && f[0] == "ack" && f[1] == "flow":
			flowRev, _ = strconv.ParseInt(f[2], 10, 64)
		case len(f) == 3 && f[0] == "ack" && f[1] == "secret":
			secretN, _ = strconv.ParseInt(f[2], 10, 64)
		}
		if !killed && len(kv) >= crashAcks {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	waitErr := cmd.Wait()
	if !killed {
		t.Fatalf("child ended after %d acks without being killed: %v\n%s", len(kv), waitErr, stderr.Bytes())
	}
	if flowRev == 0 || secretN == 0 {
		t.Fatalf("no flow or secret acks (flow rev %d, secret %d)", flowRev, secretN)
	}

	s, err := store.OpenBolt(path, store.BoltOptions{MasterKey: key})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	for k, want := range kv {
		got, err := s.GetKV(ctx, "crash", k)
		if err != nil || string(got) != want {
			t.Errorf("acknowledged kv %s = %q, %v; want %q", k, got, err, want)
		}
	}
	// The kill can land between a commit and its ack, so the stored state
	// may be one step ahead of the last ack, never behind.
	rec, err := s.GetFlow(ctx, "f")
	if err != nil || rec.Rev < flowRev || rec.Rev > flowRev+1 || string(rec.Doc) != crashDoc(rec.Rev) {
		t.Errorf("flow after crash = rev %d doc %s, %v; acknowledged rev %d", rec.Rev, rec.Doc, err, flowRev)
	}
	v, err := s.GetSecret(ctx, "crash", "counter")
	n, _ := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < secretN || n > secretN+1 {
		t.Errorf("secret counter after crash = %q, %v; acknowledged %d", v, err, secretN)
	}
	t.Logf("%d kv, flow rev %d, secret %d acknowledged before SIGKILL; all present", len(kv), flowRev, secretN)
}

func benchStore(b *testing.B) *store.Bolt {
	return openAt(b, filepath.Join(b.TempDir(), "flowd.db"), store.BoltOptions{MasterKey: newKey(b)})
}

func BenchmarkPutFlow(b *testing.B) {
	s := benchStore(b)
	doc := bytes.Repeat([]byte(`{"node":"x"},`), 200)
	for b.Loop() {
		if _, err := s.PutFlow(b.Context(), "f", doc, store.AnyRev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendRuns50(b *testing.B) {
	s := benchStore(b)
	data := bytes.Repeat([]byte("t"), 2048)
	batch := make([]store.RunRecord, 50)
	start := time.Now()
	i := 0
	for b.Loop() {
		for j := range batch {
			i++
			batch[j] = store.RunRecord{Flow: "f", ID: fmt.Sprintf("r%09d", i), Started: start.Add(time.Duration(i)), Data: data}
		}
		if err := s.AppendRuns(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetKV(b *testing.B) {
	s := benchStore(b)
	for i := range 1000 {
		if err := s.SetKV(b.Context(), "ns", fmt.Sprintf("k%04d", i), []byte("value")); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if _, err := s.GetKV(b.Context(), "ns", "k0500"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdateKV is the write shape of sign-ins (one read-modify-write
// of a small record per commit).
func BenchmarkUpdateKV(b *testing.B) {
	s := benchStore(b)
	i := 0
	for b.Loop() {
		i++
		key := fmt.Sprintf("k%04d", i%1000)
		if err := s.UpdateKV(b.Context(), "ns", key, func(old []byte) ([]byte, error) {
			return append(old[:0:0], "value"...), nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// The feed revision and the deploy generation survive a reopen: they keep
// growing, and a watch from before the reopen is told to re-list.
func TestBoltFeedAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flowd.db")
	key := newKey(t)
	s, err := store.OpenBolt(path, store.BoltOptions{MasterKey: key})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := s.PutFlow(ctx, "f", []byte("{}"), store.AnyRev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddVersion(ctx, "f", []byte("{}"), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.SetKV(ctx, "ns", "k", nil); err != nil {
		t.Fatal(err)
	}
	rev1, _ := s.Rev(ctx)
	ds1, _ := s.DesiredState(ctx)
	// Runs are not in the feed: appending them moves nothing.
	if err := s.AppendRuns(ctx, []store.RunRecord{{Flow: "f", ID: "r", Started: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if rev, _ := s.Rev(ctx); rev != rev1 {
		t.Errorf("AppendRuns moved the feed revision %d -> %d", rev1, rev)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path, store.BoltOptions{MasterKey: key})
	rev2, err := s.Rev(ctx)
	if err != nil || rev2 != rev1 {
		t.Fatalf("Rev after reopen = %d, %v; want %d", rev2, err, rev1)
	}
	if ds2, _ := s.DesiredState(ctx); ds2.Gen != ds1.Gen || len(ds2.Flows) != 1 {
		t.Errorf("DesiredState after reopen = %+v, want gen %d and flow f", ds2, ds1.Gen)
	}
	if _, err := s.Watch(ctx, rev1-1, store.Filter{}); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("Watch from before the reopen: %v, want ErrCompacted", err)
	}
	ch, err := s.Watch(ctx, rev2, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeployed(ctx, "f", 0); err != nil {
		t.Fatal(err)
	}
	ev := <-ch
	if ev.Rev != rev1+1 || len(ev.Changes) != 2 {
		t.Errorf("first event after reopen = %+v, want revision %d with flow and deploy changes", ev, rev1+1)
	}
	if ds3, _ := s.DesiredState(ctx); ds3.Gen != ds1.Gen+1 {
		t.Errorf("deploy generation after reopen and undeploy = %d, want %d", ds3.Gen, ds1.Gen+1)
	}
}

// On one node the only handle always leads, at once.
func TestBoltCampaignImmediate(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "flowd.db"), store.BoltOptions{MasterKey: newKey(t)})
	ctx, cancel := context.WithTimeout(t.Context(), time.Second) // a hang guard
	defer cancel()
	l, err := s.Campaign(ctx, "scheduler")
	if err != nil {
		t.Fatalf("Campaign: %v", err)
	}
	if err := s.Register(ctx, store.NodeInfo{ID: "local"}); err != nil {
		t.Fatal(err)
	}
	if nodes, err := s.Nodes(ctx); err != nil || len(nodes) != 1 || nodes[0].ID != "local" {
		t.Errorf("Nodes = %+v, %v", nodes, err)
	}
	if err := l.Resign(ctx); err != nil {
		t.Fatal(err)
	}
}
