package oidc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Per-user index of provider sessions, for "sign a user out everywhere":
//
//	oidc_user_sessions/<sub>  {"sessions": [{"key": sha256(cookie), "expires": unix}], "purge": unix}
//
// oidc.login adds the session it creates (after storing it, so a live
// session is always in the index: a failed index write deletes the
// session and fails the sign-in). A logout leaves its entry, which then
// names a session that is gone; entries leave the index when they expire,
// or when the user is signed out everywhere. oidc.cleanup purges records
// past Purge.
//
// Bounded: a user holds at most maxUserSessions entries. A sign-in past
// the bound ends the user's oldest session (and its grants), so the index
// never forgets a live session.
//
// Users.OnSessionsEnded hears of the sessions ended here rather than by
// their person (the audit log): the oldest one a sign-in past the bound
// ended, a sign-out everywhere, a removal, a password an admin set. It is told after the sessions
// ended, as the other hooks (OnChange, Options.OnGrantRevoked) are, so a
// record that fails to be written does not undo the change.

const nsUserSessions = "oidc_user_sessions"

// maxUserSessions bounds one user's index record (rewritten on every
// sign-in).
const maxUserSessions = 100

type userSessionsRecord struct {
	Sessions []userSession `json:"sessions,omitempty"`
	Purge    int64         `json:"purge"`
}

type userSession struct {
	Key     string `json:"key"` // hashKey of the session cookie
	Expires int64  `json:"expires"`
}

// ErrNotRegistered: the user registry was not given to oidc.Register, so
// it does not know where provider sessions are kept.
var ErrNotRegistered = errors.New("oidc: the user registry is not registered with the provider blocks (oidc.Register)")

// SessionsEnded reports provider sessions of one person that flowd or an
// admin ended (Users.OnSessionsEnded). It holds identifiers only, never a
// cookie, a token or a whole store key.
type SessionsEnded struct {
	Username string
	// Reason is why: EndedSessionCap, EndedSignedOut, EndedUserRemoved
	// or EndedPasswordSet.
	Reason string
	// Sessions is how many live sessions ended.
	Sessions int
	// Incomplete: a sign-out everywhere stopped at a failure, so sessions
	// may live on (signing out again ends them).
	Incomplete bool
	// Session and SignedIn name the one session a sign-in past the cap
	// ended (EndedSessionCap): SessionRef of its key and its auth_time.
	Session  string
	SignedIn time.Time
}

// Reasons of SessionsEnded.
const (
	// EndedSessionCap: a sign-in past maxUserSessions ended the person's
	// oldest session.
	EndedSessionCap = "session_cap"
	// EndedSignedOut: an admin signed the person out everywhere.
	EndedSignedOut = "signed_out"
	// EndedUserRemoved: removing the person signed them out everywhere.
	EndedUserRemoved = "user_removed"
	// EndedPasswordSet: an admin set the person's password, which signed
	// them out everywhere (Users.SetPasswordSignedOut). Reported even
	// when no session ended: it is the record of the reset.
	EndedPasswordSet = "password_set"
)

// ErrSignOutIncomplete: a change that signs a person out everywhere was
// made, but not every session could be ended; signing out again ends the
// rest (Users.SetPasswordSignedOut).
var ErrSignOutIncomplete = errors.New("oidc: not every session could be ended")

// SessionRef is the reference audit events give a provider session: the
// first 16 hex digits of its store key (oidc_sessions/<sha256(cookie)>).
// It opens nothing: neither the cookie nor the whole key can be had from
// it, and it tells one person's sessions apart.
func SessionRef(key string) string {
	if len(key) < 16 {
		return key
	}
	return key[:16]
}

// reportEnded tells OnSessionsEnded.
func (u *Users) reportEnded(ctx context.Context, e SessionsEnded) {
	if u != nil && u.OnSessionsEnded != nil {
		u.OnSessionsEnded(ctx, e)
	}
}

// indexSession adds a session just stored under key to its user's index.
// On failure it deletes the session, so none lives outside the index. It
// returns the live sessions it ended to stay within maxUserSessions (by
// store key), on failure too: those ended before it.
func indexSession(ctx context.Context, kv KV, sub, key string, s *sessionRecord, now time.Time) (map[string]*sessionRecord, error) {
	var evicted []string
	err := updateRec(ctx, kv, nsUserSessions, sub, func(cur *userSessionsRecord) (*userSessionsRecord, error) {
		evicted = nil // the function may run again: computed from cur alone
		next := &userSessionsRecord{Purge: s.Purge}
		if cur != nil {
			for _, e := range cur.Sessions {
				if e.Expires > now.Unix() && e.Key != key {
					next.Sessions = append(next.Sessions, e)
					next.Purge = max(next.Purge, e.Expires)
				}
			}
		}
		slices.SortStableFunc(next.Sessions, func(a, b userSession) int { return cmp.Compare(a.Expires, b.Expires) })
		if over := len(next.Sessions) + 1 - maxUserSessions; over > 0 {
			for _, e := range next.Sessions[:over] {
				evicted = append(evicted, e.Key)
			}
			next.Sessions = slices.Clone(next.Sessions[over:])
		}
		next.Sessions = append(next.Sessions, userSession{Key: key, Expires: s.Expires})
		return next, nil
	})
	if err != nil {
		if derr := deleteRec(ctx, kv, nsSessions, key); derr != nil {
			return nil, fmt.Errorf("index the session: %w (and the session could not be removed: %w)", err, derr)
		}
		return nil, fmt.Errorf("index the session: %w", err)
	}
	var ended map[string]*sessionRecord
	for _, k := range evicted {
		live, err := endIndexedSession(ctx, kv, k, now)
		if err != nil {
			return ended, fmt.Errorf("end the oldest session past %d: %w", maxUserSessions, err)
		}
		// An entry whose session logged out on its own ended nothing.
		if live != nil {
			if ended == nil {
				ended = map[string]*sessionRecord{}
			}
			ended[k] = live
		}
	}
	return ended, nil
}

