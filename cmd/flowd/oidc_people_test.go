package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/ui/uitest"
)

// The people story: a real relying party (coreos/go-oidc + x/oauth2)
// signs a person in through flowd's prebuilt flows with a browser-like
// HTTP client (a cookie jar), then refreshes, calls userinfo and logs out.

const (
	adaPassword = "correct horse battery staple"
	rpSecret    = "webapp-secret-0123456789"
)

// relyingParty is a small web app that uses flowd to sign people in.
type relyingParty struct {
	srv      *httptest.Server
	provider *oidc.Provider
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier

	mu       sync.Mutex
	pending  map[string]rpPending // by state
	sessions []*rpSession
	byeState string // the state the logout came back with
}

type rpPending struct{ nonce, verifier string }

type rpSession struct {
	token    *oauth2.Token
	rawID    string
	id       *oidc.IDToken
	claims   map[string]any // ID token claims
	userinfo map[string]any
}

// newRelyingParty starts the app; register it, then call connect.
func newRelyingParty(t *testing.T) *relyingParty {
	rp := &relyingParty{pending: map[string]rpPending{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", rp.login)
	mux.HandleFunc("GET /callback", rp.callback)
	mux.HandleFunc("GET /logout", rp.logout)
	mux.HandleFunc("GET /logged-out", func(w http.ResponseWriter, r *http.Request) {
		rp.mu.Lock()
		rp.byeState = r.URL.Query().Get("state")
		rp.mu.Unlock()
		io.WriteString(w, "bye")
	})
	rp.srv = httptest.NewServer(mux)
	t.Cleanup(rp.srv.Close)
	return rp
}

func (rp *relyingParty) connect(t *testing.T, issuer, clientID, secret string) {
	t.Helper()
	p, err := oidc.NewProvider(t.Context(), issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	rp.provider = p
	rp.conf = oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: p.Endpoint(),
		RedirectURL: rp.srv.URL + "/callback", Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
	rp.verifier = p.Verifier(&oidc.Config{ClientID: clientID})
}

func randomText() string { return oauth2.GenerateVerifier()[:24] }

func (rp *relyingParty) login(w http.ResponseWriter, r *http.Request) {
	state, nonce, verifier := randomText(), "n-"+randomText(), oauth2.GenerateVerifier()
	rp.mu.Lock()
	rp.pending[state] = rpPending{nonce: nonce, verifier: verifier}
	rp.mu.Unlock()
	http.Redirect(w, r, rp.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), http.StatusFound)
}

func (rp *relyingParty) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rp.mu.Lock()
	p, ok := rp.pending[q.Get("state")]
	delete(rp.pending, q.Get("state"))
	rp.mu.Unlock()
	if !ok {
		http.Error(w, "unknown state", 400)
		return
	}
	if e := q.Get("error"); e != "" {
		http.Error(w, "provider error: "+e, 400)
		return
	}
	if q.Get("iss") != rp.provider.Endpoint().AuthURL[:strings.Index(rp.provider.Endpoint().AuthURL, "/oauth/")] {
		http.Error(w, "wrong iss in the authorization response: "+q.Get("iss"), 400)
		return
	}
	ctx := r.Context()
	tok, err := rp.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		http.Error(w, "exchange: "+err.Error(), 400)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		http.Error(w, "verify: "+err.Error(), 400)
		return
	}
	if idt.Nonce != p.nonce {
		http.Error(w, "nonce mismatch", 400)
		return
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		http.Error(w, "at_hash: "+err.Error(), 400)
		return
	}
	s := &rpSession{token: tok, rawID: raw, id: idt}
	if err := idt.Claims(&s.claims); err != nil {
		http.Error(w, "claims: "+err.Error(), 400)
		return
	}
	ui, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		http.Error(w, "userinfo: "+err.Error(), 400)
		return
	}
	if err := ui.Claims(&s.userinfo); err != nil || ui.Subject != idt.Subject {
		http.Error(w, "userinfo claims", 400)
		return
	}
	rp.mu.Lock()
	rp.sessions = append(rp.sessions, s)
	rp.mu.Unlock()
	fmt.Fprintf(w, "signed in as %s", idt.Subject)
}

func (rp *relyingParty) logout(w http.ResponseWriter, r *http.Request) {
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	rp.provider.Claims(&meta)
	s := rp.last()
	v := url.Values{"id_token_hint": {s.rawID}, "post_logout_redirect_uri": {rp.srv.URL + "/logged-out"},
		"state": {r.URL.Query().Get("state")}}
	http.Redirect(w, r, meta.EndSession+"?"+v.Encode(), http.StatusFound)
}

func (rp *relyingParty) last() *rpSession {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if len(rp.sessions) == 0 {
		return nil
	}
	return rp.sessions[len(rp.sessions)-1]
}

// browser is an HTTP client with a cookie jar. follow decides whether it
// follows redirects like a browser.
type browser struct {
	c    *http.Client
	jar  *cookiejar.Jar
	seen []string // every URL requested (following redirects)
}

func newBrowser(follow bool) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{jar: jar}
	b.c = &http.Client{Jar: jar, Timeout: 20 * time.Second}
	b.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !follow {
			return http.ErrUseLastResponse
		}
		b.seen = append(b.seen, req.URL.String())
		return nil
	}
	return b
}

type page struct {
	status int
	header http.Header
	body   string
	url    string // final URL
}

func (b *browser) do(t *testing.T, method, u string, form url.Values) page {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	b.seen = append(b.seen, u)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, header: resp.Header, body: string(raw), url: resp.Request.URL.String()}
}

func (b *browser) get(t *testing.T, u string) page { t.Helper(); return b.do(t, "GET", u, nil) }

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="(tx|csrf)" value="([^"]*)"`)

