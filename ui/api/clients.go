package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/flowd/flowd/blocks/oauth"
)

// RegisterClients adds the OAuth client registry endpoints:
//
//	GET    /clients        every client (no secrets, no hashes)
//	POST   /clients        {"id", "secret"?, "scopes", "audiences", "name", "token_endpoint_auth_method"?, "jwks"?, "jwks_uri"?,
//	                        "dpop_bound_access_tokens"?, "first_party"?}; a generated secret is in the answer, once
//	PATCH  /clients/{id}   {"first_party": bool}: people are (not) asked to consent to it
//	DELETE /clients/{id}
func RegisterClients(h *Handler, clients *oauth.Clients) {
	h.Handle("GET /clients", listed("clients", clients.List))
	h.Handle("POST /clients", func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			ID                     string   `json:"id"`
			Name                   string   `json:"name"`
			Secret                 string   `json:"secret"`
			Scopes                 []string `json:"scopes"`
			Audiences              []string `json:"audiences"`
			Public                 bool     `json:"public"`
			RedirectURIs           []string `json:"redirect_uris"`
			PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
			GrantTypes             []string `json:"grant_types"`
			DPoPBoundAccessTokens  bool     `json:"dpop_bound_access_tokens"`
			// private_key_jwt: the method and the client's public keys.
			TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
			JWKS                    json.RawMessage `json:"jwks"`
			JWKSURI                 string          `json:"jwks_uri"`
			RequirePAR              bool            `json:"require_pushed_authorization_requests"`
			FirstParty              bool            `json:"first_party"`
		}
		if err := DecodeJSON(w, r, &req); err != nil {
			return err
		}
		given := req.Secret != ""
		cl, secret, err := clients.Add(r.Context(), oauth.Client{ID: req.ID, Name: req.Name, Scopes: req.Scopes,
			Audiences: req.Audiences, Public: req.Public, RedirectURIs: req.RedirectURIs,
			PostLogoutRedirectURIs: req.PostLogoutRedirectURIs, GrantTypes: req.GrantTypes,
			DPoPBoundAccessTokens: req.DPoPBoundAccessTokens, TokenEndpointAuthMethod: req.TokenEndpointAuthMethod,
			JWKS: req.JWKS, JWKSURI: req.JWKSURI, RequirePAR: req.RequirePAR, FirstParty: req.FirstParty}, req.Secret)
		if err != nil {
			return err
		}
		out := map[string]any{"client": cl}
		if !given && secret != "" {
			out["secret"] = secret // generated: shown this once, never again
		}
		WriteJSON(w, http.StatusCreated, out)
		return nil
	})
	h.Handle("PATCH /clients/{id}", func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			FirstParty *bool `json:"first_party"`
		}
		if err := DecodeJSON(w, r, &req); err != nil {
			return err
		}
		if req.FirstParty == nil {
			return Errorf(http.StatusBadRequest, "bad_request", "nothing to change: send first_party")
		}
		cl, err := clients.SetFirstParty(r.Context(), r.PathValue("id"), *req.FirstParty)
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusOK, map[string]any{"client": cl})
		return nil
	})
	h.Handle("DELETE /clients/{id}", func(w http.ResponseWriter, r *http.Request) error {
		if err := clients.Remove(r.Context(), r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// listed answers {"<key>": list()}.
func listed[T any](key string, list func(context.Context) ([]T, error)) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		items, err := list(r.Context())
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusOK, map[string]any{key: items})
		return nil
	}
}
