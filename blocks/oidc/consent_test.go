package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
)

// consentKit drives the consent steps of the authorize flow by hand.
type consentKit struct {
	t      *testing.T
	f      *fixture
	decide *consentBlock
	page   *consentPageBlock
	answer *consentAnswerBlock
}

func newConsentKit(t *testing.T) *consentKit {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	if _, _, err := f.p.Clients.Add(ctx, oauth.Client{ID: "own", Name: "Own App", FirstParty: true, Scopes: []string{"openid", "profile"},
		RedirectURIs: []string{"https://own.example.com/cb"}, GrantTypes: []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken}}, "own-secret-0123456789"); err != nil {
		t.Fatal(err)
	}
	return &consentKit{t: t, f: f, decide: &consentBlock{p: f.p, issuer: testIssuer},
		page:   &consentPageBlock{p: f.p, ttl: 10 * time.Minute, action: "/oauth/consent"},
		answer: &consentAnswerBlock{p: f.p, remember: 24 * time.Hour, issuer: testIssuer}}
}

// browser signs username in (client web, consent bypassed) and returns
// its cookies.
func (k *consentKit) browser(username string) string {
	k.t.Helper()
	_, cookies := signInAs(k.t, k.f, username, authorizeParams("web", webCB), "")
	return cookies
}

// decideFor runs authorize -> session -> consent for a signed-in browser.
func (k *consentKit) decideFor(params url.Values, cookies string) (string, engine.Msg) {
	k.t.Helper()
	ctx := k.t.Context()
	msg := queryMsg(params, cookies)
	if port, err := testAuthorizeBlock(k.f).Process(ctx, k.f.clk.exec(), msg); port != "ok" || err != nil {
		k.t.Fatalf("authorize: %s %v %v", port, err, msg["oauth_error"])
	}
	if port, err := testSessionBlock(k.t, k.f).Process(ctx, k.f.clk.exec(), msg); port != "active" || err != nil {
		k.t.Fatalf("session: %s %v", port, err)
	}
	port, err := k.decide.Process(ctx, k.f.clk.exec(), msg)
	if err != nil {
		k.t.Fatal(err)
	}
	return port, msg
}

// ask gets the consent form: its tx and csrf, and the browser's cookies
// with the consent cookie added.
func (k *consentKit) ask(params url.Values, cookies string) (tx, csrf, withCookie string) {
	k.t.Helper()
	port, msg := k.decideFor(params, cookies)
	if port != "ask" {
		k.t.Fatalf("consent port %s, want ask", port)
	}
	k.f.st.takeWrites()
	if _, err := k.page.Process(k.t.Context(), k.f.clk.exec(), msg); err != nil {
		k.t.Fatal(err)
	}
	if w := k.f.st.takeWrites(); len(w) != 0 {
		k.t.Fatalf("the consent page wrote %v", w)
	}
	html := stringField(msg, "payload")
	want := []string{`data-testid="consent-form"`, `action="/oauth/consent"`}
	for _, sc := range strings.Fields(params.Get("scope")) {
		want = append(want, `data-scope="`+sc+`"`)
	}
	if strings.Contains(params.Get("scope"), "email") {
		want = append(want, "See your email address", "email_verified")
	}
	for _, want := range want {
		if !strings.Contains(html, want) {
			k.t.Fatalf("consent page without %q:\n%s", want, html)
		}
	}
	tx, csrf = formFields(k.t, html)
	return tx, csrf, cookies + "; " + cookieHeader(msg)
}

func (k *consentKit) post(form url.Values, cookies string) (string, engine.Msg) {
	k.t.Helper()
	msg := formMsg(form, cookies, "")
	reqOf(msg)["path"] = "/oauth/consent"
	port, err := k.answer.Process(k.t.Context(), k.f.clk.exec(), msg)
	if err != nil {
		k.t.Fatal(err)
	}
	return port, msg
}

// allowedCode asks for web's consent in the browser cookies, allows it and
// returns the code issued under it.
func (k *consentKit) allowedCode(cookies string) string {
	k.t.Helper()
	tx, csrf, withCookie := k.ask(authorizeParams("web", webCB), cookies)
	port, msg := k.post(url.Values{"tx": {tx}, "csrf": {csrf}, "decision": {"allow"}}, withCookie)
	if port != "granted" {
		k.t.Fatal("allow")
	}
	return k.issueCode(msg)
}

