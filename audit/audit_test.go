package audit

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// memKV is a KV in memory (ListKV in byte order, as the store's).
type memKV struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (k *memKV) GetKV(_ context.Context, ns, key string) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[ns+"\x00"+key]
	if !ok {
		return nil, errors.New("not found")
	}
	return v, nil
}

func (k *memKV) SetKV(_ context.Context, ns, key string, v []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[ns+"\x00"+key] = v
	return nil
}

func (k *memKV) DeleteKV(_ context.Context, ns, key string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, ns+"\x00"+key)
	return nil
}

func (k *memKV) ListKV(_ context.Context, ns string) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for key := range k.m {
		if n, rest, ok := strings.Cut(key, "\x00"); ok && n == ns {
			out = append(out, rest)
		}
	}
	sort.Strings(out)
	return out, nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// TestRecordRefusesBadEvents: an unknown type or an overlong field is a
// caller's bug, refused with ErrBadEvent.
func TestRecordRefusesBadEvents(t *testing.T) {
	l := New(&memKV{m: map[string][]byte{}}, Options{})
	long := string(make([]byte, 300))
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{"too long", Event{Type: FlowSaved, Subject: "f", Why: long}, "why is longer than 256 bytes"},
		{"long subject", Event{Type: FlowSaved, Subject: long}, "subject is longer than 256 bytes"},
		{"unknown type", Event{Type: "key.stolen", Subject: "main/k"}, `unknown type "key.stolen"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := l.Record(t.Context(), tt.e); !errors.Is(err, ErrBadEvent) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrBadEvent with %q", err, tt.want)
			}
		})
	}
}

// TestRecordKeepsLongIdentifiers: usernames may be 128 characters and
// client ids as many, so an event about a long-named person or client is
// recorded with its subject as given, and found by it (on the old code
// every such event was refused, only logged). A why is free text: a long
// run there is redacted, the event kept.
func TestRecordKeepsLongIdentifiers(t *testing.T) {
	username := "ada-" + strings.Repeat("lovelace_", 14)[:124]                                   // oidc: ^[a-z0-9][a-z0-9._@+-]{0,127}$
	clientID := "billing-service-" + strings.Repeat("0123456789abcdef", 7)[:112]                 // oauth: ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$
	upperID := "BILLING-SERVICE-" + strings.ToUpper(strings.Repeat("0123456789abcdef", 7)[:112]) // one case: a name
	flowID := strings.Repeat("f", 64)
	if len(username) != 128 || len(clientID) != 128 || len(upperID) != 128 {
		t.Fatalf("lengths %d %d %d", len(username), len(clientID), len(upperID))
	}
	tests := []struct {
		name string
		e    Event
		want Event // subject, actor, why as recorded
	}{
		{"user added", Event{Type: UserAdded, Subject: username, Actor: "api-token"},
			Event{Subject: username, Actor: "api-token"}},
		{"user signed out", Event{Type: UserSignedOut, Subject: username, Actor: "admin-ui", Why: "signed_out: 2 sessions ended"},
			Event{Subject: username, Actor: "admin-ui", Why: "signed_out: 2 sessions ended"}},
		{"password set", Event{Type: UserPasswordSet, Subject: username, Actor: "admin-ui", Why: "password_set: 0 sessions ended"},
			Event{Subject: username, Actor: "admin-ui", Why: "password_set: 0 sessions ended"}},
		{"client added", Event{Type: ClientAdded, Subject: clientID, Actor: "cli"}, Event{Subject: clientID, Actor: "cli"}},
		{"client in upper case", Event{Type: ClientRemoved, Subject: upperID, Actor: "cli"}, Event{Subject: upperID, Actor: "cli"}},
		{"refresh token reused", Event{Type: RefreshTokenReused, Subject: clientID, Actor: "system", Why: "a refresh token was used twice"},
			Event{Subject: clientID, Actor: "system", Why: "a refresh token was used twice"}},
		{"a node of a long flow id", Event{Type: UserSessionEnded, Subject: username, Actor: "flow " + flowID + "/login", Why: "session_cap: session 0123456789abcdef, signed in 2026-12-01T00:00:00Z"},
			Event{Subject: username, Actor: "flow " + flowID + "/login", Why: "session_cap: session 0123456789abcdef, signed in 2026-12-01T00:00:00Z"}},
		{"a kid", Event{Type: KeyRevoked, Subject: "main/NpoBvHJuoZeuKFzEGH5GheWnx7aolD7bZojDLmb-shk"},
			Event{Subject: "main/NpoBvHJuoZeuKFzEGH5GheWnx7aolD7bZojDLmb-shk", Actor: "system"}},
		{"a long client id in a why is free text", Event{Type: ConsentWithdrawn, Subject: username, Actor: "api-token", Why: "consent_withdrawn: client " + clientID + ", 1 grant ended"},
			Event{Subject: username, Actor: "api-token", Why: "consent_withdrawn: client [redacted], 1 grant ended"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(&memKV{m: map[string][]byte{}}, Options{})
			if err := l.Record(t.Context(), tt.e); err != nil {
				t.Fatalf("refused: %v", err)
			}
			evs, _, err := l.List(t.Context(), Query{Subject: tt.want.Subject})
			if err != nil || len(evs) != 1 {
				t.Fatalf("listed by subject: %v %v", evs, err)
			}
			if got := evs[0]; got.Type != tt.e.Type || got.Subject != tt.want.Subject || got.Actor != tt.want.Actor || got.Why != tt.want.Why {
				t.Errorf("recorded %s | %s | %s | %s, want %s | %s | %s | %s", got.Type, got.Subject, got.Actor, got.Why,
					tt.e.Type, tt.want.Subject, tt.want.Actor, tt.want.Why)
			}
		})
	}
}

// randomLooking is n characters of base64url that look random (SHA-256
// chained from seed): a secret as flowd and others make them, but the
// same on every run.
func randomLooking(seed string, n int) string {
	var b []byte
	for i := 0; len(b) < n; i++ {
		sum := sha256.Sum256(fmt.Appendf(nil, "%s-%d", seed, i))
		b = base64.RawURLEncoding.AppendEncode(b, sum[:])
	}
	return string(b[:n])
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// TestRecordRedactsTokens: a token or secret passed in any field by
// mistake never reaches the store or the slog line, not even in part,
// and the event is still recorded (with "[redacted]" in its place) and
// the redaction logged without the text.
func TestRecordRedactsTokens(t *testing.T) {
	tokens := map[string]string{
		"JWT (ES256)": b64(`{"alg":"ES256","typ":"JWT","kid":"NpoBvHJuoZeuKFzEGH5GheWnx7aolD7bZojDLmb-shk"}`) + "." +
			b64(`{"sub":"ada","aud":"web","exp":1796000000}`) + "." + randomLooking("es256 signature", 86),
		// Longer than a field may be: redacted first, so the event fits.
		"JWT (RS256, longer than a field)": b64(`{"alg":"RS256","typ":"JWT","kid":"NpoBvHJuoZeuKFzEGH5GheWnx7aolD7bZojDLmb-shk"}`) + "." +
			b64(`{"iss":"https://id.example.com","sub":"ada","aud":"web","exp":1796000000,"iat":1795996400}`) + "." + randomLooking("rs256 signature", 342),
		"JWT (HS256, short signature)": b64(`{"alg":"HS256"}`) + "." + b64(`{"sub":"x"}`) + "." + randomLooking("hs256", 43),
		"JWE (dir)": b64(`{"alg":"dir","enc":"A256GCM"}`) + ".." + randomLooking("iv", 16) + "." +
			randomLooking("ciphertext", 40) + "." + randomLooking("tag", 22),
		"refresh token (56 bytes)": randomLooking("refresh", 75),
		"secret (64 bytes)":        randomLooking("secret", 86),
	}
	fields := []struct {
		name, field    string
		prefix, suffix string
		set            func(e *Event, v string)
		get            func(e Event) string
	}{
		{"subject", "subject", "", "", func(e *Event, v string) { e.Subject = v }, func(e Event) string { return e.Subject }},
		{"subject, after a keyset", "subject", "main/", "", func(e *Event, v string) { e.Subject = v }, func(e Event) string { return e.Subject }},
		{"actor", "actor", "flow hello/", "", func(e *Event, v string) { e.Actor = v }, func(e Event) string { return e.Actor }},
		{"why", "why", "refresh_token=", " was sent", func(e *Event, v string) { e.Why = v }, func(e Event) string { return e.Why }},
	}
	for tokName, tok := range tokens {
		for _, f := range fields {
			t.Run(tokName+" in "+f.name, func(t *testing.T) {
				kv := &memKV{m: map[string][]byte{}}
				var logs strings.Builder
				l := New(kv, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				e := Event{Type: ClientAdded, Subject: "web", Actor: "api-token", Why: "added"}
				f.set(&e, f.prefix+tok+f.suffix)
				if err := l.Record(t.Context(), e); err != nil {
					t.Fatalf("refused (the event is lost): %v", err)
				}
				evs, _, err := l.List(t.Context(), Query{})
				if err != nil || len(evs) != 1 {
					t.Fatalf("listed %v %v", evs, err)
				}
				if got, want := f.get(evs[0]), f.prefix+"[redacted]"+f.suffix; got != want {
					t.Errorf("%s recorded as %q, want %q", f.name, got, want)
				}
				var stored strings.Builder
				for _, v := range kv.m {
					stored.Write(v)
				}
				for where, text := range map[string]string{"the store": stored.String(), "the log": logs.String()} {
					// Any 20 characters of it: no part of the token either.
					for i := 0; i+20 <= len(tok); i++ {
						if strings.Contains(text, tok[i:i+20]) {
							t.Fatalf("%s holds %q of the token:\n%s", where, tok[i:i+20], text)
						}
					}
				}
				if !strings.Contains(logs.String(), "audit: redacted") || !strings.Contains(logs.String(), "field="+f.field) {
					t.Errorf("the redaction is not logged with its field:\n%s", logs.String())
				}
			})
		}
	}
}

// TestRetention: pruning keeps at most MaxEvents and nothing older than
// MaxAge, dropping the oldest; listing pages newest first.
func TestRetention(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	kv := &memKV{m: map[string][]byte{}}
	l := New(kv, Options{MaxAge: 10 * time.Hour, MaxEvents: 5, Now: c.now})
	for i := range 8 {
		c.t = c.t.Add(time.Hour)
		if err := l.Record(t.Context(), Event{Type: FlowSaved, Subject: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	subjects := func() []string {
		evs, _, err := l.List(t.Context(), Query{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range evs {
			out = append(out, e.Subject)
		}
		return out
	}
	if got := subjects(); !slices.Equal(got, []string{"h", "g", "f", "e", "d", "c", "b", "a"}) {
		t.Fatalf("before pruning: %v", got)
	}
	if err := l.Prune(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := subjects(); !slices.Equal(got, []string{"h", "g", "f", "e", "d"}) {
		t.Errorf("count cap: %v", got)
	}
	c.t = c.t.Add(7*time.Hour + 30*time.Minute) // "d" and "e" are now over 10h old
	if err := l.Prune(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := subjects(); !slices.Equal(got, []string{"h", "g", "f"}) {
		t.Errorf("age cap: %v", got)
	}
	page, next, err := l.List(t.Context(), Query{Limit: 2})
	if err != nil || len(page) != 2 || next != page[1].ID {
		t.Fatalf("page 1: %v %q %v", page, next, err)
	}
	rest, next2, err := l.List(t.Context(), Query{Limit: 2, Before: next})
	if err != nil || len(rest) != 1 || rest[0].Subject != "f" || next2 != "" {
		t.Errorf("page 2: %v %q %v", rest, next2, err)
	}
	since, _, _ := l.List(t.Context(), Query{Since: c.t.Add(-9 * time.Hour)})
	if len(since) != 2 {
		t.Errorf("since: %v", since)
	}
}

// TestTripsAreRateLimited: a throttle under attack trips on every
// attempt; the log keeps one event per minute per throttle.
func TestTripsAreRateLimited(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	l := New(&memKV{m: map[string][]byte{}}, Options{Now: c.now})
	for i := range 100 {
		c.t = c.t.Add(time.Second)
		l.Trip("oauth_client")
		if i%50 == 0 {
			l.Trip("admin_sign_in")
		}
	}
	evs, _, err := l.List(t.Context(), Query{Type: ThrottleTrip})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.Subject)
	}
	// 100 s of trips: at 1 s, 61 s for oauth_client; at 1 s, 51 s is
	// within the minute for admin_sign_in.
	if want := []string{"oauth_client", "admin_sign_in", "oauth_client"}; !slices.Equal(got, want) {
		t.Errorf("trips %v, want %v", got, want)
	}
}
