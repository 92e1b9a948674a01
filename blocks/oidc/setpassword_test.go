package oidc

import (
	"errors"
	"strings"
	"testing"
)

func TestUsersSetPassword(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	for _, tc := range []struct {
		name, user, password string
		err                  error
	}{
		{"short", "ada", "short", ErrBadUser},
		{"huge", "ada", strings.Repeat("x", maxPasswordLen+1), ErrBadUser},
		{"unknown user", "nobody", "a new long password", ErrNoUser},
		{"hostile name", "../" + strings.Repeat("x", 300), "a new long password", ErrNoUser},
		{"ok, name normalized", " ADA ", "a new long password", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.users.SetPassword(ctx, tc.user, tc.password); !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
		})
	}
	if _, err := f.users.Authenticate(ctx, "ada", testPassword); err == nil {
		t.Error("the old password still works")
	}
	u, err := f.users.Authenticate(ctx, "ada", "a new long password")
	if err != nil || u.Sub != f.ada.Sub {
		t.Errorf("new password: %+v %v", u, err)
	}
}
