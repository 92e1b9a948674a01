package ui_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/blocks/oidc"
	"github.com/flowd/flowd/passhash"
	"github.com/flowd/flowd/ui/uitest"
)

// TestBusyHashingPool: while every argon2id slot is taken (held here by
// the test), adding a user, resetting a password and adding a client with
// a secret the person chose answer 503 with Retry-After and say so on the
// page and in the API, nothing is stored, and the same requests work once
// the slot is free.
func TestBusyHashingPool(t *testing.T) {
	t.Parallel()
	var gate sync.Mutex // locked: computations block in Observe, holding their slot
	entered := make(chan struct{}, 100)
	hasher := passhash.New(passhash.Options{Concurrency: 1, Wait: 5 * time.Millisecond, Observe: func(int) {
		entered <- struct{}{}
		gate.Lock()
		gate.Unlock() //nolint:staticcheck // a gate, not a critical section
	}})
	env := uitest.Start(t, func(o *flowd.Options) { o.Hasher = hasher })
	c := env.Login(t) // takes a slot too: log in before holding it
	if _, err := env.FD.Users().Add(t.Context(), oidc.User{Username: "alice"}, "alice's first password"); err != nil {
		t.Fatal(err)
	}
	for len(entered) > 0 {
		<-entered
	}
	gate.Lock()
	var wg sync.WaitGroup
	wg.Go(func() { env.FD.Users().Authenticate(t.Context(), "alice", "a held password") }) //nolint:errcheck
	<-entered
	released := false
	release := func() {
		if !released {
			released = true
			gate.Unlock()
			wg.Wait()
		}
	}
	defer release()

	pages := []struct {
		name, path string
		form       url.Values
	}{
		{"add user", "/admin/users", url.Values{"username": {"bob"}, "password": {"bob's long password"}}},
		{"reset password", "/admin/users/alice/password", url.Values{"password": {"alice's new password"}}},
		{"add client with a secret", "/admin/clients", url.Values{"id": {"svc"}, "kind": {"confidential"}, "secret": {"a secret the person chose"},
			"grant_types": {"client_credentials"}, "scopes": {"read"}}},
	}
	for _, tc := range pages {
		t.Run("page/"+tc.name, func(t *testing.T) {
			res, body := c.Post(t, tc.path, tc.form)
			if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "1" {
				t.Fatalf("status %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
			}
			flash := doc(t, body).Find(tid("flash")).Text()
			if !strings.Contains(flash, "busy") || !strings.Contains(flash, "Try again in 1 s") || !strings.Contains(flash, "nothing was changed") {
				t.Errorf("flash %q", flash)
			}
		})
	}
	apis := []struct {
		name, path, body string
	}{
		{"add user", "/users", `{"username":"carol","password":"carol's long password"}`},
		{"add client with a secret", "/clients", `{"id":"svc2","secret":"a secret the person chose","grant_types":["client_credentials"],"scopes":["read"]}`},
	}
	for _, tc := range apis {
		t.Run("api/"+tc.name, func(t *testing.T) {
			res, body := env.API(t, "POST", tc.path, []byte(tc.body))
			if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "1" {
				t.Fatalf("status %d, Retry-After %q: %s", res.StatusCode, res.Header.Get("Retry-After"), body)
			}
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != "busy" || !strings.Contains(e.Error.Message, "Try again in 1 s") {
				t.Errorf("body %s (%v)", body, err)
			}
		})
	}
	// Nothing was stored.
	for _, u := range []string{"bob", "carol"} {
		if _, err := env.FD.Users().Get(t.Context(), u); err == nil {
			t.Errorf("user %s was added while busy", u)
		}
	}
	for _, id := range []string{"svc", "svc2"} {
		if _, err := env.FD.Clients().Get(t.Context(), id); err == nil {
			t.Errorf("client %s was added while busy", id)
		}
	}

	release()
	if res, body := c.Post(t, "/admin/users", pages[0].form); res.StatusCode != http.StatusSeeOther {
		t.Errorf("add user once free: %d %s", res.StatusCode, body)
	}
	if res, body := env.API(t, "POST", "/clients", []byte(apis[1].body)); res.StatusCode != http.StatusCreated {
		t.Errorf("add client once free: %d %s", res.StatusCode, body)
	}
}
