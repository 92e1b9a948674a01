package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
)

// TestStoreOps: calls through an observed store land in the histogram of
// their kind and operation, one observation per call, errors included;
// every operation's series exists from the start.
func TestStoreOps(t *testing.T) {
	reg := prometheus.NewRegistry()
	ops, err := NewStoreOps(reg)
	if err != nil {
		t.Fatal(err)
	}
	s := store.Observed(memstore.MustNew(t, memstore.Options{}), ops.Kind("memory"))
	ctx := t.Context()
	for i := range 3 {
		if err := s.SetKV(ctx, "ns", strings.Repeat("k", i+1), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.GetKV(ctx, "ns", "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetKV(ctx, "ns", "missing"); err == nil {
		t.Fatal("GetKV of a missing key did not fail")
	}
	if _, err := s.ListKV(ctx, "ns"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutFlow(ctx, "f", []byte(`{}`), store.MustCreate); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"kv_set": 3, "kv_get": 2, "kv_list": 1, "flow_put": 1, "kv_update": 0, "secret_get": 0}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	series := 0
	for _, f := range fams {
		if f.GetName() != NameStoreDuration {
			continue
		}
		for _, m := range f.GetMetric() {
			series++
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] != "memory" {
				t.Errorf("series with kind %q", labels["kind"])
			}
			got[labels["op"]] = m.GetHistogram().GetSampleCount()
		}
	}
	for op, n := range want {
		if c, ok := got[op]; !ok || c != n {
			t.Errorf("%s: %d observations (series present %v), want %d", op, c, ok, n)
		}
	}
	if series != len(store.Ops) {
		t.Errorf("%d series, want one per operation (%d)", series, len(store.Ops))
	}
	if n := testutil.CollectAndCount(ops.hist); n != len(store.Ops) {
		t.Errorf("CollectAndCount = %d", n)
	}
}
