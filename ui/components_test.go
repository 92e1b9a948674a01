package ui

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"

	"github.com/flowd/flowd/blocks/jose"
)

func render(t *testing.T, c templ.Component) *goquery.Document {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<script>") || strings.Contains(buf.String(), " style=") {
		t.Error("inline script or style in the page")
	}
	d, err := goquery.NewDocumentFromReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func tid(id string) string { return `[data-testid="` + id + `"]` }

func TestFlowsPage(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	d := render(t, FlowsPage(FlowsView{CSRF: "tok", Flows: []FlowRow{
		{ID: "a", Name: "A", Status: "deployed", Deployed: 2, LastRun: &RunCell{ID: "r1", Status: "ok", Started: at}},
		{ID: "b", Status: "invalid", Problem: "node x: bad"},
		{ID: "c", Status: "changed", Deployed: 1},
	}}))
	tests := []struct {
		id, status, lastRun string
		deploy              int
	}{
		{"a", "deployed", "ok2026-11-22 10:00:00 UTC", 0},
		{"b", "invalid", "never", 0},
		{"c", "changed", "never", 1},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			row := d.Find(tid("flow-row") + `[data-flow="` + tt.id + `"]`)
			if got := row.Find(tid("flow-status")).Text(); got != tt.status {
				t.Errorf("status %q", got)
			}
			if got := strings.Join(strings.Fields(row.Find(tid("flow-last-run")).Text()), ""); got != strings.ReplaceAll(tt.lastRun, " ", "") {
				t.Errorf("last run %q", got)
			}
			if got := row.Find(tid("flow-deploy")).Length(); got != tt.deploy {
				t.Errorf("deploy buttons %d", got)
			}
			if href, _ := row.Find(tid("flow-edit")).Attr("href"); href != "/admin/flows/"+tt.id+"/edit" {
				t.Errorf("edit href %q", href)
			}
			if v, _ := row.Find(`form[action="/admin/flows/` + tt.id + `/delete"] input[name=csrf]`).Attr("value"); v != "tok" {
				t.Errorf("delete form csrf %q", v)
			}
		})
	}
}

func TestLoginPageWithoutPassword(t *testing.T) {
	d := render(t, LoginPage(LoginView{}))
	if d.Find(tid("no-password")).Length() != 1 || d.Find(tid("login-form")).Length() != 0 {
		t.Error("want the how-to-set-a-password text and no form")
	}
	d = render(t, LoginPage(LoginView{PasswordSet: true, Error: "Wrong password."}))
	if d.Find(tid("login-error")).Text() != "Wrong password." || d.Find(tid("login-form")).Length() != 1 {
		t.Error("want the form and the error")
	}
}

func TestKeyTimeline(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	keys := []jose.KeyInfo{
		{Kid: "old", Alg: "ES256", State: jose.StateRetired, Created: now.Add(-3 * day), Activated: now.Add(-2 * day), RetireAt: now.Add(day)},
		{Kid: "cur", Alg: "ES256", State: jose.StateActive, Created: now.Add(-2 * day), Activated: now.Add(-day)},
		{Kid: "nxt", Alg: "ES256", State: jose.StateNext, Created: now.Add(-day)},
		{Kid: "bad", Alg: "ES256", State: jose.StateRetired, Revoked: true, Created: now.Add(-day)},
	}
	next := now.Add(15 * time.Hour)
	tl := keyTimeline(keys, now, next)
	want := map[string][]Segment{
		"ES256 old": {{State: "next", From: now.Add(-3 * day), To: now.Add(-2 * day)}, {State: "active", From: now.Add(-2 * day), To: now.Add(-day)}, {State: "retired", From: now.Add(-day), To: now.Add(day)}},
		"ES256 cur": {{State: "next", From: now.Add(-2 * day), To: now.Add(-day)}, {State: "active", From: now.Add(-day), To: next}},
		"ES256 nxt": {{State: "next", From: now.Add(-day), To: next}},
		"ES256 bad": {{State: "revoked", From: now.Add(-day), To: now}},
	}
	if len(tl.Rows) != 4 {
		t.Fatalf("rows %d", len(tl.Rows))
	}
	for _, row := range tl.Rows {
		w := want[row.Label]
		if len(w) != len(row.Segments) {
			t.Errorf("%s: %d segments, want %d", row.Label, len(row.Segments), len(w))
			continue
		}
		for i, s := range row.Segments {
			if s.State != w[i].State || !s.From.Equal(w[i].From) || !s.To.Equal(w[i].To) {
				t.Errorf("%s[%d] = %s %v..%v, want %s %v..%v", row.Label, i, s.State, s.From, s.To, w[i].State, w[i].From, w[i].To)
			}
		}
	}
	if !tl.Start.Before(now.Add(-3*day)) || !tl.End.After(now.Add(day)) {
		t.Errorf("range %v..%v", tl.Start, tl.End)
	}
	d := render(t, TimelineSVG(tl, "tl"))
	if d.Find(tid("now-line")).Length() != 1 || d.Find(tid("seg-retired")).Length() != 1 || d.Find(tid("seg-active")).Length() != 2 {
		t.Error("SVG does not show the segments")
	}
}

