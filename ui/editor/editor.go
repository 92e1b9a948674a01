package editor

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"

	"github.com/a-h/templ"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/ui/api"
)

// Options wire the editor into the ui package.
type Options struct {
	// Layout is the ui package's page layout.
	Layout func(title, active string, body templ.Component) templ.Component
	// CSRF returns the CSRF token the page's scripts send as X-CSRF-Token.
	CSRF     func(r *http.Request) string
	Registry *engine.Registry
	// Refs lists the existing stored things of a kind (keysets, clients,
	// ...) for the side panel's pickers; nil or an error: a text box.
	Refs func(ctx context.Context, ref engine.Ref) ([]string, error)
	// Logger receives server errors (default: discarded).
	Logger *slog.Logger
}

// Handler serves the editor.
type Handler struct {
	app  *app.App
	opts Options
	log  *slog.Logger
}

//go:embed static
var staticFS embed.FS

// New returns the editor handler. Registry defaults to the app's.
func New(a *app.App, opts Options) *Handler {
	if opts.Registry == nil {
		opts.Registry = a.Registry()
	}
	if opts.CSRF == nil {
		opts.CSRF = func(*http.Request) string { return "" }
	}
	if opts.Layout == nil {
		opts.Layout = func(_, _ string, body templ.Component) templ.Component { return body }
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{app: a, opts: opts, log: log}
}

// Register adds the editor's routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/flows/{id}/edit", h.page)
	mux.HandleFunc("GET /admin/editor/static/{file}", h.static)
	mux.HandleFunc("POST /admin/editor/form", h.form)
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	info, err := h.app.Info(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	name := info.Name
	if name == "" {
		name = id
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	body := Page(PageView{FlowID: id, FlowName: name, CSRF: h.opts.CSRF(r)})
	if err := h.opts.Layout("Edit "+name, "flows", body).Render(r.Context(), w); err != nil {
		h.log.Error("render editor page", "flow", id, "err", err)
	}
}

// static serves the embedded ES modules and CSS. They are small and change
// with the binary, so a short max-age plus revalidation is enough.
func (h *Handler) static(w http.ResponseWriter, r *http.Request) {
	name := path.Base(r.PathValue("file"))
	data, err := fs.ReadFile(staticFS, "static/"+name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case ".css":
		ct = "text/css; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "public, max-age=300, must-revalidate")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("ETag", staticETag(name, data))
	if r.Header.Get("If-None-Match") == staticETag(name, data) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(data)
}

func staticETag(name string, data []byte) string {
	var sum uint32 = 2166136261
	for _, b := range data {
		sum = (sum ^ uint32(b)) * 16777619
	}
	return fmt.Sprintf(`"%s-%08x"`, name, sum)
}

// fail answers err through the admin API's error table: the same status
// and code for the same error as the API and the pages.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) { api.Fail(w, r, h.log, err) }
