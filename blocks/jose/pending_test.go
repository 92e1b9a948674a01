package jose

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

// gatedStore wraps testStore: while fail > 0 a keyset write fails (after
// showing the update function the missing record, so the kids it would
// have written are seen); with hold set, a write waits for release.
type gatedStore struct {
	*testStore
	mu      sync.Mutex
	fail    int
	seen    [][]string // kids each write's update function produced
	hold    chan struct{}
	holding chan struct{} // a held write has started
}

var errWriteFailed = errors.New("write refused")

// Reads ignore ctx's cancellation, so that in a test only the keyset
// manager's own waiting sees it.
func (s *gatedStore) GetSecret(ctx context.Context, kind, name string) ([]byte, error) {
	return s.testStore.GetSecret(context.WithoutCancel(ctx), kind, name)
}

func (s *gatedStore) ListSecrets(ctx context.Context, kind string) ([]string, error) {
	return s.testStore.ListSecrets(context.WithoutCancel(ctx), kind)
}

func (s *gatedStore) UpdateSecret(ctx context.Context, kind, name string, fn func([]byte) ([]byte, error)) error {
	s.mu.Lock()
	failing := s.fail > 0
	if failing {
		s.fail--
	}
	hold, holding := s.hold, s.holding
	s.mu.Unlock()
	if hold != nil {
		close(holding)
		<-hold
	}
	if failing {
		if data, err := fn(nil); err == nil {
			ks, derr := decodeKeyset(name, data)
			if derr == nil {
				var kids []string
				for _, k := range ks.Keys {
					kids = append(kids, k.Kid)
				}
				slices.Sort(kids)
				s.mu.Lock()
				s.seen = append(s.seen, kids)
				s.mu.Unlock()
			}
		}
		return errWriteFailed
	}
	return s.testStore.UpdateSecret(ctx, kind, name, fn)
}

func newGated(t *testing.T, fail int) (*Keysets, *gatedStore) {
	st := &gatedStore{testStore: newTestStore(t), fail: fail}
	m := NewKeysets(st)
	m.Now = newTestClock().Now
	m.RSABits = 2048
	return m, st
}

func kidsOfInfo(info KeysetInfo) []string {
	var kids []string
	for _, k := range info.Keys {
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return kids
}

// TestEnsureFailureLeavesKeysetPending: after an Ensure of a missing
// keyset fails, the JWKS and the signers say "not yet" (an
// engine.UnavailableError that still is ErrNoKeyset), not a bare
// ErrNoKeyset; a keyset nobody is creating stays a plain ErrNoKeyset, and
// the next Ensure writes the very keys the failed one generated.
func TestEnsureFailureLeavesKeysetPending(t *testing.T) {
	ctx := t.Context()
	m, st := newGated(t, 1)
	err := m.Ensure(ctx, "main", "RS256", "ES256")
	if !errors.Is(err, errWriteFailed) {
		t.Fatalf("first Ensure: %v, want the store's failure", err)
	}
	_, _, jerr := m.JWKS(ctx, "main")
	_, serr := m.ActiveSigner(ctx, "main", "RS256")
	_, _, other := m.JWKS(ctx, "other")
	var ue *engine.UnavailableError
	tests := []struct {
		name      string
		got, want any
	}{
		{"JWKS is unavailable", errors.Is(jerr, engine.ErrUnavailable), true},
		{"JWKS is still ErrNoKeyset", errors.Is(jerr, ErrNoKeyset), true},
		{"JWKS public text", errors.As(jerr, &ue) && ue.Public == `keyset "main" has no keys yet; try again shortly`, true},
		{"JWKS retry after", ue != nil && ue.RetryAfter == PendingRetryAfter, true},
		{"signer is unavailable", errors.Is(serr, engine.ErrUnavailable), true},
		{"unknown keyset is not pending", errors.Is(other, ErrNoKeyset) && !errors.Is(other, engine.ErrUnavailable), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v (JWKS: %v, signer: %v, other: %v)", tt.got, tt.want, jerr, serr, other)
			}
		})
	}

	if err := m.Ensure(ctx, "main", "RS256", "ES256"); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	info, err := m.Get(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.seen) != 1 || !slices.Equal(kidsOfInfo(info), st.seen[0]) {
		t.Errorf("second Ensure wrote %v, want the keys the failed one generated %v", kidsOfInfo(info), st.seen)
	}
	if _, _, err := m.JWKS(ctx, "main"); err != nil {
		t.Errorf("JWKS after the keyset was written: %v", err)
	}
}

// TestPendingKeysetWaitsBoundedly: a read of a keyset whose first keys
// are being written waits for them (and gets them) when they come within
// PendingWait, but never on the keyset's lock: a read whose request ends
// first is told "not yet" at once, while the write is still going.
func TestPendingKeysetWaitsBoundedly(t *testing.T) {
	m, st := newGated(t, 0)
	hold := make(chan struct{})
	st.hold, st.holding = hold, make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- m.Ensure(context.Background(), "main", "ES256") }()
	<-st.holding // Ensure holds the keyset's lock, in its write

	gone, leave := context.WithCancel(t.Context())
	short := make(chan error, 1)
	go func() {
		_, _, err := m.JWKS(gone, "main")
		short <- err
	}()
	patient := make(chan error, 1)
	go func() {
		_, _, err := m.JWKS(t.Context(), "main")
		patient <- err
	}()
	leave() // the first request's client went away
	select {
	case err := <-short:
		if !errors.Is(err, engine.ErrUnavailable) {
			t.Errorf("JWKS of a request that ended: %v, want unavailable", err)
		}
	case <-time.After(PendingWait / 2):
		t.Error("a JWKS request whose context ended waited for the keyset's first write")
	}

	st.mu.Lock()
	st.hold = nil // the later writes (TwiceUpdates' second call included) go through
	st.mu.Unlock()
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-patient; err != nil {
		t.Errorf("JWKS waiting for the first write: %v, want the keys", err)
	}
}
