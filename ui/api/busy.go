package api

import (
	"errors"
	"fmt"
	"time"
)

// Busy answers: hashing a password or a secret a person chose takes a slot
// of the bounded argon2id pool (passhash); when none is free in time the
// registries return passhash.ErrBusy (oauth.ErrBusy and oidc.ErrBusy are
// the same error). Nothing was changed, so it is a 503 with Retry-After,
// never a 500 (the "busy" row of the error table, errors.go).

// retryAfterer is an error that says when to come back (oauth.RetryError).
type retryAfterer interface{ RetryAfterSeconds() int64 }

type retryError struct {
	err   error
	after time.Duration
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }
func (e *retryError) RetryAfterSeconds() int64 {
	return max(1, int64((e.after+time.Second-1)/time.Second))
}

// WithRetryAfter marks err with how long to wait before trying again, for
// errors that do not say it themselves (oidc.ErrBusy with the pool's
// passhash.Hasher.RetryAfter). nil stays nil.
func WithRetryAfter(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	var ra retryAfterer
	if errors.As(err, &ra) {
		return err
	}
	return &retryError{err: err, after: after}
}

// BusyMessage is what a person reads when the pool was full.
func BusyMessage(secs int64) string {
	return fmt.Sprintf("the server is busy hashing passwords: nothing was changed. Try again in %d s.", secs)
}
