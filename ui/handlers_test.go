package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/ui"
	"github.com/flowd/flowd/ui/uitest"
)

// adminPage starts flowd, logs in and reads the admin page at path.
func adminPage(t *testing.T, path string) (*uitest.Env, *uitest.Client, *goquery.Document) {
	t.Helper()
	env := uitest.Start(t)
	c := env.Login(t)
	return env, c, doc(t, c.GetBody(t, path))
}

func doc(t *testing.T, body string) *goquery.Document {
	t.Helper()
	d, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func tid(id string) string { return `[data-testid="` + id + `"]` }

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	env := uitest.Start(t)
	c := env.Login(t)
	for _, path := range []string{"/admin/login", "/admin/flows", "/admin/keysets", "/admin/schedules",
		"/admin/templates", "/admin/debugger", "/admin/static/app.css", "/admin/flows/hello/versions", "/admin/dashboard", "/admin/audit"} {
		t.Run(path, func(t *testing.T) {
			res, _ := c.Get(t, path)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got := res.Header.Get("Content-Security-Policy"); got != ui.CSP {
				t.Errorf("CSP = %q", got)
			}
			if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("headers: %v", res.Header)
			}
		})
	}
}

func TestLoginRequired(t *testing.T) {
	t.Parallel()
	env := uitest.Start(t)
	c := env.NewClient()
	tests := []struct {
		method, path string
		status       int
		location     string
	}{
		{"GET", "/admin/flows", http.StatusSeeOther, "/admin/login?next=%2Fadmin%2Fflows"},
		{"GET", "/admin/keysets", http.StatusSeeOther, "/admin/login?next=%2Fadmin%2Fkeysets"},
		{"GET", "/admin/flows/hello/edit", http.StatusSeeOther, "/admin/login?next=%2Fadmin%2Fflows%2Fhello%2Fedit"},
		{"POST", "/admin/flows/hello/delete", http.StatusUnauthorized, ""},
		{"GET", "/admin/api/flows", http.StatusUnauthorized, ""},
		{"GET", "/admin/login", http.StatusOK, ""},
		{"GET", "/admin/static/js/app.js", http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, env.URL+tt.path, nil)
			res, _ := c.Do(t, req)
			if res.StatusCode != tt.status {
				t.Errorf("status %d, want %d", res.StatusCode, tt.status)
			}
			if got := res.Header.Get("Location"); got != tt.location {
				t.Errorf("Location %q, want %q", got, tt.location)
			}
		})
	}
}

