package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/blocks/oidc"
	"github.com/flowd/flowd/ui/api"
)

// People serves the Clients and Users pages: the OAuth client registry
// and the people who sign in through the OpenID Provider flows. Everything
// `flowd clients` and `flowd users` do, plus edit, a new client secret and
// a password reset.
//
//	GET  /admin/clients                  list and the add form
//	POST /admin/clients                  add; a generated secret is shown on the answer, once
//	GET  /admin/clients/{id}/edit        edit form
//	POST /admin/clients/{id}             save the edit
//	POST /admin/clients/{id}/secret      new generated secret, shown once
//	POST /admin/clients/{id}/delete
//	GET  /admin/users                    list and the add form
//	POST /admin/users                    add
//	POST /admin/users/{username}/password  set a new password, signing the user out everywhere
//	POST /admin/users/{username}/signout   end every provider session of the user, revoke their grants
//	POST /admin/users/{username}/delete    sign out everywhere, then remove
type People struct {
	s       *Server
	clients *oauth.Clients
	users   *oidc.Users
}

// MountPeople adds the Clients and Users pages to the UI's authenticated
// mux (call it from Deps.Mount). Either registry may be nil: its page is
// then left out.
func MountPeople(s *Server, mux *http.ServeMux, clients *oauth.Clients, users *oidc.Users) *People {
	p := &People{s: s, clients: clients, users: users}
	if clients != nil {
		mux.HandleFunc("GET /admin/clients", p.clientsPage)
		mux.HandleFunc("POST /admin/clients", p.addClient)
		mux.HandleFunc("GET /admin/clients/{id}/edit", p.editClientPage)
		mux.HandleFunc("POST /admin/clients/{id}", p.saveClient)
		mux.HandleFunc("POST /admin/clients/{id}/secret", p.renewSecret)
		mux.HandleFunc("POST /admin/clients/{id}/delete", p.deleteClient)
	}
	if users != nil {
		mux.HandleFunc("GET /admin/users", p.usersPage)
		mux.HandleFunc("POST /admin/users", p.addUser)
		mux.HandleFunc("POST /admin/users/{username}/password", p.setPassword)
		mux.HandleFunc("POST /admin/users/{username}/signout", p.signOutUser)
		mux.HandleFunc("POST /admin/users/{username}/delete", p.deleteUser)
	}
	return p
}

// GrantTypes are the grant types a client form offers.
var GrantTypes = []string{"authorization_code", "refresh_token", "client_credentials"}

// words splits a space- or newline-separated list.
func words(s string) []string { return strings.Fields(s) }

// clientForm reads the client fields of a form.
func clientForm(r *http.Request) (oauth.Client, error) {
	if err := r.ParseForm(); err != nil {
		return oauth.Client{}, err
	}
	f := r.PostForm
	cl := oauth.Client{ID: strings.TrimSpace(f.Get("id")), Name: strings.TrimSpace(f.Get("name")),
		Scopes: words(f.Get("scopes")), Audiences: words(f.Get("audiences")),
		RedirectURIs: words(f.Get("redirect_uris")), PostLogoutRedirectURIs: words(f.Get("post_logout_redirect_uris")),
		Public: f.Get("kind") == "public"}
	for _, g := range f["grant_types"] {
		if !slices.Contains(GrantTypes, g) {
			return cl, errors.New("unknown grant type " + g)
		}
		cl.GrantTypes = append(cl.GrantTypes, g)
	}
	cl.FirstParty = f.Get("first_party") == "true"
	cl.DPoPBoundAccessTokens = f.Get("dpop_bound_access_tokens") == "true"
	cl.RequirePAR = f.Get("require_pushed_authorization_requests") == "true"
	cl.JWKSURI = strings.TrimSpace(f.Get("jwks_uri"))
	cl.TokenEndpointAuthMethod = f.Get("token_endpoint_auth_method")
	if jwks := strings.TrimSpace(f.Get("jwks")); jwks != "" {
		cl.JWKS = json.RawMessage(jwks)
		if !json.Valid(cl.JWKS) {
			return cl, errors.New(`Public keys: not JSON. Paste the client's JWK Set as JSON, like {"keys": [{"kty": "EC", ...}]}.`)
		}
	}
	if !slices.Contains(AuthMethods, cl.TokenEndpointAuthMethod) {
		return cl, fmt.Errorf("Token endpoint authentication %q is not one this form offers.", truncateText(cl.TokenEndpointAuthMethod, 40))
	}
	if cl.TokenEndpointAuthMethod == oauth.AuthPrivateKeyJWT && len(cl.JWKS) == 0 && cl.JWKSURI == "" {
		return cl, errors.New("private_key_jwt needs the client's public keys: paste its JWK Set, or give the URL where it publishes them.")
	}
	if len(cl.JWKS) > 0 && cl.JWKSURI != "" {
		return cl, errors.New("Give the public keys or a JWKS URL, not both.")
	}
	return cl, nil
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (p *People) clientsView(r *http.Request, fl *Flash) (ClientsView, error) {
	list, err := p.clients.List(r.Context())
	if err != nil {
		return ClientsView{}, err
	}
	return ClientsView{CSRF: CSRFToken(r), Flash: fl, Clients: list, GrantTypes: GrantTypes,
		Form: oauth.Client{GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "profile", "email"}}}, nil
}

