package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/blocks/schedule"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/store/storetest"
	"github.com/flowd/flowd/ui/api"
)

const scheduleToken = "test-token"

var scheduleNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// Two deployed flows: "rollover" ticks at 03:00 in Paris into a block that
// succeeds, "broken" ticks daily into a block that fails.
const (
	rolloverDoc = `{"schema": "flowd/v1", "id": "rollover", "name": "Rollover", "nodes": [
		{"id": "tick", "type": "schedule.cron", "config": {"spec": "0 3 * * *", "timezone": "Europe/Paris"}, "x": 0, "y": 0},
		{"id": "ok", "type": "test.ok", "x": 200, "y": 0}],
		"wires": [{"from": "tick", "port": "out", "to": "ok"}]}`
	brokenDoc = `{"schema": "flowd/v1", "id": "broken", "name": "Broken", "nodes": [
		{"id": "tick", "type": "schedule.cron", "config": {"spec": "@daily"}, "x": 0, "y": 0},
		{"id": "fail", "type": "test.fail", "x": 200, "y": 0}],
		"wires": [{"from": "tick", "port": "out", "to": "fail"}]}`
)

func newScheduleAPI(t *testing.T) http.Handler {
	t.Helper()
	st := storetest.TempBolt(t)
	now := func() time.Time { return scheduleNow }
	s := schedule.NewScheduler(schedule.Options{State: st, Now: now})
	reg := enginetest.Registry(t, schedule.Register)
	svc := engine.NewServices()
	if err := schedule.Provide(svc, s); err != nil {
		t.Fatal(err)
	}
	blocks := map[string]engine.BlockFunc{
		"test.ok": func(context.Context, *engine.Exec, engine.Msg) (string, error) { return "", nil },
		"test.fail": func(context.Context, *engine.Exec, engine.Msg) (string, error) {
			return "", errors.New("no keys today")
		},
	}
	for typ, fn := range blocks {
		reg.MustRegister(engine.Spec{Type: typ, Title: typ, Category: "test"},
			func(*engine.Setup) (engine.Block, error) { return fn, nil })
	}
	a, err := app.New(app.Config{Store: st, Registry: reg, Now: now, Services: svc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Error(err)
		}
		if err := a.Close(ctx); err != nil {
			t.Error(err)
		}
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	for _, doc := range []string{rolloverDoc, brokenDoc} {
		if _, err := a.Import(t.Context(), []byte(doc), true); err != nil {
			t.Fatalf("import: %v", err)
		}
	}
	h := api.New(a, tokenIs(scheduleToken), nil)
	api.RegisterSchedules(h, s)
	return h
}

// scheduleView is the JSON of a schedule.Info, as a client reads it.
type scheduleView struct {
	Flow     string   `json:"flow"`
	Node     string   `json:"node"`
	Version  int      `json:"version"`
	Spec     string   `json:"spec"`
	Timezone string   `json:"timezone"`
	CatchUp  bool     `json:"catch_up"`
	Paused   bool     `json:"paused"`
	Next     []string `json:"next"`
	LastRun  *struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Manual bool   `json:"manual"`
	} `json:"last_run"`
}

type scheduleErrView struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

