package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowd/flowd/passhash"
	"github.com/flowd/flowd/store"
)

// Errors of the user registry.
var (
	ErrNoUser       = errors.New("user not found")
	ErrUserExists   = errors.New("user already exists")
	ErrBadUser      = errors.New("invalid user")
	ErrInvalidLogin = errors.New("invalid username or password")
	// ErrBusy: every password-hashing slot stayed taken for the whole
	// wait (passhash.ErrBusy). Nothing was checked: answer "try again
	// shortly" (503, Retry-After), and do not count it as a failure.
	ErrBusy = passhash.ErrBusy
)

const (
	nsUsers    = "oidc_users"
	nsUserSubs = "oidc_user_subs"

	minPasswordLen = 8
	maxPasswordLen = 1024 // bytes; argon2 of a huge input is a cheap DoS
)

// User is a person who signs in. The standard claims come from it: sub,
// preferred_username (profile), name (profile), email and email_verified
// (email). PasswordHash is never shown.
type User struct {
	Sub           string    `json:"sub"`
	Username      string    `json:"username"`
	Name          string    `json:"name,omitempty"`
	Email         string    `json:"email,omitempty"`
	EmailVerified bool      `json:"email_verified"`
	Created       time.Time `json:"created"`
	PasswordHash  string    `json:"password_hash,omitempty"`
}

// View is what APIs and lists show: no hash.
func (u User) View() User {
	u.PasswordHash = ""
	return u
}

var (
	usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._@+-]{0,127}$`)
	emailPattern    = regexp.MustCompile(`^[^\s@<>()",;:\\]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,63}$`)
)

// NormalizeUsername is how usernames are compared: trimmed, lower case.
func NormalizeUsername(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// Users is the user registry, in the store's KV.
type Users struct {
	// OnChange, if set, hears of users added ("added") and removed
	// ("removed") by username, after the write (the audit log).
	OnChange func(ctx context.Context, what, username string)
	// OnSessionsEnded, if set, hears of a person's provider sessions
	// ended by flowd or an admin rather than by the person (the audit
	// log), after they ended: a sign-in past the per-user cap, a sign-out
	// everywhere, a removal, a password set by an admin (told even when
	// no session ended). A logout, a session's expiry and the cleanup of
	// expired records are not reported.
	OnSessionsEnded func(ctx context.Context, e SessionsEnded)
	// OnConsentWithdrawn, if set, hears of a consent WithdrawConsent
	// forgot and how many of its grants it ended (the audit log), after
	// the consent is gone.
	OnConsentWithdrawn func(ctx context.Context, username, clientID string, grants int)
	kv                 KV
	now                func() time.Time
	hasher             *passhash.Hasher
	state              KV // the provider's state (sessions), set by Register: SignOut
}

// NewUsers returns a registry over kv, with a hashing pool of its own
// (default size) until SetHasher gives it the process's shared one.
func NewUsers(kv KV) *Users {
	return &Users{kv: kv, now: time.Now, hasher: passhash.New(passhash.Options{})}
}

// SetHasher makes the registry hash and verify passwords in h, the pool
// shared with client authentication and the admin login. Call it before use.
func (u *Users) SetHasher(h *passhash.Hasher) { u.hasher = h }

// Hasher is the pool passwords are checked in (its RetryAfter says what
// to tell a client refused with ErrBusy).
func (u *Users) Hasher() *passhash.Hasher { return u.hasher }

// SetClock replaces the clock (tests).
func (u *Users) SetClock(now func() time.Time) { u.now = now }

// Add registers a user with a password (hashed with argon2id; the clear
// password is never stored). The username is normalized; sub is a fresh
// random identifier that never changes.
func (u *Users) Add(ctx context.Context, usr User, password string) (User, error) {
	if !utf8.ValidString(usr.Username) {
		return User{}, fmt.Errorf("%w: the username is not valid UTF-8", ErrBadUser)
	}
	if !utf8.ValidString(usr.Name) || strings.ContainsRune(usr.Name, utf8.RuneError) {
		return User{}, fmt.Errorf("%w: the name is not valid UTF-8 (or contains U+FFFD, the replacement character left by invalid UTF-8)", ErrBadUser)
	}
	if !utf8.ValidString(password) {
		return User{}, fmt.Errorf("%w: the password is not valid UTF-8", ErrBadUser)
	}
	usr.Username = NormalizeUsername(usr.Username)
	if !usernamePattern.MatchString(usr.Username) {
		return User{}, fmt.Errorf("%w: username must be 1-128 lowercase letters, digits, '.', '_', '@', '+' or '-'", ErrBadUser)
	}
	if n := utf8.RuneCountInString(password); n < minPasswordLen || len(password) > maxPasswordLen {
		return User{}, fmt.Errorf("%w: the password needs at least %d characters (and at most %d bytes)", ErrBadUser, minPasswordLen, maxPasswordLen)
	}
	usr.Name = strings.TrimSpace(usr.Name)
	if len(usr.Name) > 256 || !utf8.ValidString(usr.Name) || strings.ContainsFunc(usr.Name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return User{}, fmt.Errorf("%w: name must be at most 256 bytes of text without control characters", ErrBadUser)
	}
	usr.Email = strings.TrimSpace(usr.Email)
	if usr.Email != "" && !emailPattern.MatchString(usr.Email) {
		return User{}, fmt.Errorf("%w: %q is not an email address", ErrBadUser, truncate(usr.Email, 64))
	}
	if usr.Email == "" {
		usr.EmailVerified = false
	}
	usr.Sub = newID()
	usr.Created = u.now().UTC().Truncate(time.Second)
	hash, err := u.hasher.Hash(ctx, password)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	usr.PasswordHash = hash
	rec, err := json.Marshal(usr)
	if err != nil {
		return User{}, err
	}
	// The record and its sub index in one transaction: a failure (or a
	// crash) between two writes would leave a user that BySub cannot find.
	refs := []store.KVRef{{NS: nsUsers, Key: usr.Username}, {NS: nsUserSubs, Key: usr.Sub}}
	err = u.kv.UpdateKVs(ctx, refs, func(old [][]byte) ([][]byte, error) {
		if old[0] != nil {
			return nil, fmt.Errorf("%w: %q", ErrUserExists, usr.Username)
		}
		if old[1] != nil { // 128 random bits met twice: refuse rather than repoint
			return nil, fmt.Errorf("add user %q: the new sub is already indexed: %w", usr.Username, store.ErrConflict)
		}
		return [][]byte{rec, []byte(usr.Username)}, nil
	})
	if err != nil {
		return User{}, err
	}
	if u.OnChange != nil {
		u.OnChange(ctx, "added", usr.Username)
	}
	return usr.View(), nil
}

// Get returns a user by username (with the hash, for authentication).
func (u *Users) Get(ctx context.Context, username string) (User, error) {
	username = NormalizeUsername(username)
	if !usernamePattern.MatchString(username) {
		return User{}, ErrNoUser
	}
	raw, err := u.kv.GetKV(ctx, nsUsers, username)
	if errors.Is(err, store.ErrNotFound) {
		return User{}, fmt.Errorf("%w: %q", ErrNoUser, username)
	}
	if err != nil {
		return User{}, fmt.Errorf("read user %q: %w", username, err)
	}
	var usr User
	if err := json.Unmarshal(raw, &usr); err != nil {
		return User{}, fmt.Errorf("user %q record: %w", username, err)
	}
	return usr, nil
}

// BySub returns a user by subject identifier.
func (u *Users) BySub(ctx context.Context, sub string) (User, error) {
	if sub == "" || len(sub) > 64 {
		return User{}, ErrNoUser
	}
	raw, err := u.kv.GetKV(ctx, nsUserSubs, sub)
	if errors.Is(err, store.ErrNotFound) {
		return User{}, ErrNoUser
	}
	if err != nil {
		return User{}, fmt.Errorf("read user index: %w", err)
	}
	usr, err := u.Get(ctx, string(raw))
	if err != nil {
		return User{}, err
	}
	if usr.Sub != sub { // removed and added again under the same name
		return User{}, ErrNoUser
	}
	return usr, nil
}

// List returns every user (views, no hashes), sorted by username.
func (u *Users) List(ctx context.Context) ([]User, error) {
	names, err := u.kv.ListKV(ctx, nsUsers)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make([]User, 0, len(names))
	for _, n := range names {
		usr, err := u.Get(ctx, n)
		if errors.Is(err, ErrNoUser) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, usr.View())
	}
	return out, nil
}

