package oidc

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

const byeURI = "https://app.example.com/bye"

func newEndSessionForTest(t *testing.T, f *fixture) *endSessionBlock {
	return &endSessionBlock{p: f.p, hint: testHintChecker(t, f), confirmTTL: 10 * time.Minute}
}

// logoutKit drives oidc.end_session the way the end-session flow does.
type logoutKit struct {
	t  *testing.T
	f  *fixture
	es *endSessionBlock
}

func newLogoutKit(t *testing.T) *logoutKit {
	f := newFixture(t, testIssuer)
	return &logoutKit{t: t, f: f, es: newEndSessionForTest(t, f)}
}

// result is the port a message left by, and the message.
type result struct {
	port string
	msg  engine.Msg
}

func (k *logoutKit) run(msg engine.Msg) result {
	k.t.Helper()
	reqOf(msg)["path"] = "/oauth/logout"
	port, err := k.es.Process(k.t.Context(), k.f.clk.exec(), msg)
	if err != nil {
		k.t.Fatal(err)
	}
	return result{port, msg}
}

func (k *logoutKit) get(params url.Values, cookie string) result {
	k.t.Helper()
	return k.run(queryMsg(params, cookie))
}

func (k *logoutKit) post(form url.Values, cookie string) result {
	k.t.Helper()
	return k.run(formMsg(form, cookie, ""))
}

// answer posts the logout question's answer (action logout or stay)
// with its CSRF token.
func (k *logoutKit) answer(csrf, action, cookie string) result {
	k.t.Helper()
	return k.post(url.Values{"csrf": {csrf}, "action": {action}}, cookie)
}

// browser signs ada in with a fresh browser: its cookies and session.
func (k *logoutKit) browser() (string, *sessionRecord) {
	k.t.Helper()
	_, cookies := signIn(k.t, k.f, authorizeParams("web", webCB), "")
	return cookies, k.session(cookies)
}

func (k *logoutKit) session(cookies string) *sessionRecord {
	k.t.Helper()
	s, err := loadSession(k.t.Context(), k.f.st, k.f.p.readCookie(queryMsg(nil, cookies), sessionCookie), k.f.clk.Now())
	if err != nil {
		k.t.Fatal(err)
	}
	return s
}

// hint is an ID token for web, for sub, with auth_time (0: none).
func (k *logoutKit) hint(sub string, authTime int64) string {
	k.t.Helper()
	idb := &idTokenBlock{p: k.f.p, keyset: "main", alg: "RS256", ttl: time.Hour, issuer: testIssuer, target: "id_token"}
	g := map[string]any{"client_id": "web", "subject": sub}
	if authTime != 0 {
		g["auth_time"] = authTime
	}
	m := engine.Msg{"grant": g}
	if _, err := idb.Process(k.t.Context(), k.f.clk.exec(), m); err != nil {
		k.t.Fatal(err)
	}
	return stringField(m, "id_token")
}

// ask makes a request that needs confirmation and returns its CSRF token.
func (k *logoutKit) ask(params url.Values, cookies string) string {
	k.t.Helper()
	r := k.get(params, cookies)
	if r.port != "confirm" || r.msg["cookies"] != nil || r.msg["redirect"] != nil {
		k.t.Fatalf("want the question, got %s %v", r.port, r.msg)
	}
	return stringField(mapOf(r.msg["logout"]), "csrf")
}

// askNew signs ada in with a fresh browser and asks it to log out: the
// browser's cookies and the question's CSRF token.
func (k *logoutKit) askNew(params url.Values) (string, string) {
	k.t.Helper()
	cookies, _ := k.browser()
	return cookies, k.ask(params, cookies)
}

// wantRefused: an error page, nothing redirected, no cookie touched.
func wantRefused(t *testing.T, r result) {
	t.Helper()
	port, m := r.port, r.msg
	if port != "invalid" || m["redirect"] != nil || m["cookies"] != nil || errorCode(m) != "invalid_request" {
		t.Fatalf("want a refusal, got %s %v", port, m)
	}
}

