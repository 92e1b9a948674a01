package oidc

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/passhash"
)

// jar is a browser's cookie jar: it takes msg.cookies as Set-Cookie.
type jar map[string]string

func (j jar) take(msg engine.Msg) {
	list, _ := msg["cookies"].([]any)
	for _, c := range list {
		sc, err := http.ParseSetCookie(c.(string))
		if err != nil {
			panic(err)
		}
		if sc.MaxAge < 0 {
			delete(j, sc.Name)
		} else {
			j[sc.Name] = sc.Value
		}
	}
}

func (j jar) header() string {
	var parts []string
	for k, v := range j {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

func (j jar) signIns() []string {
	var ids []string
	for k := range j {
		if id, ok := strings.CutPrefix(k, "__Host-flowd_tx_"); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// getAuthorize runs GET /oauth/authorize as the authorize flow does
// (oidc.authorize -> oidc.session -> oidc.login_page) and returns the
// port the message ended at ("form" for the sign-in page).
func getAuthorize(t *testing.T, f *fixture, params url.Values, cookies string) (string, engine.Msg) {
	t.Helper()
	ctx := t.Context()
	msg := queryMsg(params, cookies)
	port, err := testAuthorizeBlock(f).Process(ctx, f.clk.exec(), msg)
	if err != nil || port != "ok" {
		return port, msg
	}
	port, err = (&sessionBlock{p: f.p, issuer: testIssuer}).Process(ctx, f.clk.exec(), msg)
	if err != nil || port != "login" {
		if err != nil {
			t.Fatal(err)
		}
		return port, msg
	}
	if _, err := (&loginPageBlock{p: f.p, ttl: 10 * time.Minute}).Process(ctx, f.clk.exec(), msg); err != nil {
		t.Fatal(err)
	}
	return "form", msg
}

func TestAuthorizeWritesNothing(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	if _, _, err := f.p.Clients.Add(ctx, oauth.Client{ID: "long", RedirectURIs: []string{"https://app.example.com/" + strings.Repeat("p", 1500)}}, "long-secret-0123456789"); err != nil {
		t.Fatal(err)
	}
	f.st.takeWrites()
	// The provider key is made once, by the first sign-in page ever.
	if port, _ := getAuthorize(t, f, authorizeParams("web", webCB), ""); port != "form" {
		t.Fatal(port)
	}
	if w := f.st.takeWrites(); !slices.Equal(w, []string{"secret oidc/provider_key"}) {
		t.Fatalf("first page wrote %v", w)
	}
	with := func(client, redirect string, kv ...string) url.Values {
		v := authorizeParams(client, redirect)
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	crowd := jar{}
	for range 12 {
		_, m := getAuthorize(t, f, authorizeParams("web", webCB), crowd.header())
		crowd.take(m)
	}
	f.st.takeWrites()
	for _, tc := range []struct {
		name    string
		params  url.Values
		cookies string
		port    string
	}{
		{"plain", authorizeParams("web", webCB), "", "form"},
		{"prompt=login", with("web", webCB, "prompt", "login"), "", "form"},
		{"login_hint", with("web", webCB, "login_hint", "ada"), "", "form"},
		{"max_age=0", with("web", webCB, "max_age", "0"), "", "form"},
		{"prompt=none without a session", with("web", webCB, "prompt", "none"), "", "redirect_error"},
		{"longest state and nonce", with("web", webCB, "state", strings.Repeat("s", maxStateLen), "nonce", strings.Repeat("n", maxNonceLen)), "", "form"},
		{"forged session cookie", authorizeParams("web", webCB), "__Host-flowd_session=" + newSecret(), "form"},
		{"a browser with many sign-ins", authorizeParams("web", webCB), crowd.header(), "form"},
		{"unknown client", authorizeParams("nobody", webCB), "", "invalid"},
		{"unregistered redirect", authorizeParams("web", "https://evil.example/cb"), "", "invalid"},
		{"response_type=token", with("web", webCB, "response_type", "token"), "", "redirect_error"},
		{"state too long", with("web", webCB, "state", strings.Repeat("s", maxStateLen+1)), "", "redirect_error"},
		{"nonce too long", with("web", webCB, "nonce", strings.Repeat("n", maxNonceLen+1)), "", "redirect_error"},
		{"unknown scope (ignored)", with("web", webCB, "scope", "openid admin"), "", "form"},
		{"no openid scope", with("web", webCB, "scope", "admin"), "", "redirect_error"},
		{"garbage", url.Values{"\x00": {"\xff"}, "client_id": {strings.Repeat("x", 5000)}}, "", "invalid"},
		{"too large for a sign-in cookie", with("long", "https://app.example.com/"+strings.Repeat("p", 1500),
			"state", strings.Repeat("s", maxStateLen), "nonce", strings.Repeat("n", maxNonceLen)), "", "redirect_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, m := getAuthorize(t, f, tc.params, tc.cookies)
			if port != tc.port {
				t.Fatalf("port %s, want %s (%v)", port, tc.port, m["oauth_error"])
			}
			if w := f.st.takeWrites(); len(w) != 0 {
				t.Fatalf("GET /oauth/authorize wrote %v", w)
			}
			if port != "form" {
				return
			}
			for _, c := range m["cookies"].([]any) {
				if len(c.(string)) > 4096 {
					t.Fatalf("a cookie of %d bytes: browsers may drop it", len(c.(string)))
				}
			}
		})
	}
	t.Run("too large: says why", func(t *testing.T) {
		_, m := getAuthorize(t, f, with("long", "https://app.example.com/"+strings.Repeat("p", 1500),
			"state", strings.Repeat("s", maxStateLen), "nonce", strings.Repeat("n", maxNonceLen)), "")
		if d := stringField(mapOf(m["oauth_error"]), "error_description"); !strings.Contains(d, "too large") {
			t.Fatalf("%q", d)
		}
	})
}

// formOf reads a sign-in page's form and its cookie from a message.
func formOf(t *testing.T, msg engine.Msg) (tx, csrf, value string) {
	t.Helper()
	tx, csrf = formFields(t, stringField(msg, "payload"))
	j := jar{}
	j.take(msg)
	return tx, csrf, j["__Host-flowd_tx_"+tx]
}

func TestSignInCookieRefused(t *testing.T) {
	f := newFixture(t, testIssuer)
	other := newFixture(t, testIssuer) // another provider: another key
	ctx := t.Context()
	_, m := getAuthorize(t, f, authorizeParams("web", webCB), "")
	tx, csrf, value := formOf(t, m)
	_, m2 := getAuthorize(t, f, authorizeParams("web", webCB), "")
	tx2, csrf2, value2 := formOf(t, m2)
	_, mf := getAuthorize(t, other, authorizeParams("web", webCB), "")
	txF, csrfF, valueF := formOf(t, mf)
	f.st.takeWrites()

	flip := []byte(value)
	flip[len(flip)/2] ^= 1
	if flip[len(flip)/2] == '`' || flip[len(flip)/2] == '.' { // keep it base64url
		flip[len(flip)/2] = 'A'
	}
	name := func(id string) string { return "__Host-flowd_tx_" + id + "=" }
	for _, tc := range []struct {
		name, tx, csrf, cookie string
	}{
		{"tampered", tx, csrf, name(tx) + string(flip)},
		{"truncated", tx, csrf, name(tx) + value[:len(value)-4]},
		{"another provider's", txF, csrfF, name(txF) + valueF},
		{"moved to another transaction's name", tx2, csrf2, name(tx2) + value},
		{"another transaction's csrf", tx, csrf2, name(tx) + value},
		{"oversized", tx, csrf, name(tx) + strings.Repeat("A", 5000)},
		{"not base64url", tx, csrf, name(tx) + strings.Repeat("*", 100)},
		{"empty", tx, csrf, name(tx)},
		{"missing", tx, csrf, name(tx2) + value2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			post := formMsg(url.Values{"tx": {tc.tx}, "csrf": {tc.csrf}, "username": {"ada"}, "password": {testPassword}}, tc.cookie, "")
			port, err := newTestLogin(f).Process(ctx, f.clk.exec(), post)
			if err != nil || port != "invalid" || post["session"] != nil ||
				stringField(mapOf(post["oauth_error"]), "error_description") != msgExpired {
				t.Fatalf("%s %v %v", port, err, post["oauth_error"])
			}
			if w := f.st.takeWrites(); len(w) != 0 {
				t.Fatalf("a refused sign-in cookie wrote %v", w)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		f.clk.Advance(10 * time.Minute)
		post := formMsg(url.Values{"tx": {tx}, "csrf": {csrf}, "username": {"ada"}, "password": {testPassword}}, name(tx)+value, "")
		if port, err := newTestLogin(f).Process(ctx, f.clk.exec(), post); err != nil || port != "invalid" {
			t.Fatalf("%s %v", port, err)
		}
		if w := f.st.takeWrites(); len(w) != 0 {
			t.Fatalf("an expired sign-in cookie wrote %v", w)
		}
	})
}

func TestSignInTabs(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	browser := jar{}
	open := func() (tx, csrf string) {
		_, m := getAuthorize(t, f, authorizeParams("web", webCB), browser.header())
		browser.take(m)
		tx, csrf = formFields(t, stringField(m, "payload"))
		f.clk.Advance(time.Second) // tabs opened one after the other
		return tx, csrf
	}
	submit := func(tx, csrf string) string {
		post := formMsg(url.Values{"tx": {tx}, "csrf": {csrf}, "username": {"ada"}, "password": {testPassword}}, browser.header(), "")
		port, err := newTestLogin(f).Process(ctx, f.clk.exec(), post)
		if err != nil {
			t.Fatal(err)
		}
		browser.take(post)
		delete(browser, "__Host-flowd_session") // sign in afresh each time
		return port
	}
	t.Run("two tabs both sign in", func(t *testing.T) {
		tx1, csrf1 := open()
		tx2, csrf2 := open()
		if got := submit(tx2, csrf2); got != "ok" {
			t.Fatalf("second tab: %s", got)
		}
		if got := submit(tx1, csrf1); got != "ok" {
			t.Fatalf("first tab: %s", got)
		}
		if n := len(browser.signIns()); n != 0 {
			t.Fatalf("%d sign-in cookies left after both signed in", n)
		}
		if got := submit(tx1, csrf1); got != "invalid" {
			t.Fatalf("a used form again: %s", got)
		}
	})
	t.Run("at most five pending", func(t *testing.T) {
		type form struct{ tx, csrf string }
		var forms []form
		for range maxPendingSignIns + 2 {
			tx, csrf := open()
			forms = append(forms, form{tx, csrf})
			if n := len(browser.signIns()); n > maxPendingSignIns {
				t.Fatalf("%d sign-in cookies", n)
			}
		}
		want := []string{}
		for _, fm := range forms[2:] {
			want = append(want, fm.tx)
		}
		got := browser.signIns()
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("kept %v, want the newest %v", got, want)
		}
		if got := submit(forms[0].tx, forms[0].csrf); got != "invalid" {
			t.Fatalf("the oldest, pushed out: %s", got)
		}
		if got := submit(forms[len(forms)-1].tx, forms[len(forms)-1].csrf); got != "ok" {
			t.Fatalf("the newest: %s", got)
		}
	})
}

func TestMaxAgeZeroSameSecond(t *testing.T) {
	f := newFixture(t, testIssuer)
	_, cookies := signIn(t, f, authorizeParams("web", webCB), "") // at the clock's time, which does not move
	for _, tc := range []struct {
		maxAge, port string
	}{
		{"0", "form"}, // sign in again, even within the same second
		{"1", "active"},
		{"", "active"},
	} {
		t.Run("max_age="+tc.maxAge, func(t *testing.T) {
			p := authorizeParams("web", webCB)
			if tc.maxAge != "" {
				p.Set("max_age", tc.maxAge)
			}
			if port, m := getAuthorize(t, f, p, cookies); port != tc.port {
				t.Fatalf("port %s, want %s (%v)", port, tc.port, m["oauth_error"])
			}
		})
	}
}

// A sign-in that finds every password-hashing slot taken is asked to try
// again (429 and Retry-After in the flow), and its attempt is given back.
func TestSignInHashingBusy(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	entered, hold := make(chan struct{}, 10), make(chan struct{})
	f.users.SetHasher(passhash.New(passhash.Options{Concurrency: 1, Wait: time.Millisecond, Observe: func(int) {
		entered <- struct{}{}
		<-hold
	}}))
	_, m := getAuthorize(t, f, authorizeParams("web", webCB), "")
	tx, csrf, value := formOf(t, m)
	var wg sync.WaitGroup
	wg.Go(func() { f.users.Authenticate(ctx, "someone", "some password") }) //nolint:errcheck
	<-entered
	post := formMsg(url.Values{"tx": {tx}, "csrf": {csrf}, "username": {"ada"}, "password": {testPassword}}, "__Host-flowd_tx_"+tx+"="+value, "")
	port, err := newTestLogin(f).Process(ctx, f.clk.exec(), post)
	close(hold)
	wg.Wait()
	if err != nil || port != "throttled" || mapOf(post["login"])["error"] != msgBusy || post["retry_after"] != int64(1) || post["session"] != nil {
		t.Fatalf("%s %v %v", port, err, post["login"])
	}
	for _, key := range []string{userThrottleKey("ada"), ipThrottleKey("192.0.2.7:5555")} {
		if rec, _ := getRec[throttleRecord](ctx, f.st, nsThrottle, key); rec != nil && rec.Failures != 0 {
			t.Fatalf("%s: %d attempts counted for a password never checked", key, rec.Failures)
		}
	}
	// The same form signs in once a slot is free.
	post = formMsg(url.Values{"tx": {tx}, "csrf": {csrf}, "username": {"ada"}, "password": {testPassword}}, "__Host-flowd_tx_"+tx+"="+value, "")
	if port, err := newTestLogin(f).Process(ctx, f.clk.exec(), post); err != nil || port != "ok" {
		t.Fatalf("after: %s %v", port, err)
	}
}