// issueCode runs oidc.issue_code on a granted message and returns the code.
func (k *consentKit) issueCode(msg engine.Msg) string {
	k.t.Helper()
	if _, err := (&issueCodeBlock{p: k.f.p, ttl: time.Minute, issuer: testIssuer}).Process(k.t.Context(), k.f.clk.exec(), msg); err != nil {
		k.t.Fatal(err)
	}
	return redirectQuery(k.t, msg).Get("code")
}

// exchange redeems web's code (with a refresh token) and returns the port
// and the message.
func (k *consentKit) exchange(code string) (string, engine.Msg, error) {
	ex := testExchange(k.f.p, time.Hour)
	msg := exchangeMsg("web", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}})
	port, err := ex.Process(k.t.Context(), k.f.clk.exec(), msg)
	return port, msg, err
}

func (k *consentKit) consent(sub, client string) *consentRecord {
	k.t.Helper()
	c, err := k.f.users.consent(k.t.Context(), sub, client)
	if err != nil {
		k.t.Fatal(err)
	}
	return c
}

func TestConsentDecision(t *testing.T) {
	k := newConsentKit(t)
	ctx := t.Context()
	cookies := k.browser("ada")
	now := k.f.clk.Now()
	withParams := func(client, redirect string, kv ...string) url.Values {
		v := authorizeParams(client, redirect)
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	const own = "https://own.example.com/cb"
	steps := []struct {
		name   string
		before func()
		params url.Values
		port   string
		code   string
		linked bool // msg.consent names the consent
	}{
		{"third-party, no consent yet", nil, withParams("web", webCB), "ask", "", false},
		{"third-party, prompt=none", nil, withParams("web", webCB, "prompt", "none"), "redirect_error", "consent_required", false},
		{"first-party", nil, withParams("own", own, "scope", "openid profile"), "granted", "", false},
		{"first-party, offline_access", nil, withParams("own", own, "scope", "openid offline_access"), "ask", "", false},
		{"first-party, offline_access, prompt=none", nil, withParams("own", own, "scope", "openid offline_access", "prompt", "none"), "redirect_error", "consent_required", false},
		{"consent remembered", func() {
			if _, err := k.f.users.giveConsent(ctx, k.f.ada.Sub, "web", []string{"openid", "email"}, now, time.Hour); err != nil {
				t.Fatal(err)
			}
		}, withParams("web", webCB), "granted", "", true},
		{"remembered, prompt=none", nil, withParams("web", webCB, "prompt", "none"), "granted", "", true},
		{"remembered, fewer scopes", nil, withParams("web", webCB, "scope", "openid"), "granted", "", true},
		{"remembered, one more scope", nil, withParams("web", webCB, "scope", "openid email profile"), "ask", "", false},
		{"remembered, prompt=consent", nil, withParams("web", webCB, "prompt", "consent"), "ask", "", false},
		{"first-party, prompt=consent", nil, withParams("own", own, "scope", "openid", "prompt", "consent"), "ask", "", false},
		{"first-party, offline_access consented, more scopes", func() {
			if _, err := k.f.users.giveConsent(ctx, k.f.ada.Sub, "own", []string{"openid", "offline_access"}, now, time.Hour); err != nil {
				t.Fatal(err)
			}
		}, withParams("own", own, "scope", "openid profile offline_access"), "granted", "", true},
		{"first-party, consent remembered, no offline_access", nil, withParams("own", own, "scope", "openid profile"), "granted", "", false},
		{"another client's consent does not count", nil, withParams("other", "https://other.example.com/cb", "scope", "openid"), "ask", "", false},
		{"remembered consent expired", func() { k.f.clk.Advance(2 * time.Hour) }, withParams("web", webCB, "scope", "openid"), "ask", "", false},
	}
	for _, tc := range steps {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			if k.f.clk.Now().After(now.Add(time.Hour)) {
				cookies = k.browser("ada") // the test session outlived
			}
			k.f.st.takeWrites()
			port, msg := k.decideFor(tc.params, cookies)
			if port != tc.port {
				t.Fatalf("port %s, want %s (%v)", port, tc.port, msg["oauth_error"])
			}
			if w := k.f.st.takeWrites(); len(w) != 0 {
				t.Fatalf("deciding wrote %v", w)
			}
			if got := consentFromMsg(msg) != ""; got != tc.linked {
				t.Fatalf("msg.consent %v, want linked %v", msg["consent"], tc.linked)
			}
			if port == "redirect_error" {
				q := redirectQuery(t, msg)
				if q.Get("error") != tc.code || q.Get("state") != "xyz" || q.Get("iss") != testIssuer || q.Get("code") != "" {
					t.Fatalf("redirect %s", msg["redirect"])
				}
			}
		})
	}
}

