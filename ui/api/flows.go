package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
)

func (h *Handler) listFlows(w http.ResponseWriter, r *http.Request) error {
	flows, err := h.app.ListFlows(r.Context())
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, map[string]any{"flows": flows})
	return nil
}

// createFlow stores a new flow from the document in the body (its id
// names it); ?deploy=true deploys it too.
func (h *Handler) createFlow(w http.ResponseWriter, r *http.Request) error {
	body, err := ReadBody(w, r, engine.MaxFlowBytes)
	if err != nil {
		return err
	}
	f, err := engine.DecodeFlow(body)
	if err != nil {
		return err
	}
	rec, err := h.app.PutFlow(r.Context(), f.ID, body, store.MustCreate)
	if err != nil {
		return existsErr(err, f.ID)
	}
	if r.URL.Query().Get("deploy") == "true" {
		if _, err := h.app.Deploy(r.Context(), f.ID); err != nil {
			return err
		}
	}
	info, err := h.app.Info(r.Context(), rec.ID)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(info.Rev))
	w.Header().Set("Location", Prefix+"/flows/"+rec.ID)
	WriteJSON(w, http.StatusCreated, info)
	return nil
}

// existsErr says what a failed create's conflict means: the flow is there.
func existsErr(err error, id string) error {
	if errors.Is(err, store.ErrConflict) {
		return Wrapf(err, "a flow %q exists already: choose another id, or save over it with If-Match", id)
	}
	return err
}

// getFlow returns the canonical export of the draft, byte for byte what
// `flowd export` prints, with the revision as ETag.
func (h *Handler) getFlow(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	doc, rev, err := h.app.Export(r.Context(), id)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(rev))
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Query().Get("download") == "1" {
		w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.flow.json"`)
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == etag(rev) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(doc)
	return err
}

// readConditional reads a flow write: the If-Match condition and the
// document in the body.
func (h *Handler) readConditional(w http.ResponseWriter, r *http.Request) (id string, cond int64, body []byte, err error) {
	id = r.PathValue("id")
	if cond, err = h.ifMatch(r, id); err != nil {
		return id, 0, nil, err
	}
	body, err = ReadBody(w, r, engine.MaxFlowBytes)
	return id, cond, body, err
}

func (h *Handler) putFlow(w http.ResponseWriter, r *http.Request) error {
	id, cond, body, err := h.readConditional(w, r)
	if err != nil {
		return err
	}
	rec, err := h.app.PutFlow(r.Context(), id, body, cond)
	if err != nil && cond == store.MustCreate {
		return existsErr(err, id)
	}
	if err != nil {
		return err
	}
	info, err := h.app.Info(r.Context(), rec.ID)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(rec.Rev))
	status := http.StatusOK
	if rec.Rev == 1 {
		status = http.StatusCreated
	}
	WriteJSON(w, status, info)
	return nil
}

func (h *Handler) deleteFlow(w http.ResponseWriter, r *http.Request) error {
	cond, err := h.ifMatch(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := h.app.DeleteFlow(r.Context(), r.PathValue("id"), cond); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) flowInfo(w http.ResponseWriter, r *http.Request) error {
	info, err := h.app.Info(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(info.Rev))
	WriteJSON(w, http.StatusOK, info)
	return nil
}

// deploy deploys the flow's draft. With a flow document in the body it
// first saves that as the draft, under If-Match as PUT does, so an editor
// saves and deploys in one step; the new revision is the ETag also when the
// deploy then fails (a 422 for a draft that saved but does not validate).
// It answers once every live node runs the new version, or after ?wait= (a
// Go duration, default 2s, at most 30s; 0 answers at once) with each
// node's state: applied, failed (with its reason) or behind.
func (h *Handler) deploy(w http.ResponseWriter, r *http.Request) error {
	wait, err := deployWait(r)
	if err != nil {
		return err
	}
	id, cond, body, err := h.readConditional(w, r)
	if err != nil {
		return err
	}
	var rev int64
	if len(bytes.TrimSpace(body)) > 0 {
		rec, err := h.app.PutFlow(r.Context(), id, body, cond)
		if err != nil {
			return err
		}
		rev = rec.Rev
		w.Header().Set("ETag", etag(rev))
	} else if cond > 0 {
		// Deploying the stored draft, on the condition it is this revision.
		info, err := h.app.Info(r.Context(), id)
		if err != nil {
			return err
		}
		if info.Rev != cond {
			return fmt.Errorf("flow %q is at revision %d, not %d: %w", id, info.Rev, cond, store.ErrConflict)
		}
	}
	ro, err := h.app.DeployWait(r.Context(), id, wait)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, struct {
		app.Rollout
		Rev int64 `json:"rev,omitempty"` // the draft's new revision, when the body held one
	}{ro, rev})
	return nil
}

