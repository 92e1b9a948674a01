package editor

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/engine"
)

// problem is one validation error as the scripts see it.
type problem struct {
	Node    string `json:"node,omitempty"`
	Field   string `json:"field,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
}

func problems(err error) []problem {
	out := []problem{}
	var list engine.ValidationErrors
	var one *engine.ValidationError
	switch {
	case errors.As(err, &list):
		for _, e := range list {
			out = append(out, problem{e.Node, e.Field, e.Line, e.Column, e.Msg})
		}
	case errors.As(err, &one):
		out = append(out, problem{one.Node, one.Field, one.Line, one.Column, one.Msg})
	case err != nil:
		out = append(out, problem{Message: err.Error()})
	}
	return out
}

func errBody(code, msg string, verr error) map[string]any {
	b := map[string]any{"code": code, "message": msg}
	if verr != nil {
		b["problems"] = problems(verr)
	}
	return map[string]any{"error": b}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	return io.ReadAll(r.Body)
}

func etag(rev int64) string { return `"` + strconv.FormatInt(rev, 10) + `"` }

// ifMatch reads the revision the client loaded; the editor always sends one.
func ifMatch(r *http.Request) (int64, bool) {
	v := strings.Trim(strings.TrimPrefix(strings.TrimSpace(r.Header.Get("If-Match")), "W/"), `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil && n > 0
}

// blockSpec is a spec as the palette needs it.
type blockSpec struct {
	engine.Spec
	Dynamic bool `json:"dynamic,omitempty"` // ports also come from the config's rules
}

func (h *Handler) blocks(w http.ResponseWriter, r *http.Request) {
	specs := h.opts.Registry.Specs()
	out := make([]blockSpec, len(specs))
	for i, s := range specs {
		out[i] = blockSpec{Spec: s, Dynamic: s.DynamicOutputs != nil}
	}
	writeJSON(w, http.StatusOK, map[string]any{"blocks": out})
}

type flowState struct {
	Rev             int64           `json:"rev"`
	Draft           json.RawMessage `json:"draft"`
	Deployed        json.RawMessage `json:"deployed"`
	DeployedVersion int             `json:"deployed_version"`
}

func (h *Handler) state(r *http.Request, id string) (flowState, error) {
	doc, rev, err := h.app.Export(r.Context(), id)
	if err != nil {
		return flowState{}, err
	}
	st := flowState{Rev: rev, Draft: doc, Deployed: json.RawMessage("null")}
	info, err := h.app.Info(r.Context(), id)
	if err != nil {
		return flowState{}, err
	}
	if info.Deployed > 0 {
		v, err := h.app.Version(r.Context(), id, info.Deployed)
		if err != nil {
			return flowState{}, err
		}
		st.Deployed, st.DeployedVersion = v.Doc, v.N
	}
	return st, nil
}

func (h *Handler) getFlow(w http.ResponseWriter, r *http.Request) {
	st, err := h.state(r, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(st.Rev))
	writeJSON(w, http.StatusOK, st)
}

// put saves the body as the draft if the client's revision is current.
func (h *Handler) put(w http.ResponseWriter, r *http.Request) (int64, error) {
	rev, ok := ifMatch(r)
	if !ok {
		return 0, errNoIfMatch
	}
	body, err := readBody(w, r, engine.MaxFlowBytes)
	if err != nil {
		return 0, err
	}
	rec, err := h.app.PutFlow(r.Context(), r.PathValue("id"), body, rev)
	if err != nil {
		return 0, err
	}
	return rec.Rev, nil
}

var errNoIfMatch = errors.New("If-Match with the revision you loaded is required")

func (h *Handler) saveFlow(w http.ResponseWriter, r *http.Request) {
	rev, err := h.put(w, r)
	if errors.Is(err, errNoIfMatch) {
		writeJSON(w, http.StatusPreconditionRequired, errBody("if_match_required", err.Error(), nil))
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(rev))
	writeJSON(w, http.StatusOK, map[string]any{"rev": rev})
}

// deployFlow saves then deploys. A draft that saves but does not validate
// answers 422 with the new revision, so the tab stays in step.
func (h *Handler) deployFlow(w http.ResponseWriter, r *http.Request) {
	rev, err := h.put(w, r)
	if errors.Is(err, errNoIfMatch) {
		writeJSON(w, http.StatusPreconditionRequired, errBody("if_match_required", err.Error(), nil))
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(rev))
	// On a cluster the answer waits (app.DefaultDeployWait at most) for
	// every node and says which run the version.
	ro, err := h.app.DeployWait(r.Context(), r.PathValue("id"), app.DefaultDeployWait)
	if err != nil {
		if errors.Is(err, engine.ErrInvalidFlow) {
			b := errBody("invalid_flow", err.Error(), err)
			b["rev"] = rev
			writeJSON(w, http.StatusUnprocessableEntity, b)
			return
		}
		h.fail(w, r, err)
		return
	}
	v, err := h.app.Version(r.Context(), ro.Flow, ro.Version)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"rev": rev, "version": v.N, "deployed": json.RawMessage(v.Doc),
		"nodes": ro.Nodes, "applied": ro.Applied, "complete": ro.Complete, "note": ro.Note})
}

func (h *Handler) validate(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, engine.MaxFlowBytes)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f, err := h.app.Validate(r.Context(), body)
	// Lint warnings never block a deploy; they are checked as the admin
	// API's validate does (with the deployed flows, this document in
	// place of its own), also while the document has errors.
	warnings := []engine.Warning{}
	if f != nil {
		if ws := h.opts.Runtime.LintFlows(r.Context(), f); ws != nil {
			warnings = ws
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"valid": err == nil, "problems": problems(err), "warnings": warnings})
}