// hiddenFields reads the hidden tx and csrf fields of the form whose
// data-testid is testid (what names it in the failure).
func hiddenFields(t *testing.T, p page, testid, what string) url.Values {
	t.Helper()
	if p.status != 200 || !strings.Contains(p.body, `data-testid="`+testid+`"`) {
		t.Fatalf("expected %s, got %d at %s:\n%s", what, p.status, p.url, p.body)
	}
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

// loginForm reads the hidden fields of the sign-in form.
func loginForm(t *testing.T, p page) url.Values {
	t.Helper()
	v := hiddenFields(t, p, "login-form", "the sign-in form")
	if v.Get("tx") == "" || v.Get("csrf") == "" {
		t.Fatalf("form without tx/csrf:\n%s", p.body)
	}
	return v
}

func withLogin(form url.Values, user, pass string) url.Values {
	v := url.Values{"tx": {form.Get("tx")}, "csrf": {form.Get("csrf")}, "username": {user}, "password": {pass}}
	return v
}

func mustCmd(t *testing.T, vars map[string]string, args ...string) string {
	t.Helper()
	code, out, errs := flowdCmd(t, vars, args...)
	if code != 0 {
		t.Fatalf("flowd %s: %d %s %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// TestPeopleSignInStory is the README's sign-in story end to end.
func TestPeopleSignInStory(t *testing.T) {
	data := filepath.Join(t.TempDir(), "flowd-data")
	s := startServer(t, data)
	waitKeys(t, s)
	issuer := "http://" + s.addr
	vars := map[string]string{"FLOWD_DATA": data}

	mustCmd(t, vars, "users", "add", "--username", "Ada", "--password", adaPassword, "--email", "ada@example.com",
		"--email-verified", "--name", "Ada Lovelace")
	if out := mustCmd(t, vars, "users", "list"); !strings.Contains(out, "ada") || !strings.Contains(out, "ada@example.com") || strings.Contains(out, "argon2") {
		t.Fatalf("users list: %s", out)
	}
	rp := newRelyingParty(t)
	out := mustCmd(t, vars, "clients", "add", "--id", "webapp", "--name", "Web App", "--first-party", "--secret", rpSecret,
		"--scopes", "openid profile email", "--redirect-uris", rp.srv.URL+"/callback",
		"--post-logout-redirect-uris", rp.srv.URL+"/logged-out")
	if !strings.Contains(out, "grant types: authorization_code refresh_token") {
		t.Fatalf("clients add: %s", out)
	}
	rp.connect(t, issuer, "webapp", rpSecret)

	var meta struct {
		Authorization string   `json:"authorization_endpoint"`
		Userinfo      string   `json:"userinfo_endpoint"`
		EndSession    string   `json:"end_session_endpoint"`
		PKCE          []string `json:"code_challenge_methods_supported"`
		Grants        []string `json:"grant_types_supported"`
		AuthMethods   []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := rp.provider.Claims(&meta); err != nil || meta.Authorization != issuer+"/oauth/authorize" ||
		meta.Userinfo != issuer+"/oauth/userinfo" || meta.EndSession != issuer+"/oauth/logout" ||
		strings.Join(meta.PKCE, " ") != "S256" || !strings.Contains(strings.Join(meta.Grants, " "), "authorization_code refresh_token") ||
		!strings.Contains(strings.Join(meta.AuthMethods, " "), "none") {
		t.Fatalf("discovery: %+v %v", meta, err)
	}

	br := newBrowser(true)
	// 1. The app sends the browser to flowd, which asks the person to sign in.
	p := br.get(t, rp.srv.URL+"/login")
	form := loginForm(t, p)
	if !strings.HasPrefix(p.url, issuer+"/oauth/authorize?") || !strings.Contains(p.body, "Web App") {
		t.Fatalf("sign-in page at %s:\n%s", p.url, p.body)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options"} {
		if p.header.Get(h) == "" {
			t.Errorf("sign-in page without %s", h)
		}
	}
	// A wrong password: the same form again, one generic message.
	p = br.do(t, "POST", issuer+"/oauth/authorize", withLogin(form, "ada", "not the password"))
	if p.status != 401 || !strings.Contains(p.body, "Incorrect username or password.") {
		t.Fatalf("wrong password: %d %s", p.status, p.body)
	}
	form = loginForm(t, page{status: 200, body: p.body})
	// 2. The right password: code -> token -> ID token (nonce, at_hash) -> userinfo.
	p = br.do(t, "POST", issuer+"/oauth/authorize", withLogin(form, "ADA", adaPassword))
	if p.status != 200 || !strings.HasPrefix(p.body, "signed in as ") || !strings.HasPrefix(p.url, rp.srv.URL+"/callback?") {
		t.Fatalf("callback: %d at %s: %s", p.status, p.url, p.body)
	}
	first := rp.last()
	c := first.claims
	if c["iss"] != issuer || c["aud"] != "webapp" || c["azp"] != "webapp" || c["acr"] != "1" || c["at_hash"] == nil ||
		c["auth_time"] == nil || first.id.Nonce == "" {
		t.Fatalf("ID token claims: %v", c)
	}
	hdr := strings.SplitN(first.rawID, ".", 2)[0]
	if raw, _ := base64.RawURLEncoding.DecodeString(hdr); !strings.Contains(string(raw), `"alg":"RS256"`) {
		t.Fatalf("ID token header %s", raw)
	}
	ui := first.userinfo
	if ui["sub"] != first.id.Subject || ui["email"] != "ada@example.com" || ui["email_verified"] != true ||
		ui["name"] != "Ada Lovelace" || ui["preferred_username"] != "ada" {
		t.Fatalf("userinfo: %v", ui)
	}
	if first.token.RefreshToken == "" {
		t.Fatal("no refresh token")
	}

	// 3. A second sign-in skips the sign-in page: the provider session.
	br.seen = nil
	p = br.get(t, rp.srv.URL+"/login")
	if p.status != 200 || !strings.HasPrefix(p.body, "signed in as "+first.id.Subject) {
		t.Fatalf("second sign-in: %d %s", p.status, p.body)
	}
	second := rp.last()
	if second == first || second.claims["auth_time"] != first.claims["auth_time"] {
		t.Fatalf("the second ID token should carry the first sign-in's auth_time: %v vs %v", second.claims, first.claims)
	}

	// 4. Refresh: a new access token, a new refresh token, a new ID token
	// for the same person (no nonce after a refresh).
	ts := rp.conf.TokenSource(t.Context(), &oauth2.Token{RefreshToken: first.token.RefreshToken})
	tok, err := ts.Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok.AccessToken == first.token.AccessToken || tok.RefreshToken == "" || tok.RefreshToken == first.token.RefreshToken {
		t.Fatalf("refresh did not rotate: %+v", tok)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(t.Context(), rawID)
	if err != nil || idt.Subject != first.id.Subject || idt.Nonce != "" || idt.VerifyAccessToken(tok.AccessToken) != nil {
		t.Fatalf("refreshed ID token: %+v %v", idt, err)
	}
	if info, err := rp.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok)); err != nil || info.Email != "ada@example.com" {
		t.Fatalf("userinfo with the refreshed token: %+v %v", info, err)
	}

	// 5. Logout: back at the app with the state it sent; the session is gone.
	p = br.get(t, rp.srv.URL+"/logout?state=bye-"+url.QueryEscape("a b&c"))
	if p.status != 200 || p.body != "bye" || rp.byeState != "bye-a b&c" {
		t.Fatalf("logout: %d %s at %s, state %q", p.status, p.body, p.url, rp.byeState)
	}
	p = br.get(t, rp.srv.URL+"/login")
	loginForm(t, p) // the sign-in page again

	// Traces show the runs, never the secrets that went through them.
	adminTok, _ := os.ReadFile(filepath.Join(data, "admin.token"))
	auth := map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(adminTok))}
	for _, flow := range []string{"authorize", "token", "userinfo", "end-session"} {
		code, runs := s.get(t, "/admin/api/flows/"+flow+"/runs", auth)
		if code != 200 || !strings.Contains(runs, "[redacted]") {
			t.Fatalf("%s runs: %d %.300s", flow, code, runs)
		}
		for _, secret := range []string{adaPassword, rpSecret, form.Get("csrf"), form.Get("tx"), first.token.RefreshToken,
			tok.RefreshToken, first.token.AccessToken} {
			if strings.Contains(runs, secret) {
				t.Errorf("the %s flow's traces show a secret", flow)
			}
		}
	}
}

// provider is a running flowd with registered clients and users, and
// helpers for single protocol steps.
type provider struct {
	s      *server
	issuer string
	vars   map[string]string
}

const (
	webCB   = "http://127.0.0.1:9/cb"
	otherCB = "http://127.0.0.1:9/other-cb"
	spaCB   = "http://127.0.0.1:9/spa-cb"
	byeURI  = "http://127.0.0.1:9/bye"
)

func startProvider(t *testing.T) *provider {
	data := filepath.Join(t.TempDir(), "flowd-data")
	s := startServer(t, data)
	waitKeys(t, s)
	p := &provider{s: s, issuer: "http://" + s.addr, vars: map[string]string{"FLOWD_DATA": data}}
	mustCmd(t, p.vars, "users", "add", "--username", "ada", "--password", adaPassword, "--email", "ada@example.com")
	mustCmd(t, p.vars, "users", "add", "--username", "bob", "--password", "bobs password 123")
	mustCmd(t, p.vars, "clients", "add", "--id", "web", "--first-party", "--secret", rpSecret, "--scopes", "openid profile email",
		"--redirect-uris", webCB+" "+webCB+"?x=1", "--post-logout-redirect-uris", byeURI)
	mustCmd(t, p.vars, "clients", "add", "--id", "other", "--first-party", "--secret", "other-secret-0123456789", "--scopes", "openid",
		"--redirect-uris", otherCB)
	mustCmd(t, p.vars, "clients", "add", "--id", "spa", "--first-party", "--public", "--scopes", "openid profile", "--redirect-uris", spaCB)
	mustCmd(t, p.vars, "clients", "add", "--id", "svc", "--secret", "svc-secret-0123456789", "--scopes", "read")
	return p
}

func pkcePair() (verifier, challenge string) {
	verifier = oauth2.GenerateVerifier()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func (p *provider) authorizeURL(params url.Values) string {
	return p.issuer + "/oauth/authorize?" + params.Encode()
}

func authzParams(client, redirect, challenge string) url.Values {
	v := url.Values{"client_id": {client}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid profile email"}, "state": {"st-" + randomText()}, "nonce": {"n-" + randomText()}}
	if challenge != "" {
		v.Set("code_challenge", challenge)
		v.Set("code_challenge_method", "S256")
	}
	return v
}

// signIn runs authorize -> form -> post with a non-following browser and
// returns the redirect's query.
func (p *provider) signIn(t *testing.T, br *browser, params url.Values, user, pass string) url.Values {
	t.Helper()
	pg := br.get(t, p.authorizeURL(params))
	if pg.status == 302 {
		return p.redirectQuery(t, pg, params.Get("redirect_uri"))
	}
	return p.submitLogin(t, br, pg, user, pass, params.Get("redirect_uri"))
}

// submitLogin fills in and posts the sign-in form on pg and returns the
// query of the redirect to redirect that answers it.
func (p *provider) submitLogin(t *testing.T, br *browser, pg page, user, pass, redirect string) url.Values {
	t.Helper()
	pg = br.do(t, "POST", p.issuer+"/oauth/authorize", withLogin(loginForm(t, pg), user, pass))
	return p.redirectQuery(t, pg, redirect)
}

// tokensFor signs a person in through the web client in br and returns
// the token answer (access, refresh and ID token). Give each person a
// browser of their own: a shared one reuses the first person's session.
func (p *provider) tokensFor(t *testing.T, br *browser, user, pass string) map[string]any {
	t.Helper()
	verifier, challenge := pkcePair()
	q := p.signIn(t, br, authzParams("web", webCB, challenge), user, pass)
	status, body := p.exchange(t, "web", rpSecret, q.Get("code"), webCB, verifier)
	if status != 200 || body["access_token"] == nil || body["refresh_token"] == nil || body["id_token"] == nil {
		t.Fatalf("exchange %d %v", status, body)
	}
	return body
}

func (p *provider) redirectQuery(t *testing.T, pg page, redirect string) url.Values {
	t.Helper()
	loc := pg.header.Get("Location")
	if pg.status != 302 || !strings.HasPrefix(loc, redirect+"?") && !strings.HasPrefix(loc, redirect+"&") {
		t.Fatalf("want a redirect to %s, got %d Location %q\n%s", redirect, pg.status, loc, pg.body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// token posts to the token endpoint; user/pass is client_secret_basic.
func (p *provider) token(t *testing.T, form url.Values, user, pass string) (int, map[string]any) {
	t.Helper()
	status, _, body := postForm(t, p.s, "/oauth/token", form, user, pass)
	return status, body
}

func (p *provider) exchange(t *testing.T, client, secret, code, redirect, verifier string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	if secret == "" {
		form.Set("client_id", client)
		return p.token(t, form, "", "")
	}
	return p.token(t, form, client, secret)
}

func (p *provider) userinfo(t *testing.T, at string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", p.issuer+"/oauth/userinfo", nil)
	if at != "" {
		req.Header.Set("Authorization", "Bearer "+at)
	}
	resp, err := p.s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)
}

func wantOAuthError(t *testing.T, status int, body map[string]any, wantStatus int, code string) {
	t.Helper()
	if status != wantStatus || body["error"] != code {
		t.Fatalf("got %d %v, want %d %s", status, body, wantStatus, code)
	}
	for _, k := range []string{"access_token", "id_token", "refresh_token"} {
		if _, ok := body[k]; ok {
			t.Fatalf("an error answer carries %s: %v", k, body)
		}
	}
}

// TestPeopleProtocolAttacks drives single protocol steps against the
// prebuilt flows and checks each refusal.
func TestPeopleProtocolAttacks(t *testing.T) {
	p := startProvider(t)

	// A signed-in browser and a fresh code for web (confidential, PKCE).
	freshCode := func(t *testing.T, br *browser, client, redirect string) (code, verifier string, q url.Values) {
		t.Helper()
		verifier, challenge := pkcePair()
		params := authzParams(client, redirect, challenge)
		q = p.signIn(t, br, params, "ada", adaPassword)
		if q.Get("code") == "" || q.Get("state") != params.Get("state") || q.Get("iss") != p.issuer {
			t.Fatalf("authorization response %v", q)
		}
		return q.Get("code"), verifier, q
	}
	br := newBrowser(false)

	t.Run("redirect_uri not registered is never redirected to", func(t *testing.T) {
		for _, tc := range []struct{ name, client, redirect string }{
			{"other host", "web", "https://evil.example/cb"},
			{"one character more", "web", webCB + "x"},
			{"one character less", "web", webCB[:len(webCB)-1]},
			{"trailing slash", "web", webCB + "/"},
			{"upper case", "web", strings.ToUpper(webCB)},
			{"path traversal", "web", webCB + "/../evil"},
			{"user info", "web", "http://127.0.0.1:9@evil.example/cb"},
			{"fragment", "web", webCB + "#frag"},
			{"different query", "web", webCB + "?x=2"},
			{"scheme relative", "web", "//evil.example/cb"},
			{"javascript", "web", "javascript:alert(1)"},
			{"missing", "web", ""},
			{"another client's", "web", otherCB},
			{"unknown client", "nobody", webCB},
			{"no client", "", webCB},
		} {
			t.Run(tc.name, func(t *testing.T) {
				params := authzParams(tc.client, tc.redirect, "")
				params.Set("response_type", "token") // would be an error redirect if the URI were good
				pg := br.get(t, p.authorizeURL(params))
				if pg.status != 400 || pg.header.Get("Location") != "" || !strings.Contains(pg.body, "Cannot continue") ||
					!strings.HasPrefix(pg.header.Get("Content-Type"), "text/html") {
					t.Fatalf("%d Location %q\n%s", pg.status, pg.header.Get("Location"), pg.body)
				}
			})
		}
	})

	t.Run("errors go to the registered redirect_uri with state", func(t *testing.T) {
		_, challenge := pkcePair()
		for _, tc := range []struct {
			name     string
			client   string
			redirect string
			change   func(v url.Values)
			code     string
		}{
			{"response_type token", "web", webCB, func(v url.Values) { v.Set("response_type", "token") }, "unsupported_response_type"},
			{"no response_type", "web", webCB, func(v url.Values) { v.Del("response_type") }, "invalid_request"},
			{"no openid scope", "web", webCB, func(v url.Values) { v.Set("scope", "profile") }, "invalid_scope"},
			{"only scopes not allowed (ignored: no openid left)", "web", webCB, func(v url.Values) { v.Set("scope", "admin root") }, "invalid_scope"},
			{"public client without PKCE", "spa", spaCB, func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }, "invalid_request"},
			{"plain PKCE", "spa", spaCB, func(v url.Values) { v.Set("code_challenge_method", "plain") }, "invalid_request"},
			{"PKCE method missing", "web", webCB, func(v url.Values) { v.Del("code_challenge_method") }, "invalid_request"},
			{"malformed challenge", "web", webCB, func(v url.Values) { v.Set("code_challenge", "short") }, "invalid_request"},
			{"unknown prompt", "web", webCB, func(v url.Values) { v.Set("prompt", "everything") }, "invalid_request"},
			{"prompt none with login", "web", webCB, func(v url.Values) { v.Set("prompt", "none login") }, "invalid_request"},
			{"prompt none without session", "web", webCB, func(v url.Values) { v.Set("prompt", "none") }, "login_required"},
			{"request object", "web", webCB, func(v url.Values) { v.Set("request", "eyJhbGciOiJub25lIn0.e30.") }, "request_not_supported"},
			{"response_mode fragment", "web", webCB, func(v url.Values) { v.Set("response_mode", "fragment") }, "invalid_request"},
			{"repeated scope", "web", webCB, func(v url.Values) { v.Add("scope", "openid") }, "invalid_request"},
			{"bad max_age", "web", webCB, func(v url.Values) { v.Set("max_age", "-1") }, "invalid_request"},
			{"client without the code grant", "svc", "", nil, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.client == "svc" {
					// svc registered no redirect URI: nothing may be redirected.
					pg := newBrowser(false).get(t, p.authorizeURL(authzParams("svc", webCB, challenge)))
					if pg.status != 400 || pg.header.Get("Location") != "" {
						t.Fatalf("%d %q", pg.status, pg.header.Get("Location"))
					}
					return
				}
				params := authzParams(tc.client, tc.redirect, challenge)
				params.Set("state", "s/t+a&t=e %é")
				tc.change(params)
				pg := newBrowser(false).get(t, p.authorizeURL(params))
				q := p.redirectQuery(t, pg, tc.redirect)
				if q.Get("error") != tc.code || q.Get("state") != "s/t+a&t=e %é" || q.Get("iss") != p.issuer || q.Get("code") != "" {
					t.Fatalf("redirect query %v, want error %s", q, tc.code)
				}
			})
		}
	})

	t.Run("state and nonce echoed exactly", func(t *testing.T) {
		verifier, challenge := pkcePair()
		params := authzParams("web", webCB+"?x=1", challenge)
		state := `s p/a+c=e&"<é>%20` + strings.Repeat("z", 300)
		nonce := `n o/n+c=e&"<é>%20`
		params.Set("state", state)
		params.Set("nonce", nonce)
		q := p.signIn(t, newBrowser(false), params, "ada", adaPassword)
		if q.Get("state") != state || q.Get("x") != "1" {
			t.Fatalf("state %q, query %v", q.Get("state"), q)
		}
		status, body := p.exchange(t, "web", rpSecret, q.Get("code"), webCB+"?x=1", verifier)
		if status != 200 {
			t.Fatalf("exchange %d %v", status, body)
		}
		claims := decodeClaims(t, body["id_token"].(string))
		if claims["nonce"] != nonce || claims["aud"] != "web" {
			t.Fatalf("ID token %v", claims)
		}
	})

	t.Run("PKCE verifier missing or wrong", func(t *testing.T) {
		code, _, _ := freshCode(t, br, "web", webCB)
		status, body := p.exchange(t, "web", rpSecret, code, webCB, "")
		wantOAuthError(t, status, body, 400, "invalid_grant")
		code, _, _ = freshCode(t, br, "web", webCB)
		wrong, _ := pkcePair()
		status, body = p.exchange(t, "web", rpSecret, code, webCB, wrong)
		wantOAuthError(t, status, body, 400, "invalid_grant")
		// A verifier for a code issued without a challenge: refused too.
		params := authzParams("web", webCB, "")
		q := p.signIn(t, br, params, "ada", adaPassword)
		status, body = p.exchange(t, "web", rpSecret, q.Get("code"), webCB, wrong)
		wantOAuthError(t, status, body, 400, "invalid_grant")
	})

	t.Run("public client: PKCE instead of a secret", func(t *testing.T) {
		verifier, challenge := pkcePair()
		q := p.signIn(t, br, authzParams("spa", spaCB, challenge), "ada", adaPassword)
		status, body := p.exchange(t, "spa", "", q.Get("code"), spaCB, verifier)
		if status != 200 || body["id_token"] == nil || body["refresh_token"] == nil {
			t.Fatalf("public exchange %d %v", status, body)
		}
		// Claiming to be a public client does not work for a confidential one.
		code, verifier2, _ := freshCode(t, br, "web", webCB)
		status, body = p.exchange(t, "web", "", code, webCB, verifier2)
		wantOAuthError(t, status, body, 401, "invalid_client")
		// A public client cannot use client_credentials.
		status, body = p.token(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {"spa"}}, "", "")
		wantOAuthError(t, status, body, 400, "unauthorized_client")
	})

	t.Run("code reused: refused, and what it issued is revoked", func(t *testing.T) {
		code, verifier, _ := freshCode(t, br, "web", webCB)
		status, body := p.exchange(t, "web", rpSecret, code, webCB, verifier)
		if status != 200 {
			t.Fatalf("first exchange %d %v", status, body)
		}
		at, rt := body["access_token"].(string), body["refresh_token"].(string)
		if code, _, info := p.userinfo(t, at); code != 200 || !strings.Contains(info, `"email":"ada@example.com"`) {
			t.Fatalf("userinfo before the replay: %d %s", code, info)
		}
		status, body = p.exchange(t, "web", rpSecret, code, webCB, verifier)
		wantOAuthError(t, status, body, 400, "invalid_grant")
		if code, www, _ := p.userinfo(t, at); code != 401 || !strings.Contains(www, "grant_revoked") {
			t.Fatalf("userinfo after the replay: %d %q", code, www)
		}
		status, body = p.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web", rpSecret)
		wantOAuthError(t, status, body, 400, "invalid_grant")
	})

	t.Run("code redeemed concurrently: one winner at most", func(t *testing.T) {
		code, verifier, _ := freshCode(t, br, "web", webCB)
		var wg sync.WaitGroup
		results := make([]int, 8)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}, "code_verifier": {verifier}}
				req, _ := http.NewRequest("POST", p.issuer+"/oauth/token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth("web", rpSecret)
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					results[i] = resp.StatusCode
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		if n := strings.Count(fmt.Sprint(results), "200"); n > 1 {
			t.Fatalf("%d exchanges of one code succeeded: %v", n, results)
		}
	})

	t.Run("code from another client", func(t *testing.T) {
		code, verifier, _ := freshCode(t, br, "web", webCB)
		status, body := p.exchange(t, "other", "other-secret-0123456789", code, webCB, verifier)
		wantOAuthError(t, status, body, 400, "invalid_grant")
		status, body = p.exchange(t, "other", "other-secret-0123456789", code, otherCB, verifier)
		wantOAuthError(t, status, body, 400, "invalid_grant")
		// Not spent by the other client: its owner still redeems it.
		if status, body := p.exchange(t, "web", rpSecret, code, webCB, verifier); status != 200 {
			t.Fatalf("owner exchange %d %v", status, body)
		}
	})

	t.Run("redirect_uri differs at the token endpoint", func(t *testing.T) {
		code, verifier, _ := freshCode(t, br, "web", webCB)
		status, body := p.exchange(t, "web", rpSecret, code, webCB+"?x=1", verifier)
		wantOAuthError(t, status, body, 400, "invalid_grant")
	})

	t.Run("wrong client secret", func(t *testing.T) {
		code, verifier, _ := freshCode(t, br, "web", webCB)
		status, body := p.exchange(t, "web", "wrong-secret-0123456789", code, webCB, verifier)
		wantOAuthError(t, status, body, 401, "invalid_client")
		status, body = p.exchange(t, "web", rpSecret, code, webCB, verifier)
		if status != 200 {
			t.Fatalf("the code must survive a failed client authentication: %d %v", status, body)
		}
	})

	t.Run("garbage codes", func(t *testing.T) {
		for _, code := range []string{"x", strings.Repeat("A", 43), strings.Repeat("A", 5000), "../../etc"} {
			status, body := p.exchange(t, "web", rpSecret, code, webCB, "")
			wantOAuthError(t, status, body, 400, "invalid_grant")
		}
		status, body := p.exchange(t, "web", rpSecret, "", webCB, "")
		wantOAuthError(t, status, body, 400, "invalid_request")
	})

	t.Run("refresh token reuse revokes the grant", func(t *testing.T) {
		code, verifier, _ := freshCode(t, br, "web", webCB)
		_, body := p.exchange(t, "web", rpSecret, code, webCB, verifier)
		rt1 := body["refresh_token"].(string)
		refresh := func(rt string) (int, map[string]any) {
			return p.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web", rpSecret)
		}
		status, body := refresh(rt1)
		if status != 200 || body["refresh_token"] == rt1 {
			t.Fatalf("refresh %d %v", status, body)
		}
		rt2, at2 := body["refresh_token"].(string), body["access_token"].(string)
		// Narrowing works, widening does not.
		status, body = p.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}, "scope": {"openid admin"}}, "web", rpSecret)
		wantOAuthError(t, status, body, 400, "invalid_scope")
		// Another client cannot use it.
		status, body = p.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}}, "other", "other-secret-0123456789")
		wantOAuthError(t, status, body, 400, "invalid_grant")
		// The app lost the answer (a timeout): presenting rt1 again within
		// the grace period is a retry, answered with the same rt2.
		status, body = refresh(rt1)
		if status != 200 || body["refresh_token"] != rt2 || body["access_token"] == at2 {
			t.Fatalf("retry within the grace period: %d %v", status, body)
		}
		// The app moves on to rt3; from then on rt1 is stale.
		status, body = refresh(rt2)
		if status != 200 || body["refresh_token"] == rt2 {
			t.Fatalf("refresh %d %v", status, body)
		}
		rt3 := body["refresh_token"].(string)
		// The stolen first token comes back: everything of the grant ends.
		status, body = refresh(rt1)
		wantOAuthError(t, status, body, 400, "invalid_grant")
		status, body = refresh(rt3)
		wantOAuthError(t, status, body, 400, "invalid_grant")
		if code, www, _ := p.userinfo(t, at2); code != 401 || !strings.Contains(www, "grant_revoked") {
			t.Fatalf("userinfo after reuse: %d %q", code, www)
		}
	})

	t.Run("userinfo needs a person's token", func(t *testing.T) {
		if code, www, _ := p.userinfo(t, ""); code != 401 || !strings.HasPrefix(www, "Bearer") {
			t.Fatalf("no token: %d %q", code, www)
		}
		_, body := p.token(t, url.Values{"grant_type": {"client_credentials"}}, "svc", "svc-secret-0123456789")
		if code, www, _ := p.userinfo(t, body["access_token"].(string)); code != 401 || !strings.Contains(www, "not_a_user_token") {
			t.Fatalf("client token: %d %q", code, www)
		}
	})

	t.Run("login form: CSRF and browser binding", func(t *testing.T) {
		b1 := newBrowser(false)
		form := loginForm(t, b1.get(t, p.authorizeURL(authzParams("web", webCB, ""))))
		// Another browser (no binding cookie) posting this form: refused.
		pg := newBrowser(false).do(t, "POST", p.issuer+"/oauth/authorize", withLogin(form, "ada", adaPassword))
		if pg.status != 400 || pg.header.Get("Location") != "" || pg.header.Get("Set-Cookie") != "" {
			t.Fatalf("foreign browser: %d %v", pg.status, pg.header)
		}
		bad := withLogin(form, "ada", adaPassword)
		bad.Set("csrf", strings.Repeat("A", 43))
		if pg := b1.do(t, "POST", p.issuer+"/oauth/authorize", bad); pg.status != 400 || pg.header.Get("Location") != "" {
			t.Fatalf("wrong csrf: %d", pg.status)
		}
		// The right browser and token still work, once.
		pg = b1.do(t, "POST", p.issuer+"/oauth/authorize", withLogin(form, "ada", adaPassword))
		if pg.status != 302 {
			t.Fatalf("right post: %d %s", pg.status, pg.body)
		}
		if pg := b1.do(t, "POST", p.issuer+"/oauth/authorize", withLogin(form, "ada", adaPassword)); pg.status != 400 {
			t.Fatalf("replayed form: %d", pg.status)
		}
	})

	t.Run("sign-in cookies: tabs, tampering, max_age=0", func(t *testing.T) {
		b := newBrowser(false)
		tab1 := loginForm(t, b.get(t, p.authorizeURL(authzParams("web", webCB, ""))))
		tab2 := loginForm(t, b.get(t, p.authorizeURL(authzParams("web", webCB, ""))))
		// Both pending sign-ins of one browser sign in, in either order.
		for i, form := range []url.Values{tab2, tab1} {
			pg := b.do(t, "POST", p.issuer+"/oauth/authorize", withLogin(form, "ada", adaPassword))
			if pg.status != 302 || !strings.Contains(pg.header.Get("Location"), "code=") {
				t.Fatalf("tab %d: %d %s", 2-i, pg.status, pg.body)
			}
		}
		// A signed-in person asked with max_age=0 signs in again.
		params := authzParams("web", webCB, "")
		params.Set("max_age", "0")
		loginForm(t, b.get(t, p.authorizeURL(params)))
		// A changed sign-in cookie: the error page, nothing signed in.
		c := newBrowser(false)
		form := loginForm(t, c.get(t, p.authorizeURL(authzParams("web", webCB, ""))))
		u, _ := url.Parse(p.issuer + "/oauth/authorize")
		name := "flowd_tx_" + form.Get("tx")
		for _, ck := range c.jar.Cookies(u) {
			if ck.Name == name {
				v := []byte(ck.Value)
				v[10] = map[bool]byte{true: 'B', false: 'A'}[v[10] == 'A']
				c.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: string(v), Path: "/"}})
			}
		}
		pg := c.do(t, "POST", p.issuer+"/oauth/authorize", withLogin(form, "ada", adaPassword))
		if pg.status != 400 || pg.header.Get("Location") != "" || !strings.Contains(pg.body, "could not be verified") ||
			strings.Contains(pg.header.Get("Set-Cookie"), "flowd_session") {
			t.Fatalf("tampered sign-in cookie: %d %v\n%s", pg.status, pg.header, pg.body)
		}
	})

	t.Run("cookies", func(t *testing.T) {
		b1 := newBrowser(false)
		pg := b1.get(t, p.authorizeURL(authzParams("web", webCB, "")))
		form := loginForm(t, pg)
		pg = b1.do(t, "POST", p.issuer+"/oauth/authorize", withLogin(form, "bob", "bobs password 123"))
		var sess string
		for _, c := range pg.header.Values("Set-Cookie") {
			if strings.HasPrefix(c, "flowd_session=") {
				sess = c
			}
		}
		if sess == "" || !strings.Contains(sess, "HttpOnly") || !strings.Contains(sess, "SameSite=Lax") || !strings.Contains(sess, "Path=/") {
			t.Fatalf("session cookie %q", sess)
		}
		// prompt=login asks again despite the session; max_age=0 too.
		for _, change := range []func(url.Values){func(v url.Values) { v.Set("prompt", "login") }, func(v url.Values) { v.Set("max_age", "0") }} {
			params := authzParams("web", webCB, "")
			change(params)
			time.Sleep(1100 * time.Millisecond) // max_age counts whole seconds
			loginForm(t, b1.get(t, p.authorizeURL(params)))
		}
		// prompt=none with the session: a code at once.
		params := authzParams("web", webCB, "")
		params.Set("prompt", "none")
		if q := p.redirectQuery(t, b1.get(t, p.authorizeURL(params)), webCB); q.Get("code") == "" {
			t.Fatalf("prompt=none with a session: %v", q)
		}
	})

	t.Run("logout redirects only where registered", func(t *testing.T) {
		b1 := newBrowser(false)
		code, verifier, _ := freshCode(t, b1, "web", webCB)
		_, body := p.exchange(t, "web", rpSecret, code, webCB, verifier)
		idToken := body["id_token"].(string)
		for _, tc := range []struct {
			name   string
			params url.Values
		}{
			{"unregistered", url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://evil.example/"}}},
			{"one character more", url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {byeURI + "x"}}},
			{"a redirect URI is not a logout URI", url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {webCB}}},
			{"no hint and no client", url.Values{"post_logout_redirect_uri": {byeURI}}},
			{"client not in the hint", url.Values{"id_token_hint": {idToken}, "client_id": {"other"}, "post_logout_redirect_uri": {byeURI}}},
			{"forged hint", url.Values{"id_token_hint": {idToken[:len(idToken)-4] + "AAAA"}, "post_logout_redirect_uri": {byeURI}}},
			{"access token as hint", url.Values{"id_token_hint": {body["access_token"].(string)}, "post_logout_redirect_uri": {byeURI}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				pg := b1.get(t, p.issuer+"/oauth/logout?"+tc.params.Encode())
				if pg.status != 400 || pg.header.Get("Location") != "" {
					t.Fatalf("%d Location %q", pg.status, pg.header.Get("Location"))
				}
			})
		}
		// The session survived every refused logout.
		params := authzParams("web", webCB, "")
		params.Set("prompt", "none")
		if q := p.redirectQuery(t, b1.get(t, p.authorizeURL(params)), webCB); q.Get("code") == "" {
			t.Fatalf("session lost: %v", q)
		}
		// client_id alone names the client too; without a hint the person
		// is asked first (the next subtest), then sent back.
		pg := b1.get(t, p.issuer+"/oauth/logout?"+url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {byeURI}, "state": {"x y"}}.Encode())
		pg = b1.do(t, "POST", p.issuer+"/oauth/logout", logoutForm(t, pg, "logout"))
		if pg.status != 302 || pg.header.Get("Location") != byeURI+"?state=x+y" {
			t.Fatalf("logout: %d %q", pg.status, pg.header.Get("Location"))
		}
		q := p.redirectQuery(t, b1.get(t, p.authorizeURL(params)), webCB)
		if q.Get("error") != "login_required" {
			t.Fatalf("after logout: %v", q)
		}
		// No session left and no redirect URI: a signed-out page.
		if pg := b1.get(t, p.issuer+"/oauth/logout"); pg.status != 200 || !strings.Contains(pg.body, "signed out") {
			t.Fatalf("plain logout: %d %s", pg.status, pg.body)
		}
	})

	t.Run("logout without a hint for the session asks first", func(t *testing.T) {
		alive := func(br *browser) bool {
			t.Helper()
			params := authzParams("web", webCB, "")
			params.Set("prompt", "none")
			return p.redirectQuery(t, br.get(t, p.authorizeURL(params)), webCB).Get("code") != ""
		}
		logoutURL := p.issuer + "/oauth/logout?" + url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {byeURI}, "state": {"s1"}}.Encode()
		victim, attacker := newBrowser(false), newBrowser(false)
		freshCode(t, victim, "web", webCB)
		verifier, challenge := pkcePair()
		q := p.signIn(t, attacker, authzParams("web", webCB, challenge), "bob", "bobs password 123")
		_, body := p.exchange(t, "web", rpSecret, q.Get("code"), webCB, verifier)
		attackerHint := body["id_token"].(string)

		// A cross-site GET (an image, a link): the question, nothing more.
		pg := victim.get(t, logoutURL)
		if pg.status != 200 || pg.header.Get("Location") != "" || pg.header.Get("Set-Cookie") != "" ||
			!strings.Contains(pg.body, `action="/oauth/logout"`) || strings.Contains(pg.body, "<script") ||
			!strings.Contains(pg.header.Get("Content-Security-Policy"), "default-src 'none'") ||
			pg.header.Get("X-Frame-Options") != "DENY" || pg.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("question: %d %v\n%s", pg.status, pg.header, pg.body)
		}
		victimForm := logoutForm(t, pg, "logout")
		// Someone else's ID token is no hint for this session.
		logoutForm(t, victim.get(t, p.issuer+"/oauth/logout?"+url.Values{"id_token_hint": {attackerHint}, "post_logout_redirect_uri": {byeURI}}.Encode()), "logout")
		attackerForm := logoutForm(t, attacker.get(t, logoutURL), "logout")

		for _, tc := range []struct {
			name string
			br   *browser
			form url.Values
		}{
			{"no token (a cross-site form)", victim, url.Values{"action": {"logout"}, "client_id": {"web"}, "post_logout_redirect_uri": {byeURI}}},
			{"made-up token", victim, url.Values{"csrf": {strings.Repeat("A", 43)}, "action": {"logout"}}},
			{"the attacker's token", victim, attackerForm},
			{"the victim's token from another browser", newBrowser(false), victimForm},
			{"the victim's token in the attacker's session", attacker, victimForm},
			{"token with a smuggled redirect", victim, url.Values{"csrf": {strings.Repeat("B", 43)}, "action": {"logout"}, "client_id": {"web"}, "post_logout_redirect_uri": {"https://evil.example/"}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				pg := tc.br.do(t, "POST", p.issuer+"/oauth/logout", tc.form)
				if strings.HasPrefix(pg.header.Get("Location"), "https://evil.example") || pg.status == 302 || pg.header.Get("Set-Cookie") != "" {
					t.Fatalf("%d %v\n%s", pg.status, pg.header, pg.body)
				}
			})
		}
		if !alive(victim) || !alive(attacker) {
			t.Fatal("a forged answer ended a session")
		}

		// Stay signed in: nothing changes, and the token is spent.
		form := logoutForm(t, victim.get(t, logoutURL), "stay")
		if pg := victim.do(t, "POST", p.issuer+"/oauth/logout", form); pg.status != 200 || !strings.Contains(pg.body, "not been signed out") || pg.header.Get("Location") != "" {
			t.Fatalf("stay: %d %s", pg.status, pg.body)
		}
		form.Set("action", "logout")
		if pg := victim.do(t, "POST", p.issuer+"/oauth/logout", form); pg.status != 400 || pg.header.Get("Location") != "" {
			t.Fatalf("the answered question again: %d %v", pg.status, pg.header)
		}
		if !alive(victim) {
			t.Fatal("stay signed in ended the session")
		}

		// Sign out: the registered redirect with state, the cookie deleted.
		pg = victim.do(t, "POST", p.issuer+"/oauth/logout", victimForm)
		if pg.status != 302 || pg.header.Get("Location") != byeURI+"?state=s1" || !strings.Contains(pg.header.Get("Set-Cookie"), "Max-Age=0") {
			t.Fatalf("sign out: %d %v", pg.status, pg.header)
		}
		if alive(victim) {
			t.Fatal("signed out, still alive")
		}
		// Replayed: refused, even after signing in again.
		freshCode(t, victim, "web", webCB)
		if pg := victim.do(t, "POST", p.issuer+"/oauth/logout", victimForm); pg.status != 400 || pg.header.Get("Location") != "" {
			t.Fatalf("replay: %d %v", pg.status, pg.header)
		}
		if !alive(victim) {
			t.Fatal("a replayed answer ended the new session")
		}
	})

	t.Run("loopback redirect URIs: any port, nothing else", func(t *testing.T) {
		port := strings.Replace(spaCB, ":9/", ":50123/", 1)
		verifier, challenge := pkcePair()
		q := p.signIn(t, br, authzParams("spa", port, challenge), "ada", adaPassword)
		for _, other := range []string{spaCB, strings.Replace(spaCB, ":9/", "/", 1), strings.Replace(spaCB, ":9/", ":50124/", 1)} {
			status, body := p.exchange(t, "spa", "", q.Get("code"), other, verifier)
			wantOAuthError(t, status, body, 400, "invalid_grant")
		}
		q = p.signIn(t, br, authzParams("spa", port, challenge), "ada", adaPassword)
		if status, body := p.exchange(t, "spa", "", q.Get("code"), port, verifier); status != 200 || body["id_token"] == nil {
			t.Fatalf("exchange with the request's port: %d %v", status, body)
		}
		for _, redirect := range []string{
			"http://127.0.0.1.evil.example:50123/spa-cb",
			"http://127.0.0.1:50123@evil.example/spa-cb",
			"http://localhost:50123/spa-cb",
			"http://[::1]:50123/spa-cb",
			"https://127.0.0.1:50123/spa-cb",
			"http://127.0.0.1:50123/spa-cb/../cb",
			"http://127.0.0.1:50123/spa-cb?x=1",
			"http://127.0.0.1:65536/spa-cb",
			"http://127.0.0.2:50123/spa-cb",
		} {
			params := authzParams("spa", redirect, challenge)
			params.Set("response_type", "token") // would be an error redirect if the URI were good
			if pg := br.get(t, p.authorizeURL(params)); pg.status != 400 || pg.header.Get("Location") != "" {
				t.Fatalf("%s: %d Location %q", redirect, pg.status, pg.header.Get("Location"))
			}
		}
	})
}

