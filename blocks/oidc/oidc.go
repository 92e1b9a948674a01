// Package oidc owns the OpenID Provider steps for people: the user
// registry (passwords hashed with argon2id), the provider's state (login
// transactions, sessions, authorization codes, grants, refresh tokens,
// login throttling) and the blocks the prebuilt flows authorize, token,
// userinfo and end-session are built from.
//
// A sign-in, block by block (each a node a person can open and change):
//
//	GET /oauth/authorize -> oidc.authorize --ok--> oidc.session --active--> oidc.consent --granted--> oidc.issue_code -> 302 redirect_uri?code&state&iss
//	 (or POST of the same)    |invalid: error page (never redirects)  \--login--> oidc.login_page -> 200 form
//	                          \redirect_error: 302 redirect_uri?error&state        \ask: oidc.consent_page -> 200 question
//	POST /oauth/authorize -> oidc.login --ok--> oidc.consent (as above) -> 302 (and the session cookie)
//	 (the sign-in form)       \failed/throttled: oidc.login_page (same transaction) -> 401/429
//	POST /oauth/consent -> oidc.consent_answer --granted--> oidc.issue_code | denied: 302 access_denied
//	POST /oauth/token -> oauth.client_auth -> core.switch(grant_type)
//	                          authorization_code: oidc.code_exchange \
//	                          refresh_token:      oidc.refresh        > jose.sign (access token) -> oidc.id_token -> 200
//	GET /oauth/userinfo -> jose.validate -> oidc.userinfo -> 200 claims by scope
//	POST /oauth/introspect -> oauth.client_auth -> jose.validate -> oidc.grant_active --active--> 200 claims
//	                          \inactive (token invalid, grant ended): 200 {"active": false}
//	POST /oauth/revoke -> oauth.client_auth -> oidc.revoke --done--> 200 (refresh token: its grant ended)
//	                          \access_token: jose.validate -> oidc.revoke_access -> 200 (grant ended, or jti recorded)
//	GET /oauth/logout -> oidc.end_session --redirect/done--> 302 post_logout_redirect_uri?state | logged-out page
//	                          \confirm (a session, no hint for it): oidc.page logout_confirm -> 200 form
//	POST /oauth/logout -> oidc.end_session: the form's CSRF token -> logout as above | cancelled: still-signed-in page
//
// Every secret the provider hands out (code, session cookie, CSRF token)
// is 256 random bits, and only its SHA-256 is stored, so a copy of the
// database opens nothing. A refresh token is a MAC of its grant id and
// generation under a key derived from the provider key (a sealed secret,
// keys.go); the grant keeps only which generation is live. A pending
// sign-in is not stored at all: it waits in a sealed cookie in the
// browser (pending.go), so an unauthenticated request writes nothing.
// Everything lives in the store's KV namespaces (a restart loses no
// session) and every single-use step is one transaction (UpdateKV; the
// code exchange, which spends the code, creates the grant and links it to
// its session and consent, is one UpdateKVs over those records: exchange.go),
// so a code is redeemed exactly once and a refresh token rotated once even
// when requests race on several nodes:
//
//	oidc_users/<username>        user record (argon2id password hash)
//	oidc_user_subs/<sub>         -> username
//	oidc_tx/<sha256(tx id)>      a sign-in transaction that has been used (written by the sign-in that succeeded)
//	oidc_sessions/<sha256(sid)>  provider session: sub, auth_time, acr, amr
//	oidc_codes/<sha256(code)>    code: client, redirect_uri, PKCE challenge, nonce, user; used flag kept for replay detection
//	oidc_grants/<grant id>       one authorization and the live generation of its refresh token; revoked when its
//	                             code is replayed, a refresh token reused or the session it was made in logs
//	                             out (not offline_access); its access tokens
//	                             (gid claim) are checked against it at userinfo and introspection
//	oidc_session_grants/<sha256(sid)> the grants a session made (with offline flag); marked ended at logout
//	oidc_refresh/<sha256(rt)>    a refresh token of the earlier format (a random secret with its own record):
//	                             still honoured once, answered with a token of the current format
//	oidc_throttle/<u:hash|ip:addr> failed logins and backoff
//	oidc_consents/<sub>/<client> what a person allowed a client, and the grants made under it (consents.go)
//	oidc_revoked_tokens/<sha256(jti)> an access token without a grant (client_credentials) revoked before its exp
//	oidc_logout/<sha256(csrf)>   logout waiting for confirmation: client, post-logout redirect URI, state, session binding
//
// Every record carries a purge time; oidc.cleanup deletes the expired.
package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
)

