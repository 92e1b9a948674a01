package ui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/audit"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/blocks/oidc"
)

// auditPageSize is the audit page's page size unless the URL asks for
// another (limit).
const auditPageSize = 50

// auditRanges are the page's quick time ranges (the range parameter).
var auditRanges = []struct {
	key, label string
	span       time.Duration
}{
	{"1h", "last hour", time.Hour},
	{"24h", "last day", 24 * time.Hour},
	{"7d", "last 7 days", 7 * 24 * time.Hour},
	{"30d", "last 30 days", 30 * 24 * time.Hour},
}

// localMinute is what an <input type="datetime-local"> sends.
var localMinute = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?$`)

// auditValues turns the page's URL into the parameters of
// audit.ParseQuery, the parser GET /admin/api/audit uses: the range
// shortcut becomes since, and the form's date-time fields (UTC, without
// a zone) become RFC 3339 times. Everything else passes as is, so an
// unknown parameter is refused the same way.
func auditValues(q url.Values, now time.Time) (url.Values, error) {
	out := url.Values{}
	for name, vals := range q {
		if name == "range" || len(vals) == 0 || vals[0] == "" {
			continue
		}
		out[name] = vals[:1]
	}
	for _, name := range []string{"since", "until"} {
		if v := out.Get(name); localMinute.MatchString(v) {
			if len(v) == len("2006-01-02T15:04") {
				v += ":00"
			}
			out.Set(name, v+"Z")
		}
	}
	if r := q.Get("range"); r != "" {
		found := false
		for _, ar := range auditRanges {
			if ar.key == r {
				found = true
				if out.Get("since") == "" {
					out.Set("since", now.Add(-ar.span).UTC().Format(time.RFC3339))
				}
			}
		}
		if !found {
			return nil, errors.New(`range must be one of 1h, 24h, 7d, 30d`)
		}
	}
	if out.Get("limit") == "" {
		out.Set("limit", strconv.Itoa(auditPageSize))
	}
	return out, nil
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request) {
	if s.d.Audit == nil {
		http.NotFound(w, r)
		return
	}
	now := s.now().UTC()
	q := r.URL.Query()
	v := AuditView{Types: audit.Types(), Now: now, Filter: AuditFilter{Type: q.Get("type"), Subject: q.Get("subject"),
		Since: formValueTime(q.Get("since")), Until: formValueTime(q.Get("until")), Range: q.Get("range"), Paged: q.Get("before") != ""}}
	v.Ranges = auditRangeLinks(q)
	status := http.StatusOK
	params, err := auditValues(q, now)
	var events []audit.Event
	var next string
	if err == nil {
		var aq audit.Query
		if aq, err = audit.ParseQuery(params); err == nil {
			events, next, err = s.d.Audit.List(r.Context(), aq)
		}
	}
	switch {
	case errors.Is(err, audit.ErrBadQuery) || (err != nil && params == nil):
		status = http.StatusBadRequest
		v.Error = strings.TrimPrefix(err.Error(), "audit: bad query: ")
	case err != nil:
		s.serverError(w, r, err)
		return
	}
	links := s.subjectLinks(r.Context())
	for _, e := range events {
		row := AuditRow{ID: e.ID, Time: e.Time, Ago: ago(now.Sub(e.Time)), Type: e.Type, Subject: e.Subject,
			Actor: e.Actor, Why: e.Why, Kind: strings.SplitN(e.Type, ".", 2)[0]}
		row.SubjectHref = links.subject(e.Type, e.Subject)
		row.ActorHref = links.actor(e.Actor)
		row.TypeHref = auditURL(q, map[string]string{"type": e.Type, "before": ""})
		v.Events = append(v.Events, row)
	}
	if next != "" {
		v.Older = auditURL(q, map[string]string{"before": next})
	}
	if v.Filter.Paged {
		v.Newest = auditURL(q, map[string]string{"before": ""})
	}
	v.Filtered = v.Filter.Type != "" || v.Filter.Subject != "" || v.Filter.Since != "" || v.Filter.Until != "" || v.Filter.Range != ""
	s.render(w, r, status, AuditPage(v))
}

// auditURL is the page's URL with set changed ("" removes a parameter).
func auditURL(q url.Values, set map[string]string) string {
	c := url.Values{}
	for k, vs := range q {
		if len(vs) > 0 && vs[0] != "" {
			c.Set(k, vs[0])
		}
	}
	for k, v := range set {
		if v == "" {
			c.Del(k)
		} else {
			c.Set(k, v)
		}
	}
	if len(c) == 0 {
		return "/admin/audit"
	}
	return "/admin/audit?" + c.Encode()
}

func auditRangeLinks(q url.Values) []RangeLink {
	cur := q.Get("range")
	out := []RangeLink{{Label: "any time", Href: auditURL(q, map[string]string{"range": "", "since": "", "until": "", "before": ""}),
		Active: cur == "" && q.Get("since") == "" && q.Get("until") == ""}}
	for _, ar := range auditRanges {
		out = append(out, RangeLink{Label: ar.label, Key: ar.key, Active: cur == ar.key,
			Href: auditURL(q, map[string]string{"range": ar.key, "since": "", "until": "", "before": ""})})
	}
	return out
}

// formValueTime shows an RFC 3339 time in a datetime-local field (UTC).
func formValueTime(v string) string {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC().Format("2006-01-02T15:04")
	}
	if localMinute.MatchString(v) {
		return v[:len("2006-01-02T15:04")]
	}
	return ""
}

// ago says how long ago d was, roughly.
func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "in " + roughDuration(d)
	case d < 10*time.Second:
		return "just now"
	}
	return roughDuration(d) + " ago"
}

// subjectLinks knows which subjects still have a page: keysets, flows,
// clients and users are listed once per page view, when an event needs
// them.
type subjectLinks struct {
	ctx     context.Context
	s       *Server
	keysets map[string]bool
	flows   map[string]bool
	clients map[string]bool
	users   map[string]bool
}

func (s *Server) subjectLinks(ctx context.Context) *subjectLinks {
	return &subjectLinks{ctx: ctx, s: s}
}

func (l *subjectLinks) has(set *map[string]bool, list func() []string, id string) bool {
	if *set == nil {
		*set = map[string]bool{}
		for _, x := range list() {
			(*set)[x] = true
		}
	}
	return (*set)[id]
}

func (l *subjectLinks) keyset(name string) bool {
	return l.has(&l.keysets, func() []string {
		if l.s.d.Keysets == nil {
			return nil
		}
		names, _ := l.s.d.Keysets.List(l.ctx)
		return names
	}, name)
}

func (l *subjectLinks) flow(id string) bool {
	return l.has(&l.flows, func() []string {
		list, _ := l.s.d.App.ListFlows(l.ctx)
		return keysOf(list, func(f app.FlowInfo) string { return f.ID })
	}, id)
}

func (l *subjectLinks) client(id string) bool {
	return l.has(&l.clients, func() []string {
		if l.s.d.Clients == nil {
			return nil
		}
		list, _ := l.s.d.Clients.List(l.ctx)
		return keysOf(list, func(c oauth.Client) string { return c.ID })
	}, id)
}

func (l *subjectLinks) user(name string) bool {
	return l.has(&l.users, func() []string {
		if l.s.d.Users == nil {
			return nil
		}
		list, _ := l.s.d.Users.List(l.ctx)
		return keysOf(list, func(u oidc.User) string { return u.Username })
	}, name)
}

// keysOf is the key of each item of list.
func keysOf[T any](list []T, key func(T) string) []string {
	out := make([]string, len(list))
	for i, x := range list {
		out[i] = key(x)
	}
	return out
}

// subject is the page of what an event changed, "" when it has none or
// is gone.
func (l *subjectLinks) subject(typ, subject string) string {
	switch {
	case strings.HasPrefix(typ, "key."):
		ks, _, _ := strings.Cut(subject, "/")
		if l.keyset(ks) {
			return "/admin/keysets#keyset-" + ks
		}
	case strings.HasPrefix(typ, "flow."):
		if l.flow(subject) {
			return "/admin/flows/" + subject + "/edit"
		}
	case strings.HasPrefix(typ, "client."), typ == audit.RefreshTokenReused, typ == audit.GrantRevoked:
		if l.client(subject) {
			return "/admin/clients/" + subject + "/edit"
		}
	case strings.HasPrefix(typ, "user."):
		if l.user(subject) {
			return "/admin/users"
		}
	}
	return ""
}

// actor links "flow <flow>/<node>" to the flow.
func (l *subjectLinks) actor(actor string) string {
	rest, ok := strings.CutPrefix(actor, "flow ")
	if !ok {
		return ""
	}
	flow, _, _ := strings.Cut(rest, "/")
	if l.flow(flow) {
		return "/admin/flows/" + flow + "/edit"
	}
	return ""
}

// AuditView is the audit page.
type AuditView struct {
	Types    []string
	Filter   AuditFilter
	Filtered bool
	Ranges   []RangeLink
	Events   []AuditRow
	Older    string // URL of the next, older page ("" on the last)
	Newest   string // URL of the first page, when on a later one
	Error    string
	Now      time.Time
}

// AuditFilter is the filter form as the person filled it in.
type AuditFilter struct {
	Type, Subject string
	Since, Until  string // datetime-local values, UTC
	Range         string
	Paged         bool
}

// RangeLink is a quick time range.
type RangeLink struct {
	Label, Key, Href string
	Active           bool
}

// AuditRow is one event.
type AuditRow struct {
	ID          string
	Time        time.Time
	Ago         string
	Type        string
	TypeHref    string // the page filtered by this type
	Kind        string // "key", "flow", "admin", ...: the badge's colour
	Subject     string
	SubjectHref string
	Actor       string
	ActorHref   string
	Why         string
}

func rangeID(rl RangeLink) string {
	if rl.Key == "" {
		return "any"
	}
	return rl.Key
}

// shortSubject shortens the kid of a "keyset/kid" subject (the full one
// is the title).
func shortSubject(subject string) string {
	if ks, kid, ok := strings.Cut(subject, "/"); ok {
		return ks + "/" + shortKid(kid)
	}
	return subject
}