// wantLoggedOut: the session cookie deleted, and the given way out.
func wantLoggedOut(t *testing.T, r result, redirect string) {
	t.Helper()
	port, m := r.port, r.msg
	wantPort := "done"
	if redirect != "" {
		wantPort = "redirect"
	}
	if port != wantPort || stringField(m, "redirect") != redirect {
		t.Fatalf("want %s %q, got %s %v", wantPort, redirect, port, m)
	}
	list, _ := m["cookies"].([]any)
	if len(list) != 1 || !strings.HasPrefix(list[0].(string), "__Host-flowd_session=;") || !strings.Contains(list[0].(string), "Max-Age=0") {
		t.Fatalf("deletion cookie %v", m["cookies"])
	}
}

func TestEndSessionChecksTheRequest(t *testing.T) {
	k := newLogoutKit(t)
	cookies, sess := k.browser()
	hint := k.hint(k.f.ada.Sub, sess.AuthTime)
	for _, tc := range []struct {
		name   string
		params url.Values
	}{
		{"unregistered uri", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/"}}},
		{"uri one character off", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {byeURI + "/"}}},
		{"login redirect uri", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {webCB}}},
		{"no client", url.Values{"post_logout_redirect_uri": {byeURI}}},
		{"unknown client", url.Values{"client_id": {"nobody"}, "post_logout_redirect_uri": {byeURI}}},
		{"another client's uri", url.Values{"client_id": {"other"}, "post_logout_redirect_uri": {byeURI}}},
		{"client mismatch", url.Values{"id_token_hint": {hint}, "client_id": {"spa"}}},
		{"tampered hint", url.Values{"id_token_hint": {hint[:len(hint)-6] + "AAAAAA"}}},
		{"garbage hint", url.Values{"id_token_hint": {"not-a-token"}}},
		{"repeated", url.Values{"state": {"a", "b"}}},
		{"repeated redirect", url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {byeURI, "https://evil.example/"}}},
		{"long state", url.Values{"client_id": {"web"}, "state": {strings.Repeat("s", maxStateLen+1)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantRefused(t, k.get(tc.params, cookies))
			// The same as a POST from the relying party.
			wantRefused(t, k.post(tc.params, cookies))
		})
	}
	if k.session(cookies) == nil {
		t.Fatal("a refused logout ended the session")
	}
}

func TestEndSessionWithoutASession(t *testing.T) {
	k := newLogoutKit(t)
	// Nothing to log out: no question, no cookie, back to the app.
	r := k.get(url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {byeURI}, "state": {"s1"}}, "")
	if r.port != "redirect" || stringField(r.msg, "redirect") != byeURI+"?state=s1" || r.msg["cookies"] != nil {
		t.Fatalf("%s %v", r.port, r.msg)
	}
	if r := k.get(nil, ""); r.port != "done" || r.msg["cookies"] != nil {
		t.Fatalf("%s %v", r.port, r.msg)
	}
	// A stale or made-up session cookie is deleted, nothing asked.
	wantLoggedOut(t, k.run(queryMsg(url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {byeURI}}, "__Host-flowd_session="+newSecret())), byeURI)
	cookies, _ := k.browser()
	k.f.clk.Advance(2 * time.Hour) // the test login's session lives an hour
	wantLoggedOut(t, k.run(queryMsg(nil, cookies)), "")
}

