package jose

import (
	"errors"
	"testing"
	"time"
)

// TestSignGate: a refusing gate stops every signature with
// ErrSigningStopped and its reason; an open one changes nothing.
func TestSignGate(t *testing.T) {
	ks := newBlockEnv(t).ks
	createKeyset(t, ks, "main", "ES256")
	s := NewSigner(ks)
	req := SignRequest{Keyset: "main", Alg: "ES256", Subject: "s", TTL: time.Minute}
	reason := errors.New("feed silent for 9s")
	for _, tc := range []struct {
		name string
		gate func() error
		want error
	}{
		{"no gate", nil, nil},
		{"open", func() error { return nil }, nil},
		{"closed", func() error { return reason }, ErrSigningStopped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks.SignGate = tc.gate
			tok, _, err := s.Sign(t.Context(), req)
			if tc.want == nil {
				if err != nil || tok == "" {
					t.Fatalf("Sign = %q, %v", tok, err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, reason) || tok != "" {
				t.Fatalf("Sign = %q, %v; want no token and %v wrapping %v", tok, err, tc.want, reason)
			}
		})
	}
}