var logoutRE = regexp.MustCompile(`<input type="hidden" name="csrf" value="([^"]*)"`)

// logoutForm reads the sign-out question and answers it with action
// (logout or stay).
func logoutForm(t *testing.T, p page, action string) url.Values {
	t.Helper()
	m := logoutRE.FindStringSubmatch(p.body)
	if p.status != 200 || !strings.Contains(p.body, `data-testid="logout-form"`) || m == nil {
		t.Fatalf("expected the sign-out question, got %d at %s:\n%s", p.status, p.url, p.body)
	}
	return url.Values{"csrf": {html.UnescapeString(m[1])}, "action": {action}}
}

// TestPeopleExpiredCode: a person shortens the code lifetime in the
// authorize flow (export, edit, import --deploy); a code used after it is
// refused.
func TestPeopleExpiredCode(t *testing.T) {
	p := startProvider(t)
	p.redeployNode(t, "authorize", "code", map[string]any{"ttl": "5s"})

	verifier, challenge := pkcePair()
	q := p.signIn(t, newBrowser(false), authzParams("web", webCB, challenge), "ada", adaPassword)
	time.Sleep(6 * time.Second)
	status, body := p.exchange(t, "web", rpSecret, q.Get("code"), webCB, verifier)
	wantOAuthError(t, status, body, 400, "invalid_grant")
}