func TestEndSessionWithAHintForThisSession(t *testing.T) {
	k := newLogoutKit(t)
	cookies, sess := k.browser()
	hint := k.hint(k.f.ada.Sub, sess.AuthTime)
	// An expired hint is fine (RP-Initiated Logout §2), and no question is asked.
	k.f.clk.Advance(50 * time.Minute)
	wantLoggedOut(t, k.run(queryMsg(url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {byeURI}, "state": {"s t&u"}}, cookies)),
		byeURI+"?state=s+t%26u")
	if k.session(cookies) != nil {
		t.Fatal("session survived logout")
	}
	// By POST, without a redirect URI.
	cookies, sess = k.browser()
	wantLoggedOut(t, k.run(formMsg(url.Values{"id_token_hint": {k.hint(k.f.ada.Sub, sess.AuthTime)}}, cookies, "")), "")
	if k.session(cookies) != nil {
		t.Fatal("session survived logout")
	}
}

func TestEndSessionAsksFirst(t *testing.T) {
	k := newLogoutKit(t)
	cookies, sess := k.browser()
	for _, tc := range []struct {
		name       string
		params     url.Values
		clientName string
	}{
		{"no hint", url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {byeURI}}, "Web"},
		{"nothing at all", nil, ""},
		{"hint for someone else", url.Values{"id_token_hint": {k.hint("someone-else", sess.AuthTime)}}, "Web"},
		{"hint from an earlier session", url.Values{"id_token_hint": {k.hint(k.f.ada.Sub, sess.AuthTime-60)}}, "Web"},
		{"hint without auth_time", url.Values{"id_token_hint": {k.hint(k.f.ada.Sub, 0)}}, "Web"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, send := range []func(url.Values, string) result{k.get, k.post} {
				r := send(tc.params, cookies)
				port, m := r.port, r.msg
				l := mapOf(m["logout"])
				if port != "confirm" || m["cookies"] != nil || m["redirect"] != nil || !looksLikeSecret(stringField(l, "csrf")) ||
					l["username"] != "ada" || l["client_name"] != tc.clientName || l["action"] != "/oauth/logout" {
					t.Fatalf("%s %v", port, m)
				}
				rec, err := getRec[logoutRecord](t.Context(), k.f.st, nsLogout, hashKey(stringField(l, "csrf")))
				if err != nil || rec == nil || rec.Binding != hashKey(k.f.p.readCookie(queryMsg(nil, cookies), sessionCookie)) ||
					rec.RedirectURI != tc.params.Get("post_logout_redirect_uri") || rec.Expires != k.f.clk.Now().Add(10*time.Minute).Unix() {
					t.Fatalf("record %+v %v", rec, err)
				}
			}
		})
	}
	if k.session(cookies) == nil {
		t.Fatal("asking ended the session")
	}
}

