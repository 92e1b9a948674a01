package oidc

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/engine"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestUsers(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	for _, tc := range []struct {
		name     string
		user     User
		password string
		err      error
		msg      string // part of the error text ("": not checked)
	}{
		{"ok, normalized", User{Username: "  Grace@Example.com ", Email: "grace@example.com"}, "long enough password", nil, ""},
		{"duplicate", User{Username: "ADA"}, "long enough password", ErrUserExists, ""},
		{"short password", User{Username: "bob"}, "short", ErrBadUser, ""},
		{"huge password", User{Username: "bob"}, strings.Repeat("x", maxPasswordLen+1), ErrBadUser, ""},
		{"bad username", User{Username: "bob smith"}, "long enough password", ErrBadUser, ""},
		{"path username", User{Username: "../etc"}, "long enough password", ErrBadUser, ""},
		{"empty username", User{}, "long enough password", ErrBadUser, ""},
		{"bad email", User{Username: "bob", Email: "bob at example"}, "long enough password", ErrBadUser, ""},
		{"control in name", User{Username: "bob", Name: "Bob\nEvil"}, "long enough password", ErrBadUser, ""},
		{"username not UTF-8", User{Username: "al\xffice"}, "a good password", ErrBadUser, "username is not valid UTF-8"},
		{"name not UTF-8", User{Username: "alice", Name: "Al\xc3ice"}, "a good password", ErrBadUser, "name is not valid UTF-8"},
		{"name with U+FFFD", User{Username: "alice", Name: "Al\uFFFDice"}, "a good password", ErrBadUser, "U+FFFD"},
		{"password not UTF-8", User{Username: "alice"}, "a good \xff password", ErrBadUser, "password is not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := f.users.Add(ctx, tc.user, tc.password)
			if !errors.Is(err, tc.err) || err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v, want %v (%q)", err, tc.err, tc.msg)
			}
			if err == nil && (u.Username != "grace@example.com" || u.PasswordHash != "" || len(u.Sub) != 22) {
				t.Fatalf("added %+v", u)
			}
		})
	}
	raw, _ := f.st.GetKV(ctx, nsUsers, "ada")
	if strings.Contains(string(raw), testPassword) || !strings.Contains(string(raw), "$argon2id$") {
		t.Fatalf("stored user record: %s", raw)
	}
	list, err := f.users.List(ctx)
	if err != nil || len(list) != 2 || list[0].Username != "ada" || list[0].PasswordHash != "" {
		t.Fatalf("list %+v %v", list, err)
	}
	for _, tc := range []struct {
		name, user, pass string
		ok               bool
	}{
		{"right", "ada", testPassword, true},
		{"right, other case", "ADA ", testPassword, true},
		{"wrong password", "ada", testPassword + "x", false},
		{"unknown user", "nobody", testPassword, false},
		{"empty", "", "", false},
		{"huge password", "ada", testPassword + strings.Repeat("x", 5000), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := f.users.Authenticate(ctx, tc.user, tc.pass)
			if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, ErrInvalidLogin)) || (tc.ok && u.Sub != f.ada.Sub) {
				t.Fatalf("%+v %v", u, err)
			}
		})
	}
	if u, err := f.users.BySub(ctx, f.ada.Sub); err != nil || u.Username != "ada" {
		t.Fatalf("by sub %+v %v", u, err)
	}
	claims := f.ada.Claims([]string{"openid", "email"})
	if claims["email"] != "ada@example.com" || claims["email_verified"] != true || claims["name"] != nil {
		t.Fatalf("claims by scope %v", claims)
	}
	if err := f.users.Remove(ctx, "ADA"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.users.BySub(ctx, f.ada.Sub); !errors.Is(err, ErrNoUser) {
		t.Fatalf("removed user by sub: %v", err)
	}
	// Added again under the same name: a new person, a new sub; the old sub stays dead.
	again, err := f.users.Add(ctx, User{Username: "ada"}, testPassword)
	if err != nil || again.Sub == f.ada.Sub {
		t.Fatalf("re-added %+v %v", again, err)
	}
	if _, err := f.users.BySub(ctx, f.ada.Sub); !errors.Is(err, ErrNoUser) {
		t.Fatalf("old sub after re-add: %v", err)
	}
}

