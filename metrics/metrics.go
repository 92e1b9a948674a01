// Package metrics counts what flowd does in Prometheus metrics. It
// implements the observer interfaces the engine and the block packages
// define (engine.Observer, jose.Observer, httpblock.Observer,
// oauth.Observer, ui.Observer) on a prometheus.Registerer the embedder
// gives; it never touches the global registry.
//
//	deploy:  runtime/blocks --Runs/StepErrors/TokenValidation/...--> *Metrics --WithLabelValues--> child
//	request: block ---------------------------------------------------------------------------> child.Inc()
//	scrape:  Registry.Gather --> collector --> Keysets.List/Get/Usage, NextRotations
//
// Every label value comes from configuration (flow, node and keyset ids,
// route patterns, block types) or from a fixed list (reason codes,
// results, grant types, status codes): never from a token, a user or a
// request path. Per-key series cover the keys of the store's keysets only.
package metrics

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	httpblock "github.com/flowd/flowd/blocks/http"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/ui"
)

// Metric names.
const (
	NameRuns              = "flowd_runs_total"
	NameRunDuration       = "flowd_run_duration_seconds"
	NameBlockErrors       = "flowd_block_errors_total"
	NameTokenValidations  = "flowd_token_validations_total"
	NameJWKSResponses     = "flowd_jwks_responses_total"
	NameGrants            = "flowd_oauth_grants_total"
	NameClientAuth        = "flowd_oauth_client_auth_total"
	NameSignIns           = "flowd_oidc_sign_ins_total"
	NameAdminSignIns      = "flowd_admin_sign_ins_total"
	NameThrottleTrips     = "flowd_throttle_trips_total"
	NameHashPoolRejected  = "flowd_hash_pool_rejections_total"
	NameHTTPRequests      = "flowd_http_requests_total"
	NameHTTPDuration      = "flowd_http_request_duration_seconds"
	NameCronFires         = "flowd_cron_fires_total"
	NameKeys              = "flowd_jose_keys"
	NameKeyVerifications  = "flowd_jose_key_verifications_total"
	NameKeyRetireSeconds  = "flowd_jose_retired_key_deadline_seconds"
	NameNextRotation      = "flowd_jose_next_rotation_seconds"
	NameScrapeErrors      = "flowd_metrics_scrape_errors_total"
	unmatchedRoute        = "unmatched"
	reasonValid           = ""
	outcomeValid          = "valid"
	outcomeInvalid        = "invalid"
	maxStatus             = 600
	defaultCollectTimeout = 5 * time.Second
)

// Sources are what the scrape-time collectors read. Every field is
// optional.
type Sources struct {
	// Keysets gives keys per state, per-key verifications and retired
	// keys' deadlines.
	Keysets *jose.Keysets
	// NextRotations gives each scheduled keyset's next rotation
	// (ui.Server.NextRotations).
	NextRotations func(ctx context.Context) (map[string]time.Time, error)
	// Now is the clock of the "seconds until" gauges (default time.Now).
	Now func() time.Time
}

// Metrics holds flowd's metric families. Build it with New; it is safe for
// concurrent use.
type Metrics struct {
	runs        *prometheus.CounterVec
	runDur      *prometheus.HistogramVec
	blockErrors *prometheus.CounterVec
	validations *prometheus.CounterVec
	jwks        *prometheus.CounterVec
	grants      *prometheus.CounterVec
	clientAuth  *prometheus.CounterVec
	signIns     *prometheus.CounterVec
	adminSignIn *prometheus.CounterVec
	throttle    *prometheus.CounterVec
	hashBusy    prometheus.Counter
	httpReqs    *prometheus.CounterVec
	httpDur     *prometheus.HistogramVec
	cron        *prometheus.CounterVec
	unmatched   *routeObserver
	keys        *keysetCollector
	// dash holds the counters the admin dashboard shows (History reads
	// them); they are the same collectors the embedder's registry has.
	dash *prometheus.Registry
}

var (
	_ engine.Observer    = (*Metrics)(nil)
	_ jose.Observer      = (*Metrics)(nil)
	_ httpblock.Observer = (*Metrics)(nil)
	_ oauth.Observer     = (*Metrics)(nil)
	_ ui.Observer        = (*Metrics)(nil)
)

