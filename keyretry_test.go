package flowd_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/flows/examples"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/storetest"
)

// errInjected is the keyset write failure failingKeysets injects.
var errInjected = errors.New("injected keyset write failure")

// failingKeysets fails the first fail writes of keyset records; the write
// after them (the first that goes through) waits for release, so a test
// can look at what flowd answers while the keyset is still missing.
type failingKeysets struct {
	store.Store
	fail int

	mu       sync.Mutex
	writes   int
	attempts chan int      // each write's number, as it starts
	release  chan struct{} // closed: the first successful write may go on
}

func (s *failingKeysets) UpdateSecret(ctx context.Context, kind, name string, fn func([]byte) ([]byte, error)) error {
	if kind != "keyset" {
		return s.Store.UpdateSecret(ctx, kind, name, fn)
	}
	s.mu.Lock()
	s.writes++
	n := s.writes
	s.mu.Unlock()
	select {
	case s.attempts <- n:
	default:
	}
	if n <= s.fail {
		return errInjected
	}
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.UpdateSecret(ctx, kind, name, fn)
}

// TestFirstKeyGenerationFailureRecovers: the prebuilt key-rollover flow's
// first generation of keyset main fails (a store write), as it may on a
// loaded machine. flowd tries again on its own (not at the next daily
// tick), says why at warn with the keyset's name, and meanwhile answers
// the JWKS and token requests 503 temporarily_unavailable with
// Retry-After, not an anonymous 500.
func TestFirstKeyGenerationFailureRecovers(t *testing.T) {
	bolt := storetest.TempBolt(t)
	released := make(chan struct{})
	close(released)
	st := &failingKeysets{Store: bolt, fail: 2, attempts: make(chan int, 16), release: released}
	var logs enginetest.LogBuffer
	var waitsMu sync.Mutex
	var waits []time.Duration
	resting, wake := make(chan struct{}), make(chan struct{})
	fd := flowd.NewTest(t, flowd.Options{Store: st, Runs: bolt, Examples: examples.FS, Issuer: "http://flowd.test",
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		// The retry's back-off waits here: no real time passes; the
		// second wait lasts until the test has looked at the endpoints.
		Sleep: func(ctx context.Context, d time.Duration) error {
			waitsMu.Lock()
			waits = append(waits, d)
			n := len(waits)
			waitsMu.Unlock()
			if n == 2 {
				close(resting)
				select {
				case <-wake:
				case <-ctx.Done():
				}
			}
			return ctx.Err()
		}})
	fd.Keysets().RSABits = 2048 // generation time, not strength, matters here
	_, secret, err := fd.Clients().Add(t.Context(), oauth.Client{ID: "svc", Scopes: []string{"read"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := fd.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := beforeDeadline(t, t.Context())
	defer cancel()
	for want := 1; want <= st.fail; want++ {
		select {
		case n := <-st.attempts:
			if n != want {
				t.Fatalf("keyset write %d, want %d", n, want)
			}
		case <-ctx.Done():
			t.Fatalf("keyset main: %d failed first generation(s), then no retry (writes seen: %d); log:\n%s", want, want-1, logs.String())
		}
	}
	select {
	case <-resting:
	case <-ctx.Done():
		t.Fatalf("no wait before the third attempt; log:\n%s", logs.String())
	}

	// Two attempts failed, the third waits for its turn: keyset main does
	// not exist yet, and nothing is making it right now.
	h := fd.Handler()
	get := httptest.NewRecorder()
	h.ServeHTTP(get, httptest.NewRequest("GET", "/.well-known/jwks.json", nil))
	tok := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("svc", secret)
	h.ServeHTTP(tok, req)
	for _, tc := range []struct {
		name string
		w    *httptest.ResponseRecorder
	}{{"jwks", get}, {"token", tok}} {
		t.Run("while missing/"+tc.name, func(t *testing.T) {
			var body map[string]any
			err := json.Unmarshal(tc.w.Body.Bytes(), &body)
			checks := []struct {
				what      string
				got, want any
			}{
				{"status", tc.w.Code, http.StatusServiceUnavailable},
				{"Retry-After set", tc.w.Header().Get("Retry-After") != "", true},
				{"JSON body", err == nil, true},
				{"error", body["error"], "temporarily_unavailable"},
				{"description names the keyset", strings.Contains(toString(body["error_description"]), `keyset "main"`), true},
				{"run id", toString(body["run_id"]) != "", true},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: got %v, want %v (body %s)", c.what, c.got, c.want, tc.w.Body.String())
				}
			}
		})
	}

	close(wake)
	waitForMain(t, fd)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/.well-known/jwks.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("JWKS after the retry: %d %s", rec.Code, rec.Body.String())
	}

	waitsMu.Lock()
	got := append([]time.Duration(nil), waits...)
	waitsMu.Unlock()
	if len(got) < st.fail {
		t.Fatalf("back-off waits %v, want %d", got, st.fail)
	}
	// 1 s, then 2 s, each jittered by up to a fifth either way.
	for i, base := range []time.Duration{time.Second, 2 * time.Second} {
		if lo, hi := base*4/5, base*6/5; got[i] < lo || got[i] > hi {
			t.Errorf("back-off wait %d is %s, want %s to %s", i+1, got[i], lo, hi)
		}
	}
	text := logs.String()
	var failures int
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "keyset=main") && strings.Contains(line, errInjected.Error()) {
			failures++
		}
		for _, secret := range []string{`"d":`, `\"d\":`, "PRIVATE KEY"} {
			if strings.Contains(line, secret) {
				t.Errorf("a log line carries key material (%s): %s", secret, line)
			}
		}
	}
	if failures < st.fail {
		t.Errorf("%d warnings naming keyset main and the error, want %d; log:\n%s", failures, st.fail, text)
	}
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}