func authorizeParams(client, redirect string) url.Values {
	return url.Values{"client_id": {client}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid email"}, "state": {"xyz"}, "nonce": {"n-0S6_WzA2Mj"}}
}

func TestAuthorize(t *testing.T) {
	f := newFixture(t, testIssuer)
	b := testAuthorizeBlock(f)
	challenge := s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
	for _, tc := range []struct {
		name   string
		client string
		uri    string
		change func(url.Values)
		port   string
		code   string
	}{
		{"ok", "web", webCB, nil, "ok", ""},
		{"ok with registered query", "web", webCB + "?tenant=1", nil, "ok", ""},
		{"ok, public with PKCE", "spa", "http://127.0.0.1:5173/cb", func(v url.Values) {
			v.Set("code_challenge", challenge)
			v.Set("code_challenge_method", "S256")
		}, "ok", ""},
		{"public, loopback on another port (RFC 8252)", "spa", "http://127.0.0.1:49152/cb", func(v url.Values) {
			v.Set("code_challenge", challenge)
			v.Set("code_challenge_method", "S256")
		}, "ok", ""},
		{"loopback lookalike host", "spa", "http://127.0.0.1.evil.example:5173/cb", nil, "invalid", "invalid_request"},
		{"loopback as user info", "spa", "http://127.0.0.1:5173@evil.example/cb", nil, "invalid", "invalid_request"},
		{"localhost for a loopback literal", "spa", "http://localhost:5173/cb", nil, "invalid", "invalid_request"},
		{"loopback, other path", "spa", "http://127.0.0.1:49152/cb/../evil", nil, "invalid", "invalid_request"},
		{"loopback, https", "spa", "https://127.0.0.1:5173/cb", nil, "invalid", "invalid_request"},
		{"https host on another port", "web", "https://app.example.com:8443/cb", nil, "invalid", "invalid_request"},
		{"unknown client", "nobody", webCB, nil, "invalid", "invalid_client"},
		{"repeated client_id", "web", webCB, func(v url.Values) { v.Add("client_id", "other") }, "invalid", "invalid_request"},
		{"unregistered redirect", "web", "https://evil.example/cb", nil, "invalid", "invalid_request"},
		{"redirect differs by one character", "web", webCB + "/", nil, "invalid", "invalid_request"},
		{"redirect differs in case", "web", strings.Replace(webCB, "app", "App", 1), nil, "invalid", "invalid_request"},
		{"repeated redirect_uri", "web", webCB, func(v url.Values) { v.Add("redirect_uri", "https://evil.example/cb") }, "invalid", "invalid_request"},
		{"another client's redirect", "web", "https://other.example.com/cb", nil, "invalid", "invalid_request"},
		{"no redirect_uri", "web", "", nil, "invalid", "invalid_request"},
		{"client without the code grant", "svc", webCB, nil, "invalid", "invalid_request"},
		{"response_type token", "web", webCB, func(v url.Values) { v.Set("response_type", "token") }, "redirect_error", "unsupported_response_type"},
		{"response_type code id_token", "web", webCB, func(v url.Values) { v.Set("response_type", "code id_token") }, "redirect_error", "unsupported_response_type"},
		{"no openid", "web", webCB, func(v url.Values) { v.Set("scope", "email") }, "redirect_error", "invalid_scope"},
		{"client scope", "web", webCB, func(v url.Values) { v.Set("scope", "openid billing") }, "ok", ""},
		{"scope not the client's is ignored", "spa", "http://127.0.0.1:5173/cb", func(v url.Values) {
			v.Set("scope", "openid billing")
			v.Set("code_challenge", challenge)
			v.Set("code_challenge_method", "S256")
		}, "ok", ""},
		{"public without PKCE", "spa", "http://127.0.0.1:5173/cb", nil, "redirect_error", "invalid_request"},
		{"plain PKCE", "web", webCB, func(v url.Values) { v.Set("code_challenge", challenge); v.Set("code_challenge_method", "plain") }, "redirect_error", "invalid_request"},
		{"method without challenge", "web", webCB, func(v url.Values) { v.Set("code_challenge_method", "S256") }, "redirect_error", "invalid_request"},
		{"long nonce", "web", webCB, func(v url.Values) { v.Set("nonce", strings.Repeat("n", 600)) }, "redirect_error", "invalid_request"},
		{"long state is not echoed", "web", webCB, func(v url.Values) { v.Set("state", strings.Repeat("s", 2000)) }, "redirect_error", "invalid_request"},
		{"request_uri not issued by the PAR endpoint", "web", webCB, func(v url.Values) { v.Set("request_uri", "https://evil.example/r") }, "invalid", "invalid_request_uri"},
		{"prompt none+consent", "web", webCB, func(v url.Values) { v.Set("prompt", "none consent") }, "redirect_error", "invalid_request"},
		{"max_age not a number", "web", webCB, func(v url.Values) { v.Set("max_age", "1e3") }, "redirect_error", "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params := authorizeParams(tc.client, tc.uri)
			if tc.uri == "" {
				params.Del("redirect_uri")
			}
			if tc.change != nil {
				tc.change(params)
			}
			msg := queryMsg(params, "")
			port, err := b.Process(t.Context(), f.clk.exec(), msg)
			wantPort(t, port, err, msg, tc.port)
			switch port {
			case "ok":
				a := mapOf(msg["authz"])
				if a["client_id"] != tc.client || a["redirect_uri"] != tc.uri || a["state"] != "xyz" || a["nonce"] != "n-0S6_WzA2Mj" {
					t.Fatalf("authz %v", a)
				}
			case "invalid":
				if msg["redirect"] != nil || errorCode(msg) != tc.code {
					t.Fatalf("invalid: %v", msg)
				}
			case "redirect_error":
				q := redirectQuery(t, msg)
				wantState := "xyz"
				if len(params.Get("state")) > maxStateLen {
					wantState = ""
				}
				if q.Get("error") != tc.code || q.Get("state") != wantState || q.Get("iss") != testIssuer ||
					!strings.HasPrefix(stringField(msg, "redirect"), tc.uri+"?") {
					t.Fatalf("redirect %s", msg["redirect"])
				}
			}
		})
	}
}

