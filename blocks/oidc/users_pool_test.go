package oidc

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/passhash"
	"github.com/flowd/flowd/store/memstore"
)

func poolUsers(t *testing.T, o passhash.Options) *Users {
	t.Helper()
	u := NewUsers(memstore.MustNew(t, memstore.Options{}))
	u.SetHasher(passhash.New(o))
	return u
}

// An unknown name costs what a wrong password costs: one computation in
// the shared pool.
func TestUsersAuthenticateThroughThePool(t *testing.T) {
	var n atomic.Int32
	u := poolUsers(t, passhash.Options{Observe: func(int) { n.Add(1) }})
	ctx := t.Context()
	if _, err := u.Add(ctx, User{Username: "alice"}, "correct horse"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user, pw string
		want           error
	}{
		{"right password", "alice", "correct horse", nil},
		{"wrong password", "alice", "correct horsE", ErrInvalidLogin},
		{"unknown user", "bob", "correct horse", ErrInvalidLogin},
		{"malformed name", "B\xffB", "correct horse", ErrInvalidLogin},
		{"too long password", "alice", strings.Repeat("x", 5000), ErrInvalidLogin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := n.Load()
			_, err := u.Authenticate(ctx, tc.user, tc.pw)
			if !errors.Is(err, tc.want) || tc.want == nil && err != nil {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if got := n.Load() - before; got != 1 {
				t.Fatalf("%d argon2id computations, want 1", got)
			}
		})
	}
}

func TestUsersBusyPool(t *testing.T) {
	entered, hold := make(chan struct{}, 10), make(chan struct{})
	u := poolUsers(t, passhash.Options{Concurrency: 1, Wait: time.Millisecond, Observe: func(int) {
		entered <- struct{}{}
		<-hold
	}})
	var wg sync.WaitGroup
	wg.Go(func() { u.Authenticate(t.Context(), "someone", "some password") }) //nolint:errcheck
	<-entered
	defer func() { close(hold); wg.Wait() }()
	for _, tc := range []struct{ name, user string }{
		{"unknown user", "bob"},
		{"another unknown user", "carol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := u.Authenticate(t.Context(), tc.user, "some password")
			if !errors.Is(err, ErrBusy) || errors.Is(err, ErrInvalidLogin) {
				t.Fatalf("err = %v, want ErrBusy (not a failed login)", err)
			}
		})
	}
	if _, err := u.Add(t.Context(), User{Username: "dave"}, "a good password"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Add while the pool is full: %v, want ErrBusy", err)
	}
}
