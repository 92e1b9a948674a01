package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/audit"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/blocks/oidc"
	"github.com/flowd/flowd/blocks/schedule"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/passhash"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/ui/api"
)

// Prefix is where the UI is mounted.
const Prefix = "/admin"

// LandingPage is where /admin/ and a login without a (safe) next page go.
const LandingPage = Prefix + "/dashboard"

// CSP is the Content-Security-Policy of every UI answer: no inline script
// or style anywhere, so every script is an ES module under /admin/static.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

//go:embed static
var staticFS embed.FS

// Deps are what the UI needs.
type Deps struct {
	App       *app.App
	Store     store.KV // sessions and the password hash
	Keysets   *jose.Keysets
	Scheduler *schedule.Scheduler
	Logger    *slog.Logger
	// Secure marks cookies Secure (serve over TLS).
	Secure bool
	// Password, if set (FLOWD_ADMIN_PASSWORD), is the admin password; it is
	// hashed at start and the stored one is ignored.
	Password string
	// Examples are the prebuilt flows the templates page offers.
	Examples fs.FS
	// API is the admin JSON API, served at /admin/api/. Build it with a
	// token checker wrapped by SessionTokens so session calls pass.
	API http.Handler
	// Issuer prefills the token debugger's issuer.
	Issuer string
	// Mount adds routes to the authenticated mux (the flow editor). It runs
	// once in New; s is the server being built (for s.Layout()).
	Mount func(s *Server, mux *http.ServeMux) error
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// Observer, if set, gets admin sign-in results (metrics, audit).
	Observer Observer
	// Throttle, if set, makes the login limiter's throttles (flowd makes
	// them cluster-wide on a cluster store); nil: passhash.NewThrottle.
	Throttle func(name string, o passhash.ThrottleOptions) *passhash.Throttle
	// Counters, if set, feed the dashboard's charts (metrics.History).
	Counters Counters
	// Audit, if set, is the audit log the audit page lists.
	Audit *audit.Log
	// Clients and Users, if set, let the audit page link an event to the
	// client or user it names while it still exists.
	Clients *oauth.Clients
	Users   *oidc.Users
}

// Server serves everything under /admin/.
type Server struct {
	d        Deps
	log      *slog.Logger
	mux      *http.ServeMux // authenticated routes
	static   http.Handler
	pw       *Passwords
	sessions *sessions
	limiter  *limiter
	now      func() time.Time
}

