package flowd_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/blocks/oidc"
	"github.com/flowd/flowd/flows/examples"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
)

const codeTestIssuer = "http://flowd.test"

// startThree starts a flowd node on each store and waits until every node
// publishes signing keys.
func startThree(t *testing.T, stores []store.Store) []*flowd.Flowd {
	t.Helper()
	var nodes []*flowd.Flowd
	for i, st := range stores {
		nodes = append(nodes, startNode(t, flowd.Options{Store: st, Runs: memstore.MustNew(t, memstore.Options{}),
			NodeID: string(rune('a' + i)), Issuer: codeTestIssuer, Examples: examples.FS}))
	}
	for i, fd := range nodes {
		waitKeysChange(t, "node "+string(rune('a'+i))+" publishes keys", fd, func() bool { return len(jwksKids(t, fd)) > 0 })
	}
	return nodes
}

// waitKeysChange waits until cond holds, checking it now and after each
// keyset change fd makes or sees: the first node generates the examples'
// keys (RSA-3072 under -race: seconds on a loaded machine), the others
// read them from the store's feed. It has no time budget of its own; it
// gives up a little before the test binary's -timeout, with a message.
func waitKeysChange(t *testing.T, what string, fd *flowd.Flowd, cond func() bool) {
	t.Helper()
	changed := make(chan struct{}, 1)
	cancel := fd.Keysets().Subscribe(func(string) {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	defer cancel()
	ctx, stop := beforeDeadline(t, t.Context())
	defer stop()
	for !cond() {
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("%s: not seen before the test's deadline", what)
		}
	}
}

// serve sends one request to a node's handler; cookies are sent as given
// and the answer's are added to them.
func serve(h http.Handler, method, path string, form url.Values, cookies map[string]string, basic [2]string) *http.Response {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, codeTestIssuer+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	if basic[0] != "" {
		req.SetBasicAuth(basic[0], basic[1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	resp := w.Result()
	for _, c := range resp.Cookies() {
		if cookies != nil {
			cookies[c.Name] = c.Value
		}
	}
	return resp
}

var loginHiddenRE = regexp.MustCompile(`<input type="hidden" name="(tx|csrf)" value="([^"]*)"`)

// signInCode signs ada in at node a's authorize endpoint and the form's
// answer at node b (the balancer may send the two anywhere) and returns a
// code and its PKCE verifier.
func signInCode(t *testing.T, a, b http.Handler, redirect string) (code, verifier string) {
	t.Helper()
	raw := make([]byte, 32)
	rand.Read(raw)
	verifier = base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(verifier))
	params := url.Values{"client_id": {"web"}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"st"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	cookies := map[string]string{}
	resp := serve(a, "GET", "/oauth/authorize?"+params.Encode(), nil, cookies, [2]string{})
	page, _ := io.ReadAll(resp.Body)
	form := url.Values{"username": {"ada"}, "password": {"correct horse battery staple"}}
	for _, m := range loginHiddenRE.FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if resp.StatusCode != 200 || form.Get("tx") == "" || form.Get("csrf") == "" {
		t.Fatalf("authorize: %d, no sign-in form:\n%s", resp.StatusCode, page)
	}
	resp = serve(b, "POST", "/oauth/authorize", form, cookies, [2]string{})
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || err != nil || loc.Query().Get("code") == "" {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("sign-in: %d Location %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	return loc.Query().Get("code"), verifier
}

// TestCodeExchangedOnceAcrossNodes: three flowd nodes on one store; one
// authorization code exchanged 30 times at once, spread over the nodes.
// Exactly one exchange gets tokens, the 29 others invalid_grant, and the
// replays revoked the grant on every node (RFC 6749 4.1.2): the winner's
// access token is refused at userinfo, its refresh token at the token
// endpoint.
func TestCodeExchangedOnceAcrossNodes(t *testing.T) {
	for _, be := range backends {
		t.Run(be, func(t *testing.T) {
			nodes := startThree(t, openHandles(t, be, 3))
			ctx := t.Context()
			const redirect = "https://rp.example/cb"
			const secret = "web-secret-0123456789abcdef"
			if _, err := nodes[0].Users().Add(ctx, oidc.User{Username: "ada", Email: "ada@example.com"}, "correct horse battery staple"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := nodes[0].Clients().Add(ctx, oauth.Client{ID: "web", Scopes: []string{"openid"}, RedirectURIs: []string{redirect},
				GrantTypes: []string{"authorization_code", "refresh_token"}, FirstParty: true}, secret); err != nil {
				t.Fatal(err)
			}
			code, verifier := signInCode(t, nodes[1].Handler(), nodes[2].Handler(), redirect)
			type answer struct {
				status int
				body   map[string]any
			}
			answers := make([]answer, 30)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range answers {
				wg.Go(func() {
					<-start
					form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
					resp := serve(nodes[i%3].Handler(), "POST", "/oauth/token", form, nil, [2]string{"web", secret})
					var body map[string]any
					raw, _ := io.ReadAll(resp.Body)
					if err := json.Unmarshal(raw, &body); err != nil {
						body = map[string]any{"raw": string(raw)}
					}
					answers[i] = answer{resp.StatusCode, body}
				})
			}
			close(start)
			wg.Wait()
			var won answer
			wins, refused := 0, 0
			for i, a := range answers {
				switch {
				case a.status == 200:
					wins++
					won = a
				case a.status == 400 && a.body["error"] == "invalid_grant":
					refused++
				default:
					t.Errorf("exchange %d on node %d: %d %v, want 200 once, else 400 invalid_grant", i, i%3, a.status, a.body)
				}
			}
			if wins != 1 || refused != 29 {
				t.Fatalf("%d of 30 concurrent exchanges succeeded and %d were refused, want exactly 1 and 29", wins, refused)
			}
			at, _ := won.body["access_token"].(string)
			rt, _ := won.body["refresh_token"].(string)
			if at == "" || rt == "" {
				t.Fatalf("the winning exchange: %v", won.body)
			}
			for i, fd := range nodes {
				req := httptest.NewRequest("GET", codeTestIssuer+"/oauth/userinfo", nil)
				req.Header.Set("Authorization", "Bearer "+at)
				w := httptest.NewRecorder()
				fd.Handler().ServeHTTP(w, req)
				if www := w.Header().Get("WWW-Authenticate"); w.Code != 401 || !strings.Contains(www, "grant_revoked") {
					t.Errorf("userinfo on node %d after the replays: %d %q, want 401 grant_revoked", i, w.Code, www)
				}
				resp := serve(fd.Handler(), "POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, nil, [2]string{"web", secret})
				raw, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 400 || !strings.Contains(string(raw), `"invalid_grant"`) {
					t.Errorf("refresh on node %d after the replays: %d %s, want 400 invalid_grant", i, resp.StatusCode, raw)
				}
			}
		})
	}
}
