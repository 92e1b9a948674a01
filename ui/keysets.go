package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/engine"
)

// deployedFlows returns the deployed version of every deployed flow.
func (s *Server) deployedFlows(ctx context.Context) ([]*engine.Flow, error) {
	list, err := s.d.App.ListFlows(ctx)
	if err != nil {
		return nil, err
	}
	var out []*engine.Flow
	for _, fi := range list {
		if fi.Deployed == 0 {
			continue
		}
		v, err := s.d.App.Version(ctx, fi.ID, fi.Deployed)
		if err != nil {
			continue
		}
		if f, err := engine.DecodeFlow(v.Doc); err == nil {
			out = append(out, f)
		}
	}
	return out, nil
}

// keysetsAndFlows lists the keysets and the deployed flows, which hold
// their rotation policies (policyFor).
func (s *Server) keysetsAndFlows(ctx context.Context) ([]string, []*engine.Flow, error) {
	names, err := s.d.Keysets.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	flows, err := s.deployedFlows(ctx)
	if err != nil {
		return nil, nil, err
	}
	return names, flows, nil
}

// rotationPolicy is what the deployed flows say about one keyset: the
// overlap and token lifetimes (jose.RolloverPolicyFor, shared with the
// admin API) and the schedule that rotates it next.
type rotationPolicy struct {
	jose.RolloverPolicy
	nextRotation time.Time
	rotatedBy    string
}

func isRotateOn(n engine.Node, keyset string, cfg func(engine.Node, string) string) bool {
	return n.Type == "jose.rotate" && cfg(n, "keyset") == keyset && cfg(n, "mode") != "ensure"
}

// cfgString reads a node's config field as text: the JSON string, or the
// spec's default when the field is absent.
func (s *Server) cfgString(n engine.Node, field string) string {
	if raw, ok := n.Config[field]; ok {
		var str string
		if json.Unmarshal(raw, &str) == nil {
			return str
		}
		return string(raw)
	}
	if spec, ok := s.d.App.Registry().Spec(n.Type); ok {
		for _, f := range spec.Fields {
			if f.Name == field && f.Default != nil {
				return fmt.Sprint(f.Default)
			}
		}
	}
	return ""
}

func (s *Server) policyFor(flows []*engine.Flow, keyset string) rotationPolicy {
	p := rotationPolicy{RolloverPolicy: jose.RolloverPolicyFor(s.d.App.Registry(), flows, keyset)}
	if s.d.Scheduler != nil {
		byID := map[string]*engine.Flow{}
		for _, f := range flows {
			byID[f.ID] = f
		}
		for _, sc := range s.d.Scheduler.List(1) {
			f := byID[sc.Flow]
			if f == nil || len(sc.Next) == 0 || sc.Paused {
				continue
			}
			if reaches(f, sc.Node, func(n engine.Node) bool { return isRotateOn(n, keyset, s.cfgString) }) &&
				(p.nextRotation.IsZero() || sc.Next[0].Before(p.nextRotation)) {
				p.nextRotation, p.rotatedBy = sc.Next[0], sc.Flow+"/"+sc.Node
			}
		}
	}
	return p
}

// reaches reports whether a node matching fn is downstream of from.
func reaches(f *engine.Flow, from string, fn func(engine.Node) bool) bool {
	seen := map[string]bool{from: true}
	queue := []string{from}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, w := range f.Wires {
			if w.From == id && !seen[w.To] {
				seen[w.To] = true
				if n := f.Node(w.To); n != nil && fn(*n) {
					return true
				}
				queue = append(queue, w.To)
			}
		}
	}
	return false
}

