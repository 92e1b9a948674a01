package jose

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/flowd/flowd/engine"
)

// What the jose blocks report, and how:
//
//	deploy: jose.validate / jose.decrypt  Observer.TokenValidation(flow, node, reason) for "" (valid) and every Reasons() entry
//	        jose.jwks                      Observer.JWKSAnswer(flow, node, keyset, 200|304|503)
//	run:    one Counter.Inc per verdict or answer; per-key use is an atomic add on the key's keyUse
//
// The observer is the engine's (engine.Setup.Observer) when it implements
// Observer; otherwise nothing is counted. Per-key use is counted whatever
// the observer, by the keyset manager itself: Keysets.Usage reads it.

// Observer is the event interface of the jose blocks. A metrics backend
// given to the runtime as its engine.Observer implements it to count
// token verdicts and JWKS answers.
type Observer interface {
	// TokenValidation returns the counter of one node's verdicts with one
	// reason; reason "" counts valid tokens.
	TokenValidation(flow, node string, reason Reason) engine.Counter
	// JWKSAnswer returns the counter of one jose.jwks node's answers with
	// one status: 200 (a body), 304 (If-None-Match matched) or 503 (the
	// keyset's first keys are not made yet).
	JWKSAnswer(flow, node, keyset string, status int) engine.Counter
}

// reasons is every Reason a block can give, in a fixed order.
var reasons = []Reason{
	ReasonTokenMissing, ReasonMalformed, ReasonTooLarge, ReasonAlgNotAllowed, ReasonCritUnsupported,
	ReasonUnknownKid, ReasonBadSignature, ReasonExpired, ReasonNotYetValid, ReasonIssuedInFuture,
	ReasonWrongIssuer, ReasonWrongAudience, ReasonWrongType, ReasonMissingClaim, ReasonClaimsRejected,
	ReasonDecryptFailed, ReasonDPoPMissing, ReasonDPoPInvalid, ReasonDPoPReplayed, ReasonDPoPKeyMismatch,
	ReasonDPoPNonce,
}

// Reasons returns every reason code an invalid token can leave with, so a
// metrics backend can create its series before the first refusal.
func Reasons() []Reason { return append([]Reason(nil), reasons...) }

// verdicts is one validating node's counters, resolved at deploy. A nil
// *verdicts counts nothing.
type verdicts struct {
	valid   engine.Counter
	invalid map[Reason]engine.Counter
}

func newVerdicts(s *engine.Setup) *verdicts {
	o, ok := s.Observer.(Observer)
	if !ok {
		return nil
	}
	v := &verdicts{valid: o.TokenValidation(s.FlowID, s.NodeID, ""), invalid: make(map[Reason]engine.Counter, len(reasons))}
	for _, r := range reasons {
		v.invalid[r] = o.TokenValidation(s.FlowID, s.NodeID, r)
	}
	return v
}

func (v *verdicts) refused(r Reason) {
	if v == nil {
		return
	}
	if c := v.invalid[r]; c != nil {
		c.Inc()
	}
}

// accepted counts a valid token and its key's use (at the run's start
// time: one clock reading per run).
func (v *verdicts) accepted(x *engine.Exec, k *VerifyKey) {
	if k.use != nil {
		at := time.Now()
		if x != nil {
			at = x.Started
		}
		k.use.note(at.Unix())
	}
	if v != nil {
		v.valid.Inc()
	}
}

// keyUse counts one verification key's verified tokens since this process
// started: a total, the last time, and a ring of per-minute counts for
// the last hour. Each ring slot packs minute<<32 | count, so moving a slot
// to a new minute and counting in it is one compare-and-swap.
type keyUse struct {
	total atomic.Uint64
	last  atomic.Int64 // unix seconds; 0: never
	ring  [60]atomic.Uint64
}

func (u *keyUse) note(unix int64) {
	u.total.Add(1)
	if unix > u.last.Load() {
		u.last.Store(unix)
	}
	minute := uint64(unix / 60)
	slot := &u.ring[minute%60]
	for {
		old := slot.Load()
		if old>>32 == minute&0xffffffff {
			slot.Add(1)
			return
		}
		if slot.CompareAndSwap(old, (minute&0xffffffff)<<32|1) {
			return
		}
	}
}

// lastHour sums the slots of the 60 minutes up to and including now's.
func (u *keyUse) lastHour(now time.Time) uint64 {
	cur := now.Unix() / 60
	var n uint64
	for i := range u.ring {
		v := u.ring[i].Load()
		if m := int64(v >> 32); m > (cur-60)&0xffffffff && m <= cur&0xffffffff {
			n += v & 0xffffffff
		}
	}
	return n
}

// KeyUsage is how much one verification key of a keyset was used by this
// process (not the cluster): tokens it verified since start, in the last
// hour, and when it last verified one (zero: never).
type KeyUsage struct {
	Kid          string    `json:"kid"`
	State        State     `json:"state"`
	Verified     uint64    `json:"verified"`
	LastHour     uint64    `json:"verified_last_hour"`
	LastVerified time.Time `json:"last_verified,omitzero"`
}

