package ui_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/ui/uitest"
)

// traffic is what dashboardTraffic sent, and a token still valid.
type traffic struct {
	valid, expired, wrongAud, issued, badSecret int
	token                                       string
}

// dashboardTraffic drives minutes of traffic through flowd on a clock it
// moves a minute at a time: token validations (valid, expired, wrong
// audience), client_credentials tokens and wrong client secrets. After
// each minute it reads the dashboard, which takes the minute's sample.
func dashboardTraffic(t *testing.T, env *uitest.Env, clock *enginetest.Clock, c *uitest.Client, minutes int) traffic {
	t.Helper()
	ctx := t.Context()
	ks := env.FD.Keysets()
	info, err := ks.Get(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	alg := ""
	for _, k := range info.Keys {
		if k.State == jose.StateActive {
			alg = k.Alg
		}
	}
	signer := jose.NewSigner(ks)
	sign := func(aud string, ttl time.Duration) string {
		req := jose.SignRequest{Keyset: "main", Alg: alg, Typ: "at+jwt", Issuer: env.URL, Subject: "alice", Audience: []string{aud}, TTL: ttl}
		if ttl < 0 {
			now := clock.Now()
			req.TTL = 0
			req.Claims = map[string]any{"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()}
		}
		tok, _, err := signer.Sign(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	_, secret, err := env.FD.Clients().Add(engine.WithActor(ctx, "cli"), oauth.Client{ID: "billing-service", Scopes: []string{"read"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	hello := func(tok string, want int) {
		req, _ := http.NewRequest("GET", env.URL+"/api/hello", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("GET /api/hello: %d, want %d: %s", res.StatusCode, want, b)
		}
	}
	token := func(secret string, want int) {
		req, _ := http.NewRequest("POST", env.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials&scope=read"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("billing-service:"+secret)))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("POST /oauth/token: %d, want %d", res.StatusCode, want)
		}
	}
	var sent traffic
	var valid, expired, wrongAud string
	for m := range minutes {
		if m%20 == 0 { // tokens live an hour on the moving clock
			valid, expired, wrongAud = sign("flowd-api", time.Hour), sign("flowd-api", -1), sign("someone-else", time.Hour)
		}
		// A busy morning: traffic grows, with a burst of expired tokens
		// (a client with a stale cache) in the middle.
		for range 2 + m/6 + (m*7)%4 {
			hello(valid, http.StatusOK)
			sent.valid++
		}
		if m >= 20 && m < 28 {
			for range 3 {
				hello(expired, http.StatusUnauthorized)
				sent.expired++
			}
		}
		if m%9 == 4 {
			hello(wrongAud, http.StatusUnauthorized)
			sent.wrongAud++
		}
		for range 1 + (m*5)%3 {
			token(secret, http.StatusOK)
			sent.issued++
		}
		if m%17 == 16 {
			token("not-the-secret-0123456789", http.StatusUnauthorized)
			sent.badSecret++
		}
		c.GetBody(t, "/admin/dashboard") // takes this minute's sample
		clock.Advance(time.Minute)
	}
	sent.token = valid
	return sent
}

// TestBrowserDashboard: after traffic on a moving clock, the dashboard
// (the landing page) shows the counts sent, draws its charts without a
// console error or CSP violation, switches to the day view, and links the
// next rotation of keyset main.
func TestBrowserDashboard(t *testing.T) {
	clock := enginetest.NewClock(time.Now().UTC().Add(-50 * time.Minute).Truncate(time.Minute).Add(5 * time.Second))
	env := uitest.Start(t, func(o *flowd.Options) { o.Clock = clock.Now })
	c := env.Login(t)
	sent := dashboardTraffic(t, env, clock, c, 50)

	ctx := uitest.Browser(t, 2*browserTimeout)
	uitest.Viewport(t, ctx, 1440, 900)
	uitest.WatchErrors(t, ctx)
	pw := css(tid("login-password"))
	err := chromedp.Do(ctx,
		chromedp.Navigate(env.URL+"/admin/"),
		chromedp.WaitVisible(pw),
		chromedp.SetValue(pw, uitest.Password),
		uitest.ClickJS(tid("login-submit")),
		chromedp.WaitVisible(css(tid("dashboard"))),
	)
	if err != nil {
		t.Fatalf("log in lands on the dashboard: %v", err)
	}
	kpi := func(card, label string) int {
		t.Helper()
		s := uitest.JS[string](t, ctx, `document.querySelector('`+tid("dash-"+card)+` [data-label="`+label+`"] strong').textContent`)
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("%s %s: %q", card, label, s)
		}
		return n
	}
	for _, tt := range []struct {
		card, label string
		want        int
	}{
		{"validations", "valid", sent.valid},
		{"validations", "refused", sent.expired + sent.wrongAud},
		{"tokens", "issued", sent.issued},
	} {
		if got := kpi(tt.card, tt.label); got != tt.want {
			t.Errorf("%s %s: %d, want %d", tt.card, tt.label, got, tt.want)
		}
	}
	if n := count(t, ctx, tid("dash-validations")+" "+tid("chart-column")); n < 45 {
		t.Errorf("validations chart has %d columns with data, want one for each of the ~50 minutes of traffic", n)
	}
	if n := count(t, ctx, tid("dash-rotation")+`[data-keyset="main"] `+tid("rotation-in")); n != 1 {
		t.Errorf("keyset main's next rotation is not shown")
	}
	over := uitest.JS[int](t, ctx, `document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth`)
	if over > 0 {
		t.Errorf("the dashboard scrolls sideways by %d px", over)
	}
	uitest.Shot(t, ctx, "dashboard")

	err = chromedp.Do(ctx, uitest.ClickJS(tid("dash-window-day")),
		chromedp.WaitVisible(css(`[data-testid="dashboard"][data-window="day"]`)))
	if err != nil {
		t.Fatal(err)
	}
	if got := kpi("validations", "valid"); got != sent.valid {
		t.Errorf("day view: valid %d, want %d", got, sent.valid)
	}
	uitest.Shot(t, ctx, "dashboard-day")

	// Live: three more valid tokens, then the tab is shown again; the
	// page fetches itself and swaps the new numbers in.
	for range 3 {
		req, _ := http.NewRequest("GET", env.URL+"/api/hello", nil)
		req.Header.Set("Authorization", "Bearer "+sent.token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/hello: %d", res.StatusCode)
		}
	}
	// The tab is "shown again" on every poll until the count is there: a
	// refresh already in flight (busy) drops the event, as it should, and
	// on a loaded machine one may be.
	refreshed := `document.querySelector('` + tid("dash-validations") + ` [data-label="valid"] strong').textContent === '` + strconv.Itoa(sent.valid+3) + `'`
	uitest.WaitJS(t, ctx, "the refreshed count", `(() => { const ok = `+refreshed+`; if (!ok) document.dispatchEvent(new Event('visibilitychange')); return ok; })()`)
	if w := uitest.JS[string](t, ctx, `document.querySelector('[data-testid="dashboard"]').dataset.window`); w != "day" {
		t.Errorf("after the refresh the window is %q, want day", w)
	}
}