// Remove signs a user out everywhere and deletes them: RemoveSignedOut
// without the count.
func (u *Users) Remove(ctx context.Context, username string) error {
	_, err := u.RemoveSignedOut(ctx, username)
	return err
}

// RemoveSignedOut signs a user out everywhere (SignOut: every provider
// session ended, its grants revoked, so access tokens checked with
// oidc.grant_active stop at once) and then deletes the user, answering
// what the sign-out ended. Refresh tokens and userinfo answers stop
// working too (each looks the user up by sub); access tokens already
// issued stay valid at APIs that only check the signature until they
// expire. A sign-out that fails leaves the user in place, so removing
// again finishes the job.
func (u *Users) RemoveSignedOut(ctx context.Context, username string) (SignOutResult, error) {
	var res SignOutResult
	usr, err := u.Get(ctx, username)
	if err != nil {
		return res, err
	}
	if u.state != nil { // else no provider blocks: no sessions to end
		res, err = u.signOut(ctx, usr)
		if res.Sessions > 0 {
			u.reportEnded(ctx, SessionsEnded{Username: usr.Username, Reason: EndedUserRemoved, Sessions: res.Sessions, Incomplete: err != nil})
		}
		if err != nil {
			return res, fmt.Errorf("remove user %q: %w", usr.Username, err)
		}
	}
	// The record and its sub index go together, and only if the record is
	// still the user read above (not one removed and added again since).
	refs := []store.KVRef{{NS: nsUsers, Key: usr.Username}, {NS: nsUserSubs, Key: usr.Sub}}
	err = u.kv.UpdateKVs(ctx, refs, func(old [][]byte) ([][]byte, error) {
		var cur User
		if old[0] == nil || json.Unmarshal(old[0], &cur) != nil || cur.Sub != usr.Sub {
			return nil, ErrNoUser
		}
		return [][]byte{nil, nil}, nil
	})
	if err != nil {
		return res, fmt.Errorf("remove user %q: %w", usr.Username, err)
	}
	if u.OnChange != nil {
		u.OnChange(ctx, "removed", usr.Username)
	}
	return res, nil
}

