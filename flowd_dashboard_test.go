package flowd_test

import (
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	dto "github.com/prometheus/client_model/go"

	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/blocks/oidc"
)

// sumOf adds the series of a family whose labels include every pair of
// match: how the dashboard sums a counter over the labels it hides.
func sumOf(fams map[string]*dto.MetricFamily, name string, match map[string]string) float64 {
	var total float64
	for _, m := range fams[name].GetMetric() {
		ok := true
		for k, want := range match {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == want {
					found = true
				}
			}
			ok = ok && found
		}
		if ok {
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

// peopleSignInFails sends a person's wrong password through the
// authorize flow's sign-in form (oidc.login counts result "failed").
func peopleSignInFails(t *testing.T, e *metricsEnv) {
	t.Helper()
	ctx := t.Context()
	if _, err := e.fd.Users().Add(ctx, oidc.User{Username: "ada"}, "a long enough password 1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.fd.Clients().Add(ctx, oauth.Client{ID: "web", FirstParty: true, Scopes: []string{"openid"},
		GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://app.test/cb"}}, "web-secret-0123456789"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	q := url.Values{"client_id": {"web"}, "redirect_uri": {"https://app.test/cb"}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"s1"}, "nonce": {"n1"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	res, err := c.Get(srv.URL + "/oauth/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	body := string(raw)
	form := url.Values{}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="(tx|csrf)" value="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if res.StatusCode != 200 || form.Get("tx") == "" {
		t.Fatalf("sign-in form: %d %s", res.StatusCode, body)
	}
	form.Set("username", "ada")
	form.Set("password", "not the password")
	res, err = c.PostForm(srv.URL+"/oauth/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d, want 401", res.StatusCode)
	}
}

// TestDashboardNumbersAreTheMetrics: after real requests (a valid token,
// an expired one, a wrong audience, a token issued, a wrong client
// secret, a failed admin and a failed people sign-in) every number of the
// dashboard, over the last hour and the last day, equals the sum of the
// matching series scraped from /metrics.
func TestDashboardNumbersAreTheMetrics(t *testing.T) {
	e := newMetricsEnv(t)
	ks := e.fd.Keysets()
	k := activeKey(t, ks, "main")
	good := jose.SignRequest{Typ: "at+jwt", Issuer: "http://flowd.test", Subject: "alice", Audience: []string{"flowd-api"}, TTL: time.Hour}
	expired := good
	expired.TTL = 0
	expired.Claims = map[string]any{"iat": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()}
	wrongAud := good
	wrongAud.Audience = []string{"someone-else"}
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	for _, c := range []struct {
		name   string
		tok    string
		status int
	}{
		{"valid", e.sign("main", k.Alg, good), 200},
		{"valid again", e.sign("main", k.Alg, good), 200},
		{"expired", e.sign("main", k.Alg, expired), 401},
		{"wrong audience", e.sign("main", k.Alg, wrongAud), 401},
	} {
		if w := e.do("GET", "/api/hello", bearer(c.tok), ""); w.Code != c.status {
			t.Fatalf("%s: %d %s", c.name, w.Code, w.Body)
		}
	}
	if _, _, err := e.fd.Clients().Add(t.Context(), oauth.Client{ID: "demo", Scopes: []string{"read"}}, "demo-secret-0123456789"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		secret string
		status int
	}{{"demo-secret-0123456789", 200}, {"wrong-secret-0123456789", 401}} {
		hdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded",
			"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("demo:"+c.secret))}
		if w := e.do("POST", "/oauth/token", hdr, "grant_type=client_credentials&scope=read"); w.Code != c.status {
			t.Fatalf("token with %s: %d %s", c.secret, w.Code, w.Body)
		}
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if w := e.do("POST", "/admin/login", form, url.Values{"password": {"wrong password"}}.Encode()); w.Code != 401 {
		t.Fatalf("failed admin sign-in: %d", w.Code)
	}
	peopleSignInFails(t, e)
	lw := e.do("POST", "/admin/login", form, url.Values{"password": {"correct horse battery"}}.Encode())
	if lw.Code != http.StatusSeeOther || lw.Header().Get("Location") != "/admin/dashboard" {
		t.Fatalf("sign-in lands at %d %q, want the dashboard", lw.Code, lw.Header().Get("Location"))
	}
	cookie := map[string]string{"Cookie": lw.Header().Get("Set-Cookie")}

	fams := e.families()
	type cell struct {
		name  string
		sel   string // a row of a card
		want  float64
		exact bool // the test's own requests fix the value
	}
	cells := []cell{
		{"valid", `[data-testid="dash-validations"] [data-key="valid"]`,
			sumOf(fams, "flowd_token_validations_total", map[string]string{"outcome": "valid"}), true},
		{"token_expired", `[data-testid="dash-validations"] [data-key="token_expired"]`,
			sumOf(fams, "flowd_token_validations_total", map[string]string{"reason": "token_expired"}), true},
		{"wrong_audience", `[data-testid="dash-validations"] [data-key="wrong_audience"]`,
			sumOf(fams, "flowd_token_validations_total", map[string]string{"reason": "wrong_audience"}), true},
		{"issued client_credentials", `[data-testid="dash-tokens"] [data-key="issued:client_credentials"]`,
			sumOf(fams, "flowd_oauth_grants_total", map[string]string{"grant_type": "client_credentials", "outcome": "ok"}), true},
		{"wrong client secret", `[data-testid="dash-tokens"] [data-key="client_auth:invalid"]`,
			sumOf(fams, "flowd_oauth_client_auth_total", map[string]string{"result": "invalid"}), true},
		{"admin wrong password", `[data-testid="dash-sign-ins"] [data-key="admin_sign_ins:wrong_password"]`,
			sumOf(fams, "flowd_admin_sign_ins_total", map[string]string{"result": "wrong_password"}), true},
		{"admin signed in", `[data-testid="dash-sign-ins"] [data-key="admin_sign_ins:ok"]`,
			sumOf(fams, "flowd_admin_sign_ins_total", map[string]string{"result": "ok"}), true},
		{"people wrong password", `[data-testid="dash-sign-ins"] [data-key="sign_ins:failed"]`,
			sumOf(fams, "flowd_oidc_sign_ins_total", map[string]string{"result": "failed"}), true},
	}
	wantExact := map[string]float64{"valid": 2, "token_expired": 1, "wrong_audience": 1, "issued client_credentials": 1,
		"wrong client secret": 1, "admin wrong password": 1, "admin signed in": 1, "people wrong password": 1}
	for _, window := range []string{"hour", "day"} {
		t.Run(window, func(t *testing.T) {
			w := e.do("GET", "/admin/dashboard?window="+window, cookie, "")
			if w.Code != 200 {
				t.Fatalf("dashboard: %d %s", w.Code, w.Body)
			}
			d, err := goquery.NewDocumentFromReader(w.Body)
			if err != nil {
				t.Fatal(err)
			}
			num := func(s *goquery.Selection) float64 {
				v, err := strconv.ParseFloat(strings.TrimSpace(s.Text()), 64)
				if err != nil {
					t.Fatalf("not a number: %q", s.Text())
				}
				return v
			}
			for _, c := range cells {
				row := d.Find(c.sel)
				if row.Length() != 1 {
					t.Errorf("%s: %d rows", c.name, row.Length())
					continue
				}
				hour, day := num(row.Find(`[data-testid="dash-hour"]`)), num(row.Find(`[data-testid="dash-day"]`))
				if hour != c.want || day != c.want {
					t.Errorf("%s: dashboard %v (hour) %v (day), /metrics %v", c.name, hour, day, c.want)
				}
				if c.want != wantExact[c.name] {
					t.Errorf("%s: /metrics says %v, the test sent %v", c.name, c.want, wantExact[c.name])
				}
			}
			// Headline numbers of the window and the runs per flow.
			kpi := func(card, label string) float64 {
				return num(d.Find(`[data-testid="dash-` + card + `"] [data-label="` + label + `"] strong`))
			}
			allValidations := sumOf(fams, "flowd_token_validations_total", nil)
			validN := sumOf(fams, "flowd_token_validations_total", map[string]string{"outcome": "valid"})
			if got := kpi("validations", "refused"); got != allValidations-validN || got != 2 {
				t.Errorf("refused %v, /metrics %v", got, allValidations-validN)
			}
			for _, flow := range []string{"protected-api", "token"} {
				row := d.Find(`[data-testid="dash-flow"][data-flow="` + flow + `"]`)
				runs := sumOf(fams, "flowd_runs_total", map[string]string{"flow": flow})
				failed := sumOf(fams, "flowd_runs_total", map[string]string{"flow": flow, "outcome": "error"})
				if got := num(row.Find(`[data-testid="runs-` + window + `"]`)); got != runs || runs == 0 {
					t.Errorf("runs of %s: dashboard %v, /metrics %v", flow, got, runs)
				}
				if got := num(row.Find(`[data-testid="errors-` + window + `"]`)); got != failed {
					t.Errorf("failed runs of %s: dashboard %v, /metrics %v", flow, got, failed)
				}
			}
			if d.Find(`[data-testid="dash-rotation"][data-keyset="main"] [data-testid="rotation-in"]`).Length() != 1 {
				t.Error("no next rotation of keyset main")
			}
		})
	}
}
