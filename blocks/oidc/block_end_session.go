package oidc

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
)

// msgLogoutExpired is the one answer to a sign-out confirmation that
// cannot be verified: missing, wrong, used, expired, or another browser's.
const msgLogoutExpired = "This sign-out page has expired or could not be verified. Nobody was signed out."

// maxConfirmTTL is confirm_ttl's Max: how long after its session expired
// a confirmed logout may still come.
const maxConfirmTTL = time.Hour

func endSessionSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.end_session", Title: "End session (logout)", Category: Category,
		Description: "OpenID Connect RP-Initiated Logout 1.0 for GET (query) or POST (form) requests. " +
			"An id_token_hint must be an ID token this provider signed (expired is fine, as the " +
			"specification asks) for a registered client; client_id, when sent too, must be one of its " +
			"audiences. A post_logout_redirect_uri must equal one the client registered, character for " +
			"character. When the browser has a provider session and the request has no hint for it " +
			"(same sub and auth_time), the person is asked first (§2: otherwise any site could sign " +
			"them out): the message leaves by \"confirm\" with msg.logout {csrf, client_name, username, " +
			"action} for oidc.page's logout_confirm, and the request waits as a record bound to this " +
			"session. The form posts back with the CSRF token: \"logout\" ends the session, \"stay\" " +
			"leaves by \"cancelled\". Ending a session revokes the grants made in it (their refresh tokens, " +
			"and their access tokens at userinfo and oidc.grant_active), except those with the offline_access " +
			"scope, then deletes it and its cookie (msg.cookies); with a " +
			"redirect URI the message leaves by \"redirect\" with msg.redirect (state echoed exactly), " +
			"without one by \"done\". A bad hint, client, redirect URI or confirmation leaves by " +
			"\"invalid\" with msg.oauth_error and never redirects.",
		Fields: []engine.Field{
			{Name: "keyset", Label: "Keyset", Kind: engine.KindString, Ref: engine.RefKeyset, Default: "main",
				Help: "Keyset whose keys (next, active, retired) verify id_token_hint."},
			{Name: "algorithms", Label: "Allowed algorithms", Kind: engine.KindStrings, Default: []string{"RS256", "ES256"},
				Help: "Algorithms an id_token_hint may be signed with."},
			{Name: "issuer", Label: "Issuer", Kind: engine.KindString, Help: "The hint's iss. Empty: flowd's --issuer."},
			{Name: "confirm_ttl", Label: "Time to confirm", Kind: engine.KindDuration, Default: "10m", Min: "1m", Max: "1h",
				Help: "How long the sign-out question can be answered."},
			{Name: "action", Label: "Form action", Kind: engine.KindString,
				Help: "Path the confirmation form posts to. Empty: the path of the request (the logout route)."},
		},
		Outputs:   []string{"redirect", "done", "confirm", "cancelled", "invalid"},
		Sensitive: []string{"cookies", "redirect", "logout", "csrf", "id_token_hint"},
	}
}

type endSessionBlock struct {
	p          *provider
	hint       *hintChecker
	confirmTTL time.Duration
	action     string
}

var _ engine.Block = (*endSessionBlock)(nil)

func newEndSessionFromConfig(s *engine.Setup, p *provider) (engine.Block, error) {
	c := s.Config
	iss, err := p.issuerFor(s, "issuer")
	if err != nil {
		return nil, err
	}
	hint, err := newHintChecker(s, p, iss) // its audience is checked below against registered clients
	if err != nil {
		return nil, err
	}
	action, err := actionField(s, false)
	if err != nil {
		return nil, err
	}
	return &endSessionBlock{p: p, hint: hint, confirmTTL: c.Duration("confirm_ttl"), action: action}, nil
}

// logoutRequest is a checked logout request: a registered client and
// post-logout redirect URI (or none), and the hint's subject.
type logoutRequest struct {
	clientID, redirect, state string
	clientName                string // the client's name, else its id; "" without a client
	hintSub                   string // "" without a hint
	hintAuthTime              int64  // 0 when the hint has none
}

