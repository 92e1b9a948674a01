package ui

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowd/flowd/blocks/jose"
)

// Counters is where the dashboard reads its numbers: the same Prometheus
// counters /metrics exposes, with a bounded per-minute history of them
// (metrics.History implements it). Values are this process's counts since
// it started: nothing is summed across the nodes of a cluster.
type Counters interface {
	// CountersAt returns every series' value at each instant of at: the
	// counter as it stood at the last sample taken at or before the
	// instant, the counter as it is for an instant at or after now (the
	// caller's clock reading), 0 before counting began.
	CountersAt(now time.Time, at []time.Time) CounterReading
}

// CounterReading is a Counters answer.
type CounterReading struct {
	// Since is when this node began counting (its start).
	Since  time.Time
	Series []CounterSeries
}

// CounterSeries is one series of the dashboard: a Prometheus counter
// summed over the labels the dashboard does not show.
type CounterSeries struct {
	Group  string
	Labels []string
	Values []float64 // one per instant asked for
}

// Series groups and their labels. A series past the history's bound is
// folded into one whose first label is SeriesOther.
const (
	// SeriesValidations: flowd_token_validations_total by reason ("" is
	// valid).
	SeriesValidations = "validations"
	// SeriesGrants: flowd_oauth_grants_total by grant_type and outcome.
	SeriesGrants = "grants"
	// SeriesClientAuth: flowd_oauth_client_auth_total by result.
	SeriesClientAuth = "client_auth"
	// SeriesSignIns: flowd_oidc_sign_ins_total by result.
	SeriesSignIns = "sign_ins"
	// SeriesAdminSignIns: flowd_admin_sign_ins_total by result.
	SeriesAdminSignIns = "admin_sign_ins"
	// SeriesRuns: flowd_runs_total by flow and outcome.
	SeriesRuns  = "runs"
	SeriesOther = "(other)"
)

// Dashboard windows.
const (
	windowHour = "hour"
	windowDay  = "day"
)

// window is one view of the dashboard: its span and its chart columns.
type window struct {
	name    string
	span    time.Duration
	buckets int
	text    string // "the last hour"
}

var windows = map[string]window{
	windowHour: {windowHour, time.Hour, 60, "the last hour"},
	windowDay:  {windowDay, 24 * time.Hour, 96, "the last day"},
}

// instants are the chart's bucket edges, oldest first: buckets+1 of them,
// the last one now.
func (w window) instants(now time.Time) []time.Time {
	step := w.span / time.Duration(w.buckets)
	out := make([]time.Time, w.buckets+1)
	for i := range out {
		out[i] = now.Add(-w.span + time.Duration(i)*step)
	}
	return out
}

func (s *Server) dashboardPage(w http.ResponseWriter, r *http.Request) {
	win, ok := windows[r.URL.Query().Get("window")]
	if r.URL.Query().Get("window") == "" {
		win, ok = windows[windowHour], true
	}
	if !ok {
		http.Error(w, `window must be "hour" or "day"`, http.StatusBadRequest)
		return
	}
	now := s.now().UTC()
	v := DashboardView{Window: win.name, WindowText: win.text, Now: now, Node: s.d.App.NodeID()}
	if s.d.Counters != nil {
		v.Counters = true
		hourAgo, dayAgo := now.Add(-time.Hour), now.Add(-24*time.Hour)
		at := append(win.instants(now), hourAgo, dayAgo)
		rd := s.d.Counters.CountersAt(now, at)
		v.Since = rd.Since.UTC()
		v.Uptime = roughDuration(now.Sub(v.Since))
		v.Partial = now.Sub(v.Since) < win.span
		tbl := dashTable{rd: rd, buckets: win.buckets, now: now}
		v.Validations = validationsView(tbl, win)
		v.Tokens = tokensView(tbl, win)
		v.SignIns = signInsView(tbl, win)
		v.Runs = runsView(tbl, win)
	}
	rot, err := s.rotations(r.Context(), now)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	v.Rotations = rot
	s.render(w, r, http.StatusOK, DashboardPage(v))
}