// signIn runs the blocks of the authorize flow by hand: authorize ->
// session -> login_page -> login -> issue_code. It returns the code's
// redirect query and the browser's cookies.
func signIn(t *testing.T, f *fixture, params url.Values, cookies string) (url.Values, string) {
	t.Helper()
	return signInAs(t, f, "ada", params, cookies)
}

// signInAs is signIn for another user (password testPassword).
func signInAs(t *testing.T, f *fixture, username string, params url.Values, cookies string) (url.Values, string) {
	t.Helper()
	ctx := t.Context()
	msg := queryMsg(params, cookies)
	if port, err := testAuthorizeBlock(f).Process(ctx, f.clk.exec(), msg); port != "ok" || err != nil {
		t.Fatalf("authorize: %s %v %v", port, err, msg["oauth_error"])
	}
	port, err := (&sessionBlock{p: f.p, issuer: testIssuer}).Process(ctx, f.clk.exec(), msg)
	if err != nil {
		t.Fatal(err)
	}
	if port == "login" {
		if _, err := (&loginPageBlock{p: f.p, ttl: 10 * time.Minute}).Process(ctx, f.clk.exec(), msg); err != nil {
			t.Fatal(err)
		}
		tx, csrf := formFields(t, stringField(msg, "payload"))
		if c := cookieHeader(msg); c != "" {
			cookies = c
		}
		post := formMsg(url.Values{"tx": {tx}, "csrf": {csrf}, "username": {username}, "password": {testPassword}}, cookies, "")
		port, err = newTestLogin(f).Process(ctx, f.clk.exec(), post)
		if err != nil || port != "ok" {
			t.Fatalf("login: %s %v %v", port, err, post["login"])
		}
		cookies += "; " + cookieHeader(post)
		msg = post
	} else if port != "active" {
		t.Fatalf("session port %s", port)
	}
	if _, err := (&issueCodeBlock{p: f.p, ttl: time.Minute, issuer: testIssuer}).Process(ctx, f.clk.exec(), msg); err != nil {
		t.Fatal(err)
	}
	return redirectQuery(t, msg), cookies
}

func newTestLogin(f *fixture) *loginBlock {
	return &loginBlock{p: f.p, sessionTTL: time.Hour, acr: "1",
		th: throttle{free: 3, ipFree: 10, base: time.Second, max: time.Minute}}
}

func formFields(t *testing.T, html string) (tx, csrf string) {
	t.Helper()
	get := func(name string) string {
		i := strings.Index(html, `name="`+name+`" value="`)
		if i < 0 {
			t.Fatalf("no %s in %s", name, html)
		}
		rest := html[i+len(`name="`+name+`" value="`):]
		return rest[:strings.IndexByte(rest, '"')]
	}
	return get("tx"), get("csrf")
}

// exchangeMsg is a token request from an authenticated client.
func exchangeMsg(client string, form url.Values) engine.Msg {
	msg := formMsg(form, "", "")
	msg["client"] = map[string]any{"id": client, "grant_types": []any{"authorization_code", "refresh_token"}}
	return msg
}