func pol(shortest, ttl, maxAge time.Duration) rotationPolicy {
	return rotationPolicy{RolloverPolicy: jose.RolloverPolicy{ShortestRetire: shortest, TokenTTL: ttl, JWKSMaxAge: maxAge}}
}

func TestRotationWarning(t *testing.T) {
	tests := []struct {
		name string
		p    rotationPolicy
		warn bool
	}{
		{"no rotation", rotationPolicy{}, false},
		{"enough", pol(48*time.Hour, time.Hour, 15*time.Minute), false},
		{"exactly enough", pol(75*time.Minute, time.Hour, 15*time.Minute), false},
		{"token ttl too long", pol(2*time.Hour, 2*time.Hour, time.Minute), true},
		{"jwks cached too long", pol(2*time.Hour, time.Hour, 90*time.Minute), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := len(tt.p.warnings()) > 0; got != tt.warn {
				t.Errorf("warning = %v", got)
			}
		})
	}
	d := render(t, KeysetsPage(KeysetsView{Keysets: []KeysetView{{Name: "main", Warnings: []string{"too short"}}}}))
	if d.Find(tid("keyset-warning")).Text() != "too short" {
		t.Error("warning not shown")
	}
}

func TestDiffFlows(t *testing.T) {
	old := []byte(`{"schema":"flowd/v1","id":"f","name":"F","nodes":[{"id":"a","type":"core.manual","x":0,"y":0},{"id":"b","type":"core.log","config":{"message":"\"x\""},"x":0,"y":0},{"id":"c","type":"core.log","x":0,"y":0}],"wires":[{"from":"a","port":"out","to":"b"}]}`)
	draft := []byte(`{"schema":"flowd/v1","id":"f","name":"F","nodes":[{"id":"a","type":"core.manual","x":50,"y":0},{"id":"b","type":"core.log","config":{"message":"\"y\""},"x":0,"y":0},{"id":"d","type":"core.log","x":0,"y":0}],"wires":[{"from":"a","port":"out","to":"d"}]}`)
	added, removed, changed, wa, wr := diffFlows(old, draft)
	got := strings.Join([]string{strings.Join(added, ","), strings.Join(removed, ","), strings.Join(changed, ","), strings.Join(wa, ","), strings.Join(wr, ",")}, "|")
	if want := "d|c|b|a.out → d|a.out → b"; got != want {
		t.Errorf("diff %q, want %q", got, want)
	}
}

func TestTokenTimeline(t *testing.T) {
	now := time.Unix(1_800_000_000, 0).UTC()
	tl := tokenTimeline(map[string]any{"iat": float64(now.Unix() - 7200), "exp": float64(now.Unix() - 3600)}, now)
	if tl == nil || len(tl.Rows[0].Marks) != 2 || tl.Rows[0].Segments[0].State != "expired" {
		t.Fatalf("timeline %+v", tl)
	}
	if tokenTimeline(map[string]any{"sub": "x"}, now) != nil {
		t.Error("no time claims: want no timeline")
	}
}
