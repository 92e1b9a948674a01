package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flowd/flowd/store"
)

// Node records: small per-node figures other nodes add up (per-key use
// counts), published into this node's entry of the store's node registry
// (Coordinator.SetNodeData) every interval while the reconcile loop runs,
// and only when they changed. They live as long as the registration, so
// a node that stops or dies takes its figures with it.

// nodeSource is one published record.
type nodeSource struct {
	name  string
	every time.Duration
	build func() ([]byte, error)
	last  []byte // what was last published (under publisher.mu)
}

type publisher struct {
	mu      sync.Mutex
	sources []*nodeSource
	cancel  context.CancelFunc
	done    chan struct{}
}

// PublishNodeData publishes build's record under name every interval while
// the node runs (from Start to Close). Call it before Start.
func (a *App) PublishNodeData(name string, every time.Duration, build func() ([]byte, error)) {
	a.pub.mu.Lock()
	defer a.pub.mu.Unlock()
	a.pub.sources = append(a.pub.sources, &nodeSource{name: name, every: max(every, 100*time.Millisecond), build: build})
}

// FlushNodeData publishes every record now (those that changed).
func (a *App) FlushNodeData(ctx context.Context) error {
	a.pub.mu.Lock()
	srcs := append([]*nodeSource(nil), a.pub.sources...)
	a.pub.mu.Unlock()
	var errs []error
	for _, s := range srcs {
		errs = append(errs, a.publish(ctx, s))
	}
	return errors.Join(errs...)
}

func (a *App) publish(ctx context.Context, s *nodeSource) error {
	val, err := s.build()
	if err != nil {
		return fmt.Errorf("node record %s: %w", s.name, err)
	}
	a.pub.mu.Lock()
	same := s.last != nil && bytes.Equal(s.last, val)
	a.pub.mu.Unlock()
	if same {
		return nil
	}
	if err := a.st.SetNodeData(ctx, s.name, val); err != nil {
		return err
	}
	a.pub.mu.Lock()
	s.last = val
	a.pub.mu.Unlock()
	return nil
}

// startPublishing runs the publishing loop (after Register).
func (a *App) startPublishing() {
	a.pub.mu.Lock()
	defer a.pub.mu.Unlock()
	if len(a.pub.sources) == 0 || a.pub.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.pub.cancel, a.pub.done = cancel, make(chan struct{})
	srcs := append([]*nodeSource(nil), a.pub.sources...)
	done := a.pub.done
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for _, s := range srcs {
			wg.Go(func() {
				t := time.NewTicker(s.every)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
					pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					err := a.publish(pctx, s)
					cancel()
					if err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrClosed) {
						a.log.Warn("publishing a node record", "node", a.node, "record", s.name, "err", err)
					}
				}
			})
		}
		wg.Wait()
	}()
}

func (a *App) stopPublishing() {
	a.pub.mu.Lock()
	cancel, done := a.pub.cancel, a.pub.done
	a.pub.cancel = nil
	a.pub.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// OtherNodesData returns name's record of every other live node, by node
// id (this node's own figures are the caller's, live).
func (a *App) OtherNodesData(ctx context.Context, name string) (map[string][]byte, error) {
	if !a.following() {
		return nil, nil
	}
	recs, err := a.st.NodeData(ctx, name)
	if err != nil {
		return nil, err
	}
	delete(recs, a.node)
	return recs, nil
}
