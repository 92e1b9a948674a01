package oidc

import (
	"context"
	"errors"
	"slices"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
)

// sessionCookie is the provider session's cookie (base name).
const sessionCookie = "flowd_session"

func sessionSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.session", Title: "Provider session", Category: Category,
		Description: "Looks for the person's session at the provider (the session cookie set by " +
			"oidc.login) for the authorization request in msg.authz. A live session of an existing " +
			"user, not refused by prompt=login or max_age, leaves by \"active\" with msg.session " +
			"{sub, auth_time, acr, amr, key} and msg.user: the sign-in page is skipped. Otherwise the " +
			"message leaves by \"login\", or, for prompt=none, by \"redirect_error\" with msg.redirect " +
			"carrying login_required. An id_token_hint in the request (query, or form body of a POST) must " +
			"be an ID token this provider signed for the client (expired is fine; otherwise redirect_error " +
			"with invalid_request); a session of another person than the hint's is not used: prompt=none " +
			"answers login_required, otherwise the sign-in page is shown.",
		Fields: append([]engine.Field{
			{Name: "issuer", Label: "Issuer", Kind: engine.KindString,
				Help: "The iss of error responses (RFC 9207). Empty: flowd's --issuer."},
		}, hintFields()...),
		Outputs:   []string{"active", "login", "redirect_error"},
		Sensitive: []string{"cookies"},
	}
}

type sessionBlock struct {
	p      *provider
	issuer string
	hint   *hintChecker
}

var _ engine.Block = (*sessionBlock)(nil)

func newSessionFromConfig(s *engine.Setup, p *provider) (engine.Block, error) {
	iss, err := p.issuerFor(s, "issuer")
	if err != nil {
		return nil, err
	}
	h, err := newHintChecker(s, p, iss)
	if err != nil {
		return nil, err
	}
	return &sessionBlock{p: p, issuer: iss, hint: h}, nil
}

func (b *sessionBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	a, err := authzFromMsg(msg)
	if err != nil {
		return "", fmtErr("oidc.session", err)
	}
	now := x.Now()
	cookie := b.p.readCookie(msg, sessionCookie)
	sess, usr, err := b.p.signedIn(ctx, cookie, now)
	if err != nil {
		return "", fmtErr("oidc.session", err)
	}
	refuse := func(code, desc string) (string, error) {
		redirectError(msg, a.RedirectURI, a.State, b.issuer, code, desc)
		return "redirect_error", nil
	}
	if params, _ := authzParams(msg); stringField(params, "id_token_hint") != "" {
		hintSub, err := b.hint.subject(ctx, stringField(params, "id_token_hint"), a.ClientID, now)
		if errors.Is(err, errBadHint) {
			return refuse("invalid_request", "The id_token_hint is not a valid ID token from this provider for this application.")
		}
		if err != nil {
			return "", fmtErr("oidc.session", err)
		}
		if sess != nil && sess.Sub != hintSub {
			// Someone else is signed in: never answer for them.
			sess = nil
		}
	}
	// max_age=0 means "sign in again now", like prompt=login (OpenID
	// Connect Core §3.1.2.1): with whole seconds, a sign-in in this very
	// second would otherwise count as 0 seconds old and pass.
	fresh := sess != nil && !slices.Contains(a.Prompt, "login") &&
		(a.MaxAge < 0 || a.MaxAge > 0 && now.Unix()-sess.AuthTime <= a.MaxAge)
	if fresh {
		setSession(msg, hashKey(cookie), sess, usr)
		return "active", nil
	}
	if slices.Contains(a.Prompt, "none") {
		return refuse("login_required", "The user must sign in.")
	}
	return "login", nil
}

// setSession writes msg.session and msg.user. msg.session.key is the
// session's store key (the SHA-256 of its cookie, which it cannot be
// turned back into): oidc.issue_code records it so that logging out ends
// the grants made in the session.
func setSession(msg engine.Msg, key string, s *sessionRecord, usr User) {
	msg["session"] = map[string]any{"sub": s.Sub, "auth_time": s.AuthTime, "acr": s.ACR, "amr": anyList(s.AMR), "key": key}
	msg["user"] = map[string]any{"sub": usr.Sub, "username": usr.Username, "name": usr.Name, "email": usr.Email}
}

// sessionFromMsg reads msg.session, and its key ("" when absent or not
// the shape of one: a session flowd did not start).
func sessionFromMsg(msg engine.Msg) (s *sessionRecord, key string, ok bool) {
	m := mapOf(msg["session"])
	s = &sessionRecord{Sub: stringField(m, "sub"), ACR: stringField(m, "acr"), AMR: oauth.StringList(m["amr"])}
	t, ok := int64Of(m["auth_time"])
	s.AuthTime = t
	if key = stringField(m, "key"); !isHashKey(key) {
		key = ""
	}
	return s, key, ok && s.Sub != ""
}