func (b *endSessionBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	params, all := queryParams(msg)
	post := stringField(reqOf(msg), "method") == "POST"
	if post {
		params, all = formParams(msg)
	}
	if repeated(all) != "" {
		oauth.SetError(msg, 400, "invalid_request", "A parameter is repeated.")
		return "invalid", nil
	}
	if _, ok := params["csrf"]; ok && post {
		return b.answer(ctx, x, msg, params)
	}
	now := x.Now()
	req, desc, err := b.check(ctx, params, now)
	if err != nil {
		return "", fmtErr("oidc.end_session", err)
	}
	if desc != "" {
		oauth.SetError(msg, 400, "invalid_request", desc)
		return "invalid", nil
	}
	cookie := b.p.readCookie(msg, sessionCookie)
	if cookie == "" {
		return leave(msg, req.redirect, req.state), nil
	}
	sess, usr, err := b.p.signedIn(ctx, cookie, now)
	if err != nil {
		return "", fmtErr("oidc.end_session", err)
	}
	// Only a hint for this very session ends it without asking: the
	// same person, signed in at the same time. A hint for someone else,
	// or from an earlier session, is what an attacker who got hold of an
	// old ID token would send.
	if sess == nil || req.hintSub == sess.Sub && req.hintAuthTime == sess.AuthTime {
		// Without a live session nobody is signed in and nothing was
		// asked: such a request (any site can send one) ends no grants.
		if err := b.endSession(ctx, x, msg, cookie, sess != nil); err != nil {
			return "", err
		}
		return leave(msg, req.redirect, req.state), nil
	}
	csrf := newSecret()
	rec := &logoutRecord{Binding: hashKey(cookie), ClientID: req.clientID, RedirectURI: req.redirect, State: req.state,
		Expires: now.Add(b.confirmTTL).Unix(), Purge: now.Add(b.confirmTTL).Unix()}
	if err := createRec(ctx, b.p.State, nsLogout, hashKey(csrf), rec); err != nil {
		return "", fmtErr("oidc.end_session", err)
	}
	msg["logout"] = map[string]any{"csrf": csrf, "client_name": req.clientName, "username": usr.Username,
		"action": formAction(b.action, msg, "/oauth/logout")}
	return "confirm", nil
}

// check checks a logout request's parameters. A reason to refuse it is
// returned as desc; err is for failures of the provider itself.
func (b *endSessionBlock) check(ctx context.Context, params map[string]any, now time.Time) (req logoutRequest, desc string, err error) {
	hint := stringField(params, "id_token_hint")
	req = logoutRequest{clientID: stringField(params, "client_id"), redirect: stringField(params, "post_logout_redirect_uri"),
		state: stringField(params, "state")}
	if len(req.state) > maxStateLen {
		return req, "state is too long.", nil
	}
	if hint != "" {
		claims, err := b.checkHint(ctx, hint, now)
		if err != nil {
			var te *jose.TokenError
			if errors.As(err, &te) {
				return req, "The id_token_hint is not a valid ID token from this provider.", nil
			}
			return req, "", err
		}
		req.hintSub = stringField(claims, "sub")
		req.hintAuthTime, _ = int64Of(claims["auth_time"])
		auds := oauth.StringList(claims["aud"])
		if a, ok := claims["aud"].(string); ok {
			auds = []string{a}
		}
		switch {
		case req.clientID != "" && !slices.Contains(auds, req.clientID):
			return req, "client_id is not an audience of the id_token_hint.", nil
		case req.clientID == "" && len(auds) == 1:
			req.clientID = auds[0]
		case req.clientID == "":
			req.clientID = stringField(claims, "azp")
		}
	}
	var cl oauth.Client
	if req.clientID != "" {
		cl, err = b.p.Clients.Get(ctx, req.clientID)
		if errors.Is(err, oauth.ErrNoClient) {
			return req, "The application is not registered.", nil
		}
		if err != nil {
			return req, "", err
		}
		req.clientName = cl.Name
		if req.clientName == "" {
			req.clientName = cl.ID
		}
	}
	if req.redirect != "" {
		if req.clientID == "" {
			return req, "post_logout_redirect_uri needs id_token_hint or client_id.", nil
		}
		if !slices.Contains(cl.PostLogoutRedirectURIs, req.redirect) {
			return req, "The post_logout_redirect_uri is not registered for this application.", nil
		}
	}
	return req, "", nil
}

