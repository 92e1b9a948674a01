package audit

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// QueryParams are the URL query parameters ParseQuery reads.
var QueryParams = []string{"type", "subject", "since", "until", "before", "limit"}

// ParseQuery reads a Query from URL query parameters: type, subject,
// since and until (RFC 3339), before (a cursor) and limit. The admin API
// (GET /admin/api/audit) and the admin UI's audit page both page through
// it. Errors wrap ErrBadQuery and name the parameter; List checks the
// values further (a known type, a cursor's shape, the limit's range).
func ParseQuery(v url.Values) (Query, error) {
	for name := range v {
		if !slices.Contains(QueryParams, name) {
			return Query{}, fmt.Errorf("%w: unknown query parameter %q (type, subject, since, until, before, limit)", ErrBadQuery, name)
		}
	}
	q := Query{Type: v.Get("type"), Subject: v.Get("subject"), Before: v.Get("before")}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := v.Get(t.name); s != "" {
			tm, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return Query{}, fmt.Errorf("%w: %s must be an RFC 3339 time like 2026-12-03T10:00:00Z", ErrBadQuery, t.name)
			}
			*t.dst = tm
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return Query{}, fmt.Errorf("%w: limit must be a positive integer", ErrBadQuery)
		}
		q.Limit = n
	}
	return q, nil
}
