package etcd

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flowd/flowd/store"
)

// TestMapErr checks that every form in which etcd or gRPC reports "no answer
// in time" or "no leader" becomes store.ErrUnavailable (answered 503 with
// Retry-After), and that a request etcd refuses becomes store.ErrInvalid.
// CI once saw a server-side deadline come back as code Unknown and answer 500.
func TestMapErr(t *testing.T) {
	s := &Store{timeout: 3 * time.Second}
	ctx := context.Background()
	cases := []struct {
		name      string
		err       error
		want      error
		ambiguous bool
	}{
		{"client deadline", context.DeadlineExceeded, store.ErrUnavailable, true},
		{"server deadline as Unknown", status.Error(codes.Unknown, "context deadline exceeded"), store.ErrUnavailable, true},
		{"server cancel as Unknown", status.Error(codes.Unknown, "context canceled"), store.ErrUnavailable, true},
		{"gRPC unavailable", status.Error(codes.Unavailable, "connection refused"), store.ErrUnavailable, true},
		{"no leader", rpctypes.ErrGRPCNoLeader, store.ErrUnavailable, false},
		{"leader changed", rpctypes.ErrLeaderChanged, store.ErrUnavailable, true},
		{"too many ops", rpctypes.ErrTooManyOps, store.ErrInvalid, false},
	}
	for _, c := range cases {
		got := s.mapErr(ctx, c.err)
		if !errors.Is(got, c.want) {
			t.Errorf("%s: mapErr(%v) = %v, want it to wrap %v", c.name, c.err, got, c.want)
		}
		if c.want == store.ErrUnavailable && ambiguous(got) != c.ambiguous {
			t.Errorf("%s: ambiguous = %v, want %v", c.name, ambiguous(got), c.ambiguous)
		}
	}
	if got := s.mapErr(ctx, status.Error(codes.Unknown, "something else")); errors.Is(got, store.ErrUnavailable) {
		t.Errorf("an unknown error that is no deadline must not read as unavailable: %v", got)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if got := s.mapErr(done, status.Error(codes.Unavailable, "x")); !errors.Is(got, context.Canceled) {
		t.Errorf("a caller that gave up must see its own error, got %v", got)
	}
}
