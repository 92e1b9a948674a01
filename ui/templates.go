package ui

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/ui/api"
)

// Starters are small flows to begin from (the protected endpoint). Unlike
// the prebuilt flows (Deps.Examples) they are never installed by
// themselves: they exist only as templates.
//
//go:embed starters/*.json
var startersFS embed.FS

// templateSource is where a template comes from: "starter" or "example".
const (
	srcStarter = "starter"
	srcExample = "example"
)

// template reads one template: a starter or a prebuilt flow, by file name
// without .json.
func (s *Server) template(name string) (*engine.Flow, string, error) {
	if name == "" || strings.ContainsAny(name, "/\\.") {
		return nil, "", fs.ErrNotExist
	}
	if doc, err := fs.ReadFile(startersFS, "starters/"+name+".json"); err == nil {
		f, err := engine.DecodeFlow(doc)
		return f, srcStarter, err
	}
	if s.d.Examples == nil {
		return nil, "", fs.ErrNotExist
	}
	doc, err := fs.ReadFile(s.d.Examples, name+".json")
	if err != nil {
		return nil, "", err
	}
	f, err := engine.DecodeFlow(doc)
	return f, srcExample, err
}

func templateNames(fsys fs.FS, dir string) []string {
	files, _ := fs.Glob(fsys, path.Join(dir, "*.json"))
	out := make([]string, 0, len(files))
	for _, f := range files {
		out = append(out, strings.TrimSuffix(path.Base(f), ".json"))
	}
	slices.Sort(out)
	return out
}

