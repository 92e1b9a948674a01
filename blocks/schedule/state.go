package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
)

// StateStore persists one small JSON record per schedule. store.KV
// satisfies it; so does anything with a transactional read-modify-write.
type StateStore interface {
	// UpdateKV reads, changes and writes a record in one transaction. fn
	// gets nil when the record does not exist; returning nil deletes it;
	// an error from fn aborts the transaction and is returned.
	UpdateKV(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, error)) error
}

// Namespace is the StateStore namespace of schedule records. A record's key
// is "<flow id>/<node id>".
const Namespace = "schedule"

// record is what survives a restart, per schedule:
//
//	schedule/<flow>/<node> -> {"paused": true, "spec": "0 3 * * *", "timezone": "UTC",
//	                           "armed": "...", "last_fired": "...", "last_run": {...},
//	                           "claimed_for": "...", "claimed_by": "node-1", "claimed_at": "...",
//	                           "fired_for": "..."}
//
// Catch-up compares the spec's next activation after the later of armed
// and last_fired with now. armed is when the current spec and zone were
// first deployed, so a changed schedule does not catch up ticks of the old.
type record struct {
	Paused bool `json:"paused,omitempty"`
	// ClaimedFor is the newest tick (its scheduled_for) a node claimed
	// before running it, ClaimedBy that node: a tick is claimed once
	// across every node sharing the store.
	ClaimedFor time.Time `json:"claimed_for,omitzero"`
	ClaimedBy  string    `json:"claimed_by,omitempty"`
	ClaimedAt  time.Time `json:"claimed_at,omitzero"`
	// FiredFor is the newest tick whose run finished (failed runs
	// included). ClaimedFor after it: the node that claimed that tick
	// died in its run; catch_up runs it again.
	FiredFor time.Time `json:"fired_for,omitzero"`

	Spec      string    `json:"spec,omitempty"`
	Timezone  string    `json:"timezone,omitempty"`
	Armed     time.Time `json:"armed,omitzero"`
	LastFired time.Time `json:"last_fired,omitzero"`
	LastRun   *RunInfo  `json:"last_run,omitempty"`
}

// RunInfo is the head of a schedule's last run.
type RunInfo struct {
	ID     string    `json:"id,omitempty"` // "" when the run could not start
	Status string    `json:"status"`       // engine.StatusOK or engine.StatusError
	Error  string    `json:"error,omitempty"`
	At     time.Time `json:"at"`
	// Manual is a run started by RunNow; CatchUp one started at start-up
	// for a missed tick.
	Manual  bool `json:"manual,omitempty"`
	CatchUp bool `json:"catch_up,omitempty"`
}

// arm records the spec and zone being deployed; it reports whether the
// record changed. A record without a spec (never armed, or written by
// hand) adopts this one without moving the catch-up baseline.
func (r *record) arm(spec, zone string, now time.Time) bool {
	switch {
	case r.Spec == "" && r.Timezone == "":
		if r.Armed.IsZero() && r.LastFired.IsZero() {
			r.Armed = now
		}
	case r.Spec != spec || r.Timezone != zone:
		r.Armed = now
	default:
		return false
	}
	r.Spec, r.Timezone = spec, zone
	return true
}

// baseline is the time after which a tick counts as missed: a claimed
// tick is not missed (unfinished() tells the one whose run died).
func (r *record) baseline() time.Time {
	b := r.Armed
	if r.LastFired.After(b) {
		b = r.LastFired
	}
	if r.ClaimedFor.After(b) {
		b = r.ClaimedFor
	}
	return b
}

// unfinished is the claimed tick whose run never finished (its node died
// in it), or zero.
func (r *record) unfinished() time.Time {
	if r.ClaimedFor.After(r.FiredFor) {
		return r.ClaimedFor
	}
	return time.Time{}
}

// Why a claim was refused.
var (
	errPaused  = errors.New("schedule: paused")
	errClaimed = errors.New("schedule: tick already claimed")
)

// failedTick is the latest tick whose scheduled run finished and failed,
// with no run since (a manual run clears it), or zero.
func (r *record) failedTick() time.Time {
	if r.LastRun == nil || r.LastRun.Status != engine.StatusError || r.LastRun.Manual ||
		r.FiredFor.IsZero() || !r.ClaimedFor.Equal(r.FiredFor) {
		return time.Time{}
	}
	return r.FiredFor
}

