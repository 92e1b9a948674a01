package store

import "fmt"

// CheckSchema compares the schema version a store holds with the one this
// flowd knows: ErrTooNew when the store was written by a newer flowd (an
// older binary must not write a layout it does not understand). It returns
// whether migrations are due (have < know). where names the store.
func CheckSchema(where string, have, know uint64) (migrate bool, err error) {
	if have > know {
		return false, &sentinelError{
			msg: fmt.Sprintf("store: %s has schema version %d but this flowd knows up to %d: upgrade flowd", where, have, know),
			err: ErrTooNew,
		}
	}
	return have < know, nil
}

// sentinelError carries a sentence written for the user and the sentinel it
// stands for, when "message: sentinel text" would say the same thing twice.
type sentinelError struct {
	msg string
	err error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.err }
