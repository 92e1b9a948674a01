package oidc

import (
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
)

const (
	testIssuer   = "https://id.example.com"
	testPassword = "correct horse battery staple"
	webSecret    = "web-secret-0123456789"
	webCB        = "https://app.example.com/cb"
)

// clock is a settable clock shared by the keysets and the blocks.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// exec is a run at the clock's time.
func (c *clock) exec() *engine.Exec { return &engine.Exec{Started: c.now()} }

// fixture is a provider over a fresh store: clients web (confidential),
// spa (public), svc (client_credentials only); user ada.
type fixture struct {
	p     *provider
	st    *store.Bolt
	clk   *clock
	ada   User
	users *Users
}

func newFixture(t *testing.T, issuer string) *fixture {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"), store.BoltOptions{MasterKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	ks := jose.NewKeysets(st)
	ks.Now = clk.now
	ks.RSABits = 2048
	ctx := t.Context()
	if err := ks.Ensure(ctx, "main", "RS256", "ES256"); err != nil {
		t.Fatal(err)
	}
	clients := oauth.NewClients(st)
	for _, c := range []struct {
		cl     oauth.Client
		secret string
	}{
		{oauth.Client{ID: "web", Name: "Web", Scopes: []string{"openid", "profile", "email", "billing"},
			RedirectURIs: []string{webCB, webCB + "?tenant=1"}, PostLogoutRedirectURIs: []string{"https://app.example.com/bye"}}, webSecret},
		{oauth.Client{ID: "other", RedirectURIs: []string{"https://other.example.com/cb"}}, "other-secret-0123456789"},
		{oauth.Client{ID: "spa", Public: true, RedirectURIs: []string{"http://127.0.0.1:5173/cb"}}, ""},
		{oauth.Client{ID: "svc", Scopes: []string{"read"}}, "svc-secret-0123456789"},
	} {
		if _, _, err := clients.Add(ctx, c.cl, c.secret); err != nil {
			t.Fatal(err)
		}
	}
	users := NewUsers(st)
	users.SetClock(clk.now)
	ada, err := users.Add(ctx, User{Username: "ada", Email: "ada@example.com", EmailVerified: true, Name: "Ada"}, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{Deps: Deps{State: st, Clients: clients, Users: users, Keysets: ks}, issuer: issuer,
		secure: strings.HasPrefix(issuer, "https://"), signer: jose.NewSigner(ks), log: discard()}
	return &fixture{p: p, st: st, clk: clk, ada: ada, users: users}
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// queryMsg is an http.in message for GET ?params.
func queryMsg(params url.Values, cookie string) engine.Msg {
	first := map[string]any{}
	for k, v := range params {
		first[k] = v[0]
	}
	headers := map[string]any{}
	if cookie != "" {
		headers["cookie"] = cookie
	}
	return engine.Msg{"req": map[string]any{"method": "GET", "path": "/oauth/authorize", "query": first,
		"query_all": map[string][]string(params), "headers": headers, "remote_addr": "192.0.2.7:5555"}}
}

// formMsg is an http.in message for a form POST.
func formMsg(form url.Values, cookie, authorization string) engine.Msg {
	first := map[string]any{}
	for k, v := range form {
		first[k] = v[0]
	}
	headers := map[string]any{}
	if cookie != "" {
		headers["cookie"] = cookie
	}
	if authorization != "" {
		headers["authorization"] = authorization
	}
	return engine.Msg{"req": map[string]any{"method": "POST", "path": "/oauth/authorize", "query": map[string]any{},
		"headers": headers, "remote_addr": "192.0.2.7:5555"}, "body": first, "body_all": map[string][]string(form)}
}

// cookieHeader turns msg.cookies (Set-Cookie values) into a Cookie header.
func cookieHeader(msg engine.Msg) string {
	var parts []string
	list, _ := msg["cookies"].([]any)
	for _, c := range list {
		nv, _, _ := strings.Cut(c.(string), ";")
		parts = append(parts, nv)
	}
	return strings.Join(parts, "; ")
}

func redirectQuery(t *testing.T, msg engine.Msg) url.Values {
	t.Helper()
	u, err := url.Parse(str(msg, "redirect"))
	if err != nil || str(msg, "redirect") == "" {
		t.Fatalf("no redirect: %v", msg)
	}
	return u.Query()
}
