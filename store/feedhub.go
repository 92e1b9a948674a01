package store

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// DefaultFeedHistory is how many commits a FeedHub keeps for watchers that
// resume or lag, when NewFeedHub is given 0.
const DefaultFeedHistory = 4096

// feedChanBuffer is the channel buffer of one watch. The hub never blocks
// on it: a watcher goroutine does, while the hub keeps history for it.
const feedChanBuffer = 64

// FeedHub is the Feed of a backend whose commits happen in this process
// (bbolt, memstore): the backend publishes each commit after it committed,
// in commit order, and the hub serves any number of watchers from a
// bounded history. Publishing never blocks and never allocates more than
// the history's bound: a watcher that falls more than the history behind
// is ended with ErrCompacted and re-lists.
type FeedHub struct {
	mu     sync.Mutex
	rev    int64   // newest published revision
	floor  int64   // every commit with a revision above floor is in ring
	ring   []entry // circular, len == cap once full
	head   int     // index of the oldest entry when full
	keep   int
	wake   chan struct{} // closed and replaced on every publish and on close
	closed bool
}

type entry struct {
	rev     int64
	changes []Change
}

// NewFeedHub returns a hub whose history starts after rev (a reopened
// store passes the revision it stored; older revisions are ErrCompacted).
// keep bounds the history in commits; 0 means DefaultFeedHistory.
func NewFeedHub(rev int64, keep int) *FeedHub {
	if keep <= 0 {
		keep = DefaultFeedHistory
	}
	return &FeedHub{rev: rev, floor: rev, keep: keep, wake: make(chan struct{})}
}

// Publish records one commit. rev must be above every earlier one; the
// backend calls Publish in commit order (holding whatever serializes its
// commits). changes is owned by the hub afterwards. A commit without
// changes still moves Rev.
func (h *FeedHub) Publish(rev int64, changes []Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || rev <= h.rev {
		return
	}
	for i := range changes {
		changes[i].Rev = rev
	}
	e := entry{rev: rev, changes: changes}
	if len(h.ring) < h.keep {
		h.ring = append(h.ring, e)
	} else {
		h.floor = h.ring[h.head].rev
		h.ring[h.head] = e
		h.head = (h.head + 1) % h.keep
	}
	h.rev = rev
	close(h.wake)
	h.wake = make(chan struct{})
}

// Rev returns the newest published revision.
func (h *FeedHub) Rev() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rev
}

// Close ends every watch with ErrClosed.
func (h *FeedHub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.wake)
	}
}

// at returns the i-th oldest entry. h.mu held.
func (h *FeedHub) at(i int) entry {
	if len(h.ring) < h.keep {
		return h.ring[i]
	}
	return h.ring[(h.head+i)%h.keep]
}

// after copies up to max entries with a revision above pos. It fails with
// ErrCompacted when pos is older than the history. h.mu held.
func (h *FeedHub) after(pos int64, max int) ([]entry, error) {
	if pos < h.floor {
		return nil, fmt.Errorf("revision %d is older than the feed's history (starts after %d): %w", pos, h.floor, ErrCompacted)
	}
	n := len(h.ring)
	i := sort.Search(n, func(i int) bool { return h.at(i).rev > pos })
	var out []entry
	for ; i < n && len(out) < max; i++ {
		out = append(out, h.at(i))
	}
	return out, nil
}

// Watch implements Feed.Watch.
func (h *FeedHub) Watch(ctx context.Context, fromRev int64, f Filter) (<-chan FeedEvent, error) {
	return h.WatchUntil(ctx, nil, fromRev, f)
}

// WatchUntil is Watch that also ends, with ErrClosed, when stop closes: a
// backend handle passes its own closing so that closing one handle ends
// its watches while other handles on the same hub go on.
func (h *FeedHub) WatchUntil(ctx context.Context, stop <-chan struct{}, fromRev int64, f Filter) (<-chan FeedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	closed, rev := h.closed, h.rev
	_, err := h.after(fromRev, 0)
	h.mu.Unlock()
	switch {
	case closed:
		return nil, ErrClosed
	case fromRev > rev:
		return nil, fmt.Errorf("watch from revision %d, newest is %d: %w", fromRev, rev, ErrInvalid)
	case err != nil:
		return nil, err
	}
	ch := make(chan FeedEvent, feedChanBuffer)
	go h.serve(ctx, stop, fromRev, f, ch)
	return ch, nil
}

// serve feeds one watcher. It copies a slice of history under the lock and
// sends outside it, so a slow watcher only ever holds up itself.
func (h *FeedHub) serve(ctx context.Context, stop <-chan struct{}, pos int64, f Filter, ch chan<- FeedEvent) {
	defer close(ch)
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	// final delivers the event that ends the watch; only the watcher's
	// ctx stops it (the buffer usually has room).
	final := func(err error) {
		select {
		case ch <- FeedEvent{Rev: pos, Err: err}:
		case <-ctx.Done():
		}
	}
	send := func(ev FeedEvent) bool {
		if stopped() {
			final(ErrClosed)
			return false
		}
		select {
		case ch <- ev:
			return true
		case <-ctx.Done():
			return false
		case <-stop:
			final(ErrClosed)
			return false
		}
	}
	for {
		h.mu.Lock()
		batch, err := h.after(pos, 64)
		closed, wake := h.closed, h.wake
		h.mu.Unlock()
		if err != nil {
			final(err)
			return
		}
		if len(batch) == 0 {
			if closed || stopped() {
				final(ErrClosed)
				return
			}
			select {
			case <-wake:
				continue
			case <-stop:
				continue
			case <-ctx.Done():
				return
			}
		}
		for _, e := range batch {
			var match []Change
			for _, c := range e.changes {
				if f.Match(c) {
					match = append(match, c)
				}
			}
			if len(match) > 0 && !send(FeedEvent{Rev: e.rev, Changes: match}) {
				return
			}
			pos = e.rev
		}
	}
}
