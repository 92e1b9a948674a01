// Package audit keeps flowd's audit log: durable, append-only events of
// key lifecycle and admin changes, and of the provider sessions flowd ends
// for a person, in the store's KV records, with bounded retention. Every
// event is also logged with slog.
//
//	KV namespace "audit"
//	  <16 hex: unix nanoseconds><4 hex: sequence> -> JSON Event
//
// Keys sort by time, so listing is a key scan in order and pruning drops
// a prefix of the namespace. Events name what changed and who changed it,
// never a secret, token or password: callers pass identifiers only, and
// Record redacts text that looks like a token rather than store it (or
// drop the event).
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Namespace is the KV namespace of the audit log.
const Namespace = "audit"

// KV is the slice of store.KV the log needs.
type KV interface {
	GetKV(ctx context.Context, ns, key string) ([]byte, error)
	SetKV(ctx context.Context, ns, key string, val []byte) error
	DeleteKV(ctx context.Context, ns, key string) error
	ListKV(ctx context.Context, ns string) ([]string, error)
}

// Event types.
const (
	KeyGenerated        = "key.generated"
	KeyActivated        = "key.activated"
	KeyRetired          = "key.retired"
	KeyRevoked          = "key.revoked"
	KeyDeleted          = "key.deleted"
	KeysetDeleted       = "keyset.deleted"
	FlowSaved           = "flow.saved"
	FlowDeployed        = "flow.deployed"
	FlowUndeployed      = "flow.undeployed"
	FlowRestored        = "flow.restored"
	FlowDeleted         = "flow.deleted"
	AdminSignIn         = "admin.sign_in"
	AdminSignInFailed   = "admin.sign_in_failed"
	ThrottleTrip        = "throttle.trip"
	ClientAdded         = "client.added"
	ClientRemoved       = "client.removed"
	UserAdded           = "user.added"
	UserRemoved         = "user.removed"
	UserSessionEnded    = "user.session_ended" // one provider session, ended past the per-person cap
	UserSignedOut       = "user.signed_out"    // every provider session, by an admin or a removal
	UserPasswordSet     = "user.password_set"  // an admin set a person's password, which signed them out
	ConsentWithdrawn    = "user.consent_withdrawn"
	AdminPasswordSet    = "admin.password_changed"
	AdminTokenChanged   = "admin.token_changed"
	RefreshTokenReused  = "refresh_token.reused"
	GrantRevoked        = "grant.revoked"
	maxField            = 256
	defaultMaxAge       = 90 * 24 * time.Hour
	defaultMaxEvents    = 100_000
	pruneEvery          = 64
	defaultPage         = 100
	maxPage             = 1000
	throttleEventPeriod = time.Minute
)

// Types lists every event type.
func Types() []string {
	return []string{KeyGenerated, KeyActivated, KeyRetired, KeyRevoked, KeyDeleted, KeysetDeleted,
		FlowSaved, FlowDeployed, FlowUndeployed, FlowRestored, FlowDeleted, AdminSignIn, AdminSignInFailed,
		ThrottleTrip, ClientAdded, ClientRemoved, UserAdded, UserRemoved, UserSessionEnded, UserSignedOut,
		UserPasswordSet, ConsentWithdrawn, AdminPasswordSet, AdminTokenChanged, RefreshTokenReused, GrantRevoked}
}

// Event is one audit record.
type Event struct {
	// ID orders events; it is also the paging cursor.
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	Type string    `json:"type"`
	// Subject is what changed: "main/<kid>" for a key, a flow id, a client id.
	Subject string `json:"subject"`
	// Actor is who or what changed it: "admin-ui", "api-token", "cli",
	// "flow <flow>/<node>", "system".
	Actor string `json:"actor"`
	// Why is a short reason ("rotation", "retire deadline passed", a
	// version number).
	Why string `json:"why,omitempty"`
}

// Sentinel errors.
var (
	ErrBadEvent = errors.New("audit: bad event")
	ErrBadQuery = errors.New("audit: bad query")
)

// Options bound the log.
type Options struct {
	// MaxAge drops events older than this (default 90 days).
	MaxAge time.Duration
	// MaxEvents keeps at most this many events, dropping the oldest
	// (default 100000; an event is a few hundred bytes).
	MaxEvents int
	Logger    *slog.Logger
	Now       func() time.Time
}

// Log is the audit log. It is safe for concurrent use.
type Log struct {
	kv     KV
	o      Options
	seq    atomic.Uint32
	writes atomic.Uint64
	pmu    sync.Mutex // one prune at a time

	tmu       sync.Mutex
	lastTrips map[string]time.Time // throttle -> last recorded trip
}

