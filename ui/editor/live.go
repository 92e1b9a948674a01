package editor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/ui/api"
)

// maxPreview caps a step's message as the debug panel lists it; the full
// (already redacted) value is fetched on demand.
const maxPreview = 400

// stepView is one step as the debug panel lists it. Captured is false when
// the trace holds no message for the step: every step of a light run but
// the failing one (engine.Trace.Light), and a step whose message was over
// the size limit. Preview is then empty, not "null": no message was seen.
type stepView struct {
	Node      string `json:"node"`
	Type      string `json:"type"`
	Port      string `json:"port,omitempty"`
	Duration  int64  `json:"duration_ns"`
	Error     string `json:"error,omitempty"`
	Captured  bool   `json:"captured"`
	Preview   string `json:"preview"`
	Truncated bool   `json:"truncated,omitempty"`
}

type runView struct {
	ID string `json:"id"`
	// Node is the cluster node that ran it.
	Node    string `json:"node,omitempty"`
	Trigger string `json:"trigger"`
	// TriggerName and TriggerType describe the trigger node in the version
	// that ran ("GET /api/hello", "http.in").
	TriggerName string `json:"trigger_name,omitempty"`
	TriggerType string `json:"trigger_type,omitempty"`
	// HTTPStatus is the status the run answered with (the http.respond
	// step that sent it), 0 if it sent none.
	HTTPStatus int `json:"http_status,omitempty"`

	Version   int       `json:"version"`
	Started   time.Time `json:"started"`
	Duration  int64     `json:"duration_ns"`
	Status    string    `json:"status"`
	Error     string    `json:"error,omitempty"`
	ErrorNode string    `json:"error_node,omitempty"`
	// Light: the run was past the flow's snapshot rate, so only its
	// failing step (if any) has a message.
	Light bool `json:"light"`
	// TraceID and SpanID name the run's OpenTelemetry trace and span
	// when runs are traced (flowd.Options.TracerProvider) and it was
	// sampled; the run span carries the run id back (flowd.run.id).
	TraceID string     `json:"trace_id,omitempty"`
	SpanID  string     `json:"span_id,omitempty"`
	Steps   []stepView `json:"steps"`
}

func viewRun(t *engine.Trace) runView {
	rv := runView{ID: t.ID, Trigger: t.Trigger, Version: t.Version, Started: t.Started, Duration: t.Duration,
		Status: t.Status, Error: t.Error, ErrorNode: t.ErrorNode, Light: t.Light,
		TraceID: t.TraceID, SpanID: t.SpanID, Steps: make([]stepView, len(t.Steps))}
	for i, s := range t.Steps {
		sv := stepView{Node: s.Node, Type: s.Type, Port: s.Port, Duration: s.Duration, Error: s.Error}
		// A snapshot is never nil (an empty message is {}), so nil means
		// the engine took none.
		if s.Msg != nil {
			b, _ := json.Marshal(s.Msg)
			sv.Captured, sv.Preview = true, string(b)
			if len(sv.Preview) > maxPreview {
				cut := maxPreview
				for cut > 0 && !utf8.RuneStart(sv.Preview[cut]) {
					cut--
				}
				sv.Preview, sv.Truncated = sv.Preview[:cut]+"…", true
			}
		}
		rv.Steps[i] = sv
	}
	return rv
}

// runs lists the flow's recent runs of every live node (each keeps its
// own); "nodes" names the nodes that could not be asked, and why.
func (h *Handler) runs(w http.ResponseWriter, r *http.Request) {
	view, err := h.app.ClusterRuns(r.Context(), r.PathValue("id"), 20)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]runView, len(view.Runs))
	for i, nt := range view.Runs {
		out[i] = viewRun(nt.Trace)
		out[i].Node = nt.Node
	}
	h.describeRuns(r.Context(), r.PathValue("id"), out)
	api.WriteJSON(w, http.StatusOK, map[string]any{"runs": out, "nodes": view.Nodes, "note": view.Note})
}

// describeRuns adds the trigger's name and the HTTP status to each run,
// from the flow version that ran (read once per version).
func (h *Handler) describeRuns(ctx context.Context, id string, runs []runView) {
	docs := map[int]*engine.Flow{}
	for i := range runs {
		rv := &runs[i]
		f, seen := docs[rv.Version]
		if !seen {
			if v, err := h.app.Version(ctx, id, rv.Version); err == nil {
				f, _ = engine.DecodeFlow(v.Doc)
			}
			docs[rv.Version] = f
		}
		if f == nil {
			continue
		}
		if n := f.Node(rv.Trigger); n != nil {
			rv.TriggerName, rv.TriggerType = n.Name, n.Type
		}
		for _, st := range rv.Steps {
			if st.Type != "http.respond" || st.Error != "" {
				continue
			}
			rv.HTTPStatus = respondStatus(h.opts.Registry, f.Node(st.Node))
		}
	}
}