// claimMode says which already claimed tick a claim may take again.
type claimMode int

const (
	claimNew   claimMode = iota // a tick no node claimed yet
	claimRedo                   // also: a claimed tick whose run never finished
	claimRetry                  // also: the tick whose run failed (failedTick)
)

// claim records, in one transaction, that node runs the tick scheduledFor:
// refused (nothing written) when the schedule is paused or the tick (or a
// later one) is claimed already; with claimRedo, the tick may be claimed
// again while its run never finished, with claimRetry while its run failed
// and nothing ran since. base stands in for a record that does not decode
// (paused).
func claim(ctx context.Context, st StateStore, key string, base record, scheduledFor, now time.Time, node string, mode claimMode) (record, error) {
	return tryUpdateRecord(ctx, st, key, base, func(out *record) error {
		switch {
		case out.Paused:
			return errPaused
		case mode == claimRedo && out.unfinished().Equal(scheduledFor):
		case mode == claimRetry && out.failedTick().Equal(scheduledFor) && !scheduledFor.IsZero():
		case !out.ClaimedFor.Before(scheduledFor):
			return errClaimed
		}
		out.ClaimedFor, out.ClaimedBy, out.ClaimedAt = scheduledFor.UTC(), node, now.UTC()
		return nil
	})
}

// getter is the read a StateStore may also have (store.KV does).
type getter interface {
	GetKV(ctx context.Context, ns, key string) ([]byte, error)
}

// errReadOnly aborts a read-only UpdateKV: reading through the one method
// the store interface needs, without writing.
var errReadOnly = errors.New("schedule: read only")

// loadRecord reads a record. A record that does not decode is treated as
// paused: firing a schedule someone may have paused is worse than not
// firing one they did not, and resuming it rewrites the record.
func loadRecord(ctx context.Context, st StateStore, key string) (rec record, corrupt bool, err error) {
	var raw []byte
	if g, ok := st.(getter); ok {
		// A plain read where the store has one (store.KV): reloads follow
		// every tick on every node, and a read-only UpdateKV may take the
		// store's write lock.
		raw, err = g.GetKV(ctx, Namespace, key)
		if errors.Is(err, store.ErrNotFound) {
			raw, err = nil, nil
		}
	} else {
		err = st.UpdateKV(ctx, Namespace, key, func(old []byte) ([]byte, error) {
			raw = old
			return nil, errReadOnly
		})
		if errors.Is(err, errReadOnly) {
			err = nil
		}
	}
	if err != nil {
		return record{}, false, err
	}
	if raw == nil {
		return record{}, false, nil
	}
	if json.Unmarshal(raw, &rec) != nil {
		return record{Paused: true}, true, nil
	}
	return rec, false, nil
}

// updateRecord applies change to the stored record in one transaction and
// returns the result. base stands in for a stored record that does not
// decode.
func updateRecord(ctx context.Context, st StateStore, key string, base record, change func(*record)) (record, error) {
	return tryUpdateRecord(ctx, st, key, base, func(r *record) error {
		change(r)
		return nil
	})
}

// tryUpdateRecord is updateRecord with a change that may refuse: its error
// ends the transaction with nothing written, and is returned with the
// record the change saw.
func tryUpdateRecord(ctx context.Context, st StateStore, key string, base record, change func(*record) error) (record, error) {
	var out record
	err := st.UpdateKV(ctx, Namespace, key, func(old []byte) ([]byte, error) {
		out = base
		if old != nil {
			var r record
			if json.Unmarshal(old, &r) == nil {
				out = r
			}
		}
		if err := change(&out); err != nil {
			return nil, err
		}
		return json.Marshal(out)
	})
	return out, err
}

// memState is the StateStore used when Options.State is nil: schedules
// work, but pauses and last-fired times end with the process.
type memState struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemState() *memState { return &memState{m: map[string][]byte{}} }

func (s *memState) UpdateKV(_ context.Context, ns, key string, fn func([]byte) ([]byte, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := ns + "\x00" + key
	old, ok := s.m[k]
	if ok {
		old = append([]byte(nil), old...)
	}
	val, err := fn(old)
	if err != nil {
		return err
	}
	if val == nil {
		delete(s.m, k)
	} else {
		s.m[k] = append([]byte(nil), val...)
	}
	return nil
}