// reportCapped tells OnSessionsEnded of each session a sign-in of
// username ended to stay within maxUserSessions.
func (u *Users) reportCapped(ctx context.Context, username string, ended map[string]*sessionRecord) {
	for k, s := range ended {
		u.reportEnded(ctx, SessionsEnded{Username: username, Reason: EndedSessionCap, Sessions: 1,
			Session: SessionRef(k), SignedIn: time.Unix(s.AuthTime, 0).UTC()})
	}
}

// endIndexedSession ends one session as a logout does: its grants are
// revoked first (all but offline ones), then the session is deleted. It
// returns the session when a live one was there.
func endIndexedSession(ctx context.Context, kv KV, key string, now time.Time) (*sessionRecord, error) {
	if !isHashKey(key) {
		return nil, nil // not one of ours: nothing to end
	}
	s, err := getRec[sessionRecord](ctx, kv, nsSessions, key)
	if err != nil {
		return nil, err
	}
	if _, err := revokeSessionGrants(ctx, kv, key, now); err != nil {
		return nil, fmt.Errorf("revoke the session's grants: %w", err)
	}
	if err := deleteRec(ctx, kv, nsSessions, key); err != nil {
		return nil, err
	}
	if s == nil || now.Unix() >= s.Expires {
		return nil, nil
	}
	return s, nil
}

// SignOutResult says what signing a user out everywhere ended.
type SignOutResult struct {
	// Sessions is how many live provider sessions were ended.
	Sessions int `json:"sessions"`
}

// SignOut signs a user out of every provider session: each one's grants
// are revoked (refresh tokens stop working, as after a logout; offline
// grants stay) and the session is deleted, so every browser must sign in
// again. It is safe to repeat: a failure part way leaves the sessions not
// yet ended in the index, and running it again ends them.
// OnSessionsEnded hears of it (EndedSignedOut), and of the sessions ended
// before a failure part way.
func (u *Users) SignOut(ctx context.Context, username string) (SignOutResult, error) {
	if u.state == nil {
		return SignOutResult{}, ErrNotRegistered
	}
	usr, err := u.Get(ctx, username)
	if err != nil {
		return SignOutResult{}, err
	}
	res, err := u.signOut(ctx, usr)
	if err == nil || res.Sessions > 0 {
		u.reportEnded(ctx, SessionsEnded{Username: usr.Username, Reason: EndedSignedOut, Sessions: res.Sessions, Incomplete: err != nil})
	}
	return res, err
}

// signOut is SignOut of a user already read, without telling
// OnSessionsEnded.
func (u *Users) signOut(ctx context.Context, usr User) (SignOutResult, error) {
	var res SignOutResult
	now := u.now()
	idx, err := getRec[userSessionsRecord](ctx, u.state, nsUserSessions, usr.Sub)
	if err != nil || idx == nil {
		return res, err
	}
	done := map[string]bool{}
	var failed error
	for _, e := range idx.Sessions {
		live, err := endIndexedSession(ctx, u.state, e.Key, now)
		if err != nil {
			failed = err
			break
		}
		done[e.Key] = true
		if live != nil {
			res.Sessions++
		}
	}
	// Drop the ended entries; entries a sign-in added meanwhile stay.
	err = updateRec(ctx, u.state, nsUserSessions, usr.Sub, func(cur *userSessionsRecord) (*userSessionsRecord, error) {
		if cur == nil {
			return nil, nil
		}
		next := &userSessionsRecord{Purge: cur.Purge}
		for _, e := range cur.Sessions {
			if !done[e.Key] {
				next.Sessions = append(next.Sessions, e)
			}
		}
		if len(next.Sessions) == 0 {
			return nil, nil
		}
		return next, nil
	})
	if failed != nil {
		return res, fmt.Errorf("sign %q out everywhere: %w", usr.Username, failed)
	}
	if err != nil {
		return res, fmt.Errorf("sign %q out everywhere: %w", usr.Username, err)
	}
	return res, nil
}