// httpPaths lists the distinct paths of a flow's http.in nodes, in node
// order: the routes the "use template" form lets a person change.
func httpPaths(f *engine.Flow) []string {
	var out []string
	for _, n := range f.Nodes {
		if n.Type != "http.in" {
			continue
		}
		var p string
		if raw, ok := n.Config["path"]; ok && jsonString(raw, &p) && p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// rotatedKeysets lists the keysets a flow's jose.rotate nodes roll over
// on a schedule (a flow with a schedule.cron trigger).
func rotatedKeysets(f *engine.Flow) []string {
	scheduled := slices.ContainsFunc(f.Nodes, func(n engine.Node) bool { return n.Type == "schedule.cron" })
	if !scheduled {
		return nil
	}
	var out []string
	for _, n := range f.Nodes {
		if n.Type != "jose.rotate" {
			continue
		}
		var mode, ks string
		if raw, ok := n.Config["mode"]; ok {
			jsonString(raw, &mode)
		}
		if mode == "ensure" {
			continue
		}
		if raw, ok := n.Config["keyset"]; ok && jsonString(raw, &ks) && !slices.Contains(out, ks) {
			out = append(out, ks)
		}
	}
	return out
}

// rotationWarning says which stored flows already rotate the keysets f
// rotates on a schedule ("" if none).
func (s *Server) rotationWarning(r *http.Request, f *engine.Flow) string {
	mine := rotatedKeysets(f)
	if len(mine) == 0 {
		return ""
	}
	list, err := s.d.App.ListFlows(r.Context())
	if err != nil {
		return ""
	}
	var clash []string
	for _, info := range list {
		doc, _, err := s.d.App.Export(r.Context(), info.ID)
		if err != nil {
			continue
		}
		other, err := engine.DecodeFlow(doc)
		if err != nil {
			continue
		}
		for _, ks := range rotatedKeysets(other) {
			if slices.Contains(mine, ks) {
				clash = append(clash, fmt.Sprintf("%s (keyset %s)", info.ID, ks))
			}
		}
	}
	if len(clash) == 0 {
		return ""
	}
	return "Already rotated on a schedule by " + strings.Join(clash, ", ") +
		": a second schedule rotates the same keyset twice as often, and retires keys sooner. Create it anyway?"
}

func (s *Server) templatesPage(w http.ResponseWriter, r *http.Request) {
	s.templatesWith(w, r, http.StatusOK, flashFrom(r))
}

func (s *Server) templatesWith(w http.ResponseWriter, r *http.Request, status int, fl *Flash) {
	v := TemplatesView{CSRF: CSRFToken(r), Flash: fl}
	add := func(name string, f *engine.Flow, src string) {
		c := TemplateCard{Name: name, ID: f.ID, Title: f.Name, Description: f.Description, Nodes: len(f.Nodes),
			Starter: src == srcStarter, Paths: httpPaths(f), Warning: s.rotationWarning(r, f)}
		for _, n := range f.Nodes {
			if !slices.Contains(c.Types, n.Type) {
				c.Types = append(c.Types, n.Type)
			}
		}
		c.SuggestedID = s.freeID(r, f.ID)
		v.Templates = append(v.Templates, c)
	}
	for _, name := range templateNames(startersFS, "starters") {
		if f, src, err := s.template(name); err == nil {
			add(name, f, src)
		}
	}
	if s.d.Examples != nil {
		for _, name := range templateNames(s.d.Examples, ".") {
			if f, src, err := s.template(name); err == nil && src == srcExample {
				add(name, f, src)
			}
		}
	}
	s.render(w, r, status, TemplatesPage(v))
}

// freeID is base, or base with the first free -2, -3, ... suffix.
func (s *Server) freeID(r *http.Request, base string) string {
	if _, err := s.d.App.Info(r.Context(), base); errors.Is(err, store.ErrNotFound) {
		return base
	}
	for n := 2; n < 1000; n++ {
		id := base + "-" + strconv.Itoa(n)
		if _, err := s.d.App.Info(r.Context(), id); errors.Is(err, store.ErrNotFound) {
			return id
		}
	}
	return ""
}

// useTemplate stores a copy of a template under the id the person chose
// (or the first free -2, -3, ... suffix of the template's id), with the
// name and routes from the form, and opens it in the editor. Node ids stay:
// they are local to a flow. The copy is not deployed.
func (s *Server) useTemplate(w http.ResponseWriter, r *http.Request) {
	f, _, err := s.template(r.PathValue("name"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	id := strings.TrimSpace(r.PostFormValue("id"))
	if id == "" {
		id = s.freeID(r, f.ID)
	}
	if !engine.ValidID(id) {
		s.templatesError(w, r, http.StatusBadRequest, fmt.Sprintf("Flow id %q: %s.", truncate(id, 80), FlowIDRule))
		return
	}
	f.ID = id
	if name := strings.TrimSpace(r.PostFormValue("name")); name != "" {
		f.Name = name
	}
	for i, old := range httpPaths(f) {
		p := strings.TrimSpace(r.PostFormValue("path_" + strconv.Itoa(i)))
		if p == "" || p == old {
			continue
		}
		if !strings.HasPrefix(p, "/") {
			s.templatesError(w, r, http.StatusBadRequest, fmt.Sprintf("Route %q must start with /.", truncate(p, 80)))
			return
		}
		for j := range f.Nodes {
			n := &f.Nodes[j]
			var cur string
			if n.Type == "http.in" && jsonString(n.Config["path"], &cur) && cur == old {
				n.Config["path"] = jsonRaw(p)
				if n.Name != "" {
					n.Name = strings.Replace(n.Name, old, p, 1)
				}
			}
		}
	}
	doc, err := engine.EncodeFlow(f)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if _, err := s.d.App.PutFlow(r.Context(), f.ID, doc, store.MustCreate); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// The table's status for a create that found one (as the API
			// answers POST /flows), with the words this form needs.
			err = api.Wrapf(err, "A flow %q exists already: choose another id.", f.ID)
			if status, fl, ok := s.pageError(w, r, err); ok {
				s.templatesWith(w, r, status, fl)
			}
			return
		}
		s.flowError(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/flows/"+f.ID+"/edit", http.StatusSeeOther)
}

func (s *Server) templatesError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.templatesWith(w, r, status, &Flash{Kind: "error", Text: msg})
}

func jsonString(raw []byte, out *string) bool { return len(raw) > 0 && json.Unmarshal(raw, out) == nil }

func jsonRaw(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
