package ui

import (
	"context"
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
	"sync"
	"time"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
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
	cookieName  = "flowd_session"
	csrfField   = "csrf"
	csrfHeader  = "X-CSRF-Token"
	sessionTTL  = 12 * time.Hour
	minPassword = 12
	maxPassword = 1024
)

// ErrNoPassword: no admin password is set, so nobody can log in.
var ErrNoPassword = errors.New("no admin password is set")

// Passwords holds the admin password: a fixed one (FLOWD_ADMIN_PASSWORD,
// hashed at start) or an argon2id hash in the store.
type Passwords struct {
	kv    store.KV
	fixed string // encoded hash of the fixed password
}

// NewPasswords returns the password store; fixed, if set, is the only
// password accepted.
func NewPasswords(kv store.KV, fixed string) *Passwords {
	p := &Passwords{kv: kv}
	if fixed != "" {
		p.fixed = hashPassword(fixed)
	}
	return p
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
	if err := p.kv.SetKV(ctx, nsUI, keyPassword, []byte(hashPassword(pw))); err != nil {
		return fmt.Errorf("store admin password: %w", err)
	}
	return nil
}

// IsSet reports whether a password can be checked.
func (p *Passwords) IsSet(ctx context.Context) bool {
	if p.fixed != "" {
		return true
	}
	_, err := p.kv.GetKV(ctx, nsUI, keyPassword)
	return err == nil
}

// Check reports whether pw is the admin password.
func (p *Passwords) Check(ctx context.Context, pw string) (bool, error) {
	enc := p.fixed
	if enc == "" {
		b, err := p.kv.GetKV(ctx, nsUI, keyPassword)
		if errors.Is(err, store.ErrNotFound) {
			return false, ErrNoPassword
		}
		if err != nil {
			return false, fmt.Errorf("read admin password: %w", err)
		}
		enc = string(b)
	}
	return verifyPassword(enc, pw), nil
}

// Admin passwords use the same argon2id hashing as OAuth client secrets
// and people's passwords (one implementation, one set of parameters).
func hashPassword(pw string) string { return oauth.HashSecret(pw) }

func verifyPassword(enc, pw string) bool { return oauth.VerifySecret(enc, pw) }

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
	c, err := r.Cookie(cookieName)
	if err != nil || len(c.Value) != 43 {
		return nil, false
	}
	key := sessionKeyOf(c.Value)
	b, err := ss.kv.GetKV(r.Context(), nsSessions, key)
	if err != nil {
		return nil, false
	}
	var sess session
	if json.Unmarshal(b, &sess) != nil || !ss.now().Before(sess.Expires) {
		_ = ss.kv.DeleteKV(r.Context(), nsSessions, key)
		return nil, false
	}
	sess.key = key
	return &sess, true
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

// limiter slows password guessing: per client IP at most ipFailures
// failures per window, and across all clients a backoff that doubles with
// every globalFailures failures in a window.
type limiter struct {
	mu     sync.Mutex
	now    func() time.Time
	ips    map[string]*failures
	global failures
}

type failures struct {
	n     int
	start time.Time
	until time.Time // blocked until
}

const (
	ipFailures     = 5
	globalFailures = 50
	failWindow     = 15 * time.Minute
)

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, ips: map[string]*failures{}}
}

// allow reports whether ip may try a password now, and if not, for how long
// it must wait.
func (l *limiter) allow(ip string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Before(l.global.until) {
		return false, l.global.until.Sub(now)
	}
	if f := l.ips[ip]; f != nil {
		if now.Sub(f.start) > failWindow {
			delete(l.ips, ip)
		} else if f.n >= ipFailures {
			return false, f.start.Add(failWindow).Sub(now)
		}
	}
	return true, 0
}

func (l *limiter) fail(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.ips) > 10000 { // bound memory under a spray of addresses
		for k, f := range l.ips {
			if now.Sub(f.start) > failWindow {
				delete(l.ips, k)
			}
		}
	}
	f := l.ips[ip]
	if f == nil || now.Sub(f.start) > failWindow {
		f = &failures{start: now}
		l.ips[ip] = f
	}
	f.n++
	if now.Sub(l.global.start) > failWindow {
		l.global = failures{start: now}
	}
	l.global.n++
	if l.global.n%globalFailures == 0 {
		step := l.global.n / globalFailures
		l.global.until = now.Add(time.Second << min(step, 8))
	}
}

func (l *limiter) succeed(ip string) {
	l.mu.Lock()
	delete(l.ips, ip)
	l.mu.Unlock()
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
		return Prefix + "/flows"
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
		s.limiter.fail(ip)
		s.log.Warn("admin login failed", "ip", ip)
		vm.Error = "Wrong password."
		s.render(w, r, http.StatusUnauthorized, LoginPage(vm))
		return
	}
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
