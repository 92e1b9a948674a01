package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/flowd/flowd/audit"
)

// RegisterAudit adds the audit log endpoint.
//
//	GET /audit?type=key.revoked&subject=main/&since=RFC3339&until=RFC3339&before=<id>&limit=100
//
// answers {"events": [...newest first], "next": "<id>"}; pass next as
// before for the following (older) page. subject matches exactly, or as a
// prefix when it ends in "/" ("main/" is every key of keyset main).
func RegisterAudit(h *Handler, log *audit.Log) {
	h.Handle("GET /audit", func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		for name := range q {
			switch name {
			case "type", "subject", "since", "until", "before", "limit":
			default:
				return Errorf(http.StatusBadRequest, "bad_request", "unknown query parameter %q (type, subject, since, until, before, limit)", name)
			}
		}
		aq := audit.Query{Type: q.Get("type"), Subject: q.Get("subject"), Before: q.Get("before")}
		for _, t := range []struct {
			name string
			dst  *time.Time
		}{{"since", &aq.Since}, {"until", &aq.Until}} {
			if v := q.Get(t.name); v != "" {
				tm, err := time.Parse(time.RFC3339, v)
				if err != nil {
					return Errorf(http.StatusBadRequest, "bad_request", "%s must be an RFC 3339 time like 2026-12-03T10:00:00Z", t.name)
				}
				*t.dst = tm
			}
		}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return Errorf(http.StatusBadRequest, "bad_request", "limit must be a positive integer")
			}
			aq.Limit = n
		}
		events, next, err := log.List(r.Context(), aq)
		if err != nil {
			return err
		}
		if events == nil {
			events = []audit.Event{}
		}
		WriteJSON(w, http.StatusOK, map[string]any{"events": events, "next": next})
		return nil
	})
}