func TestCodeLifecycle(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	ex := testExchange(f.p, 24*time.Hour)
	// RFC 7636 appendix B.
	verifier := "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	if s256(verifier) != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatal("S256 of the RFC 7636 vector")
	}
	params := authorizeParams("web", webCB)
	params.Set("code_challenge", s256(verifier))
	params.Set("code_challenge_method", "S256")
	var cookies string
	newCode := func() string {
		q, c := signIn(t, f, params, cookies)
		cookies = c
		if q.Get("state") != "xyz" || q.Get("iss") != testIssuer {
			t.Fatalf("authorization response %v", q)
		}
		return q.Get("code")
	}
	redeem := func(client, code, redirect, verifier string) (string, engine.Msg) {
		msg := exchangeMsg(client, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {redirect}, "code_verifier": {verifier}})
		port, err := ex.Process(ctx, f.clk.exec(), msg)
		if err != nil {
			t.Fatal(err)
		}
		return port, msg
	}
	wantInvalidGrant := func(port string, msg engine.Msg) {
		t.Helper()
		if port != "invalid" || errorCode(msg) != "invalid_grant" || msg["grant"] != nil || msg["refresh_token"] != nil {
			t.Fatalf("%s %v", port, msg)
		}
	}

	t.Run("redeemed once, the replay revokes the grant", func(t *testing.T) {
		code := newCode()
		port, msg := redeem("web", code, webCB, verifier)
		g := mapOf(msg["grant"])
		if port != "ok" || g["subject"] != f.ada.Sub || g["nonce"] != "n-0S6_WzA2Mj" || g["scope"] != "openid email" ||
			g["client_id"] != "web" || stringField(msg, "refresh_token") == "" {
			t.Fatalf("%s %v", port, msg)
		}
		gid := stringField(g, "grant_id")
		if ok, _ := grantActive(ctx, f.st, gid, f.clk.Now()); !ok {
			t.Fatal("grant not active")
		}
		wantInvalidGrant(redeem("web", code, webCB, verifier))
		if ok, _ := grantActive(ctx, f.st, gid, f.clk.Now()); ok {
			t.Fatal("replay did not revoke the grant")
		}
		// Its refresh token is dead too.
		rb := testRefresh(f.p, time.Hour, 0)
		rmsg := exchangeMsg("web", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {stringField(msg, "refresh_token")}})
		if port, _ := rb.Process(ctx, f.clk.exec(), rmsg); port != "invalid" {
			t.Fatalf("refresh after replay: %s", port)
		}
	})
	t.Run("expired", func(t *testing.T) {
		code := newCode()
		f.clk.Advance(61 * time.Second)
		wantInvalidGrant(redeem("web", code, webCB, verifier))
	})
	t.Run("another client does not spend it", func(t *testing.T) {
		code := newCode()
		wantInvalidGrant(redeem("other", code, webCB, verifier))
		if port, _ := redeem("web", code, webCB, verifier); port != "ok" {
			t.Fatal("owner could not redeem")
		}
	})
	t.Run("PKCE", func(t *testing.T) {
		for _, v := range []string{"", "short", verifier + "x", strings.Repeat("a", 43), strings.Repeat("é", 43)} {
			wantInvalidGrant(redeem("web", newCode(), webCB, v))
		}
	})
	t.Run("redirect_uri must match", func(t *testing.T) {
		wantInvalidGrant(redeem("web", newCode(), webCB+"?tenant=1", verifier))
	})
	t.Run("loopback redirect: the exchange needs the port of the request", func(t *testing.T) {
		spaParams := authorizeParams("spa", "http://127.0.0.1:49152/cb")
		spaParams.Set("code_challenge", s256(verifier))
		spaParams.Set("code_challenge_method", "S256")
		spaCode := func() string {
			q, c := signIn(t, f, spaParams, cookies)
			cookies = c
			return q.Get("code")
		}
		redeemSPA := func(code, redirect string) (string, engine.Msg) {
			msg := exchangeMsg("spa", url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {redirect}, "code_verifier": {verifier}})
			mapOf(msg["client"])["public"] = true
			port, err := ex.Process(ctx, f.clk.exec(), msg)
			if err != nil {
				t.Fatal(err)
			}
			return port, msg
		}
		for _, redirect := range []string{
			"http://127.0.0.1:5173/cb", // the registered port
			"http://127.0.0.1/cb",      // no port
			"http://127.0.0.1:49153/cb",
			"http://[::1]:49152/cb",
			"http://localhost:49152/cb",
			"",
		} {
			wantInvalidGrant(redeemSPA(spaCode(), redirect))
		}
		if port, msg := redeemSPA(spaCode(), "http://127.0.0.1:49152/cb"); port != "ok" || mapOf(msg["grant"])["client_id"] != "spa" {
			t.Fatalf("%s %v", port, msg)
		}
	})
	t.Run("concurrent redemption", func(t *testing.T) {
		code := newCode()
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := exchangeMsg("web", url.Values{"grant_type": {"authorization_code"}, "code": {code},
					"redirect_uri": {webCB}, "code_verifier": {verifier}})
				port, err := ex.Process(context.Background(), f.clk.exec(), msg)
				if err != nil {
					t.Error(err)
				}
				if port == "ok" {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if ok > 1 {
			t.Fatalf("%d redemptions of one code", ok)
		}
	})
	t.Run("client may not use the grant", func(t *testing.T) {
		msg := exchangeMsg("svc", url.Values{"grant_type": {"authorization_code"}, "code": {newCode()}, "redirect_uri": {webCB}})
		msg["client"] = map[string]any{"id": "svc", "grant_types": []any{"client_credentials"}}
		if port, _ := ex.Process(ctx, f.clk.exec(), msg); port != "invalid" || errorCode(msg) != "unauthorized_client" {
			t.Fatalf("%s %v", port, msg["oauth_error"])
		}
	})
	t.Run("a public client's code without PKCE is refused", func(t *testing.T) {
		code := newSecret()
		now := f.clk.Now()
		putRec(ctx, f.st, nsCodes, hashKey(code), &codeRecord{ClientID: "spa", RedirectURI: "http://127.0.0.1:5173/cb",
			Scope: "openid", Sub: f.ada.Sub, GrantID: newID(), Expires: now.Add(time.Minute).Unix(), Purge: now.Add(time.Hour).Unix()})
		msg := exchangeMsg("spa", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://127.0.0.1:5173/cb"}})
		mapOf(msg["client"])["public"] = true
		port, err := ex.Process(ctx, f.clk.exec(), msg)
		if err != nil {
			t.Fatal(err)
		}
		wantInvalidGrant(port, msg)
	})
	t.Run("session skips the form; prompt and max_age", func(t *testing.T) {
		sb := &sessionBlock{p: f.p, issuer: testIssuer}
		for _, tc := range []struct {
			name   string
			change func(url.Values)
			cookie string
			port   string
		}{
			{"session", nil, cookies, "active"},
			{"no cookie", nil, "", "login"},
			{"forged cookie", nil, "flowd_session=" + strings.Repeat("A", 43), "login"},
			{"prompt login", func(v url.Values) { v.Set("prompt", "login") }, cookies, "login"},
			{"max_age passed", func(v url.Values) { v.Set("max_age", "10") }, cookies, "login"},
			{"max_age fine", func(v url.Values) { v.Set("max_age", "100000") }, cookies, "active"},
			{"max_age 0, signed in this very second", func(v url.Values) { v.Set("max_age", "0") }, cookies, "login"},
			{"prompt none, session", func(v url.Values) { v.Set("prompt", "none") }, cookies, "active"},
			{"prompt none, no session", func(v url.Values) { v.Set("prompt", "none") }, "", "redirect_error"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := authorizeParams("web", webCB)
				if tc.change != nil {
					tc.change(p)
				}
				msg := queryMsg(p, tc.cookie)
				testAuthorizeBlock(f, "openid", "email").Process(ctx, f.clk.exec(), msg)
				port, err := sb.Process(ctx, f.clk.exec(), msg)
				if err != nil || port != tc.port {
					t.Fatalf("%s %v", port, err)
				}
				if port == "redirect_error" && redirectQuery(t, msg).Get("error") != "login_required" {
					t.Fatalf("%v", msg["redirect"])
				}
			})
		}
		// The session outlives nothing: after its lifetime the form comes back.
		f.clk.Advance(2 * time.Hour)
		msg := queryMsg(authorizeParams("web", webCB), cookies)
		testAuthorizeBlock(f, "openid", "email").Process(ctx, f.clk.exec(), msg)
		if port, _ := sb.Process(ctx, f.clk.exec(), msg); port != "login" {
			t.Fatalf("expired session: %s", port)
		}
	})
}

