package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/flowd/flowd/store"
)

// The feed is an etcd watch on the prefix, from a revision. Revisions are
// etcd's own (cluster-wide, so not dense for one prefix). Each commit's
// events become one FeedEvent: flows/<id> is a KindFlow change, and
// KindDeploy too when the same commit wrote deploy-gen; kv/ and secrets/
// keys are KindKV and KindSecret; drafts, versions, markers and the
// coordinator's keys are not reported.
//
// Health: etcd's own progress notifications come every 10 minutes by
// default, far too rarely to notice a dead connection. The watch asks for
// progress five times per Options.FeedStaleAfter (RequestProgress) and
// sends the answer as a progress event; when nothing arrives for
// FeedStaleAfter, the watch ends with ErrUnavailable, so a consumer never
// mistakes a silent feed for a quiet store.

const feedChanBuffer = 64

// Rev returns the store's current revision (linearizable).
func (s *Store) Rev(ctx context.Context) (int64, error) {
	var resp *clientv3.GetResponse
	err := s.call(ctx, func(ctx context.Context) (err error) {
		resp, err = s.cli.Get(ctx, s.genKey(), clientv3.WithCountOnly())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: feed revision: %w", err)
	}
	return resp.Header.Revision, nil
}

// Watch sends every change after fromRev that matches f, one event per
// commit, until ctx ends, the store closes or the watch fails.
func (s *Store) Watch(ctx context.Context, fromRev int64, f store.Filter) (<-chan store.FeedEvent, error) {
	fail := func(err error) (<-chan store.FeedEvent, error) {
		return nil, fmt.Errorf("store: watch from revision %d: %w", fromRev, err)
	}
	if fromRev < 0 {
		return fail(fmt.Errorf("negative revision: %w", store.ErrInvalid))
	}
	cur, err := s.Rev(ctx)
	if err != nil {
		return nil, err
	}
	if fromRev > cur {
		return fail(fmt.Errorf("newest is %d: %w", cur, store.ErrInvalid))
	}
	if fromRev < cur {
		// Is fromRev+1 still in etcd's history? Asked here so a too-old
		// revision fails at once rather than on the channel.
		err := s.call(ctx, func(ctx context.Context) error {
			_, err := s.cli.Get(ctx, s.genKey(), clientv3.WithRev(fromRev+1), clientv3.WithCountOnly())
			return err
		})
		if errors.Is(err, rpctypes.ErrCompacted) {
			return fail(fmt.Errorf("etcd compacted its history past it: %w", store.ErrCompacted))
		}
		if err != nil {
			return fail(err)
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fail(store.ErrClosed)
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	stop := context.AfterFunc(s.coord.ctx, cancel)
	wch := s.cli.Watch(wctx, s.root, clientv3.WithPrefix(), clientv3.WithRev(fromRev+1), clientv3.WithProgressNotify())
	out := make(chan store.FeedEvent, feedChanBuffer)
	s.feeds.Add(1)
	go func() {
		defer close(out)
		rev, err := s.serveWatch(wctx, wch, f, out, fromRev)
		stop()
		cancel()
		closed := s.coord.ctx.Err() != nil
		// Close waits for the watch to stop using the client, not for the
		// reader: the ending event below waits for it alone.
		s.feeds.Done()
		switch {
		case ctx.Err() != nil:
			return // the caller ended it: no event
		case closed:
			err = store.ErrClosed
		}
		select {
		case out <- store.FeedEvent{Rev: rev, Err: err}:
		case <-ctx.Done():
		}
	}()
	return out, nil
}

// serveWatch forwards etcd's watch responses until it fails; it returns
// the revision the watcher was brought to and why it ended (never nil).
func (s *Store) serveWatch(ctx context.Context, wch clientv3.WatchChan, f store.Filter, out chan<- store.FeedEvent, rev int64) (int64, error) {
	every := s.stale / 5
	tick := time.NewTicker(every)
	defer tick.Stop()
	last := time.Now()
	send := func(ev store.FeedEvent) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		select {
		case <-ctx.Done():
			return rev, ctx.Err()
		case <-tick.C:
			if time.Since(last) > s.stale {
				return rev, fmt.Errorf("no word from etcd for %s: %w", s.stale, store.ErrUnavailable)
			}
			// The answer arrives on wch as a progress notification.
			rctx, cancel := context.WithTimeout(ctx, every)
			_ = s.cli.RequestProgress(rctx)
			cancel()
		case resp, ok := <-wch:
			if !ok {
				return rev, fmt.Errorf("etcd watch closed: %w", store.ErrUnavailable)
			}
			if resp.CompactRevision != 0 {
				return rev, fmt.Errorf("etcd compacted its history to %d: %w", resp.CompactRevision, store.ErrCompacted)
			}
			if err := resp.Err(); err != nil {
				if errors.Is(err, rpctypes.ErrCompacted) {
					return rev, fmt.Errorf("etcd: %v: %w", err, store.ErrCompacted)
				}
				return rev, fmt.Errorf("etcd watch: %v: %w", err, store.ErrUnavailable)
			}
			last = time.Now()
			if resp.IsProgressNotify() {
				if !send(store.FeedEvent{Rev: resp.Header.Revision}) {
					return rev, ctx.Err()
				}
				rev = max(rev, resp.Header.Revision)
				continue
			}
			for _, ev := range s.toFeedEvents(resp.Events, f) {
				if !send(ev) {
					return rev, ctx.Err()
				}
			}
			if n := len(resp.Events); n > 0 {
				rev = max(rev, resp.Events[n-1].Kv.ModRevision)
			}
		}
	}
}

// toFeedEvents groups etcd events by revision (one commit each) and maps
// them to changes.
func (s *Store) toFeedEvents(events []*clientv3.Event, f store.Filter) []store.FeedEvent {
	var out []store.FeedEvent
	for i := 0; i < len(events); {
		rev := events[i].Kv.ModRevision
		j := i
		for j < len(events) && events[j].Kv.ModRevision == rev {
			j++
		}
		if changes := s.toChanges(events[i:j], f); len(changes) > 0 {
			out = append(out, store.FeedEvent{Rev: rev, Changes: changes})
		}
		i = j
	}
	return out
}

func (s *Store) toChanges(events []*clientv3.Event, f store.Filter) []store.Change {
	deploy := false
	for _, ev := range events {
		if string(ev.Kv.Key) == s.genKey() {
			deploy = true
		}
	}
	var out []store.Change
	add := func(c store.Change) {
		if f.Match(c) {
			out = append(out, c)
		}
	}
	for _, ev := range events {
		rel := strings.TrimPrefix(string(ev.Kv.Key), s.root)
		deleted := ev.Type == mvccpb.DELETE
		area, rest, _ := strings.Cut(rel, "/")
		switch area {
		case "flows":
			id, err := unesc(rest)
			if err != nil {
				continue // not a key this store writes
			}
			add(store.Change{Rev: ev.Kv.ModRevision, Kind: store.KindFlow, Group: id, Deleted: deleted})
			if deploy {
				add(store.Change{Rev: ev.Kv.ModRevision, Kind: store.KindDeploy, Group: id, Deleted: deleted})
			}
		case "kv", "secrets":
			g, n, ok := strings.Cut(rest, "/")
			if !ok {
				continue
			}
			group, err1 := unesc(g)
			name, err2 := unesc(n)
			if err1 != nil || err2 != nil {
				continue
			}
			kind := store.KindKV
			if area == "secrets" {
				kind = store.KindSecret
			}
			add(store.Change{Rev: ev.Kv.ModRevision, Kind: kind, Group: group, Name: name, Deleted: deleted})
		}
	}
	return out
}
