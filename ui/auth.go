package ui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/passhash"
	"github.com/flowd/flowd/store"
)

// KV layout of the UI (namespace "ui"):
//
//	ui/password             argon2id hash of the admin password ("$argon2id$v=19$m=...")
//	ui_sessions/<sha256(id)> {"csrf": "...", "expires": "..."}; the cookie holds id
const (
	nsUI        = "ui"
	keyPassword = "password"
	nsSessions  = "ui_sessions"
	cookieName  = "flowd_admin" // not the provider's flowd_session: both reach /admin on an http issuer
	csrfField   = "csrf"
	csrfHeader  = "X-CSRF-Token"
	sessionTTL  = 12 * time.Hour
	minPassword = 12
	maxPassword = 1024
)

// ErrNoPassword: no admin password is set, so nobody can log in.
var ErrNoPassword = errors.New("no admin password is set")

// Passwords holds the admin password: a fixed one (FLOWD_ADMIN_PASSWORD)
// or an argon2id hash in the store, checked in the shared hashing pool.
//
// The fixed password is never argon2id-hashed: it lives in the process's
// environment already, so a slow hash of it in memory protects nothing,
// and hashing it would cost 19 MiB at every start. It is kept as an HMAC
// under a process-local key and compared in constant time.
type Passwords struct {
	// OnChange, if set, hears of a new admin password (never the
	// password itself), after it is stored (the audit log).
	OnChange func(ctx context.Context)
	kv       store.KV
	hasher   *passhash.Hasher
	fixed    []byte // HMAC of the fixed password, nil when none
	key      [32]byte
}

// NewPasswords returns the password store; fixed, if set, is the only
// password accepted. It hashes in a pool of its own (default size) until
// SetHasher gives it the process's shared one.
func NewPasswords(kv store.KV, fixed string) *Passwords {
	p := &Passwords{kv: kv, hasher: passhash.New(passhash.Options{})}
	rand.Read(p.key[:])
	if fixed != "" {
		p.fixed = p.mac(fixed)
	}
	return p
}

// SetHasher makes the store hash and check passwords in h, the pool shared
// with client authentication and people's sign-in. Call it before use.
func (p *Passwords) SetHasher(h *passhash.Hasher) { p.hasher = h }

func (p *Passwords) mac(pw string) []byte {
	m := hmac.New(sha256.New, p.key[:])
	m.Write([]byte(pw))
	return m.Sum(nil)
}

// CheckStrength refuses passwords too short or too long to be sensible.
func CheckStrength(pw string) error {
	if n := len([]rune(pw)); n < minPassword {
		return fmt.Errorf("the password must have at least %d characters", minPassword)
	}
	if len(pw) > maxPassword {
		return fmt.Errorf("the password must have at most %d bytes", maxPassword)
	}
	return nil
}

// Set stores the hash of a new password.
func (p *Passwords) Set(ctx context.Context, pw string) error {
	if err := CheckStrength(pw); err != nil {
		return err
	}
	hash, err := p.hasher.Hash(ctx, pw)
	if err != nil {
		return fmt.Errorf("hash admin password: %w", err)
	}
	if err := p.kv.SetKV(ctx, nsUI, keyPassword, []byte(hash)); err != nil {
		return fmt.Errorf("store admin password: %w", err)
	}
	if p.OnChange != nil {
		p.OnChange(ctx)
	}
	return nil
}

// IsSet reports whether a password can be checked.
func (p *Passwords) IsSet(ctx context.Context) bool {
	if p.fixed != nil {
		return true
	}
	_, err := p.kv.GetKV(ctx, nsUI, keyPassword)
	return err == nil
}

// Check reports whether pw is the admin password. The error is
// passhash.ErrBusy when no hashing slot was free in time (nothing was
// checked).
func (p *Passwords) Check(ctx context.Context, pw string) (bool, error) {
	if p.fixed != nil {
		return hmac.Equal(p.mac(pw), p.fixed), nil
	}
	b, err := p.kv.GetKV(ctx, nsUI, keyPassword)
	if errors.Is(err, store.ErrNotFound) {
		return false, ErrNoPassword
	}
	if err != nil {
		return false, fmt.Errorf("read admin password: %w", err)
	}
	if len(pw) > maxPassword {
		pw = pw[:maxPassword] // argon2 of a huge input is a cheap DoS; fails anyway
	}
	ok, err := p.hasher.Verify(ctx, string(b), pw)
	if err != nil {
		return false, fmt.Errorf("check admin password: %w", err)
	}
	return ok, nil
}