// TestPeopleLoginThrottle: guessing a password gets slower, the answers
// never say whether the user exists.
func TestPeopleLoginThrottle(t *testing.T) {
	p := startProvider(t)
	b := newBrowser(false)
	form := loginForm(t, b.get(t, p.authorizeURL(authzParams("web", webCB, ""))))
	var bodies []string
	for i, user := range []string{"ada", "ada", "ada", "ada", "ada"} {
		pg := b.do(t, "POST", p.issuer+"/oauth/authorize", withLogin(form, user, "guess-"+strconv.Itoa(i)))
		if pg.status != 401 || !strings.Contains(pg.body, "Incorrect username or password.") {
			t.Fatalf("guess %d: %d %s", i, pg.status, pg.body)
		}
		bodies = append(bodies, pg.body)
	}
	// The sixth attempt is refused before the password is even looked at,
	// right or wrong.
	pg := b.do(t, "POST", p.issuer+"/oauth/authorize", withLogin(form, "ada", adaPassword))
	retry, _ := strconv.Atoi(pg.header.Get("Retry-After"))
	if pg.status != 429 || retry < 1 || !strings.Contains(pg.body, "Too many sign-in attempts") {
		t.Fatalf("throttled: %d %q %s", pg.status, pg.header.Get("Retry-After"), pg.body)
	}
	// An unknown user gets the very same answers.
	for i := range 5 {
		pg := b.do(t, "POST", p.issuer+"/oauth/authorize", withLogin(form, "nobody", "guess-"+strconv.Itoa(i)))
		if pg.status != 401 || pg.body != strings.Replace(bodies[0], `value="ada"`, `value="nobody"`, 1) {
			t.Fatalf("unknown user guess %d: %d\n%s\nvs\n%s", i, pg.status, pg.body, bodies[0])
		}
	}
	if pg := b.do(t, "POST", p.issuer+"/oauth/authorize", withLogin(form, "nobody", "x")); pg.status != 429 {
		t.Fatalf("unknown user throttled: %d", pg.status)
	}
	// After the wait, the right password works and the count is forgotten.
	time.Sleep(time.Duration(retry)*time.Second + 100*time.Millisecond)
	pg = b.do(t, "POST", p.issuer+"/oauth/authorize", withLogin(form, "ada", adaPassword))
	if pg.status != 302 {
		t.Fatalf("after the wait: %d %s", pg.status, pg.body)
	}
}

