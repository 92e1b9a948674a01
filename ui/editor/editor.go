// Package editor is flowd's visual flow editor: the editor page, its side
// panel forms (rendered on the server from block specs), its JSON and SSE
// endpoints, and its own ES modules (static/, no build step).
//
//	GET  /admin/flows/{id}/edit            page (canvas, palette, side panel, debug panel)
//	GET  /admin/editor/static/{file}       editor.js, canvas.js, ... editor.css
//	POST /admin/editor/form                side panel form of one node (HTML fragment)
//	GET  /admin/editor/flows/{id}/runs     recent traces, values truncated, light runs flagged
//	GET  /admin/editor/flows/{id}/runs/{run}/steps/{i}  one step's full value (captured: false if none)
//	GET  /admin/editor/events?flow=ID      SSE: per node last port/error after each run
//
// The flow itself goes through the admin JSON API with the page's session
// (the ui package's bridge, CSRF header on writes): GET /admin/api/blocks
// for the palette, GET /flows/{id}/state for the draft and the deployed
// document, PUT /flows/{id} and POST /flows/{id}/deploy with the document
// and If-Match to save (and deploy), POST /validate for problems and lint
// warnings, POST /flows/{id}/run for the try-it form. The endpoints above
// are the editor's own views. Errors are the API's (api.Fail), whichever
// side answers. The mux they are mounted on is already behind login and
// CSRF checks; the page hands the CSRF token to the scripts in a data
// attribute.
//
// Saving is optimistic: the page sends the revision it loaded as If-Match;
// a stale one is a 412, the tab keeps its document (and a copy in
// sessionStorage, which the reloaded page offers to put back). Event
// streams end after Options.MaxStream and on Close, and the browser
// reconnects, so a graceful shutdown never waits on an open tab.
//
// Scripts (static/): editor.js boots the page; model.js holds the document,
// undo/redo and the wiring rules; canvas.js draws the SVG and handles
// pointer gestures; panel.js the server-rendered side panel; debug.js the
// runs, live badges and the try-it form; api.js fetch with the CSRF header.
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
	"sync"
	"time"

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
	Runtime  *engine.Runtime
	// Refs lists the existing stored things of a kind (keysets, clients,
	// ...) for the side panel's pickers; nil or an error: a text box.
	Refs func(ctx context.Context, ref engine.Ref) ([]string, error)
	// Logger receives server errors (default: discarded).
	Logger *slog.Logger
	// PollInterval is how often the event stream looks for new runs
	// (default 250ms).
	PollInterval time.Duration
	// MaxStream is how long one event stream lasts before the browser
	// reconnects (default 30s).
	MaxStream time.Duration
}

// Handler serves the editor.
type Handler struct {
	app       *app.App
	opts      Options
	log       *slog.Logger
	done      chan struct{} // closed by Close: ends every event stream
	closeOnce sync.Once
}

// Close ends the open event streams (call it before http.Server.Shutdown,
// which waits for them). The handler keeps serving everything else.
func (h *Handler) Close() {
	h.closeOnce.Do(func() { close(h.done) })
}

//go:embed static
var staticFS embed.FS

// New returns the editor handler. Registry and Runtime default to the app's.
func New(a *app.App, opts Options) *Handler {
	if opts.Registry == nil {
		opts.Registry = a.Registry()
	}
	if opts.Runtime == nil {
		opts.Runtime = a.Runtime()
	}
	if opts.CSRF == nil {
		opts.CSRF = func(*http.Request) string { return "" }
	}
	if opts.Layout == nil {
		opts.Layout = func(_, _ string, body templ.Component) templ.Component { return body }
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 250 * time.Millisecond
	}
	if opts.MaxStream <= 0 {
		opts.MaxStream = 30 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{app: a, opts: opts, log: log, done: make(chan struct{})}
}

// Register adds the editor's routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/flows/{id}/edit", h.page)
	mux.HandleFunc("GET /admin/editor/static/{file}", h.static)
	mux.HandleFunc("POST /admin/editor/form", h.form)
	mux.HandleFunc("GET /admin/editor/flows/{id}/runs", h.runs)
	mux.HandleFunc("GET /admin/editor/flows/{id}/runs/{run}/steps/{i}", h.step)
	mux.HandleFunc("GET /admin/editor/events", h.events)
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
