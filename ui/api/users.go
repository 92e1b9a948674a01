package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/flowd/flowd/blocks/oidc"
	"github.com/flowd/flowd/passhash"
)

// RegisterUsers adds the user registry endpoints (people who sign in
// through the OpenID Provider flows):
//
//	GET    /users             every user (no password hashes)
//	POST   /users             {"username", "password", "email"?, "name"?, "email_verified"?}
//	PUT    /users/{username}/password  {"password"}: set it, then sign out everywhere (as signout) -> {"user", "sessions"}
//	POST   /users/{username}/signout  end every provider session, revoke their grants -> {"user", "sessions"}
//	DELETE /users/{username}  sign out everywhere (as signout), then remove -> {"user", "sessions"}
//	GET    /users/{username}/consents           what the person consented to, per client
//	DELETE /users/{username}/consents/{client}  withdraw a consent: ends the grants made under it
func RegisterUsers(h *Handler, users *oidc.Users) {
	h.Handle("GET /users", listed("users", users.List))
	h.Handle("POST /users", func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			Username      string `json:"username"`
			Password      string `json:"password"`
			Email         string `json:"email"`
			Name          string `json:"name"`
			EmailVerified bool   `json:"email_verified"`
		}
		if err := DecodeJSON(w, r, &req); err != nil {
			return err
		}
		u, err := users.Add(r.Context(), oidc.User{Username: req.Username, Email: req.Email, Name: req.Name,
			EmailVerified: req.EmailVerified}, req.Password)
		if err != nil {
			return busyUsers(users, err)
		}
		WriteJSON(w, http.StatusCreated, map[string]any{"user": u})
		return nil
	})
	h.Handle("PUT /users/{username}/password", func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			Password string `json:"password"`
		}
		if err := DecodeJSON(w, r, &req); err != nil {
			return err
		}
		return signedOut(func(ctx context.Context, username string) (oidc.SignOutResult, error) {
			res, err := users.SetPasswordSignedOut(ctx, username, req.Password)
			return res, busyUsers(users, err)
		})(w, r)
	})
	h.Handle("POST /users/{username}/signout", signedOut(users.SignOut))
	h.Handle("GET /users/{username}/consents", func(w http.ResponseWriter, r *http.Request) error {
		list, err := users.Consents(r.Context(), r.PathValue("username"))
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusOK, map[string]any{"consents": list})
		return nil
	})
	h.Handle("DELETE /users/{username}/consents/{client}", func(w http.ResponseWriter, r *http.Request) error {
		n, err := users.WithdrawConsent(r.Context(), r.PathValue("username"), r.PathValue("client"))
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusOK, map[string]any{"grants_ended": n})
		return nil
	})
	h.Handle("DELETE /users/{username}", signedOut(users.RemoveSignedOut))
}

// signedOut answers {"user", "sessions"} after end signed the user out
// everywhere (and maybe removed them).
func signedOut(end func(ctx context.Context, username string) (oidc.SignOutResult, error)) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		res, err := end(r.Context(), r.PathValue("username"))
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusOK, map[string]any{"user": oidc.NormalizeUsername(r.PathValue("username")), "sessions": res.Sessions})
		return nil
	}
}

// busyUsers adds the hashing pool's wait to a busy refusal of the user
// registry (its ErrBusy does not carry one).
func busyUsers(users *oidc.Users, err error) error {
	if errors.Is(err, passhash.ErrBusy) && users.Hasher() != nil {
		return WithRetryAfter(err, users.Hasher().RetryAfter())
	}
	return err
}
