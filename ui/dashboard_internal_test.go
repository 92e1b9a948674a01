package ui

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rateCounters are counters that grew at a fixed rate per minute since
// start: the value at t is the whole minutes since start times the rate.
type rateCounters struct {
	start time.Time
	rates map[string]float64 // "group/label/label" -> per minute
}

func (c rateCounters) CountersAt(now time.Time, at []time.Time) CounterReading {
	rd := CounterReading{Since: c.start}
	for key, rate := range c.rates {
		parts := strings.Split(key, "/")
		s := CounterSeries{Group: parts[0], Labels: parts[1:], Values: make([]float64, len(at))}
		for i, t := range at {
			if t.After(now) {
				t = now
			}
			if m := math.Floor(t.Sub(c.start).Minutes()); m > 0 {
				s.Values[i] = m * rate
			}
		}
		rd.Series = append(rd.Series, s)
	}
	return rd
}

// TestDashboardWindows: the hour and day counts are differences of the
// counters over the window, the valid row holds only valid verdicts, the
// chart has a column per bucket with data, and a node up for less than
// the window says so.
func TestDashboardWindows(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		up        time.Duration
		win       string
		wantHour  map[string]float64 // row key -> count in the last hour
		wantDay   map[string]float64
		wantCols  int
		wantKPI   map[string]float64 // validations card
		partial   bool
		wantEmpty string
	}{
		{"up two days, hour view", 48 * time.Hour, windowHour,
			map[string]float64{"valid": 600, "token_expired": 120},
			map[string]float64{"valid": 14400, "token_expired": 2880},
			60, map[string]float64{"valid": 600, "refused": 120}, false, ""},
		{"up two days, day view", 48 * time.Hour, windowDay,
			map[string]float64{"valid": 600, "token_expired": 120},
			map[string]float64{"valid": 14400, "token_expired": 2880},
			96, map[string]float64{"valid": 14400, "refused": 2880}, false, ""},
		{"up 30 minutes", 30 * time.Minute, windowHour,
			map[string]float64{"valid": 300, "token_expired": 60},
			map[string]float64{"valid": 300, "token_expired": 60},
			30, map[string]float64{"valid": 300, "refused": 60}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := rateCounters{start: now.Add(-tt.up), rates: map[string]float64{
				SeriesValidations + "/": 10, SeriesValidations + "/token_expired": 2, SeriesValidations + "/bad_signature": 0,
			}}
			w := windows[tt.win]
			at := append(w.instants(now), now.Add(-time.Hour), now.Add(-24*time.Hour))
			card := validationsView(dashTable{rd: c.CountersAt(now, at), buckets: w.buckets, now: now}, w)
			got := map[string][2]float64{}
			for _, r := range card.Rows {
				got[r.Key] = [2]float64{r.Hour, r.Day}
			}
			if len(got) != len(tt.wantHour) {
				t.Errorf("rows %v, want %v (no row for a reason at 0)", got, tt.wantHour)
			}
			for k, h := range tt.wantHour {
				if got[k] != [2]float64{h, tt.wantDay[k]} {
					t.Errorf("row %s: %v, want [%v %v]", k, got[k], h, tt.wantDay[k])
				}
			}
			for _, k := range card.KPIs {
				if k.Value != tt.wantKPI[k.Label] {
					t.Errorf("kpi %s: %v, want %v", k.Label, k.Value, tt.wantKPI[k.Label])
				}
			}
			if n := len(card.Chart.Hover); n != tt.wantCols {
				t.Errorf("%d columns with data, want %d", n, tt.wantCols)
			}
			for _, r := range card.Chart.Rects {
				if r.Y < card.Chart.Top-0.01 || r.Y+r.H > card.Chart.Base+0.01 || r.H <= 0 {
					t.Errorf("rectangle %+v outside the plot [%v, %v]", r, card.Chart.Top, card.Chart.Base)
				}
			}
			v := DashboardView{Window: w.name, WindowText: w.text, Now: now, Since: c.start, Counters: true,
				Partial: now.Sub(c.start) < w.span, Validations: card}
			d := render(t, DashboardPage(v))
			if (d.Find(tid("dash-partial")).Length() == 1) != tt.partial {
				t.Errorf("partial note shown: %v, want %v", !tt.partial, tt.partial)
			}
			if n := d.Find(tid("dash-validations") + " " + tid("chart-column")).Length(); n != tt.wantCols {
				t.Errorf("rendered %d columns, want %d", n, tt.wantCols)
			}
			if got := d.Find(tid("dash-validations") + ` [data-label="valid"] strong`).Text(); got != strconv.Itoa(int(tt.wantKPI["valid"])) {
				t.Errorf("rendered valid %q", got)
			}
		})
	}
}

func TestNiceMaxAndDurations(t *testing.T) {
	for _, tt := range []struct{ in, want float64 }{{0, 1}, {1, 1}, {3, 5}, {7, 10}, {12, 20}, {51, 100}, {200, 200}} {
		if got := niceMax(tt.in); got != tt.want {
			t.Errorf("niceMax(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{40 * time.Second, "40 s"}, {12 * time.Minute, "12 min"}, {9*time.Hour + 41*time.Minute, "9 h 41 min"},
		{3 * time.Hour, "3 h"}, {76 * time.Hour, "3 d 4 h"}, {-5 * time.Minute, "5 min"}} {
		if got := roughDuration(tt.d); got != tt.want {
			t.Errorf("roughDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
