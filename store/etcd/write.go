package etcd

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/flowd/flowd/store"
)

// errRetry: the transaction can no longer commit (what it compared moved
// while its outcome was being resolved); the caller reads again and retries.
var errRetry = errors.New("retry")

// maxResolve bounds the reads that resolve one ambiguous commit.
const maxResolve = 3

// commit sends one write transaction: If cmps (and the context's fence)
// Then ops plus a marker put, Else els. It returns whether the condition
// held and, when it did not, the Else responses. An outcome left unknown
// by a timeout or a lost connection is resolved through the marker: a
// commit that landed is reported as such, one that cannot land any more is
// errRetry, and one that may still land is sent again (the same marker and
// the same comparisons, so at most one copy commits).
func (s *Store) commit(ctx context.Context, cmps []clientv3.Cmp, ops, els []clientv3.Op) (bool, *clientv3.TxnResponse, error) {
	f, err := s.fenceOf(ctx)
	if err != nil {
		return false, nil, err
	}
	if f != nil {
		cmps = append(cmps[:len(cmps):len(cmps)], clientv3.Compare(clientv3.CreateRevision(f.key), "=", f.rev))
		els = append(els[:len(els):len(els)], clientv3.OpGet(f.key))
	}
	lease, err := s.leases.lease(ctx, markerTTL)
	if err != nil {
		return false, nil, err
	}
	marker := s.newMarker()
	ops = append(ops[:len(ops):len(ops)], clientv3.OpPut(marker, "", clientv3.WithLease(lease)))
	if len(ops) > MaxTxnOps || len(els) > MaxTxnOps {
		return false, nil, fmt.Errorf("transaction of %d operations, more than etcd's %d: %w", len(ops), MaxTxnOps, store.ErrInvalid)
	}
	for resolved := 0; ; {
		var resp *clientv3.TxnResponse
		err := s.call(ctx, func(ctx context.Context) (err error) {
			resp, err = s.cli.Txn(ctx).If(cmps...).Then(ops...).Else(els...).Commit()
			return err
		})
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			// The marker's lease or a record's expiry lease is gone
			// (revoked, or expired during a long pause): grant afresh.
			s.leases.forgetAll()
			return false, nil, errRetry
		}
		if err == nil {
			if !resp.Succeeded && f != nil && fenceLost(resp, f) {
				return false, nil, fmt.Errorf("role %s: %w", q(f.role), store.ErrFenced)
			}
			return resp.Succeeded, resp, nil
		}
		if !ambiguous(err) {
			return false, nil, err
		}
		// The request may have reached the leader. Find out.
		for {
			if resolved >= maxResolve {
				return false, nil, fmt.Errorf("the write may or may not have landed (etcd did not answer while it was checked): %w", err)
			}
			resolved++
			landed, canLand, rerr := s.resolve(ctx, marker, cmps)
			if rerr != nil {
				err = rerr
				if !ambiguous(rerr) {
					return false, nil, rerr
				}
				if berr := backoff(ctx, resolved+2); berr != nil {
					return false, nil, berr
				}
				continue
			}
			switch {
			case landed:
				return true, nil, nil
			case !canLand:
				return false, nil, errRetry
			}
			break // send the same transaction again
		}
	}
}

// resolve reads, in one revision, whether marker exists and whether cmps
// still hold (so the transaction could still commit).
func (s *Store) resolve(ctx context.Context, marker string, cmps []clientv3.Cmp) (landed, canLand bool, err error) {
	var resp *clientv3.TxnResponse
	err = s.call(ctx, func(ctx context.Context) (err error) {
		get := clientv3.OpGet(marker, clientv3.WithCountOnly())
		resp, err = s.cli.Txn(ctx).If(cmps...).Then(get).Else(get).Commit()
		return err
	})
	if err != nil {
		return false, false, err
	}
	return resp.Responses[0].GetResponseRange().Count > 0, resp.Succeeded, nil
}

// fenceLost reads the fence's leader key from the last Else response.
func fenceLost(resp *clientv3.TxnResponse, f *fence) bool {
	if len(resp.Responses) == 0 {
		return true
	}
	kvs := resp.Responses[len(resp.Responses)-1].GetResponseRange().Kvs
	return len(kvs) == 0 || kvs[0].CreateRevision != f.rev
}

// fenceOf returns the fence ctx carries, if any: ErrFenced when it was not
// issued by this store or its leadership is already lost.
func (s *Store) fenceOf(ctx context.Context) (*fence, error) {
	sf, ok := store.FenceFrom(ctx)
	if !ok {
		return nil, nil
	}
	f, ok := sf.(*fence)
	if !ok || f.s != s {
		return nil, fmt.Errorf("role %s: the fence was not issued by this store: %w", q(sf.Role()), store.ErrFenced)
	}
	select {
	case <-f.lost:
		return nil, fmt.Errorf("role %s: %w", q(f.role), store.ErrFenced)
	default:
	}
	return f, nil
}

// retrying runs a read-compute-commit step until it is done: attempt
// returns done=false to go again after a conflict. A write under a fence
// already lost fails before it reads anything.
func (s *Store) retrying(ctx context.Context, attempt func() (done bool, err error)) error {
	if _, err := s.fenceOf(ctx); err != nil {
		return err
	}
	for i := range maxAttempts {
		done, err := attempt()
		if errors.Is(err, errRetry) {
			err, done = nil, false
		}
		if err != nil || done {
			return err
		}
		if err := backoff(ctx, i); err != nil {
			return err
		}
	}
	return fmt.Errorf("still conflicting after %d attempts: %w", maxAttempts, store.ErrConflict)
}