func (p *People) renderClients(w http.ResponseWriter, r *http.Request, status int, v ClientsView) {
	p.s.render(w, r, status, ClientsPage(v))
}

func (p *People) clientsPage(w http.ResponseWriter, r *http.Request) {
	v, err := p.clientsView(r, flashFrom(r))
	if err != nil {
		p.s.serverError(w, r, err)
		return
	}
	p.renderClients(w, r, http.StatusOK, v)
}

// clientStatus maps a registry error to a status and a flash with the
// admin error table; nil after answering a server error itself. A full
// hashing pool is a 503 with Retry-After.
func (p *People) clientStatus(w http.ResponseWriter, r *http.Request, err error) (int, *Flash) {
	status, fl, ok := p.s.pageError(w, r, api.WithRetryAfter(err, p.poolWait()))
	if !ok {
		return 0, nil
	}
	return status, fl
}

// addClient registers a client. The answer is the page itself, not a
// redirect: a generated secret must not travel in a URL, and it is shown
// this once.
func (p *People) addClient(w http.ResponseWriter, r *http.Request) {
	cl, err := clientForm(r)
	if err != nil {
		p.clientFail(w, r, cl, &Flash{Kind: "error", Text: err.Error()}, http.StatusBadRequest)
		return
	}
	own := r.PostFormValue("secret") // optional: empty means generate one
	added, secret, err := p.clients.Add(r.Context(), cl, own)
	if err != nil {
		if status, fl := p.clientStatus(w, r, err); fl != nil {
			p.clientFail(w, r, cl, fl, status)
		}
		return
	}
	v, err := p.clientsView(r, &Flash{Kind: "ok", Text: "Added client " + added.ID + "."})
	if err != nil {
		p.s.serverError(w, r, err)
		return
	}
	if secret != "" && own == "" { // a secret the person typed is not shown back
		v.Secret = &SecretOnce{ClientID: added.ID, Secret: secret}
	}
	p.renderClients(w, r, http.StatusCreated, v)
}

// clientFail shows the list again with the form as it was sent.
func (p *People) clientFail(w http.ResponseWriter, r *http.Request, cl oauth.Client, fl *Flash, status int) {
	v, err := p.clientsView(r, fl)
	if err != nil {
		p.s.serverError(w, r, err)
		return
	}
	v.Form = cl
	v.FormOpen = true
	p.renderClients(w, r, status, v)
}

func (p *People) editClientPage(w http.ResponseWriter, r *http.Request) {
	cl, err := p.clients.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		p.clientMissing(w, r, err)
		return
	}
	p.s.render(w, r, http.StatusOK, EditClientPage(EditClientView{CSRF: CSRFToken(r), Client: cl.View(), GrantTypes: GrantTypes}))
}

func (p *People) clientMissing(w http.ResponseWriter, r *http.Request, err error) {
	status, fl := p.clientStatus(w, r, err)
	if fl == nil {
		return
	}
	v, lerr := p.clientsView(r, fl)
	if lerr != nil {
		p.s.serverError(w, r, lerr)
		return
	}
	p.renderClients(w, r, status, v)
}