func TestScheduleEndpoints(t *testing.T) {
	h := newScheduleAPI(t)
	rollover := func(paused bool, next ...string) scheduleView {
		return scheduleView{Flow: "rollover", Node: "tick", Version: 1, Spec: "0 3 * * *", Timezone: "Europe/Paris",
			Paused: paused, Next: next}
	}
	broken := func(next ...string) scheduleView {
		return scheduleView{Flow: "broken", Node: "tick", Version: 1, Spec: "@daily", Timezone: "UTC", Next: next}
	}
	// The steps run in order: a pause is seen by the list after it.
	steps := []struct {
		name, method, path string
		noAuth             bool
		wantStatus         int
		wantCode           string // error code, for error answers
		wantField          string // error field, for bad_spec
		wantMsg            string // error message, exactly
		check              func(t *testing.T, body []byte)
	}{
		{name: "no token", method: "GET", path: "/schedules", noAuth: true, wantStatus: 401, wantCode: "unauthorized",
			wantMsg: "a valid admin token is required"},
		{name: "list", method: "GET", path: "/schedules?n=2", wantStatus: 200, check: func(t *testing.T, body []byte) {
			wantSchedules(t, body, broken("2026-03-11T00:00:00Z", "2026-03-12T00:00:00Z"),
				rollover(false, "2026-03-11T02:00:00Z", "2026-03-12T02:00:00Z"))
		}},
		{name: "list, default count", method: "GET", path: "/schedules", wantStatus: 200, check: func(t *testing.T, body []byte) {
			var got struct{ Schedules []scheduleView }
			decodeBody(t, body, &got)
			if len(got.Schedules) != 2 || len(got.Schedules[0].Next) != 5 || len(got.Schedules[1].Next) != 5 {
				t.Errorf("schedules = %+v, want 2 with 5 next times each", got.Schedules)
			}
		}},
		{name: "list, bad count", method: "GET", path: "/schedules?n=many", wantStatus: 400, wantCode: "bad_request",
			wantMsg: "n must be a whole number from 0 to 50"},
		{name: "list, count too big", method: "GET", path: "/schedules?n=51", wantStatus: 400, wantCode: "bad_request",
			wantMsg: "n must be a whole number from 0 to 50"},
		{name: "pause", method: "POST", path: "/schedules/rollover/tick/pause", wantStatus: 200,
			check: func(t *testing.T, body []byte) {
				var got scheduleView
				decodeBody(t, body, &got)
				if !got.Paused || len(got.Next) != 5 || got.Flow != "rollover" {
					t.Errorf("answer = %+v, want the paused schedule with its next times", got)
				}
			}},
		{name: "list shows the pause", method: "GET", path: "/schedules?n=1", wantStatus: 200, check: func(t *testing.T, body []byte) {
			wantSchedules(t, body, broken("2026-03-11T00:00:00Z"), rollover(true, "2026-03-11T02:00:00Z"))
		}},
		{name: "manual run of a paused schedule", method: "POST", path: "/schedules/rollover/tick/run", wantStatus: 200,
			check: func(t *testing.T, body []byte) {
				var tr engine.Trace
				decodeBody(t, body, &tr)
				if tr.Status != engine.StatusOK || tr.Flow != "rollover" || tr.Trigger != "tick" || len(tr.Steps) != 2 {
					t.Errorf("trace = %+v, want a good run of rollover from tick", tr)
				}
				sched, _ := tr.Steps[0].Msg.(map[string]any)["schedule"].(map[string]any)
				if sched["manual"] != true || sched["fired_at"] != "2026-03-10T12:00:00Z" {
					t.Errorf("run message schedule = %v, want a manual run", sched)
				}
			}},
		{name: "resume", method: "POST", path: "/schedules/rollover/tick/resume", wantStatus: 200,
			check: func(t *testing.T, body []byte) {
				var got scheduleView
				decodeBody(t, body, &got)
				if got.Paused || got.LastRun == nil || !got.LastRun.Manual || got.LastRun.Status != "ok" {
					t.Errorf("answer = %+v (last run %+v), want resumed, with the manual run", got, got.LastRun)
				}
			}},
		{name: "a failing run is still a 200", method: "POST", path: "/schedules/broken/tick/run", wantStatus: 200,
			check: func(t *testing.T, body []byte) {
				var tr engine.Trace
				decodeBody(t, body, &tr)
				if tr.Status != engine.StatusError || tr.ErrorNode != "fail" || tr.ID == "" {
					t.Errorf("trace = %+v, want a failed run at node fail", tr)
				}
			}},
		{name: "pause an unknown node", method: "POST", path: "/schedules/rollover/nope/pause", wantStatus: 404,
			wantCode: "no_schedule", wantMsg: `no deployed schedule "nope" in flow "rollover"`},
		{name: "resume an unknown flow", method: "POST", path: "/schedules/nope/tick/resume", wantStatus: 404,
			wantCode: "no_schedule", wantMsg: `no deployed schedule "tick" in flow "nope"`},
		{name: "run an unknown flow", method: "POST", path: "/schedules/nope/tick/run", wantStatus: 404,
			wantCode: "no_schedule", wantMsg: `no deployed schedule "tick" in flow "nope"`},
		{name: "preview", method: "GET", path: "/schedules/preview?spec=0+3+*+*+*&tz=Europe/Paris&n=2", wantStatus: 200,
			check: func(t *testing.T, body []byte) {
				var got map[string]any
				decodeBody(t, body, &got)
				want := map[string]any{"spec": "0 3 * * *", "timezone": "Europe/Paris", "next": []any{
					map[string]any{"utc": "2026-03-11T02:00:00Z", "local": "2026-03-11T03:00:00+01:00"},
					map[string]any{"utc": "2026-03-12T02:00:00Z", "local": "2026-03-12T03:00:00+01:00"},
				}}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("preview = %v\nwant %v", got, want)
				}
			}},
		{name: "preview, default zone", method: "GET", path: "/schedules/preview?spec=%40hourly&n=1", wantStatus: 200,
			check: func(t *testing.T, body []byte) {
				var got map[string]any
				decodeBody(t, body, &got)
				want := map[string]any{"spec": "@hourly", "timezone": "UTC", "next": []any{
					map[string]any{"utc": "2026-03-10T13:00:00Z", "local": "2026-03-10T13:00:00Z"}}}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("preview = %v\nwant %v", got, want)
				}
			}},
		{name: "preview, bad minute", method: "GET", path: "/schedules/preview?spec=61+*+*+*+*", wantStatus: 400,
			wantCode: "bad_spec", wantField: "spec", wantMsg: `minute field "61": end of range (61) above maximum (59)`},
		{name: "preview, half typed", method: "GET", path: "/schedules/preview?spec=0+3", wantStatus: 400,
			wantCode: "bad_spec", wantField: "spec",
			wantMsg: `has 2 fields; want 5 (minute hour day-of-month month day-of-week), 6 with seconds first, or a descriptor such as "@daily"`},
		{name: "preview, empty", method: "GET", path: "/schedules/preview", wantStatus: 400,
			wantCode: "bad_spec", wantField: "spec",
			wantMsg: `is empty; write a cron spec such as "0 3 * * *" or a descriptor such as "@daily"`},
		{name: "preview, unknown zone", method: "GET", path: "/schedules/preview?spec=%40daily&tz=Mars/Olympus", wantStatus: 400,
			wantCode: "bad_spec", wantField: "timezone",
			wantMsg: `unknown time zone "Mars/Olympus"; use an IANA name such as "Europe/Paris"`},
		{name: "preview, path as zone", method: "GET", path: "/schedules/preview?spec=%40daily&tz=../../etc/passwd", wantStatus: 400,
			wantCode: "bad_spec", wantField: "timezone",
			wantMsg: `"../../etc/passwd" is not a time zone name; use an IANA name such as "Europe/Paris"`},
		{name: "preview, bad count", method: "GET", path: "/schedules/preview?spec=%40daily&n=-1", wantStatus: 400,
			wantCode: "bad_request", wantMsg: "n must be a whole number from 0 to 50"},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			req := httptest.NewRequestWithContext(t.Context(), step.method, api.Prefix+step.path, nil)
			if !step.noAuth {
				req.Header.Set("Authorization", "Bearer "+scheduleToken)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != step.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, step.wantStatus, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if step.wantCode != "" {
				var got scheduleErrView
				decodeBody(t, rec.Body.Bytes(), &got)
				if got.Error.Code != step.wantCode || got.Error.Field != step.wantField || got.Error.Message != step.wantMsg {
					t.Errorf("error = %+v\nwant code %q field %q message %q", got.Error, step.wantCode, step.wantField, step.wantMsg)
				}
			}
			if step.check != nil {
				step.check(t, rec.Body.Bytes())
			}
		})
	}
}

func wantSchedules(t *testing.T, body []byte, want ...scheduleView) {
	t.Helper()
	var got struct{ Schedules []scheduleView }
	decodeBody(t, body, &got)
	for i := range got.Schedules {
		got.Schedules[i].LastRun = nil // checked where runs happen
	}
	if !reflect.DeepEqual(got.Schedules, want) {
		t.Errorf("schedules = %+v\nwant %+v", got.Schedules, want)
	}
}

func decodeBody(t *testing.T, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}
