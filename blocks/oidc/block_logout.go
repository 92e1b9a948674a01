package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
)

func endSessionSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.end_session", Title: "End session (logout)", Category: Category,
		Description: "OpenID Connect RP-Initiated Logout 1.0 for GET (query) or POST (form) requests. " +
			"An id_token_hint must be an ID token this provider signed (expired is fine, as the " +
			"specification asks) for a registered client; client_id, when sent too, must be one of its " +
			"audiences. A post_logout_redirect_uri must equal one the client registered, character for " +
			"character. The provider session of the hinted user (or, without a hint, of this browser) is " +
			"ended and its cookie deleted (msg.cookies). With a redirect URI the message leaves by " +
			"\"redirect\" with msg.redirect (state echoed exactly); without one by \"done\". A bad hint, " +
			"client or redirect URI leaves by \"invalid\" with msg.oauth_error and never redirects.",
		Fields: []engine.Field{
			{Name: "keyset", Label: "Keyset", Kind: engine.KindString, Default: "main",
				Help: "Keyset whose keys (next, active, retired) verify id_token_hint."},
			{Name: "algorithms", Label: "Allowed algorithms", Kind: engine.KindStrings, Default: []string{"RS256", "ES256"},
				Help: "Algorithms an id_token_hint may be signed with."},
			{Name: "issuer", Label: "Issuer", Kind: engine.KindString, Help: "The hint's iss. Empty: flowd's --issuer."},
		},
		Outputs:   []string{"redirect", "done", "invalid"},
		Sensitive: []string{"cookies", "redirect"},
	}
}

type endSessionBlock struct {
	p      *provider
	policy jose.Policy
	v      *jose.Validator
}

func newEndSessionFromConfig(s *engine.Setup, p *provider) (engine.Block, error) {
	c := s.Config
	iss, err := p.issuerFor(s, "issuer")
	if err != nil {
		return nil, err
	}
	if c.String("keyset") == "" {
		return nil, s.Errorf("keyset", "required")
	}
	for _, a := range c.Strings("algorithms") {
		if !slices.Contains(idTokenAlgs, a) {
			return nil, s.Errorf("algorithms", "%q is not an ID token algorithm (%v)", a, idTokenAlgs)
		}
	}
	pol := jose.DefaultPolicy()
	pol.Algorithms = c.Strings("algorithms")
	pol.Source = p.Keysets.Source(c.String("keyset"))
	pol.Issuer = iss
	pol.AudienceOptional = true // checked below against registered clients
	pol.Types = []string{"JWT"} // an access token (at+jwt) is not a hint
	pol.Leeway = 30 * time.Second
	pol.RequiredClaims = []string{"sub", "aud", "iat"}
	v, err := jose.NewValidator(pol)
	if err != nil {
		return nil, s.Errorf("algorithms", "%v", err)
	}
	return &endSessionBlock{p: p, policy: pol, v: v}, nil
}

func (b *endSessionBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	params, all := queryParams(msg)
	if str(reqOf(msg), "method") == "POST" {
		params, all = formParams(msg)
	}
	bad := func(desc string) (string, error) {
		oauth.SetError(msg, 400, "invalid_request", desc)
		return "invalid", nil
	}
	if repeated(all) != "" {
		return bad("A parameter is repeated.")
	}
	hint, clientID := str(params, "id_token_hint"), str(params, "client_id")
	redirect, state := str(params, "post_logout_redirect_uri"), str(params, "state")
	if len(state) > maxStateLen {
		return bad("state is too long.")
	}
	now := x.Now()
	var hintSub string
	if hint != "" {
		claims, err := b.checkHint(ctx, hint, now)
		if err != nil {
			var te *jose.TokenError
			if errors.As(err, &te) {
				return bad("The id_token_hint is not a valid ID token from this provider.")
			}
			return "", fmtErr("oidc.end_session", err)
		}
		hintSub = str(claims, "sub")
		auds := oauth.StringList(claims["aud"])
		if a, ok := claims["aud"].(string); ok {
			auds = []string{a}
		}
		switch {
		case clientID != "" && !slices.Contains(auds, clientID):
			return bad("client_id is not an audience of the id_token_hint.")
		case clientID == "" && len(auds) == 1:
			clientID = auds[0]
		case clientID == "":
			clientID = str(claims, "azp")
		}
	}
	var cl oauth.Client
	if clientID != "" {
		var err error
		cl, err = b.p.Clients.Get(ctx, clientID)
		if errors.Is(err, oauth.ErrNoClient) {
			return bad("The application is not registered.")
		}
		if err != nil {
			return "", fmtErr("oidc.end_session", err)
		}
	}
	if redirect != "" {
		if clientID == "" {
			return bad("post_logout_redirect_uri needs id_token_hint or client_id.")
		}
		if !slices.Contains(cl.PostLogoutRedirectURIs, redirect) {
			return bad("The post_logout_redirect_uri is not registered for this application.")
		}
	}
	if cookie := b.p.readCookie(msg, sessionCookie); cookie != "" {
		sess, err := loadSession(ctx, b.p.State, cookie, now)
		if err != nil {
			return "", fmtErr("oidc.end_session", err)
		}
		// A hint for someone else does not end this browser's session.
		if sess == nil || hintSub == "" || hintSub == sess.Sub {
			if looksLikeSecret(cookie) {
				if err := deleteRec(ctx, b.p.State, nsSessions, hashKey(cookie)); err != nil {
					return "", fmtErr("oidc.end_session", err)
				}
			}
			addCookie(msg, b.p.cookie(sessionCookie, "", -1))
		}
	}
	if redirect == "" {
		return "done", nil
	}
	v := url.Values{}
	if state != "" {
		v.Set("state", state)
	}
	msg["redirect"] = appendQuery(redirect, v)
	return "redirect", nil
}

// checkHint verifies an id_token_hint. An expired one is accepted: its
// signature, issuer and type are checked as of its own iat, which must
// not be in the future.
func (b *endSessionBlock) checkHint(ctx context.Context, hint string, now time.Time) (map[string]any, error) {
	res, err := b.v.Validate(ctx, hint)
	var te *jose.TokenError
	if err == nil || !errors.As(err, &te) || te.Reason != jose.ReasonExpired {
		if err != nil {
			return nil, err
		}
		return res.Claims, nil
	}
	d, derr := jose.Decode(hint)
	if derr != nil {
		return nil, derr
	}
	iat, ok := int64Of(d.Claims["iat"])
	if !ok || iat > now.Unix() {
		return nil, te
	}
	pol := b.policy
	pol.Now = func() time.Time { return time.Unix(iat, 0) }
	v, err := jose.NewValidator(pol)
	if err != nil {
		return nil, fmt.Errorf("hint validator: %w", err)
	}
	res, err = v.Validate(ctx, hint)
	if err != nil {
		return nil, err
	}
	return res.Claims, nil
}
