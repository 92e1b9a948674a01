package app

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
)

type recordingRuns struct {
	store.Runs
	mu      sync.Mutex
	batches [][]store.RunRecord
}

func (r *recordingRuns) AppendRuns(_ context.Context, runs []store.RunRecord) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, runs)
	return nil
}

// TestTraceWriterKeepsNewestPerFlow: under load only the newest keep
// traces per flow are encoded and written (the store would trim the rest
// at once), in one transaction per flush.
func TestTraceWriterKeepsNewestPerFlow(t *testing.T) {
	rec := &recordingRuns{}
	w := newTraceWriter(rec, slog.New(slog.DiscardHandler), 10)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 35 {
		w.SaveTrace(&engine.Trace{ID: string(rune('a' + i)), Flow: "busy", Started: base.Add(time.Duration(i) * time.Second)})
	}
	for i := range 3 {
		w.SaveTrace(&engine.Trace{ID: "q" + string(rune('0'+i)), Flow: "quiet", Started: base})
	}
	w.Flush()
	w.close()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.batches) != 1 {
		t.Fatalf("%d store transactions, want 1", len(rec.batches))
	}
	got := map[string][]store.RunRecord{}
	for _, r := range rec.batches[0] {
		got[r.Flow] = append(got[r.Flow], r)
	}
	if len(got["busy"]) != 10 || len(got["quiet"]) != 3 {
		t.Fatalf("wrote busy=%d quiet=%d, want 10 and 3", len(got["busy"]), len(got["quiet"]))
	}
	for _, r := range got["busy"] {
		if r.Started.Before(base.Add(25 * time.Second)) {
			t.Fatalf("an old trace (%s) was written instead of a newer one", r.Started)
		}
	}
}
