package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/store"
)

// KV namespaces of the provider's state (see the package doc).
const (
	nsTx       = "oidc_tx"
	nsSessions = "oidc_sessions"
	nsCodes    = "oidc_codes"
	nsGrants   = "oidc_grants"
	nsRefresh  = "oidc_refresh"
	nsThrottle = "oidc_throttle"
	nsLogout   = "oidc_logout"
	// nsSessionGrants indexes grants by the session that made them, so
	// that logout does not read every grant.
	nsSessionGrants = "oidc_session_grants"
	// nsPAR holds pushed authorization requests (block_par.go).
	nsPAR = "oidc_par"
)

// stateNamespaces are cleaned by oidc.cleanup.
var stateNamespaces = []string{nsTx, nsSessions, nsCodes, nsGrants, nsRefresh, nsThrottle, nsLogout, nsSessionGrants, nsPAR,
	nsRevokedTokens, nsConsents, nsUserSessions}

// authzRequest is a checked authorization request: what oidc.authorize
// lets through, what a login transaction keeps, what a code is bound to.
type authzRequest struct {
	ClientID      string   `json:"client_id"`
	ClientName    string   `json:"client_name,omitempty"`
	RedirectURI   string   `json:"redirect_uri"`
	Scope         string   `json:"scope"`
	State         string   `json:"state,omitempty"`
	Nonce         string   `json:"nonce,omitempty"`
	CodeChallenge string   `json:"code_challenge,omitempty"` // S256 only
	Prompt        []string `json:"prompt,omitempty"`
	MaxAge        int64    `json:"max_age"` // -1: absent
}

// toMsg is msg.authz.
func (a authzRequest) toMsg() map[string]any {
	m := map[string]any{
		"client_id": a.ClientID, "client_name": a.ClientName, "redirect_uri": a.RedirectURI,
		"scope": a.Scope, "state": a.State, "nonce": a.Nonce, "code_challenge": a.CodeChallenge,
		"prompt": anyList(a.Prompt), "max_age": a.MaxAge,
	}
	if a.CodeChallenge != "" {
		m["code_challenge_method"] = "S256"
	}
	return m
}

// authzFromMsg reads msg.authz back.
func authzFromMsg(msg map[string]any) (authzRequest, error) {
	m := mapOf(msg["authz"])
	a := authzRequest{ClientID: stringField(m, "client_id"), ClientName: stringField(m, "client_name"),
		RedirectURI: stringField(m, "redirect_uri"), Scope: stringField(m, "scope"), State: stringField(m, "state"),
		Nonce: stringField(m, "nonce"), CodeChallenge: stringField(m, "code_challenge"), Prompt: oauth.StringList(m["prompt"]), MaxAge: -1}
	if v, ok := int64Of(m["max_age"]); ok {
		a.MaxAge = v
	}
	if a.ClientID == "" || a.RedirectURI == "" {
		return a, errors.New("needs msg.authz (put oidc.authorize, or oidc.login, before it)")
	}
	return a, nil
}

func (a authzRequest) scopes() []string { return strings.Fields(a.Scope) }

// sessionRecord is a person signed in at the provider.
type sessionRecord struct {
	Sub      string   `json:"sub"`
	AuthTime int64    `json:"auth_time"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	Expires  int64    `json:"expires"`
	Purge    int64    `json:"purge"`
}

// logoutRecord is a logout request waiting for the person to confirm it,
// stored under the SHA-256 of the confirmation form's CSRF token: the
// checked client, redirect URI and state, and the SHA-256 of the session
// cookie it may end (so the token works in no other browser or session).
type logoutRecord struct {
	Binding     string `json:"binding"`
	ClientID    string `json:"client_id,omitempty"`
	RedirectURI string `json:"redirect_uri,omitempty"`
	State       string `json:"state,omitempty"`
	Expires     int64  `json:"expires"`
	Purge       int64  `json:"purge"`
}

// codeRecord is an authorization code. Used codes are kept (until Purge)
// so that a replay is recognized and revokes the grant.
type codeRecord struct {
	ClientID      string   `json:"client_id"`
	RedirectURI   string   `json:"redirect_uri"`
	Scope         string   `json:"scope"`
	Nonce         string   `json:"nonce,omitempty"`
	CodeChallenge string   `json:"code_challenge,omitempty"`
	Sub           string   `json:"sub"`
	AuthTime      int64    `json:"auth_time"`
	ACR           string   `json:"acr,omitempty"`
	AMR           []string `json:"amr,omitempty"`
	GrantID       string   `json:"grant_id"`
	Session       string   `json:"session,omitempty"` // SHA-256 of the session cookie it was issued in
	Consent       string   `json:"consent,omitempty"` // id of the consent it was issued under (consents.go)
	Expires       int64    `json:"expires"`
	Used          bool     `json:"used,omitempty"`
	Purge         int64    `json:"purge"`
}

// grantRecord is one authorization: what a code was exchanged for. Every
// token issued under it carries its id (access tokens as the gid claim);
// revoking it ends them all.
type grantRecord struct {
	ID       string `json:"id"`
	ClientID string `json:"client_id"`
	Sub      string `json:"sub"`
	Scope    string `json:"scope"`
	// Session is the SHA-256 of the cookie of the provider session the
	// grant was made in; logging that session out revokes the grant
	// (unless offline_access). Empty for grants made before flowd
	// recorded it: logout cannot find those.
	Session string `json:"session,omitempty"`
	Created int64  `json:"created"`
	Revoked string `json:"revoked,omitempty"` // why: code_replayed, refresh_token_reused, logged_out, revoked
	Purge   int64  `json:"purge"`             // also its end: a grant past it is expired

	// The original sign-in, for the tokens a refresh issues.
	AuthTime int64    `json:"auth_time,omitempty"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	// The grant's refresh tokens (block_refresh.go): RefreshGen is the
	// generation of the live one (0: none issued), good until
	// RefreshExpires; RetryGen is the generation rotated last, which the
	// client may present again until RetryUntil (a retry of a refresh
	// whose answer it lost). Any other generation below RefreshGen is a
	// reuse. A refresh is one transaction on this record.
	RefreshGen     int64 `json:"refresh_gen,omitempty"`
	RefreshExpires int64 `json:"refresh_expires,omitempty"`
	RetryGen       int64 `json:"retry_gen,omitempty"`
	RetryUntil     int64 `json:"retry_until,omitempty"`
	// DPoPJKT binds the refresh tokens of a public client's grant to the
	// key of the DPoP proof its code was exchanged with (RFC 9449 §5): a
	// refresh must come with a proof over the same key.
	DPoPJKT string `json:"dpop_jkt,omitempty"`
}