// flowState is the draft and the deployed document in one answer (what an
// editor opens), the ETag the draft's revision.
func (h *Handler) flowState(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	doc, rev, err := h.app.Export(r.Context(), id)
	if err != nil {
		return err
	}
	info, err := h.app.Info(r.Context(), id)
	if err != nil {
		return err
	}
	st := struct {
		Rev             int64           `json:"rev"`
		Draft           json.RawMessage `json:"draft"`
		Deployed        json.RawMessage `json:"deployed"`
		DeployedVersion int             `json:"deployed_version"`
	}{Rev: rev, Draft: doc, Deployed: json.RawMessage("null")}
	if info.Deployed > 0 {
		v, err := h.app.Version(r.Context(), id, info.Deployed)
		if err != nil {
			return err
		}
		st.Deployed, st.DeployedVersion = v.Doc, v.N
	}
	w.Header().Set("ETag", etag(rev))
	WriteJSON(w, http.StatusOK, st)
	return nil
}

// deployWait reads a deploy's ?wait= parameter.
func deployWait(r *http.Request) (time.Duration, error) {
	q := r.URL.Query().Get("wait")
	if q == "" {
		return app.DefaultDeployWait, nil
	}
	d, err := time.ParseDuration(q)
	if err != nil || d < 0 || d > app.MaxDeployWait {
		return 0, Errorf(http.StatusBadRequest, "invalid_request", "wait must be a duration from 0s to %s (like 2s or 500ms), not %q", app.MaxDeployWait, q)
	}
	return d, nil
}

func (h *Handler) undeploy(w http.ResponseWriter, r *http.Request) error {
	if err := h.app.Undeploy(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, map[string]any{"flow": r.PathValue("id"), "deployed": false})
	return nil
}

// run runs a deployed flow once. The answer is the run's trace; a run that
// failed is still a 200 (the request worked) with status "error" in it.
func (h *Handler) run(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Node  string         `json:"node"`
		Input map[string]any `json:"input"`
	}
	if err := DecodeJSON(w, r, &req); err != nil {
		return err
	}
	tr, err := h.app.Run(r.Context(), r.PathValue("id"), req.Node, req.Input)
	if tr == nil && err != nil {
		return err
	}
	return writeTrace(w, tr)
}

// runs lists recent traces as the engine records them: a light one
// ("light": true, past the flow's snapshot rate) has no "msg" on its
// steps except the one that failed. On a cluster the list merges every
// live node's runs (each node keeps its own), each run naming its
// "node"; "nodes" says which nodes answered, and why one did not.
//
// ?view=summary answers the runs as a person reads them instead
// (runs_view.go).
func (h *Handler) runs(w http.ResponseWriter, r *http.Request) error {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	switch v := r.URL.Query().Get("view"); v {
	case "":
	case "summary":
		return h.runsSummary(w, r, limit)
	default:
		return BadRequest("view must be summary or left out, not %q", truncate(v, 40))
	}
	view, err := h.app.ClusterRuns(r.Context(), r.PathValue("id"), limit)
	if err != nil {
		return err
	}
	enc := make([]json.RawMessage, 0, len(view.Runs))
	for _, nt := range view.Runs {
		data, err := nodeTrace(nt)
		if err != nil {
			return err
		}
		enc = append(enc, data)
	}
	out := map[string]any{"runs": enc, "nodes": view.Nodes}
	if view.Note != "" {
		out["note"] = view.Note
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// nodeTrace is a trace's versioned encoding (engine.EncodeTrace) with the
// node that ran it as one more member, "node", which DecodeTrace ignores.
func nodeTrace(nt app.NodeTrace) (json.RawMessage, error) {
	data, err := engine.EncodeTrace(nt.Trace)
	if err != nil {
		return nil, err
	}
	node, err := json.Marshal(nt.Node)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(data)+len(node)+9)
	out = append(out, `{"node":`...)
	out = append(out, node...)
	out = append(out, ',')
	return append(out, data[1:]...), nil
}

// writeTrace answers with one trace in its versioned encoding
// (engine.EncodeTrace), the form the CLI decodes.
func writeTrace(w http.ResponseWriter, t *engine.Trace) error {
	data, err := engine.EncodeTrace(t)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, json.RawMessage(data))
	return nil
}

func (h *Handler) getRun(w http.ResponseWriter, r *http.Request) error {
	nt, err := h.findRun(r)
	if err != nil {
		return err
	}
	data, err := nodeTrace(nt)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, data)
	return nil
}

