// Package flowd is the public API for running flowd inside another Go
// program. It builds the engine, the standard blocks and the admin API on a
// store you provide, and hands you http.Handlers to mount in your own
// server: it never starts an HTTP server of its own.
//
//	st, _ := store.OpenBolt("flowd.db", store.BoltOptions{MasterKey: key})
//	fd, _ := flowd.New(flowd.Options{Store: st, Register: myBlocks})
//	mux.Handle("/", fd.FlowHandler())        // endpoints served by flows
//	mux.Handle("/admin/", fd.AdminHandler()) // admin UI and JSON API
//	fd.Start(ctx); defer fd.Close(ctx)
//	fd.Import(ctx, flowJSON, true)          // or through the admin API
//
// Options.Blocks chooses the block packages (default StandardBlocks);
// NewRegistry builds the same registry bare, with no store or service,
// for tooling.
//
// # Supported API
//
// flowd, engine (the block SDK, with engine/enginetest), store (the
// storage interfaces and backends, with store/storetest, store/memstore
// and store/storeerr) and the block packages' Register and Provide
// functions are the supported API. The admin packages (app, ui, ui/api,
// ui/editor, ui/uitest, flowtest) are flowd's own wiring and say in their
// package docs that they change without notice. Flowd hands out none of
// their types but App (flowd's own commands and tests use it; an embedder
// that does gets no stability promise): flows are stored with Import, the
// admin UI and API are reached through AdminHandler and Handler, the
// admin credentials through EnsureAdminToken, RotateAdminToken and
// AdminPasswordSet. Keysets,
// Clients, Users, Scheduler and Audit return the services of the block
// packages (and package audit) that the admin UI manages, so that a host
// can manage them from its own code too.
package flowd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/audit"
	"github.com/flowd/flowd/blocks/core"
	httpblock "github.com/flowd/flowd/blocks/http"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/blocks/oidc"
	"github.com/flowd/flowd/blocks/schedule"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/passhash"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/ui"
	"github.com/flowd/flowd/ui/api"
	"github.com/flowd/flowd/ui/editor"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Options configure an embedded flowd.
