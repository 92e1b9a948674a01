package oauth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/passhash"
)

// hashCount counts argon2id computations and the most running at once;
// hold, when set, blocks each computation until it is closed.
type hashCount struct {
	n, most atomic.Int32
	entered chan struct{}
	hold    chan struct{}
}

func newHashCount() *hashCount { return &hashCount{entered: make(chan struct{}, 1000)} }

func (c *hashCount) observe(running int) {
	c.n.Add(1)
	for m := c.most.Load(); int32(running) > m && !c.most.CompareAndSwap(m, int32(running)); m = c.most.Load() {
	}
	c.entered <- struct{}{}
	if c.hold != nil {
		<-c.hold
	}
}

// poolClients is a registry on a counted pool with a roomy throttle (each
// test that is about the throttle sets its own).
func poolClients(t *testing.T, conc int, wait time.Duration, hc *hashCount) *Clients {
	t.Helper()
	c, _ := newClients(t)
	c.SetHasher(passhash.New(passhash.Options{Concurrency: conc, Wait: wait, Observe: hc.observe}))
	c.SetThrottle(passhash.NewThrottle(passhash.ThrottleOptions{Free: 100000}))
	return c
}

// Every failure costs one argon2id computation, whatever the id.
func TestAuthenticateSamePathForUnknownAndKnown(t *testing.T) {
	hc := newHashCount()
	c := poolClients(t, 2, time.Minute, hc)
	ctx := t.Context()
	_, generated, err := c.Add(ctx, Client{ID: "gen"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Add(ctx, Client{ID: "hand"}, "a secret set by hand"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Add(ctx, Client{ID: "pub", Public: true, GrantTypes: []string{"authorization_code"},
		RedirectURIs: []string{"https://app.example/cb"}}, ""); err != nil {
		t.Fatal(err)
	}
	hc.n.Store(0)
	for _, tc := range []struct {
		name, id, secret string
		ok               bool
		computations     int32
	}{
		{"unknown id", "ghost", "whatever-secret-1", false, 1},
		{"malformed id", "../../x", "whatever-secret-1", false, 1},
		{"generated secret, wrong", "gen", generated + "x", false, 1},
		{"hand-set secret, wrong", "hand", "a secret set by hanD", false, 1},
		{"public client with a secret", "pub", "whatever-secret-1", false, 1},
		{"generated secret, right: no argon2id", "gen", generated, true, 0},
		{"hand-set secret, right", "hand", "a secret set by hand", true, 1},
		{"hand-set secret, right again: cached", "hand", "a secret set by hand", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := hc.n.Load()
			_, err := c.Authenticate(ctx, tc.id, tc.secret)
			if got := hc.n.Load() - before; got != tc.computations {
				t.Errorf("%d argon2id computations, want %d", got, tc.computations)
			}
			if tc.ok != (err == nil) || !tc.ok && (!errors.Is(err, ErrInvalidClient) || err.Error() != ErrInvalidClient.Error()) {
				t.Fatalf("err = %v, want ok=%v or exactly %v", err, tc.ok, ErrInvalidClient)
			}
		})
	}
}

func TestWrongSecretsStayWithinThePool(t *testing.T) {
	hc := newHashCount()
	c := poolClients(t, 2, time.Minute, hc)
	if _, _, err := c.Add(t.Context(), Client{ID: "svc"}, "a secret set by hand"); err != nil {
		t.Fatal(err)
	}
	hc.n.Store(0)
	var wg sync.WaitGroup
	for i := range 64 {
		id := "svc"
		if i%2 == 1 {
			id = fmt.Sprint("ghost-", i)
		}
		wg.Go(func() {
			if _, err := c.Authenticate(context.Background(), id, fmt.Sprint("wrong secret ", i)); !errors.Is(err, ErrInvalidClient) {
				t.Errorf("request %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if n, most := hc.n.Load(), hc.most.Load(); n != 64 || most > 2 {
		t.Fatalf("%d computations, at most %d at once; want 64, at most 2 (the pool's size)", n, most)
	}
}

func TestBusyPool(t *testing.T) {
	hc := newHashCount()
	hc.hold = make(chan struct{})
	c := poolClients(t, 2, time.Millisecond, hc)
	_, generated, err := c.Add(t.Context(), Client{ID: "gen", Scopes: []string{"read"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { c.Authenticate(context.Background(), fmt.Sprint("ghost-", i), "x-secret-x-secret") }) //nolint:errcheck
	}
	<-hc.entered
	<-hc.entered
	defer func() { close(hc.hold); wg.Wait() }()

	_, err = c.Authenticate(t.Context(), "ghost-3", "x-secret-x-secret")
	var re *RetryError
	if !errors.Is(err, ErrBusy) || !errors.As(err, &re) || re.RetryAfterSeconds() < 1 {
		t.Fatalf("full pool: err = %v, want a RetryError wrapping ErrBusy", err)
	}
	for _, tc := range []struct {
		name, id, secret, port string
		status                 int
	}{
		{"wrong secret while full: 503", "gen", "wrong-wrong-wrong", "busy", 503},
		{"unknown id while full: 503", "nobody", "wrong-wrong-wrong", "busy", 503},
		{"right generated secret needs no slot", "gen", generated, "ok", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := runFlow(t, c, nil, "oauth.client_auth", "", request(map[string]any{"authorization": basic(tc.id, tc.secret)}, nil))
			step := tr.Steps[1]
			if step.Port != tc.port {
				t.Fatalf("port %q, want %q (%+v)", step.Port, tc.port, step)
			}
			if tc.port == "ok" {
				return
			}
			out := step.Msg.(map[string]any)
			oe := out["oauth_error"].(map[string]any)
			if oe["status"] != tc.status || oe["error"] != "temporarily_unavailable" || out["retry_after"] != int64(1) {
				t.Fatalf("oauth_error %v, retry_after %v", oe, out["retry_after"])
			}
		})
	}
}

func TestThrottlePerClientID(t *testing.T) {
	hc := newHashCount()
	c := poolClients(t, 2, time.Minute, hc)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.SetClock(func() time.Time { return now })
	c.SetThrottle(passhash.NewThrottle(passhash.ThrottleOptions{Free: ThrottleFree, Base: ThrottleBase, Max: ThrottleMax,
		Size: 10, Now: func() time.Time { return now }}))
	ctx := t.Context()
	_, generated, err := c.Add(ctx, Client{ID: "gen"}, "")
	if err != nil {
		t.Fatal(err)
	}
	const handSecret = "a secret set by hand"
	if _, _, err := c.Add(ctx, Client{ID: "hand"}, handSecret); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(ctx, "hand", handSecret); err != nil { // cached from now on
		t.Fatal(err)
	}
	for _, id := range []string{"gen", "hand", "ghost"} {
		for i := range ThrottleFree {
			if _, err := c.Authenticate(ctx, id, "wrong-wrong-wrong"); !errors.Is(err, ErrInvalidClient) {
				t.Fatalf("%s failure %d: %v", id, i+1, err)
			}
		}
	}
	// A flood of made-up ids: the table stays bounded, and the ids under
	// attack stay throttled.
	for i := range 30 {
		c.Authenticate(ctx, fmt.Sprint("random-", i), "wrong-wrong-wrong") //nolint:errcheck
	}
	before := hc.n.Load()
	for _, tc := range []struct {
		name, id, secret string
		want             error
	}{
		{"generated id, wrong secret: throttled", "gen", "wrong-wrong-wrong", ErrThrottled},
		{"hand-set id, wrong secret: throttled", "hand", "wrong-wrong-wrong", ErrThrottled},
		{"unknown id: throttled like a real one", "ghost", "wrong-wrong-wrong", ErrThrottled},
		{"right generated secret passes", "gen", generated, nil},
		{"right cached secret passes", "hand", handSecret, nil},
		{"another id is not throttled", "fresh", "wrong-wrong-wrong", ErrInvalidClient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Authenticate(ctx, tc.id, tc.secret)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var re *RetryError
			if tc.want == ErrThrottled && (!errors.As(err, &re) || re.After <= 0) {
				t.Fatalf("throttled without a wait: %v", err)
			}
		})
	}
	if got := hc.n.Load() - before; got != 1 {
		t.Errorf("%d argon2id computations, want 1 (throttled attempts cost none)", got)
	}
	if n := c.throttle.Len(); n > 10 {
		t.Errorf("throttle holds %d ids, bound 10", n)
	}
	// Through the block: 429 with retry_after.
	tr := runFlow(t, c, nil, "oauth.client_auth", "", request(nil, map[string]any{"client_id": "hand", "client_secret": "wrong-wrong-wrong"}))
	out := tr.Steps[1].Msg.(map[string]any)
	if tr.Steps[1].Port != "throttled" || out["oauth_error"].(map[string]any)["status"] != 429 || out["retry_after"].(int64) < 1 {
		t.Fatalf("block: port %q, msg %v", tr.Steps[1].Port, out)
	}
	// After the wait, the id may try again.
	now = now.Add(ThrottleMax)
	if _, err := c.Authenticate(ctx, "hand", "wrong-wrong-wrong"); !errors.Is(err, ErrInvalidClient) {
		t.Fatalf("after the backoff: %v", err)
	}
}

// N concurrent requests with one client id and secret run argon2id once,
// and all pass: the throttle does not count them as attempts.
func TestConcurrentSameSecretShareOneVerification(t *testing.T) {
	hc := newHashCount()
	c := poolClients(t, 4, time.Minute, hc)
	c.SetThrottle(passhash.NewThrottle(passhash.ThrottleOptions{Free: ThrottleFree, Base: ThrottleBase, Max: ThrottleMax}))
	const secret = "a secret set by hand"
	if _, _, err := c.Add(t.Context(), Client{ID: "svc"}, secret); err != nil {
		t.Fatal(err)
	}
	hc.n.Store(0)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if _, err := c.Authenticate(context.Background(), "svc", secret); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := hc.n.Load(); n != 1 {
		t.Fatalf("%d argon2id computations for 32 concurrent identical requests, want 1", n)
	}
}

// A removed client, or one registered again with a new secret, is not
// let in by a verification cached for its old secret: generated (SHA-256)
// or set by hand (argon2id).
func TestSecretChangeAndRemoveDropTheCache(t *testing.T) {
	for _, tc := range []struct{ name, first string }{
		{"generated secret", ""},
		{"secret set by hand", "the first secret, by hand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := poolClients(t, 2, time.Minute, newHashCount())
			ctx := t.Context()
			_, old, err := c.Add(ctx, Client{ID: "svc"}, tc.first)
			if err != nil {
				t.Fatal(err)
			}
			if tc.first != "" && old != tc.first {
				t.Fatalf("Add returned %q, want the secret set", old)
			}
			if _, err := c.Authenticate(ctx, "svc", old); err != nil {
				t.Fatal(err)
			}
			if err := c.Remove(ctx, "svc"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Authenticate(ctx, "svc", old); !errors.Is(err, ErrInvalidClient) {
				t.Fatalf("removed client still authenticates: %v", err)
			}
			if _, _, err := c.Add(ctx, Client{ID: "svc"}, "the second secret, by hand"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Authenticate(ctx, "svc", old); !errors.Is(err, ErrInvalidClient) {
				t.Fatalf("old secret accepted after re-registration: %v", err)
			}
		})
	}
}
