package api

import (
	"net/http"

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
		aq, err := audit.ParseQuery(r.URL.Query())
		if err != nil {
			return Errorf(http.StatusBadRequest, "bad_request", "%v", err)
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
