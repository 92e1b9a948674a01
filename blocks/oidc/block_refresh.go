package oidc

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
)

func refreshSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.refresh", Title: "Refresh token grant", Category: Category,
		Description: "The refresh_token grant at the token endpoint, for the client in msg.client. " +
			"Refresh tokens rotate: each is good for one refresh and the answer carries a new one " +
			"(msg.refresh_token). Using one a second time is taken as theft: the whole grant is " +
			"revoked (every refresh token of it, and its access tokens at userinfo). A grant revoked " +
			"any way (reuse, code replay, logout of the session it was made in) refreshes no more. A scope " +
			"parameter may narrow the scope, never widen it. On success msg.grant holds client_id, " +
			"subject, scope, audience, auth_time (of the original sign-in), acr, amr and grant_id; " +
			"errors leave by \"invalid\" with an RFC 6749 §5.2 msg.oauth_error (answer 400).",
		Fields:  tokenGrantFields(),
		Outputs: []string{"ok", "invalid"},
	}
}

type refreshBlock struct {
	p          *provider
	audience   string
	refreshTTL time.Duration
}

func newRefreshFromConfig(s *engine.Setup, p *provider) (engine.Block, error) {
	c := s.Config
	if c.String("default_audience") == "" {
		return nil, s.Errorf("default_audience", "required")
	}
	return &refreshBlock{p: p, audience: c.String("default_audience"), refreshTTL: c.Duration("refresh_ttl")}, nil
}

func (b *refreshBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	clientID, grants, err := tokenClient(msg, "oidc.refresh")
	if err != nil {
		return "", err
	}
	form, all := formParams(msg)
	switch {
	case str(form, "grant_type") != oauth.GrantRefreshToken:
		oauth.SetError(msg, 400, "unsupported_grant_type", "this block refreshes tokens")
		return "invalid", nil
	case !slices.Contains(grants, oauth.GrantRefreshToken):
		oauth.SetError(msg, 400, "unauthorized_client", "this client may not use the refresh_token grant")
		return "invalid", nil
	case repeated(all) != "":
		oauth.SetError(msg, 400, "invalid_request", "a parameter is repeated")
		return "invalid", nil
	}
	token := str(form, "refresh_token")
	if token == "" {
		oauth.SetError(msg, 400, "invalid_request", "refresh_token is required")
		return "invalid", nil
	}
	const bad = "the refresh token is invalid, expired or revoked"
	if !looksLikeSecret(token) {
		return invalidGrant(msg, bad)
	}
	requested, _ := form["scope"].(string)
	now := x.Now()
	var outcome string
	var rec refreshRecord
	err = updateRec(ctx, b.p.State, nsRefresh, hashKey(token), func(cur *refreshRecord) (*refreshRecord, error) {
		switch {
		case cur == nil:
			outcome = "unknown"
			return nil, nil
		case cur.ClientID != clientID:
			outcome = "wrong_client"
			return cur, nil
		case cur.Used:
			outcome = "reused"
			rec = *cur
			return cur, nil
		case now.Unix() >= cur.Expires:
			outcome = "expired"
			return cur, nil
		case !narrows(cur.Scope, requested):
			// Refused before rotating: a bad request does not cost the token.
			outcome = "bad_scope"
			return cur, nil
		}
		outcome = "rotate"
		rec = *cur
		cur.Used = true
		return cur, nil
	})
	if err != nil {
		return "", fmtErr("oidc.refresh", err)
	}
	switch outcome {
	case "reused":
		if err := revokeGrant(ctx, b.p.State, rec.GrantID, rec.ClientID, "refresh_token_reused", now, b.refreshTTL+grantSlack); err != nil {
			return "", fmtErr("oidc.refresh", err)
		}
		b.p.log.Warn("refresh token reused: grant revoked", "client", clientID)
		return invalidGrant(msg, bad)
	case "rotate":
	case "bad_scope":
		oauth.SetError(msg, 400, "invalid_scope", "the scope may only narrow what was granted")
		return "invalid", nil
	default:
		return invalidGrant(msg, bad)
	}
	usr, err := b.p.Users.BySub(ctx, rec.Sub)
	if errors.Is(err, ErrNoUser) {
		return invalidGrant(msg, "the user no longer exists")
	}
	if err != nil {
		return "", fmtErr("oidc.refresh", err)
	}
	scope := rec.Scope
	if want := strings.Fields(requested); len(want) > 0 {
		scope = strings.Join(dedupe(want), " ")
	}
	// One transaction on the grant both checks it is live and extends it
	// to the new token's life (plus slack). Revocation (reuse, replay,
	// logout) is a transaction on the same record, so it comes either
	// before this one (refused here) or after (and ends what is minted
	// below, which is only good while the grant is).
	var active bool
	err = updateRec(ctx, b.p.State, nsGrants, rec.GrantID, func(cur *grantRecord) (*grantRecord, error) {
		if cur == nil || cur.Revoked != "" || now.Unix() >= cur.Purge {
			return cur, nil
		}
		active = true
		cur.Purge = max(cur.Purge, now.Add(b.refreshTTL+grantSlack).Unix())
		return cur, nil
	})
	if err != nil {
		return "", fmtErr("oidc.refresh", err)
	}
	if !active {
		return invalidGrant(msg, bad)
	}
	next := newSecret()
	r := rec
	r.Used = false
	r.Expires = now.Add(b.refreshTTL).Unix()
	r.Purge = r.Expires
	if err := putRec(ctx, b.p.State, nsRefresh, hashKey(next), &r); err != nil {
		return "", fmtErr("oidc.refresh", err)
	}
	msg["refresh_token"] = next
	msg["grant"] = map[string]any{"client_id": clientID, "subject": usr.Sub, "scope": scope, "audience": b.audience,
		"auth_time": rec.AuthTime, "acr": rec.ACR, "amr": anyList(rec.AMR), "grant_id": rec.GrantID}
	return "ok", nil
}

// narrows reports whether a requested scope (empty: all) is within the
// granted one.
func narrows(granted, requested string) bool {
	have := strings.Fields(granted)
	for _, want := range strings.Fields(requested) {
		if !slices.Contains(have, want) {
			return false
		}
	}
	return len(requested) <= maxScopeLen
}