// Authenticate checks a username and password. Every failure is the same
// ErrInvalidLogin (no hint whether the user exists) and costs the same:
// one argon2id computation in the shared pool, against a dummy hash for
// an unknown name. ErrBusy means no slot was free in time: nothing was
// checked.
func (u *Users) Authenticate(ctx context.Context, username, password string) (User, error) {
	tooLong := len(password) > maxPasswordLen
	if tooLong {
		password = password[:maxPasswordLen] // still fails below; costs the same
	}
	usr, err := u.Get(ctx, username)
	if err != nil && !errors.Is(err, ErrNoUser) {
		return User{}, err
	}
	if err != nil || usr.PasswordHash == "" {
		if err := u.hasher.Fail(ctx, "user\x00"+NormalizeUsername(username), password); err != nil {
			return User{}, fmt.Errorf("check password: %w", err)
		}
		return User{}, ErrInvalidLogin
	}
	ok, err := u.hasher.Verify(ctx, usr.PasswordHash, password)
	if err != nil {
		return User{}, fmt.Errorf("check password: %w", err)
	}
	if !ok || tooLong {
		return User{}, ErrInvalidLogin
	}
	return usr, nil
}

// Claims are the user's standard claims for a scope list.
func (usr User) Claims(scopes []string) map[string]any {
	out := map[string]any{"sub": usr.Sub}
	for _, s := range scopes {
		switch s {
		case "profile":
			out["preferred_username"] = usr.Username
			if usr.Name != "" {
				out["name"] = usr.Name
			}
		case "email":
			if usr.Email != "" {
				out["email"] = usr.Email
				out["email_verified"] = usr.EmailVerified
			}
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// SetPassword sets a user's password and signs them out everywhere:
// SetPasswordSignedOut without the count.
func (u *Users) SetPassword(ctx context.Context, username, password string) error {
	_, err := u.SetPasswordSignedOut(ctx, username, password)
	return err
}

// SetPasswordSignedOut replaces a user's password (hashed as Add hashes
// it) and then signs the user out everywhere, as SignOut does: every
// provider session ends and its grants are revoked (offline_access grants
// stay), so nobody stays signed in with the old password. It answers what
// the sign-out ended. OnSessionsEnded hears of it (EndedPasswordSet) once
// the password is set, even with nothing ended, so the audit log has the
// reset.
//
// The password and the sign-out are not one transaction: a sign-out is
// up to maxUserSessions sessions with their grants, past what one store
// transaction may change (store.MaxUpdateKVs), and SignOut is built to be
// repeated. The password goes first, so a sign-in racing the reset either
// checked the new password or is ended (oidc.login looks the user up
// again after indexing its session); a sign-out that fails part way
// leaves the password set and the error says to sign out again.
func (u *Users) SetPasswordSignedOut(ctx context.Context, username, password string) (SignOutResult, error) {
	username = NormalizeUsername(username)
	if !usernamePattern.MatchString(username) {
		return SignOutResult{}, fmt.Errorf("%w: %q", ErrNoUser, truncate(username, 64))
	}
	if n := utf8.RuneCountInString(password); n < minPasswordLen || len(password) > maxPasswordLen {
		return SignOutResult{}, fmt.Errorf("%w: the password needs at least %d characters (and at most %d bytes)", ErrBadUser, minPasswordLen, maxPasswordLen)
	}
	if !utf8.ValidString(password) {
		return SignOutResult{}, fmt.Errorf("%w: the password is not valid UTF-8", ErrBadUser)
	}
	hash, err := u.hasher.Hash(ctx, password)
	if err != nil {
		return SignOutResult{}, fmt.Errorf("hash password: %w", err)
	}
	var usr User
	err = u.kv.UpdateKV(ctx, nsUsers, username, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, fmt.Errorf("%w: %q", ErrNoUser, username)
		}
		usr = User{}
		if err := json.Unmarshal(old, &usr); err != nil {
			return nil, fmt.Errorf("user %q record: %w", username, err)
		}
		usr.PasswordHash = hash
		return json.Marshal(usr)
	})
	if err != nil {
		return SignOutResult{}, err
	}
	var res SignOutResult
	if u.state != nil { // else no provider blocks: no sessions to end
		res, err = u.signOut(ctx, usr)
	}
	u.reportEnded(ctx, SessionsEnded{Username: usr.Username, Reason: EndedPasswordSet, Sessions: res.Sessions, Incomplete: err != nil})
	if err != nil {
		return res, fmt.Errorf("%w: the password of %q is set (sign them out everywhere again): %w", ErrSignOutIncomplete, usr.Username, err)
	}
	return res, nil
}