// warnings: a retired key must stay published for as long as a token it
// signed may live plus as long as a verifier may cache the JWKS.
func (p rotationPolicy) warnings() []string {
	if p.ShortestRetire == 0 || p.ShortestRetire >= p.MinRetireAfter() {
		return nil
	}
	return []string{fmt.Sprintf("retire_after %s is shorter than the longest token lifetime (%s) plus the JWKS max-age (%s) = %s: "+
		"tokens signed just before a rotation will fail verification while still valid.",
		engine.FormatDuration(p.ShortestRetire), engine.FormatDuration(p.TokenTTL), engine.FormatDuration(p.JWKSMaxAge), engine.FormatDuration(p.MinRetireAfter()))}
}

func (s *Server) keysetsPage(w http.ResponseWriter, r *http.Request) {
	s.keysetsWith(w, r, http.StatusOK, flashFrom(r))
}

func (s *Server) keysetsWith(w http.ResponseWriter, r *http.Request, status int, fl *Flash) {
	if s.d.Keysets == nil {
		http.NotFound(w, r)
		return
	}
	ctx := r.Context()
	names, flows, err := s.keysetsAndFlows(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	now := s.now().UTC()
	v := KeysetsView{CSRF: CSRFToken(r), Now: now, Flash: fl}
	for _, name := range names {
		info, err := s.d.Keysets.Get(ctx, name)
		if errors.Is(err, jose.ErrNoKeyset) {
			continue
		}
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		p := s.policyFor(flows, name)
		kv := KeysetView{Name: name, Warnings: p.warnings(), NextRotation: p.nextRotation, RotatedBy: p.rotatedBy}
		if p.ShortestRetire > 0 {
			kv.RetireAfter = engine.FormatDuration(p.ShortestRetire)
		}
		usage := s.keyUsage(ctx, name)
		for _, k := range info.Keys {
			u := usage[k.Kid]
			kv.Keys = append(kv.Keys, KeyRow{Kid: k.Kid, Alg: k.Alg, Use: string(k.Use), State: keyState(k),
				Created: k.Created, Activated: k.Activated, RetireAt: k.RetireAt, Revoked: k.Revoked,
				Verified: u.LastHour, LastVerified: u.LastVerified})
		}
		kv.Timeline = keyTimeline(info.Keys, now, p.nextRotation)
		if body, _, err := s.d.Keysets.JWKS(ctx, name); err == nil {
			var buf bytes.Buffer
			if json.Indent(&buf, body, "", "  ") == nil {
				kv.JWKS = buf.String()
			}
		}
		v.Keysets = append(v.Keysets, kv)
	}
	s.render(w, r, status, KeysetsPage(v))
}

func keyState(k jose.KeyInfo) string {
	if k.Revoked {
		return "revoked"
	}
	return string(k.State)
}

// keyTimeline draws one row per key: next from creation to activation
// (or to the next rotation), active from activation until its successor
// of the same alg activated (or the next rotation), retired until
// retire_at.
func keyTimeline(keys []jose.KeyInfo, now, nextRotation time.Time) Timeline {
	horizon := now.Add(24 * time.Hour)
	if !nextRotation.IsZero() && nextRotation.After(horizon.Add(-6*time.Hour)) {
		horizon = nextRotation.Add(12 * time.Hour)
	}
	start := now.Add(-24 * time.Hour)
	end := horizon
	for _, k := range keys {
		if k.Created.Before(start) {
			start = k.Created
		}
		if k.RetireAt.After(end) {
			end = k.RetireAt
		}
	}
	start, end = start.Add(-time.Hour), end.Add(time.Hour)
	t := Timeline{Start: start, End: end, Now: now, Ticks: ticks(start, end, 6)}
	openEnd := func() time.Time {
		if !nextRotation.IsZero() {
			return nextRotation
		}
		return horizon
	}
	// successor: when the next key of the same alg started signing.
	successor := func(k jose.KeyInfo) time.Time {
		var best time.Time
		for _, o := range keys {
			if o.Alg == k.Alg && o.Kid != k.Kid && !o.Activated.IsZero() && o.Activated.After(k.Activated) &&
				(best.IsZero() || o.Activated.Before(best)) {
				best = o.Activated
			}
		}
		return best
	}
	sorted := slices.Clone(keys)
	slices.SortStableFunc(sorted, func(a, b jose.KeyInfo) int {
		if a.Alg != b.Alg {
			if a.Alg < b.Alg {
				return -1
			}
			return 1
		}
		return a.Created.Compare(b.Created)
	})
	for _, k := range sorted {
		row := TimelineRow{Label: k.Alg + " " + shortKid(k.Kid)}
		seg := func(state string, from, to time.Time) {
			if to.Before(from) {
				to = from
			}
			row.Segments = append(row.Segments, Segment{State: state, From: from, To: to,
				Title: fmt.Sprintf("%s %s: %s → %s", k.Kid, state, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))})
		}
		// activated draws the key's time as next, if any, and returns when
		// it became active (a key made active at once was never next).
		activated := func() time.Time {
			act := k.Activated
			if act.IsZero() {
				act = k.Created
			}
			if act.After(k.Created) {
				seg("next", k.Created, act)
			}
			return act
		}
		switch {
		case k.Revoked:
			seg("revoked", k.Created, now)
		case k.State == jose.StateNext:
			seg("next", k.Created, openEnd())
		case k.State == jose.StateActive:
			seg("active", activated(), openEnd())
		case k.State == jose.StateRetired:
			act := activated()
			ret := successor(k)
			if ret.IsZero() || ret.After(k.RetireAt) {
				ret = act
			}
			if ret.After(act) {
				seg("active", act, ret)
			}
			seg("retired", ret, k.RetireAt)
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// rotateKeyset rotates as the keyset's deployed rotation would, keeping
// retired keys for the longest retire_after it configures, and refuses
// when that is shorter than its tokens live plus the JWKS max-age unless
// the form's force box is ticked.
func (s *Server) rotateKeyset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ctx := r.Context()
	flows, err := s.deployedFlows(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	info, err := s.d.Keysets.Get(ctx, name)
	if err != nil {
		s.keysetError(w, r, err)
		return
	}
	p := s.policyFor(flows, name)
	var retiring []string
	for _, k := range info.Keys {
		if k.State == jose.StateActive && !k.Revoked && k.Use == jose.UseSig {
			retiring = append(retiring, k.Kid)
		}
	}
	risk := p.CheckOverlap(p.RetireAfter, retiring, s.now())
	forced := r.PostFormValue("force") != ""
	if risk != "" && !forced {
		s.keysetsWith(w, r, http.StatusBadRequest, &Flash{Kind: "error",
			Text: "Not rotated: " + risk + ". Raise retire_after in the rotating flow, or tick \"force\" to rotate anyway."})
		return
	}
	if _, err := s.d.Keysets.Rotate(ctx, name, jose.RotateOptions{RetireAfter: p.RetireAfter}); err != nil {
		s.keysetError(w, r, err)
		return
	}
	if risk != "" {
		s.log.Warn("keyset rotated from the admin UI with a forced short overlap", "keyset", name, "retire_after", p.RetireAfter, "needed", p.MinRetireAfter())
		s.keysetsWith(w, r, http.StatusOK, &Flash{Kind: "warn", Text: "Rotated " + name + " (forced): " + risk + "."})
		return
	}
	s.log.Info("keyset rotated from the admin UI", "keyset", name, "retire_after", p.RetireAfter)
	redirectDone(w, r, "/admin/keysets", "rotated", name)
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	name, kid := r.PathValue("name"), r.PathValue("kid")
	if err := s.d.Keysets.Revoke(r.Context(), name, kid); err != nil {
		s.keysetError(w, r, err)
		return
	}
	s.log.Warn("key revoked from the admin UI", "keyset", name, "kid", kid)
	redirectDone(w, r, "/admin/keysets", "revoked", kid)
}

func (s *Server) keysetError(w http.ResponseWriter, r *http.Request, err error) {
	if status, fl, ok := s.pageError(w, r, err); ok {
		s.keysetsWith(w, r, status, fl)
	}
}