func (p *People) saveClient(w http.ResponseWriter, r *http.Request) {
	cl, err := clientForm(r)
	cl.ID = r.PathValue("id")
	var fl *Flash
	status := http.StatusBadRequest
	if err != nil {
		fl = &Flash{Kind: "error", Text: err.Error()} // the form itself: a grant type it does not offer
	} else if _, err = p.clients.Update(r.Context(), cl); err != nil {
		if status, fl = p.clientStatus(w, r, err); fl == nil {
			return
		}
	} else if _, err = p.clients.SetFirstParty(r.Context(), cl.ID, cl.FirstParty); err != nil {
		if status, fl = p.clientStatus(w, r, err); fl == nil {
			return
		}
	}
	if err == nil {
		redirectDone(w, r, "/admin/clients", "saved", cl.ID)
		return
	}
	cur, gerr := p.clients.Get(r.Context(), cl.ID)
	if gerr != nil {
		p.clientMissing(w, r, gerr)
		return
	}
	// What the edit form does not change is shown as stored.
	cl.Public, cl.Created = cur.Public, cur.Created
	cl.TokenEndpointAuthMethod, cl.JWKS, cl.JWKSURI = cur.TokenEndpointAuthMethod, cur.JWKS, cur.JWKSURI
	cl.DPoPBoundAccessTokens, cl.RequirePAR = cur.DPoPBoundAccessTokens, cur.RequirePAR
	p.s.render(w, r, status, EditClientPage(EditClientView{CSRF: CSRFToken(r), Client: cl, GrantTypes: GrantTypes, Flash: fl}))
}

func (p *People) renewSecret(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	secret, err := p.clients.RenewSecret(r.Context(), id)
	if err != nil {
		p.clientMissing(w, r, err)
		return
	}
	v, err := p.clientsView(r, &Flash{Kind: "ok", Text: "Client " + id + " has a new secret; the old one no longer works."})
	if err != nil {
		p.s.serverError(w, r, err)
		return
	}
	v.Secret = &SecretOnce{ClientID: id, Secret: secret}
	p.renderClients(w, r, http.StatusOK, v)
}

func (p *People) deleteClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := p.clients.Remove(r.Context(), id); err != nil {
		p.clientMissing(w, r, err)
		return
	}
	redirectDone(w, r, "/admin/clients", "deleted", id)
}

// ---- users ---------------------------------------------------------------

func (p *People) usersView(r *http.Request, fl *Flash) (UsersView, error) {
	list, err := p.users.List(r.Context())
	if err != nil {
		return UsersView{}, err
	}
	return UsersView{CSRF: CSRFToken(r), Flash: fl, Users: list}, nil
}

func (p *People) usersWith(w http.ResponseWriter, r *http.Request, status int, fl *Flash, form *oidc.User) {
	v, err := p.usersView(r, fl)
	if err != nil {
		p.s.serverError(w, r, err)
		return
	}
	if form != nil {
		v.Form, v.FormOpen = *form, true
	}
	p.s.render(w, r, status, UsersPage(v))
}

func (p *People) usersPage(w http.ResponseWriter, r *http.Request) {
	p.usersWith(w, r, http.StatusOK, flashFrom(r), nil)
}

// userFail shows the users page again with what went wrong, at the status
// of the admin error table (a full hashing pool: 503 with Retry-After).
func (p *People) userFail(w http.ResponseWriter, r *http.Request, err error, form *oidc.User) {
	status, fl, ok := p.s.pageError(w, r, api.WithRetryAfter(err, p.poolWait()))
	if !ok {
		return
	}
	p.usersWith(w, r, status, fl, form)
}

func (p *People) addUser(w http.ResponseWriter, r *http.Request) {
	u := oidc.User{Username: r.PostFormValue("username"), Name: r.PostFormValue("name"), Email: r.PostFormValue("email"),
		EmailVerified: r.PostFormValue("email_verified") == "true"}
	added, err := p.users.Add(r.Context(), u, r.PostFormValue("password"))
	if err != nil {
		p.userFail(w, r, err, &u)
		return
	}
	redirectDone(w, r, "/admin/users", "added", added.Username)
}

