package oidc

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
)

// Pushed authorization requests (RFC 9126): a client posts the parameters
// of its authorization request to the PAR endpoint, authenticated, and
// gets a one-time request_uri to send the browser with instead. The
// request cannot be read or changed in the browser, and flowd checked it
// before the person saw anything.
//
//	POST /oauth/par ─► oauth.client_auth ─► oidc.par: the checks of
//	oidc.authorize, for the authenticated client ─► oidc_par/<SHA-256 of
//	the token> {request, expires, used} ─► 201 {request_uri, expires_in}
//	GET /oauth/authorize?client_id&request_uri ─► oidc.authorize marks it
//	used (one transaction) and goes on with the pushed request

// parURNPrefix starts every request_uri flowd issues.
const parURNPrefix = "urn:ietf:params:oauth:request_uri:"

// parRecord is a pushed request, stored under the SHA-256 of its token.
// Used ones are kept until Purge so a reuse is recognized.
type parRecord struct {
	Request authzRequest `json:"request"`
	Expires int64        `json:"expires"`
	Used    bool         `json:"used,omitempty"`
	Purge   int64        `json:"purge"`
}

func parSpec() engine.Spec {
	s := authorizeSpec()
	fields := []engine.Field{{Name: "ttl", Label: "Lifetime", Kind: engine.KindDuration, Default: "60s", Min: "5s", Max: "10m",
		Help: "How long a request_uri may be used (once). RFC 9126 suggests a short time: the browser goes there at once."}}
	for _, f := range s.Fields {
		if f.Name != "require_par" {
			fields = append(fields, f)
		}
	}
	return engine.Spec{
		Type: "oidc.par", Title: "Pushed authorization request", Category: Category,
		Description: "The PAR endpoint (RFC 9126): checks the authorization request in the form body of an " +
			"authenticated client (msg.client, from oauth.client_auth) exactly as oidc.authorize checks a query " +
			"(use the same settings), refuses a request_uri inside it and a client_id of another client, and " +
			"stores it for one use. On success msg.payload is {request_uri, expires_in} (answer 201); otherwise " +
			"msg.oauth_error (answer 400).",
		Fields:  fields,
		Outputs: []string{"ok", "invalid"},
	}
}

type parBlock struct {
	check *authorizeBlock
	ttl   time.Duration
}

var _ engine.Block = (*parBlock)(nil)

func newPARFromConfig(s *engine.Setup, p *provider) (engine.Block, error) {
	ab, err := newAuthorizeBlock(s, p)
	if err != nil {
		return nil, err
	}
	return &parBlock{check: ab, ttl: s.Config.Duration("ttl")}, nil
}

func (b *parBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	clientID, _, err := tokenClient(msg, "oidc.par")
	if err != nil {
		return "", err
	}
	form, all := formParams(msg)
	if id := stringField(form, "client_id"); id != "" && id != clientID {
		oauth.SetError(msg, 400, "invalid_request", "client_id is not the authenticated client")
		return "invalid", nil
	}
	if _, ok := form["request_uri"]; ok {
		oauth.SetError(msg, 400, "invalid_request", "request_uri is not allowed in a pushed authorization request")
		return "invalid", nil
	}
	q := make(map[string]any, len(form))
	for k, v := range form {
		// Client authentication parameters are not part of the request.
		if k != "client_secret" && k != "client_assertion" && k != "client_assertion_type" {
			q[k] = v
		}
	}
	q["client_id"] = clientID
	a, prob, err := b.check.check(ctx, q, all, true)
	if err != nil {
		return "", fmtErr("oidc.par", err)
	}
	if prob != nil {
		oauth.SetError(msg, 400, prob.code, prob.desc)
		return "invalid", nil
	}
	now := x.Now()
	token := newSecret()
	rec := parRecord{Request: a, Expires: now.Add(b.ttl).Unix(), Purge: now.Add(b.ttl + time.Hour).Unix()}
	err = updateRec(ctx, b.check.p.State, nsPAR, hashKey(token), func(cur *parRecord) (*parRecord, error) {
		if cur != nil {
			return nil, errors.New("request_uri collision")
		}
		return &rec, nil
	})
	if err != nil {
		return "", fmtErr("oidc.par", err)
	}
	msg["payload"] = map[string]any{"request_uri": parURNPrefix + token, "expires_in": int64(b.ttl / time.Second)}
	return "ok", nil
}

// pushed takes an authorization request by request_uri: the record is
// spent in one transaction (used once, unexpired, by the client that
// pushed it). Any failure is a page: until the record is read, the
// redirect URI is not known.
func (b *authorizeBlock) pushed(ctx context.Context, msg engine.Msg, q map[string]any, all map[string][]string, now time.Time) (string, error) {
	bad := func(code, desc string) (string, error) {
		oauth.SetError(msg, 400, code, desc)
		return "invalid", nil
	}
	clientID, uri := stringField(q, "client_id"), stringField(q, "request_uri")
	switch {
	case len(all["client_id"]) > 1 || len(all["request_uri"]) > 1:
		return bad("invalid_request", "A parameter is repeated.")
	case clientID == "":
		return bad("invalid_request", "The request has no valid client_id.")
	case !strings.HasPrefix(uri, parURNPrefix) || !looksLikeSecret(strings.TrimPrefix(uri, parURNPrefix)):
		return bad("invalid_request_uri", "The request_uri was not issued by this server.")
	}
	var outcome string
	var a authzRequest
	err := updateRec(ctx, b.p.State, nsPAR, hashKey(strings.TrimPrefix(uri, parURNPrefix)), func(cur *parRecord) (*parRecord, error) {
		outcome, a = "", authzRequest{} // the function may run again
		switch {
		case cur == nil:
			outcome = "unknown"
			return nil, nil
		case cur.Request.ClientID != clientID:
			// Another client's: left for its owner.
			outcome = "wrong_client"
			return cur, nil
		case cur.Used:
			outcome = "used"
			return cur, nil
		case now.Unix() >= cur.Expires:
			outcome = "expired"
			return cur, nil
		}
		outcome, a = "ok", cur.Request
		cur.Used = true
		return cur, nil
	})
	if err != nil {
		return "", fmtErr("oidc.authorize", err)
	}
	switch outcome {
	case "ok":
	case "used":
		return bad("invalid_request_uri", "The request_uri was already used.")
	case "expired":
		return bad("invalid_request_uri", "The request_uri has expired.")
	default:
		return bad("invalid_request_uri", "The request_uri is unknown or not for this application.")
	}
	// The client may have changed since it pushed.
	cl, err := b.p.Clients.Get(ctx, a.ClientID)
	switch {
	case errors.Is(err, oauth.ErrNoClient):
		return bad("invalid_client", "The application is not registered.")
	case err != nil:
		return "", fmtErr("oidc.authorize", err)
	case !cl.AllowsRedirectURI(a.RedirectURI):
		return bad("invalid_request", "The redirect_uri is no longer registered for this application.")
	}
	msg["authz"] = a.toMsg()
	return "ok", nil
}
