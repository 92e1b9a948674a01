package flowd

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/flowd/flowd/audit"
	httpblock "github.com/flowd/flowd/blocks/http"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/blocks/oidc"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/metrics"
	"github.com/flowd/flowd/passhash"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/tracing"
	"github.com/flowd/flowd/ui"
)

// observability holds the metrics of one Flowd and hands each part its
// hook. The metrics always exist, for the admin dashboard's history; only
// with Options.Metrics (exported) are they registered there and do the
// parts the dashboard does not show (request latency, cron fires, hashing
// pool, throttles) count too.
type observability struct {
	m        *metrics.Metrics
	exported bool
	history  *metrics.History
	smu      sync.Mutex
	stop     context.CancelFunc // ends the history's sampling (Start to Close)
	audit    *audit.Log
	srv      *ui.Server      // set once built; read by the scrape-time collector
	trace    *tracing.Tracer // nil: Options.TracerProvider was not set
}

func newObservability(opts Options, keysets *jose.Keysets) (*observability, error) {
	o := &observability{audit: audit.New(opts.Store, audit.Options{MaxAge: opts.AuditMaxAge, MaxEvents: opts.AuditMaxEvents,
		Logger: opts.Logger, Now: opts.Clock}), exported: opts.Metrics != nil}
	keysets.OnKeyEvent = o.keyEvent
	if opts.TracerProvider != nil {
		o.trace = tracing.New(opts.TracerProvider)
	}
	m, err := metrics.New(opts.Metrics, metrics.Sources{Keysets: keysets, NextRotations: o.nextRotations})
	if err != nil {
		return nil, err
	}
	o.m = m
	o.history = m.NewHistory(opts.Clock)
	return o, nil
}

// observeStore puts Options.Store and Options.Runs behind store.Observed
// when metrics are on, timing every call by store kind and operation.
func observeStore(opts *Options) error {
	if opts.Metrics == nil {
		return nil
	}
	ops, err := metrics.NewStoreOps(opts.Metrics)
	if err != nil {
		return err
	}
	opts.Store = store.Observed(opts.Store, ops.Kind(storeKind(opts.Store)))
	if opts.Runs != nil {
		opts.Runs = store.ObservedRuns(opts.Runs, ops.Kind(storeKind(opts.Runs)))
	}
	return nil
}

// storeKind names the backend of a store for the latency metric's kind
// label, from its type's package, so naming it imports no backend.
func storeKind(s any) string {
	t := reflect.TypeOf(s)
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "other"
	}
	switch t.PkgPath() + "." + t.Name() {
	case "github.com/flowd/flowd/store.Bolt":
		return "bbolt"
	case "github.com/flowd/flowd/store/etcd.Store":
		return "etcd"
	case "github.com/flowd/flowd/store/memstore.Store":
		return "memory"
	}
	return "other"
}

// start samples the dashboard's history every minute until close.
func (o *observability) start() {
	o.smu.Lock()
	defer o.smu.Unlock()
	if o.stop != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	o.stop = cancel
	go o.history.Run(ctx)
}

func (o *observability) close() {
	o.smu.Lock()
	defer o.smu.Unlock()
	if o.stop != nil {
		o.stop()
		o.stop = nil
	}
}

func (o *observability) nextRotations(ctx context.Context) (map[string]time.Time, error) {
	if o.srv == nil {
		return nil, nil
	}
	return o.srv.NextRotations(ctx)
}

func (o *observability) engine() engine.Observer {
	if !o.exported {
		return o.m.DashboardOnly()
	}
	return o.m
}

// tracer is the engine's tracer: nil (not a nil *tracing.Tracer) when
// runs are not traced, so the engine's fast path sees no tracer.
func (o *observability) tracer() engine.Tracer {
	if o.trace == nil {
		return nil
	}
	return o.trace
}

func (o *observability) ui() ui.Observer {
	return uiObservers{o.m, o.audit}
}

type uiObservers []ui.Observer

func (u uiObservers) AdminSignIn(result string) {
	for _, o := range u {
		o.AdminSignIn(result)
	}
}

var keyEventTypes = map[string]string{
	jose.EventKeyGenerated: audit.KeyGenerated, jose.EventKeyActivated: audit.KeyActivated,
	jose.EventKeyRetired: audit.KeyRetired, jose.EventKeyRevoked: audit.KeyRevoked,
	jose.EventKeyDeleted: audit.KeyDeleted, jose.EventKeysetDeleted: audit.KeysetDeleted,
}

// keyEvent records a key lifecycle change, with the actor of the call
// that made it (a flow node, the admin UI, an API token).
func (o *observability) keyEvent(ctx context.Context, ev jose.KeyEvent) {
	subject := ev.Keyset
	if ev.Kid != "" {
		subject += "/" + ev.Kid
	}
	o.record(ctx, audit.Event{Type: keyEventTypes[ev.Kind], Subject: subject, Actor: engine.ActorFrom(ctx), Why: ev.Why})
}