func TestRefreshRotation(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	q, _ := signIn(t, f, authorizeParams("web", webCB), "")
	ex := testExchange(f.p, time.Hour)
	msg := exchangeMsg("web", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {webCB}})
	if port, err := ex.Process(ctx, f.clk.exec(), msg); port != "ok" || err != nil {
		t.Fatalf("%s %v %v", port, err, msg["oauth_error"])
	}
	rb := testRefresh(f.p, time.Hour, 0)
	refresh := func(client, rt string, extra url.Values) (string, engine.Msg) {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		for k, v := range extra {
			form[k] = v
		}
		m := exchangeMsg(client, form)
		port, err := rb.Process(ctx, f.clk.exec(), m)
		if err != nil {
			t.Fatal(err)
		}
		return port, m
	}
	rt1 := stringField(msg, "refresh_token")
	port, m := refresh("web", rt1, url.Values{"scope": {"openid"}})
	rt2 := stringField(m, "refresh_token")
	if g := mapOf(m["grant"]); port != "ok" || rt2 == rt1 || g["scope"] != "openid" || g["nonce"] != nil || g["subject"] != f.ada.Sub {
		t.Fatalf("%s %v", port, m)
	}
	// The narrowed scope is for that access token only: the next refresh may ask for all again.
	if port, m := refresh("web", rt2, url.Values{"scope": {"openid email profile"}}); port != "invalid" || errorCode(m) != "invalid_scope" {
		t.Fatalf("widening: %s %v", port, m["oauth_error"])
	}
	if port, _ := refresh("other", rt2, nil); port != "invalid" {
		t.Fatal("another client refreshed")
	}
	port, m = refresh("web", rt2, nil)
	rt3 := stringField(m, "refresh_token")
	if port != "ok" || mapOf(m["grant"])["scope"] != "openid email" {
		t.Fatalf("%s %v", port, m)
	}
	// Expiry.
	f.clk.Advance(61 * time.Minute)
	if port, _ := refresh("web", rt3, nil); port != "invalid" {
		t.Fatal("expired refresh token worked")
	}
	// Reuse of rt1 (already rotated) revokes the grant.
	gid := stringField(mapOf(m["grant"]), "grant_id")
	if port, _ := refresh("web", rt1, nil); port != "invalid" {
		t.Fatal("reuse worked")
	}
	if ok, _ := grantActive(ctx, f.st, gid, f.clk.Now()); ok {
		t.Fatal("reuse did not revoke the grant")
	}
}