// dashTable reads a CounterReading: every series' values at the chart's
// bucket edges (0..buckets, the last now), an hour ago and a day ago.
type dashTable struct {
	rd      CounterReading
	buckets int
	now     time.Time
}

// sum adds the series of group whose labels match (a "*" entry matches
// any value; labels past the pattern match too) into one row of values.
func (t dashTable) sum(group string, match ...string) []float64 {
	out := make([]float64, t.buckets+3)
	for _, s := range t.rd.Series {
		if s.Group != group || !labelsMatch(s.Labels, match) || len(s.Values) != len(out) {
			continue
		}
		for i, v := range s.Values {
			out[i] += v
		}
	}
	return out
}

const anyLabel = "*"

func labelsMatch(labels, match []string) bool {
	for i, m := range match {
		if m != anyLabel && (i >= len(labels) || labels[i] != m) {
			return false
		}
	}
	return true
}

// counts is what one row of values says: the count over the last hour
// and day, and per chart bucket.
type counts struct {
	hour, day float64
	buckets   []float64
}

func (t dashTable) counts(vals []float64) counts {
	n := t.buckets
	now := vals[n]
	c := counts{hour: max(0, now-vals[n+1]), day: max(0, now-vals[n+2]), buckets: make([]float64, n)}
	for i := range n {
		c.buckets[i] = max(0, vals[i+1]-vals[i])
	}
	return c
}

// labelValues lists the distinct values of label i among group's series,
// sorted.
func (t dashTable) labelValues(group string, i int) []string {
	var out []string
	for _, s := range t.rd.Series {
		if s.Group == group && i < len(s.Labels) && !slices.Contains(out, s.Labels[i]) {
			out = append(out, s.Labels[i])
		}
	}
	slices.Sort(out)
	return out
}

func (c counts) in(w window) float64 {
	if w.name == windowDay {
		return c.day
	}
	return c.hour
}

// part is one stacked layer of a chart.
type part struct {
	class, label string
	c            counts
}

const (
	chartW     = 400.0
	wideChartW = 2*chartW + 16 // two grid columns and the gap between
	chartH     = 96.0
	chartT     = 12.0 // room above the tallest column for the scale label
	chartB     = 14.0 // room below for the time labels
)

// columns stacks parts into one column per bucket, in a chart of the
// normal card's width.
func columns(w window, now time.Time, unit string, parts ...part) Chart {
	return columnsW(chartW, w, now, unit, parts...)
}

// columnsW is columns for a chart width units wide (a card two columns
// wide draws with twice the units, so its text keeps its size).
func columnsW(width float64, w window, now time.Time, unit string, parts ...part) Chart {
	n := w.buckets
	totals := make([]float64, n)
	for _, p := range parts {
		for i, v := range p.c.buckets {
			totals[i] += v
		}
	}
	top := niceMax(slices.Max(totals))
	ch := Chart{W: width, H: chartH + chartT + chartB, Top: chartT, Base: chartT + chartH,
		MaxLabel: fmt.Sprintf("%s %s per %s", formatCount(top), plural(unit, top), bucketName(w))}
	colW := width / float64(n)
	gap := min(1.5, colW*0.2)
	step := w.span / time.Duration(n)
	start := now.Add(-w.span)
	for i := range n {
		y := chartT + chartH
		from := start.Add(time.Duration(i) * step)
		var title []string
		for _, p := range parts {
			v := p.c.buckets[i]
			if v <= 0 {
				continue
			}
			h := v / top * chartH
			y -= h
			ch.Rects = append(ch.Rects, ChartRect{X: float64(i)*colW + gap/2, Y: y, W: colW - gap, H: h, Class: p.class})
			title = append(title, formatCount(v)+" "+p.label)
		}
		if len(title) > 0 {
			// The whole column's height carries the tooltip, so thin
			// columns are easy to point at.
			ch.Hover = append(ch.Hover, ChartRect{X: float64(i) * colW, Y: chartT, W: colW, H: chartH,
				Title: fmt.Sprintf("%s–%s UTC: %s", from.UTC().Format("15:04"), from.Add(step).UTC().Format("15:04"), strings.Join(title, ", "))})
		}
	}
	for _, p := range parts {
		ch.Legend = append(ch.Legend, LegendItem{Class: p.class, Label: p.label})
	}
	// Time labels: the window's start, its middle and now.
	ch.Ticks = []ChartTick{{X: 0, Label: agoLabel(w.span), Anchor: "start"},
		{X: width / 2, Label: agoLabel(w.span / 2), Anchor: "middle"}, {X: width, Label: "now", Anchor: "end"}}
	return ch
}