// Category is the editor palette group of the blocks in this package.
const Category = "oidc"

// KV is the slice of store.KV the provider needs.
type KV interface {
	GetKV(ctx context.Context, ns, key string) ([]byte, error)
	ListKV(ctx context.Context, ns string) ([]string, error)
	DeleteKV(ctx context.Context, ns, key string) error
	UpdateKV(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, error)) error
	// CreateKV writes a record that must not exist yet (store.ErrConflict
	// when it does): fresh records under random keys (codes, sessions,
	// logout confirmations) need no read-modify-write.
	CreateKV(ctx context.Context, ns, key string, val []byte) error
	// UpdateKVs changes several records in one transaction
	// (store.KV.UpdateKVs): a code exchange is one.
	UpdateKVs(ctx context.Context, refs []store.KVRef, fn func(old [][]byte) ([][]byte, error)) error
}

// Deps are the registries the blocks work on.
type Deps struct {
	// State persists transactions, sessions, codes, grants, refresh tokens
	// and login counters. It must be the store Users keeps consents in:
	// a code exchange changes both in one transaction.
	State KV
	// Secrets keeps the provider key (keys.go), sealed at rest.
	Secrets Secrets
	Clients *oauth.Clients
	Users   *Users
	// Keysets sign ID tokens and verify id_token_hint.
	Keysets *jose.Keysets
}

// Options configure the blocks.
type Options struct {
	// Issuer is the provider's issuer identifier. It names the ID token's
	// iss and the authorization response's iss; an https issuer makes every
	// cookie Secure with the __Host- prefix.
	Issuer string
	Logger *slog.Logger
	// OnGrantRevoked, if set, hears of a grant revoked because a refresh
	// token was used twice or an authorization code replayed (the audit
	// log): the client id and the reason, never a token.
	OnGrantRevoked func(ctx context.Context, clientID, reason string)
}

// provider is what every factory gets.
type provider struct {
	Deps
	issuer string
	secure bool // cookies: Secure + __Host- prefix
	signer *jose.Signer
	log    *slog.Logger
	// onRevoked is Options.OnGrantRevoked.
	onRevoked func(ctx context.Context, clientID, reason string)

	keyCache keyCache
}

func (p *provider) grantRevoked(ctx context.Context, clientID, reason string) {
	if p.onRevoked != nil {
		p.onRevoked(ctx, clientID, reason)
	}
}

// Register adds the oidc blocks to reg. It needs no services: a runtime
// that deploys them gets the stores, registries and options given to
// Provide.
func Register(reg *engine.Registry) error {
	for _, b := range []struct {
		spec    engine.Spec
		factory func(*engine.Setup, *provider) (engine.Block, error)
	}{
		{authorizeSpec(), newAuthorizeFromConfig},
		{sessionSpec(), newSessionFromConfig},
		{loginPageSpec(), newLoginPageFromConfig},
		{loginSpec(), newLoginFromConfig},
		{issueCodeSpec(), newIssueCodeFromConfig},
		{codeExchangeSpec(), newCodeExchangeFromConfig},
		{refreshSpec(), newRefreshFromConfig},
		{parSpec(), newPARFromConfig},
		{idTokenSpec(), newIDTokenFromConfig},
		{userinfoSpec(), newUserinfoFromConfig},
		{grantActiveSpec(), newGrantActiveFromConfig},
		{endSessionSpec(), newEndSessionFromConfig},
		{pageSpec(), newPageFromConfig},
		{cleanupSpec(), newCleanupFromConfig},
		{revokeSpec(), newRevokeFromConfig},
		{revokeAccessSpec(), newRevokeAccessFromConfig},
		{consentSpec(), newConsentFromConfig},
		{consentPageSpec(), newConsentPageFromConfig},
		{consentAnswerSpec(), newConsentAnswerFromConfig},
	} {
		factory, typ := b.factory, b.spec.Type
		if err := reg.Register(b.spec, func(s *engine.Setup) (engine.Block, error) {
			p, err := providerFor(s)
			if err != nil {
				return nil, fmt.Errorf("%s needs stores, clients, users and keysets: %w", typ, err)
			}
			b, err := factory(s, p)
			return observed(typ, s, b, err)
		}); err != nil {
			return err
		}
	}
	return nil
}

