package oidc

import (
	"context"
	"errors"
	"net/url"
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
			"carrying login_required.",
		Fields: []engine.Field{
			{Name: "issuer", Label: "Issuer", Kind: engine.KindString,
				Help: "The iss of error responses (RFC 9207). Empty: flowd's --issuer."},
		},
		Outputs:   []string{"active", "login", "redirect_error"},
		Sensitive: []string{"cookies"},
	}
}

type sessionBlock struct {
	p      *provider
	issuer string
}

func newSessionFromConfig(s *engine.Setup, p *provider) (engine.Block, error) {
	iss, err := p.issuerFor(s, "issuer")
	if err != nil {
		return nil, err
	}
	return &sessionBlock{p: p, issuer: iss}, nil
}

func (b *sessionBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	a, err := authzFromMsg(msg)
	if err != nil {
		return "", fmtErr("oidc.session", err)
	}
	now := x.Now()
	cookie := b.p.readCookie(msg, sessionCookie)
	sess, err := loadSession(ctx, b.p.State, cookie, now)
	if err != nil {
		return "", fmtErr("oidc.session", err)
	}
	var usr User
	if sess != nil {
		usr, err = b.p.Users.BySub(ctx, sess.Sub)
		if errors.Is(err, ErrNoUser) {
			sess = nil
		} else if err != nil {
			return "", fmtErr("oidc.session", err)
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
		v := url.Values{"error": {"login_required"}, "error_description": {"The user must sign in."}, "iss": {b.issuer}}
		if a.State != "" {
			v.Set("state", a.State)
		}
		msg["redirect"] = appendQuery(a.RedirectURI, v)
		oauth.SetError(msg, 400, "login_required", "The user must sign in.")
		return "redirect_error", nil
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
	s = &sessionRecord{Sub: str(m, "sub"), ACR: str(m, "acr"), AMR: oauth.StringList(m["amr"])}
	t, ok := int64Of(m["auth_time"])
	s.AuthTime = t
	if key = str(m, "key"); !isHashKey(key) {
		key = ""
	}
	return s, key, ok && s.Sub != ""
}
