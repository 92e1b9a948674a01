package passhash

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cheapHash is an argon2id hash with tiny parameters, so pool tests
// measure the pool, not argon2.
func cheapHash(secret string) string {
	a := argonParams{m: 8, t: 1, p: 1, salt: []byte("0123456789abcdef"), key: make([]byte, 32)}
	a.key = argonKey(a, secret)
	return encodeArgon(a)
}

// counter counts computations and the most that ran at once.
type counter struct {
	n, most atomic.Int32
}

func (c *counter) observe(running int) {
	c.n.Add(1)
	for {
		m := c.most.Load()
		if int32(running) <= m || c.most.CompareAndSwap(m, int32(running)) {
			return
		}
	}
}

func TestVerify(t *testing.T) {
	const secret = "correct horse battery"
	argon := cheapHash(secret)
	random := HashRandom(secret)
	for _, tc := range []struct {
		name, encoded, secret string
		want                  bool
		computations          int32
	}{
		{"argon2id right", argon, secret, true, 1},
		{"argon2id wrong", argon, secret + "x", false, 1},
		{"generated right: no argon2id", random, secret, true, 0},
		{"generated wrong: one dummy argon2id", random, secret + "x", false, 1},
		{"empty", "", secret, false, 1},
		{"bare prefix", "$argon2id$", secret, false, 1},
		{"huge memory", "$argon2id$v=19$m=999999999,t=1,p=1$AAAA$AAAA", secret, false, 1},
		{"huge time", "$argon2id$v=19$m=1024,t=99,p=1$AAAA$AAAA", secret, false, 1},
		{"argon2i", "$argon2i$v=19$m=1024,t=1,p=1$AAAA$AAAA", secret, false, 1},
		{"zero threads", "$argon2id$v=19$m=1024,t=1,p=0$AAAA$AAAA", secret, false, 1},
		{"sha256 bad base64", "$sha256$!!!", secret, false, 1},
		{"sha256 short digest", "$sha256$AAAA", secret, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c counter
			h := New(Options{Observe: c.observe})
			got, err := h.Verify(t.Context(), tc.encoded, tc.secret)
			if err != nil || got != tc.want || c.n.Load() != tc.computations {
				t.Fatalf("Verify = %v, %v after %d computations; want %v after %d", got, err, c.n.Load(), tc.want, tc.computations)
			}
		})
	}
}

func TestHashRoundTrip(t *testing.T) {
	var c counter
	h := New(Options{Observe: c.observe})
	enc, err := h.Hash(t.Context(), "a password of some length")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := h.Verify(t.Context(), enc, "a password of some length"); !ok || err != nil {
		t.Fatalf("own hash does not verify: %v %v", ok, err)
	}
	if _, ok := parseArgon(enc); !ok || c.n.Load() != 2 {
		t.Fatalf("hash %q, %d computations", enc, c.n.Load())
	}
}

func TestNewDoesNoWork(t *testing.T) {
	var c counter
	h := New(Options{Observe: c.observe})
	_ = h.dummy("anything")
	if c.n.Load() != 0 {
		t.Fatalf("New and a dummy hash ran %d argon2id computations", c.n.Load())
	}
}

// holder fills a Hasher's slots: each computation blocks in Observe until
// release is closed, and entered says when one is in.
type holder struct {
	entered chan struct{}
	release chan struct{}
}

func newHolder() *holder {
	return &holder{entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (hd *holder) observe(int) {
	hd.entered <- struct{}{}
	<-hd.release
}

func TestBusyWhenFull(t *testing.T) {
	hd := newHolder()
	var busy atomic.Int32
	h := New(Options{Concurrency: 2, Wait: time.Millisecond, Observe: hd.observe, OnBusy: func() { busy.Add(1) }})
	enc := cheapHash("s")
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { h.Verify(context.Background(), enc, fmt.Sprint("wrong", i)) }) //nolint:errcheck
	}
	<-hd.entered
	<-hd.entered
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"verify", func() error { _, err := h.Verify(t.Context(), enc, "third"); return err }},
		{"fail", func() error { return h.Fail(t.Context(), "nobody", "third") }},
		{"hash", func() error { _, err := h.Hash(t.Context(), "third"); return err }},
		{"generated secret needs no slot", func() error {
			ok, err := h.Verify(t.Context(), HashRandom("right"), "right")
			if !ok && err == nil {
				return errors.New("refused")
			}
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if tc.name == "generated secret needs no slot" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrBusy) {
				t.Fatalf("err = %v, want ErrBusy", err)
			}
		})
	}
	if got := busy.Load(); got != 3 {
		t.Errorf("OnBusy called %d times, want 3 (verify, fail, hash)", got)
	}
	if got := h.RetryAfter(); got < time.Second {
		t.Errorf("RetryAfter = %s, want at least 1s", got)
	}
	close(hd.release)
	wg.Wait()
	if ok, err := h.Verify(t.Context(), enc, "s"); !ok || err != nil {
		t.Fatalf("after the slots freed: %v %v", ok, err)
	}
}