type Options struct {
	// Store persists flows, versions, variables and keys (and, unless Runs
	// is set, run traces). Required.
	Store store.Store
	// Runs keeps this node's run traces. nil: Store, which must then
	// implement store.Runs (the bbolt store does; on one node that is the
	// default). Traces stay per node on a cluster store.
	Runs store.Runs
	// Blocks are the block packages whose types flowd offers, each a
	// Register function (core.Register, jose.Register, ...). nil: all of
	// StandardBlocks. The services the standard blocks use (keysets,
	// clients, users, the router, the scheduler) exist either way: the
	// admin UI and API manage them.
	Blocks []func(reg *engine.Registry) error
	// Register adds the host program's own block types to the registry,
	// after Blocks. A block that needs a service of the host's reaches it
	// through Services.
	Register func(reg *engine.Registry) error
	// Services, if set, is where flowd adds its own services (see
	// engine.Services) before the runtime starts: the host provides its
	// own there for its blocks' factories (engine.Service). One flowd per
	// Services: a second New on the same one fails (already provided).
	Services *engine.Services
	// Logger receives flowd's logs (default: discarded).
	Logger *slog.Logger
	// AdminToken, if set, is the only token the admin API accepts;
	// otherwise the token stored by EnsureAdminToken is.
	AdminToken string
	// Examples are flow documents installed and deployed on the first
	// start of an empty store (the flowd binary passes flows/examples);
	// later starts upgrade those still exactly as an earlier release
	// shipped them (see app.App.Start).
	Examples fs.FS
	// Limits bound every run (zero values take the engine's defaults).
	Limits engine.Limits
	// Env is the allow-list of environment variables expressions see as `env`.
	Env map[string]string
	// MaxBodyBytes caps request bodies of flow endpoints (default 1 MiB).
	MaxBodyBytes int64
	// BodyReadTimeout bounds reading one request body of a flow endpoint
	// (default 15 s; negative: only the server's ReadTimeout applies).
	// Give the http.Server serving Handler a ReadHeaderTimeout, a
	// ReadTimeout of the same order (it covers the admin API and forms),
	// an IdleTimeout, and serve it through LimitListener.
	BodyReadTimeout time.Duration
	// AdminPassword, if set, is the admin UI password (hashed at start);
	// otherwise the one stored by `flowd admin password` is.
	AdminPassword string
	// SecureCookies marks the admin session cookie Secure: set it when
	// the admin UI is served over TLS.
	SecureCookies bool
	// TrustedProxies are the load balancers whose X-Forwarded-For names the
	// client (see TrustedProxies): the handlers then see the client's
	// address as the request's RemoteAddr. Empty: the peer is the client.
	TrustedProxies TrustedProxies
	// SnapshotsPerSecond bounds how many runs per flow and second keep
	// message snapshots in their traces (default 20; negative: every run).
	// Runs past it keep their path, ports, timings and the failing step's
	// message. See engine.Options.SnapshotsPerSecond.
	SnapshotsPerSecond int
	// Issuer is the OAuth/OpenID issuer identifier, e.g. https://id.example.com.
	// It is also visible to expressions as env.FLOWD_ISSUER.
	Issuer string
	// Clock is the one clock every part reads (default time.Now): run
	// start times (expressions' now, oidc sessions and codes), keyset
	// rotation and key deadlines, token iat/exp and their validation,
	// schedule next times and catch-up, client and user records. A frozen
	// clock makes runs repeatable (flowtest uses one). Cron ticks still
	// follow the real clock; a test fires them itself. The store is the
	// caller's: give it the same clock (store.BoltOptions.Now).
	Clock func() time.Time
	// Outbound, if set, carries every request flows make: http.request
	// calls and the JWKS fetches of jose.validate and jose.decrypt
	// (jwks_url) and of private_key_jwt clients (jwks_uri). Default: the
	// network. A host's egress proxy goes here, and flow tests (package
	// flowtest) put their stub here, so no test reaches the network.
	Outbound http.RoundTripper
	// Sleep is how waiting blocks (core.delay) wait, and the back-off of
	// retried start-up and scheduled runs (default: a real timer). With a
	// frozen Clock, pass one that moves it, e.g. flowtest.Clock.Sleep, so a
	// delay takes no real time.
	Sleep func(ctx context.Context, d time.Duration) error
	// HashConcurrency bounds how many argon2id computations (19 MiB each)
	// run at once, for client secrets, people's passwords and the admin
	// password together (default 2).
	HashConcurrency int
	// HashWait is how long a request waits for a hashing slot before it is
	// answered 503 with Retry-After (default 1s).
	HashWait time.Duration
	// Hasher, if set, is the hashing pool to use instead of one sized by
	// HashConcurrency and HashWait: a host shares its own with flowd.
	Hasher *passhash.Hasher
	// AuditMaxAge and AuditMaxEvents bound the audit log (package audit;
	// defaults 90 days and 100000 events): older events, then the oldest
	// past the count, are pruned as new ones are written.
	AuditMaxAge    time.Duration
	AuditMaxEvents int
	// Metrics, if set, is where flowd registers its Prometheus metrics
	// (package metrics: runs, block errors, token verdicts by reason,
	// JWKS answers, grants, sign-ins, throttle trips, requests by route,
	// cron fires, keys, store call latency: Store and Runs are then used
	// through store.Observed, which keeps their optional interfaces). flowd never uses the global registry; serve the
	// matching Gatherer with promhttp.HandlerFor. The Go runtime and
	// process collectors are the host's to add (metrics.RegisterRuntime).
	// Without it flowd registers nothing and counts only what the admin
	// dashboard shows (runs, verdicts, grants, sign-ins), in memory.
	Metrics prometheus.Registerer
	// TracerProvider, if set, receives an OpenTelemetry span per run (named
	// after its flow) and per step (package tracing); http.in continues a
	// request's W3C traceparent and http.request passes it on. nil: runs
	// are not traced, at no cost. `flowd serve` builds one from the
	// OTEL_* environment variables (package tracing/otlp); shutting it
	// down (which flushes its spans) is the host's.
	TracerProvider trace.TracerProvider
	// NodeID names this node among those sharing the store (the node
	// registry, schedule claims). Default: a random "node-<hex>".
	NodeID string
	// NodeAddr and NodeVersion are published in the node registry: where
	// this node's admin API listens, and the flowd version it runs.
	NodeAddr, NodeVersion string
}