// Fixed reports whether FLOWD_ADMIN_PASSWORD is the password.
func (p *Passwords) Fixed() bool { return p.fixed != nil }

// session is a logged-in browser.
type session struct {
	key     string    // sha256 of the cookie id, hex: the KV key
	CSRF    string    `json:"csrf"`
	Expires time.Time `json:"expires"`
}

type sessionKey struct{}

// sessions keeps sessions in the KV store: only the SHA-256 of the cookie's
// 256-bit id is stored, so a store dump does not log anyone in.
type sessions struct {
	kv  store.KV
	now func() time.Time
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func sessionKeyOf(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

func (ss *sessions) create(ctx context.Context) (id string, sess *session, err error) {
	id = randomToken()
	sess = &session{key: sessionKeyOf(id), CSRF: randomToken(), Expires: ss.now().Add(sessionTTL).UTC()}
	b, _ := json.Marshal(sess)
	if err := ss.kv.SetKV(ctx, nsSessions, sess.key, b); err != nil {
		return "", nil, fmt.Errorf("store session: %w", err)
	}
	return id, sess, nil
}

func (ss *sessions) fromRequest(r *http.Request) (*session, bool) {
	sess, err := ss.lookup(r)
	return sess, err == nil
}

// errNoSession: the request carries no live session.
var errNoSession = errors.New("no session")

// lookup returns the request's live session: errNoSession when there is
// none, or the store's error when it could not be read (a person with a
// good cookie is not sent to the login page by a store outage).
func (ss *sessions) lookup(r *http.Request) (*session, error) {
	c, err := r.Cookie(cookieName)
	if err != nil || len(c.Value) != 43 {
		return nil, errNoSession
	}
	key := sessionKeyOf(c.Value)
	b, err := ss.kv.GetKV(r.Context(), nsSessions, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("read the session: %w", err)
	}
	var sess session
	if json.Unmarshal(b, &sess) != nil || !ss.now().Before(sess.Expires) {
		_ = ss.kv.DeleteKV(r.Context(), nsSessions, key)
		return nil, errNoSession
	}
	sess.key = key
	return &sess, nil
}

// sweep deletes expired sessions; it runs at each login, so the bucket
// stays as small as the number of live sessions plus a day of leftovers.
func (ss *sessions) sweep(ctx context.Context) {
	keys, err := ss.kv.ListKV(ctx, nsSessions)
	if err != nil {
		return
	}
	now := ss.now()
	for _, k := range keys {
		b, err := ss.kv.GetKV(ctx, nsSessions, k)
		if err != nil {
			continue
		}
		var sess session
		if json.Unmarshal(b, &sess) != nil || !now.Before(sess.Expires) {
			_ = ss.kv.DeleteKV(ctx, nsSessions, k)
		}
	}
}

func (ss *sessions) delete(ctx context.Context, sess *session) {
	_ = ss.kv.DeleteKV(ctx, nsSessions, sess.key)
}

// CSRFToken returns the CSRF token of the request's session ("" when the
// request has none). Forms send it as field "csrf", fetches as header
// X-CSRF-Token.
func CSRFToken(r *http.Request) string {
	if s, ok := r.Context().Value(sessionKey{}).(*session); ok {
		return s.CSRF
	}
	return ""
}

func (s *Server) csrfOK(r *http.Request, sess *session) bool {
	got := r.Header.Get(csrfHeader)
	if got == "" {
		// FormValue parses the body: cap it first (imports are the largest form).
		r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
		if err := r.ParseMultipartForm(maxFormBytes); err != nil && !errors.Is(err, http.ErrNotMultipart) {
			return false
		}
		got = r.PostFormValue(csrfField)
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) == 1
}

const maxFormBytes = engine.MaxFlowBytes + 64<<10

// limiter slows admin password guessing without a lockout an attacker
// can impose on the real admin:
//
//   - per address (IPv4, or IPv6 /64): ipFailures free failures, then a
//     backoff from 1 s doubling to 15 min;
//   - per account (there is one): accountFailures free failures across
//     all addresses, then a backoff from 1 s doubling to 1 min, which
//     applies only to addresses that have failed themselves recently.
//
// An attacker spreading guesses over many addresses gets ipFailures
// guesses per fresh address and is then held to the account's pace,
// while the real admin, from an address with no failures, is let in on
// the first try. (An attacker owning an unbounded number of addresses
// still gets ipFailures guesses on each: the admin password's strength
// rule, at least 12 characters, is what stands against that.)
type limiter struct {
	addr, account *passhash.Throttle
}

const (
	ipFailures      = 5
	accountFailures = 20
	failWindow      = 15 * time.Minute
	accountKey      = "admin"
)

func newLimiter(now func() time.Time, mk func(name string, o passhash.ThrottleOptions) *passhash.Throttle) *limiter {
	if now == nil {
		now = time.Now
	}
	if mk == nil {
		mk = func(_ string, o passhash.ThrottleOptions) *passhash.Throttle { return passhash.NewThrottle(o) }
	}
	return &limiter{
		addr: mk("admin_addr", passhash.ThrottleOptions{Free: ipFailures, Base: time.Second, Max: failWindow,
			Window: time.Hour, Size: 10000, Now: now}),
		account: mk("admin_account", passhash.ThrottleOptions{Free: accountFailures, Base: time.Second, Max: time.Minute,
			Window: time.Hour, Size: 1, Now: now}),
	}
}

// allow reports whether ip may try a password now, and if not, for how long
// it must wait.
func (l *limiter) allow(ip string) (bool, time.Duration) {
	key := passhash.AddressKey(ip)
	if wait := l.addr.Wait(key); wait > 0 {
		return false, wait
	}
	if l.addr.Failures(key) > 0 {
		if wait := l.account.Wait(accountKey); wait > 0 {
			return false, wait
		}
	}
	return true, 0
}

func (l *limiter) fail(ip string) {
	l.addr.Fail(passhash.AddressKey(ip))
	l.account.Fail(accountKey)
}

// succeed forgets the address's failures; the account's count stays (a
// success must not reset what a guesser spent elsewhere), but it only
// ever slows addresses that failed.
func (l *limiter) succeed(ip string) {
	l.addr.Reset(passhash.AddressKey(ip))
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// safeNext keeps a post-login redirect inside /admin.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix+"/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return LandingPage
	}
	return next
}

func (s *Server) setCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, Secure: s.d.Secure, SameSite: http.SameSiteStrictMode})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	ctx := r.Context()
	vm := LoginView{Next: safeNext(r.URL.Query().Get("next")), PasswordSet: s.pw.IsSet(ctx)}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.render(w, r, http.StatusOK, LoginPage(vm))
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !sameOrigin(r) {
		http.Error(w, "cross-site login refused", http.StatusForbidden)
		return
	}
	ip := clientIP(r)
	if ok, wait := s.limiter.allow(ip); !ok {
		s.signIn(SignInThrottled)
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		vm.Error = "Too many failed attempts. Try again later."
		s.render(w, r, http.StatusTooManyRequests, LoginPage(vm))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	vm.Next = safeNext(r.PostFormValue("next"))
	ok, err := s.pw.Check(ctx, r.PostFormValue("password"))
	if errors.Is(err, passhash.ErrBusy) {
		s.signIn(SignInBusy)
		w.Header().Set("Retry-After", fmt.Sprint(int(s.pw.hasher.RetryAfter().Seconds())))
		vm.Error = "The server is busy. Try again in a moment."
		s.render(w, r, http.StatusServiceUnavailable, LoginPage(vm))
		return
	}
	if errors.Is(err, ErrNoPassword) {
		vm.Error = "No admin password is set yet."
		s.render(w, r, http.StatusForbidden, LoginPage(vm))
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if !ok {
		s.signIn(SignInWrongPassword)
		s.limiter.fail(ip)
		s.log.Warn("admin login failed", "ip", ip)
		vm.Error = "Wrong password."
		s.render(w, r, http.StatusUnauthorized, LoginPage(vm))
		return
	}
	s.signIn(SignInOK)
	s.limiter.succeed(ip)
	s.sessions.sweep(ctx)
	id, _, err := s.sessions.create(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.setCookie(w, id, int(sessionTTL.Seconds()))
	s.log.Info("admin logged in", "ip", ip)
	http.Redirect(w, r, vm.Next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, sess *session) {
	s.sessions.delete(r.Context(), sess)
	s.setCookie(w, "", -1)
	http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
}