func TestConcurrencyBound(t *testing.T) {
	var c counter
	h := New(Options{Concurrency: 3, Wait: time.Minute, Observe: c.observe})
	enc := cheapHash("s")
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() { h.Verify(t.Context(), enc, fmt.Sprint("wrong", i)) }) //nolint:errcheck
	}
	wg.Wait()
	if c.n.Load() != 64 || c.most.Load() > 3 {
		t.Fatalf("%d computations, at most %d at once; want 64, at most 3", c.n.Load(), c.most.Load())
	}
}

func TestSingleflight(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret string
		want   bool
	}{
		{"right secret", "s", true},
		{"wrong secret", "nope", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 16
			hd := newHolder()
			var c counter
			h := New(Options{Concurrency: 4, Wait: time.Minute, Observe: func(r int) { c.observe(r); hd.observe(r) }})
			joined := make(chan struct{}, n)
			h.onJoin = func() { joined <- struct{}{} }
			enc := cheapHash("s")
			results := make(chan bool, n)
			for range n {
				go func() {
					ok, err := h.Verify(context.Background(), enc, tc.secret)
					results <- ok && err == nil
				}()
			}
			<-hd.entered
			for range n - 1 {
				<-joined
			}
			close(hd.release)
			for range n {
				if got := <-results; got != tc.want {
					t.Fatalf("a caller got %v, want %v", got, tc.want)
				}
			}
			if c.n.Load() != 1 {
				t.Fatalf("%d computations for %d identical requests, want 1", c.n.Load(), n)
			}
			h.mu.Lock()
			left := len(h.calls)
			h.mu.Unlock()
			if left != 0 {
				t.Fatalf("%d calls left in the map", left)
			}
		})
	}
}

func TestFollowerLeavesOnItsContext(t *testing.T) {
	hd := newHolder()
	h := New(Options{Concurrency: 1, Wait: time.Minute, Observe: hd.observe})
	joined := make(chan struct{}, 1)
	h.onJoin = func() { joined <- struct{}{} }
	enc := cheapHash("s")
	go h.Verify(context.Background(), enc, "s") //nolint:errcheck
	<-hd.entered
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { _, err := h.Verify(ctx, enc, "s"); done <- err }()
	<-joined
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	close(hd.release)
}

func TestVerifyCached(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var c counter
	h := New(Options{Observe: c.observe, CacheTTL: time.Minute, Now: func() time.Time { return now }})
	enc, other := cheapHash("s"), cheapHash("t")
	for _, tc := range []struct {
		name         string
		advance      time.Duration
		cached       bool
		encoded      string
		secret       string
		want         bool
		computations int32
	}{
		{"plain Verify does not remember", 0, false, enc, "s", true, 1},
		{"so the next one computes", 0, true, enc, "s", true, 1},
		{"now cached", 30 * time.Second, true, enc, "s", true, 0},
		{"wrong secret not cached", 0, true, enc, "x", false, 1},
		{"another hash (a changed secret) misses", 0, true, other, "s", false, 1},
		{"plain Verify ignores the cache", 0, false, enc, "s", true, 1},
		{"expired", time.Minute, true, enc, "s", true, 1},
	} {
		now = now.Add(tc.advance)
		before := c.n.Load()
		verify := h.Verify
		if tc.cached {
			verify = h.VerifyCached
		}
		got, err := verify(t.Context(), tc.encoded, tc.secret)
		if err != nil || got != tc.want || c.n.Load()-before != tc.computations {
			t.Fatalf("%s: %v, %v after %d computations; want %v after %d", tc.name, got, err, c.n.Load()-before, tc.want, tc.computations)
		}
	}
	if !h.Cached(enc, "s") || h.Cached(enc, "x") {
		t.Fatal("Cached disagrees with VerifyCached")
	}
}
