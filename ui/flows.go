package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/ui/api"
)

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	var buf bytes.Buffer
	if err := c.Render(r.Context(), &buf); err != nil {
		s.serverError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// serverError answers an error no page handled. One the admin error table
// knows (a store that cannot be reached: 503 with Retry-After; a flow that
// is gone: 404) gets its status and message as plain text; anything else is
// a 500 whose cause is logged under an id and never shown.
func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	if a := api.Classify(err); !a.Internal {
		if a.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(a.RetryAfter, 10))
		}
		http.Error(w, pageText(a), a.Status)
		return
	}
	id := randomToken()[:12]
	s.log.Error("admin UI error", "id", id, "method", r.Method, "path", r.URL.Path, "err", err)
	http.Error(w, "internal error; the server log has details under id "+id, http.StatusInternalServerError)
}

// lookupError answers the error of looking up what a page shows: a plain
// 404 when it is not there, else as serverError does.
func (s *Server) lookupError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	s.serverError(w, r, err)
}

// done messages after a redirect (POST, redirect, GET): codes, never text
// from the request, so a crafted link cannot put words on the page.
var doneText = map[string]string{
	"deleted":  "Deleted %s.",
	"deployed": "Deployed %s.",
	"imported": "Imported %s.",
	"restored": "Restored %s.",
	"rotated":  "Rotated keyset %s.",
	"revoked":  "Revoked key %s.",
	"paused":   "Paused %s.",
	"resumed":  "Resumed %s.",
	"ran":      "Ran %s.",
	"added":    "Added %s.",
	"saved":    "Saved %s.",
}

func flashFrom(r *http.Request) *Flash {
	q := r.URL.Query()
	if f, ok := doneText[q.Get("done")]; ok {
		return &Flash{Kind: "ok", Text: fmt.Sprintf(f, q.Get("id"))}
	}
	return nil
}

func redirectDone(w http.ResponseWriter, r *http.Request, path, code, id string) {
	http.Redirect(w, r, path+"?done="+code+"&id="+url.QueryEscape(id), http.StatusSeeOther)
}

// FlowIDPattern is the HTML pattern attribute of a flow id field: the
// rule of engine.ValidID (which the API and the JSON Schema use too),
// written so that Chrome's v-flag pattern parser accepts it (a hyphen in
// a class must be escaped there).
const FlowIDPattern = `[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}`

// FlowIDRule says the rule in words, for errors and titles.
const FlowIDRule = "a flow id is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"

func (s *Server) flowsView(r *http.Request, fl *Flash) (FlowsView, error) {
	list, err := s.d.App.ListFlows(r.Context())
	if err != nil {
		return FlowsView{}, err
	}
	v := FlowsView{CSRF: CSRFToken(r), Flash: fl}
	for _, f := range list {
		row := FlowRow{ID: f.ID, Name: f.Name, Status: f.Status, Problem: f.Problem, Deployed: f.Deployed,
			Latest: f.Latest, Nodes: f.Nodes, Triggers: f.Triggers, Updated: f.Updated}
		if f.LastRun != nil {
			row.LastRun = &RunCell{ID: f.LastRun.ID, Status: f.LastRun.Status, Started: f.LastRun.Started}
		}
		v.Flows = append(v.Flows, row)
	}
	return v, nil
}

func (s *Server) flowsPage(w http.ResponseWriter, r *http.Request) {
	s.flowsWith(w, r, http.StatusOK, flashFrom(r))
}

func (s *Server) flowsWith(w http.ResponseWriter, r *http.Request, status int, fl *Flash) {
	v, err := s.flowsView(r, fl)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.render(w, r, status, FlowsPage(v))
}

// flowError shows the flows page again with what went wrong, at the status
// the error table gives the error.
func (s *Server) flowError(w http.ResponseWriter, r *http.Request, err error) {
	status, fl, ok := s.pageError(w, r, err)
	if !ok {
		return
	}
	s.flowsWith(w, r, status, fl)
}