func TestThrottle(t *testing.T) {
	th := throttle{free: 3, ipFree: 10, base: time.Second, max: 10 * time.Second}
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{{0, 0}, {2, 0}, {3, time.Second}, {4, 2 * time.Second}, {5, 4 * time.Second}, {6, 8 * time.Second}, {7, 10 * time.Second}, {100, 10 * time.Second}} {
		if got := th.delay(tc.failures, th.free); got != tc.want {
			t.Errorf("delay(%d) = %v, want %v", tc.failures, got, tc.want)
		}
	}
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	now := f.clk.Now()
	for i := range 3 {
		if wait, err := th.reserve(ctx, f.st, "u:x", th.free, now); wait != 0 || err != nil {
			t.Fatalf("attempt %d: %v %v", i, wait, err)
		}
	}
	if wait, _ := th.reserve(ctx, f.st, "u:x", th.free, now.Add(500*time.Millisecond)); wait != 500*time.Millisecond {
		t.Fatalf("wait %v", wait)
	}
	if wait, _ := th.reserve(ctx, f.st, "u:x", th.free, now.Add(time.Second)); wait != 0 {
		t.Fatalf("after the backoff: %v", wait)
	}
	if wait, _ := th.reserve(ctx, f.st, "u:x", th.free, now.Add(2*time.Second)); wait != time.Second {
		t.Fatalf("doubled: %v", wait)
	}
	// An hour of quiet forgets the count.
	if wait, _ := th.reserve(ctx, f.st, "u:x", th.free, now.Add(2*time.Hour)); wait != 0 {
		t.Fatalf("after the window: %v", wait)
	}
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.7:5555", "ip:192.0.2.7"}, {"[2001:db8::1]:443", "ip:2001:db8::/64"},
		{"[2001:db8::ffff]:1", "ip:2001:db8::/64"}, {"::ffff:192.0.2.7", "ip:192.0.2.7"}, {"garbage", "ip:unknown"},
	} {
		if got := ipThrottleKey(tc.in); got != tc.want {
			t.Errorf("ipThrottleKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLogin(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	msg := queryMsg(authorizeParams("web", webCB), "")
	testAuthorizeBlock(f, "openid", "email").Process(ctx, f.clk.exec(), msg)
	if _, err := (&loginPageBlock{p: f.p, ttl: 10 * time.Minute}).Process(ctx, f.clk.exec(), msg); err != nil {
		t.Fatal(err)
	}
	page := stringField(msg, "payload")
	if !strings.Contains(page, `action="/oauth/authorize"`) || !strings.Contains(page, ">Web<") || strings.Contains(page, "<script") {
		t.Fatalf("page %s", page)
	}
	set := msg["cookies"].([]any)[0].(string)
	if !strings.HasPrefix(set, "__Host-flowd_tx_") || !strings.Contains(set, "Secure") || !strings.Contains(set, "HttpOnly") ||
		!strings.Contains(set, "SameSite=Lax") || !strings.Contains(set, "Path=/") || strings.Contains(set, "Domain") ||
		!strings.Contains(set, "Max-Age=600") {
		t.Fatalf("sign-in cookie %q", set)
	}
	if w := f.st.takeWrites(); len(w) != 1 || w[0] != "secret oidc/provider_key" {
		t.Fatalf("the first sign-in page wrote %v, want only the provider key", w)
	}
	binding := cookieHeader(msg)
	tx, csrf := formFields(t, page)
	lb := newTestLogin(f)
	post := func(form url.Values, cookie string) (string, engine.Msg) {
		m := formMsg(form, cookie, "")
		port, err := lb.Process(ctx, f.clk.exec(), m)
		if err != nil {
			t.Fatal(err)
		}
		return port, m
	}
	good := url.Values{"tx": {tx}, "csrf": {csrf}, "username": {"ada"}, "password": {testPassword}}
	with := func(k, v string) url.Values {
		c := url.Values{}
		for key, vals := range good {
			c[key] = vals
		}
		c.Set(k, v)
		return c
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		cookie string
	}{
		{"no sign-in cookie", good, ""},
		{"another browser's cookie", good, "__Host-flowd_tx_" + tx + "=" + strings.Repeat("A", 200)},
		{"cookie tossing (two cookies)", good, binding + "; " + binding},
		{"wrong csrf", with("csrf", newSecret()), binding},
		{"no csrf", with("csrf", ""), binding},
		{"unknown tx", with("tx", newID()), binding},
		{"tx of the wrong shape", with("tx", newSecret()), binding},
		{"repeated field", url.Values{"tx": {tx}, "csrf": {csrf}, "username": {"ada", "bob"}, "password": {testPassword}}, binding},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if port, m := post(tc.form, tc.cookie); port != "invalid" || m["cookies"] != nil || m["session"] != nil ||
				stringField(mapOf(m["oauth_error"]), "error_description") != msgExpired {
				t.Fatalf("%s %v", port, m)
			}
			if w := f.st.takeWrites(); len(w) != 0 {
				t.Fatalf("a refused post wrote %v", w)
			}
		})
	}
	// Wrong passwords and unknown users: the same generic answer, then throttling.
	for i, user := range []string{"ada", "nobody", "ada"} {
		form := with("password", "wrong"+string(rune('a'+i)))
		form.Set("username", user)
		port, m := post(form, binding)
		l := mapOf(m["login"])
		if port != "failed" || l["error"] != msgBadLogin || l["tx"] != tx {
			t.Fatalf("attempt %d: %s %v", i, port, l)
		}
	}
	post(with("password", "wrong again"), binding) // the third failure for ada
	port, m := post(good, binding)
	if port != "throttled" || mapOf(m["login"])["error"] != msgThrottled || m["retry_after"] != int64(1) {
		t.Fatalf("throttled: %s %v", port, m)
	}
	// Rendering the failed attempt reuses the transaction.
	if _, err := (&loginPageBlock{p: f.p, ttl: time.Minute}).Process(ctx, f.clk.exec(), m); err != nil ||
		!strings.Contains(stringField(m, "payload"), msgThrottled) || !strings.Contains(stringField(m, "payload"), tx) || m["cookies"] != nil {
		t.Fatalf("re-render: %v %s", err, m["payload"])
	}
	f.clk.Advance(time.Second)
	port, m = post(good, binding)
	if port != "ok" || mapOf(m["session"])["sub"] != f.ada.Sub || mapOf(m["authz"])["state"] != "xyz" {
		t.Fatalf("after the wait: %s %v", port, m)
	}
	if c := m["cookies"].([]any); len(c) != 2 || !strings.HasPrefix(c[0].(string), "__Host-flowd_tx_"+tx+"=;") ||
		!strings.Contains(c[0].(string), "Max-Age=0") ||
		!strings.HasPrefix(c[1].(string), "__Host-flowd_session=") || !strings.Contains(c[1].(string), "Max-Age=3600") {
		t.Fatalf("cookies %q: want the sign-in cookie deleted and the session's", c)
	}
	// The transaction is single use.
	if port, _ := post(good, binding); port != "invalid" {
		t.Fatalf("second use of the transaction: %s", port)
	}
	// And expires.
	msg = queryMsg(authorizeParams("web", webCB), binding)
	testAuthorizeBlock(f, "openid", "email").Process(ctx, f.clk.exec(), msg)
	(&loginPageBlock{p: f.p, ttl: 10 * time.Minute}).Process(ctx, f.clk.exec(), msg)
	tx2, csrf2 := formFields(t, stringField(msg, "payload"))
	f.clk.Advance(11 * time.Minute)
	if port, _ := post(url.Values{"tx": {tx2}, "csrf": {csrf2}, "username": {"ada"}, "password": {testPassword}}, cookieHeader(msg)); port != "invalid" {
		t.Fatalf("expired transaction: %s", port)
	}
}

