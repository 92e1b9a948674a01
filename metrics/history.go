package metrics

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flowd/flowd/ui"
)

// History bounds.
const (
	// HistoryStep is the time between two samples.
	HistoryStep = time.Minute
	// HistoryLen is how many samples are kept: a day and one, so the
	// sample a day ago is still there.
	HistoryLen = 24*60 + 1
	// MaxHistorySeries bounds the series kept; past it a new series is
	// added to its group's "(other)" series. At HistoryLen float64 values
	// a series, the bound is about 3 MB.
	MaxHistorySeries = 256
)

// History keeps the dashboard's counters over the last day: one sample
// a minute of the very counters /metrics shows (read with Gather from a
// registry holding those collectors), summed over the labels the
// dashboard does not show. It implements ui.Counters. The numbers are
// this process's: a counter starts at 0 when the process starts, so a
// count over the last hour is the counter now minus the counter an hour
// ago, and before the first sample it was 0.
//
//	Run: every HistoryStep  Gather --sum by group+labels--> ring of HistoryLen samples per series
//	CountersAt(now, instants): Gather (now) + the last sample at or before each earlier instant
type History struct {
	g   prometheus.Gatherer
	now func() time.Time

	mu     sync.Mutex
	since  time.Time
	last   time.Time   // the latest sample's time
	times  []time.Time // per slot (the minute modulo HistoryLen), the time of its sample; zero: none
	series []*hseries
	index  map[string]*hseries
}

type hseries struct {
	group  string
	labels []string
	vals   []float64 // per slot, in step with times
}

// NewHistory keeps a history of m's dashboard counters, timed by now
// (nil: time.Now). It takes its first sample at once: call Run to take
// one every HistoryStep.
func (m *Metrics) NewHistory(now func() time.Time) *History {
	return newHistory(m.dash, now)
}

func newHistory(g prometheus.Gatherer, now func() time.Time) *History {
	if now == nil {
		now = time.Now
	}
	h := &History{g: g, now: now, times: make([]time.Time, HistoryLen), index: map[string]*hseries{}}
	h.since = now()
	h.Sample()
	return h
}

// Run samples every HistoryStep until ctx ends.
func (h *History) Run(ctx context.Context) {
	t := time.NewTicker(HistoryStep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.Sample()
		}
	}
}

// reading is one Gather summed into the dashboard's series.
type reading map[string]struct {
	group  string
	labels []string
	v      float64
}

// groupOf maps a metric family to the dashboard's group and the labels it
// keeps, in order.
var groupOf = map[string]struct {
	group  string
	labels []string
}{
	NameTokenValidations: {ui.SeriesValidations, []string{"reason"}},
	NameGrants:           {ui.SeriesGrants, []string{"grant_type", "outcome"}},
	NameClientAuth:       {ui.SeriesClientAuth, []string{"result"}},
	NameSignIns:          {ui.SeriesSignIns, []string{"result"}},
	NameAdminSignIns:     {ui.SeriesAdminSignIns, []string{"result"}},
	NameRuns:             {ui.SeriesRuns, []string{"flow", "outcome"}},
}

func (h *History) read() reading {
	fams, _ := h.g.Gather() // a partial answer still holds the families it could gather
	out := reading{}
	for _, f := range fams {
		g, ok := groupOf[f.GetName()]
		if !ok {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := make([]string, len(g.labels))
			for i, name := range g.labels {
				labels[i] = labelValue(m, name)
			}
			k := seriesKey(g.group, labels)
			e := out[k]
			e.group, e.labels = g.group, labels
			e.v += m.GetCounter().GetValue()
			out[k] = e
		}
	}
	return out
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func seriesKey(group string, labels []string) string {
	return group + "\x00" + strings.Join(labels, "\x00")
}

// assign adds up a reading per kept series, adding series as they
// appear (their history is 0: the counter did not exist before) and
// folding those past MaxHistorySeries into their group's "(other)"
// series (first label "(other)", the others kept). h.mu is held.
func (h *History) assign(rd reading) map[*hseries]float64 {
	out := make(map[*hseries]float64, len(rd))
	for k, e := range rd {
		s := h.index[k]
		if s == nil {
			labels := e.labels
			if len(h.index) >= MaxHistorySeries && len(labels) > 0 {
				labels = append([]string{ui.SeriesOther}, labels[1:]...)
				k = seriesKey(e.group, labels)
			}
			if s = h.index[k]; s == nil {
				// A series first seen now was at 0 in every held sample.
				s = &hseries{group: e.group, labels: labels, vals: make([]float64, HistoryLen)}
				h.index[k] = s
				h.series = append(h.series, s)
			}
		}
		out[s] += e.v
	}
	return out
}

// Sample takes one sample now.
func (h *History) Sample() {
	rd := h.read()
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.store(h.assign(rd), now)
}

// minute numbers the minutes since the Unix epoch.
func minute(t time.Time) int64 {
	m := t.Unix() / 60
	if t.Unix() < 0 && t.Unix()%60 != 0 {
		m--
	}
	return m
}

func slotOf(m int64) int {
	s := int(m % HistoryLen)
	if s < 0 {
		s += HistoryLen
	}
	return s
}

// store records a sample in its minute's slot (a later sample of the
// same minute replaces it), so the slots hold at most one sample a
// minute over the last HistoryLen minutes. h.mu is held.
func (h *History) store(vals map[*hseries]float64, now time.Time) {
	prev := -1
	if !h.last.IsZero() {
		prev = slotOf(minute(h.last))
	}
	slot := slotOf(minute(now))
	for _, s := range h.series {
		v, ok := vals[s]
		if !ok && prev >= 0 {
			v = s.vals[prev] // not in this reading: unchanged
		}
		s.vals[slot] = v
	}
	h.times[slot] = now
	if now.After(h.last) {
		h.last = now
	}
}

// at returns the slot of the last sample at or before t, or -1 when
// there is none (t is before the first sample, or older than the slots
// reach). h.mu is held.
func (h *History) at(t time.Time) int {
	if t.Before(h.since) {
		return -1
	}
	m := minute(t)
	for k := int64(0); k < HistoryLen; k++ {
		slot := slotOf(m - k)
		st := h.times[slot]
		if st.IsZero() || minute(st) != m-k || st.After(t) {
			continue // no sample that minute, one of an earlier lap, or after t
		}
		return slot
	}
	return -1
}

// CountersAt implements ui.Counters.
func (h *History) CountersAt(now time.Time, instants []time.Time) ui.CounterReading {
	rd := h.read()
	clock := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := h.assign(rd)
	if minute(clock) != minute(h.last) {
		// The ticker is late (or Run was never started): this reading is
		// the sample due this minute.
		h.store(cur, clock)
	}
	idx := make([]int, len(instants))
	for i, t := range instants {
		if !t.Before(now) {
			idx[i] = -2 // now
		} else {
			idx[i] = h.at(t)
		}
	}
	out := ui.CounterReading{Since: h.since, Series: make([]ui.CounterSeries, 0, len(h.series))}
	for _, s := range h.series {
		cs := ui.CounterSeries{Group: s.group, Labels: slices.Clone(s.labels), Values: make([]float64, len(instants))}
		for i, j := range idx {
			switch {
			case j == -2:
				cs.Values[i] = cur[s]
			case j >= 0:
				cs.Values[i] = s.vals[j]
			}
		}
		out.Series = append(out.Series, cs)
	}
	return out
}

var _ ui.Counters = (*History)(nil)