// sessionGrantsRecord lists the grants a provider session made, stored
// under the session's key (the SHA-256 of its cookie). Ended is set when
// the session logs out: a code issued in it and exchanged afterwards is
// refused, and the record stays (until Purge) to say so.
type sessionGrantsRecord struct {
	Grants []sessionGrant `json:"grants,omitempty"`
	Ended  bool           `json:"ended,omitempty"`
	Purge  int64          `json:"purge"`
}

// sessionGrant is one grant of a session. Offline grants (scope
// offline_access, OpenID Connect Core §11) outlive the session.
type sessionGrant struct {
	ID      string `json:"id"`
	Offline bool   `json:"offline,omitempty"`
}

// maxSessionGrants bounds one session's index record (it is rewritten on
// every code exchange): a session that made this many grants must sign in
// again.
const maxSessionGrants = 2000

// revokeSessionGrants ends a session's grants, all but the offline ones,
// as refresh-token reuse does (revokeGrant), and marks the session ended
// first so that no grant can join it afterwards. It returns how many
// grants it revoked. An error leaves some grants possibly unrevoked: the
// caller must not report the logout done.
func revokeSessionGrants(ctx context.Context, kv KV, session string, now time.Time) (int, error) {
	var grants []sessionGrant
	err := updateRec(ctx, kv, nsSessionGrants, session, func(cur *sessionGrantsRecord) (*sessionGrantsRecord, error) {
		if cur == nil {
			cur = &sessionGrantsRecord{}
		}
		grants = cur.Grants
		cur.Ended = true
		// Long enough for every code the session issued to expire.
		cur.Purge = max(cur.Purge, now.Add(replayWindow).Unix())
		return cur, nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, g := range grants {
		if g.Offline {
			continue
		}
		// A listed grant that is absent (an exchange links and creates
		// it in one transaction, but an older flowd did it in two) gets
		// a tombstone that outlives any exchange still running.
		if err := revokeGrant(ctx, kv, g.ID, "", "logged_out", now, grantSlack); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// isOffline reports whether a scope asks for offline access.
func isOffline(scope string) bool { return slices.Contains(strings.Fields(scope), "offline_access") }

// isHashKey checks the shape of a store key made by hashKey: 64 lowercase
// hex digits.
func isHashKey(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// refreshRecord is a refresh token; Used once it has been rotated.
type refreshRecord struct {
	GrantID  string   `json:"grant_id"`
	ClientID string   `json:"client_id"`
	Sub      string   `json:"sub"`
	Scope    string   `json:"scope"`
	AuthTime int64    `json:"auth_time"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	Expires  int64    `json:"expires"`
	Used     bool     `json:"used,omitempty"`
	Purge    int64    `json:"purge"`
}

// throttleRecord counts failed logins for a username or a client address.
type throttleRecord struct {
	Failures int   `json:"failures"`
	Last     int64 `json:"last"` // unix milliseconds
	Purge    int64 `json:"purge"`
}

// getRec reads a record; nil when it does not exist.
func getRec[T any](ctx context.Context, kv KV, ns, key string) (*T, error) {
	raw, err := kv.GetKV(ctx, ns, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s record: %w", ns, err)
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("%s record: %w", ns, err)
	}
	return &v, nil
}

// updateRec changes a record in one transaction: fn gets nil when it does
// not exist and returns the new value (nil deletes). An error from fn
// aborts without writing.
func updateRec[T any](ctx context.Context, kv KV, ns, key string, fn func(cur *T) (*T, error)) error {
	err := kv.UpdateKV(ctx, ns, key, func(old []byte) ([]byte, error) {
		var cur *T
		if old != nil {
			cur = new(T)
			if err := json.Unmarshal(old, cur); err != nil {
				return nil, fmt.Errorf("%s record: %w", ns, err)
			}
		}
		next, err := fn(cur)
		if err != nil {
			return nil, err
		}
		if next == nil {
			return nil, nil
		}
		return json.Marshal(next)
	})
	return err
}

// updateRec's fn, like the store's, may run more than once (an optimistic
// backend runs it again after a conflict; only the last call's result is
// written): it must compute its result from cur alone, and every variable
// it sets outside must be reset at its start.

// createRec writes a new record under a fresh random key in one write
// (store.KV.CreateKV): no update function to run again on a conflict, and a
// key that somehow exists already is an error, never overwritten.
func createRec[T any](ctx context.Context, kv KV, ns, key string, v *T) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%s record: %w", ns, err)
	}
	if err := kv.CreateKV(ctx, ns, key, raw); err != nil {
		return fmt.Errorf("create %s record: %w", ns, err)
	}
	return nil
}

// putRec writes a record, replacing any.
func putRec[T any](ctx context.Context, kv KV, ns, key string, v *T) error {
	return updateRec(ctx, kv, ns, key, func(*T) (*T, error) { return v, nil })
}

// deleteRec removes a record; absent is fine.
func deleteRec(ctx context.Context, kv KV, ns, key string) error {
	err := kv.DeleteKV(ctx, ns, key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("delete %s record: %w", ns, err)
	}
	return nil
}

// revokeGrant marks a grant revoked, creating a revoked tombstone when the
// grant is not there yet (a replay racing the first exchange), so that the
// exchange that is still running cannot create it live.
func revokeGrant(ctx context.Context, kv KV, id, clientID, reason string, now time.Time, keep time.Duration) error {
	return updateRec(ctx, kv, nsGrants, id, func(cur *grantRecord) (*grantRecord, error) {
		if cur == nil {
			cur = &grantRecord{ID: id, ClientID: clientID, Created: now.Unix(), Purge: now.Add(keep).Unix()}
		}
		if cur.Revoked == "" {
			cur.Revoked = reason
		}
		return cur, nil
	})
}

// Why a grant is not live, as oidc.grant_active reports it in
// msg.invalid.reason.
const (
	grantUnknown = "grant_unknown"
	grantRevoked = "grant_revoked"
	grantExpired = "grant_expired"
)

// grantStatus reads a grant and says why it cannot be used, "" when it is
// live: unknown (never made, or cleaned up), revoked, or expired (past its
// purge time, when oidc.cleanup would delete it). A revoked tombstone is
// reported revoked whatever its age.
func grantStatus(ctx context.Context, kv KV, id string, now time.Time) (*grantRecord, string, error) {
	if id == "" {
		return nil, grantUnknown, nil
	}
	g, err := getRec[grantRecord](ctx, kv, nsGrants, id)
	switch {
	case err != nil:
		return nil, "", err
	case g == nil:
		return nil, grantUnknown, nil
	case g.Revoked != "":
		return g, grantRevoked, nil
	case now.Unix() >= g.Purge:
		return g, grantExpired, nil
	}
	return g, "", nil
}

// grantActive reports whether a grant exists, is not revoked and has not
// expired.
func grantActive(ctx context.Context, kv KV, id string, now time.Time) (bool, error) {
	_, why, err := grantStatus(ctx, kv, id, now)
	return err == nil && why == "", err
}

// signedIn returns the live session a cookie value names and its user;
// a session whose user was removed is no session (nobody is signed in).
func (p *provider) signedIn(ctx context.Context, cookie string, now time.Time) (*sessionRecord, User, error) {
	sess, err := loadSession(ctx, p.State, cookie, now)
	if err != nil || sess == nil {
		return nil, User{}, err
	}
	usr, err := p.Users.BySub(ctx, sess.Sub)
	if errors.Is(err, ErrNoUser) {
		return nil, User{}, nil
	}
	if err != nil {
		return nil, User{}, err
	}
	return sess, usr, nil
}

// loadSession returns the session a cookie value names, nil when there is
// none or it expired.
func loadSession(ctx context.Context, kv KV, cookie string, now time.Time) (*sessionRecord, error) {
	if !looksLikeSecret(cookie) {
		return nil, nil
	}
	s, err := getRec[sessionRecord](ctx, kv, nsSessions, hashKey(cookie))
	if err != nil || s == nil {
		return nil, err
	}
	if now.Unix() >= s.Expires {
		return nil, nil
	}
	return s, nil
}
