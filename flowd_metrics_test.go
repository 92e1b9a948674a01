package flowd_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/flows/examples"
	"github.com/flowd/flowd/store/storetest"
)

// metricsEnv is a flowd with the shipped examples and a Prometheus
// registry of its own, driven through its one-listener handler.
type metricsEnv struct {
	t      *testing.T
	fd     *flowd.Flowd
	h      http.Handler
	scrape http.Handler
}

func newMetricsEnv(t *testing.T) *metricsEnv { return newEnvWith(t, nil) }

// newEnvWith is newMetricsEnv with options of the test's own (opts may be nil).
func newEnvWith(t *testing.T, opts func(*flowd.Options)) *metricsEnv {
	t.Helper()
	st := storetest.TempBolt(t)
	reg := prometheus.NewRegistry()
	o := flowd.Options{Store: st, Examples: examples.FS, AdminToken: "test-admin-token",
		AdminPassword: "correct horse battery", Issuer: "http://flowd.test", Metrics: reg}
	if opts != nil {
		opts(&o)
	}
	fd := flowd.StartTest(t, o)
	// The key-rollover flow creates keyset main from its start-up trigger,
	// on a goroutine of its own: wait for it, so every test starts from
	// the same keys.
	waitForMain(t, fd)
	return &metricsEnv{t: t, fd: fd, h: fd.Handler(), scrape: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
}

func (e *metricsEnv) do(method, path string, hdr map[string]string, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	return w
}

// families scrapes the registry as Prometheus would (text format) and
// parses the answer with the Prometheus text parser.
func (e *metricsEnv) families() map[string]*dto.MetricFamily {
	e.t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	w := httptest.NewRecorder()
	e.scrape.ServeHTTP(w, req)
	if w.Code != 200 {
		e.t.Fatalf("scrape: %d %s", w.Code, w.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(w.Body)
	if err != nil {
		e.t.Fatalf("parse scrape: %v\n%s", err, w.Body)
	}
	return fams
}

// value is the value of the series of name whose labels are exactly
// labels; ok is false when there is no such series.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		if !maps.Equal(got, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

type series struct {
	name   string
	labels map[string]string
	want   float64
}

func (e *metricsEnv) expect(fams map[string]*dto.MetricFamily, want []series) {
	e.t.Helper()
	for _, s := range want {
		got, ok := value(fams, s.name, s.labels)
		if !ok {
			e.t.Errorf("%s%v: no such series", s.name, s.labels)
			continue
		}
		if got != s.want {
			e.t.Errorf("%s%v = %v, want %v", s.name, s.labels, got, s.want)
		}
	}
}

func (e *metricsEnv) sign(keyset, alg string, req jose.SignRequest) string {
	e.t.Helper()
	req.Keyset, req.Alg = keyset, alg
	tok, _, err := jose.NewSigner(e.fd.Keysets()).Sign(e.t.Context(), req)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func activeKey(t *testing.T, ks *jose.Keysets, name string) jose.KeyInfo {
	t.Helper()
	info, err := ks.Get(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range info.Keys {
		if k.State == jose.StateActive && k.Use == jose.UseSig && !k.Revoked {
			return k
		}
	}
	t.Fatalf("keyset %s has no active signing key", name)
	return jose.KeyInfo{}
}

// flipSignature changes one character in the middle of the signature, so
// the token stays well-formed and its signature no longer verifies.
func flipSignature(tok string) string {
	i := strings.LastIndexByte(tok, '.') + (len(tok)-strings.LastIndexByte(tok, '.'))/2
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

// TestMetricsFromRealRequests drives tokens, JWKS requests, a rotation, a
// revoke and a failed admin sign-in through flowd and checks the exact
// values /metrics then shows.
func TestMetricsFromRealRequests(t *testing.T) {
	e := newMetricsEnv(t)
	ks := e.fd.Keysets()
	k1 := activeKey(t, ks, "main")
	info, err := ks.Get(t.Context(), "main")
	if err != nil {
		t.Fatal(err)
	}
	algs := 0 // one active key per alg; a rotation retires each
	for _, k := range info.Keys {
		if k.State == jose.StateActive {
			algs++
		}
	}
	good := jose.SignRequest{Typ: "at+jwt", Issuer: "http://flowd.test", Subject: "alice", Audience: []string{"flowd-api"}, TTL: time.Hour}
	valid := e.sign("main", k1.Alg, good)
	expired := good
	expired.TTL = 0
	expired.Claims = map[string]any{"iat": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()}
	wrongAud := good
	wrongAud.Audience = []string{"someone-else"}
	if err := ks.Create(t.Context(), "other", k1.Alg); err != nil {
		t.Fatal(err)
	}
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	calls := []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"valid", bearer(valid), 200},
		{"expired", bearer(e.sign("main", k1.Alg, expired)), 401},
		{"wrong audience", bearer(e.sign("main", k1.Alg, wrongAud)), 401},
		{"bad signature", bearer(flipSignature(valid)), 401},
		{"unknown kid", bearer(e.sign("other", k1.Alg, good)), 401},
		{"no token", nil, 401},
	}
	for _, c := range calls {
		if w := e.do("GET", "/api/hello", c.hdr, ""); w.Code != c.status {
			t.Fatalf("%s: %d %s, want %d", c.name, w.Code, w.Body, c.status)
		}
	}
	jwks := e.do("GET", "/.well-known/jwks.json", nil, "")
	if jwks.Code != 200 {
		t.Fatalf("jwks: %d", jwks.Code)
	}
	if w := e.do("GET", "/.well-known/jwks.json", map[string]string{"If-None-Match": jwks.Header().Get("ETag")}, ""); w.Code != 304 {
		t.Fatalf("jwks with its ETag: %d, want 304", w.Code)
	}
	if w := e.do("GET", "/no/such/route", nil, ""); w.Code != 404 {
		t.Fatalf("unclaimed route: %d", w.Code)
	}
	// Token endpoint: one client_credentials grant, one wrong secret.
	if _, _, err := e.fd.Clients().Add(t.Context(), oauth.Client{ID: "demo", Scopes: []string{"read"}}, "demo-secret-0123456789"); err != nil {
		t.Fatal(err)
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for _, c := range []struct {
		secret string
		status int
	}{{"demo-secret-0123456789", 200}, {"wrong-secret-0123456789", 401}} {
		hdr := maps.Clone(form)
		hdr["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte("demo:"+c.secret))
		if w := e.do("POST", "/oauth/token", hdr, "grant_type=client_credentials&scope=read"); w.Code != c.status {
			t.Fatalf("token with %s: %d %s", c.secret, w.Code, w.Body)
		}
	}
	login := url.Values{"password": {"wrong password"}, "next": {"/admin/"}}.Encode()
	if w := e.do("POST", "/admin/login", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, login); w.Code != 401 {
		t.Fatalf("failed sign-in: %d", w.Code)
	}

	// Rotate through the admin API: the old key is retired and still
	// verifies the token it signed.
	admin := map[string]string{"Authorization": "Bearer test-admin-token", "Content-Type": "application/json"}
	if w := e.do("POST", "/admin/api/keysets/main/rotate", admin, `{"retire_after": "48h", "force": true}`); w.Code != 200 {
		t.Fatalf("rotate: %d %s", w.Code, w.Body)
	}
	if w := e.do("GET", "/api/hello", bearer(valid), ""); w.Code != 200 {
		t.Fatalf("token of the retired key: %d %s", w.Code, w.Body)
	}
	fams := e.families()
	v := func(labels ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(labels); i += 2 {
			m[labels[i]] = labels[i+1]
		}
		return m
	}
	wantReasons := map[jose.Reason]float64{jose.ReasonExpired: 1, jose.ReasonWrongAudience: 1, jose.ReasonBadSignature: 1,
		jose.ReasonUnknownKid: 1, jose.ReasonTokenMissing: 1}
	want := []series{
		{"flowd_token_validations_total", v("flow", "protected-api", "node", "auth", "outcome", "valid", "reason", ""), 2},
		{"flowd_jose_key_verifications_total", v("keyset", "main", "kid", k1.Kid), 2},
		{"flowd_http_requests_total", v("flow", "protected-api", "route", "GET /api/hello", "status", "200"), 2},
		{"flowd_http_requests_total", v("flow", "protected-api", "route", "GET /api/hello", "status", "401"), 5},
		{"flowd_http_request_duration_seconds", v("flow", "protected-api", "route", "GET /api/hello"), 7},
		{"flowd_http_requests_total", v("flow", "", "route", "unmatched", "status", "404"), 1},
		{"flowd_jwks_responses_total", v("flow", "jwks", "node", "jwks", "keyset", "main", "status", "200"), 1},
		{"flowd_jwks_responses_total", v("flow", "jwks", "node", "jwks", "keyset", "main", "status", "304"), 1},
		{"flowd_runs_total", v("flow", "protected-api", "outcome", "ok"), 7},
		{"flowd_runs_total", v("flow", "protected-api", "outcome", "error"), 0},
		{"flowd_run_duration_seconds", v("flow", "protected-api"), 7},
		{"flowd_block_errors_total", v("flow", "protected-api", "node", "auth", "type", "jose.validate"), 0},
		{"flowd_admin_sign_ins_total", v("result", "wrong_password"), 1},
		{"flowd_oauth_grants_total", v("flow", "token", "node", "grant", "grant_type", "client_credentials", "outcome", "ok"), 1},
		{"flowd_oauth_grants_total", v("flow", "token", "node", "grant", "grant_type", "client_credentials", "outcome", "invalid"), 0},
		// The token endpoint authenticates clients in the client-auth
		// sub-flow, which accepts public clients for it.
		{"flowd_oauth_client_auth_total", v("flow", "client-auth", "node", "client_public", "result", "ok"), 1},
		{"flowd_oauth_client_auth_total", v("flow", "client-auth", "node", "client_public", "result", "invalid"), 1},
		{"flowd_oauth_grants_total", v("flow", "token", "node", "exchange", "grant_type", "authorization_code", "outcome", "ok"), 0},
		{"flowd_jwks_responses_total", v("flow", "jwks", "node", "jwks", "keyset", "main", "status", "304"), 1},
		{"flowd_admin_sign_ins_total", v("result", "ok"), 0},
		{"flowd_jose_keys", v("keyset", "main", "state", "retired"), float64(algs)},
		{"flowd_jose_keys", v("keyset", "main", "state", "active"), float64(algs)},
		{"flowd_jose_keys", v("keyset", "main", "state", "next"), float64(algs)},
		{"flowd_jose_keys", v("keyset", "main", "state", "revoked"), 0},
	}
	for _, r := range jose.Reasons() {
		want = append(want, series{"flowd_token_validations_total",
			v("flow", "protected-api", "node", "auth", "outcome", "invalid", "reason", string(r)), wantReasons[r]})
	}
	e.expect(fams, want)
	left, ok := value(fams, "flowd_jose_retired_key_deadline_seconds", v("keyset", "main", "kid", k1.Kid))
	if !ok || left > (48*time.Hour).Seconds() || left < (48*time.Hour-time.Minute).Seconds() {
		t.Errorf("retired key deadline in %v s (found %v), want just under 48h", left, ok)
	}
	if next, ok := value(fams, "flowd_jose_next_rotation_seconds", v("keyset", "main")); !ok || next <= 0 || next > 86400 {
		t.Errorf("next rotation of main in %v s (found %v), want within a day (the daily key-rollover)", next, ok)
	}
	// No label holds a token, a subject or a request path.
	for name, f := range fams {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if val := l.GetValue(); strings.Contains(val, "eyJ") || val == "alice" || val == "/no/such/route" {
					t.Errorf("%s has label %s=%q", name, l.GetName(), val)
				}
			}
		}
	}

	// Per-key traffic: the keysets API and page show the retired key's
	// two verifications in the last hour.
	var ksAnswer struct {
		Usage []jose.KeyUsage `json:"usage"`
	}
	kw := e.do("GET", "/admin/api/keysets/main", admin, "")
	if err := json.Unmarshal(kw.Body.Bytes(), &ksAnswer); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ksAnswer.Usage, func(u jose.KeyUsage) bool { return u.Kid == k1.Kid })
	if i < 0 || ksAnswer.Usage[i].Verified != 2 || ksAnswer.Usage[i].LastHour != 2 || ksAnswer.Usage[i].State != jose.StateRetired ||
		time.Since(ksAnswer.Usage[i].LastVerified) > time.Minute {
		t.Errorf("keysets API usage %+v, want the retired key %s at 2", ksAnswer.Usage, k1.Kid)
	}
	good2 := url.Values{"password": {"correct horse battery"}}.Encode()
	lw := e.do("POST", "/admin/login", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, good2)
	page := e.do("GET", "/admin/keysets", map[string]string{"Cookie": lw.Header().Get("Set-Cookie")}, "")
	row := regexp.MustCompile(`data-kid="` + regexp.QuoteMeta(k1.Kid) + `"[\s\S]*?data-testid="key-verified">(\d+)`).FindStringSubmatch(page.Body.String())
	if page.Code != 200 || row == nil || row[1] != "2" {
		t.Errorf("keysets page: %d, verified cell %v", page.Code, row)
	}

	// Revoke the old key: its token is now refused with unknown_kid, and
	// its per-key series is gone with it.
	if w := e.do("POST", "/admin/api/keysets/main/keys/"+k1.Kid+"/revoke", admin, `{}`); w.Code != 200 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if w := e.do("GET", "/api/hello", bearer(valid), ""); w.Code != 401 {
		t.Fatalf("token of the revoked key: %d", w.Code)
	}
	fams = e.families()
	e.expect(fams, []series{
		{"flowd_token_validations_total", v("flow", "protected-api", "node", "auth", "outcome", "invalid", "reason", "unknown_kid"), 2},
		{"flowd_jose_keys", v("keyset", "main", "state", "revoked"), 1},
		{"flowd_jose_keys", v("keyset", "main", "state", "retired"), float64(algs - 1)},
	})
	if _, ok := value(fams, "flowd_jose_key_verifications_total", v("keyset", "main", "kid", k1.Kid)); ok {
		t.Error("a revoked key still has a verifications series")
	}
}

// TestMetricsSeriesAreBounded: hostile requests (random paths, random
// bearer tokens and kids) add no series: every label value comes from
// configuration or a fixed list.
func TestMetricsSeriesAreBounded(t *testing.T) {
	e := newMetricsEnv(t)
	count := func() int {
		n := 0
		for _, f := range e.families() {
			n += len(f.Metric)
		}
		return n
	}
	// One of each first, so the per-status counters exist.
	e.do("GET", "/no/such/route", nil, "")
	e.do("GET", "/api/hello", map[string]string{"Authorization": "Bearer x"}, "")
	before := count()
	for i := range 50 {
		e.do("GET", fmt.Sprintf("/random/%d/%x", i, i*7919), nil, "")
		hdr, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": fmt.Sprint("kid-", i)})
		tok := strings.Join([]string{b64(hdr), b64([]byte(`{"sub":"x"}`)), "c2ln"}, ".")
		e.do("GET", "/api/hello", map[string]string{"Authorization": "Bearer " + tok}, "")
	}
	if after := count(); after != before {
		names := slices.Collect(maps.Keys(e.families()))
		sort.Strings(names)
		t.Errorf("series grew from %d to %d under random paths and kids (%v)", before, after, names)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