// TestFailedRotationIsRetried: the prebuilt key-rollover flow's daily
// rotation (here the catch-up of a tick missed while flowd was down)
// fails on a store write; the schedule runs it again for the same tick
// after its back-off instead of waiting a day for the next one, and the
// keyset is rotated once.
func TestFailedRotationIsRetried(t *testing.T) {
	bolt := storetest.TempBolt(t)
	var mu sync.Mutex
	clock := time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	noWait := func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	start := func(st store.Store, logs *enginetest.LogBuffer) *flowd.Flowd {
		fd := flowd.NewTest(t, flowd.Options{Store: st, Runs: bolt, Examples: examples.FS, Issuer: "http://flowd.test",
			Clock: now, Sleep: noWait, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		fd.Keysets().RSABits = 2048
		if err := fd.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		return fd
	}
	var first enginetest.LogBuffer
	fd := start(bolt, &first)
	waitForMain(t, fd)
	before, err := fd.Keysets().Get(t.Context(), "main")
	if err != nil {
		t.Fatal(err)
	}
	if err := fd.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	clock = clock.Add(48 * time.Hour) // down over two 03:00 ticks: the start catches up
	mu.Unlock()
	released := make(chan struct{})
	close(released)
	st := &failingKeysets{Store: bolt, fail: 1, attempts: make(chan int, 16), release: released}
	var logs enginetest.LogBuffer
	fd = start(st, &logs)
	// The run is recorded after the rotation it made: wait for both.
	eventually(t, "keyset main rotated and the run recorded", func() bool {
		info, err := fd.Scheduler().Get("key-rollover", "daily", 0)
		if err != nil || info.LastRun == nil || info.LastRun.Status != "ok" {
			return false
		}
		ks, err := fd.Keysets().Get(t.Context(), "main")
		return err == nil && slices.ContainsFunc(ks.Keys, func(k jose.KeyInfo) bool { return k.State == jose.StateRetired })
	})
	after, err := fd.Keysets().Get(t.Context(), "main")
	if err != nil {
		t.Fatal(err)
	}
	text := logs.String()
	checks := []struct {
		what      string
		got, want any
	}{
		{"keyset writes (one failed, one rotation)", len(st.attempts), 2},
		{"rotated once: one new key per alg", len(after.Keys), len(before.Keys) + 2},
		{"rotation failure logged with the keyset", strings.Contains(text, "keyset=main") && strings.Contains(text, "rotating keys failed"), true},
		{"retry logged", strings.Contains(text, `msg="schedule: run failed; trying again" flow=key-rollover node=daily`), true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v; log:\n%s", c.what, c.got, c.want, text)
		}
	}
}
