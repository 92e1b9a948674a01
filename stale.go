package flowd

import (
	"fmt"
	"time"

	"github.com/flowd/flowd/store"
)

// maxKeyStaleness bounds how old a cluster node's view of the keys may be
// while it signs. Keys reach a node through the store's change feed; a
// node whose feed has been silent longer than this (partitioned from etcd,
// or its watch broken) may have missed a revocation, so it stops signing
// (jose.sign, ID tokens, access tokens fail closed with
// jose.ErrSigningStopped) and /readyz reports its keys "stale", so the
// balancer drains it. A healthy feed speaks at least every second (etcd
// progress notices), so 5 s is several missed beats, and shorter than the
// 5 s after which the feed itself gives up and lists again.
//
// A store that is not shared (bbolt, memory) has no such gap: its feed is
// in-process. There the gate is off.
const maxKeyStaleness = 5 * time.Second

// isClusterStore reports whether st is shared by several processes (etcd):
// the backends that expire records on their own are exactly those.
func isClusterStore(st store.Store) bool {
	_, ok := st.(store.KVExpiry)
	return ok
}

// feedGate is a jose.Keysets.SignGate: it refuses while the node follows
// its feed (started) and the feed has been silent for more than bound.
// The error wraps store.ErrUnavailable, so a flow endpoint that fails on
// it answers 503 with Retry-After, as for any store outage.
func feedGate(seen func() (started bool, last time.Time), now func() time.Time, bound time.Duration) func() error {
	return func() error {
		started, last := seen()
		if !started {
			return nil // not following a feed (the CLI, an embedder before Start)
		}
		if age := now().Sub(last); age > bound {
			return fmt.Errorf("this node has heard nothing from the store's change feed for %s (more than %s), "+
				"so it may have missed a key revocation: %w", age.Round(100*time.Millisecond), bound, store.ErrUnavailable)
		}
		return nil
	}
}