// TestPeopleCLI: users and browser clients from the command line, on the
// data folder directly (no server) and through a server's admin API.
func TestPeopleCLI(t *testing.T) {
	data := filepath.Join(t.TempDir(), "flowd-data")
	vars := map[string]string{"FLOWD_DATA": data}
	// A data folder exists after one start; stop it so the CLI opens the store itself.
	// The first start's key rotation runs in the background: shutting
	// down while it is in flight is an error once serve's 30 s grace
	// passes (RSA-3072 under -race on a loaded machine can take longer).
	s := startServer(t, data)
	waitKeys(t, s)
	s.shutdown(t)

	var out, errb enginetest.LogBuffer
	code := run(t.Context(), []string{"users", "add", "--username", "grace", "--password-stdin", "--name", "Grace Hopper"},
		envOf(vars), strings.NewReader("a long enough password\n"), &out, &errb)
	if code != 0 || !strings.Contains(out.String(), `added user "grace"`) {
		t.Fatalf("users add --password-stdin: %d %s %s", code, out.String(), errb.String())
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"duplicate", []string{"users", "add", "--username", "GRACE", "--password", "another password"}, 1, "already exists"},
		{"short password", []string{"users", "add", "--username", "bob", "--password", "short"}, 1, "at least 8"},
		{"no password", []string{"users", "add", "--username", "bob"}, 2, "exactly one of --password"},
		{"no username", []string{"users", "add", "--password", "long enough pw"}, 2, "--username is required"},
		{"remove unknown", []string{"users", "remove", "nobody"}, 1, "not found"},
		{"sign out unknown", []string{"users", "signout", "nobody"}, 1, "not found"},
		{"sign out whom", []string{"users", "signout"}, 2, "name one username"},
		{"sign out, no sessions", []string{"users", "signout", "GRACE"}, 0, `signed "grace" out everywhere: 0 session(s) ended`},
		{"set password", []string{"users", "set-password", "GRACE", "--password", "grace's new password"}, 0,
			`set a new password for "grace" and signed them out everywhere: 0 session(s) ended`},
		{"set password too short", []string{"users", "set-password", "grace", "--password", "short"}, 1, "at least 8"},
		{"set password of nobody", []string{"users", "set-password", "nobody", "--password", "long enough pw"}, 1, "not found"},
		{"set password, whom", []string{"users", "set-password", "--password", "long enough pw"}, 2, "use: flowd users set-password USERNAME"},
		{"set password, no password", []string{"users", "set-password", "grace"}, 2, "exactly one of --password"},
		{"bad redirect URI", []string{"clients", "add", "--id", "app", "--redirect-uris", "http://evil.example/cb"}, 1, "loopback"},
		{"public with client_credentials", []string{"clients", "add", "--id", "app", "--public", "--redirect-uris", "http://127.0.0.1/cb", "--grant-types", "client_credentials"}, 1, "public client cannot"},
		{"unknown grant", []string{"clients", "add", "--id", "app", "--grant-types", "password"}, 1, "grant type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := flowdCmd(t, vars, tc.args...)
			if code != tc.code || !strings.Contains(out+errs, tc.msg) {
				t.Fatalf("%d %s %s", code, out, errs)
			}
		})
	}
	out2 := mustCmd(t, vars, "clients", "add", "--id", "mobile", "--public", "--scopes", "openid", "--redirect-uris", "com.example.app:/cb")
	if !strings.Contains(out2, "public client, grant types: authorization_code refresh_token") || strings.Contains(out2, "secret") {
		t.Fatalf("public client: %s", out2)
	}
	if out := mustCmd(t, vars, "clients", "list"); !regexp.MustCompile(`mobile\s+public\s+authorization_code refresh_token`).MatchString(out) {
		t.Fatalf("clients list: %s", out)
	}

	// Through a running server's admin API.
	s = startServer(t, data)
	waitKeys(t, s)
	if out := mustCmd(t, vars, "users", "list"); !strings.Contains(out, "grace") || !strings.Contains(out, "Grace Hopper") {
		t.Fatalf("users list: %s", out)
	}
	mustCmd(t, vars, "users", "add", "--username", "bob", "--password", "bobs password 123")
	if out := mustCmd(t, vars, "users", "signout", "bob"); !strings.Contains(out, `signed "bob" out everywhere: 0 session(s) ended`) {
		t.Fatalf("signout through the API: %s", out)
	}
	if code, _, errs := flowdCmd(t, vars, "users", "signout", "nobody"); code != 1 || !strings.Contains(errs, "not found") {
		t.Fatalf("signout of an unknown user through the API: %d %s", code, errs)
	}
	var setOut, setErr enginetest.LogBuffer
	code = run(t.Context(), []string{"users", "set-password", "bob", "--password-stdin"}, envOf(vars), strings.NewReader("bobs new password 456\n"), &setOut, &setErr)
	if code != 0 || !strings.Contains(setOut.String(), `set a new password for "bob" and signed them out everywhere: 0 session(s) ended`) {
		t.Fatalf("set-password through the API: %d %s %s", code, setOut.String(), setErr.String())
	}
	if code, _, errs := flowdCmd(t, vars, "users", "set-password", "bob", "--password", "short"); code != 1 || !strings.Contains(errs, "at least 8") {
		t.Fatalf("short password through the API: %d %s", code, errs)
	}
	if out := mustCmd(t, vars, "users", "remove", "Grace"); !strings.Contains(out, `removed user "grace"`) {
		t.Fatalf("remove: %s", out)
	}
	if out := mustCmd(t, vars, "users", "list"); strings.Contains(out, "grace") || !strings.Contains(out, "bob") {
		t.Fatalf("users list after remove: %s", out)
	}
	if code, _, errs := flowdCmd(t, vars, "users", "add", "--username", "bob", "--password", "bobs password 123"); code != 1 || !strings.Contains(errs, "exists") {
		t.Fatalf("duplicate through the API: %d %s", code, errs)
	}
}

