package oidc

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
)

// The only messages a failed sign-in shows. They never say whether the
// username exists or which part was wrong.
const (
	msgBadLogin  = "Incorrect username or password."
	msgThrottled = "Too many sign-in attempts. Wait a moment, then try again."
	msgExpired   = "This sign-in page has expired or could not be verified. Go back to the application and start again."
	msgBusy      = "The server is busy. Wait a moment, then try again."
)

func loginPageSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.login_page", Title: "Sign-in page", Category: Category,
		Description: "Renders the sign-in form (HTML, in msg.payload) for the authorization request in " +
			"msg.authz. Nothing is stored: the request waits in the browser as a sign-in cookie " +
			"(msg.cookies: answer them as Set-Cookie), sealed with the provider key (encrypted and " +
			"authenticated, with its expiry inside), one cookie per pending sign-in so that several tabs " +
			"can sign in at once (at most 5: a sixth pushes out the oldest). The form carries the " +
			"transaction id and a CSRF token the cookie holds the hash of. After a failed attempt " +
			"(msg.login from oidc.login) it renders the same transaction again with its message. Answer " +
			"with content type text/html and a Content-Security-Policy.",
		Fields: []engine.Field{
			{Name: "ttl", Label: "Time to sign in", Kind: engine.KindDuration, Default: "15m", Min: "1m", Max: "2h",
				Help: "How long the form stays valid."},
			{Name: "action", Label: "Form action", Kind: engine.KindString,
				Help: "Path the form posts to. Empty: the path of the request (the authorize route)."},
		},
		Outputs:   []string{"out"},
		Sensitive: []string{"cookies", "login", "csrf", "tx"},
	}
}

type loginPageBlock struct {
	p      *provider
	ttl    time.Duration
	action string
}

var _ engine.Block = (*loginPageBlock)(nil)

func newLoginPageFromConfig(s *engine.Setup, p *provider) (engine.Block, error) {
	action, err := actionField(s, false)
	if err != nil {
		return nil, err
	}
	return &loginPageBlock{p: p, ttl: s.Config.Duration("ttl"), action: action}, nil
}

func (b *loginPageBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	v := loginView{Action: formAction(b.action, msg, "/oauth/authorize")}
	if l := mapOf(msg["login"]); stringField(l, "tx") != "" {
		// A failed attempt: the same transaction, its message.
		v.TX, v.CSRF, v.Error, v.Username, v.ClientName = stringField(l, "tx"), stringField(l, "csrf"), stringField(l, "error"), stringField(l, "username"), stringField(l, "client_name")
	} else {
		a, err := authzFromMsg(msg)
		if err != nil {
			return "", fmtErr("oidc.login_page", err)
		}
		id, csrf, err := b.p.putRequest(ctx, msg, x.Now(), signInCookies, a, b.ttl)
		if err != nil {
			return "", fmtErr("oidc.login_page", err)
		}
		v.TX, v.CSRF, v.ClientName = id, csrf, a.ClientName
	}
	return renderPage(ctx, msg, "oidc.login_page", loginPage(v))
}

func loginSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.login", Title: "Sign in", Category: Category,
		Description: "Handles the sign-in form post: the sign-in cookie of the transaction (tx) must " +
			"open with the provider key, be live and hold the hash of the form's CSRF token; attempts are throttled per username and per client " +
			"address with exponential backoff; the password is checked against the user's argon2id hash. " +
			"Success starts a provider session (msg.cookies: the session cookie) and leaves by \"ok\" " +
			"with msg.authz (the stored request), msg.session and msg.user. A wrong password leaves by " +
			"\"failed\", a throttled attempt, or one that found every password-hashing slot busy, by " +
			"\"throttled\" (msg.retry_after, seconds), both with " +
			"msg.login for oidc.login_page and one generic message. A missing, expired, tampered, " +
			"oversized or foreign sign-in cookie, or one already used, leaves by \"invalid\" with " +
			"msg.oauth_error. Nothing is written before the password is checked (except the " +
			"throttle's counts); a success records the transaction as used, so that it signs in once.",
		Fields: []engine.Field{
			{Name: "session_ttl", Label: "Session lifetime", Kind: engine.KindDuration, Default: "12h", Min: "1m", Max: "720h",
				Help: "How long the person stays signed in at the provider (no sign-in page until then)."},
			{Name: "acr", Label: "acr", Kind: engine.KindString, Default: "1",
				Help: "Authentication context class reference put in ID tokens for a password sign-in."},
			{Name: "free_attempts", Label: "Free attempts per username", Kind: engine.KindInt, Default: 5, Min: "1", Max: "100",
				Help: "Failed attempts before backoff starts for a username."},
			{Name: "ip_free_attempts", Label: "Free attempts per address", Kind: engine.KindInt, Default: 20, Min: "1", Max: "10000",
				Help: "Failed attempts before backoff starts for one client address (IPv6: per /64)."},
			{Name: "backoff", Label: "First backoff", Kind: engine.KindDuration, Default: "1s", Min: "100ms", Max: "1h",
				Help: "The first wait; each further failure doubles it."},
			{Name: "max_backoff", Label: "Longest backoff", Kind: engine.KindDuration, Default: "15m", Min: "1s", Max: "24h",
				Help: "The longest wait between attempts."},
			{Name: "client_ip", Label: "Client address", Kind: engine.KindExpr, Default: "msg.req.remote_addr",
				Help: "Expression for the client's address. Behind a trusted proxy use the header it sets, " +
					"e.g. msg.req.headers[\"x-real-ip\"]; never a header clients can set themselves."},
		},
		Outputs:   []string{"ok", "failed", "throttled", "invalid"},
		Sensitive: []string{"cookies", "login", "csrf", "tx"},
	}
}

