package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/engine"
)

// The runs as a person reads them (the editor's debug panel): GET
// /flows/{id}/runs?view=summary lists them with each step's message cut
// to a preview and the trigger and HTTP status spelled out, GET
// /flows/{id}/runs/{run}/steps/{i} fetches one step's full message, and
// GET /flows/{id}/events (events.go) says when a new run lands.

// maxPreview caps a step's message in the summary; the full (already
// redacted) value is one steps/{i} call away.
const maxPreview = 400

// summaryRuns is how many runs the summary lists without ?limit=.
const summaryRuns = 20

// stepSummary is one step as the summary lists it. Captured is false when
// the trace holds no message for the step: every step of a light run but
// the failing one (engine.Trace.Light), and a step whose message was over
// the size limit. Preview is then empty, not "null": no message was seen.
type stepSummary struct {
	Node      string `json:"node"`
	Type      string `json:"type"`
	Port      string `json:"port,omitempty"`
	Duration  int64  `json:"duration_ns"`
	Error     string `json:"error,omitempty"`
	Captured  bool   `json:"captured"`
	Preview   string `json:"preview"`
	Truncated bool   `json:"truncated,omitempty"`
}

type runSummary struct {
	ID string `json:"id"`
	// Node is the cluster node that ran it.
	Node    string `json:"node,omitempty"`
	Trigger string `json:"trigger"`
	// TriggerName and TriggerType describe the trigger node in the version
	// that ran ("GET /api/hello", "http.in").
	TriggerName string `json:"trigger_name,omitempty"`
	TriggerType string `json:"trigger_type,omitempty"`
	// HTTPStatus is the status the run answered with (its trace's
	// answer: the http.respond that sent it, in this flow or in a
	// sub-flow it called), 0 if it sent none.
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
	TraceID string        `json:"trace_id,omitempty"`
	SpanID  string        `json:"span_id,omitempty"`
	Steps   []stepSummary `json:"steps"`
}

func summarize(nt app.NodeTrace) runSummary {
	t := nt.Trace
	rs := runSummary{ID: t.ID, Node: nt.Node, Trigger: t.Trigger, Version: t.Version, Started: t.Started,
		Duration: t.Duration, Status: t.Status, Error: t.Error, ErrorNode: t.ErrorNode, Light: t.Light,
		TraceID: t.TraceID, SpanID: t.SpanID, HTTPStatus: int(t.Answer), Steps: make([]stepSummary, len(t.Steps))}
	for i, s := range t.Steps {
		ss := stepSummary{Node: s.Node, Type: s.Type, Port: s.Port, Duration: s.Duration, Error: s.Error}
		// A snapshot is never nil (an empty message is {}), so nil means
		// the engine took none.
		if s.Msg != nil {
			b, _ := json.Marshal(s.Msg)
			ss.Captured, ss.Preview = true, string(b)
			if len(ss.Preview) > maxPreview {
				cut := maxPreview
				for cut > 0 && !utf8.RuneStart(ss.Preview[cut]) {
					cut--
				}
				ss.Preview, ss.Truncated = ss.Preview[:cut]+"…", true
			}
		}
		rs.Steps[i] = ss
	}
	return rs
}

// runsSummary answers ?view=summary: the runs of every live node, as
// runs does, in the summary's shape.
func (h *Handler) runsSummary(w http.ResponseWriter, r *http.Request, limit int) error {
	if limit <= 0 {
		limit = summaryRuns
	}
	id := r.PathValue("id")
	view, err := h.app.ClusterRuns(r.Context(), id, limit)
	if err != nil {
		return err
	}
	out := make([]runSummary, len(view.Runs))
	for i, nt := range view.Runs {
		out[i] = summarize(nt)
	}
	h.describeRuns(r.Context(), id, out)
	WriteJSON(w, http.StatusOK, map[string]any{"runs": out, "nodes": view.Nodes, "note": view.Note})
	return nil
}

// describeRuns adds the trigger's name to each run, from the flow version
// that ran (read once per version), and for a run recorded before traces
// carried their answer, the status of its http.respond step.
func (h *Handler) describeRuns(ctx context.Context, id string, runs []runSummary) {
	docs := map[int]*engine.Flow{}
	for i := range runs {
		rs := &runs[i]
		f, seen := docs[rs.Version]
		if !seen {
			if v, err := h.app.Version(ctx, id, rs.Version); err == nil {
				f, _ = engine.DecodeFlow(v.Doc)
			}
			docs[rs.Version] = f
		}
		if f == nil {
			continue
		}
		if n := f.Node(rs.Trigger); n != nil {
			rs.TriggerName, rs.TriggerType = n.Name, n.Type
		}
		for _, st := range rs.Steps {
			if rs.HTTPStatus != 0 {
				break
			}
			if st.Type != "http.respond" || st.Error != "" {
				continue
			}
			rs.HTTPStatus = respondStatus(h.app.Registry(), f.Node(st.Node))
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

// getStep answers one step's full message. A step whose message the trace
// does not hold (see stepSummary) is still found: captured is false and
// msg null, as the summary says; 404 is for a flow, run or step that is
// not there.
func (h *Handler) getStep(w http.ResponseWriter, r *http.Request) error {
	nt, err := h.findRun(r)
	if err != nil {
		return err
	}
	i, err := strconv.Atoi(r.PathValue("i"))
	if err != nil || i < 0 || i >= len(nt.Trace.Steps) {
		return Errorf(http.StatusNotFound, "not_found", "run %q has no step %q (it has %d)", nt.Trace.ID, r.PathValue("i"), len(nt.Trace.Steps))
	}
	s := nt.Trace.Steps[i]
	WriteJSON(w, http.StatusOK, map[string]any{"node": s.Node, "captured": s.Msg != nil, "msg": s.Msg})
	return nil
}