// Flowd is an embedded flowd: engine, blocks, admin API.
type Flowd struct {
	app     *app.App
	router  *httpblock.Router
	sched   *schedule.Scheduler
	clients *oauth.Clients
	keysets *jose.Keysets
	users   *oidc.Users
	tokens  *app.Tokens
	ui      *ui.Server
	api     *api.Handler // for CloseStreams
	obs     *observability
	health  http.Handler
	proxies TrustedProxies
}

// New builds a flowd. Call Start to deploy the stored flows.
func New(opts Options) (*Flowd, error) {
	if opts.Store == nil {
		return nil, errors.New("flowd: Options.Store is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// With metrics, every part reads and writes through the timed store.
	if err := observeStore(&opts); err != nil {
		return nil, fmt.Errorf("flowd: metrics: %w", err)
	}
	keysets := jose.NewKeysets(opts.Store)
	keysets.Now = opts.Clock
	keysets.Log = opts.Logger
	obs, err := newObservability(opts, keysets)
	if err != nil {
		return nil, fmt.Errorf("flowd: metrics: %w", err)
	}
	router := httpblock.NewRouter(httpblock.RouterOptions{MaxBodyBytes: opts.MaxBodyBytes,
		BodyReadTimeout: opts.BodyReadTimeout, Logger: opts.Logger, Unmatched: obs.unmatched(), Outbound: opts.Outbound})
	if opts.NodeID == "" {
		opts.NodeID = app.NewNodeID()
	}
	// Every node arms every schedule; only the holder of the scheduler
	// role ticks, and each tick is claimed in the store before it runs.
	sched := schedule.NewScheduler(schedule.Options{State: opts.Store, Logger: opts.Logger, Now: opts.Clock,
		Coordinator: opts.Store, Node: opts.NodeID, OnFire: obs.cronFire(), Sleep: opts.Sleep})
	// Single-use values (DPoP proof and client assertion jtis) are claimed
	// in the shared store, so every node refuses a replay.
	replay := jose.NewKVReplayCache(opts.Store, "jose_replay", opts.Clock)
	var outClient *http.Client // nil: the blocks' own clients
	if opts.Outbound != nil {
		outClient = &http.Client{Transport: opts.Outbound}
	}
	// One hashing pool for every password and secret check.
	hasher := opts.Hasher
	if hasher == nil {
		hasher = passhash.New(passhash.Options{Concurrency: opts.HashConcurrency, Wait: opts.HashWait, OnBusy: obs.hashBusy()})
	}
	clients := oauth.NewClients(opts.Store)
	clients.SetHasher(hasher)
	obs.clientThrottle(clients, opts.Clock)
	clients.OnChange = obs.changed(audit.ClientAdded, audit.ClientRemoved)
	if opts.Clock != nil {
		clients.SetClock(opts.Clock)
	}
	// On a cluster store the failure throttles count across nodes.
	throttles := newSharedThrottles(opts.Store, opts.Logger)
	if throttles != nil {
		clients.SetThrottle(throttles.throttle("client_secret", passhash.ThrottleOptions{Free: oauth.ThrottleFree,
			Base: oauth.ThrottleBase, Max: oauth.ThrottleMax, Size: oauth.ThrottleSize, Now: opts.Clock}))
	}
	users := oidc.NewUsers(opts.Store)
	users.SetHasher(hasher)
	users.OnChange = obs.changed(audit.UserAdded, audit.UserRemoved)
	users.OnSessionsEnded = obs.sessionsEnded
	users.OnConsentWithdrawn = obs.consentWithdrawn
	if opts.Clock != nil {
		users.SetClock(opts.Clock)
	}
	// Block factories reach these services at deploy; registration needs
	// none of them (see NewRegistry).
	svc := opts.Services
	if svc == nil {
		svc = engine.NewServices()
	}
	for _, provide := range []func() error{
		func() error { return httpblock.Provide(svc, router) },
		func() error { return schedule.Provide(svc, sched) },
		func() error {
			return jose.Provide(svc, keysets, jose.Options{Logger: opts.Logger, Issuer: opts.Issuer, Replay: replay,
				HTTPClient: outClient})
		},
		func() error {
			return oauth.Provide(svc, clients, oauth.Options{Issuer: opts.Issuer, Routes: routePatterns{router},
				Logger: opts.Logger, Replay: replay, HTTPClient: outClient})
		},
		func() error {
			return oidc.Provide(svc, oidc.Deps{State: opts.Store, Secrets: opts.Store, Clients: clients, Users: users, Keysets: keysets},
				oidc.Options{Issuer: opts.Issuer, Logger: opts.Logger, OnGrantRevoked: obs.grantRevoked})
		},
	} {
		if err := provide(); err != nil {
			return nil, fmt.Errorf("flowd: services: %w", err)
		}
	}
	blocks := opts.Blocks
	if blocks == nil {
		blocks = StandardBlocks()
	}
	reg, err := NewRegistry(blocks...)
	if err != nil {
		return nil, err
	}
	if opts.Issuer != "" {
		env := make(map[string]string, len(opts.Env)+1)
		for k, v := range opts.Env {
			env[k] = v
		}
		env["FLOWD_ISSUER"] = opts.Issuer
		opts.Env = env
	}
	if opts.Register != nil {
		if err := opts.Register(reg); err != nil {
			return nil, fmt.Errorf("flowd: custom blocks: %w", err)
		}
	}
	a, err := app.New(app.Config{Store: opts.Store, Runs: opts.Runs, Registry: reg, Logger: opts.Logger,
		Limits: opts.Limits, Env: opts.Env, Examples: opts.Examples, SnapshotsPerSecond: opts.SnapshotsPerSecond,
		Now: opts.Clock, Sleep: opts.Sleep, Observer: obs.engine(), Tracer: obs.tracer(), Audit: obs.flowEvent, Services: svc,
		NodeID: opts.NodeID, NodeAddr: opts.NodeAddr, Version: opts.NodeVersion, CheckDeploy: checkHealthRoutes,
		CheckCluster: httpblock.CheckRoutes})
	if err != nil {
		return nil, err
	}
	tokens := app.NewTokens(opts.Store, opts.AdminToken)
	tokens.OnChange = obs.adminChange(audit.AdminTokenChanged, "admin-token")
	follow(a, tokens, keysets, sched, opts.Logger)
	if throttles != nil {
		a.OnChange(throttles.hook())
	}
	if isClusterStore(opts.Store) {
		keysets.SignGate = feedGate(a.FeedSeen, time.Now, maxKeyStaleness)
	}
	// Per-key use counts add up across nodes: each node publishes its own
	// in its registry record, the keysets page and API sum them.
	a.PublishNodeData(keyUsageRecord, keyUsageEvery, keysets.UsageReport)
	keysets.UsagePeers = func(ctx context.Context) (map[string][]byte, error) {
		return a.OtherNodesData(ctx, keyUsageRecord)
	}
	// The API also accepts calls the UI lets through on a browser session.
	h := api.New(a, ui.SessionTokens(tokens), opts.Logger)
	api.RegisterSchedules(h, sched)
	api.RegisterClients(h, clients)
	api.RegisterKeysets(h, keysets)
	api.RegisterUsers(h, users)
	api.RegisterAudit(h, obs.audit)
	srv, err := ui.New(ui.Deps{App: a, Store: opts.Store, Keysets: keysets, Scheduler: sched, Logger: opts.Logger,
		Secure: opts.SecureCookies, Password: opts.AdminPassword, Examples: opts.Examples, API: h, Issuer: opts.Issuer,
		Observer: obs.ui(),
		Throttle: throttles.throttle,
		Counters: obs.history, Audit: obs.audit, Clients: clients, Users: users, Now: opts.Clock,
		Mount: func(s *ui.Server, mux *http.ServeMux) error {
			mountEditor(s, mux, refLister(a, keysets, clients, users, routePatterns{router}))
			ui.MountPeople(s, mux, clients, users)
			return nil
		}})
	if err != nil {
		return nil, err
	}
	srv.Passwords().SetHasher(hasher)
	srv.Passwords().OnChange = obs.adminChange(audit.AdminPasswordSet, "admin")
	obs.srv = srv
	ui.RegisterPasswordAPI(h, srv.Passwords())
	fd := &Flowd{app: a, api: h, router: router, sched: sched, clients: clients, keysets: keysets, users: users, tokens: tokens, ui: srv, obs: obs,
		proxies: opts.TrustedProxies}
	fd.health = newHealth(fd)
	return fd, nil
}

// StandardBlocks returns the Register functions of every block package
// flowd ships: core.*, http.*, schedule.*, jose.*, oauth.* and oidc.*
// (Options.Blocks leaves out the ones a host does not want).
func StandardBlocks() []func(reg *engine.Registry) error {
	return []func(reg *engine.Registry) error{core.Register, httpblock.Register, schedule.Register,
		jose.Register, oauth.Register, oidc.Register}
}

// NewRegistry returns a registry of the given block packages (each a
// Register function, such as those of StandardBlocks), with their lint
// checks. It needs no store, key or service: tooling such as `flowd
// schema` and `flowd validate` builds one bare. A runtime over it
// validates flows without services (engine.Setup.Validating); deploying
// needs the services flowd.New provides.
func NewRegistry(blocks ...func(reg *engine.Registry) error) (*engine.Registry, error) {
	reg := engine.NewRegistry()
	for _, register := range blocks {
		if err := register(reg); err != nil {
			return nil, fmt.Errorf("flowd: blocks: %w", err)
		}
	}
	return reg, nil
}

// keyUsageRecord names each node's per-key use counts in the node
// registry; keyUsageEvery is how often a node publishes them (how stale
// another node's figures on the keysets page may be).
const (
	keyUsageRecord = "key_usage"
	keyUsageEvery  = 10 * time.Second
)

// mountEditor adds the flow editor's routes behind the UI's login and CSRF.
func mountEditor(s *ui.Server, mux *http.ServeMux, refs func(context.Context, engine.Ref) ([]string, error)) {
	a := s.App()
	editor.New(a, editor.Options{Layout: s.Layout(), CSRF: ui.CSRFToken, Registry: a.Registry(),
		Logger: s.Logger(), Refs: refs}).Register(mux)
}

// refLister lists the stored things the editor's pickers offer: keysets,
// clients, users and flows by name, and the routes deployed flows serve.
func refLister(a *app.App, keysets *jose.Keysets, clients *oauth.Clients, users *oidc.Users, routes routePatterns) func(context.Context, engine.Ref) ([]string, error) {
	return func(ctx context.Context, ref engine.Ref) ([]string, error) {
		switch ref {
		case engine.RefKeyset:
			return keysets.List(ctx)
		case engine.RefClient:
			list, err := clients.List(ctx)
			return names(list, func(c oauth.Client) string { return c.ID }), err
		case engine.RefUser:
			list, err := users.List(ctx)
			return names(list, func(u oidc.User) string { return u.Username }), err
		case engine.RefFlow:
			list, err := a.ListFlows(ctx)
			return names(list, func(f app.FlowInfo) string { return f.ID }), err
		case engine.RefRoute:
			out := routes.Patterns()
			slices.Sort(out)
			return out, nil
		}
		return nil, fmt.Errorf("no list of %q", ref)
	}
}

// names is the name of each of list's records, in order (nil for none).
func names[T any](list []T, name func(T) string) []string {
	var out []string
	for _, r := range list {
		out = append(out, name(r))
	}
	return out
}

// FlowHandler serves the endpoints of deployed flows (http.in routes).
// Mount it at "/".
func (f *Flowd) FlowHandler() http.Handler { return f.proxies.wrap(f.router) }

// AdminHandler serves the admin UI under /admin (login, pages, the flow
// editor), the admin JSON API under /admin/api (bearer token, or the
// UI's session) and, at app.PeerRunsPath, this node's runs to the other
// nodes of a cluster (node token). Mount it at "/admin/".
func (f *Flowd) AdminHandler() http.Handler {
	peer := f.app.PeerHandler()
	return f.proxies.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == app.PeerRunsPath {
			peer.ServeHTTP(w, r)
			return
		}
		f.ui.ServeHTTP(w, r)
	}))
}

