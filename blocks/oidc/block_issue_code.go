package oidc

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/flowd/flowd/engine"
)

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