type loginBlock struct {
	p          *provider
	sessionTTL time.Duration
	acr        string
	th         throttle
	clientIP   *engine.Expr
}

var _ engine.Block = (*loginBlock)(nil)

func newLoginFromConfig(s *engine.Setup, p *provider) (engine.Block, error) {
	c := s.Config
	if c.Duration("max_backoff") < c.Duration("backoff") {
		return nil, s.Errorf("max_backoff", "must not be shorter than backoff")
	}
	return &loginBlock{p: p, sessionTTL: c.Duration("session_ttl"), acr: c.String("acr"),
		th: throttle{free: int(c.Int("free_attempts")), ipFree: int(c.Int("ip_free_attempts")),
			base: c.Duration("backoff"), max: c.Duration("max_backoff")},
		clientIP: c.Expr("client_ip")}, nil
}

var errLoginInvalid = errors.New("login transaction invalid")

func (b *loginBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	now := x.Now()
	form, all := formParams(msg)
	txHandle, csrf := stringField(form, "tx"), stringField(form, "csrf")
	username, password := stringField(form, "username"), stringField(form, "password")
	tx, err := b.transaction(ctx, msg, txHandle, csrf, now)
	if errors.Is(err, errLoginInvalid) || repeated(all) != "" {
		oauth.SetError(msg, 400, "invalid_request", msgExpired)
		return "invalid", nil
	}
	if err != nil {
		return "", fmtErr("oidc.login", err)
	}
	retry := func(port, text string) (string, error) {
		if len(username) > 256 {
			username = username[:256]
		}
		msg["login"] = map[string]any{"tx": txHandle, "csrf": csrf, "error": text, "username": username,
			"client_name": tx.Authz.ClientName}
		return port, nil
	}
	ip, err := b.address(x, msg)
	if err != nil {
		return "", fmtErr("oidc.login", err)
	}
	userKey, ipKey := userThrottleKey(username), ipThrottleKey(ip)
	wait, err := b.th.reserve(ctx, b.p.State, ipKey, b.th.ipFree, now)
	if err == nil && wait == 0 {
		wait, err = b.th.reserve(ctx, b.p.State, userKey, b.th.free, now)
		if err == nil && wait > 0 {
			b.th.release(ctx, b.p.State, ipKey) //nolint:errcheck // the address's attempt was not made
		}
	}
	if err != nil {
		return "", fmtErr("oidc.login", err)
	}
	if wait > 0 {
		msg["retry_after"] = int64(math.Ceil(wait.Seconds()))
		return retry("throttled", msgThrottled)
	}
	usr, err := b.p.Users.Authenticate(ctx, username, password)
	if errors.Is(err, ErrBusy) {
		// Nothing was checked: the attempt is given back, and the person
		// asked to try again in a moment (429 with Retry-After, like a
		// throttled attempt), not shown a server error.
		if err := b.th.release(ctx, b.p.State, userKey); err != nil {
			return "", fmtErr("oidc.login", err)
		}
		if err := b.th.release(ctx, b.p.State, ipKey); err != nil {
			return "", fmtErr("oidc.login", err)
		}
		msg["retry_after"] = int64(1)
		return retry("throttled", msgBusy)
	}
	if errors.Is(err, ErrInvalidLogin) || username == "" {
		return retry("failed", msgBadLogin)
	}
	if err != nil {
		return "", fmtErr("oidc.login", err)
	}
	// Right password: the username's count is forgotten, the address's
	// attempt given back (a success must not reset what a guesser spent
	// on other accounts).
	if err := b.th.reset(ctx, b.p.State, userKey); err != nil {
		return "", fmtErr("oidc.login", err)
	}
	if err := b.th.release(ctx, b.p.State, ipKey); err != nil {
		return "", fmtErr("oidc.login", err)
	}
	// The transaction is single use: whoever records it first goes on.
	// This is the first write a sign-in makes, after the password.
	first, err := markUsed(ctx, b.p.State, hashKey(txHandle), tx.Expires)
	if err != nil {
		return "", fmtErr("oidc.login", err)
	}
	if !first {
		oauth.SetError(msg, 400, "invalid_request", msgExpired)
		return "invalid", nil
	}
	addCookie(msg, b.p.cookie(txCookiePrefix+txHandle, "", -1))
	sid := newSecret()
	sess := &sessionRecord{Sub: usr.Sub, AuthTime: now.Unix(), ACR: b.acr, AMR: []string{"pwd"},
		Expires: now.Add(b.sessionTTL).Unix(), Purge: now.Add(b.sessionTTL).Unix()}
	if err := createRec(ctx, b.p.State, nsSessions, hashKey(sid), sess); err != nil {
		return "", fmtErr("oidc.login", err)
	}
	ended, err := indexSession(ctx, b.p.State, usr.Sub, hashKey(sid), sess, now) // user_sessions.go
	if len(ended) > 0 {
		b.p.Users.reportCapped(actingNode(ctx, x), usr.Username, ended)
	}
	if err != nil {
		return "", fmtErr("oidc.login", err)
	}
	// A password an admin sets (or a removal) while this sign-in checks
	// the old one signs the person out from the session index it reads
	// after its own write: a session indexed after that read would outlive
	// it. Reading the user again after indexing closes the gap: either
	// this read sees the change and the session ends here, or the
	// sign-out's read sees the session.
	if cur, err := b.p.Users.Get(ctx, usr.Username); err != nil || cur.Sub != usr.Sub || cur.PasswordHash != usr.PasswordHash {
		if _, eerr := endIndexedSession(ctx, b.p.State, hashKey(sid), now); eerr != nil {
			return "", fmtErr("oidc.login", eerr)
		}
		if err != nil && !errors.Is(err, ErrNoUser) {
			return "", fmtErr("oidc.login", err)
		}
		oauth.SetError(msg, 400, "invalid_request", msgExpired)
		return "invalid", nil
	}
	addCookie(msg, b.p.cookie(sessionCookie, sid, b.sessionTTL))
	msg["authz"] = tx.Authz.toMsg()
	setSession(msg, hashKey(sid), sess, usr)
	delete(msg, "login")
	return "ok", nil
}