// setPassword sets a user's password, which signs them out everywhere
// (the old password may be known to someone else). The answer is the page
// with what was ended, as signOutUser's.
func (p *People) setPassword(w http.ResponseWriter, r *http.Request) {
	name := oidc.NormalizeUsername(r.PathValue("username"))
	res, err := p.users.SetPasswordSignedOut(r.Context(), name, r.PostFormValue("password"))
	if errors.Is(err, oidc.ErrSignOutIncomplete) {
		// The password is set: say so, and what is left to do, rather
		// than a bare server error.
		p.s.log.Error("user's password set from the admin UI, but the sign-out failed", "user", name, "sessions", res.Sessions, "err", err)
		p.usersWith(w, r, http.StatusInternalServerError, &Flash{Kind: "error",
			Text: fmt.Sprintf("Set a new password for %s, but not every session could be ended: sign them out everywhere again.", name)}, nil)
		return
	}
	if err != nil {
		p.userFail(w, r, err, nil)
		return
	}
	p.s.log.Info("user's password set from the admin UI, signed out everywhere", "user", name, "sessions", res.Sessions)
	p.usersWith(w, r, http.StatusOK, &Flash{Kind: "ok", Text: PasswordSetText(name, res)}, nil)
}

// PasswordSetText says what setting a user's password ended.
func PasswordSetText(name string, res oidc.SignOutResult) string {
	if res.Sessions == 0 {
		return fmt.Sprintf("Set a new password for %s (no open sessions to end).", name)
	}
	return fmt.Sprintf("Set a new password for %s and signed them out everywhere: %s (offline_access grants stay).", name, sessionsEnded(res.Sessions))
}

// signOutUser ends every provider session of a user. The answer is the
// page with what was ended (a count is not worth a redirect's query).
func (p *People) signOutUser(w http.ResponseWriter, r *http.Request) {
	name := oidc.NormalizeUsername(r.PathValue("username"))
	res, err := p.users.SignOut(r.Context(), name)
	if err != nil {
		p.userFail(w, r, err, nil)
		return
	}
	p.s.log.Info("user signed out everywhere from the admin UI", "user", name, "sessions", res.Sessions)
	p.usersWith(w, r, http.StatusOK, &Flash{Kind: "ok", Text: SignOutText(name, res)}, nil)
}

// SignOutText says what signing a user out everywhere ended.
func SignOutText(name string, res oidc.SignOutResult) string {
	if res.Sessions == 0 {
		return fmt.Sprintf("%s had no open sessions; nothing to sign out.", name)
	}
	return fmt.Sprintf("Signed %s out everywhere: %s (offline_access grants stay).", name, sessionsEnded(res.Sessions))
}

// RemovedText says what removing a user ended.
func RemovedText(name string, res oidc.SignOutResult) string {
	if res.Sessions == 0 {
		return fmt.Sprintf("Removed %s (no open sessions).", name)
	}
	return fmt.Sprintf("Removed %s and signed them out everywhere: %s.", name, sessionsEnded(res.Sessions))
}

// sessionsEnded says how many sessions ended, their grants with them.
func sessionsEnded(n int) string {
	if n == 1 {
		return "1 session ended, its grants revoked"
	}
	return fmt.Sprintf("%d sessions ended, their grants revoked", n)
}

func (p *People) deleteUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("username")
	res, err := p.users.RemoveSignedOut(r.Context(), name)
	if err != nil {
		p.userFail(w, r, err, nil)
		return
	}
	name = oidc.NormalizeUsername(name)
	p.s.log.Info("user removed from the admin UI, signed out everywhere first", "user", name, "sessions", res.Sessions)
	p.usersWith(w, r, http.StatusOK, &Flash{Kind: "ok", Text: RemovedText(name, res)}, nil)
}

// poolWait is how long a request refused by the hashing pool should wait:
// flowd gives clients and users one pool (0 if unknown: 1 s is said).
func (p *People) poolWait() time.Duration {
	if h := p.users.Hasher(); h != nil {
		return h.RetryAfter()
	}
	return 0
}
