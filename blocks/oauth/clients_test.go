package oauth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/passhash"
	"github.com/flowd/flowd/store/memstore"
)

// newClients is a registry on a fresh in-memory store, and the store.
func newClients(t *testing.T) (*Clients, *memstore.Store) {
	t.Helper()
	st := memstore.MustNew(t, memstore.Options{})
	return NewClients(st), st
}

func TestClientRegistry(t *testing.T) {
	c, st := newClients(t)
	ctx := t.Context()
	cl, secret, err := c.Add(ctx, Client{ID: "svc", Scopes: []string{"read", "write", "read"}, Audiences: []string{"https://api"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) < 40 || cl.SecretHash != "" || strings.Join(cl.Scopes, " ") != "read write" {
		t.Fatalf("added %+v secret len %d", cl, len(secret))
	}
	raw, _ := st.GetKV(ctx, nsClients, "svc")
	if strings.Contains(string(raw), secret) || !strings.Contains(string(raw), `"$sha256$`) {
		t.Fatalf("stored record holds the secret or no hash: %s", raw)
	}
	if _, _, err := c.Add(ctx, Client{ID: "svc"}, ""); !errors.Is(err, ErrClientExists) {
		t.Fatalf("duplicate: %v", err)
	}
	list, err := c.List(ctx)
	if err != nil || len(list) != 1 || list[0].SecretHash != "" {
		t.Fatalf("list %+v %v", list, err)
	}

	for _, tc := range []struct {
		name, id, secret string
		ok               bool
	}{
		{"right secret", "svc", secret, true},
		{"right secret again (cached)", "svc", secret, true},
		{"wrong secret", "svc", secret + "x", false},
		{"empty secret", "svc", "", false},
		{"unknown client", "nobody", secret, false},
		{"hostile id", "../../etc/passwd", secret, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Authenticate(ctx, tc.id, tc.secret)
			if tc.ok {
				if err != nil || got.ID != tc.id {
					t.Fatalf("got %+v, %v", got, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidClient) || err.Error() != ErrInvalidClient.Error() {
				t.Fatalf("err = %v, want exactly %v", err, ErrInvalidClient)
			}
		})
	}

	// Removal and re-registration: TestSecretChangeAndRemoveDropTheCache.
	if err := c.Remove(ctx, "ghost"); !errors.Is(err, ErrNoClient) {
		t.Fatalf("remove unknown: %v", err)
	}
}

// badRegistration is a registration Add must refuse with ErrBadInput,
// its error saying want.
type badRegistration struct {
	name   string
	cl     Client
	secret string
	want   string
}

// wantRefused adds each registration, a subtest each, and checks it is
// refused.
func wantRefused(t *testing.T, c *Clients, cases []badRegistration) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := c.Add(t.Context(), tc.cl, tc.secret)
			if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrBadInput saying %q", err, tc.want)
			}
		})
	}
}

func TestClientValidation(t *testing.T) {
	c, _ := newClients(t)
	wantRefused(t, c, []badRegistration{
		{"empty id", Client{}, "", "client id"},
		{"space in id", Client{ID: "a b"}, "", "client id"},
		{"bad scope", Client{ID: "a", Scopes: []string{"a\"b"}}, "", "scope"},
		{"audience with space", Client{ID: "a", Audiences: []string{"x y"}}, "", "audience"},
		{"short secret", Client{ID: "a"}, "short", "16 characters"},
		{"public with secret", Client{ID: "a", Public: true}, "0123456789abcdef", "public client"},
		{"id not UTF-8", Client{ID: "svc\xff"}, "", "client id is not valid UTF-8"},
		{"name not UTF-8", Client{ID: "svc", Name: "Billing \xc3("}, "", "name is not valid UTF-8"},
		{"name with U+FFFD", Client{ID: "svc", Name: "Billing \uFFFD"}, "", "U+FFFD"},
		{"name with control character", Client{ID: "svc", Name: "Billing\x1b[31m"}, "", "control characters"},
		{"secret not UTF-8", Client{ID: "svc"}, "sixteen bytes or \xff more", "secret is not valid UTF-8"},
	})
	if list, _ := c.List(t.Context()); len(list) != 0 {
		t.Fatalf("stored %v", list)
	}
}

func TestCacheExpires(t *testing.T) {
	c, _ := newClients(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hc := newHashCount()
	c.SetHasher(passhash.New(passhash.Options{Observe: hc.observe, CacheTTL: 5 * time.Minute, Now: func() time.Time { return now }}))
	const secret = "a secret set by hand"
	if _, _, err := c.Add(t.Context(), Client{ID: "svc"}, secret); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		advance time.Duration
		secret  string
		ok      bool
		hashes  int32
	}{
		{"first: verified", 0, secret, true, 1},
		{"again: cached", time.Minute, secret, true, 0},
		{"wrong secret is not served from the cache", 0, secret + "x", false, 1},
		{"after the ttl: verified again", 5 * time.Minute, secret, true, 1},
	} {
		now = now.Add(tc.advance)
		before := hc.n.Load()
		_, err := c.Authenticate(t.Context(), "svc", tc.secret)
		if (err == nil) != tc.ok || hc.n.Load()-before != tc.hashes {
			t.Fatalf("%s: err %v after %d computations, want ok=%v after %d", tc.name, err, hc.n.Load()-before, tc.ok, tc.hashes)
		}
	}
}

func TestSetFirstParty(t *testing.T) {
	ctx := t.Context()
	c, _ := newClients(t)
	if _, _, err := c.Add(ctx, Client{ID: "app", Name: "App", Scopes: []string{"openid"}, RedirectURIs: []string{"https://app.example/cb"},
		GrantTypes: []string{GrantAuthorizationCode}}, ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, id string
		set      bool
		err      error
	}{
		{"mark first-party", "app", true, nil},
		{"mark third-party", "app", false, nil},
		{"unknown client", "nobody", true, ErrNoClient},
		{"malformed id", "../x", true, ErrNoClient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := c.SetFirstParty(ctx, tc.id, tc.set)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			got, err := c.Get(ctx, tc.id)
			if err != nil || got.FirstParty != tc.set || cl.FirstParty != tc.set || cl.SecretHash != "" || got.SecretHash == "" || got.Name != "App" {
				t.Fatalf("after SetFirstParty(%v): %+v %+v %v", tc.set, cl, got, err)
			}
		})
	}
}