// New builds the UI server.
func New(d Deps) (*Server, error) {
	if d.App == nil || d.Store == nil {
		return nil, errors.New("ui: App and Store are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	sub, _ := fs.Sub(staticFS, "static")
	s := &Server{d: d, log: d.Logger, mux: http.NewServeMux(), now: d.Now,
		static:  http.StripPrefix(Prefix+"/static/", http.FileServerFS(sub)),
		pw:      NewPasswords(d.Store, d.Password),
		limiter: newLimiter(d.Now, d.Throttle)}
	s.sessions = &sessions{kv: d.Store, now: d.Now}
	s.routes()
	if d.Mount != nil {
		if err := d.Mount(s, s.mux); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Layout returns the page layout, for pages other packages add.
func (s *Server) Layout() Layout { return Page }

// Layout renders a page: nav, CSS, module scripts. active is the nav item
// ("dashboard", "flows", "keysets", "schedules", "templates", "debugger",
// "audit").
type Layout func(title string, active string, body templ.Component) templ.Component

// Passwords returns the admin password store.
func (s *Server) Passwords() *Passwords { return s.pw }

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /admin/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, LandingPage, http.StatusSeeOther)
	})
	m.HandleFunc("GET /admin/dashboard", s.dashboardPage)
	m.HandleFunc("GET /admin/audit", s.auditPage)
	m.HandleFunc("GET /admin/flows", s.flowsPage)
	m.HandleFunc("POST /admin/flows", s.newFlow)
	m.HandleFunc("POST /admin/flows/import", s.importFlow)
	m.HandleFunc("GET /admin/flows/{id}/export", s.exportFlow)
	m.HandleFunc("POST /admin/flows/{id}/delete", s.deleteFlow)
	m.HandleFunc("POST /admin/flows/{id}/deploy", s.deployFlow)
	m.HandleFunc("GET /admin/flows/{id}/versions", s.versionsPage)
	m.HandleFunc("POST /admin/flows/{id}/versions/{n}/restore", s.restoreVersion)
	m.HandleFunc("GET /admin/keysets", s.keysetsPage)
	m.HandleFunc("POST /admin/keysets/{name}/rotate", s.rotateKeyset)
	m.HandleFunc("POST /admin/keysets/{name}/keys/{kid}/revoke", s.revokeKey)
	m.HandleFunc("GET /admin/schedules", s.schedulesPage)
	m.HandleFunc("GET /admin/schedules/preview", s.schedulePreview)
	m.HandleFunc("POST /admin/schedules/{flow}/{node}/{action}", s.scheduleAction)
	m.HandleFunc("GET /admin/templates", s.templatesPage)
	m.HandleFunc("POST /admin/templates/{name}/use", s.useTemplate)
	m.HandleFunc("GET /admin/debugger", s.debuggerPage)
	m.HandleFunc("POST /admin/debugger", s.debuggerPost)
}

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// ServeHTTP serves /admin/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, Prefix+"/static/"):
		w.Header().Set("Cache-Control", "no-cache")
		s.static.ServeHTTP(w, r)
		return
	case strings.HasPrefix(p, Prefix+"/api/") || p == Prefix+"/api":
		s.serveAPI(w, r) // the API caps and answers its bodies itself
		return
	}
	if !safeMethod(r.Method) {
		limit := int64(maxFormBytes)
		if p == Prefix+"/login" {
			limit = maxLoginBytes
		}
		var ok bool
		if w, ok = limitBody(w, r, limit); !ok {
			return
		}
	}
	if p == Prefix+"/login" {
		s.login(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	sess, err := s.sessions.lookup(r)
	if err != nil && !errors.Is(err, errNoSession) {
		s.serverError(w, r, err) // the store: 503 with Retry-After when it is unavailable
		return
	}
	if sess == nil {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			http.Redirect(w, r, Prefix+"/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		http.Error(w, "login required", http.StatusUnauthorized)
		return
	}
	r = r.WithContext(engine.WithActor(context.WithValue(r.Context(), sessionKey{}, sess), "admin-ui"))
	if !safeMethod(r.Method) {
		if !sameOrigin(r) || !s.csrfOK(r, sess) {
			http.Error(w, "bad or missing CSRF token: reload the page and try again", http.StatusForbidden)
			return
		}
	}
	if p == Prefix+"/logout" && r.Method == http.MethodPost {
		s.logout(w, r, sess)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// serveAPI passes bearer-token calls to the API untouched; a call without
// Authorization is let through on a valid session (the UI's fetches), with
// the CSRF header required on state-changing methods.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if s.d.API == nil {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") == "" {
		sess, err := s.sessions.lookup(r)
		if err != nil && !errors.Is(err, errNoSession) {
			api.Fail(w, r, s.log, err) // the store: 503 with Retry-After when it is unavailable
			return
		}
		if sess != nil {
			if !safeMethod(r.Method) && (!sameOrigin(r) || r.Header.Get(csrfHeader) == "" || !s.csrfOK(r, sess)) {
				http.Error(w, "bad or missing CSRF token", http.StatusForbidden)
				return
			}
			r = r.Clone(engine.WithActor(context.WithValue(r.Context(), apiSessionKey{}, true), "admin-ui"))
			r.Header.Set("Authorization", "Bearer "+sessionBearer)
		}
	}
	s.d.API.ServeHTTP(w, r)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin refuses cross-site state changes a browser labels as such
// (Sec-Fetch-Site) or whose Origin names another host; SameSite=Strict and
// the CSRF token are the main defence, this is belt and braces. With
// Referrer-Policy no-referrer, browsers send "Origin: null" on form posts,
// so Sec-Fetch-Site decides when present.
func sameOrigin(r *http.Request) bool {
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" {
		return sfs == "same-origin" || sfs == "none"
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return true
	}
	_, host, ok := strings.Cut(o, "://")
	return ok && host == r.Host
}

type apiSessionKey struct{}

// sessionBearer is the placeholder bearer the bridge sets; it is accepted
// only together with the context marker only the bridge can set.
const sessionBearer = "ui-session"

// TokenChecker is api.TokenChecker.
type TokenChecker interface {
	Check(ctx context.Context, token string) bool
}

// SessionTokens wraps the API's token checker so that calls the UI bridge
// let through on a valid session are accepted. A request from outside
// cannot set the marker: it is a context value, not a header.
func SessionTokens(inner TokenChecker) TokenChecker { return sessionTokens{inner} }

type sessionTokens struct{ inner TokenChecker }

func (t sessionTokens) Check(ctx context.Context, token string) bool {
	if ok, _ := ctx.Value(apiSessionKey{}).(bool); ok && token == sessionBearer {
		return true
	}
	return t.inner.Check(ctx, token)
}

// App returns the flow service the UI works on.
func (s *Server) App() *app.App { return s.d.App }

// Logger returns the UI's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// maxLoginBytes caps the login form (a password and a redirect target).
const maxLoginBytes = 64 << 10

// limitBody caps the body of a form post at limit bytes. A body announced
// larger is answered 413 at once (ok false). One that turns out larger
// while a handler reads it is answered 413 too, whatever error answer the
// handler was about to give ("bad form", a refused CSRF token): the
// returned writer replaces it.
func limitBody(w http.ResponseWriter, r *http.Request, limit int64) (_ http.ResponseWriter, ok bool) {
	if r.ContentLength > limit {
		tooLarge(w, limit)
		return w, false
	}
	b := &cappedBody{ReadCloser: http.MaxBytesReader(w, r.Body, limit)}
	r.Body = b
	return &cappedWriter{ResponseWriter: w, body: b, limit: limit}, true
}

func tooLarge(w http.ResponseWriter, limit int64) {
	w.Header().Del("Content-Length")
	http.Error(w, fmt.Sprintf("request body too large: at most %d bytes", limit), http.StatusRequestEntityTooLarge)
}

// cappedBody notes when its reader hit the limit.
type cappedBody struct {
	io.ReadCloser
	hit bool
}

func (b *cappedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if _, over := errors.AsType[*http.MaxBytesError](err); over {
		b.hit = true
	}
	return n, err
}

// cappedWriter turns an error answer given after the body hit its limit
// into 413.
type cappedWriter struct {
	http.ResponseWriter
	body     *cappedBody
	limit    int64
	replaced bool
}

func (w *cappedWriter) WriteHeader(code int) {
	if w.body.hit && code >= 400 && code != http.StatusRequestEntityTooLarge {
		w.replaced = true
		tooLarge(w.ResponseWriter, w.limit)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *cappedWriter) Write(p []byte) (int, error) {
	if w.replaced {
		return len(p), nil // the handler's text for an answer it did not give
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *cappedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