func TestIDTokenAndUserinfo(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	grant := map[string]any{"client_id": "web", "subject": f.ada.Sub, "nonce": "n-1", "auth_time": int64(1700000000),
		"acr": "1", "amr": []any{"pwd"}, "scope": "openid email", "grant_id": "g1"}
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			msg := engine.Msg{"grant": grant, "access_token": "at-" + alg}
			b := &idTokenBlock{p: f.p, keyset: "main", alg: alg, ttl: time.Hour, issuer: testIssuer, target: "id_token"}
			b.accessToken, _ = engine.CompileExpr("msg.access_token")
			if _, err := b.Process(ctx, f.clk.exec(), msg); err != nil {
				t.Fatal(err)
			}
			pol := jose.DefaultPolicy()
			pol.Algorithms, pol.Source, pol.Issuer, pol.Audience, pol.Now = []string{alg}, f.p.Keysets.Source("main"), testIssuer, []string{"web"}, f.clk.Now
			v, err := jose.NewValidator(pol)
			if err != nil {
				t.Fatal(err)
			}
			res, err := v.Validate(ctx, stringField(msg, "id_token"))
			if err != nil {
				t.Fatal(err)
			}
			c := res.Claims
			if c["sub"] != f.ada.Sub || c["nonce"] != "n-1" || c["azp"] != "web" || c["acr"] != "1" ||
				c["at_hash"] != tokenHash(alg, "at-"+alg) || res.Header.Alg != alg {
				t.Fatalf("claims %v", c)
			}
			if n, _ := int64Of(c["auth_time"]); n != 1700000000 {
				t.Fatalf("auth_time %v", c["auth_time"])
			}
		})
	}
	// at_hash per OpenID Connect Core: left half of SHA-256 for RS256.
	if got := tokenHash("RS256", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"); got != "77QmUPtjPfzWtF2AnpK9RQ" {
		t.Fatalf("at_hash vector: %s", got)
	}

	ub := &userinfoBlock{p: f.p}
	if err := putRec(ctx, f.st, nsGrants, "g1", &grantRecord{ID: "g1", ClientID: "web", Sub: f.ada.Sub,
		Purge: f.clk.Now().Add(time.Hour).Unix()}); err != nil {
		t.Fatal(err)
	}
	if err := putRec(ctx, f.st, nsGrants, "g3", &grantRecord{ID: "g3", ClientID: "web", Sub: f.ada.Sub,
		Purge: f.clk.Now().Unix()}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		claims map[string]any
		port   string
		reason string
	}{
		{"ok", map[string]any{"sub": f.ada.Sub, "gid": "g1", "scope": "openid email"}, "ok", ""},
		{"client token", map[string]any{"sub": "svc", "scope": "read"}, "invalid", "not_a_user_token"},
		{"no openid", map[string]any{"sub": f.ada.Sub, "gid": "g1", "scope": "email"}, "invalid", "insufficient_scope"},
		{"unknown grant", map[string]any{"sub": f.ada.Sub, "gid": "g2", "scope": "openid"}, "invalid", "grant_revoked"},
		{"expired grant", map[string]any{"sub": f.ada.Sub, "gid": "g3", "scope": "openid"}, "invalid", "grant_revoked"},
		{"unknown user", map[string]any{"sub": "nobody", "gid": "g1", "scope": "openid"}, "invalid", "user_unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := engine.Msg{"claims": tc.claims}
			port, err := ub.Process(ctx, f.clk.exec(), msg)
			if err != nil || port != tc.port || (port == "invalid" && mapOf(msg["invalid"])["reason"] != tc.reason) {
				t.Fatalf("%s %v %v", port, err, msg)
			}
			if port == "ok" {
				p := mapOf(msg["payload"])
				if p["email"] != "ada@example.com" || p["email_verified"] != true || p["name"] != nil || p["sub"] != f.ada.Sub {
					t.Fatalf("payload %v", p)
				}
			}
		})
	}
	revokeGrant(ctx, f.st, "g1", "web", "code_replayed", f.clk.Now(), time.Hour)
	msg := engine.Msg{"claims": map[string]any{"sub": f.ada.Sub, "gid": "g1", "scope": "openid"}}
	if port, _ := ub.Process(ctx, f.clk.exec(), msg); port != "invalid" {
		t.Fatal("revoked grant answered")
	}
}