// Provide gives the oidc blocks of a runtime built with svc their stores,
// registries and options.
func Provide(svc *engine.Services, d Deps, opts Options) error {
	if d.State == nil || d.Secrets == nil || d.Clients == nil || d.Users == nil || d.Keysets == nil {
		return errors.New("oidc: Provide needs a state store, a secret store, clients, users and keysets")
	}
	p := newProvider(d, opts)
	d.Users.state = d.State // Users.SignOut ends sessions kept there
	return engine.Provide(svc, p)
}

func newProvider(d Deps, opts Options) *provider {
	p := &provider{Deps: d, issuer: strings.TrimSuffix(opts.Issuer, "/"), signer: jose.NewSigner(d.Keysets), log: opts.Logger,
		onRevoked: opts.OnGrantRevoked}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.secure = strings.HasPrefix(p.issuer, "https://")
	return p
}

// providerFor finds the services of the runtime. A node only validated on
// a runtime without them is built on no stores (it never runs), a keyset
// manager with no store and jose.ValidationIssuer as flowd's issuer.
func providerFor(s *engine.Setup) (*provider, error) {
	return engine.ServiceOr(s, "oidc.Provide", func() *provider {
		return newProvider(Deps{Keysets: jose.NewKeysets(nil)}, Options{Issuer: jose.ValidationIssuer})
	})
}

// issuerFor resolves a block's issuer: its own field, else flowd's.
func (p *provider) issuerFor(s *engine.Setup, field string) (string, error) {
	iss := strings.TrimSuffix(s.Config.String(field), "/")
	if iss == "" {
		iss = p.issuer
	}
	if iss == "" {
		return "", s.Errorf(field, "required: set it here or start flowd with --issuer")
	}
	u, err := url.Parse(iss)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", s.Errorf(field, "must be an http(s) URL without query or fragment, like https://id.example.com")
	}
	return iss, nil
}

// --- secrets ------------------------------------------------------------------

