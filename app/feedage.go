package app

import "time"

// FeedSeen reports whether the reconcile loop runs (Start was called) and
// when this node's feed last delivered anything: a change, or a cluster
// store's progress notice. A node whose feed has been silent for long may
// be missing a key revocation; flowd stops signing on such a node
// (flowd.maxKeyStaleness). It takes one uncontended lock: cheap enough to
// ask before every signature.
func (a *App) FeedSeen() (started bool, seen time.Time) {
	a.fol.mu.Lock()
	defer a.fol.mu.Unlock()
	return a.fol.started, a.fol.lastSeen
}
