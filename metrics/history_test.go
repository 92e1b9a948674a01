package metrics

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	httpblock "github.com/flowd/flowd/blocks/http"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/ui"
)

// value finds one series of a reading; labels joined with "/".
func seriesValues(rd ui.CounterReading, group, labels string) []float64 {
	for _, s := range rd.Series {
		if s.Group == group && strings.Join(s.Labels, "/") == labels {
			return s.Values
		}
	}
	return nil
}

// testHistory is a Metrics without a registry and its History on a test
// clock that starts at start.
func testHistory(t *testing.T, start time.Time) (*Metrics, *History, *enginetest.Clock) {
	t.Helper()
	clock := enginetest.NewClock(start)
	m, err := New(nil, Sources{})
	if err != nil {
		t.Fatal(err)
	}
	return m, m.NewHistory(clock.Now), clock
}

// TestHistoryInstants: a value at an instant is the counter at the last
// sample at or before it, now's counter at or after now, 0 before the
// start; series sum the labels the dashboard does not show (flow, node).
func TestHistoryInstants(t *testing.T) {
	m, h, clock := testHistory(t, time.Date(2026, 12, 3, 10, 0, 20, 0, time.UTC))
	t0 := clock.Now()
	valid := m.TokenValidation("api", "auth", "")
	validOther := m.TokenValidation("other", "check", "")
	aud := m.TokenValidation("api", "auth", jose.ReasonWrongAudience)

	clock.Advance(time.Minute)
	valid.Inc()
	validOther.Inc()
	h.Sample() // t0+1m: valid 2
	clock.Advance(time.Minute)
	valid.Inc()
	aud.Inc()
	h.Sample() // t0+2m: valid 3, wrong_audience 1
	clock.Advance(30 * time.Second)
	for range 4 {
		valid.Inc()
	}
	now := clock.Now()
	instants := []time.Time{t0.Add(-time.Hour), t0, t0.Add(time.Minute), t0.Add(90 * time.Second), t0.Add(2 * time.Minute), now, now.Add(time.Hour)}
	rd := h.CountersAt(now, instants)
	if !rd.Since.Equal(t0) {
		t.Errorf("since %v, want %v", rd.Since, t0)
	}
	tests := []struct {
		group, labels string
		want          []float64
	}{
		{ui.SeriesValidations, "", []float64{0, 0, 2, 2, 3, 7, 7}},
		{ui.SeriesValidations, "wrong_audience", []float64{0, 0, 0, 0, 1, 1, 1}},
		{ui.SeriesValidations, "bad_signature", []float64{0, 0, 0, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.group+"/"+tt.labels, func(t *testing.T) {
			got := seriesValues(rd, tt.group, tt.labels)
			if tt.labels == "bad_signature" {
				if got != nil {
					t.Errorf("a series never resolved is listed: %v", got)
				}
				return
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("values %v, want %v", got, tt.want)
			}
		})
	}
}

// TestHistoryKeepsADay: sampled once a minute for 25 hours, the history
// still answers exactly for the instant a day ago (the ring holds a day
// and one minute) and for every minute since.
func TestHistoryKeepsADay(t *testing.T) {
	m, h, clock := testHistory(t, time.Date(2026, 12, 3, 0, 0, 5, 0, time.UTC))
	runs := m.Runs("hello")
	const minutes = 25 * 60
	for range minutes {
		clock.Advance(time.Minute)
		runs.Finished(true, 0)
		h.Sample()
	}
	now := clock.Now()
	at := []time.Time{now.Add(-24 * time.Hour), now.Add(-time.Hour), now.Add(-time.Minute), now}
	got := seriesValues(h.CountersAt(now, at), ui.SeriesRuns, "hello/ok")
	want := []float64{minutes - 24*60, minutes - 60, minutes - 1, minutes}
	if !slices.Equal(got, want) {
		t.Errorf("runs at a day, an hour, a minute ago and now: %v, want %v", got, want)
	}
}

// TestHistorySamplesWhenDue: without Run, a read in a new minute stores
// the sample that was due, so the next minute's reads see it.
func TestHistorySamplesWhenDue(t *testing.T) {
	m, h, clock := testHistory(t, time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	grant := m.Grant("token", "grant", "client_credentials", "ok")
	clock.Advance(2 * time.Minute)
	grant.Inc()
	first := clock.Now()
	h.CountersAt(clock.Now(), nil) // stores the sample due at 10:02
	clock.Advance(3 * time.Minute)
	grant.Inc()
	got := seriesValues(h.CountersAt(clock.Now(), []time.Time{first.Add(-time.Second), first, clock.Now()}), ui.SeriesGrants, "client_credentials/ok")
	if want := []float64{0, 1, 2}; !slices.Equal(got, want) {
		t.Errorf("grants %v, want %v", got, want)
	}
}

// TestHistoryBounded: flows past MaxHistorySeries share one "(other)"
// series per outcome, and no count is lost.
func TestHistoryBounded(t *testing.T) {
	m, h, clock := testHistory(t, time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	const flows = MaxHistorySeries + 100
	for i := range flows {
		m.Runs(fmt.Sprintf("flow-%03d", i)).Finished(i%3 != 0, 0)
		if i%50 == 0 {
			clock.Advance(time.Minute)
			h.Sample()
		}
	}
	rd := h.CountersAt(clock.Now(), []time.Time{clock.Now()})
	var total, other float64
	for _, s := range rd.Series {
		if s.Group != ui.SeriesRuns {
			continue
		}
		total += s.Values[0]
		if s.Labels[0] == ui.SeriesOther {
			other += s.Values[0]
		}
	}
	if n := len(rd.Series); n > MaxHistorySeries+2 {
		t.Errorf("%d series kept, want at most %d", n, MaxHistorySeries+2)
	}
	if total != flows {
		t.Errorf("runs add up to %v, want %d", total, flows)
	}
	if other == 0 {
		t.Error("no run was folded into (other)")
	}
}

// TestHistoryReadsTheExportedCounters: with a registry given, the
// history's value now is the value the registry's scrape shows.
func TestHistoryReadsTheExportedCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, Sources{})
	if err != nil {
		t.Fatal(err)
	}
	h := m.NewHistory(nil)
	s := m.SignIn("authorize", "login", "failed")
	s.Inc()
	s.Inc()
	m.AdminSignIn(ui.SignInWrongPassword)
	now := time.Now()
	rd := h.CountersAt(now, []time.Time{now})
	for _, tt := range []struct {
		group, labels string
		scraped       float64
	}{
		{ui.SeriesSignIns, "failed", testutil.ToFloat64(m.signIns.WithLabelValues("authorize", "login", "failed"))},
		{ui.SeriesAdminSignIns, ui.SignInWrongPassword, testutil.ToFloat64(m.adminSignIn.WithLabelValues(ui.SignInWrongPassword))},
	} {
		if got := seriesValues(rd, tt.group, tt.labels); len(got) != 1 || got[0] != tt.scraped || got[0] == 0 {
			t.Errorf("%s %s: history %v, scrape %v", tt.group, tt.labels, got, tt.scraped)
		}
	}
}

// TestDashboardOnlyHasNoRequestInstruments: without an embedder's
// registry, the engine's observer counts what the dashboard shows and is
// not an HTTP request observer (no latency timing per request).
func TestDashboardOnlyHasNoRequestInstruments(t *testing.T) {
	m, err := New(nil, Sources{})
	if err != nil {
		t.Fatal(err)
	}
	o := m.DashboardOnly()
	if _, ok := o.(httpblock.Observer); ok {
		t.Error("DashboardOnly observes requests")
	}
	if _, ok := o.(jose.Observer); !ok {
		t.Error("DashboardOnly does not count token verdicts")
	}
	o.Runs("f").Finished(false, time.Second)
	if got := testutil.ToFloat64(m.runs.WithLabelValues("f", "error")); got != 1 {
		t.Errorf("failed runs %v, want 1", got)
	}
}
