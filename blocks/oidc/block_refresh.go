package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
)

func refreshSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.refresh", Title: "Refresh token grant", Category: Category,
		Description: "The refresh_token grant at the token endpoint, for the client in msg.client. " +
			"Refresh tokens rotate: each is good for one refresh and the answer carries a new one " +
			"(msg.refresh_token), in one transaction on the grant. A client that lost that answer " +
			"(a crash, a timeout, a dropped connection) may present the token it just rotated again " +
			"within the grace period: the retry is answered with the same new refresh token (and a " +
			"fresh access token), so two refreshes racing in one app do not sign it out either. Any " +
			"other use of an old token is taken as theft: the whole grant is revoked (every refresh " +
			"token of it, and its access tokens at userinfo). A grant revoked any way (reuse, code " +
			"replay, logout of the session it was made in) refreshes no more. A scope parameter may " +
			"narrow the scope, never widen it. A public client's grant whose code was exchanged with a DPoP proof " +
			"(msg.dpop from jose.dpop) refreshes only with a proof over the same key (RFC 9449 §5), else " +
			"invalid_dpop_proof. On success msg.grant holds client_id, subject, scope, " +
			"audience, auth_time (of the original sign-in), acr, amr and grant_id; errors leave by " +
			"\"invalid\" with an RFC 6749 §5.2 msg.oauth_error (answer 400).",
		Fields: append(tokenGrantFields(),
			engine.Field{Name: "grace", Label: "Retry grace period", Kind: engine.KindDuration, Default: "60s", Min: "0s", Max: "5m",
				Help: "How long after a rotation the same client may present the rotated token again and get the same " +
					"answer (a retry after a lost response), instead of having its grant revoked for reuse. 0 turns retries off."}),
		Outputs: []string{"ok", "invalid"},
	}
}

type refreshBlock struct {
	p *provider
	tokenGrant
	grace time.Duration
}

var _ engine.Block = (*refreshBlock)(nil)

func newRefreshFromConfig(s *engine.Setup, p *provider) (engine.Block, error) {
	g, err := newTokenGrant(s)
	if err != nil {
		return nil, err
	}
	return &refreshBlock{p: p, tokenGrant: g, grace: s.Config.Duration("grace")}, nil
}

// Outcomes of a refresh transaction.
const (
	rtRotate   = "rotate"
	rtRetry    = "retry"
	rtReused   = "reused"
	rtBadScope = "bad_scope"
	rtInvalid  = "invalid"
	rtKey      = "dpop_key"
)

// dpopJKT is the thumbprint of the request's verified DPoP proof
// (msg.dpop.jkt, from jose.dpop), "" without one.
func dpopJKT(msg engine.Msg) string {
	return stringField(mapOf(msg["dpop"]), "jkt")
}

const badRefresh = "the refresh token is invalid, expired or revoked"

func (b *refreshBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	r, ok, err := readGrant(msg, "oidc.refresh", oauth.GrantRefreshToken, "this block refreshes tokens", "refresh_token")
	if err != nil {
		return "", err
	}
	if !ok {
		return "invalid", nil
	}
	clientID, form, token := r.clientID, r.form, r.param
	keys, err := b.p.keys(ctx)
	if err != nil {
		return "", fmtErr("oidc.refresh", err)
	}
	requested, _ := form["scope"].(string)
	now := x.Now()
	var outcome string
	var g grantRecord
	switch gid, gen, ok := parseRefreshToken(keys, token); {
	case ok:
		outcome, g, err = b.rotate(ctx, clientID, gid, gen, requested, dpopJKT(msg), now)
	case looksLikeSecret(token):
		outcome, g, err = b.rotateLegacy(ctx, clientID, token, requested, now)
	default:
		outcome = rtInvalid
	}
	if err != nil {
		return "", fmtErr("oidc.refresh", err)
	}
	switch outcome {
	case rtReused:
		b.p.log.Warn("refresh token reused: grant revoked", "client", clientID)
		return invalidGrant(msg, badRefresh)
	case rtBadScope:
		oauth.SetError(msg, 400, "invalid_scope", "the scope may only narrow what was granted")
		return "invalid", nil
	case rtKey:
		oauth.SetError(msg, 400, "invalid_dpop_proof", "this refresh token is bound to a DPoP key: send a proof made with that key")
		return "invalid", nil
	case rtRotate, rtRetry:
	default:
		return invalidGrant(msg, badRefresh)
	}
	usr, err := b.p.Users.BySub(ctx, g.Sub)
	if errors.Is(err, ErrNoUser) {
		return invalidGrant(msg, "the user no longer exists")
	}
	if err != nil {
		return "", fmtErr("oidc.refresh", err)
	}
	scope := g.Scope
	if want := strings.Fields(requested); len(want) > 0 {
		scope = strings.Join(dedupe(want), " ")
	}
	next, err := mintRefreshToken(keys, g.ID, g.RefreshGen)
	if err != nil {
		return "", fmtErr("oidc.refresh", err)
	}
	msg["refresh_token"] = next
	msg["grant"] = map[string]any{"client_id": clientID, "subject": usr.Sub, "scope": scope, "audience": b.audience,
		"auth_time": g.AuthTime, "acr": g.ACR, "amr": anyList(g.AMR), "grant_id": g.ID}
	return "ok", nil
}