func TestEndSessionConfirmation(t *testing.T) {
	k := newLogoutKit(t)
	ctx := t.Context()
	params := url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {byeURI}, "state": {"st 1"}}
	victim, _ := k.browser()
	attacker, _ := k.browser() // another browser, signed in as well
	token := k.ask(params, victim)
	attackerToken := k.ask(params, attacker)
	two := strings.Replace(victim, "__Host-flowd_session=", "__Host-flowd_session=x; __Host-flowd_session=", 1)

	t.Run("forged answers", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			form   url.Values
			cookie string
		}{
			{"empty token", url.Values{"csrf": {""}, "action": {"logout"}}, victim},
			{"wrong token", url.Values{"csrf": {newSecret()}, "action": {"logout"}}, victim},
			{"malformed token", url.Values{"csrf": {token + "x"}, "action": {"logout"}}, victim},
			{"the attacker's token in the victim's browser", url.Values{"csrf": {attackerToken}, "action": {"logout"}}, victim},
			{"the victim's token in the attacker's browser", url.Values{"csrf": {token}, "action": {"logout"}}, attacker},
			{"no session cookie (a cross-site post)", url.Values{"csrf": {token}, "action": {"logout"}}, ""},
			{"a made-up session cookie", url.Values{"csrf": {token}, "action": {"logout"}}, "__Host-flowd_session=" + newSecret()},
			{"two session cookies", url.Values{"csrf": {token}, "action": {"logout"}}, two},
			{"no action", url.Values{"csrf": {token}}, victim},
			{"unknown action", url.Values{"csrf": {token}, "action": {"yes"}}, victim},
			{"repeated token", url.Values{"csrf": {token, token}, "action": {"logout"}}, victim},
			{"repeated action", url.Values{"csrf": {token}, "action": {"stay", "logout"}}, victim},
			{"redirect smuggled in", url.Values{"csrf": {newSecret()}, "action": {"logout"}, "post_logout_redirect_uri": {"https://evil.example/"}, "client_id": {"web"}}, victim},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantRefused(t, k.post(tc.form, tc.cookie))
			})
		}
		// The answer must be a POST: the same fields in a GET only ask again.
		if r := k.get(url.Values{"csrf": {token}, "action": {"logout"}}, victim); r.port != "confirm" || r.msg["cookies"] != nil {
			t.Fatalf("GET answer: %s %v", r.port, r.msg)
		}
		if k.session(victim) == nil || k.session(attacker) == nil {
			t.Fatal("a forged answer ended a session")
		}
	})

	t.Run("smuggled fields do not change the stored request", func(t *testing.T) {
		form := url.Values{"csrf": {attackerToken}, "action": {"logout"}, "post_logout_redirect_uri": {"https://evil.example/"},
			"client_id": {"other"}, "state": {"evil"}, "id_token_hint": {"x"}}
		wantLoggedOut(t, k.post(form, attacker), byeURI+"?state=st+1")
	})

	t.Run("stay signed in", func(t *testing.T) {
		r := k.answer(token, "stay", victim)
		if r.port != "cancelled" || r.msg["cookies"] != nil || r.msg["redirect"] != nil || k.session(victim) == nil {
			t.Fatalf("%s %v", r.port, r.msg)
		}
		// The question was answered: its token is spent.
		wantRefused(t, k.answer(token, "logout", victim))
		// A forged "stay" changes nothing either.
		if r := k.answer(newSecret(), "stay", ""); r.port != "cancelled" || r.msg["cookies"] != nil {
			t.Fatalf("%s %v", r.port, r.msg)
		}
	})

	t.Run("sign out", func(t *testing.T) {
		token := k.ask(params, victim)
		wantLoggedOut(t, k.answer(token, "logout", victim), byeURI+"?state=st+1")
		if k.session(victim) != nil {
			t.Fatal("session survived")
		}
		// Replayed after the logout: with the old cookie, or none.
		wantRefused(t, k.answer(token, "logout", victim))
		wantRefused(t, k.answer(token, "logout", ""))
		// Signed in again in the same browser: an old question is dead.
		again, _ := k.browser()
		wantRefused(t, k.answer(token, "logout", again))
		if k.session(again) == nil {
			t.Fatal("a replayed answer ended the new session")
		}
	})

	t.Run("without a redirect URI: the signed-out page", func(t *testing.T) {
		cookies, token := k.askNew(nil)
		wantLoggedOut(t, k.answer(token, "logout", cookies), "")
	})

	t.Run("expired", func(t *testing.T) {
		cookies, token := k.askNew(params)
		k.f.clk.Advance(10 * time.Minute)
		wantRefused(t, k.answer(token, "logout", cookies))
		if k.session(cookies) == nil {
			t.Fatal("an expired answer ended the session")
		}
	})

	t.Run("a redirect URI the client no longer has is not used", func(t *testing.T) {
		cookies, token := k.askNew(params)
		// As if the client had been changed (or the record altered) since.
		rec, _ := getRec[logoutRecord](ctx, k.f.st, nsLogout, hashKey(token))
		rec.RedirectURI = "https://evil.example/"
		if err := putRec(ctx, k.f.st, nsLogout, hashKey(token), rec); err != nil {
			t.Fatal(err)
		}
		wantLoggedOut(t, k.answer(token, "logout", cookies), "")

		cookies, token = k.askNew(params)
		if err := k.f.p.Clients.Remove(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		wantLoggedOut(t, k.answer(token, "logout", cookies), "")
	})
}