// Usage returns the use of every published verification key of a keyset
// (revoked keys verify nothing and are not listed).
func (m *Keysets) Usage(ctx context.Context, name string) ([]KeyUsage, error) {
	v, err := m.view(ctx, name)
	if err != nil {
		return nil, err
	}
	now := m.now()
	out := make([]KeyUsage, 0, len(v.verify))
	for _, k := range v.verify {
		u := KeyUsage{Kid: k.JWK.KeyID, State: k.State}
		if k.use != nil {
			u.Verified, u.LastHour = k.use.total.Load(), k.use.lastHour(now)
			if last := k.use.last.Load(); last != 0 {
				u.LastVerified = time.Unix(last, 0).UTC()
			}
		}
		out = append(out, u)
	}
	return out, nil
}

// publish builds the view of a keyset version, gives each verification
// key its use counter, kept across versions by kid (counters of keys no
// longer published are dropped), and makes it the entry's view. On error
// the entry's view is left as it was. Callers hold e.mu.
func (e *ksEntry) publish(ks Keyset, record [32]byte) (*ksView, error) {
	v, err := buildView(ks, record, e.version.Add(1))
	if err != nil {
		return nil, err
	}
	uses := make(map[string]*keyUse, len(v.verify))
	for i := range v.verify {
		kid := v.verify[i].JWK.KeyID
		u := e.uses[kid]
		if u == nil {
			u = &keyUse{}
		}
		uses[kid] = u
		v.verify[i].use = u
	}
	e.uses = uses
	e.view.Store(v)
	e.creating.Store(false)
	return v, nil
}

// Key lifecycle event kinds (KeyEvent.Kind).
const (
	EventKeyGenerated  = "generated"
	EventKeyActivated  = "activated"
	EventKeyRetired    = "retired"
	EventKeyRevoked    = "revoked"
	EventKeyDeleted    = "deleted"
	EventKeysetDeleted = "keyset_deleted"
)

// KeyEvent is one key lifecycle change: what happened to which key, and
// why when the change itself says (a deletion past the deadline, or an
// eviction at the key cap). No key material.
type KeyEvent struct {
	Kind   string
	Keyset string
	Kid    string // "" for EventKeysetDeleted
	State  State  // the key's state after the change
	Why    string
}

func (m *Keysets) emit(ctx context.Context, ev KeyEvent) {
	if m.OnKeyEvent != nil {
		m.OnKeyEvent(ctx, ev)
	}
}

// keyEvents reports the difference between before (the keyset as read
// before a change; empty when it did not exist) and the keyset now
// cached. Another process writing in between would blur the difference
// for this one change; each process reports its own writes.
func (m *Keysets) keyEvents(ctx context.Context, name string, before Keyset, now time.Time) {
	if m.OnKeyEvent == nil {
		return
	}
	e := m.lookup(name)
	if e == nil {
		return
	}
	v := e.view.Load()
	if v == nil {
		return
	}
	old := make(map[string]Key, len(before.Keys))
	for _, k := range before.Keys {
		old[k.Kid] = k
	}
	seen := map[string]bool{}
	for _, k := range v.info.Keys {
		seen[k.Kid] = true
		o, existed := old[k.Kid]
		switch {
		case !existed:
			m.emit(ctx, KeyEvent{Kind: EventKeyGenerated, Keyset: name, Kid: k.Kid, State: k.State, Why: "new " + k.Alg + " key, " + string(k.State)})
			if k.Revoked {
				m.emit(ctx, KeyEvent{Kind: EventKeyRevoked, Keyset: name, Kid: k.Kid, State: k.State})
			}
			continue
		case k.Revoked && !o.Revoked:
			m.emit(ctx, KeyEvent{Kind: EventKeyRevoked, Keyset: name, Kid: k.Kid, State: k.State})
		}
		if k.State != o.State {
			switch k.State {
			case StateActive:
				m.emit(ctx, KeyEvent{Kind: EventKeyActivated, Keyset: name, Kid: k.Kid, State: k.State, Why: "was " + string(o.State)})
			case StateRetired:
				why := "rotated out"
				if !k.RetireAt.IsZero() {
					why += ", published until " + k.RetireAt.UTC().Format(time.RFC3339)
				}
				m.emit(ctx, KeyEvent{Kind: EventKeyRetired, Keyset: name, Kid: k.Kid, State: k.State, Why: why})
			}
		}
	}
	for _, k := range before.Keys {
		if seen[k.Kid] {
			continue
		}
		why := "retire deadline passed"
		switch {
		case k.Revoked:
			why = "revoked key removed"
		case k.State != StateRetired || k.RetireAt.After(now):
			why = "evicted before its deadline: keyset at its key cap"
		}
		m.emit(ctx, KeyEvent{Kind: EventKeyDeleted, Keyset: name, Kid: k.Kid, State: k.State, Why: why})
	}
}

// actingNode names the flow node as the actor of the key changes a block
// makes (OnKeyEvent, the audit log). Only the key-changing blocks call it:
// they are rare, so the context allocation does not matter.
func actingNode(ctx context.Context, x *engine.Exec) context.Context {
	if x == nil || x.FlowID == "" {
		return ctx
	}
	return engine.WithActor(ctx, "flow "+x.FlowID+"/"+x.NodeID)
}

// refusedMsg counts the refusal a block wrote to msg.invalid.reason (the
// one place every refusal path of jose.validate ends up, DPoP included).
func (v *verdicts) refusedMsg(msg engine.Msg) {
	if v == nil {
		return
	}
	inv, _ := msg["invalid"].(map[string]any)
	r, _ := inv["reason"].(string)
	v.refused(Reason(r))
}