// TestPeopleSessionSurvivesRestart: sessions and codes are in the store.
func TestPeopleSessionSurvivesRestart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "flowd-data")
	s := startServer(t, data)
	waitKeys(t, s)
	vars := map[string]string{"FLOWD_DATA": data}
	mustCmd(t, vars, "users", "add", "--username", "ada", "--password", adaPassword)
	mustCmd(t, vars, "clients", "add", "--id", "web", "--first-party", "--secret", rpSecret, "--scopes", "openid", "--redirect-uris", webCB)
	p := &provider{s: s, issuer: "http://" + s.addr, vars: vars}
	br := newBrowser(false)
	p.signIn(t, br, authzParams("web", webCB, ""), "ada", adaPassword)
	s.shutdown(t)

	s = startServer(t, data)
	waitKeys(t, s)
	p = &provider{s: s, issuer: "http://" + s.addr, vars: vars}
	params := authzParams("web", webCB, "")
	params.Set("prompt", "none")
	q := p.redirectQuery(t, br.get(t, p.authorizeURL(params)), webCB)
	if q.Get("code") == "" {
		t.Fatalf("session lost in the restart: %v", q)
	}
	if status, body := p.exchange(t, "web", rpSecret, q.Get("code"), webCB, ""); status != 200 || body["id_token"] == nil {
		t.Fatalf("exchange after restart: %d %v", status, body)
	}
}