// New returns a log over kv.
func New(kv KV, o Options) *Log {
	if o.MaxAge <= 0 {
		o.MaxAge = defaultMaxAge
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = defaultMaxEvents
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Log{kv: kv, o: o, lastTrips: map[string]time.Time{}}
}

// tokenLike matches text that looks like a credential: a JWT (a JWS or
// JWE compact serialization: its base64url JSON header and every dotted
// part after it), or a long unbroken run of base64url. No identifier
// flowd audits is a JWT; kids are 43 characters, but usernames and client
// ids may be up to 128.
var tokenLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)*|[A-Za-z0-9_-]{65,}`)

// redacted replaces what looks like a token.
const redacted = "[redacted]"

// redact replaces the token-like runs of a field with "[redacted]" and
// says how many it replaced. The event is kept: a change the log drops
// for a false alarm is one nobody can trace, and what it redacts never
// reaches the store or the slog line.
//
// Free text (why; a version note may hold anything an admin typed) loses
// every run tokenLike matches. An identifier (subject, actor) is what the
// log is filtered by and must name its user or client even when it is
// long, so a long run there goes only when it has a token's shape: a JWT,
// or both upper- and lower-case letters. Usernames are lower case (oidc's
// rules), client ids and flow ids are names people choose; a random
// base64url value of 65 or more characters lacks one of the two cases
// with a probability under 10^-14.
func redact(v string, identifier bool) (string, int) {
	n := 0
	out := tokenLike.ReplaceAllStringFunc(v, func(run string) string {
		if identifier && !strings.HasPrefix(run, "eyJ") && !mixedCase(run) {
			return run
		}
		n++
		return redacted
	})
	return out, n
}

// mixedCase reports whether s has both an upper- and a lower-case ASCII
// letter.
func mixedCase(s string) bool {
	upper, lower := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z':
			upper = true
		case 'a' <= c && c <= 'z':
			lower = true
		}
	}
	return upper && lower
}

// Logger is the log's logger.
func (l *Log) Logger() *slog.Logger { return l.o.Logger }

// Record appends e (its ID and Time are set here) and logs it. Text that
// looks like a token is replaced by "[redacted]" first (redact), with a
// warning that names the field, never the text. Every few writes it
// prunes events past the retention bounds.
func (l *Log) Record(ctx context.Context, e Event) error {
	if !slices.Contains(Types(), e.Type) {
		return fmt.Errorf("%w: unknown type %q", ErrBadEvent, e.Type)
	}
	for _, f := range []struct {
		name       string
		v          *string
		identifier bool
	}{{"subject", &e.Subject, true}, {"actor", &e.Actor, true}, {"why", &e.Why, false}} {
		// Redacted before the length check: a token is often what makes a
		// field too long, and the event is kept without it.
		var n int
		if *f.v, n = redact(*f.v, f.identifier); n > 0 {
			l.o.Logger.Warn("audit: redacted text that looks like a token; events hold identifiers only",
				"type", e.Type, "field", f.name, "runs", n)
		}
		if len(*f.v) > maxField {
			return fmt.Errorf("%w: %s is longer than %d bytes", ErrBadEvent, f.name, maxField)
		}
	}
	if e.Actor == "" {
		e.Actor = "system"
	}
	e.Time = l.o.Now().UTC()
	e.ID = fmt.Sprintf("%016x%04x", uint64(e.Time.UnixNano()), uint16(l.seq.Add(1)))
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := l.kv.SetKV(ctx, Namespace, e.ID, b); err != nil {
		return fmt.Errorf("audit: write %s: %w", e.Type, err)
	}
	l.o.Logger.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("type", e.Type), slog.String("subject", e.Subject),
		slog.String("actor", e.Actor), slog.String("why", e.Why), slog.String("id", e.ID))
	if l.writes.Add(1)%pruneEvery == 0 {
		if err := l.Prune(ctx); err != nil {
			l.o.Logger.Warn("audit: prune failed", "err", err)
		}
	}
	return nil
}

// Prune drops events older than MaxAge and the oldest past MaxEvents.
func (l *Log) Prune(ctx context.Context) error {
	l.pmu.Lock()
	defer l.pmu.Unlock()
	keys, err := l.kv.ListKV(ctx, Namespace)
	if err != nil {
		return err
	}
	cutoff := fmt.Sprintf("%016x", uint64(l.o.Now().Add(-l.o.MaxAge).UnixNano()))
	drop := 0
	for drop < len(keys) && keys[drop] < cutoff {
		drop++
	}
	drop = max(drop, len(keys)-l.o.MaxEvents)
	for _, k := range keys[:drop] {
		if err := l.kv.DeleteKV(ctx, Namespace, k); err != nil {
			return err
		}
	}
	return nil
}

// Query selects events. Zero fields do not filter.
type Query struct {
	Type    string
	Subject string // exact, or a prefix when it ends in "/"
	Since   time.Time
	Until   time.Time
	// Before is a cursor: events older than the event with this ID.
	Before string
	// Limit is the page size (default 100, at most 1000).
	Limit int
}

var idPattern = regexp.MustCompile(`^[0-9a-f]{20}$`)

// List returns matching events newest first, and the cursor of the next
// (older) page, "" when there is none.
func (l *Log) List(ctx context.Context, q Query) ([]Event, string, error) {
	if q.Limit == 0 {
		q.Limit = defaultPage
	}
	if q.Limit < 0 || q.Limit > maxPage {
		return nil, "", fmt.Errorf("%w: limit must be 1 to %d", ErrBadQuery, maxPage)
	}
	if q.Before != "" && !idPattern.MatchString(q.Before) {
		return nil, "", fmt.Errorf("%w: before must be an event id", ErrBadQuery)
	}
	if q.Type != "" && !slices.Contains(Types(), q.Type) {
		return nil, "", fmt.Errorf("%w: unknown type %q (one of %s)", ErrBadQuery, q.Type, strings.Join(Types(), ", "))
	}
	keys, err := l.kv.ListKV(ctx, Namespace)
	if err != nil {
		return nil, "", err
	}
	var out []Event
	for i := len(keys) - 1; i >= 0; i-- {
		k := keys[i]
		if q.Before != "" && k >= q.Before {
			continue
		}
		if t, ok := keyTime(k); ok {
			if !q.Until.IsZero() && t.After(q.Until) {
				continue
			}
			if !q.Since.IsZero() && t.Before(q.Since) {
				break // older from here on
			}
		}
		b, err := l.kv.GetKV(ctx, Namespace, k)
		if err != nil {
			continue // pruned meanwhile
		}
		var e Event
		if json.Unmarshal(b, &e) != nil {
			continue
		}
		if q.Type != "" && e.Type != q.Type {
			continue
		}
		if q.Subject != "" && e.Subject != q.Subject &&
			!(strings.HasSuffix(q.Subject, "/") && strings.HasPrefix(e.Subject, q.Subject)) {
			continue
		}
		if len(out) == q.Limit {
			return out, out[len(out)-1].ID, nil
		}
		out = append(out, e)
	}
	return out, "", nil
}

func keyTime(k string) (time.Time, bool) {
	if len(k) < 16 {
		return time.Time{}, false
	}
	n, err := strconv.ParseUint(k[:16], 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, int64(n)), true
}

// --- hooks for the observers ---------------------------------------------------

// RecordNow records e for a hook that has no context (sign-ins, throttle
// trips); a failure is logged.
func (l *Log) RecordNow(e Event) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Record(ctx, e); err != nil {
		l.o.Logger.Warn("audit: record failed", "type", e.Type, "err", err)
	}
}

// AdminSignIn implements ui.Observer: successes and failures are events
// (not "busy", which says nothing about who tried).
func (l *Log) AdminSignIn(result string) {
	switch result {
	case "ok":
		l.RecordNow(Event{Type: AdminSignIn, Subject: "admin", Actor: "admin-ui"})
	case "wrong_password":
		l.RecordNow(Event{Type: AdminSignInFailed, Subject: "admin", Actor: "admin-ui", Why: "wrong password"})
	case "throttled":
		l.Trip("admin_sign_in")
	}
}

// Trip records that a throttle made an attempt wait, at most once a
// minute per throttle: under attack every refused attempt trips, and the
// log must not grow with the attacker's rate.
func (l *Log) Trip(throttle string) {
	now := l.o.Now()
	l.tmu.Lock()
	last := l.lastTrips[throttle]
	if now.Sub(last) < throttleEventPeriod {
		l.tmu.Unlock()
		return
	}
	l.lastTrips[throttle] = now
	l.tmu.Unlock()
	l.RecordNow(Event{Type: ThrottleTrip, Subject: throttle, Actor: "system", Why: "failed attempts past the free limit"})
}