// transaction opens the sign-in cookie the form names and checks its
// expiry and CSRF token (in constant time), and that its client is still
// registered (its name is looked up again: the cookie does not carry it).
func (b *loginBlock) transaction(ctx context.Context, msg engine.Msg, handle, csrf string, now time.Time) (*pendingSignIn, error) {
	if !looksLikeID(handle) || !looksLikeSecret(csrf) {
		return nil, errLoginInvalid
	}
	keys, err := b.p.keys(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := openPending(keys, handle, b.p.readCookie(msg, txCookiePrefix+handle))
	if err != nil {
		return nil, errLoginInvalid
	}
	if now.Unix() >= tx.Expires || subtle.ConstantTimeCompare([]byte(hashKey(csrf)), []byte(tx.CSRF)) != 1 {
		return nil, errLoginInvalid
	}
	cl, err := b.p.Clients.Get(ctx, tx.Authz.ClientID)
	if errors.Is(err, oauth.ErrNoClient) {
		return nil, errLoginInvalid
	}
	if err != nil {
		return nil, err
	}
	tx.Authz.ClientName = cl.Name
	if tx.Authz.ClientName == "" {
		tx.Authz.ClientName = cl.ID
	}
	return tx, nil
}

func (b *loginBlock) address(x *engine.Exec, msg engine.Msg) (string, error) {
	if b.clientIP == nil {
		return stringField(reqOf(msg), "remote_addr"), nil
	}
	v, err := b.clientIP.Eval(x, msg)
	if err != nil {
		return "", fmt.Errorf("client_ip: %w", err)
	}
	s, _ := v.(string)
	return s, nil
}