// newFlow creates an empty flow and opens it in the editor.
func (s *Server) newFlow(w http.ResponseWriter, r *http.Request) {
	id, name := r.PostFormValue("id"), r.PostFormValue("name")
	if !engine.ValidID(id) {
		s.flowsWith(w, r, http.StatusBadRequest, &Flash{Kind: "error", Text: fmt.Sprintf("Flow id %q: %s.", truncate(id, 80), FlowIDRule)})
		return
	}
	if name == "" {
		name = id
	}
	doc, err := engine.EncodeFlow(&engine.Flow{Schema: engine.SchemaV1, ID: id, Name: name, Nodes: []engine.Node{}, Wires: []engine.Wire{}})
	if err == nil {
		_, err = s.d.App.PutFlow(r.Context(), id, doc, store.MustCreate)
	}
	if errors.Is(err, store.ErrConflict) {
		err = api.Wrapf(err, "A flow %q exists already: choose another id.", id)
	}
	if err != nil {
		s.flowError(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/flows/"+id+"/edit", http.StatusSeeOther)
}

// importFlow stores an uploaded or pasted document under its own id
// (creating or replacing), or under "as" for a copy.
func (s *Server) importFlow(w http.ResponseWriter, r *http.Request) {
	doc := []byte(r.PostFormValue("doc"))
	if f, _, err := r.FormFile("file"); err == nil {
		b, rerr := io.ReadAll(io.LimitReader(f, engine.MaxFlowBytes+1))
		f.Close()
		if rerr != nil {
			s.flowError(w, r, rerr)
			return
		}
		if len(bytes.TrimSpace(b)) > 0 {
			doc = b
		}
	}
	if len(bytes.TrimSpace(doc)) == 0 {
		s.flowsWith(w, r, http.StatusBadRequest, &Flash{Kind: "error", Text: "Choose a file or paste a flow document."})
		return
	}
	if len(doc) > engine.MaxFlowBytes {
		s.flowsWith(w, r, http.StatusRequestEntityTooLarge, &Flash{Kind: "error", Text: "The document is too large."})
		return
	}
	if as := r.PostFormValue("as"); as != "" {
		if !engine.ValidID(as) {
			s.flowsWith(w, r, http.StatusBadRequest, &Flash{Kind: "error", Text: fmt.Sprintf("Flow id %q: %s.", truncate(as, 80), FlowIDRule)})
			return
		}
		f, err := engine.DecodeFlow(doc)
		if err != nil {
			s.flowError(w, r, err)
			return
		}
		f.ID = as
		if doc, err = engine.EncodeFlow(f); err != nil {
			s.flowError(w, r, err)
			return
		}
	}
	wait := time.Duration(-1) // store the draft only
	if r.PostFormValue("deploy") == "true" {
		wait = app.DefaultDeployWait
	}
	info, ro, err := s.d.App.ImportWait(r.Context(), doc, wait)
	if err != nil {
		s.flowError(w, r, err)
		return
	}
	s.deployed(w, r, "imported", info.ID, ro)
}

// exportFlow answers the canonical document, byte for byte GET
// /admin/api/flows/{id}, as a download.
func (s *Server) exportFlow(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	doc, rev, err := s.d.App.Export(r.Context(), id)
	if err != nil {
		s.lookupError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", `"`+strconv.FormatInt(rev, 10)+`"`)
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.flow.json"`)
	_, _ = w.Write(doc)
}

func (s *Server) deleteFlow(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.d.App.DeleteFlow(r.Context(), id, store.AnyRev); err != nil {
		s.flowError(w, r, err)
		return
	}
	redirectDone(w, r, "/admin/flows", "deleted", id)
}

func (s *Server) deployFlow(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ro, err := s.d.App.DeployWait(r.Context(), id, app.DefaultDeployWait)
	if err != nil {
		s.flowError(w, r, err)
		return
	}
	s.deployed(w, r, "deployed", id, &ro)
}

// deployed ends a change that deployed flow id (ro: where it runs, nil
// when nothing was deployed). When every live node runs the version, it
// redirects with done=code as before; otherwise it shows the flows page
// at once with what each node that does not run it said, since a
// redirect carries codes only (flashFrom).
func (s *Server) deployed(w http.ResponseWriter, r *http.Request, code, id string, ro *app.Rollout) {
	if fl := rolloutFlash(code, id, ro); fl != nil {
		s.flowsWith(w, r, http.StatusOK, fl)
		return
	}
	redirectDone(w, r, "/admin/flows", code, id)
}

// rolloutFlash says where a deploy runs when that is not every live node
// (the editor says the same in its status line), nil when it is.
func rolloutFlash(code, id string, ro *app.Rollout) *Flash {
	if ro == nil || ro.Complete {
		return nil
	}
	done := fmt.Sprintf(doneText[code], id)
	done = strings.TrimSuffix(done, ".")
	if ro.Note != "" {
		return &Flash{Kind: "warn", Text: fmt.Sprintf("%s: version %d runs on this node; %s.", done, ro.Version, ro.Note)}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: version %d runs on %d of %d nodes.", done, ro.Version, ro.Applied, len(ro.Nodes))
	for _, n := range ro.Nodes {
		switch n.State {
		case app.NodeFailed:
			fmt.Fprintf(&b, " Node %s cannot run it: %s.", n.Node, strings.TrimSuffix(n.Error, "."))
		case app.NodeBehind:
			fmt.Fprintf(&b, " Node %s has not applied it yet", n.Node)
			if n.Error != "" {
				fmt.Fprintf(&b, " (its last error: %s)", strings.TrimSuffix(n.Error, "."))
			}
			b.WriteString(".")
		}
	}
	return &Flash{Kind: "warn", Text: b.String()}
}

func (s *Server) versionsPage(w http.ResponseWriter, r *http.Request) {
	s.versionsWith(w, r, http.StatusOK, flashFrom(r))
}

func (s *Server) versionsWith(w http.ResponseWriter, r *http.Request, status int, fl *Flash) {
	ctx := r.Context()
	id := r.PathValue("id")
	info, err := s.d.App.Info(ctx, id)
	if err != nil {
		s.lookupError(w, r, err)
		return
	}
	vs, err := s.d.App.Versions(ctx, id)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	draft, _, err := s.d.App.Export(ctx, id)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	v := VersionsView{CSRF: CSRFToken(r), FlowID: id, Name: info.Name, Flash: fl}
	for _, ver := range vs {
		row := VersionRow{N: ver.N, Created: ver.Created, Note: ver.Note, Deployed: ver.N == info.Deployed,
			SameAsDraft: bytes.Equal(ver.Doc, draft)}
		if !row.SameAsDraft {
			row.NodesAdded, row.NodesRemoved, row.NodesChanged, row.WiresAdded, row.WiresRemoved = diffFlows(ver.Doc, draft)
		}
		v.Versions = append(v.Versions, row)
	}
	s.render(w, r, status, VersionsPage(v))
}

// diffFlows summarises what the draft has compared with an old version:
// nodes by id (changed: type, name or config differ; moving one on the
// canvas is not a change), wires by from.port->to.
func diffFlows(oldDoc, draftDoc []byte) (added, removed, changed, wAdded, wRemoved []string) {
	of, err1 := engine.DecodeFlow(oldDoc)
	df, err2 := engine.DecodeFlow(draftDoc)
	if err1 != nil || err2 != nil {
		return nil, nil, nil, nil, nil
	}
	oldNodes := map[string]engine.Node{}
	for _, n := range of.Nodes {
		oldNodes[n.ID] = n
	}
	seen := map[string]bool{}
	for _, n := range df.Nodes {
		seen[n.ID] = true
		o, ok := oldNodes[n.ID]
		switch {
		case !ok:
			added = append(added, n.ID)
		case o.Type != n.Type || o.Name != n.Name || !sameConfig(o.Config, n.Config):
			changed = append(changed, n.ID)
		}
	}
	for _, n := range of.Nodes {
		if !seen[n.ID] {
			removed = append(removed, n.ID)
		}
	}
	wire := func(w engine.Wire) string { return w.From + "." + w.Port + " → " + w.To }
	ow, dw := map[string]bool{}, map[string]bool{}
	for _, w := range of.Wires {
		ow[wire(w)] = true
	}
	for _, w := range df.Wires {
		dw[wire(w)] = true
		if !ow[wire(w)] {
			wAdded = append(wAdded, wire(w))
		}
	}
	for _, w := range of.Wires {
		if !dw[wire(w)] {
			wRemoved = append(wRemoved, wire(w))
		}
	}
	slices.Sort(wAdded)
	slices.Sort(wRemoved)
	return
}

func sameConfig(a, b map[string]json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func (s *Server) restoreVersion(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 {
		http.NotFound(w, r)
		return
	}
	_, ro, err := s.d.App.Restore(r.Context(), id, n, app.DefaultDeployWait)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			http.NotFound(w, r)
			return
		}
		if status, fl, ok := s.pageError(w, r, err); ok {
			s.versionsWith(w, r, status, fl)
		}
		return
	}
	if fl := rolloutFlash("restored", id+" v"+strconv.Itoa(n), ro); fl != nil {
		s.versionsWith(w, r, http.StatusOK, fl)
		return
	}
	redirectDone(w, r, "/admin/flows/"+id+"/versions", "restored", id+" v"+strconv.Itoa(n))
}
