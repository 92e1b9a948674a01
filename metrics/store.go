package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowd/flowd/store"
)

// NameStoreDuration is the store latency histogram.
const NameStoreDuration = "flowd_store_operation_duration_seconds"

// Store calls take from microseconds (a bbolt read from the page cache)
// to seconds (an etcd write waiting for a quorum).
var storeBuckets = []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// StoreOps is the store latency histogram: every call made through
// store.Observed, by store kind and operation (store.Ops). It is
// registered on its own, before the rest, because the store is wrapped
// before the services that read it (and that Metrics reads) are built.
type StoreOps struct {
	hist *prometheus.HistogramVec
}

// NewStoreOps registers the store latency histogram on reg.
func NewStoreOps(reg prometheus.Registerer) (*StoreOps, error) {
	s := &StoreOps{hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: NameStoreDuration,
		Help: "Duration of store calls in seconds, errors included, by store kind (bbolt, etcd, memory, other) and operation " +
			"(kv_get, kv_update, flow_put, runs_append, ...). Watch, Campaign and Lock wait by design and are not timed.",
		Buckets: storeBuckets}, []string{"kind", "op"})}
	if err := reg.Register(s.hist); err != nil {
		return nil, err
	}
	return s, nil
}

// Kind returns the observer of one store, for store.Observed: kind is a
// fixed word (bbolt, etcd, memory, other), never a path or an address.
func (s *StoreOps) Kind(kind string) store.OpObserver { return storeKind{s, kind} }

type storeKind struct {
	s    *StoreOps
	kind string
}

// Op resolves one operation's series (it exists from then on, at zero).
func (k storeKind) Op(op string) func(time.Duration) {
	h := k.s.hist.WithLabelValues(k.kind, op)
	return func(d time.Duration) { h.Observe(d.Seconds()) }
}