// plural is unit ("tokens") for n other than 1, else the singular.
func plural(unit string, n float64) string {
	if n == 1 {
		return strings.TrimSuffix(unit, "s")
	}
	return unit
}

func bucketName(w window) string {
	if w.name == windowDay {
		return "15 min"
	}
	return "minute"
}

func agoLabel(d time.Duration) string {
	if d >= time.Hour {
		return strconv.Itoa(int(d.Hours())) + " h ago"
	}
	return strconv.Itoa(int(d.Minutes())) + " min ago"
}

// niceMax rounds a column's height up to 1, 2 or 5 times a power of ten,
// so the scale label is a round number.
func niceMax(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func formatCount(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

// row builds a table row; bar is filled by withBars.
func row(key, label, class string, c counts) DashRow {
	return DashRow{Key: key, Label: label, Class: class, Hour: c.hour, Day: c.day}
}

// withBars drops rows without a count in the last day and sets each
// bar to the row's share of the largest count in the window.
func withBars(rows []DashRow, w window) []DashRow {
	rows = slices.DeleteFunc(rows, func(r DashRow) bool { return r.Day == 0 })
	top := 0.0
	for _, r := range rows {
		top = max(top, r.in(w))
	}
	for i := range rows {
		if top > 0 {
			rows[i].Bar = rows[i].in(w) / top
		}
	}
	return rows
}

func (r DashRow) in(w window) float64 {
	if w.name == windowDay {
		return r.Day
	}
	return r.Hour
}

func validationsView(t dashTable, w window) DashCard {
	valid := t.counts(t.sum(SeriesValidations, ""))
	all := t.counts(t.sum(SeriesValidations))
	refused := counts{hour: all.hour - valid.hour, day: all.day - valid.day, buckets: make([]float64, len(all.buckets))}
	for i := range refused.buckets {
		refused.buckets[i] = all.buckets[i] - valid.buckets[i]
	}
	card := DashCard{Chart: columns(w, t.now, "tokens", part{"ok", "valid", valid}, part{"bad", "refused", refused}),
		KPIs: []KPI{{Label: "valid", Class: "ok", Value: valid.in(w)}, {Label: "refused", Class: "bad", Value: refused.in(w)}}}
	if all.in(w) == 0 {
		card.Empty = "No tokens validated in " + w.text + "."
	}
	rows := []DashRow{row("valid", "valid", "ok", valid)}
	var reasons []DashRow
	for _, reason := range t.labelValues(SeriesValidations, 0) {
		if reason == "" {
			continue
		}
		reasons = append(reasons, row(reason, reason, "bad", t.counts(t.sum(SeriesValidations, reason))))
	}
	slices.SortStableFunc(reasons, func(a, b DashRow) int { return cmp.Compare(b.in(w), a.in(w)) })
	card.Rows = withBars(append(rows, reasons...), w)
	return card
}

func tokensView(t dashTable, w window) DashCard {
	var parts []part
	var rows []DashRow
	issued := 0.0
	i := 0
	for _, gt := range t.labelValues(SeriesGrants, 0) {
		c := t.counts(t.sum(SeriesGrants, gt, "ok"))
		if c.day == 0 {
			continue // a grant type served but not used today: no colour, no legend
		}
		class := "g" + strconv.Itoa(i%4)
		i++
		parts = append(parts, part{class, gt, c})
		rows = append(rows, row("issued:"+gt, gt, class, c))
		issued += c.in(w)
	}
	refusedGrants := t.counts(t.sum(SeriesGrants, anyLabel, "invalid"))
	wrongSecret := t.counts(t.sum(SeriesClientAuth, "invalid"))
	throttled := t.counts(t.sum(SeriesClientAuth, "throttled"))
	busy := t.counts(t.sum(SeriesClientAuth, "busy"))
	rows = append(rows, row("refused", "refused at the token endpoint", "bad", refusedGrants),
		row("client_auth:invalid", "wrong client credentials", "bad", wrongSecret),
		row("client_auth:throttled", "client throttled", "warn", throttled),
		row("client_auth:busy", "server busy (hashing pool full)", "warn", busy))
	card := DashCard{Chart: columns(w, t.now, "tokens", parts...),
		KPIs: []KPI{{Label: "issued", Class: "ok", Value: issued}, {Label: "refused", Class: "bad", Value: refusedGrants.in(w)}}}
	if issued == 0 {
		card.Empty = "No tokens issued in " + w.text + "."
	}
	card.Rows = withBars(rows, w)
	return card
}

func signInsView(t dashTable, w window) DashCard {
	people := func(r string) counts { return t.counts(t.sum(SeriesSignIns, r)) }
	admin := func(r string) counts { return t.counts(t.sum(SeriesAdminSignIns, r)) }
	ok := addCounts(people("ok"), admin(SignInOK))
	failed := addCounts(people("failed"), admin(SignInWrongPassword))
	refused := addCounts(people("throttled"), people("invalid"), admin(SignInThrottled), admin(SignInBusy))
	card := DashCard{Chart: columns(w, t.now, "sign-ins", part{"ok", "signed in", ok}, part{"bad", "wrong password", failed},
		part{"warn", "throttled, busy or bad request", refused}),
		KPIs: []KPI{{Label: "signed in", Class: "ok", Value: ok.in(w)}, {Label: "failed", Class: "bad", Value: failed.in(w) + refused.in(w)}}}
	if ok.in(w)+failed.in(w)+refused.in(w) == 0 {
		card.Empty = "No sign-ins in " + w.text + "."
	}
	card.Rows = withBars([]DashRow{
		row("sign_ins:ok", "people signed in", "ok", people("ok")),
		row("sign_ins:failed", "people: wrong username or password", "bad", people("failed")),
		row("sign_ins:throttled", "people: throttled", "warn", people("throttled")),
		row("sign_ins:invalid", "people: bad sign-in request", "warn", people("invalid")),
		row("admin_sign_ins:ok", "admin signed in", "ok", admin(SignInOK)),
		row("admin_sign_ins:wrong_password", "admin: wrong password", "bad", admin(SignInWrongPassword)),
		row("admin_sign_ins:throttled", "admin: throttled", "warn", admin(SignInThrottled)),
		row("admin_sign_ins:busy", "admin: server busy", "warn", admin(SignInBusy)),
	}, w)
	return card
}

func addCounts(cs ...counts) counts {
	out := counts{buckets: make([]float64, len(cs[0].buckets))}
	for _, c := range cs {
		out.hour += c.hour
		out.day += c.day
		for i, v := range c.buckets {
			out.buckets[i] += v
		}
	}
	return out
}

func runsView(t dashTable, w window) RunsCard {
	ok := t.counts(t.sum(SeriesRuns, anyLabel, "ok"))
	failed := t.counts(t.sum(SeriesRuns, anyLabel, "error"))
	card := RunsCard{Chart: columnsW(wideChartW, w, t.now, "runs", part{"ok", "ok", ok}, part{"bad", "failed", failed}),
		KPIs: []KPI{{Label: "runs", Class: "ok", Value: ok.in(w) + failed.in(w)}, {Label: "failed", Class: "bad", Value: failed.in(w)}}}
	if ok.in(w)+failed.in(w) == 0 {
		card.Empty = "No flow runs in " + w.text + "."
	}
	for _, flow := range t.labelValues(SeriesRuns, 0) {
		o, f := t.counts(t.sum(SeriesRuns, flow, "ok")), t.counts(t.sum(SeriesRuns, flow, "error"))
		r := RunRow{Flow: flow, Other: flow == SeriesOther, RunsHour: o.hour + f.hour, RunsDay: o.day + f.day,
			ErrorsHour: f.hour, ErrorsDay: f.day}
		if r.RunsDay > 0 {
			card.Rows = append(card.Rows, r)
		}
	}
	slices.SortStableFunc(card.Rows, func(a, b RunRow) int {
		return cmp.Or(cmp.Compare(b.errors(w), a.errors(w)), cmp.Compare(b.runs(w), a.runs(w)), cmp.Compare(a.Flow, b.Flow))
	})
	top := 0.0
	for _, r := range card.Rows {
		top = max(top, r.runs(w))
	}
	for i := range card.Rows {
		if top > 0 {
			card.Rows[i].Bar = (card.Rows[i].runs(w) - card.Rows[i].errors(w)) / top
			card.Rows[i].ErrBar = card.Rows[i].errors(w) / top
		}
	}
	return card
}

func (r RunRow) runs(w window) float64 {
	if w.name == windowDay {
		return r.RunsDay
	}
	return r.RunsHour
}

func (r RunRow) errors(w window) float64 {
	if w.name == windowDay {
		return r.ErrorsDay
	}
	return r.ErrorsHour
}

// rotations lists every keyset with its next scheduled rotation (the
// same source as flowd_jose_next_rotation_seconds) and its keys by state.
func (s *Server) rotations(ctx context.Context, now time.Time) ([]RotationRow, error) {
	if s.d.Keysets == nil {
		return nil, nil
	}
	names, flows, err := s.keysetsAndFlows(ctx)
	if err != nil {
		return nil, err
	}
	var out []RotationRow
	horizon := 24 * time.Hour
	for _, name := range names {
		info, err := s.d.Keysets.Get(ctx, name)
		if errors.Is(err, jose.ErrNoKeyset) {
			continue
		}
		if err != nil {
			return nil, err
		}
		p := s.policyFor(flows, name)
		r := RotationRow{Keyset: name, Next: p.nextRotation, By: p.rotatedBy}
		states := map[string]int{}
		for _, k := range info.Keys {
			states[keyState(k)]++
		}
		var keys []string
		for _, st := range []string{"active", "next", "retired", "revoked"} {
			if states[st] > 0 {
				keys = append(keys, fmt.Sprintf("%d %s", states[st], st))
			}
		}
		r.Keys = strings.Join(keys, " · ")
		if !r.Next.IsZero() {
			left := r.Next.Sub(now)
			r.In = "in " + roughDuration(left)
			r.Soon = left < time.Hour
			if left <= 0 {
				r.In, r.Overdue = "due now", true
			}
			horizon = max(horizon, left)
		}
		out = append(out, r)
	}
	for i := range out {
		if !out[i].Next.IsZero() {
			out[i].Bar = min(1, max(0, float64(out[i].Next.Sub(now))/float64(horizon)))
		}
	}
	// Soonest first; keysets no schedule rotates last.
	slices.SortStableFunc(out, func(a, b RotationRow) int {
		switch {
		case a.Next.IsZero() != b.Next.IsZero():
			if a.Next.IsZero() {
				return 1
			}
			return -1
		case !a.Next.Equal(b.Next):
			return a.Next.Compare(b.Next)
		}
		return cmp.Compare(a.Keyset, b.Keyset)
	})
	return out, nil
}

// roughDuration says d in at most two units: "3 d 4 h", "9 h 41 min",
// "12 min", "40 s".
func roughDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min"
	case d < 48*time.Hour:
		h := int(d.Hours())
		if m := int(d.Minutes()) % 60; m > 0 {
			return fmt.Sprintf("%d h %d min", h, m)
		}
		return fmt.Sprintf("%d h", h)
	}
	days := int(d.Hours()) / 24
	if h := int(d.Hours()) % 24; h > 0 {
		return fmt.Sprintf("%d d %d h", days, h)
	}
	return fmt.Sprintf("%d d", days)
}

