package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/flowd/flowd/blocks/schedule"
)

// Next-time counts the schedule endpoints accept (?n=).
const (
	defaultNext = 5
	maxNextAPI  = 50
)

// RegisterSchedules adds the schedule endpoints:
//
//	GET  /schedules?n=5                      every deployed schedule with its next n times
//	GET  /schedules/preview?spec=&tz=&n=5    next times of a spec as typed, or 400 bad_spec naming the field
//	POST /schedules/{flow}/{node}/pause      pause (persisted); answers the schedule
//	POST /schedules/{flow}/{node}/resume     resume; answers the schedule
//	POST /schedules/{flow}/{node}/run        run now, even if paused; answers the trace
func RegisterSchedules(h *Handler, s *schedule.Scheduler) {
	sh := &scheduleHandlers{s: s}
	h.Handle("GET /schedules", sh.list)
	h.Handle("GET /schedules/preview", sh.preview)
	h.Handle("POST /schedules/{flow}/{node}/pause", sh.pause)
	h.Handle("POST /schedules/{flow}/{node}/resume", sh.resume)
	h.Handle("POST /schedules/{flow}/{node}/run", sh.run)
}

type scheduleHandlers struct{ s *schedule.Scheduler }

func (sh *scheduleHandlers) list(w http.ResponseWriter, r *http.Request) error {
	n, err := nextParam(r)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, map[string]any{"schedules": sh.s.List(n)})
	return nil
}

// previewTime is one activation: the instant in UTC and the wall clock of
// the schedule's zone, which is what the person typing the spec thinks in.
type previewTime struct {
	UTC   string `json:"utc"`
	Local string `json:"local"`
}

func (sh *scheduleHandlers) preview(w http.ResponseWriter, r *http.Request) error {
	n, err := nextParam(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	spec, tz := q.Get("spec"), q.Get("tz")
	times, err := sh.s.Preview(spec, tz, n)
	var se *schedule.SpecError
	if errors.As(err, &se) {
		WriteJSON(w, http.StatusBadRequest, errBody{Error: errDetail{Code: "bad_spec", Message: se.Msg, Field: se.Field}})
		return nil
	}
	if err != nil {
		return err
	}
	out := make([]previewTime, 0, len(times))
	zone := "UTC"
	for _, t := range times {
		out = append(out, previewTime{UTC: t.UTC().Format(time.RFC3339), Local: t.Format(time.RFC3339)})
		zone = t.Location().String()
	}
	WriteJSON(w, http.StatusOK, map[string]any{"spec": spec, "timezone": zone, "next": out})
	return nil
}

func (sh *scheduleHandlers) pause(w http.ResponseWriter, r *http.Request) error {
	return sh.setPaused(w, r, true)
}

func (sh *scheduleHandlers) resume(w http.ResponseWriter, r *http.Request) error {
	return sh.setPaused(w, r, false)
}

func (sh *scheduleHandlers) setPaused(w http.ResponseWriter, r *http.Request, paused bool) error {
	flow, node := r.PathValue("flow"), r.PathValue("node")
	change := sh.s.Resume
	if paused {
		change = sh.s.Pause
	}
	if err := change(r.Context(), flow, node); err != nil {
		return scheduleErr(err, flow, node)
	}
	info, err := sh.s.Get(flow, node, defaultNext)
	if err != nil {
		return scheduleErr(err, flow, node) // undeployed in the meantime
	}
	WriteJSON(w, http.StatusOK, info)
	return nil
}

// run answers the run's trace; a run that failed is still a 200 with
// status "error" in it, as for POST /flows/{id}/run.
func (sh *scheduleHandlers) run(w http.ResponseWriter, r *http.Request) error {
	flow, node := r.PathValue("flow"), r.PathValue("node")
	tr, err := sh.s.RunNow(r.Context(), flow, node)
	if tr == nil && err != nil {
		return scheduleErr(err, flow, node)
	}
	WriteJSON(w, http.StatusOK, tr)
	return nil
}

// scheduleErr maps the scheduler's own sentinel; the rest goes to fail.
func scheduleErr(err error, flow, node string) error {
	if errors.Is(err, schedule.ErrNotFound) {
		return Wrapf(err, "no deployed schedule %q in flow %q", node, flow)
	}
	return err
}

func nextParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("n")
	if v == "" {
		return defaultNext, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxNextAPI {
		return 0, Errorf(http.StatusBadRequest, "bad_request", "n must be a whole number from 0 to %d", maxNextAPI)
	}
	return n, nil
}
