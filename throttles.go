package flowd

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/passhash"
	"github.com/flowd/flowd/store"
)

// Cluster-wide failure throttles (the admin login limiter, the client
// secret throttle). On one node they are passhash.Throttle tables in
// memory, as always. On a cluster store (one that expires records: etcd)
// each failure is also counted in the store under
//
//	kv throttles/<throttle name>/<base64url(key)> = {"n": failures, "last": unix nanoseconds}
//
// (written with an expiry of the throttle's window), and every node's
// table follows those records from the change feed, so failures spread
// over the nodes behind a balancer add up, while checks stay reads of
// local memory.
const throttleNS = "throttles"

// sharedThrottles makes the throttles of one node and keeps them in step
// with the store.
type sharedThrottles struct {
	st  store.Store
	log *slog.Logger

	mu     sync.Mutex
	byName map[string]*passhash.Throttle
}

// newSharedThrottles returns nil when st keeps records until deleted
// (bbolt, memory): there the throttles stay in memory only, as a store
// write per failure would leave records nobody cleans up.
func newSharedThrottles(st store.Store, log *slog.Logger) *sharedThrottles {
	if _, ok := st.(store.KVExpiry); !ok {
		return nil
	}
	return &sharedThrottles{st: st, log: log, byName: map[string]*passhash.Throttle{}}
}

// throttle returns a new throttle named name with options o; with s nil,
// an in-memory one.
func (s *sharedThrottles) throttle(name string, o passhash.ThrottleOptions) *passhash.Throttle {
	if s == nil {
		return passhash.NewThrottle(o)
	}
	o.Shared = throttleRecords{st: s.st, name: name}
	o.OnSharedError = func(err error) {
		s.log.Warn("throttle: counting on this node only", "throttle", name, "err", err)
	}
	t := passhash.NewThrottle(o)
	s.mu.Lock()
	s.byName[name] = t
	s.mu.Unlock()
	return t
}

// hook follows the throttle records of every node.
func (s *sharedThrottles) hook() app.Hook {
	return app.Hook{Name: "throttles", Match: store.Filter{Kinds: []store.Kind{store.KindKV}, Group: throttleNS},
		Changed: func(ctx context.Context, c store.Change) { s.changed(ctx, c) }}
}

func (s *sharedThrottles) changed(ctx context.Context, c store.Change) {
	name, enc, ok := strings.Cut(c.Name, "/")
	key, err := base64.RawURLEncoding.DecodeString(enc)
	if !ok || err != nil {
		return // not a record this code wrote
	}
	s.mu.Lock()
	t := s.byName[name]
	s.mu.Unlock()
	if t == nil {
		return
	}
	if c.Deleted {
		t.Observe(string(key), 0, time.Time{})
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	raw, err := s.st.GetKV(ctx, throttleNS, c.Name)
	if errors.Is(err, store.ErrNotFound) {
		t.Observe(string(key), 0, time.Time{})
		return
	}
	var r throttleRecord
	if err == nil {
		err = json.Unmarshal(raw, &r)
	}
	if err != nil {
		s.log.Warn("throttle: reading a record from the feed", "throttle", name, "err", err)
		return
	}
	t.Observe(string(key), r.N, time.Unix(0, r.Last))
}

type throttleRecord struct {
	N    int   `json:"n"`
	Last int64 `json:"last"` // unix nanoseconds of the last failure
}

// throttleRecords is passhash.Shared on a store's KV.
type throttleRecords struct {
	st   store.Store
	name string
}

var _ passhash.Shared = throttleRecords{}

func (r throttleRecords) storeKey(key string) string {
	return r.name + "/" + base64.RawURLEncoding.EncodeToString([]byte(key))
}

func (r throttleRecords) Add(ctx context.Context, key string, delta int, now time.Time, window time.Duration) error {
	fn := func(old []byte) ([]byte, error) {
		var rec throttleRecord // zero on every call: fn may run again
		if old != nil {
			if err := json.Unmarshal(old, &rec); err != nil || now.Sub(time.Unix(0, rec.Last)) > window {
				rec = throttleRecord{} // unreadable or past the window: count afresh
			}
		}
		rec.N += delta
		if rec.N <= 0 {
			return nil, nil
		}
		if delta > 0 || rec.Last == 0 {
			rec.Last = now.UnixNano()
		}
		return json.Marshal(rec)
	}
	var err error
	if e, ok := r.st.(store.KVExpiry); ok {
		err = e.UpdateKVUntil(ctx, throttleNS, r.storeKey(key), now.Add(window), fn)
	} else {
		err = r.st.UpdateKV(ctx, throttleNS, r.storeKey(key), fn)
	}
	if err != nil {
		return fmt.Errorf("throttle %s: %w", r.name, err)
	}
	return nil
}

func (r throttleRecords) Reset(ctx context.Context, key string) error {
	err := r.st.DeleteKV(ctx, throttleNS, r.storeKey(key))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("throttle %s: %w", r.name, err)
	}
	return nil
}