func TestConsentAnswer(t *testing.T) {
	k := newConsentKit(t)
	ctx := t.Context()
	ada := k.browser("ada")
	if _, err := k.f.users.Add(ctx, User{Username: "bob"}, testPassword); err != nil {
		t.Fatal(err)
	}
	bob := k.browser("bob")
	params := authorizeParams("web", webCB)
	tx, csrf, withCookie := k.ask(params, ada)
	form := url.Values{"tx": {tx}, "csrf": {csrf}, "decision": {"allow"}}
	with := func(change func(url.Values)) url.Values {
		v := url.Values{}
		for key, vals := range form {
			v[key] = append([]string(nil), vals...)
		}
		change(v)
		return v
	}
	// The other client's question, asked in the same browser: its cookie
	// cannot stand in for web's.
	otherTX, otherCSRF, otherCookie := k.ask(func() url.Values {
		v := authorizeParams("other", "https://other.example.com/cb")
		v.Set("scope", "openid")
		return v
	}(), ada)
	_ = otherCSRF
	adaConsentCookie := func() string {
		for _, c := range strings.Split(withCookie, "; ") {
			if strings.Contains(c, consentCookiePrefix+tx+"=") {
				return c
			}
		}
		t.Fatal("no consent cookie")
		return ""
	}()
	bypass := []struct {
		name    string
		form    url.Values
		cookies string
	}{
		{"no consent cookie (forged POST)", form, ada},
		{"no session", form, adaConsentCookie},
		{"another person's session", form, bob + "; " + adaConsentCookie},
		{"wrong CSRF token", with(func(v url.Values) { v.Set("csrf", newSecret()) }), withCookie},
		{"another question's id", with(func(v url.Values) { v.Set("tx", otherTX) }), withCookie},
		{"cookie moved to another question's name", with(func(v url.Values) { v.Set("tx", otherTX) }),
			ada + "; " + strings.Replace(adaConsentCookie, tx, otherTX, 1)},
		{"tampered cookie", form, strings.Replace(withCookie, adaConsentCookie, adaConsentCookie[:len(adaConsentCookie)-4]+"AAAA", 1)},
		{"no decision", with(func(v url.Values) { v.Del("decision") }), withCookie},
		{"unknown decision", with(func(v url.Values) { v.Set("decision", "yes") }), withCookie},
		{"repeated decision", with(func(v url.Values) { v.Add("decision", "deny") }), withCookie},
		{"huge tx", with(func(v url.Values) { v.Set("tx", strings.Repeat("A", 10000)) }), withCookie},
	}
	for _, tc := range bypass {
		t.Run(tc.name, func(t *testing.T) {
			k.f.st.takeWrites()
			port, msg := k.post(tc.form, tc.cookies)
			if port != "invalid" || errorCode(msg) != "invalid_request" || msg["redirect"] != nil || msg["consent"] != nil {
				t.Fatalf("port %s %v", port, msg)
			}
			if w := k.f.st.takeWrites(); len(w) != 0 {
				t.Fatalf("a refused answer wrote %v", w)
			}
		})
	}
	if k.consent(k.f.ada.Sub, "web") != nil || k.consent(k.f.ada.Sub, "other") != nil {
		t.Fatal("a refused answer recorded a consent")
	}

	// Allow, with extra form fields trying to widen what was asked.
	port, msg := k.post(with(func(v url.Values) {
		v.Set("client_id", "other")
		v.Set("scope", "openid email profile billing")
	}), withCookie)
	if port != "granted" || stringField(mapOf(msg["authz"]), "client_id") != "web" || stringField(mapOf(msg["session"]), "sub") != k.f.ada.Sub {
		t.Fatalf("allow: %s %v", port, msg)
	}
	c := k.consent(k.f.ada.Sub, "web")
	if c == nil || strings.Join(c.Scopes, " ") != "openid email" || consentFromMsg(msg) != c.ID {
		t.Fatalf("consent %+v, msg.consent %v", c, msg["consent"])
	}
	if k.consent(k.f.ada.Sub, "other") != nil {
		t.Fatal("consent recorded for another client")
	}
	if !strings.Contains(cookieHeader(msg), consentCookiePrefix+tx+"=") {
		t.Fatalf("the consent cookie was not deleted: %v", msg["cookies"])
	}
	// Replayed: refused, nothing changes.
	if port, _ := k.post(form, withCookie); port != "invalid" {
		t.Fatalf("replay: %s", port)
	}
	if again := k.consent(k.f.ada.Sub, "web"); again.ID != c.ID || len(again.Scopes) != 2 {
		t.Fatalf("replay changed the consent: %+v", again)
	}
	// Deny the other client's question: access_denied to its redirect URI.
	port, msg = k.post(url.Values{"tx": {otherTX}, "csrf": {otherCSRF}, "decision": {"deny"}}, otherCookie)
	if port != "denied" {
		t.Fatalf("deny: %s %v", port, msg["oauth_error"])
	}
	if q := redirectQuery(t, msg); q.Get("error") != "access_denied" || q.Get("state") != "xyz" || q.Get("code") != "" ||
		!strings.HasPrefix(stringField(msg, "redirect"), "https://other.example.com/cb?") {
		t.Fatalf("deny redirect %s", msg["redirect"])
	}
	if k.consent(k.f.ada.Sub, "other") != nil {
		t.Fatal("a denial recorded a consent")
	}
	// Expired question.
	tx2, csrf2, cookie2 := k.ask(func() url.Values { v := authorizeParams("web", webCB); v.Set("prompt", "consent"); return v }(), ada)
	k.f.clk.Advance(11 * time.Minute)
	if port, _ := k.post(url.Values{"tx": {tx2}, "csrf": {csrf2}, "decision": {"allow"}}, cookie2); port != "invalid" {
		t.Fatalf("expired question: %s", port)
	}
}

