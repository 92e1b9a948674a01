package ui

import (
	"errors"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
)

// template reads one prebuilt flow by file name (without .json).
func (s *Server) template(name string) (*engine.Flow, error) {
	if s.d.Examples == nil || name == "" || strings.ContainsAny(name, "/\\.") {
		return nil, fs.ErrNotExist
	}
	doc, err := fs.ReadFile(s.d.Examples, name+".json")
	if err != nil {
		return nil, err
	}
	return engine.DecodeFlow(doc)
}

func (s *Server) templatesPage(w http.ResponseWriter, r *http.Request) {
	v := TemplatesView{CSRF: CSRFToken(r), Flash: flashFrom(r)}
	if s.d.Examples != nil {
		names, _ := fs.Glob(s.d.Examples, "*.json")
		slices.Sort(names)
		for _, file := range names {
			name := strings.TrimSuffix(path.Base(file), ".json")
			f, err := s.template(name)
			if err != nil {
				continue
			}
			c := TemplateCard{Name: name, ID: f.ID, Title: f.Name, Description: f.Description, Nodes: len(f.Nodes)}
			for _, n := range f.Nodes {
				if !slices.Contains(c.Types, n.Type) {
					c.Types = append(c.Types, n.Type)
				}
			}
			v.Templates = append(v.Templates, c)
		}
	}
	s.render(w, r, http.StatusOK, TemplatesPage(v))
}

// useTemplate stores a copy of a prebuilt flow under a new id (the
// template's id with the first free -2, -3, ... suffix) and opens it in
// the editor. Node ids stay: they are local to a flow. The copy is not
// deployed, so it cannot clash with the original's routes until edited.
func (s *Server) useTemplate(w http.ResponseWriter, r *http.Request) {
	f, err := s.template(r.PathValue("name"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ctx := r.Context()
	base := f.ID
	for n := 2; n < 1000; n++ {
		f.ID = base + "-" + strconv.Itoa(n)
		doc, err := engine.EncodeFlow(f)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		_, err = s.d.App.PutFlow(ctx, f.ID, doc, store.MustCreate)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			s.flowError(w, r, err)
			return
		}
		http.Redirect(w, r, "/admin/flows/"+f.ID+"/edit", http.StatusSeeOther)
		return
	}
	s.flowsWith(w, r, http.StatusConflict, &Flash{Kind: "error", Text: "Too many copies of " + base + "."})
}