func TestCleanup(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	now := f.clk.Now()
	putRec(ctx, f.st, nsCodes, "old", &codeRecord{ClientID: "web", Purge: now.Add(-time.Second).Unix()})
	putRec(ctx, f.st, nsCodes, "live", &codeRecord{ClientID: "web", Purge: now.Add(time.Hour).Unix()})
	putRec(ctx, f.st, nsSessions, "old", &sessionRecord{Sub: "x", Purge: now.Unix()})
	counts, err := cleanup(ctx, f.st, now)
	if err != nil || counts[nsCodes] != 1 || counts[nsSessions] != 1 {
		t.Fatalf("%v %v", counts, err)
	}
	keys, _ := f.st.ListKV(ctx, nsCodes)
	if !slices.Equal(keys, []string{"live"}) {
		t.Fatalf("left %v", keys)
	}
	live, _ := getRec[codeRecord](ctx, f.st, nsCodes, "live")
	if live == nil || live.ClientID != "web" {
		t.Fatalf("cleanup rewrote a live record: %+v", live)
	}
}

func TestCookieNames(t *testing.T) {
	for _, tc := range []struct {
		issuer, name string
		secure       bool
	}{{"https://id.example.com", "__Host-flowd_session", true}, {"http://127.0.0.1:8080", "flowd_session", false}} {
		p := &provider{issuer: tc.issuer, secure: strings.HasPrefix(tc.issuer, "https://")}
		c := p.cookie(sessionCookie, "v", time.Hour)
		if c.Name != tc.name || c.Secure != tc.secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" {
			t.Errorf("%s: %+v", tc.issuer, c)
		}
	}
}