// TestConsentWithdrawal: withdrawing ends the grants made under the
// consent, refuses codes issued under it, and the next request asks again.
func TestConsentWithdrawal(t *testing.T) {
	k := newConsentKit(t)
	ctx := t.Context()
	ada := k.browser("ada")
	// consentedCode gets a code for web under the remembered consent.
	consentedCode := func() string {
		t.Helper()
		port, msg := k.decideFor(authorizeParams("web", webCB), ada)
		if port != "granted" || consentFromMsg(msg) == "" {
			t.Fatalf("consent: %s %v", port, msg["consent"])
		}
		return k.issueCode(msg)
	}
	exchange := func(code string) (string, engine.Msg) {
		port, msg, err := k.exchange(code)
		if err != nil {
			t.Fatal(err)
		}
		return port, msg
	}
	tx, csrf, cookies := k.ask(authorizeParams("web", webCB), ada)
	if port, _ := k.post(url.Values{"tx": {tx}, "csrf": {csrf}, "decision": {"allow"}}, cookies); port != "granted" {
		t.Fatal("allow")
	}
	var grants []string
	for range 2 {
		port, msg := exchange(consentedCode())
		if port != "ok" {
			t.Fatalf("exchange: %s %v", port, msg["oauth_error"])
		}
		grants = append(grants, stringField(mapOf(msg["grant"]), "grant_id"))
	}
	pending := consentedCode() // issued, not exchanged yet
	list, err := k.f.users.Consents(ctx, "ada")
	if err != nil || len(list) != 1 || list[0].ClientID != "web" || list[0].Grants != 2 || strings.Join(list[0].Scopes, " ") != "openid email" {
		t.Fatalf("consents: %+v %v", list, err)
	}
	var reports []string
	k.f.users.OnConsentWithdrawn = func(_ context.Context, username, clientID string, grants int) {
		reports = append(reports, fmt.Sprintf("%s %s %d", username, clientID, grants))
	}
	for _, tc := range []struct {
		name, user, client string
		want               error
	}{
		{"unknown user", "nobody", "web", ErrNoUser},
		{"no consent for that client", "ada", "other", ErrNoConsent},
		{"huge client id", "ada", strings.Repeat("c", 5000), ErrNoConsent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := k.f.users.WithdrawConsent(ctx, tc.user, tc.client); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	n, err := k.f.users.WithdrawConsent(ctx, "ADA", "web")
	if err != nil || n != 2 {
		t.Fatalf("withdraw: %d %v", n, err)
	}
	// Told once, of the withdrawal that ended something: not of the
	// refused ones.
	if !slices.Equal(reports, []string{"ada web 2"}) {
		t.Errorf("OnConsentWithdrawn heard %q, want ada web 2", reports)
	}
	for _, g := range grants {
		if _, why, _ := grantStatus(ctx, k.f.st, g, k.f.clk.Now()); why != grantRevoked {
			t.Fatalf("grant %s after withdrawal: %q", g, why)
		}
	}
	if port, msg := exchange(pending); port != "invalid" || errorCode(msg) != "invalid_grant" {
		t.Fatalf("code issued under a withdrawn consent: %s %v", port, msg["oauth_error"])
	}
	if port, _ := k.decideFor(authorizeParams("web", webCB), ada); port != "ask" {
		t.Fatalf("after withdrawal: %s, want ask", port)
	}
	if list, _ := k.f.users.Consents(ctx, "ada"); len(list) != 0 {
		t.Fatalf("consents after withdrawal: %+v", list)
	}
}

// TestConsentWithdrawnDuringExchange: a withdrawal that lands while a
// code's exchange links its grant to the consent (between the two calls
// of the update function, as a concurrent request would) refuses the
// exchange; one that lands after the link ends the grant the exchange
// then creates (a tombstone).
func TestConsentWithdrawnDuringExchange(t *testing.T) {
	for _, tc := range []struct {
		name   string
		during string // namespace whose update the withdrawal interrupts
	}{
		{"while linking the grant to the consent", nsConsents},
		{"while creating the grant", nsGrants},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newConsentKit(t)
			ctx := t.Context()
			ada := k.browser("ada")
			code := k.allowedCode(ada)
			withdrawn := false
			k.f.st.setBetween(func(ns, key string) {
				if ns != tc.during || withdrawn {
					return
				}
				withdrawn = true
				if _, err := k.f.users.WithdrawConsent(ctx, "ada", "web"); err != nil {
					t.Errorf("withdraw: %v", err)
				}
			})
			defer k.f.st.setBetween(nil)
			port, m, err := k.exchange(code)
			if err != nil || !withdrawn {
				t.Fatalf("exchange: %v, withdrawn %v", err, withdrawn)
			}
			if port != "invalid" || errorCode(m) != "invalid_grant" || m["refresh_token"] != nil {
				t.Fatalf("exchange after a racing withdrawal: %s %v", port, m)
			}
		})
	}
}

