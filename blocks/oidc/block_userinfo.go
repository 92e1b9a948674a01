package oidc

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/flowd/flowd/engine"
)

func userinfoSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.userinfo", Title: "UserInfo claims", Category: Category,
		Description: "Answers the UserInfo endpoint for an access token already validated by jose.validate " +
			"(msg.claims). The token must have been issued to a person (it names a grant, gid) under a " +
			"grant that is not revoked or expired, with the openid scope. msg.payload gets sub and the claims its " +
			"scopes allow: profile gives preferred_username and name, email gives email and " +
			"email_verified, all read from the user record now. Otherwise the message leaves by " +
			"\"invalid\" with msg.invalid {reason, detail} like jose.validate's (reason " +
			"not_a_user_token, insufficient_scope, grant_revoked or user_unknown).",
		Outputs: []string{"ok", "invalid"},
	}
}

type userinfoBlock struct{ p *provider }

var _ engine.Block = (*userinfoBlock)(nil)

func newUserinfoFromConfig(_ *engine.Setup, p *provider) (engine.Block, error) {
	return &userinfoBlock{p: p}, nil
}

func (b *userinfoBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	claims := mapOf(msg["claims"])
	if claims == nil {
		return "", fmtErr("oidc.userinfo", errors.New("needs msg.claims: put jose.validate before it"))
	}
	refuse := func(reason, detail string) (string, error) {
		delete(msg, "payload")
		msg["invalid"] = map[string]any{"reason": reason, "detail": detail}
		return "invalid", nil
	}
	gid, sub := stringField(claims, "gid"), stringField(claims, "sub")
	if gid == "" || sub == "" {
		return refuse("not_a_user_token", "the access token was not issued to a person")
	}
	scopes := strings.Fields(stringField(claims, "scope"))
	if !slices.Contains(scopes, "openid") {
		return refuse("insufficient_scope", "the access token lacks the openid scope")
	}
	active, err := grantActive(ctx, b.p.State, gid, x.Now())
	if err != nil {
		return "", fmtErr("oidc.userinfo", err)
	}
	if !active {
		return refuse("grant_revoked", "the grant of this access token was revoked")
	}
	usr, err := b.p.Users.BySub(ctx, sub)
	if errors.Is(err, ErrNoUser) {
		return refuse("user_unknown", "the user no longer exists")
	}
	if err != nil {
		return "", fmtErr("oidc.userinfo", err)
	}
	msg["payload"] = usr.Claims(scopes)
	return "ok", nil
}
