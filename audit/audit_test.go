package audit

import (
	"context"
	"errors"
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

func TestRecordRefusesSecretsAndUnknownTypes(t *testing.T) {
	l := New(&memKV{m: map[string][]byte{}}, Options{})
	long := string(make([]byte, 300))
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{"jwt in why", Event{Type: KeyRevoked, Subject: "main/k", Why: "token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"}, "why looks like a token"},
		{"long secret in subject", Event{Type: ClientAdded, Subject: "c_0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu"}, "subject looks like a token"},
		{"too long", Event{Type: FlowSaved, Subject: "f", Why: long}, "why is longer than 256 bytes"},
		{"unknown type", Event{Type: "key.stolen", Subject: "main/k"}, `unknown type "key.stolen"`},
		{"a kid is fine", Event{Type: KeyRevoked, Subject: "main/NpoBvHJuoZeuKFzEGH5GheWnx7aolD7bZojDLmb-shk"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := l.Record(t.Context(), tt.e)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBadEvent) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrBadEvent with %q", err, tt.want)
			}
		})
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
