package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
)

// replayWindow is how long a used code is remembered after it expired, so
// that a late replay still revokes what the code issued.
const replayWindow = time.Hour

// grantSlack keeps a grant past the last token that may name it (access
// tokens live at most 24 h: jose.sign's limit).
const grantSlack = 25 * time.Hour

func issueCodeSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.issue_code", Title: "Issue authorization code", Category: Category,
		Description: "Issues a single-use, short-lived authorization code for the request in msg.authz " +
			"and the signed-in person in msg.session, bound to the client, the redirect URI, the PKCE " +
			"challenge, the nonce, the user and the consent (msg.consent, from oidc.consent or " +
			"oidc.consent_answer: withdrawing it refuses the code and ends the grant). msg.redirect is the redirect URI with code, state " +
			"(exactly as sent) and iss: answer it with 302 and Location.",
		Fields: []engine.Field{
			{Name: "ttl", Label: "Code lifetime", Kind: engine.KindDuration, Default: "60s", Min: "5s", Max: "10m",
				Help: "How long the code may be exchanged (RFC 6749 recommends at most 10 minutes)."},
			{Name: "issuer", Label: "Issuer", Kind: engine.KindString,
				Help: "The iss of the authorization response (RFC 9207). Empty: flowd's --issuer."},
		},
		Outputs:   []string{"out"},
		Sensitive: []string{"redirect", "cookies"},
	}
}

type issueCodeBlock struct {
	p      *provider
	ttl    time.Duration
	issuer string
}

var _ engine.Block = (*issueCodeBlock)(nil)

func newIssueCodeFromConfig(s *engine.Setup, p *provider) (engine.Block, error) {
	iss, err := p.issuerFor(s, "issuer")
	if err != nil {
		return nil, err
	}
	return &issueCodeBlock{p: p, ttl: s.Config.Duration("ttl"), issuer: iss}, nil
}

func (b *issueCodeBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	a, err := authzFromMsg(msg)
	if err != nil {
		return "", fmtErr("oidc.issue_code", err)
	}
	sess, sessKey, ok := sessionFromMsg(msg)
	if !ok {
		return "", fmtErr("oidc.issue_code", errors.New("needs msg.session (put oidc.session or oidc.login before it)"))
	}
	now := x.Now()
	code := newSecret()
	rec := &codeRecord{ClientID: a.ClientID, RedirectURI: a.RedirectURI, Scope: a.Scope, Nonce: a.Nonce,
		CodeChallenge: a.CodeChallenge, Sub: sess.Sub, AuthTime: sess.AuthTime, ACR: sess.ACR, AMR: sess.AMR,
		GrantID: newID(), Session: sessKey, Consent: consentFromMsg(msg), Expires: now.Add(b.ttl).Unix(), Purge: now.Add(b.ttl + replayWindow).Unix()}
	if err := createRec(ctx, b.p.State, nsCodes, hashKey(code), rec); err != nil {
		return "", fmtErr("oidc.issue_code", err)
	}
	v := url.Values{"code": {code}, "iss": {b.issuer}}
	if a.State != "" {
		v.Set("state", a.State)
	}
	msg["redirect"] = appendQuery(a.RedirectURI, v)
	return "out", nil
}

// tokenGrantFields are the fields code_exchange and refresh share.
func tokenGrantFields() []engine.Field {
	return []engine.Field{
		{Name: "default_audience", Label: "Access token audience", Kind: engine.KindString, Default: "flowd-api",
			Help: "The aud of access tokens (msg.grant.audience); userinfo accepts tokens for it."},
		{Name: "refresh_ttl", Label: "Refresh token lifetime", Kind: engine.KindDuration, Default: "720h", Min: "1m", Max: "8760h",
			Help: "How long a refresh token may be used; every refresh issues a new one with a new lifetime."},
	}
}

// tokenGrant is the configuration of tokenGrantFields.
type tokenGrant struct {
	audience   string
	refreshTTL time.Duration
}

func newTokenGrant(s *engine.Setup) (tokenGrant, error) {
	c := s.Config
	if c.String("default_audience") == "" {
		return tokenGrant{}, s.Errorf("default_audience", "required")
	}
	return tokenGrant{audience: c.String("default_audience"), refreshTTL: c.Duration("refresh_ttl")}, nil
}

func codeExchangeSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.code_exchange", Title: "Exchange authorization code", Category: Category,
		Description: "The authorization_code grant at the token endpoint, for the client in msg.client " +
			"(oauth.client_auth with allow_public for public clients). The code must be live, unused, " +
			"issued to this client, with the same redirect_uri, and the code_verifier must match its " +
			"S256 challenge. A code is redeemed once, even under concurrent requests; a replayed code " +
			"revokes the grant it was exchanged for (its refresh tokens, and access tokens at userinfo). " +
			"On success msg.grant holds client_id, subject, scope, audience, nonce, auth_time, acr, amr and " +
			"grant_id, and msg.refresh_token a new refresh token (when the client may refresh). Errors " +
			"leave by \"invalid\" with an RFC 6749 §5.2 msg.oauth_error (answer 400).",
		Fields: append(tokenGrantFields(),
			engine.Field{Name: "issue_refresh", Label: "Issue refresh tokens", Kind: engine.KindBool, Default: true,
				Help: "Issue a refresh token to clients allowed the refresh_token grant."}),
		Outputs: []string{"ok", "invalid"},
	}
}

type codeExchangeBlock struct {
	p *provider
	tokenGrant
	issueRefresh bool
}

var _ engine.Block = (*codeExchangeBlock)(nil)

func newCodeExchangeFromConfig(s *engine.Setup, p *provider) (engine.Block, error) {
	g, err := newTokenGrant(s)
	if err != nil {
		return nil, err
	}
	return &codeExchangeBlock{p: p, tokenGrant: g, issueRefresh: s.Config.Bool("issue_refresh")}, nil
}

// tokenClient reads msg.client as oauth.client_auth writes it.
func tokenClient(msg engine.Msg, block string) (id string, grants []string, err error) {
	c := mapOf(msg["client"])
	id = stringField(c, "id")
	if id == "" {
		return "", nil, fmtErr(block, errors.New("needs msg.client: put oauth.client_auth before it"))
	}
	return id, oauth.StringList(c["grant_types"]), nil
}

// grantRequest is a token request for one grant, read by readGrant.
type grantRequest struct {
	clientID string
	grants   []string       // the client's allowed grant types
	form     map[string]any // the request's parameters
	param    string         // the one the grant needs (code, refresh_token)
}

// readGrant reads a token request for grant as oauth.client_auth left it.
// A request for another grant (does says what the block does), from a
// client that may not use grant, with a repeated parameter or without
// param gets its OAuth error set on msg and ok false; err is a flow mistake
// (no msg.client).
func readGrant(msg engine.Msg, block, grant, does, param string) (r grantRequest, ok bool, err error) {
	if r.clientID, r.grants, err = tokenClient(msg, block); err != nil {
		return r, false, err
	}
	form, all := formParams(msg)
	r.form = form
	switch {
	case stringField(form, "grant_type") != grant:
		oauth.SetError(msg, 400, "unsupported_grant_type", does)
		return r, false, nil
	case !slices.Contains(r.grants, grant):
		oauth.SetError(msg, 400, "unauthorized_client", "this client may not use the "+grant+" grant")
		return r, false, nil
	case repeated(all) != "":
		oauth.SetError(msg, 400, "invalid_request", "a parameter is repeated")
		return r, false, nil
	}
	if r.param = stringField(form, param); r.param == "" {
		oauth.SetError(msg, 400, "invalid_request", param+" is required")
		return r, false, nil
	}
	return r, true, nil
}

func invalidGrant(msg engine.Msg, desc string) (string, error) {
	oauth.SetError(msg, 400, "invalid_grant", desc)
	return "invalid", nil
}