// --- view models ------------------------------------------------------------

// DashboardView is the dashboard page.
type DashboardView struct {
	Window     string // "hour" or "day"
	WindowText string // "the last hour"
	Now, Since time.Time
	Uptime     string
	Node       string
	// Partial: the node started less than a window ago, so the window's
	// counts begin at its start.
	Partial bool
	// Counters is false when the UI was built without a counter source
	// (only the rotations show).
	Counters    bool
	Validations DashCard
	Tokens      DashCard
	SignIns     DashCard
	Runs        RunsCard
	Rotations   []RotationRow
}

// DashCard is one card: headline numbers, a column chart over the
// window, and a table of counts over the last hour and day.
type DashCard struct {
	KPIs  []KPI
	Chart Chart
	// Empty, if set, replaces the chart: nothing happened in the window.
	Empty string
	Rows  []DashRow
}

// KPI is a headline number of the selected window.
type KPI struct {
	Label, Class string
	Value        float64
}

// DashRow is one line of a card's table.
type DashRow struct {
	Key, Label, Class string
	Hour, Day         float64
	Bar               float64 // 0..1: the selected window's count over the table's largest
}

// RunsCard is the runs per flow card.
type RunsCard struct {
	KPIs  []KPI
	Chart Chart
	Empty string
	Rows  []RunRow
}

