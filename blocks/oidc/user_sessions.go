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

// indexSession adds a session just stored under key to its user's index.
// On failure it deletes the session, so none lives outside the index.
func indexSession(ctx context.Context, kv KV, sub, key string, s *sessionRecord, now time.Time) error {
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
			return fmt.Errorf("index the session: %w (and the session could not be removed: %w)", err, derr)
		}
		return fmt.Errorf("index the session: %w", err)
	}
	for _, k := range evicted {
		if _, err := endIndexedSession(ctx, kv, k, now); err != nil {
			return fmt.Errorf("end the oldest session past %d: %w", maxUserSessions, err)
		}
	}
	return nil
}

// endIndexedSession ends one session as a logout does: its grants are
// revoked first (all but offline ones), then the session is deleted. It
// reports whether a live session was there.
func endIndexedSession(ctx context.Context, kv KV, key string, now time.Time) (bool, error) {
	if !isHashKey(key) {
		return false, nil // not one of ours: nothing to end
	}
	s, err := getRec[sessionRecord](ctx, kv, nsSessions, key)
	if err != nil {
		return false, err
	}
	if _, err := revokeSessionGrants(ctx, kv, key, now); err != nil {
		return false, fmt.Errorf("revoke the session's grants: %w", err)
	}
	if err := deleteRec(ctx, kv, nsSessions, key); err != nil {
		return false, err
	}
	return s != nil && now.Unix() < s.Expires, nil
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
func (u *Users) SignOut(ctx context.Context, username string) (SignOutResult, error) {
	var res SignOutResult
	if u.state == nil {
		return res, ErrNotRegistered
	}
	usr, err := u.Get(ctx, username)
	if err != nil {
		return res, err
	}
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
		if live {
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