// Latency buckets: runs and requests of a token service take from tens of
// microseconds (a cached JWKS) to seconds (a remote JWKS fetch, argon2id).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New registers flowd's metrics on reg and returns them. Register with the
// Go runtime and process collectors too with RegisterRuntime. A nil reg
// registers nothing: the metrics then only feed the admin dashboard
// (NewHistory).
func New(reg prometheus.Registerer, src Sources) (*Metrics, error) {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameRuns,
			Help: "Finished flow runs by flow and outcome (ok, error)."}, []string{"flow", "outcome"}),
		runDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: NameRunDuration,
			Help: "Duration of flow runs in seconds, by flow.", Buckets: latencyBuckets}, []string{"flow"}),
		blockErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameBlockErrors,
			Help: "Failed block steps (errors, panics, deadlines) by flow, node and block type."}, []string{"flow", "node", "type"}),
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameTokenValidations,
			Help: "Token verdicts of jose.validate and jose.decrypt by flow, node, outcome (valid, invalid) and reason code (empty when valid)."},
			[]string{"flow", "node", "outcome", "reason"}),
		jwks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameJWKSResponses,
			Help: "JWKS answers of jose.jwks by flow, node, keyset and status (200, 304, 503: keys not made yet)."}, []string{"flow", "node", "keyset", "status"}),
		grants: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameGrants,
			Help: "Token endpoint decisions by flow, node, grant type and outcome (ok: a token is issued; invalid: refused)."},
			[]string{"flow", "node", "grant_type", "outcome"}),
		clientAuth: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameClientAuth,
			Help: "OAuth client authentications by flow, node and result (ok, invalid, throttled, busy)."}, []string{"flow", "node", "result"}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameSignIns,
			Help: "Sign-ins of people (oidc.login) by flow, node and result (ok, failed, throttled, invalid)."}, []string{"flow", "node", "result"}),
		adminSignIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameAdminSignIns,
			Help: "Admin UI sign-in attempts by result (ok, wrong_password, throttled, busy)."}, []string{"result"}),
		throttle: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameThrottleTrips,
			Help: "Attempts a failure throttle made wait, by throttle."}, []string{"throttle"}),
		hashBusy: prometheus.NewCounter(prometheus.CounterOpts{Name: NameHashPoolRejected,
			Help: "Password and secret checks refused because every argon2id slot stayed taken (answered 503)."}),
		httpReqs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameHTTPRequests,
			Help: "Requests to flow endpoints by flow, route pattern and status; route \"unmatched\" (flow \"\") for requests no route claimed."},
			[]string{"flow", "route", "status"}),
		httpDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: NameHTTPDuration,
			Help: "Time to answer requests to flow endpoints in seconds, by flow and route pattern.", Buckets: latencyBuckets},
			[]string{"flow", "route"}),
		cron: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameCronFires,
			Help: "schedule.cron fires by flow, node, kind (tick, catch_up, manual) and outcome (ok, error, skipped: the previous run was still going)."},
			[]string{"flow", "node", "kind", "outcome"}),
	}
	m.unmatched = newRouteObserver(m, "", unmatchedRoute)
	m.keys = newKeysetCollector(src)
	// A collector may sit in several registries: the dashboard's holds
	// the very counters reg's scrape shows.
	m.dash = prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{m.runs, m.validations, m.grants, m.clientAuth, m.signIns, m.adminSignIn} {
		if err := m.dash.Register(c); err != nil {
			return nil, err
		}
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.runs, m.runDur, m.blockErrors, m.validations, m.jwks, m.grants,
			m.clientAuth, m.signIns, m.adminSignIn, m.throttle, m.hashBusy, m.httpReqs, m.httpDur, m.cron, m.keys} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	// Series with fixed label sets exist from the start, so a dashboard
	// shows zero rather than nothing.
	for _, r := range ui.SignInResults() {
		m.adminSignIn.WithLabelValues(r)
	}
	return m, nil
}