// rotate is the whole refresh in one transaction on the grant: it checks
// the grant is live and the token's generation, then rotates (the next
// generation becomes the live token, the grant lives on), answers a retry
// (the rotated generation again within the grace period: nothing
// changes, the same next token is answered), or revokes the grant for a
// reused token. A logout or a code replay revokes in a transaction on the
// same record, so it comes either before (refused here) or after (and
// ends what is answered now).
func (b *refreshBlock) rotate(ctx context.Context, clientID, gid string, gen int64, requested, jkt string, now time.Time) (string, grantRecord, error) {
	var outcome string
	var g grantRecord
	err := updateRec(ctx, b.p.State, nsGrants, gid, func(cur *grantRecord) (*grantRecord, error) {
		outcome, g = rtInvalid, grantRecord{} // the function may run again: nothing kept from a first call
		switch {
		case cur == nil:
			return nil, nil
		case cur.ClientID != clientID, cur.Revoked != "", now.Unix() >= cur.Purge:
			// Another client's token is not this one's to spend; a
			// revoked or expired grant answers nothing.
			return cur, nil
		case cur.DPoPJKT != "" && subtle.ConstantTimeCompare([]byte(cur.DPoPJKT), []byte(jkt)) != 1:
			// Bound to a key the request does not prove: nothing is spent
			// or revoked (the token may have been stolen, its key was not).
			outcome = rtKey
			return cur, nil
		case gen == cur.RefreshGen:
			switch {
			case now.Unix() >= cur.RefreshExpires:
				return cur, nil
			case !narrows(cur.Scope, requested):
				// Refused before rotating: a bad request does not cost the token.
				outcome = rtBadScope
				return cur, nil
			}
			outcome = rtRotate
			cur.RetryGen, cur.RetryUntil = gen, now.Add(b.grace).Unix()
			cur.RefreshGen = gen + 1
			cur.RefreshExpires = now.Add(b.refreshTTL).Unix()
			cur.Purge = max(cur.Purge, now.Add(b.refreshTTL+grantSlack).Unix())
		case gen == cur.RetryGen && now.Unix() < cur.RetryUntil:
			if !narrows(cur.Scope, requested) {
				outcome = rtBadScope
				return cur, nil
			}
			outcome = rtRetry
		case gen < cur.RefreshGen:
			outcome = rtReused
			cur.Revoked = "refresh_token_reused"
		default:
			// A generation ahead of the grant: only a store restored from
			// an older backup shows one. Refused, nothing revoked.
			return cur, nil
		}
		g = *cur
		return cur, nil
	})
	return outcome, g, err
}