// Handler serves both on one listener, as `flowd serve` does: /admin/
// (and /admin, redirected there) to AdminHandler, /healthz and /readyz to
// HealthHandler, every other path to FlowHandler. It dispatches on the path's prefix instead of through a
// ServeMux of its own, so a flow request pays for one route lookup, the
// Router's. Unclean paths ("/x/../admin/") are cleaned and redirected by
// whichever ServeMux they reach, so they cannot skip the admin login.
func (f *Flowd) Handler() http.Handler {
	peer := f.app.PeerHandler()
	return f.proxies.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == PathHealthz || p == PathReadyz:
			f.health.ServeHTTP(w, r)
		case p == app.PeerRunsPath: // other nodes read this node's runs (node token, not the admin login)
			peer.ServeHTTP(w, r)
		case strings.HasPrefix(p, "/admin/"):
			f.ui.ServeHTTP(w, r)
		case p == "/admin":
			u := "/admin/"
			if r.URL.RawQuery != "" {
				u += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, u, http.StatusMovedPermanently)
		default:
			f.router.ServeHTTP(w, r)
		}
	}))
}

// AdminPasswordSet reports whether the admin UI has a password
// (Options.AdminPassword, or one stored by `flowd admin password`): until
// it has, nobody can sign in to the admin UI.
func (f *Flowd) AdminPasswordSet(ctx context.Context) bool { return f.ui.Passwords().IsSet(ctx) }