func TestLoginCookieAndLogout(t *testing.T) {
	t.Parallel()
	env := uitest.Start(t)
	c := env.NewClient()
	res := c.PostForm(t, "/admin/login", url.Values{"password": {uitest.Password}, "next": {"//evil.example/x"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/dashboard" {
		t.Fatalf("login: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	var ck *http.Cookie
	for _, k := range res.Cookies() {
		if k.Name == "flowd_admin" {
			ck = k
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/admin" || len(ck.Value) != 43 {
		t.Fatalf("cookie: %+v", ck)
	}
	// A browser signed in to flowd's OpenID provider on an http issuer
	// also sends the provider's flowd_session (path /) to /admin, and
	// may send it first: the admin session is still the one read.
	req, _ := http.NewRequest("GET", env.URL+"/admin/flows", nil)
	req.Header.Set("Cookie", "flowd_session="+strings.Repeat("P", 43)+"; "+ck.Name+"="+ck.Value)
	both, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	both.Body.Close()
	if both.StatusCode != http.StatusOK {
		t.Errorf("with the provider's session cookie first: %d (Location %q), want 200", both.StatusCode, both.Header.Get("Location"))
	}
	c2 := env.Login(t)
	res, _ = c2.Post(t, "/admin/logout", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if res, _ := c2.Get(t, "/admin/flows"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("after logout: %d", res.StatusCode)
	}
}

func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	env := uitest.Start(t)
	c := env.NewClient()
	for i := range 5 {
		res := c.PostForm(t, "/admin/login", url.Values{"password": {"wrong password " + string(rune('a'+i))}})
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, res.StatusCode)
		}
	}
	res := c.PostForm(t, "/admin/login", url.Values{"password": {uitest.Password}})
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("6th attempt: %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	env := uitest.Start(t)
	c := env.Login(t)
	wrong := "x" + c.CSRF[1:]
	if wrong == c.CSRF { // one token in 64 starts with x
		wrong = "y" + c.CSRF[1:]
	}
	tests := []struct {
		name   string
		csrf   string
		header string
		origin string
		status int
	}{
		{"missing", "", "", "", http.StatusForbidden},
		{"wrong", wrong, "", "", http.StatusForbidden},
		{"other origin", c.CSRF, "", "http://evil.example", http.StatusForbidden},
		{"header", "", c.CSRF, "", http.StatusSeeOther},
		{"form field", c.CSRF, "", "", http.StatusSeeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{}
			if tt.csrf != "" {
				form.Set("csrf", tt.csrf)
			}
			req, _ := http.NewRequest("POST", env.URL+"/admin/flows/hello/deploy", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.header != "" {
				req.Header.Set("X-CSRF-Token", tt.header)
			}
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			res, _ := c.Do(t, req)
			if res.StatusCode != tt.status {
				t.Errorf("status %d, want %d", res.StatusCode, tt.status)
			}
		})
	}
}

func TestAPIWithSession(t *testing.T) {
	t.Parallel()
	env := uitest.Start(t)
	c := env.Login(t)
	if res, _ := c.Get(t, "/admin/api/flows"); res.StatusCode != http.StatusOK {
		t.Errorf("GET with session: %d", res.StatusCode)
	}
	req, _ := http.NewRequest("POST", env.URL+"/admin/api/flows/hello/deploy", nil)
	if res, _ := c.Do(t, req); res.StatusCode != http.StatusForbidden {
		t.Errorf("POST without CSRF header: %d", res.StatusCode)
	}
	req, _ = http.NewRequest("POST", env.URL+"/admin/api/flows/hello/deploy", nil)
	req.Header.Set("X-CSRF-Token", c.CSRF)
	if res, body := c.Do(t, req); res.StatusCode != http.StatusOK {
		t.Errorf("POST with CSRF header: %d %s", res.StatusCode, body)
	}
	// The placeholder bearer alone is worth nothing.
	req, _ = http.NewRequest("GET", env.URL+"/admin/api/flows", nil)
	req.Header.Set("Authorization", "Bearer ui-session")
	if res, _ := env.NewClient().Do(t, req); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("placeholder bearer: %d", res.StatusCode)
	}
	// Sessions cannot change the password; the token can.
	req, _ = http.NewRequest("PUT", env.URL+"/admin/api/admin/password", strings.NewReader(`{"password":"another long password"}`))
	req.Header.Set("X-CSRF-Token", c.CSRF)
	if res, _ := c.Do(t, req); res.StatusCode != http.StatusForbidden {
		t.Errorf("password by session: %d", res.StatusCode)
	}
	if res, body := env.API(t, "PUT", "/admin/password", []byte(`{"password":"another long password"}`)); res.StatusCode != http.StatusConflict {
		t.Errorf("password by token with FLOWD_ADMIN_PASSWORD set: %d %s", res.StatusCode, body)
	}
}

func TestFlowsListExportImportDelete(t *testing.T) {
	t.Parallel()
	env, c, d := adminPage(t, "/admin/flows")
	row := d.Find(tid("flow-row") + `[data-flow="hello"]`)
	if row.Length() != 1 {
		t.Fatal("no row for hello")
	}
	if got := row.Find(tid("flow-status")).Text(); got != "deployed" {
		t.Errorf("hello status %q", got)
	}
	if href, _ := row.Find(tid("flow-edit")).Attr("href"); href != "/admin/flows/hello/edit" {
		t.Errorf("edit link %q", href)
	}

	res, exported := c.Get(t, "/admin/flows/hello/export")
	_, api := env.API(t, "GET", "/flows/hello", nil)
	if res.StatusCode != http.StatusOK || exported != string(api) {
		t.Fatalf("export differs from the API (%d):\n%s\n%s", res.StatusCode, exported, api)
	}
	if cd := res.Header.Get("Content-Disposition"); cd != `attachment; filename="hello.flow.json"` {
		t.Errorf("Content-Disposition %q", cd)
	}

	res, _ = c.Post(t, "/admin/flows/import", url.Values{"doc": {exported}, "as": {"hello-copy"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("import: %d", res.StatusCode)
	}
	_, copyDoc := env.API(t, "GET", "/flows/hello-copy", nil)
	if want := strings.Replace(exported, `"id": "hello"`, `"id": "hello-copy"`, 1); string(copyDoc) != want {
		t.Errorf("copy:\n%s", copyDoc)
	}
	res, body := c.Post(t, "/admin/flows/import", url.Values{"doc": {`{"schema":"flowd/v1","id":"x","nodes":[{"id":"a","type":"nope"}],"wires":[]}`}, "deploy": {"true"}})
	if res.StatusCode != http.StatusUnprocessableEntity || doc(t, body).Find(tid("flash")).Length() != 1 {
		t.Errorf("bad import: %d", res.StatusCode)
	}

	res, _ = c.Post(t, "/admin/flows/hello-copy/delete", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %d", res.StatusCode)
	}
	if res, _ := env.API(t, "GET", "/flows/hello-copy", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("after delete: %d", res.StatusCode)
	}
}

func TestUseTemplate(t *testing.T) {
	t.Parallel()
	env, c, d := adminPage(t, "/admin/templates")
	if d.Find(tid("template")+`[data-template="key-rollover"]`).Length() != 1 {
		t.Fatal("no key-rollover template")
	}
	for _, want := range []string{"key-rollover-2", "key-rollover-3"} {
		res, _ := c.Post(t, "/admin/templates/key-rollover/use", nil)
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != "/admin/flows/"+want+"/edit" {
			t.Fatalf("use: %d %q", res.StatusCode, loc)
		}
		info, err := env.FD.App().Info(t.Context(), want)
		if err != nil || info.Status != "undeployed" || info.Nodes != 5 {
			t.Errorf("%s: %+v %v", want, info, err)
		}
	}
	if res, _ := c.Post(t, "/admin/templates/..%2fsecret/use", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("bad template name: %d", res.StatusCode)
	}
}

func TestVersionsDiffAndRestore(t *testing.T) {
	t.Parallel()
	env := uitest.Start(t)
	c := env.Login(t)
	_, orig := env.API(t, "GET", "/flows/hello", nil)
	var f map[string]any
	_ = json.Unmarshal(orig, &f)
	nodes := f["nodes"].([]any)
	nodes = append(nodes, map[string]any{"id": "extra", "type": "core.log", "x": 1, "y": 1})
	f["nodes"] = nodes
	changed, _ := json.Marshal(f)
	if res, body := env.API(t, "PUT", "/flows/hello", changed); res.StatusCode != http.StatusOK {
		t.Fatalf("put: %d %s", res.StatusCode, body)
	}
	d := doc(t, c.GetBody(t, "/admin/flows/hello/versions"))
	row := d.Find(tid("version-row") + `[data-version="1"]`)
	if got := row.Find(tid("diff-nodes-added") + " code").Text(); got != "extra" {
		t.Errorf("nodes added %q", got)
	}
	res, _ := c.Post(t, "/admin/flows/hello/versions/1/restore", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("restore: %d", res.StatusCode)
	}
	if _, now := env.API(t, "GET", "/flows/hello", nil); !bytes.Equal(now, orig) {
		t.Errorf("after restore:\n%s", now)
	}
}

func TestKeysetsRotate(t *testing.T) {
	t.Parallel()
	_, c, d := adminPage(t, "/admin/keysets")
	ks := d.Find(tid("keyset") + `[data-keyset="main"]`)
	if ks.Length() != 1 {
		t.Fatal("no keyset main")
	}
	count := func(d *goquery.Document, state string) int {
		return d.Find(tid("key-row") + `[data-state="` + state + `"]`).Length()
	}
	if count(d, "active") != 2 || count(d, "next") != 2 {
		t.Errorf("before: active %d next %d", count(d, "active"), count(d, "next"))
	}
	if ks.Find(tid("next-rotation")+" time").Length() != 1 {
		t.Errorf("no next rotation: %s", ks.Find(tid("next-rotation")).Text())
	}
	if ks.Find(tid("now-line")).Length() != 1 || ks.Find(tid("timeline-row")).Length() != 4 {
		t.Errorf("timeline rows %d", ks.Find(tid("timeline-row")).Length())
	}
	res, _ := c.Post(t, "/admin/keysets/main/rotate", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("rotate: %d", res.StatusCode)
	}
	d = doc(t, c.GetBody(t, "/admin/keysets"))
	if count(d, "active") != 2 || count(d, "next") != 2 || count(d, "retired") != 2 {
		t.Errorf("after: active %d next %d retired %d", count(d, "active"), count(d, "next"), count(d, "retired"))
	}
	if d.Find(tid("seg-retired")).Length() != 2 {
		t.Errorf("retired segments %d", d.Find(tid("seg-retired")).Length())
	}
	kid, _ := d.Find(tid("key-row") + `[data-state="retired"]`).First().Attr("data-kid")
	res, _ = c.Post(t, "/admin/keysets/main/keys/"+kid+"/revoke", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	if res, _ := c.Post(t, "/admin/keysets/nope/rotate", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown keyset: %d", res.StatusCode)
	}
}

func TestSchedules(t *testing.T) {
	t.Parallel()
	_, c, d := adminPage(t, "/admin/schedules")
	row := d.Find(tid("schedule-row") + `[data-flow="key-rollover"][data-node="daily"]`)
	if row.Find(tid("next-run")).Length() != 5 {
		t.Fatalf("next runs: %d", row.Find(tid("next-run")).Length())
	}
	res, _ := c.Post(t, "/admin/schedules/key-rollover/daily/pause", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("pause: %d", res.StatusCode)
	}
	d = doc(t, c.GetBody(t, "/admin/schedules"))
	if v, _ := d.Find(tid("schedule-row") + `[data-node="daily"]`).Attr("data-paused"); v != "true" {
		t.Errorf("paused = %q", v)
	}
	res, body := c.Get(t, "/admin/schedules/preview?spec=*/15+*+*+*+*&tz=Europe/Paris")
	var p struct {
		Next []struct{ UTC string } `json:"next"`
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &p) != nil || len(p.Next) != 5 {
		t.Errorf("preview: %d %s", res.StatusCode, body)
	}
	if res, body := c.Get(t, "/admin/schedules/preview?spec=61+*+*+*+*"); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "error") {
		t.Errorf("bad spec: %d %s", res.StatusCode, body)
	}
	d = doc(t, c.GetBody(t, "/admin/schedules?spec=@daily&tz=UTC"))
	if d.Find(tid("preview-run")).Length() != 5 || d.Find(tid("zone-time")).Length() != 0 {
		t.Errorf("server-side preview: %d runs, %d zone times", d.Find(tid("preview-run")).Length(), d.Find(tid("zone-time")).Length())
	}
	// A spec in another zone is also shown in that zone: midnight there.
	d = doc(t, c.GetBody(t, "/admin/schedules?spec=@daily&tz=Asia/Tokyo"))
	if z := d.Find(tid("preview-run") + " " + tid("zone-time")).First().Text(); !strings.HasSuffix(z, "00:00 Asia/Tokyo") {
		t.Errorf("preview in the spec's zone: %q", z)
	}
}

func signToken(t *testing.T, env *uitest.Env, claims map[string]any) string {
	t.Helper()
	tok, _, err := jose.NewSigner(env.FD.Keysets()).Sign(context.Background(), jose.SignRequest{
		Keyset: "main", Alg: "ES256", Issuer: env.URL, Audience: []string{"flowd-api"}, Claims: claims, TTL: 0})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestDebugger(t *testing.T) {
	t.Parallel()
	env := uitest.Start(t)
	c := env.Login(t)
	now := time.Now().Unix()
	good := signToken(t, env, map[string]any{"exp": now + 600, "iat": now, "sub": "ada"})
	expired := signToken(t, env, map[string]any{"exp": now - 3600, "iat": now - 7200, "nbf": now - 7200, "sub": "ada"})
	tampered := good[:len(good)-6] + "AAAAAA"
	if tampered == good {
		tampered = good[:len(good)-6] + "BBBBBB"
	}
	tests := []struct {
		name, token, reason, state string
	}{
		{"valid", good, "", "active"},
		{"expired", expired, "token_expired", "active"},
		{"tampered", tampered, "bad_signature", "active"},
		{"garbage", "not-a-token", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := c.Post(t, "/admin/debugger", url.Values{"token": {tt.token}, "source": {"keyset"},
				"keyset": {"main"}, "algorithms": {"ES256 RS256"}, "issuer": {env.URL}, "audience": {"flowd-api"},
				"require_exp": {"true"}, "leeway": {"30s"}})
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			d := doc(t, body)
			if tt.name == "garbage" {
				if d.Find(tid("decode-error")).Length() != 1 {
					t.Error("no decode error")
				}
				return
			}
			if tt.reason == "" && d.Find(tid("verdict-valid")).Length() != 1 {
				t.Errorf("not valid: %s", d.Find(tid("verdict")).Text())
			}
			if got := d.Find(tid("reason")).Text(); got != tt.reason {
				t.Errorf("reason %q, want %q", got, tt.reason)
			}
			if got := d.Find(tid("signing-key-state")).Text(); got != tt.state {
				t.Errorf("key state %q", got)
			}
			if d.Find(tid("mark-exp")).Length() != 1 {
				t.Error("no exp mark")
			}
			if strings.Contains(body, tt.token) {
				t.Error("the token is echoed in the page")
			}
		})
	}
	if strings.Contains(env.Log.String(), good[:40]) {
		t.Error("a token reached the log")
	}
}

func TestKeysetOverlapWarning(t *testing.T) {
	t.Parallel()
	env := uitest.Start(t)
	c := env.Login(t)
	// retire_after 2h passes jose.rotate's own check (1h + 15m), but another
	// flow signs 2h tokens from the same keyset: 2h < 2h + 15m.
	flow := `{"schema":"flowd/v1","id":"short-overlap","name":"Short overlap","nodes":[
	  {"id":"tick","type":"schedule.cron","config":{"spec":"0 4 * * *","timezone":"UTC"},"x":0,"y":0},
	  {"id":"rotate","type":"jose.rotate","config":{"keyset":"main","retire_after":"2h","max_token_ttl":"1h","jwks_max_age":"15m"},"x":0,"y":0},
	  {"id":"start","type":"core.manual","x":0,"y":0},
	  {"id":"sign","type":"jose.sign","config":{"keyset":"main","alg":"ES256","ttl":"2h"},"x":0,"y":0}],
	  "wires":[{"from":"tick","port":"out","to":"rotate"},{"from":"start","port":"out","to":"sign"}]}`
	res, body := c.Post(t, "/admin/flows/import", url.Values{"doc": {flow}, "deploy": {"true"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("import: %d %s", res.StatusCode, body)
	}
	d := doc(t, c.GetBody(t, "/admin/keysets"))
	w := d.Find(`[data-keyset="main"] ` + tid("keyset-warning")).Text()
	if !strings.Contains(w, "retire_after 2h is shorter than the longest token lifetime (2h) plus the JWKS max-age (15m) = 2h15m") {
		t.Errorf("warning %q", w)
	}
	// Durations as people write them, everywhere on the page.
	if got := d.Find(`[data-keyset="main"]`).Text(); !strings.Contains(got, "retired keys stay published 2h") || strings.Contains(got, "m0s") {
		t.Errorf("keyset main shows durations as Go prints them: %q", got)
	}
	// The next rotation is the earliest of the two schedules that rotate main.
	want := "key-rollover/daily"
	var first [2]time.Time
	for _, sc := range env.FD.Scheduler().List(1) {
		switch sc.Flow {
		case "key-rollover":
			first[0] = sc.Next[0]
		case "short-overlap":
			first[1] = sc.Next[0]
		}
	}
	if first[1].Before(first[0]) {
		want = "short-overlap/tick"
	}
	if got := d.Find(`[data-keyset="main"] ` + tid("next-rotation")).Text(); !strings.Contains(got, want) {
		t.Errorf("next rotation %q, want by %s", got, want)
	}
}

// TestKeysetRotateNowOverlap: "Rotate now" uses the keyset's deployed
// overlap and refuses it when the keyset's tokens outlive it plus the JWKS
// max-age, naming the minimum and the keys whose tokens are at risk; with
// the force box ticked it rotates and says what will fail.
func TestKeysetRotateNowOverlap(t *testing.T) {
	t.Parallel()
	env := uitest.Start(t)
	c := env.Login(t)
	ctx := t.Context()
	flow := `{"schema":"flowd/v1","id":"short","name":"Short","nodes":[
	  {"id":"start","type":"core.manual","x":0,"y":0},
	  {"id":"rotate","type":"jose.rotate","config":{"keyset":"short","algs":["ES256"],"retire_after":"2h","max_token_ttl":"1h","jwks_max_age":"15m"},"x":0,"y":0},
	  {"id":"sign","type":"jose.sign","config":{"keyset":"short","alg":"ES256","ttl":"2h"},"x":0,"y":0}],
	  "wires":[{"from":"start","port":"out","to":"rotate"},{"from":"start","port":"out","to":"sign"}]}`
	if res, body := c.Post(t, "/admin/flows/import", url.Values{"doc": {flow}, "deploy": {"true"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("import: %d %s", res.StatusCode, body)
	}
	ks := env.FD.Keysets()
	if err := ks.Ensure(ctx, "short", "ES256"); err != nil {
		t.Fatal(err)
	}
	activeKid := func() string {
		info, err := ks.Get(ctx, "short")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range info.Keys {
			if k.State == jose.StateActive {
				return k.Kid
			}
		}
		return ""
	}
	old := activeKid()
	res, body := c.Post(t, "/admin/keysets/short/rotate", nil)
	flash := doc(t, body).Find(tid("flash")).Text()
	if res.StatusCode != http.StatusBadRequest || activeKid() != old {
		t.Fatalf("rotate with a 2h overlap for 2h tokens: %d, active %s -> %s: %s", res.StatusCode, old, activeKid(), flash)
	}
	for _, want := range []string{"Not rotated", "needs: its tokens live up to 2h and", "2h15m", old, "unknown_kid", "force"} {
		if !strings.Contains(flash, want) {
			t.Errorf("refusal %q does not mention %q", flash, want)
		}
	}
	if doc(t, c.GetBody(t, "/admin/keysets")).Find(`[data-keyset="short"] `+tid("rotate-force")).Length() != 1 {
		t.Error("no force box on a keyset with an overlap warning")
	}
	res, body = c.Post(t, "/admin/keysets/short/rotate", url.Values{"force": {"1"}})
	flash = doc(t, body).Find(tid("flash")).Text()
	if res.StatusCode != http.StatusOK || activeKid() == old || !strings.Contains(flash, "forced") || !strings.Contains(flash, old) {
		t.Fatalf("forced rotate: %d, active %s -> %s: %s", res.StatusCode, old, activeKid(), flash)
	}
	info, _ := ks.Get(ctx, "short")
	for _, k := range info.Keys {
		if k.Kid == old && k.RetireAt.Sub(k.Activated) < 0 {
			t.Errorf("old key %+v", k)
		}
		if k.Kid == old && (k.State != jose.StateRetired || k.RetireAt.Sub(info.Updated) != 2*time.Hour) {
			t.Errorf("old key %s %s until %v, want retired for the deployed 2h", k.Kid, k.State, k.RetireAt)
		}
	}
}