// rotateLegacy takes a refresh token of the earlier format (a random
// secret with its own record in oidc_refresh): in one transaction over
// that record and its grant (store.KV.UpdateKVs), the record is spent as
// it always was (a second use revokes the grant) and the grant issues the
// next generation of the current format, so the answer already carries a
// current token.
func (b *refreshBlock) rotateLegacy(ctx context.Context, clientID, token, requested string, now time.Time) (string, grantRecord, error) {
	key := hashKey(token)
	// Read first: an unknown token costs no write transaction, and the
	// record names its grant.
	pre, err := getRec[refreshRecord](ctx, b.p.State, nsRefresh, key)
	if err != nil || pre == nil {
		return rtInvalid, grantRecord{}, err
	}
	var outcome string
	var g grantRecord
	var revoked bool
	refs := []store.KVRef{{NS: nsRefresh, Key: key}, {NS: nsGrants, Key: pre.GrantID}}
	err = b.p.State.UpdateKVs(ctx, refs, func(old [][]byte) ([][]byte, error) {
		outcome, g, revoked = rtInvalid, grantRecord{}, false // the function may run again
		out := slices.Clone(old)
		cur, err := decodeRec[refreshRecord](nsRefresh, old[0])
		if err != nil {
			return nil, err
		}
		grant, err := decodeRec[grantRecord](nsGrants, old[1])
		if err != nil {
			return nil, err
		}
		switch {
		case cur == nil, cur.ClientID != clientID || now.Unix() >= cur.Expires:
			return out, nil
		case cur.Used:
			outcome = rtReused
			if grant == nil {
				grant = &grantRecord{ID: cur.GrantID, ClientID: cur.ClientID, Created: now.Unix(), Purge: now.Add(b.refreshTTL + grantSlack).Unix()}
			}
			if grant.Revoked == "" {
				grant.Revoked, revoked = "refresh_token_reused", true
				out[1], err = json.Marshal(grant)
			}
			return out, err
		case !narrows(cur.Scope, requested):
			outcome = rtBadScope
			return out, nil
		}
		cur.Used = true
		if out[0], err = json.Marshal(cur); err != nil {
			return nil, err
		}
		if grant == nil || grant.Revoked != "" || now.Unix() >= grant.Purge {
			return out, nil // spent, nothing issued
		}
		outcome = rtRotate
		if grant.AuthTime == 0 {
			grant.AuthTime, grant.ACR, grant.AMR = cur.AuthTime, cur.ACR, cur.AMR
		}
		grant.RefreshGen++
		grant.RefreshExpires = now.Add(b.refreshTTL).Unix()
		grant.Purge = max(grant.Purge, now.Add(b.refreshTTL+grantSlack).Unix())
		g = *grant
		out[1], err = json.Marshal(grant)
		return out, err
	})
	if err != nil {
		return rtInvalid, grantRecord{}, err
	}
	if revoked {
		b.p.grantRevoked(ctx, clientID, "refresh_token_reused")
	}
	return outcome, g, nil
}

// A refresh token is base64url(grant id || generation || MAC): the MAC
// (HMAC-SHA256 under the provider's refresh key) makes it unforgeable, the
// grant record keeps which generation is live, and nothing of the token
// is stored. 16 + 8 + 32 bytes: 75 characters.
const (
	refreshTokenBytes = 16 + 8 + sha256.Size
	refreshTokenLen   = (refreshTokenBytes*8 + 5) / 6
)

// errGrantID: a refresh token for a grant id newID did not make.
var errGrantID = errors.New("refresh token for a malformed grant id or generation")

func mintRefreshToken(k *providerKeys, gid string, gen int64) (string, error) {
	id, err := base64.RawURLEncoding.DecodeString(gid)
	if err != nil || len(id) != 16 || gen < 1 {
		return "", errGrantID
	}
	raw := binary.BigEndian.AppendUint64(id, uint64(gen))
	return base64.RawURLEncoding.EncodeToString(append(raw, k.mac(raw)...)), nil
}

// parseRefreshToken checks a refresh token's MAC (in constant time) and
// returns its grant id and generation.
func parseRefreshToken(k *providerKeys, token string) (gid string, gen int64, ok bool) {
	if len(token) != refreshTokenLen || !isBase64URL(token) {
		return "", 0, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != refreshTokenBytes {
		return "", 0, false
	}
	body, sum := raw[:24], raw[24:]
	if !hmac.Equal(sum, k.mac(body)) {
		return "", 0, false
	}
	g := binary.BigEndian.Uint64(body[16:])
	if g < 1 || g > math.MaxInt64 {
		return "", 0, false
	}
	return base64.RawURLEncoding.EncodeToString(body[:16]), int64(g), true
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