// App returns the flow service (save, deploy, run, versions) that
// flowd's own commands and tests use. Package app is unstable: an
// embedder stores flows with Import or through the admin API.
func (f *Flowd) App() *app.App { return f.app }

// Import stores a flow document (canonical flowd/v1 JSON) as the draft of
// its flow and, with deploy, deploys it on this node and every node
// sharing the store. An invalid flow is refused with
// engine.ErrInvalidFlow, naming node and field (engine.FirstValidation).
func (f *Flowd) Import(ctx context.Context, doc []byte, deploy bool) error {
	_, err := f.app.Import(ctx, doc, deploy)
	return err
}

// EnsureAdminToken creates the admin API token on first use and returns it
// (to show once); it returns "" when a token already exists or
// Options.AdminToken is set.
func (f *Flowd) EnsureAdminToken(ctx context.Context) (string, error) {
	return f.tokens.Ensure(ctx)
}

// RotateAdminToken replaces the stored admin API token with a new random
// one and returns it (to show once). Every node sharing the store refuses
// the old token as soon as its feed brings the change. It fails when
// Options.AdminToken fixes the token.
func (f *Flowd) RotateAdminToken(ctx context.Context) (string, error) {
	if f.tokens.Fixed() {
		return "", errors.New("flowd: the admin token is fixed by Options.AdminToken (FLOWD_ADMIN_TOKEN)")
	}
	tok := app.NewToken()
	if err := f.tokens.Set(ctx, tok); err != nil {
		return "", err
	}
	return tok, nil
}

