package jose

import (
	"errors"
	"testing"
	"time"
)

// TestRetiredKeyStopsAtDeadline: a retired key verifies until its RetireAt
// and not one second later, even if no rotation has deleted it yet.
func TestRetiredKeyStopsAtDeadline(t *testing.T) {
	ctx := t.Context()
	ks, _, clk := newKeysetsWith(t, "main", "ES256")
	tok, oldKid, err := NewSigner(ks).Sign(ctx, SignRequest{Keyset: "main", Alg: "ES256", TTL: 10 * time.Hour,
		Issuer: "https://id.example", Audience: []string{"api"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Rotate(ctx, "main", RotateOptions{RetireAfter: time.Hour, Now: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	rotatedAt := clk.Now()
	for _, tc := range []struct {
		name   string
		at     time.Duration
		reason Reason
	}{
		{"just rotated", 0, ""},
		{"one second before the deadline", time.Hour - time.Second, ""},
		{"one second after the deadline", time.Hour + time.Second, ReasonUnknownKid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultPolicy()
			p.Algorithms = []string{"ES256"}
			p.Source = ks.Source("main")
			p.Issuer = "https://id.example"
			p.Audience = []string{"api"}
			p.Now = func() time.Time { return rotatedAt.Add(tc.at) }
			v, err := NewValidator(p)
			if err != nil {
				t.Fatal(err)
			}
			res, err := v.Validate(ctx, tok)
			if tc.reason == "" {
				if err != nil || res.Key.JWK.KeyID != oldKid || res.Key.State != StateRetired {
					t.Fatalf("got %v, %+v", err, res)
				}
				return
			}
			var te *TokenError
			if !errors.As(err, &te) || te.Reason != tc.reason {
				t.Fatalf("err = %v, want %s", err, tc.reason)
			}
		})
	}
}
