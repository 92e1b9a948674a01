package ui

import (
	"errors"
	"net/http"
	"time"

	"github.com/flowd/flowd/blocks/schedule"
	"github.com/flowd/flowd/ui/api"
)

const (
	scheduleNext = 5
	previewNext  = 5
)

func (s *Server) schedulesPage(w http.ResponseWriter, r *http.Request) {
	s.schedulesWith(w, r, http.StatusOK, flashFrom(r))
}

func (s *Server) schedulesWith(w http.ResponseWriter, r *http.Request, status int, fl *Flash) {
	if s.d.Scheduler == nil {
		http.NotFound(w, r)
		return
	}
	v := SchedulesView{CSRF: CSRFToken(r), Flash: fl}
	for _, in := range s.d.Scheduler.List(scheduleNext) {
		row := ScheduleRow{Flow: in.Flow, Node: in.Node, Spec: in.Spec, Timezone: in.Timezone, Paused: in.Paused,
			CatchUp: in.CatchUp, Next: in.Next}
		if lr := in.LastRun; lr != nil {
			row.LastRun = lr.Status + " " + lr.At.UTC().Format("2006-01-02 15:04:05") + " UTC"
			if lr.Error != "" {
				row.LastRun += ": " + lr.Error
			}
		}
		v.Schedules = append(v.Schedules, row)
	}
	q := r.URL.Query()
	v.Preview = s.preview(q.Get("spec"), q.Get("tz"))
	s.render(w, r, status, SchedulesPage(v))
}

func (s *Server) preview(spec, tz string) PreviewView {
	p := PreviewView{Spec: spec, Timezone: tz}
	if spec == "" {
		return p
	}
	times, err := s.d.Scheduler.Preview(spec, tz, previewNext)
	var se *schedule.SpecError
	switch {
	case errors.As(err, &se):
		p.Error = se.Field + ": " + se.Msg
	case err != nil:
		p.Error = err.Error()
	default:
		p.Next = times
	}
	return p
}

// previewJSON is what schedules.js fetches as the spec is typed.
type previewJSON struct {
	Error string       `json:"error,omitempty"`
	Next  []previewRun `json:"next"`
}

type previewRun struct {
	UTC   string `json:"utc"`   // RFC 3339
	Label string `json:"label"` // as the page prints UTC
	// Zoned is the time in the spec's own zone ("" for UTC).
	Zoned string `json:"zoned,omitempty"`
}

func (s *Server) schedulePreview(w http.ResponseWriter, r *http.Request) {
	if s.d.Scheduler == nil {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	p := s.preview(q.Get("spec"), q.Get("tz"))
	out := previewJSON{Error: p.Error, Next: []previewRun{}}
	for _, t := range p.Next {
		out.Next = append(out.Next, previewRun{UTC: t.UTC().Format(time.RFC3339), Label: t.UTC().Format("Mon 2006-01-02 15:04") + " UTC",
			Zoned: zoned(t, p.Timezone)})
	}
	status := http.StatusOK
	if p.Error != "" {
		status = http.StatusBadRequest
	}
	writeJSON(w, status, out)
}

func (s *Server) scheduleAction(w http.ResponseWriter, r *http.Request) {
	flow, node, action := r.PathValue("flow"), r.PathValue("node"), r.PathValue("action")
	ctx := r.Context()
	var err error
	var done string
	switch action {
	case "pause":
		err, done = s.d.Scheduler.Pause(ctx, flow, node), "paused"
	case "resume":
		err, done = s.d.Scheduler.Resume(ctx, flow, node), "resumed"
	case "run":
		_, err = s.d.Scheduler.RunNow(ctx, flow, node)
		done = "ran"
	default:
		http.NotFound(w, r)
		return
	}
	if errors.Is(err, schedule.ErrNotFound) {
		s.schedulesWith(w, r, http.StatusNotFound, &Flash{Kind: "error", Text: "No deployed schedule " + flow + "/" + node + "."})
		return
	}
	if err != nil {
		if action == "run" && api.Classify(err).Internal {
			// The run itself failed (a block's error): that is the run's
			// outcome, said on the page, not a fault of this request.
			s.schedulesWith(w, r, http.StatusConflict, &Flash{Kind: "error", Text: err.Error()})
			return
		}
		if status, fl, ok := s.pageError(w, r, err); ok {
			s.schedulesWith(w, r, status, fl)
		}
		return
	}
	redirectDone(w, r, "/admin/schedules", done, flow+"/"+node)
}

// zoned writes t in the time zone tz ("Mon 2006-01-02 05:00 Europe/Berlin"),
// or "" when tz is empty, UTC or not a zone.
func zoned(t time.Time, tz string) string {
	if tz == "" || tz == "UTC" || tz == "Local" {
		return ""
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return ""
	}
	return t.In(loc).Format("Mon 2006-01-02 15:04") + " " + tz
}