// TestPeopleSignInBrowser is the sign-in story in a real browser
// (headless chromium): the relying party's login link, flowd's sign-in
// form typed into and submitted, the app's callback, a second sign-in
// that skips the form, logout. Script errors and console errors (a CSP
// violation among them) fail it.
func TestPeopleSignInBrowser(t *testing.T) {
	uitest.Chromium(t) // skips without one, before the set-up
	data := filepath.Join(t.TempDir(), "flowd-data")
	s := startServer(t, data)
	waitKeys(t, s)
	vars := map[string]string{"FLOWD_DATA": data}
	mustCmd(t, vars, "users", "add", "--username", "ada", "--password", adaPassword, "--name", "Ada Lovelace")
	rp := newRelyingParty(t)
	mustCmd(t, vars, "clients", "add", "--id", "webapp", "--name", "Web App", "--first-party", "--secret", rpSecret,
		"--scopes", "openid profile email", "--redirect-uris", rp.srv.URL+"/callback",
		"--post-logout-redirect-uris", rp.srv.URL+"/logged-out")
	rp.connect(t, "http://"+s.addr, "webapp", rpSecret)

	// A wrong password's 401 is a network error, which WatchErrors lets
	// pass; script exceptions and console errors fail the test.
	ctx := uitest.Browser(t, 60*time.Second)
	uitest.WatchErrors(t, ctx)
	form := `[data-testid="login-form"]`
	// waitFor evaluates expr until it is true; a navigation in between
	// (the form post, the redirects) only means trying again.
	waitFor := func(what, expr string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr)); err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
				loc, _ := chromedp.Run(ctx, chromedp.Location())
				t.Fatalf("waiting for %s at %s:\n%s", what, loc, text)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	bodyStarts := func(prefix string) {
		t.Helper()
		waitFor(fmt.Sprintf("%q", prefix), fmt.Sprintf(`!!document.body && document.body.innerText.startsWith(%q)`, prefix))
	}
	signIn := func(user, pass string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.WaitVisible(form),
			chromedp.SendKeys(`[data-testid="username"]`, user), chromedp.SendKeys(`[data-testid="password"]`, pass),
			chromedp.Click(`[data-testid="sign-in"]`)); err != nil {
			t.Fatal(err)
		}
	}

	// The app's login link leads to flowd's form, which names the app.
	if err := chromedp.Do(ctx, chromedp.Navigate(rp.srv.URL+"/login"), chromedp.WaitVisible(form)); err != nil {
		t.Fatal(err)
	}
	if name, err := chromedp.Run(ctx, chromedp.Text(`[data-testid="client-name"]`)); err != nil || name != "Web App" {
		t.Fatalf("client name %q %v", name, err)
	}
	// A wrong password: the generic message, the form again.
	signIn("ada", "not the password")
	waitFor("the error message", `!!document.querySelector('[data-testid="login-error"]')`)
	if msg, _ := chromedp.Run(ctx, chromedp.Text(`[data-testid="login-error"]`)); msg != "Incorrect username or password." {
		t.Fatalf("error message %q", msg)
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid="username"]').value = ""`)); err != nil {
		t.Fatal(err)
	}
	signIn("ada", adaPassword)
	bodyStarts("signed in as ")
	if s := rp.last(); s == nil || s.userinfo["name"] != "Ada Lovelace" {
		t.Fatalf("the app's session: %+v", s)
	}
	// A second sign-in goes straight through: the provider session cookie.
	if err := chromedp.Do(ctx, chromedp.Navigate(rp.srv.URL+"/login")); err != nil {
		t.Fatal(err)
	}
	bodyStarts("signed in as ")
	// Logout comes back to the app with its state; then the form is back.
	if err := chromedp.Do(ctx, chromedp.Navigate(rp.srv.URL+"/logout?state=browser-bye")); err != nil {
		t.Fatal(err)
	}
	bodyStarts("bye")
	if rp.byeState != "browser-bye" {
		t.Fatalf("logout state %q", rp.byeState)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(rp.srv.URL+"/login"), chromedp.WaitVisible(form)); err != nil {
		t.Fatal(err)
	}
	// A logout without an ID token (any site can link to it): flowd asks
	// first. Staying keeps the session; signing out goes back to the app.
	signIn("ada", adaPassword)
	bodyStarts("signed in as ")
	question := `[data-testid="logout-form"]`
	bare := "http://" + s.addr + "/oauth/logout?" + url.Values{"client_id": {"webapp"},
		"post_logout_redirect_uri": {rp.srv.URL + "/logged-out"}, "state": {"asked"}}.Encode()
	if err := chromedp.Do(ctx, chromedp.Navigate(bare), chromedp.WaitVisible(question)); err != nil {
		t.Fatal(err)
	}
	if name, err := chromedp.Run(ctx, chromedp.Text(`[data-testid="client-name"]`)); err != nil || name != "Web App" {
		t.Fatalf("client name %q %v", name, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(`[data-testid="stay-signed-in"]`)); err != nil {
		t.Fatal(err)
	}
	bodyStarts("Still signed in")
	if err := chromedp.Do(ctx, chromedp.Navigate(rp.srv.URL+"/login")); err != nil {
		t.Fatal(err)
	}
	bodyStarts("signed in as ")
	if err := chromedp.Do(ctx, chromedp.Navigate(bare), chromedp.WaitVisible(question), chromedp.Click(`[data-testid="sign-out"]`)); err != nil {
		t.Fatal(err)
	}
	bodyStarts("bye")
	rp.mu.Lock()
	bye := rp.byeState
	rp.mu.Unlock()
	if bye != "asked" {
		t.Fatalf("logout state %q", bye)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(rp.srv.URL+"/login"), chromedp.WaitVisible(form)); err != nil {
		t.Fatal(err)
	}
}

// introspect posts a body to /oauth/introspect, authenticated as
// user:pass (client_secret_basic) unless user is empty, and returns the
// status, the headers and the raw body.
func (p *provider) introspect(t *testing.T, contentType, body, user, pass string) (int, http.Header, string) {
	t.Helper()
	return p.post(t, "/oauth/introspect", contentType, body, user, pass)
}

const (
	formType    = "application/x-www-form-urlencoded"
	svcSecret   = "svc-secret-0123456789"
	inactiveRaw = `{"active":false}`
)