// RunRow is one flow's runs and failed runs.
type RunRow struct {
	Flow                  string
	Other                 bool // the flows past the history's series bound, together
	RunsHour, RunsDay     float64
	ErrorsHour, ErrorsDay float64
	Bar, ErrBar           float64
}

// RotationRow is one keyset's next rotation.
type RotationRow struct {
	Keyset  string
	Next    time.Time // zero: no deployed schedule rotates it
	In      string    // "in 9 h 41 min"
	By      string    // flow/node of the schedule
	Keys    string    // "2 active · 2 next"
	Overdue bool
	Soon    bool    // within the hour
	Bar     float64 // time left over the longest time left (at least a day)
}

// Chart is a stacked column chart drawn as SVG, its geometry computed
// here so the template only places shapes.
type Chart struct {
	W, H      float64
	Top, Base float64 // y of the scale line and of the baseline
	MaxLabel  string
	Rects     []ChartRect
	Hover     []ChartRect // one transparent rectangle per non-empty column, with its tooltip
	Ticks     []ChartTick
	Legend    []LegendItem
}

// ChartRect is one rectangle of a chart.
type ChartRect struct {
	X, Y, W, H   float64
	Class, Title string
}

// ChartTick is a label under the chart.
type ChartTick struct {
	X             float64
	Label, Anchor string
}

// LegendItem names a colour of a chart.
type LegendItem struct{ Class, Label string }

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// pct is frac of a 0..100 viewBox.
func pct(frac float64) string { return f1(min(1, max(0, frac)) * 100) }

// rotationClass colours a countdown: amber within the hour, blue after.
func rotationClass(r RotationRow) string {
	if r.Overdue || r.Soon {
		return "warn"
	}
	return "next"
}
