package flowd_test

import (
	"encoding/json"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/flowd/flowd/metrics"
	"github.com/flowd/flowd/store"
)

// storeCounts reads the store latency histogram's observation counts by
// operation, checking every series is of kind bbolt.
func storeCounts(t *testing.T, fams map[string]*dto.MetricFamily) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, m := range fams[metrics.NameStoreDuration].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["kind"] != "bbolt" {
			t.Errorf("store series of kind %q, want bbolt", labels["kind"])
		}
		out[labels["op"]] = m.GetHistogram().GetSampleCount()
	}
	return out
}

// TestStoreLatencyMetric: /metrics has the store latency histogram of the
// bbolt store, one series per operation, and importing and deploying one
// flow adds exactly one flow_put and one deploy observation.
func TestStoreLatencyMetric(t *testing.T) {
	e := newMetricsEnv(t)
	before := storeCounts(t, e.families())
	if len(before) != len(store.Ops) {
		t.Errorf("%d store series, want one per operation (%d): %v", len(before), len(store.Ops), before)
	}
	if before["kv_get"] == 0 || before["flow_get"] == 0 {
		t.Errorf("start-up read nothing through the timed store: %v", before)
	}
	doc, _ := json.Marshal(map[string]any{"schema": "flowd/v1", "id": "counted", "name": "counted",
		"nodes": []map[string]any{{"id": "m", "type": "core.manual"}}})
	if _, err := e.fd.App().Import(t.Context(), doc, true); err != nil {
		t.Fatal(err)
	}
	after := storeCounts(t, e.families())
	delta := map[string]uint64{}
	for op, n := range after {
		if d := n - before[op]; d != 0 {
			delta[op] = d
		}
	}
	t.Logf("store calls of one import and deploy: %v", delta)
	for op, want := range map[string]uint64{"flow_put": 1, "deploy": 1, "secret_update": 0, "runs_delete": 0} {
		if delta[op] != want {
			t.Errorf("%s: %d more observations, want %d (all: %v)", op, delta[op], want, delta)
		}
	}
}