// findRun finds the run {run} of flow {id} on whichever live node has it.
// Not found, the error says whether the flow is missing or the run, and
// which nodes could not be asked.
func (h *Handler) findRun(r *http.Request) (app.NodeTrace, error) {
	nt, nodes, err := h.app.ClusterRun(r.Context(), r.PathValue("id"), r.PathValue("run"))
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return nt, err
	}
	if _, ferr := h.app.Info(r.Context(), r.PathValue("id")); ferr != nil {
		return nt, ferr
	}
	msg := fmt.Sprintf("no run %q in the flow's recent runs", r.PathValue("run"))
	for _, n := range nodes {
		if !n.OK {
			msg += fmt.Sprintf("; node %s was not asked: %s", n.Node, n.Error)
		}
	}
	return nt, Errorf(http.StatusNotFound, "not_found", "%s", msg)
}

type versionView struct {
	N       int    `json:"version"`
	Created string `json:"created"`
	Note    string `json:"note"`
	Nodes   int    `json:"nodes"`
	Wires   int    `json:"wires"`
}

func (h *Handler) versions(w http.ResponseWriter, r *http.Request) error {
	vs, err := h.app.Versions(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	out := make([]versionView, 0, len(vs))
	for _, v := range vs {
		vv := versionView{N: v.N, Created: v.Created.UTC().Format("2006-01-02T15:04:05Z"), Note: v.Note}
		if f, err := engine.DecodeFlow(v.Doc); err == nil {
			vv.Nodes, vv.Wires = len(f.Nodes), len(f.Wires)
		}
		out = append(out, vv)
	}
	WriteJSON(w, http.StatusOK, map[string]any{"versions": out})
	return nil
}

func versionParam(r *http.Request) (int, error) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 {
		return 0, Errorf(http.StatusBadRequest, "bad_request", "version must be a positive number")
	}
	return n, nil
}

func (h *Handler) getVersion(w http.ResponseWriter, r *http.Request) error {
	n, err := versionParam(r)
	if err != nil {
		return err
	}
	v, err := h.app.Version(r.Context(), r.PathValue("id"), n)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(v.Doc)
	return err
}

func (h *Handler) restore(w http.ResponseWriter, r *http.Request) error {
	n, err := versionParam(r)
	if err != nil {
		return err
	}
	wait, err := deployWait(r)
	if err != nil {
		return err
	}
	rec, ro, err := h.app.Restore(r.Context(), r.PathValue("id"), n, wait)
	if err != nil {
		return err
	}
	out := map[string]any{"flow": rec.ID, "restored": n, "rev": rec.Rev, "deployed_version": rec.Deployed}
	if ro != nil {
		// Where the redeployed version runs, as a deploy answers it.
		out["new_version"], out["nodes"], out["applied"], out["complete"] = ro.Version, ro.Nodes, ro.Applied, ro.Complete
		if ro.Note != "" {
			out["note"] = ro.Note
		}
	}
	w.Header().Set("ETag", etag(rec.Rev))
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// validate checks a document as a deploy would: 200 with the lint warnings
// when it is valid, else 422 with every problem (node, field) and the
// warnings found so far. Lint warnings never block: they are checked with
// the deployed flows (this document in place of its deployed version),
// reported on this one, also while the document has errors.
func (h *Handler) validate(w http.ResponseWriter, r *http.Request) error {
	body, err := ReadBody(w, r, engine.MaxFlowBytes)
	if err != nil {
		return err
	}
	f, verr := h.app.Validate(r.Context(), body)
	warnings := []engine.Warning{}
	if f != nil {
		if ws := h.app.Lint(r.Context(), f); ws != nil {
			warnings = ws
		}
	}
	if verr != nil {
		a := Classify(verr)
		if a.Code != "invalid_flow" {
			return verr
		}
		d := detail(a.Code, a.Message, verr)
		WriteJSON(w, a.Status, map[string]any{"error": d, "warnings": warnings})
		return nil
	}
	WriteJSON(w, http.StatusOK, map[string]any{"valid": true, "id": f.ID, "nodes": len(f.Nodes), "warnings": warnings})
	return nil
}

// blockSpec is a spec as a palette needs it: the spec's JSON, and whether
// the node's config adds output ports (DynamicOutputs, a function).
type blockSpec struct {
	engine.Spec
	Dynamic bool `json:"dynamic,omitempty"`
}

func (h *Handler) blocks(w http.ResponseWriter, r *http.Request) error {
	specs := h.app.Registry().Specs()
	out := make([]blockSpec, len(specs))
	for i, s := range specs {
		out[i] = blockSpec{Spec: s, Dynamic: s.DynamicOutputs != nil}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"blocks": out})
	return nil
}

func (h *Handler) schema(w http.ResponseWriter, r *http.Request) error {
	s, err := h.app.Registry().JSONSchema()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/schema+json")
	_, err = w.Write(s)
	return err
}
