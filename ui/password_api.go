package ui

import (
	"net/http"

	"github.com/flowd/flowd/ui/api"
)

// RegisterPasswordAPI adds PUT /admin/api/admin/password {"password": "..."},
// which `flowd admin password` uses while a server holds the database. It
// takes the admin bearer token only: a browser session cannot change the
// password through it.
func RegisterPasswordAPI(h *api.Handler, pw *Passwords) {
	h.Handle("PUT /admin/password", func(w http.ResponseWriter, r *http.Request) error {
		if ok, _ := r.Context().Value(apiSessionKey{}).(bool); ok {
			return api.Errorf(http.StatusForbidden, "forbidden", "the password is changed with the admin token (flowd admin password), not a session")
		}
		var req struct {
			Password string `json:"password"`
		}
		if err := api.DecodeJSON(w, r, &req); err != nil {
			return err
		}
		if err := CheckStrength(req.Password); err != nil {
			return api.Errorf(http.StatusBadRequest, "weak_password", "%v", err)
		}
		if pw.Fixed() {
			return api.Errorf(http.StatusConflict, "fixed_password", "FLOWD_ADMIN_PASSWORD is set on the server: it is the only password accepted")
		}
		if err := pw.Set(r.Context(), req.Password); err != nil {
			return api.WithRetryAfter(err, pw.hasher.RetryAfter()) // busy: 503 with the pool's wait
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