// flowEvent is app.Config.Audit.
func (o *observability) flowEvent(ctx context.Context, typ, subject, why string) {
	o.record(ctx, audit.Event{Type: typ, Subject: subject, Actor: engine.ActorFrom(ctx), Why: why})
}

// record writes an event even when the caller's context is ending (the
// change it reports was made), and logs a failure rather than failing the
// change.
func (o *observability) record(ctx context.Context, e audit.Event) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := o.audit.Record(ctx, e); err != nil {
		o.audit.Logger().Warn("audit: record failed", "type", e.Type, "subject", e.Subject, "err", err)
	}
}

func (o *observability) unmatched() httpblock.RequestObserver {
	if !o.exported {
		return nil
	}
	return o.m.Unmatched()
}

func (o *observability) cronFire() func(flow, node, kind, outcome string) {
	if !o.exported {
		return nil
	}
	return o.m.CronFire
}

func (o *observability) hashBusy() func() {
	if !o.exported {
		return nil
	}
	return o.m.HashPoolBusy
}

// clientThrottle gives the client registry a throttle like its default
// one that also counts its trips.
func (o *observability) clientThrottle(c *oauth.Clients, now func() time.Time) {
	trip := func() { o.audit.Trip("oauth_client") }
	if o.exported {
		count := o.m.ThrottleTrip("oauth_client")
		trip = func() {
			count()
			o.audit.Trip("oauth_client")
		}
	}
	c.SetThrottle(passhash.NewThrottle(passhash.ThrottleOptions{Free: oauth.ThrottleFree, Base: oauth.ThrottleBase,
		Max: oauth.ThrottleMax, Size: oauth.ThrottleSize, Now: now, OnRefuse: trip}))
}

// changed is the OnChange hook of a registry (clients, users): "added"
// and "removed" become the two event types.
func (o *observability) changed(added, removed string) func(ctx context.Context, what, id string) {
	return func(ctx context.Context, what, id string) {
		typ := added
		if what == "removed" {
			typ = removed
		}
		o.record(ctx, audit.Event{Type: typ, Subject: id, Actor: engine.ActorFrom(ctx)})
	}
}

// adminChange is the OnChange hook of the admin password and API token.
func (o *observability) adminChange(typ, subject string) func(ctx context.Context) {
	return func(ctx context.Context) {
		o.record(ctx, audit.Event{Type: typ, Subject: subject, Actor: engine.ActorFrom(ctx)})
	}
}

// sessionsEnded is oidc.Users.OnSessionsEnded: the session a sign-in past
// the per-person cap ended is a user.session_ended naming it (never its
// cookie: oidc.SessionRef); a sign-out everywhere, from an admin or a
// removal, is a user.signed_out with the count; a password an admin set
// is a user.password_set with the count of sessions it ended (never the
// password or its hash). Each why starts with the reason, and says when
// the sign-out stopped at a failure.
func (o *observability) sessionsEnded(ctx context.Context, e oidc.SessionsEnded) {
	ev := audit.Event{Type: audit.UserSignedOut, Subject: e.Username, Actor: engine.ActorFrom(ctx),
		Why: fmt.Sprintf("%s: %s ended", e.Reason, howMany(e.Sessions, "session"))}
	switch e.Reason {
	case oidc.EndedSessionCap:
		ev.Type = audit.UserSessionEnded
		ev.Why = fmt.Sprintf("%s: session %s, signed in %s", e.Reason, e.Session, e.SignedIn.UTC().Format(time.RFC3339))
	case oidc.EndedPasswordSet:
		ev.Type = audit.UserPasswordSet
	}
	if e.Incomplete {
		ev.Why += ", sign-out incomplete"
	}
	o.record(ctx, ev)
}

// consentWithdrawn is oidc.Users.OnConsentWithdrawn: the person is the
// subject (the client is in the why, as a grant.revoked's subject is).
func (o *observability) consentWithdrawn(ctx context.Context, username, clientID string, grants int) {
	o.record(ctx, audit.Event{Type: audit.ConsentWithdrawn, Subject: username, Actor: engine.ActorFrom(ctx),
		Why: fmt.Sprintf("consent_withdrawn: client %s, %s ended", clientID, howMany(grants, "grant"))})
}

// howMany is "1 session", "2 sessions", "0 sessions".
func howMany(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// grantRevoked is oidc.Options.OnGrantRevoked: a refresh token used twice
// is its own event type; every revocation is a grant.revoked.
func (o *observability) grantRevoked(ctx context.Context, clientID, reason string) {
	if reason == "refresh_token_reused" {
		o.record(ctx, audit.Event{Type: audit.RefreshTokenReused, Subject: clientID, Actor: "system", Why: "a refresh token was used twice"})
	}
	o.record(ctx, audit.Event{Type: audit.GrantRevoked, Subject: clientID, Actor: "system", Why: reason})
}
