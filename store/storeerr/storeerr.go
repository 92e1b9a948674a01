// Package storeerr holds the store's sentinel errors, with no backend
// behind them: a package that only tests for one (an http block turning an
// unreachable store into a 503) imports this instead of package store and
// bbolt with it. Package store declares the same values (store.ErrNotFound
// is storeerr.ErrNotFound), so errors.Is matches either name.
package storeerr

import "errors"

// Sentinel errors. Backends wrap them with context; callers test with errors.Is.
var (
	// ErrNotFound: the flow, version, run, key or secret does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a conditional write saw a different revision (If-Match failed),
	// or a create found the record already there.
	ErrConflict = errors.New("revision conflict")
	// ErrTooNew: the database was written by a newer flowd (schema version ahead).
	ErrTooNew = errors.New("database was written by a newer flowd")
	// ErrLocked: another process holds the database file.
	ErrLocked = errors.New("database is locked by another process")
	// ErrMasterKey: the master key does not open this database's secrets.
	ErrMasterKey = errors.New("master key does not match this database")
	// ErrInvalid: a record or argument failed validation before it was written.
	ErrInvalid = errors.New("invalid record")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store is closed")
	// ErrUnavailable: the store cannot answer now (a cluster store without
	// quorum, or a deadline hit while waiting for its leader). Nothing is
	// known to have been written. Readers may serve from a cache for a
	// bounded time; writers and anything single-use must fail closed.
	ErrUnavailable = errors.New("store is unavailable")
	// ErrFenced: a write was made under a fenced context (Leadership.Fenced)
	// whose leadership is lost. The write changed nothing.
	ErrFenced = errors.New("leadership lost: write fenced off")
	// ErrCompacted: a Feed watch asked for revisions the store no longer
	// keeps, or its subscriber fell too far behind. Re-list at Feed.Rev
	// and watch again from there.
	ErrCompacted = errors.New("feed revision compacted")
	// ErrLockHeld: Coordinator.TryLock found the lock held by someone else.
	ErrLockHeld = errors.New("lock is held")
)
