package jose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
)

// verifyForTest is a minimal go-jose verification against a KeySource:
// the key is chosen by kid and alg, as a validator must.
func verifyForTest(ctx context.Context, src KeySource, token, alg string) (map[string]any, gojose.Header, error) {
	jws, err := gojose.ParseSignedCompact(token, []gojose.SignatureAlgorithm{gojose.SignatureAlgorithm(alg)})
	if err != nil {
		return nil, gojose.Header{}, err
	}
	hdr := jws.Signatures[0].Protected
	vks, err := src.VerifyKeys(ctx, false)
	if err != nil {
		return nil, hdr, err
	}
	i := slices.IndexFunc(vks, func(vk VerifyKey) bool { return vk.JWK.KeyID == hdr.KeyID && vk.JWK.Algorithm == alg })
	if i < 0 {
		return nil, hdr, fmt.Errorf("no verify key for kid %s", hdr.KeyID)
	}
	payload, err := jws.Verify(vks[i].JWK.Key)
	if err != nil {
		return nil, hdr, err
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, hdr, err
	}
	return claims, hdr, nil
}

func TestSignEveryAlg(t *testing.T) {
	ctx := t.Context()
	m, _, clk := newKeysetsWith(t, "tokens", allJWSAlgs...)
	s := NewSigner(m)
	src := m.Source("tokens")
	now := clk.Now().Unix()
	for _, alg := range allJWSAlgs {
		t.Run(alg, func(t *testing.T) {
			token, kid, err := s.Sign(ctx, SignRequest{
				Keyset: "tokens", Alg: alg, Typ: "at+jwt", TTL: 5 * time.Minute,
				Issuer: "https://issuer.example", Subject: "user-1", Audience: []string{"api"},
				Claims: map[string]any{"scope": "read write"},
			})
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			active, _ := m.ActiveSigner(ctx, "tokens", alg)
			if kid != active.Kid {
				t.Errorf("kid = %s, want the active key %s", kid, active.Kid)
			}
			claims, hdr, err := verifyForTest(ctx, src, token, alg)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if hdr.Algorithm != alg || hdr.KeyID != kid || hdr.ExtraHeaders["typ"] != "at+jwt" {
				t.Errorf("header alg/kid/typ = %s/%s/%v", hdr.Algorithm, hdr.KeyID, hdr.ExtraHeaders["typ"])
			}
			want := map[string]any{
				"iat": float64(now), "nbf": float64(now), "exp": float64(now + 300),
				"iss": "https://issuer.example", "sub": "user-1", "aud": "api", "scope": "read write",
			}
			jti, _ := claims["jti"].(string)
			if !regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`).MatchString(jti) {
				t.Errorf("jti %q is not 128 random bits", jti)
			}
			delete(claims, "jti")
			if !maps.Equal(claims, want) {
				t.Errorf("claims = %v, want %v", claims, want)
			}
		})
	}
}

func TestSignClaims(t *testing.T) {
	ctx := t.Context()
	m, _, clk := newKeysetsWith(t, "c", "ES256")
	s := NewSigner(m)
	now := clk.Now().Unix()
	nbf := clk.Now().Add(time.Minute)
	tests := []struct {
		name    string
		req     SignRequest
		want    map[string]any // claims, jti excluded; nil when an error is expected
		wantJTI bool
		wantTyp string
		wantErr error
	}{
		{
			name:    "defaults",
			req:     SignRequest{TTL: time.Hour},
			want:    map[string]any{"iat": float64(now), "nbf": float64(now), "exp": float64(now + 3600)},
			wantJTI: true, wantTyp: "JWT",
		},
		{
			name:    "no jti, explicit nbf, several audiences",
			req:     SignRequest{TTL: time.Hour, OmitJTI: true, NotBefore: nbf, Audience: []string{"a", "b"}},
			want:    map[string]any{"iat": float64(now), "nbf": float64(nbf.Unix()), "exp": float64(now + 3600), "aud": []any{"a", "b"}},
			wantTyp: "JWT",
		},
		{
			name:    "claims set iat, exp, jti and agree with iss",
			req:     SignRequest{Issuer: "me", Typ: "application/at+jwt", Claims: map[string]any{"iat": 100, "exp": int64(200), "jti": "fixed", "iss": "me", "n": 1.5}},
			want:    map[string]any{"iat": float64(100), "nbf": float64(now), "exp": float64(200), "iss": "me", "n": 1.5},
			wantTyp: "application/at+jwt",
		},
		{
			name:    "claims aud in another order",
			req:     SignRequest{TTL: time.Minute, OmitJTI: true, Audience: []string{"x", "y"}, Claims: map[string]any{"aud": []any{"y", "x"}}},
			want:    map[string]any{"iat": float64(now), "nbf": float64(now), "exp": float64(now + 60), "aud": []any{"y", "x"}},
			wantTyp: "JWT",
		},
		{name: "no TTL and no exp", req: SignRequest{}, wantErr: ErrBadClaims},
		{name: "negative TTL", req: SignRequest{TTL: -time.Second}, wantErr: ErrBadClaims},
		{name: "exp contradicts TTL", req: SignRequest{TTL: time.Hour, Claims: map[string]any{"exp": now + 99999}}, wantErr: ErrBadClaims},
		{name: "iss contradicts Issuer", req: SignRequest{TTL: time.Hour, Issuer: "good", Claims: map[string]any{"iss": "evil"}}, wantErr: ErrBadClaims},
		{name: "sub contradicts Subject", req: SignRequest{TTL: time.Hour, Subject: "a", Claims: map[string]any{"sub": "b"}}, wantErr: ErrBadClaims},
		{name: "aud contradicts Audience", req: SignRequest{TTL: time.Hour, Audience: []string{"a"}, Claims: map[string]any{"aud": "b"}}, wantErr: ErrBadClaims},
		{name: "nbf contradicts NotBefore", req: SignRequest{TTL: time.Hour, NotBefore: nbf, Claims: map[string]any{"nbf": 1}}, wantErr: ErrBadClaims},
		{name: "exp is a string", req: SignRequest{Claims: map[string]any{"exp": "tomorrow"}}, wantErr: ErrBadClaims},
		{name: "iss is a number", req: SignRequest{TTL: time.Hour, Claims: map[string]any{"iss": 7}}, wantErr: ErrBadClaims},
		{name: "aud is a number", req: SignRequest{TTL: time.Hour, Claims: map[string]any{"aud": 7}}, wantErr: ErrBadClaims},
		{name: "empty audience", req: SignRequest{TTL: time.Hour, Audience: []string{""}}, wantErr: ErrBadClaims},
		{name: "unmarshalable claim", req: SignRequest{TTL: time.Hour, Claims: map[string]any{"f": func() {}}}, wantErr: ErrBadClaims},
		{name: "typ with a space", req: SignRequest{TTL: time.Hour, Typ: "at jwt"}, wantErr: ErrBadClaims},
		{name: "typ too long", req: SignRequest{TTL: time.Hour, Typ: strings.Repeat("t", 65)}, wantErr: ErrBadClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			req.Keyset = "c"
			var orig map[string]any
			if req.Claims != nil {
				orig = maps.Clone(req.Claims)
			}
			token, _, err := s.Sign(ctx, req)
			if req.Claims != nil && len(req.Claims) != len(orig) {
				t.Errorf("Sign modified the caller's claims")
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || token != "" {
					t.Fatalf("Sign = %q, %v; want %v", token, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			claims, hdr, err := verifyForTest(ctx, m.Source("c"), token, "ES256")
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if hdr.ExtraHeaders["typ"] != tt.wantTyp {
				t.Errorf("typ = %v, want %s", hdr.ExtraHeaders["typ"], tt.wantTyp)
			}
			_, hasJTI := claims["jti"]
			if tt.wantJTI != hasJTI && claims["jti"] != "fixed" {
				t.Errorf("jti present = %v, want %v", hasJTI, tt.wantJTI)
			}
			delete(claims, "jti")
			if fmt.Sprint(claims) != fmt.Sprint(tt.want) {
				t.Errorf("claims = %v, want %v", claims, tt.want)
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	ctx := t.Context()
	m, _, _ := newKeysetsWith(t, "multi", "ES256", "HS256", "A256KW")
	createKeyset(t, m, "single", "EdDSA", "dir")
	s := NewSigner(m)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		req     SignRequest
		wantErr error
		wantAlg string // when no error: the alg that signed
	}{
		{"unknown keyset", ctx, SignRequest{Keyset: "nope", Alg: "ES256", TTL: time.Minute}, ErrNoKeyset, ""},
		{"bad keyset name", ctx, SignRequest{Keyset: "a/b", Alg: "ES256", TTL: time.Minute}, ErrInvalidKeyset, ""},
		{"alg not in keyset", ctx, SignRequest{Keyset: "multi", Alg: "RS256", TTL: time.Minute}, ErrNoActiveKey, ""},
		{"encryption alg", ctx, SignRequest{Keyset: "multi", Alg: "A256KW", TTL: time.Minute}, ErrUnsupported, ""},
		{"no alg with two signing algs", ctx, SignRequest{Keyset: "multi", TTL: time.Minute}, ErrNoActiveKey, ""},
		{"canceled context", canceled, SignRequest{Keyset: "single", TTL: time.Minute}, context.Canceled, ""},
		{"no alg with one signing alg", ctx, SignRequest{Keyset: "single", TTL: time.Minute}, nil, "EdDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, kid, err := s.Sign(tt.ctx, tt.req)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || token != "" || kid != "" {
					t.Errorf("Sign = %q, %q, %v; want %v", token, kid, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if _, _, err := verifyForTest(ctx, m.Source(tt.req.Keyset), token, tt.wantAlg); err != nil {
				t.Errorf("verify as %s: %v", tt.wantAlg, err)
			}
		})
	}
}

func TestSignFollowsRotation(t *testing.T) {
	ctx := t.Context()
	m, _, clk := newKeysetsWith(t, "r", "HS256")
	s := NewSigner(m)
	req := SignRequest{Keyset: "r", Alg: "HS256", TTL: time.Minute}
	old, kid1, err := s.Sign(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := m.Get(ctx, "r")
	next := keysByState(info)["HS256"][StateNext][0]
	clk.Advance(time.Minute)
	if _, err := m.Rotate(ctx, "r", RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, kid2, err := s.Sign(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if kid2 != next || kid2 == kid1 {
		t.Errorf("after rotation signed with %s, want the promoted next %s (old %s)", kid2, next, kid1)
	}
	if _, _, err := verifyForTest(ctx, m.Source("r"), old, "HS256"); err != nil {
		t.Errorf("token of the retired key no longer verifies: %v", err)
	}
	if err := m.Revoke(ctx, "r", kid1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := verifyForTest(ctx, m.Source("r"), old, "HS256"); err == nil {
		t.Errorf("token of a revoked key still verifies")
	}
}

// TestSignWhileRotating: run with -race. Every token signed during
// rotations verifies with the keys published right after it was signed.
func TestSignWhileRotating(t *testing.T) {
	ctx := t.Context()
	m, _, clk := newKeysetsWith(t, "busy", "ES256", "HS256", "EdDSA")
	s := NewSigner(m)
	src := m.Source("busy")
	var signed atomic.Int64
	runWhile(8, func(g, i int) bool {
		alg := []string{"ES256", "HS256", "EdDSA"}[g%3]
		typ := []string{"JWT", "at+jwt"}[i%2]
		token, kid, err := s.Sign(ctx, SignRequest{Keyset: "busy", Alg: alg, Typ: typ, TTL: time.Minute})
		if err != nil {
			t.Errorf("Sign %s: %v", alg, err)
			return false
		}
		_, hdr, err := verifyForTest(ctx, src, token, alg)
		if err != nil || hdr.KeyID != kid {
			t.Errorf("verify %s token of %s: %v", alg, kid, err)
			return false
		}
		signed.Add(1)
		return true
	}, func() {
		for range 5 {
			clk.Advance(time.Minute)
			if _, err := m.Rotate(ctx, "busy", RotateOptions{RetireAfter: time.Hour}); err != nil {
				t.Errorf("Rotate: %v", err)
			}
			if _, err := m.Rotate(ctx, "busy", RotateOptions{Alg: "ES256", RetireAfter: time.Hour}); err != nil {
				t.Errorf("Rotate ES256: %v", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	if signed.Load() == 0 {
		t.Errorf("no token signed")
	}
	info, _ := m.Get(ctx, "busy")
	assertOneActivePerAlg(t, info)
}

func TestSignerCachePerTyp(t *testing.T) {
	ctx := t.Context()
	m, _, _ := newKeysetsWith(t, "typ", "ES256")
	s := NewSigner(m)
	for i := range maxCachedTyps + 4 {
		typ := fmt.Sprintf("t%d+jwt", i)
		token, _, err := s.Sign(ctx, SignRequest{Keyset: "typ", Alg: "ES256", Typ: typ, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if _, hdr, err := verifyForTest(ctx, m.Source("typ"), token, "ES256"); err != nil || hdr.ExtraHeaders["typ"] != typ {
			t.Fatalf("typ %s: header %v, %v", typ, hdr.ExtraHeaders["typ"], err)
		}
	}
	ak, _ := m.activeKey(ctx, "typ", "ES256")
	if n := len(*ak.signers.Load()); n != maxCachedTyps {
		t.Errorf("%d cached signers, want the cap %d", n, maxCachedTyps)
	}
}

func BenchmarkSign(b *testing.B) {
	ctx := b.Context()
	for _, alg := range []string{"ES256", "RS256", "EdDSA", "HS256"} {
		b.Run(alg, func(b *testing.B) {
			m, _, _ := newKeysetsForTest(b)
			m.RSABits = 3072 // the production default
			if err := m.Create(ctx, "bench", alg); err != nil {
				b.Fatal(err)
			}
			s := NewSigner(m)
			req := SignRequest{Keyset: "bench", Alg: alg, Typ: "at+jwt", TTL: 5 * time.Minute,
				Issuer: "https://issuer.example", Subject: "user-1", Audience: []string{"api"},
				Claims: map[string]any{"scope": "read"}}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.Sign(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