// Start starts the cron scheduler (it ticks while this node holds the
// store's scheduler role: on bbolt, always), registers this node and
// starts following the store: every deployed flow is deployed here, and
// later deploys, keyset changes, admin token and variable writes made on
// any node follow (see docs/architecture.md). Then, under the store's
// cluster lock, it installs the examples on first start (later: upgrades
// unchanged ones).
func (f *Flowd) Start(ctx context.Context) error {
	f.obs.start()
	f.sched.Start()
	return f.app.Start(ctx)
}

// CloseStreams ends the admin API's long-lived event streams (the editor's
// live node status). Register it with your http.Server's RegisterOnShutdown,
// or Shutdown waits for open editor tabs.
func (f *Flowd) CloseStreams() { f.api.Close() }

// Close ends the admin UI's event streams, stops the scheduler and every
// flow and waits, until ctx ends, for runs in flight. The store stays
// open: it is the caller's.
func (f *Flowd) Close(ctx context.Context) error {
	f.CloseStreams()
	f.obs.close()
	err := f.sched.Stop(ctx)
	if cerr := f.app.Close(ctx); err == nil {
		err = cerr
	}
	return err
}

// Keysets returns the keyset manager (keys, rotation, JWKS).
func (f *Flowd) Keysets() *jose.Keysets { return f.keysets }

// Clients returns the OAuth client registry.
func (f *Flowd) Clients() *oauth.Clients { return f.clients }

// Users returns the registry of people who sign in (OpenID Provider flows).
func (f *Flowd) Users() *oidc.Users { return f.users }

// routePatterns adapts the router for discovery.
type routePatterns struct{ r *httpblock.Router }

func (p routePatterns) Patterns() []string {
	routes := p.r.Routes()
	out := make([]string, len(routes))
	for i, rt := range routes {
		out[i] = rt.Pattern
	}
	return out
}

// Audit returns the audit log (key lifecycle and admin changes).
func (f *Flowd) Audit() *audit.Log { return f.obs.audit }

// Scheduler returns the cron scheduler (list, pause, resume, run now).
func (f *Flowd) Scheduler() *schedule.Scheduler { return f.sched }
