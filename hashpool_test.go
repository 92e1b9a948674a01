package flowd_test

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/flows/examples"
	"github.com/flowd/flowd/passhash"
	"github.com/flowd/flowd/store/storetest"
)

// TestTokenEndpointWhenHashingIsBusy: the prebuilt token and
// introspection flows answer 503 with Retry-After when every hashing slot
// is taken (held here by the test), 429 with Retry-After for a client id
// with too many failures, and still serve a client with a generated
// secret (no slot needed).
func TestTokenEndpointWhenHashingIsBusy(t *testing.T) {
	st := storetest.TempBolt(t)
	var holding sync.Mutex // locked: computations block in Observe
	entered := make(chan struct{}, 100)
	hasher := passhash.New(passhash.Options{Concurrency: 1, Wait: time.Millisecond, Observe: func(int) {
		entered <- struct{}{}
		holding.Lock()
		holding.Unlock() //nolint:staticcheck // a gate, not a critical section
	}})
	fd := flowd.StartTest(t, flowd.Options{Store: st, Examples: examples.FS, AdminToken: "t", Issuer: "http://flowd.test", Hasher: hasher})
	waitForMain(t, fd)
	_, generated, err := fd.Clients().Add(t.Context(), oauth.Client{ID: "gen", Scopes: []string{"read"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	h := fd.Handler()
	post := func(path, id, secret string) *httptest.ResponseRecorder {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "token": {"x"}}
		req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	// Hold the only slot.
	holding.Lock()
	done := make(chan struct{})
	go func() { post("/oauth/token", "holder", "some-wrong-secret"); close(done) }()
	<-entered
	for _, tc := range []struct {
		name, path, id, secret string
		status                 int
		body                   string
	}{
		{"token, wrong secret", "/oauth/token", "gen", "wrong-wrong-wrong", 503, "temporarily_unavailable"},
		{"token, unknown client", "/oauth/token", "ghost", "wrong-wrong-wrong", 503, "temporarily_unavailable"},
		{"introspect, unknown client", "/oauth/introspect", "ghost", "wrong-wrong-wrong", 503, "temporarily_unavailable"},
		{"token, right generated secret", "/oauth/token", "gen", generated, 200, "access_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := post(tc.path, tc.id, tc.secret)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) {
				t.Fatalf("%d %s, want %d with %q", w.Code, w.Body, tc.status, tc.body)
			}
			if tc.status == 503 && w.Header().Get("Retry-After") != "1" {
				t.Fatalf("Retry-After %q, want 1", w.Header().Get("Retry-After"))
			}
		})
	}
	holding.Unlock()
	<-done
	// Throttled per client id: 429 once the free failures are spent.
	var last *httptest.ResponseRecorder
	for i := range oauth.ThrottleFree + 1 {
		last = post("/oauth/token", "gen", fmt.Sprint("wrong-wrong-wrong-", i))
	}
	if last.Code != 429 || last.Header().Get("Retry-After") == "" || !strings.Contains(last.Body.String(), "too many failed attempts") {
		t.Fatalf("after %d failures: %d %q %s", oauth.ThrottleFree+1, last.Code, last.Header().Get("Retry-After"), last.Body)
	}
	if w := post("/oauth/token", "gen", generated); w.Code != 200 {
		t.Fatalf("right secret while its id is throttled: %d %s", w.Code, w.Body)
	}
}
