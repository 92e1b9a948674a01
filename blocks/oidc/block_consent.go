package oidc

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/url"
	"slices"
	"time"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
)

// Consent, block by block, in the authorize flow:
//
//	oidc.session --active--> oidc.consent --granted--> oidc.issue_code (the code names the consent)
//	oidc.login ----ok------/      |ask: oidc.consent_page -> 200 form (a sealed consent cookie; nothing stored)
//	                              \redirect_error: prompt=none -> consent_required
//	POST /oauth/consent -> oidc.consent_answer --granted--> oidc.issue_code
//	                         |denied: 302 redirect_uri?error=access_denied
//	                         \invalid: error page
//
// The question waits in the browser like a pending sign-in (pending.go):
// one cookie, <prefix>flowd_consent_<id>, sealed with the provider's
// cookie key, its additional data binding it to its purpose, its id and
// the session it was asked in (the SHA-256 of the session cookie), so it
// opens for no other person, session or cookie name. Its CSRF token is
// in the form. Nothing is written until the person answers; the answer
// records the consent cookie as used (single use) and, for yes, the
// consent.
const consentCookiePrefix = "flowd_consent_"

// consentAD is the additional data of a consent cookie.
func consentAD(id, sessionKey string) []byte {
	return []byte("flowd oidc consent v1\x00" + id + "\x00" + sessionKey)
}

// usedConsentKey is the oidc_tx key that marks a consent cookie answered.
func usedConsentKey(id string) string { return hashKey("consent\x00" + id) }

func sealConsent(k *providerKeys, id, sessionKey string, q pendingSignIn) (string, error) {
	return sealRequest(k, consentAD(id, sessionKey), q)
}

// consentCookies are the consent cookies of the session sessionKey names.
func consentCookies(sessionKey string) requestCookies {
	return requestCookies{base: consentCookiePrefix,
		seal: func(k *providerKeys, id string, q pendingSignIn) (string, error) {
			return sealConsent(k, id, sessionKey, q)
		},
		open: func(k *providerKeys, id, value string) (*pendingSignIn, error) {
			return openConsent(k, id, sessionKey, value)
		}}
}

func openConsent(k *providerKeys, id, sessionKey, value string) (*pendingSignIn, error) {
	if !isHashKey(sessionKey) {
		return nil, errPendingRefused
	}
	return openRequest(k, consentAD(id, sessionKey), value)
}

// consentNeeded says whether the person must be asked: always for
// prompt=consent; for offline_access (OpenID Connect Core §11) unless a
// consent covers it, even for a first-party client; otherwise unless the
// client is first-party or a consent covers every scope asked for. bound
// says whether the code must name the remembered consent (withdrawing it
// then ends the grant): whenever the consent is what allowed the request.
func consentNeeded(rec *consentRecord, a authzRequest, firstParty bool, now time.Time) (needed, bound bool) {
	if slices.Contains(a.Prompt, "consent") {
		return true, false
	}
	if rec.covers(a.scopes(), now) {
		return false, true
	}
	if !firstParty {
		return true, false
	}
	if slices.Contains(a.scopes(), "offline_access") {
		covered := rec.covers([]string{"offline_access"}, now)
		return !covered, covered
	}
	return false, false
}

func consentSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.consent", Title: "Consent given?", Category: Category,
		Description: "Decides whether the person in msg.session must consent to the request in msg.authz " +
			"(put it after oidc.session's \"active\" and oidc.login's \"ok\"). A consent is remembered per " +
			"person and client as the scopes consented to. It leaves by \"granted\" when a remembered consent " +
			"covers every scope asked for (msg.consent names it, and the code issued will be bound to it: " +
			"withdrawing the consent ends the grant), or when the client is first-party; by \"ask\" otherwise " +
			"(oidc.consent_page), and always for prompt=consent. offline_access needs a consent even from a " +
			"first-party client (OpenID Connect Core §11: no refresh token for offline access without it). " +
			"With prompt=none a needed consent is not asked: the message leaves by \"redirect_error\" with " +
			"msg.redirect carrying consent_required.",
		Fields: []engine.Field{
			{Name: "issuer", Label: "Issuer", Kind: engine.KindString,
				Help: "The iss of error responses (RFC 9207). Empty: flowd's --issuer."},
		},
		Outputs: []string{"granted", "ask", "redirect_error"},
	}
}

type consentBlock struct {
	p      *provider
	issuer string
}

var _ engine.Block = (*consentBlock)(nil)

func newConsentFromConfig(s *engine.Setup, p *provider) (engine.Block, error) {
	iss, err := p.issuerFor(s, "issuer")
	if err != nil {
		return nil, err
	}
	return &consentBlock{p: p, issuer: iss}, nil
}