func (b *codeExchangeBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	r, ok, err := readGrant(msg, "oidc.code_exchange", oauth.GrantAuthorizationCode, "this block exchanges authorization codes", "code")
	if err != nil {
		return "", err
	}
	if !ok {
		return "invalid", nil
	}
	clientID, grants, form, code := r.clientID, r.grants, r.form, r.param
	if !looksLikeSecret(code) {
		return invalidGrant(msg, badCode)
	}
	now := x.Now()
	codeKey := hashKey(code)
	// Read first: an unknown code, or another client's, costs no write;
	// the transaction's records (the grant, session and consent the code
	// names) come from it.
	pre, err := getRec[codeRecord](ctx, b.p.State, nsCodes, codeKey)
	if err != nil {
		return "", fmtErr("oidc.code_exchange", err)
	}
	if pre == nil || pre.ClientID != clientID {
		return invalidGrant(msg, badCode)
	}
	public, _ := mapOf(msg["client"])["public"].(bool)
	withRefresh := b.issueRefresh && slices.Contains(grants, oauth.GrantRefreshToken)
	var keys *providerKeys
	userGone := false
	if !pre.Used {
		_, err := b.p.Users.BySub(ctx, pre.Sub)
		switch {
		case errors.Is(err, ErrNoUser):
			userGone = true
		case err != nil:
			return "", fmtErr("oidc.code_exchange", err)
		}
		if withRefresh {
			if keys, err = b.p.keys(ctx); err != nil {
				return "", fmtErr("oidc.code_exchange", err)
			}
		}
	}
	tx := exchangeTxn{clientID: clientID, codeKey: codeKey, now: now, revokeKeep: b.refreshTTL + grantSlack,
		check: func(rec *codeRecord) string {
			if stringField(form, "redirect_uri") != rec.RedirectURI {
				return "redirect_uri does not match the authorization request"
			}
			if desc := checkPKCE(rec.CodeChallenge, form["code_verifier"]); desc != "" {
				return desc
			}
			switch {
			case public && rec.CodeChallenge == "":
				// Whatever the authorize flow was changed to allow: a code
				// of a public client is only as safe as its PKCE challenge.
				return "a public client's code needs PKCE"
			case userGone:
				return "the user no longer exists"
			}
			return ""
		},
		grant: func(rec *codeRecord) *grantRecord {
			// The grant is made with its first refresh token (generation 1).
			g := &grantRecord{ID: rec.GrantID, ClientID: clientID, Sub: rec.Sub, Scope: rec.Scope, Session: rec.Session,
				Created: now.Unix(), Purge: now.Add(b.refreshTTL + grantSlack).Unix(), AuthTime: rec.AuthTime, ACR: rec.ACR, AMR: rec.AMR}
			if withRefresh {
				g.RefreshGen, g.RefreshExpires = 1, now.Add(b.refreshTTL).Unix()
				if public {
					g.DPoPJKT = dpopJKT(msg)
				}
			}
			return g
		}}
	res, err := exchange(ctx, b.p.State, tx, pre, nil)
	if err == nil && res.outcome == exPrune {
		var ended map[string]bool
		if ended, err = b.endedGrants(ctx, res.prune, now); err == nil {
			res, err = exchange(ctx, b.p.State, tx, pre, ended)
		}
	}
	if err != nil {
		return "", fmtErr("oidc.code_exchange", err)
	}
	rec := res.rec
	switch res.outcome {
	case exReplayed:
		// RFC 6749 §4.1.2: what the code issued is revoked (in the
		// transaction that found it spent).
		b.p.log.Warn("authorization code replayed: grant revoked", "client", clientID)
		if res.revoked {
			b.p.grantRevoked(ctx, rec.ClientID, "code_replayed")
		}
		return invalidGrant(msg, badCode)
	case exRefused:
		if res.busy != "" {
			b.p.log.Warn(res.busy, "client", clientID)
		}
		return invalidGrant(msg, res.desc)
	case exRedeemed:
	default:
		return invalidGrant(msg, badCode)
	}
	if withRefresh {
		rt, err := mintRefreshToken(keys, rec.GrantID, 1)
		if err != nil {
			return "", fmtErr("oidc.code_exchange", err)
		}
		msg["refresh_token"] = rt
	}
	msg["grant"] = map[string]any{"client_id": clientID, "subject": rec.Sub, "scope": rec.Scope, "audience": b.audience,
		"nonce": rec.Nonce, "auth_time": rec.AuthTime, "acr": rec.ACR, "amr": anyList(rec.AMR), "grant_id": rec.GrantID}
	return "ok", nil
}

// checkPKCE checks a code_verifier against the code's S256 challenge
// (RFC 7636 §4.6), in constant time. A verifier for a code issued without
// a challenge is refused too: it means someone expected PKCE to protect
// this code (a downgrade).
func checkPKCE(challenge string, v any) string {
	verifier, _ := v.(string)
	switch {
	case challenge == "" && verifier == "":
		return ""
	case challenge == "":
		return "code_verifier sent for a code issued without code_challenge"
	case verifier == "":
		return "code_verifier is required"
	case !validVerifier(verifier):
		return "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]"
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) != 1 {
		return "code_verifier does not match the code_challenge"
	}
	return ""
}

func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	return strings.IndexFunc(v, func(r rune) bool {
		return !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '.' || r == '_' || r == '~')
	}) < 0
}

// endedGrants says which of a full consent's grants have ended (revoked,
// expired or gone), so that the exchange can drop them from the consent.
func (b *codeExchangeBlock) endedGrants(ctx context.Context, grants []string, now time.Time) (map[string]bool, error) {
	ended := map[string]bool{}
	for _, g := range grants {
		_, why, err := grantStatus(ctx, b.p.State, g, now)
		if err != nil {
			return nil, err
		}
		if why != "" {
			ended[g] = true
		}
	}
	return ended, nil
}