// TestIntrospectEndedGrants: RFC 7662 §2.2 says a revoked token is not
// active. A person's access token stops being active at introspection the
// moment its grant ends (refresh token reuse, code replay, the person
// removed), not at its exp; the answer is then exactly {"active":false},
// and only an authenticated client gets any answer. Client credentials
// tokens have no grant and stay active.
func TestIntrospectEndedGrants(t *testing.T) {
	p := startProvider(t)
	// signIn gets a person's tokens from the web client, in a browser of
	// their own.
	signIn := func(t *testing.T, user, pass string) (code, verifier string, tokens map[string]any) {
		t.Helper()
		verifier, challenge := pkcePair()
		q := p.signIn(t, newBrowser(false), authzParams("web", webCB, challenge), user, pass)
		status, body := p.exchange(t, "web", rpSecret, q.Get("code"), webCB, verifier)
		if status != 200 || body["access_token"] == nil || body["refresh_token"] == nil {
			t.Fatalf("exchange %d %v", status, body)
		}
		return q.Get("code"), verifier, body
	}
	refresh := func(rt string) (int, map[string]any) {
		return p.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web", rpSecret)
	}
	// ask introspects a token as the resource server svc.
	ask := func(t *testing.T, token string) (int, http.Header, string) {
		t.Helper()
		return p.introspect(t, formType, url.Values{"token": {token}}.Encode(), "svc", svcSecret)
	}
	wantActive := func(t *testing.T, token, sub, clientID, scope string) {
		t.Helper()
		status, hdr, raw := ask(t, token)
		var in map[string]any
		if err := json.Unmarshal([]byte(raw), &in); err != nil || status != 200 {
			t.Fatalf("introspect: %d %s", status, raw)
		}
		claims := decodeClaims(t, token)
		if in["active"] != true || in["token_type"] != "Bearer" || in["sub"] != sub || in["client_id"] != clientID ||
			in["scope"] != scope || in["iss"] != p.issuer || in["aud"] != "flowd-api" || in["jti"] != claims["jti"] ||
			in["exp"] != claims["exp"] || in["iat"] != claims["iat"] || len(in) != 10 {
			t.Fatalf("introspect: %v (token claims %v)", in, claims)
		}
		if hdr.Get("Cache-Control") != "no-store" || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Fatalf("introspect headers %v", hdr)
		}
	}
	wantInactive := func(t *testing.T, token string) {
		t.Helper()
		status, hdr, raw := ask(t, token)
		if status != 200 || strings.TrimSpace(raw) != inactiveRaw || hdr.Get("Cache-Control") != "no-store" {
			t.Fatalf("want exactly %s, got %d %q %v", inactiveRaw, status, raw, hdr)
		}
	}
	_, body := p.token(t, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, "svc", svcSecret)
	svcToken, _ := body["access_token"].(string)
	if svcToken == "" {
		t.Fatalf("client credentials: %v", body)
	}
	wantActive(t, svcToken, "svc", "svc", "read")

	t.Run("refresh token reuse ends every access token of the grant", func(t *testing.T) {
		_, _, tok := signIn(t, "ada", adaPassword)
		at1, rt1 := tok["access_token"].(string), tok["refresh_token"].(string)
		sub := decodeClaims(t, at1)["sub"].(string)
		wantActive(t, at1, sub, "web", "openid profile email")
		status, body := refresh(rt1)
		if status != 200 {
			t.Fatalf("refresh %d %v", status, body)
		}
		at2, rt2 := body["access_token"].(string), body["refresh_token"].(string)
		wantActive(t, at1, sub, "web", "openid profile email") // rotation alone ends nothing
		wantActive(t, at2, sub, "web", "openid profile email")
		if status, body := refresh(rt2); status != 200 { // the app moves on: rt1 is stale, not a retry
			t.Fatalf("refresh %d %v", status, body)
		}
		status, body = refresh(rt1) // the stolen first refresh token comes back
		wantOAuthError(t, status, body, 400, "invalid_grant")
		wantInactive(t, at1)
		wantInactive(t, at2)
		// The same for the client it was issued to, and for any other.
		for _, c := range [][2]string{{"web", rpSecret}, {"other", "other-secret-0123456789"}} {
			status, _, raw := p.introspect(t, formType, url.Values{"token": {at2}}.Encode(), c[0], c[1])
			if status != 200 || strings.TrimSpace(raw) != inactiveRaw {
				t.Fatalf("as %s: %d %s", c[0], status, raw)
			}
		}
	})

	t.Run("code replay ends the access token it issued", func(t *testing.T) {
		code, verifier, tok := signIn(t, "ada", adaPassword)
		at := tok["access_token"].(string)
		wantActive(t, at, decodeClaims(t, at)["sub"].(string), "web", "openid profile email")
		status, body := p.exchange(t, "web", rpSecret, code, webCB, verifier)
		wantOAuthError(t, status, body, 400, "invalid_grant")
		wantInactive(t, at)
	})

	t.Run("a removed person's tokens end", func(t *testing.T) {
		_, _, tok := signIn(t, "bob", "bobs password 123")
		at := tok["access_token"].(string)
		sub := decodeClaims(t, at)["sub"].(string)
		if out := mustCmd(t, p.vars, "users", "list"); !regexp.MustCompile(`(?m)^bob\s+` + sub).MatchString(out) {
			t.Fatalf("not bob's token (sub %s):\n%s", sub, out)
		}
		wantActive(t, at, sub, "web", "openid profile email")
		mustCmd(t, p.vars, "users", "remove", "bob")
		wantInactive(t, at)
	})

	t.Run("client credentials tokens have no grant and stay active", func(t *testing.T) {
		wantActive(t, svcToken, "svc", "svc", "read")
	})

	t.Run("no answer without client authentication", func(t *testing.T) {
		_, _, tok := signIn(t, "ada", adaPassword)
		live := tok["access_token"].(string)
		_, _, tok = signIn(t, "ada", adaPassword)
		revoked, rt := tok["access_token"].(string), tok["refresh_token"].(string)
		_, next := refresh(rt)
		refresh(next["refresh_token"].(string)) // the app moves on: rt is stale, not a retry
		if status, body := refresh(rt); status != 400 {
			t.Fatalf("reuse: %d %v", status, body)
		}
		wantInactive(t, revoked)
		// Live, revoked or junk: the same refusal, so an unauthenticated
		// caller learns nothing about the token.
		var first string
		for _, token := range []string{live, revoked, svcToken, "junk"} {
			status, _, raw := p.introspect(t, formType, url.Values{"token": {token}}.Encode(), "", "")
			if first == "" {
				first = raw
			}
			if status != 401 || raw != first {
				t.Fatalf("unauthenticated: %d %s, the first answer was %s", status, raw, first)
			}
		}
		for _, tc := range []struct {
			name, user, pass, body string
		}{
			{"no credentials", "", "", url.Values{"token": {live}}.Encode()},
			{"wrong secret", "svc", "wrong-secret-0123456789", url.Values{"token": {live}}.Encode()},
			{"unknown client", "nobody", svcSecret, url.Values{"token": {live}}.Encode()},
			{"public client by client_id", "", "", url.Values{"token": {live}, "client_id": {"spa"}}.Encode()},
			{"public client with an empty secret", "spa", "", url.Values{"token": {live}}.Encode()},
			{"secret in the body, wrong", "", "", url.Values{"token": {live}, "client_id": {"svc"}, "client_secret": {"nope-nope-nope-nope"}}.Encode()},
			{"revoked token, no credentials", "", "", url.Values{"token": {revoked}}.Encode()},
			{"revoked token, the secret of another client", "web", svcSecret, url.Values{"token": {revoked}}.Encode()},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, hdr, raw := p.introspect(t, formType, tc.body, tc.user, tc.pass)
				if status != 401 || strings.Contains(raw, "active") || !strings.Contains(raw, "invalid_client") ||
					!strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic") {
					t.Fatalf("%d %v %s", status, hdr, raw)
				}
			})
		}
	})

	t.Run("anything but an active access token is exactly inactive", func(t *testing.T) {
		_, _, tok := signIn(t, "ada", adaPassword)
		at, rt, idt := tok["access_token"].(string), tok["refresh_token"].(string), tok["id_token"].(string)
		sigStart := strings.LastIndex(at, ".") + 1
		for _, tc := range []struct {
			name, contentType, body string
		}{
			{"no token", formType, ""},
			{"empty token", formType, "token="},
			{"refresh token", formType, url.Values{"token": {rt}}.Encode()},
			{"refresh token with its hint", formType, url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}.Encode()},
			{"ID token", formType, url.Values{"token": {idt}}.Encode()},
			{"tampered signature", formType, url.Values{"token": {at[:sigStart] + flip(at[sigStart:sigStart+8]) + at[sigStart+8:]}}.Encode()},
			{"unsigned", formType, url.Values{"token": {"eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + strings.Split(at, ".")[1] + "."}}.Encode()},
			{"garbage", formType, url.Values{"token": {"../../etc/passwd"}}.Encode()},
			{"huge", formType, url.Values{"token": {strings.Repeat("A", 200000)}}.Encode()},
			{"JSON body, token object", "application/json", `{"token": {"active": true}}`},
			{"JSON body, token list", "application/json", `{"token": ["` + at + `"]}`},
			{"JSON body, not an object", "application/json", `"` + at + `"`},
			{"text body", "text/plain", at},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, _, raw := p.introspect(t, tc.contentType, tc.body, "svc", svcSecret)
				if status != 200 || strings.TrimSpace(raw) != inactiveRaw {
					t.Fatalf("want exactly %s, got %d %q", inactiveRaw, status, raw)
				}
			})
		}
		// token_type_hint is ignored: a wrong hint does not hide an active token.
		status, _, raw := p.introspect(t, formType, url.Values{"token": {at}, "token_type_hint": {"refresh_token"}}.Encode(), "svc", svcSecret)
		if status != 200 || !strings.Contains(raw, `"active":true`) {
			t.Fatalf("with a wrong hint: %d %s", status, raw)
		}
	})

	// The runs' traces never show the tokens that were introspected.
	adminTok, err := os.ReadFile(filepath.Join(p.vars["FLOWD_DATA"], "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	code, runs := p.s.get(t, "/admin/api/flows/introspect/runs", map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(adminTok))})
	if code != 200 || !strings.Contains(runs, "oidc.grant_active") || strings.Contains(runs, svcToken) || strings.Contains(runs, svcSecret) {
		t.Fatalf("introspect runs: %d %.500s", code, runs)
	}
}

// TestPeopleLogoutEndsGrants: logging out of the provider (RP-initiated,
// with an id_token_hint for the session, so nobody is asked) ends the
// grants the apps got through that browser session: the refresh token is
// refused and the access token is inactive at once. Another person's
// tokens, from another browser, are not touched.
func TestPeopleLogoutEndsGrants(t *testing.T) {
	p := startProvider(t)
	signIn := p.tokensFor
	refresh := func(t *testing.T, rt string) (int, map[string]any) {
		t.Helper()
		return p.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web", rpSecret)
	}
	active := func(t *testing.T, at string) string {
		t.Helper()
		status, _, raw := p.introspect(t, formType, url.Values{"token": {at}}.Encode(), "svc", svcSecret)
		if status != 200 {
			t.Fatalf("introspect %d %s", status, raw)
		}
		return strings.TrimSpace(raw)
	}

	adaBrowser, bobBrowser := newBrowser(false), newBrowser(false)
	ada := signIn(t, adaBrowser, "ada", adaPassword)
	bob := signIn(t, bobBrowser, "bob", "bobs password 123")
	if decodeClaims(t, ada["access_token"].(string))["sub"] == decodeClaims(t, bob["access_token"].(string))["sub"] {
		t.Fatal("both browsers signed in the same person")
	}

	logout := url.Values{"id_token_hint": {ada["id_token"].(string)}, "post_logout_redirect_uri": {byeURI}, "state": {"s1"}}
	pg := adaBrowser.get(t, p.issuer+"/oauth/logout?"+logout.Encode())
	if pg.status != 302 || pg.header.Get("Location") != byeURI+"?state=s1" {
		t.Fatalf("logout: %d %q\n%s", pg.status, pg.header.Get("Location"), pg.body)
	}

	t.Run("the logged-out session's refresh token is refused", func(t *testing.T) {
		status, body := refresh(t, ada["refresh_token"].(string))
		wantOAuthError(t, status, body, 400, "invalid_grant")
	})
	t.Run("its access token is inactive", func(t *testing.T) {
		if got := active(t, ada["access_token"].(string)); got != inactiveRaw {
			t.Fatalf("introspect %s", got)
		}
		if status, _, _ := p.userinfo(t, ada["access_token"].(string)); status != 401 {
			t.Fatalf("userinfo %d", status)
		}
	})
	t.Run("another person's tokens in another browser still work", func(t *testing.T) {
		if got := active(t, bob["access_token"].(string)); !strings.Contains(got, `"active":true`) {
			t.Fatalf("introspect %s", got)
		}
		status, body := refresh(t, bob["refresh_token"].(string))
		if status != 200 || body["access_token"] == nil || body["refresh_token"] == nil {
			t.Fatalf("refresh %d %v", status, body)
		}
	})
	t.Run("signing in again gives working tokens", func(t *testing.T) {
		again := signIn(t, adaBrowser, "ada", adaPassword)
		if status, body := refresh(t, again["refresh_token"].(string)); status != 200 {
			t.Fatalf("refresh %d %v", status, body)
		}
	})
}

// TestPeopleRemoveSignsOut: `flowd users remove` (here through the running
// server's admin API) signs the person out everywhere before removing
// them: it says how many sessions it ended, their tokens stop working, and
// another person's go on.
func TestPeopleRemoveSignsOut(t *testing.T) {
	p := startProvider(t)
	signIn := p.tokensFor
	ada := signIn(t, newBrowser(false), "ada", adaPassword)
	signIn(t, newBrowser(false), "ada", adaPassword) // a second browser: a second session
	bob := signIn(t, newBrowser(false), "bob", "bobs password 123")

	out := mustCmd(t, p.vars, "users", "remove", "ADA")
	if !strings.Contains(out, `removed user "ada", signed out everywhere first: 2 session(s) ended`) {
		t.Fatalf("remove: %s", out)
	}
	if status, _, raw := p.introspect(t, formType, url.Values{"token": {ada["access_token"].(string)}}.Encode(), "svc", svcSecret); status != 200 || strings.TrimSpace(raw) != inactiveRaw {
		t.Errorf("ada's access token after removal: %d %s", status, raw)
	}
	status, body := p.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ada["refresh_token"].(string)}}, "web", rpSecret)
	wantOAuthError(t, status, body, 400, "invalid_grant")
	if status, _, raw := p.introspect(t, formType, url.Values{"token": {bob["access_token"].(string)}}.Encode(), "svc", svcSecret); status != 200 || !strings.Contains(raw, `"active":true`) {
		t.Errorf("bob's access token: %d %s", status, raw)
	}
	if code, _, errs := flowdCmd(t, p.vars, "users", "remove", "ada"); code != 1 || !strings.Contains(errs, "(no_user)") {
		t.Errorf("second removal: %d %s", code, errs)
	}
}