func (b *consentBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	a, err := authzFromMsg(msg)
	if err != nil {
		return "", fmtErr("oidc.consent", err)
	}
	sess, _, ok := sessionFromMsg(msg)
	if !ok {
		return "", fmtErr("oidc.consent", errors.New("needs msg.session (put oidc.session or oidc.login before it)"))
	}
	delete(msg, "consent")
	cl, err := b.p.Clients.Get(ctx, a.ClientID)
	if err != nil {
		// The client was removed since the request was checked.
		return "", fmtErr("oidc.consent", err)
	}
	rec, err := b.p.Users.consent(ctx, sess.Sub, a.ClientID)
	if err != nil {
		return "", fmtErr("oidc.consent", err)
	}
	now := x.Now()
	needed, bound := consentNeeded(rec, a, cl.FirstParty, now)
	if !needed {
		if bound {
			msg["consent"] = map[string]any{"id": rec.ID}
		}
		return "granted", nil
	}
	if slices.Contains(a.Prompt, "none") {
		redirectError(msg, a.RedirectURI, a.State, b.issuer, "consent_required", "The user must consent to this application.")
		return "redirect_error", nil
	}
	return "ask", nil
}

// redirectError sends an error back to the client's redirect URI, with
// the request's state (when it had one) and iss (RFC 9207), and sets
// msg.oauth_error.
func redirectError(msg engine.Msg, redirectURI, state, issuer, code, desc string) {
	v := url.Values{"error": {code}, "error_description": {desc}, "iss": {issuer}}
	if state != "" {
		v.Set("state", state)
	}
	msg["redirect"] = appendQuery(redirectURI, v)
	oauth.SetError(msg, 400, code, desc)
}

func consentPageSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.consent_page", Title: "Consent page", Category: Category,
		Description: "Renders the consent question (HTML, in msg.payload) for the request in msg.authz and " +
			"the person in msg.session: the application's name, each scope in words with the claims it " +
			"releases, Allow and Deny. Nothing is stored: the question waits in the browser as a consent " +
			"cookie (msg.cookies: answer them as Set-Cookie), sealed with the provider key and bound to the " +
			"session, and the form carries its id and a CSRF token. Answer with content type text/html and " +
			"a Content-Security-Policy.",
		Fields: []engine.Field{
			{Name: "ttl", Label: "Time to answer", Kind: engine.KindDuration, Default: "10m", Min: "1m", Max: "1h",
				Help: "How long the question stays valid."},
			{Name: "action", Label: "Form action", Kind: engine.KindString, Default: "/oauth/consent",
				Help: "Path the form posts to (the route of oidc.consent_answer)."},
		},
		Outputs:   []string{"out"},
		Sensitive: []string{"cookies", "csrf", "tx"},
	}
}

type consentPageBlock struct {
	p      *provider
	ttl    time.Duration
	action string
}

var _ engine.Block = (*consentPageBlock)(nil)

func newConsentPageFromConfig(s *engine.Setup, p *provider) (engine.Block, error) {
	action, err := actionField(s, true)
	if err != nil {
		return nil, err
	}
	return &consentPageBlock{p: p, ttl: s.Config.Duration("ttl"), action: action}, nil
}

func (b *consentPageBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	a, err := authzFromMsg(msg)
	if err != nil {
		return "", fmtErr("oidc.consent_page", err)
	}
	_, sessKey, ok := sessionFromMsg(msg)
	if !ok || sessKey == "" {
		return "", fmtErr("oidc.consent_page", errors.New("needs msg.session with its key (oidc.session or oidc.login)"))
	}
	id, csrf, err := b.p.putRequest(ctx, msg, x.Now(), consentCookies(sessKey), a, b.ttl)
	if err != nil {
		return "", fmtErr("oidc.consent_page", err)
	}
	v := consentView{Action: b.action, TX: id, CSRF: csrf, ClientName: a.ClientName, Username: stringField(mapOf(msg["user"]), "username"),
		Scopes: describeScopes(a.scopes())}
	if v.ClientName == "" {
		v.ClientName = a.ClientID
	}
	return renderPage(ctx, msg, "oidc.consent_page", consentPage(v))
}

// describeScopes puts scopes in words, with the claims each releases.
func describeScopes(scopes []string) []scopeView {
	out := make([]scopeView, 0, len(scopes))
	for _, s := range scopes {
		switch s {
		case "openid":
			out = append(out, scopeView{s, "Know who you are (an identifier for you, the same each time)", []string{"sub"}})
		case "profile":
			out = append(out, scopeView{s, "See your username and name", []string{"preferred_username", "name"}})
		case "email":
			out = append(out, scopeView{s, "See your email address", []string{"email", "email_verified"}})
		case "offline_access":
			out = append(out, scopeView{s, "Keep access while you are not using it (until you withdraw this consent)", nil})
		default:
			out = append(out, scopeView{s, "Use the permission \u201c" + s + "\u201d", nil})
		}
	}
	return out
}

func consentAnswerSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.consent_answer", Title: "Consent answer", Category: Category,
		Description: "Handles the consent form post: the consent cookie the form names must open with the " +
			"provider key for the person's current session, be live, hold the hash of the form's CSRF token " +
			"and not have been answered before (each question is answered once). Allow records the consent " +
			"(remembered per person and client, adding to what was consented before) and leaves by " +
			"\"granted\" with msg.authz, msg.session, msg.user and msg.consent for oidc.issue_code; Deny " +
			"leaves by \"denied\" with msg.redirect carrying access_denied. Anything else (no cookie, another " +
			"session's, tampered, expired, replayed, a repeated parameter) leaves by \"invalid\" with " +
			"msg.oauth_error and changes nothing.",
		Fields: []engine.Field{
			{Name: "remember", Label: "Remember consent for", Kind: engine.KindDuration, Default: "8760h", Min: "1h", Max: "87600h",
				Help: "How long a consent is remembered after the person last gave it."},
			{Name: "issuer", Label: "Issuer", Kind: engine.KindString,
				Help: "The iss of the denial (RFC 9207). Empty: flowd's --issuer."},
		},
		Outputs:   []string{"granted", "denied", "invalid"},
		Sensitive: []string{"cookies", "redirect"},
	}
}

type consentAnswerBlock struct {
	p        *provider
	remember time.Duration
	issuer   string
}

var _ engine.Block = (*consentAnswerBlock)(nil)

func newConsentAnswerFromConfig(s *engine.Setup, p *provider) (engine.Block, error) {
	iss, err := p.issuerFor(s, "issuer")
	if err != nil {
		return nil, err
	}
	return &consentAnswerBlock{p: p, remember: s.Config.Duration("remember"), issuer: iss}, nil
}

const msgConsentExpired = "This consent page has expired or could not be verified. Go back to the application and start again."

func (b *consentAnswerBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	form, all := formParams(msg)
	invalid := func() (string, error) {
		oauth.SetError(msg, 400, "invalid_request", msgConsentExpired)
		return "invalid", nil
	}
	id, csrf, decision := stringField(form, "tx"), stringField(form, "csrf"), stringField(form, "decision")
	if repeated(all) != "" || !looksLikeID(id) || !looksLikeSecret(csrf) || decision != "allow" && decision != "deny" {
		return invalid()
	}
	now := x.Now()
	cookie := b.p.readCookie(msg, sessionCookie)
	sess, err := loadSession(ctx, b.p.State, cookie, now)
	if err != nil {
		return "", fmtErr("oidc.consent_answer", err)
	}
	if sess == nil {
		return invalid()
	}
	sessKey := hashKey(cookie)
	keys, err := b.p.keys(ctx)
	if err != nil {
		return "", fmtErr("oidc.consent_answer", err)
	}
	q, err := openConsent(keys, id, sessKey, b.p.readCookie(msg, consentCookiePrefix+id))
	if err != nil || now.Unix() >= q.Expires || subtle.ConstantTimeCompare([]byte(hashKey(csrf)), []byte(q.CSRF)) != 1 {
		return invalid()
	}
	cl, err := b.p.Clients.Get(ctx, q.Authz.ClientID)
	if errors.Is(err, oauth.ErrNoClient) {
		return invalid()
	}
	if err != nil {
		return "", fmtErr("oidc.consent_answer", err)
	}
	usr, err := b.p.Users.BySub(ctx, sess.Sub)
	if errors.Is(err, ErrNoUser) {
		return invalid()
	}
	if err != nil {
		return "", fmtErr("oidc.consent_answer", err)
	}
	// Answered once: whoever records it first goes on. The first write
	// of the consent step, after the person answered.
	first, err := markUsed(ctx, b.p.State, usedConsentKey(id), q.Expires)
	if err != nil {
		return "", fmtErr("oidc.consent_answer", err)
	}
	if !first {
		return invalid()
	}
	addCookie(msg, b.p.cookie(consentCookiePrefix+id, "", -1))
	a := q.Authz
	a.ClientName = cl.Name
	if a.ClientName == "" {
		a.ClientName = cl.ID
	}
	if decision == "deny" {
		redirectError(msg, a.RedirectURI, a.State, b.issuer, "access_denied", "The user did not allow the request.")
		return "denied", nil
	}
	consentID, err := b.p.Users.giveConsent(ctx, sess.Sub, a.ClientID, a.scopes(), now, b.remember)
	if err != nil {
		return "", fmtErr("oidc.consent_answer", err)
	}
	msg["authz"] = a.toMsg()
	setSession(msg, sessKey, sess, usr)
	msg["consent"] = map[string]any{"id": consentID}
	return "granted", nil
}