// respondStatus is the status an http.respond node answers with: its
// status field, or the field's default.
func respondStatus(reg *engine.Registry, n *engine.Node) int {
	if n == nil {
		return 0
	}
	var st int
	if raw, ok := n.Config["status"]; ok && json.Unmarshal(raw, &st) == nil {
		return st
	}
	if spec, ok := reg.Spec(n.Type); ok {
		for _, f := range spec.Fields {
			if f.Name == "status" {
				switch d := f.Default.(type) {
				case int:
					return d
				case float64:
					return int(d)
				}
			}
		}
	}
	return 0
}

// step answers one step's full message. A step whose message the trace
// does not hold (see stepView) is still found: captured is false and msg
// null, as the runs list says; 404 is for a run or step that is not there.
func (h *Handler) step(w http.ResponseWriter, r *http.Request) {
	nt, _, err := h.app.ClusterRun(r.Context(), r.PathValue("id"), r.PathValue("run"))
	if err != nil && !errors.Is(err, app.ErrNotFound) {
		h.fail(w, r, err)
		return
	}
	i, ierr := strconv.Atoi(r.PathValue("i"))
	if err == nil && ierr == nil && i >= 0 && i < len(nt.Trace.Steps) {
		s := nt.Trace.Steps[i]
		api.WriteJSON(w, http.StatusOK, map[string]any{"node": s.Node, "captured": s.Msg != nil, "msg": s.Msg})
		return
	}
	h.fail(w, r, api.Errorf(http.StatusNotFound, "not_found", "no such run or step (runs are kept in a bounded ring)"))
}

// nodeStatus is a node's outcome in the latest run that reached it.
type nodeStatus struct {
	Port  string `json:"port,omitempty"`
	Error string `json:"error,omitempty"`
	Run   string `json:"run"`
}

type runEvent struct {
	Run    string                `json:"run"`
	Status string                `json:"status"`
	Nodes  map[string]nodeStatus `json:"nodes"`
}

// events streams one "run" event per new run of a flow. It polls the
// runtime's in-memory trace ring, which is a cheap copy under a mutex.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("flow")
	if _, err := h.app.Info(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	// Runs before the stream starts are history (the runs endpoint has
	// them); snapshot them before the client can see the stream is open.
	seen := map[string]bool{}
	for _, t := range h.app.Traces(id) {
		seen[t.ID] = true
	}
	// A server-wide WriteTimeout would cut the stream; lift it for this
	// response (EventSource reconnects anyway if it is cut).
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n: connected\n\n")
	fl.Flush()

	tick := time.NewTicker(h.opts.PollInterval)
	defer tick.Stop()
	// A stream ends after a while (EventSource reconnects and the page
	// reloads its runs list), so a server's graceful shutdown, which does
	// not cancel requests, never waits long on an open editor tab.
	end := time.NewTimer(h.opts.MaxStream)
	defer end.Stop()
	idle := 0
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case <-end.C:
			return
		case <-tick.C:
		}
		traces := h.app.Traces(id) // newest first
		var fresh []*engine.Trace
		for _, t := range traces {
			if !seen[t.ID] {
				fresh = append(fresh, t)
			}
		}
		if len(fresh) == 0 {
			if idle++; idle*int(h.opts.PollInterval/time.Millisecond) >= 15000 {
				idle = 0
				fmt.Fprint(w, ": keep-alive\n\n")
				fl.Flush()
			}
			continue
		}
		seen = make(map[string]bool, len(traces))
		for _, t := range traces {
			seen[t.ID] = true
		}
		for i := len(fresh) - 1; i >= 0; i-- { // oldest first
			t := fresh[i]
			ev := runEvent{Run: t.ID, Status: t.Status, Nodes: map[string]nodeStatus{}}
			for _, s := range t.Steps {
				ev.Nodes[s.Node] = nodeStatus{Port: s.Port, Error: s.Error, Run: t.ID}
			}
			b, _ := json.Marshal(ev)
			fmt.Fprintf(w, "event: run\nid: %s\ndata: %s\n\n", t.ID, b)
		}
		fl.Flush()
	}
}