// newSecret returns 256 random bits, base64url: codes, refresh tokens,
// session cookies, transaction handles, CSRF tokens.
func newSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// newID returns 128 random bits, base64url: user subjects, grant ids.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// hashKey is the store key of a secret: its SHA-256, hex. Secrets are
// 256-bit random values, so no salt or slow hash is needed.
func hashKey(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// looksLikeSecret checks the shape of a secret from a request before it
// is hashed and looked up: 43 base64url characters.
func looksLikeSecret(s string) bool { return len(s) == 43 && isBase64URL(s) }

// looksLikeID checks the shape of an id from a token (a grant id) before
// it is looked up: what newID makes, 22 base64url characters.
func looksLikeID(s string) bool { return len(s) == 22 && isBase64URL(s) }

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// --- message helpers ----------------------------------------------------------

func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// stringField returns m[key] when it is a string, else "" (absent, null,
// or a value of another type: attacker input is never trusted to be a string).
func stringField(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func reqOf(msg engine.Msg) map[string]any { return mapOf(msg["req"]) }

// header reads one lowercase request header.
func header(msg engine.Msg, name string) string {
	switch h := reqOf(msg)["headers"].(type) {
	case map[string]any:
		s, _ := h[name].(string)
		return s
	case map[string]string:
		return h[name]
	}
	return ""
}

// params returns the first and all values of the query (GET) or form body.
func queryParams(msg engine.Msg) (map[string]any, map[string][]string) {
	req := reqOf(msg)
	first := mapOf(req["query"])
	all, _ := req["query_all"].(map[string][]string)
	return first, all
}

func formParams(msg engine.Msg) (map[string]any, map[string][]string) {
	first := mapOf(msg["body"])
	all, _ := msg["body_all"].(map[string][]string)
	return first, all
}

// repeated names a parameter given more than once (RFC 6749 §3.1: request
// parameters MUST NOT be included more than once), or "".
func repeated(all map[string][]string) string {
	for k, v := range all {
		if len(v) > 1 {
			return k
		}
	}
	return ""
}

func anyList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func int64Of(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case float64:
		return int64(n), n == float64(int64(n))
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

// setOAuthError puts an error on the message for a page or a JSON answer.

// addCookie appends a Set-Cookie value to msg.cookies, which the flows'
// http.respond sends as Set-Cookie.
func addCookie(msg engine.Msg, c *http.Cookie) {
	list, _ := msg["cookies"].([]any)
	msg["cookies"] = append(list, c.String())
}

// cookieName is the name of one of the provider's cookies: with an https
// issuer it takes the __Host- prefix (Secure, Path=/, no Domain: the
// browser refuses it from anywhere else).
func (p *provider) cookieName(base string) string {
	if p.secure {
		return "__Host-" + base
	}
	return base
}

// cookie builds one of the provider's cookies: HttpOnly, SameSite=Lax (the
// redirect back from a relying party is a cross-site top-level GET that
// must carry the session), Secure with an https issuer. maxAge < 0 deletes.
func (p *provider) cookie(base, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: p.cookieName(base), Value: value, Path: "/", HttpOnly: true,
		Secure: p.secure, SameSite: http.SameSiteLaxMode}
	if maxAge < 0 {
		c.MaxAge = -1
		c.Value = ""
	} else if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	}
	return c
}

// readCookie returns the value of one of the provider's cookies from the
// request, "" when absent or repeated (a repeated name is a cookie-tossing
// attempt from a sibling domain, not something to choose from).
func (p *provider) readCookie(msg engine.Msg, base string) string {
	raw := header(msg, "cookie")
	if raw == "" {
		return ""
	}
	cookies, err := http.ParseCookie(raw)
	if err != nil {
		return ""
	}
	name := p.cookieName(base)
	value, n := "", 0
	for _, c := range cookies {
		if c.Name == name {
			value = c.Value
			n++
		}
	}
	if n != 1 {
		return ""
	}
	return value
}

// isLocalPath reports whether p is a path on this server: one leading
// slash, not "//" or "/\" (which a browser reads as another host).
func isLocalPath(p string) bool {
	return len(p) > 0 && p[0] == '/' && (len(p) == 1 || p[1] != '/' && p[1] != '\\')
}

// formAction is where a provider page's form posts: the block's configured
// path, else the path of the request that showed it, else fallback.
func formAction(configured string, msg engine.Msg, fallback string) string {
	if configured != "" {
		return configured
	}
	if p := stringField(reqOf(msg), "path"); isLocalPath(p) {
		return p
	}
	return fallback
}

// actionField reads a page block's action field: a path on this server,
// or, unless required, empty (formAction's fallbacks then apply).
func actionField(s *engine.Setup, required bool) (string, error) {
	action := s.Config.String("action")
	if (required || action != "") && !isLocalPath(action) {
		return "", s.Errorf("action", "must be a path on this server, starting with a single /")
	}
	return action, nil
}

// appendQuery adds parameters to a registered redirect URI, keeping the
// query it already has (exact-match registration allows one).
func appendQuery(base string, v url.Values) string {
	if len(v) == 0 {
		return base
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
		if strings.HasSuffix(base, "?") || strings.HasSuffix(base, "&") {
			sep = ""
		}
	}
	return base + sep + v.Encode()
}

func fmtErr(block string, err error) error { return fmt.Errorf("%s: %w", block, err) }