// TestConsentFullAtExchange: a code issued under a consent that already
// lists maxConsentGrants grants is exchanged once the ended ones are
// dropped (read outside the exchange's transaction, then it runs again):
// the consent then lists the live ones and the new grant.
func TestConsentFullAtExchange(t *testing.T) {
	k := newConsentKit(t)
	ctx := t.Context()
	ada := k.browser("ada")
	code := k.allowedCode(ada)
	// Full: one live grant, the rest never made (ended).
	live := newID()
	now := k.f.clk.Now()
	if err := putRec(ctx, k.f.st.Store, nsGrants, live, &grantRecord{ID: live, ClientID: "web", Sub: k.f.ada.Sub, Purge: now.Add(time.Hour).Unix()}); err != nil {
		t.Fatal(err)
	}
	key := consentKey(k.f.ada.Sub, "web")
	err := updateRec(ctx, k.f.st.Store, nsConsents, key, func(c *consentRecord) (*consentRecord, error) {
		c.Grants = []string{live}
		for len(c.Grants) < maxConsentGrants {
			c.Grants = append(c.Grants, newID())
		}
		return c, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	port, m, err := k.exchange(code)
	if err != nil || port != "ok" {
		t.Fatalf("exchange under a full consent with ended grants: %s %v %v", port, err, m["oauth_error"])
	}
	gid := stringField(mapOf(m["grant"]), "grant_id")
	if c := k.consent(k.f.ada.Sub, "web"); c == nil || len(c.Grants) != 2 || c.Grants[0] != live || c.Grants[1] != gid {
		t.Fatalf("consent grants after the exchange: %v, want [%s %s]", c, live, gid)
	}
}