// answer handles the confirmation form: its CSRF token names the waiting
// logout request, which must be live and bound to the session cookie this
// browser sends. The first answer from that browser, either one, spends
// the record; an answer from anywhere else leaves it alone.
func (b *endSessionBlock) answer(ctx context.Context, x *engine.Exec, msg engine.Msg, form map[string]any) (string, error) {
	csrf, choice := stringField(form, "csrf"), stringField(form, "action")
	refuse := func() (string, error) {
		oauth.SetError(msg, 400, "invalid_request", msgLogoutExpired)
		return "invalid", nil
	}
	if choice != "logout" && choice != "stay" {
		return refuse()
	}
	cookie := b.p.readCookie(msg, sessionCookie)
	if !looksLikeSecret(csrf) || !looksLikeSecret(cookie) {
		if choice == "stay" {
			return "cancelled", nil
		}
		return refuse()
	}
	binding := hashKey(cookie)
	var rec *logoutRecord
	err := updateRec(ctx, b.p.State, nsLogout, hashKey(csrf), func(cur *logoutRecord) (*logoutRecord, error) {
		rec = nil // the function may run again: a record a first call saw may be spent by now
		if cur == nil {
			return nil, nil
		}
		if subtle.ConstantTimeCompare([]byte(binding), []byte(cur.Binding)) != 1 {
			return cur, nil // another browser's: not this one's to spend
		}
		rec = cur
		return nil, nil
	})
	if err != nil {
		return "", fmtErr("oidc.end_session", err)
	}
	if choice == "stay" {
		// Nothing changes, so nothing needs proving.
		return "cancelled", nil
	}
	if rec == nil || x.Now().Unix() >= rec.Expires {
		return refuse()
	}
	if err := b.endSession(ctx, x, msg, cookie, true); err != nil {
		return "", err
	}
	redirect := rec.RedirectURI
	if redirect != "" {
		// The client may have dropped the URI while the person read the
		// question: then the signed-out page, never a stale redirect.
		cl, err := b.p.Clients.Get(ctx, rec.ClientID)
		if err != nil && !errors.Is(err, oauth.ErrNoClient) {
			return "", fmtErr("oidc.end_session", err)
		}
		if err != nil || !slices.Contains(cl.PostLogoutRedirectURIs, redirect) {
			redirect = ""
		}
	}
	return leave(msg, redirect, rec.State), nil
}

// endSession deletes the session a cookie names and the cookie, after
// revoking the session's grants when revoke is set. Revocation comes
// first: if it fails, the session and its cookie are left as they were
// and the error stops the flow, so the person sees the logout fail and can
// try again rather than believe their apps signed out.
func (b *endSessionBlock) endSession(ctx context.Context, x *engine.Exec, msg engine.Msg, cookie string, revoke bool) error {
	if looksLikeSecret(cookie) {
		key := hashKey(cookie)
		if revoke {
			n, err := revokeSessionGrants(ctx, b.p.State, key, x.Now())
			if err != nil {
				return fmtErr("oidc.end_session", fmt.Errorf("revoke the session's grants: %w", err))
			}
			if n > 0 {
				b.p.log.Info("logout revoked the session's grants", "grants", n)
			}
		}
		if err := deleteRec(ctx, b.p.State, nsSessions, key); err != nil {
			return fmtErr("oidc.end_session", err)
		}
	}
	addCookie(msg, b.p.cookie(sessionCookie, "", -1))
	return nil
}

// leave is the port after a logout (or when there was nothing to log
// out): to a checked redirect URI with state, else the signed-out page.
func leave(msg engine.Msg, redirect, state string) string {
	if redirect == "" {
		return "done"
	}
	v := url.Values{}
	if state != "" {
		v.Set("state", state)
	}
	msg["redirect"] = appendQuery(redirect, v)
	return "redirect"
}

// checkHint verifies an id_token_hint (checkIDTokenHint).
func (b *endSessionBlock) checkHint(ctx context.Context, hint string, now time.Time) (map[string]any, error) {
	return checkIDTokenHint(ctx, b.hint.v, b.hint.policy, hint, now)
}

// checkIDTokenHint verifies an id_token_hint with v (built from policy).
// An expired one is accepted: its signature, issuer and type are checked
// as of its own iat, which must not be in the future.
func checkIDTokenHint(ctx context.Context, v *jose.Validator, policy jose.Policy, hint string, now time.Time) (map[string]any, error) {
	res, err := v.Validate(ctx, hint)
	var te *jose.TokenError
	if err == nil || !errors.As(err, &te) || te.Reason != jose.ReasonExpired {
		if err != nil {
			return nil, err
		}
		return res.Claims, nil
	}
	d, derr := jose.Decode(hint)
	if derr != nil {
		return nil, te
	}
	iat, ok := int64Of(d.Claims["iat"])
	if !ok || iat > now.Unix() {
		return nil, te
	}
	pol := policy
	pol.Now = func() time.Time { return time.Unix(iat, 0) }
	at, err := jose.NewValidator(pol)
	if err != nil {
		return nil, fmt.Errorf("hint validator: %w", err)
	}
	res, err = at.Validate(ctx, hint)
	if err != nil {
		return nil, err
	}
	return res.Claims, nil
}