func TestEndSessionDeletedUser(t *testing.T) {
	k := newLogoutKit(t)
	cookies, _ := k.browser()
	if err := k.f.users.Remove(t.Context(), "ada"); err != nil {
		t.Fatal(err)
	}
	// Nobody is signed in any more (as oidc.session sees it): nothing to ask.
	wantLoggedOut(t, k.run(queryMsg(url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {byeURI}}, cookies)), byeURI)
}

func TestLogoutPages(t *testing.T) {
	csrf := newSecret()
	for _, tc := range []struct {
		name   string
		page   string
		msg    engine.Msg
		want   []string
		reject []string
		err    bool
	}{
		{"question", "logout_confirm", engine.Msg{"logout": map[string]any{"csrf": csrf, "action": "/oauth/logout", "username": "ada", "client_name": "Web"}},
			[]string{`<form method="post" action="/oauth/logout" data-testid="logout-form">`, `name="csrf" value="` + csrf + `"`,
				`name="action" value="logout"`, `name="action" value="stay"`, `data-testid="username">ada<`, `data-testid="client-name">Web<`},
			[]string{"<script", "onclick", "onerror", "style="}, false},
		{"hostile names are text", "logout_confirm", engine.Msg{"logout": map[string]any{"csrf": csrf, "action": "/oauth/logout",
			"username": `"><script>x</script>`, "client_name": `<img src=x onerror=alert(1)>`}},
			[]string{"&lt;img src=x onerror=alert(1)&gt;", "&#34;&gt;&lt;script&gt;"}, []string{"<script", "<img"}, false},
		{"without a client", "logout_confirm", engine.Msg{"logout": map[string]any{"csrf": csrf, "action": "/oauth/logout"}},
			[]string{"A sign-out was requested."}, []string{`data-testid="client-name"`, `data-testid="username"`}, false},
		{"no msg.logout", "logout_confirm", engine.Msg{}, nil, nil, true},
		{"an action to another host", "logout_confirm", engine.Msg{"logout": map[string]any{"csrf": csrf, "action": "//evil.example/x"}}, nil, nil, true},
		{"an absolute action", "logout_confirm", engine.Msg{"logout": map[string]any{"csrf": csrf, "action": "https://evil.example/x"}}, nil, nil, true},
		{"cancelled", "logout_cancelled", engine.Msg{}, []string{"Still signed in", "You have not been signed out."}, []string{"<form"}, false},
		{"signed out", "logged_out", engine.Msg{}, []string{"You are signed out."}, []string{"<form"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, err := (&pageBlock{page: tc.page}).Process(t.Context(), &engine.Exec{}, tc.msg)
			if tc.err {
				if err == nil {
					t.Fatalf("rendered %s", tc.msg["payload"])
				}
				return
			}
			html := stringField(tc.msg, "payload")
			if err != nil || port != "out" {
				t.Fatalf("%s %v", port, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(html, w) {
					t.Errorf("page lacks %q:\n%s", w, html)
				}
			}
			for _, r := range tc.reject {
				if strings.Contains(html, r) {
					t.Errorf("page has %q:\n%s", r, html)
				}
			}
		})
	}
}

func TestFormAction(t *testing.T) {
	for _, tc := range []struct{ configured, path, want string }{
		{"", "/oauth/logout", "/oauth/logout"},
		{"/custom", "/oauth/logout", "/custom"},
		{"", "//evil.example/x", "/fallback"},
		{"", `/\evil.example/x`, "/fallback"},
		{"", "", "/fallback"},
		{"", "relative", "/fallback"},
	} {
		msg := engine.Msg{"req": map[string]any{"path": tc.path}}
		if got := formAction(tc.configured, msg, "/fallback"); got != tc.want {
			t.Errorf("formAction(%q, %q) = %q, want %q", tc.configured, tc.path, got, tc.want)
		}
	}
}