// RegisterRuntime adds the Go runtime and process collectors to reg.
func RegisterRuntime(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewGoCollector(),
		prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// --- engine.Observer ----------------------------------------------------------

type runObserver struct {
	ok, failed prometheus.Counter
	dur        prometheus.Observer
}

func (r *runObserver) Finished(ok bool, d time.Duration) {
	if ok {
		r.ok.Inc()
	} else {
		r.failed.Inc()
	}
	r.dur.Observe(d.Seconds())
}

// Runs implements engine.Observer.
func (m *Metrics) Runs(flow string) engine.RunObserver {
	return &runObserver{ok: m.runs.WithLabelValues(flow, "ok"), failed: m.runs.WithLabelValues(flow, "error"),
		dur: m.runDur.WithLabelValues(flow)}
}

// StepErrors implements engine.Observer.
func (m *Metrics) StepErrors(flow, node, blockType string) engine.Counter {
	return m.blockErrors.WithLabelValues(flow, node, blockType)
}

// DashboardOnly is the observer to give the engine when the embedder did
// not ask for metrics: it counts what the admin dashboard shows (runs,
// block errors, token verdicts, JWKS answers, grants, client
// authentications, sign-ins) and leaves out the HTTP request and run
// latency instruments, so a request pays for nothing no one reads.
func (m *Metrics) DashboardOnly() engine.Observer { return dashboardOnly{m} }

// dashboardOnly is not an httpblock.Observer on purpose.
type dashboardOnly struct{ m *Metrics }

var (
	_ jose.Observer  = dashboardOnly{}
	_ oauth.Observer = dashboardOnly{}
)

var noDuration = prometheus.ObserverFunc(func(float64) {})

func (d dashboardOnly) Runs(flow string) engine.RunObserver {
	return &runObserver{ok: d.m.runs.WithLabelValues(flow, "ok"), failed: d.m.runs.WithLabelValues(flow, "error"), dur: noDuration}
}

func (d dashboardOnly) StepErrors(flow, node, blockType string) engine.Counter {
	return d.m.StepErrors(flow, node, blockType)
}

func (d dashboardOnly) TokenValidation(flow, node string, reason jose.Reason) engine.Counter {
	return d.m.TokenValidation(flow, node, reason)
}

func (d dashboardOnly) JWKSAnswer(flow, node, keyset string, status int) engine.Counter {
	return d.m.JWKSAnswer(flow, node, keyset, status)
}

func (d dashboardOnly) Grant(flow, node, grantType, outcome string) engine.Counter {
	return d.m.Grant(flow, node, grantType, outcome)
}

func (d dashboardOnly) ClientAuth(flow, node, result string) engine.Counter {
	return d.m.ClientAuth(flow, node, result)
}

func (d dashboardOnly) SignIn(flow, node, result string) engine.Counter {
	return d.m.SignIn(flow, node, result)
}

// --- jose.Observer ------------------------------------------------------------

// TokenValidation implements jose.Observer.
func (m *Metrics) TokenValidation(flow, node string, reason jose.Reason) engine.Counter {
	if reason == reasonValid {
		return m.validations.WithLabelValues(flow, node, outcomeValid, "")
	}
	return m.validations.WithLabelValues(flow, node, outcomeInvalid, string(reason))
}

// JWKSAnswer implements jose.Observer.
func (m *Metrics) JWKSAnswer(flow, node, keyset string, status int) engine.Counter {
	return m.jwks.WithLabelValues(flow, node, keyset, strconv.Itoa(status))
}

// --- oauth.Observer -----------------------------------------------------------

// Grant implements oauth.Observer.
func (m *Metrics) Grant(flow, node, grantType, outcome string) engine.Counter {
	return m.grants.WithLabelValues(flow, node, grantType, outcome)
}

// ClientAuth implements oauth.Observer.
func (m *Metrics) ClientAuth(flow, node, result string) engine.Counter {
	return m.clientAuth.WithLabelValues(flow, node, result)
}

// SignIn implements oauth.Observer.
func (m *Metrics) SignIn(flow, node, result string) engine.Counter {
	return m.signIns.WithLabelValues(flow, node, result)
}

// --- ui.Observer --------------------------------------------------------------

// AdminSignIn implements ui.Observer.
func (m *Metrics) AdminSignIn(result string) {
	m.adminSignIn.WithLabelValues(result).Inc()
	if result == ui.SignInThrottled {
		m.throttle.WithLabelValues("admin_sign_in").Inc()
	}
}

// --- passhash and schedule hooks ----------------------------------------------

// ThrottleTrip returns the hook for passhash.ThrottleOptions.OnRefuse of
// the throttle called name.
func (m *Metrics) ThrottleTrip(name string) func() {
	c := m.throttle.WithLabelValues(name)
	return c.Inc
}

// HashPoolBusy is the hook for passhash.Options.OnBusy.
func (m *Metrics) HashPoolBusy() { m.hashBusy.Inc() }

// CronFire is the hook for schedule.Options.OnFire. Fires are rare (at
// most one per second per schedule), so the label lookup happens here.
func (m *Metrics) CronFire(flow, node, kind, outcome string) {
	m.cron.WithLabelValues(flow, node, kind, outcome).Inc()
}

// --- httpblock.Observer -------------------------------------------------------

// routeObserver is one route's instruments: the latency histogram, and a
// counter per status resolved on the status's first use and then read
// with one atomic load.
type routeObserver struct {
	m           *Metrics
	flow, route string
	dur         prometheus.Observer
	byStatus    [maxStatus]atomic.Pointer[prometheus.Counter]
}

func newRouteObserver(m *Metrics, flow, route string) *routeObserver {
	return &routeObserver{m: m, flow: flow, route: route, dur: m.httpDur.WithLabelValues(flow, route)}
}

func (r *routeObserver) Observe(status int, d time.Duration) {
	if status < 100 || status >= maxStatus {
		status = 0 // not a status a server sends; counted as "0"
	}
	c := r.byStatus[status].Load()
	if c == nil {
		cnt := r.m.httpReqs.WithLabelValues(r.flow, r.route, strconv.Itoa(status))
		c = &cnt
		r.byStatus[status].Store(c)
	}
	(*c).Inc()
	r.dur.Observe(d.Seconds())
}

// Requests implements httpblock.Observer.
func (m *Metrics) Requests(flow, _ /*node*/, pattern string) httpblock.RequestObserver {
	return newRouteObserver(m, flow, pattern)
}

// Unmatched is the observer of requests no route claimed
// (httpblock.RouterOptions.Unmatched).
func (m *Metrics) Unmatched() httpblock.RequestObserver { return m.unmatched }
