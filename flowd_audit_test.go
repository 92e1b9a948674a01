package flowd_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/audit"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/blocks/oidc"
	"github.com/flowd/flowd/store"
)

type auditPage struct {
	Events []audit.Event `json:"events"`
	Next   string        `json:"next"`
}

func (e *metricsEnv) audit(query string) auditPage {
	e.t.Helper()
	w := e.do("GET", "/admin/api/audit"+query, map[string]string{"Authorization": "Bearer test-admin-token"}, "")
	if w.Code != 200 {
		e.t.Fatalf("GET audit%s: %d %s", query, w.Code, w.Body)
	}
	var p auditPage
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// brief renders events as "type subject actor why" lines, oldest first.
func brief(evs []audit.Event) []string {
	out := make([]string, 0, len(evs))
	for _, ev := range slices.Backward(evs) {
		out = append(out, strings.Join([]string{ev.Type, ev.Subject, ev.Actor, ev.Why}, " | "))
	}
	return out
}

// TestAuditLogFromRealActions: a rotation and a revoke through the API, a
// flow undeployed and deployed again, a failed and a good admin sign-in
// each leave exactly their events, with who did it, and the API filters
// and pages them.
func TestAuditLogFromRealActions(t *testing.T) {
	e := newMetricsEnv(t)
	info, err := e.fd.Keysets().Get(t.Context(), "main")
	if err != nil {
		t.Fatal(err)
	}
	var active, next []jose.KeyInfo
	for _, k := range info.Keys {
		switch k.State {
		case jose.StateActive:
			active = append(active, k)
		case jose.StateNext:
			next = append(next, k)
		}
	}
	// The key-rollover flow's start-up trigger creates the keys (an active
	// and a next key per alg) on its own goroutine: wait for its events.
	var startup []audit.Event
	eventually(t, "the start-up key events", func() bool {
		startup = e.audit("?limit=1000").Events
		n := 0
		for _, ev := range startup {
			if ev.Type == audit.KeyGenerated && ev.Actor == "flow key-rollover/ensure" {
				n++
			}
		}
		return n == len(active)+len(next)
	})
	for _, ev := range startup {
		if ev.Actor != "system" && ev.Actor != "flow key-rollover/ensure" {
			t.Errorf("start-up event %+v: want actor system or the ensure node", ev)
		}
	}
	admin := map[string]string{"Authorization": "Bearer test-admin-token", "Content-Type": "application/json"}
	rw := e.do("POST", "/admin/api/keysets/main/rotate", admin, `{"alg": "`+active[0].Alg+`", "retire_after": "48h", "force": true}`)
	if rw.Code != 200 {
		t.Fatalf("rotate: %d %s", rw.Code, rw.Body)
	}
	var rotated struct {
		Keyset jose.KeysetInfo `json:"keyset"`
	}
	if err := json.Unmarshal(rw.Body.Bytes(), &rotated); err != nil {
		t.Fatal(err)
	}
	if w := e.do("POST", "/admin/api/keysets/main/keys/"+active[0].Kid+"/revoke", admin, `{}`); w.Code != 200 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if w := e.do("POST", "/admin/api/flows/hello/undeploy", admin, ``); w.Code != 200 {
		t.Fatalf("undeploy: %d %s", w.Code, w.Body)
	}
	if w := e.do("POST", "/admin/api/flows/hello/deploy", admin, ``); w.Code != 200 {
		t.Fatalf("deploy: %d %s", w.Code, w.Body)
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/admin/api/clients", `{"id": "billing", "scopes": ["read"]}`},
		{"DELETE", "/admin/api/clients/billing", ``},
		{"POST", "/admin/api/users", `{"username": "alice", "password": "a long enough password 1"}`},
		{"DELETE", "/admin/api/users/alice", ``},
	} {
		if w := e.do(c.method, c.path, admin, c.body); w.Code >= 300 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, w.Code, w.Body)
		}
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if w := e.do("POST", "/admin/login", form, url.Values{"password": {"nope"}}.Encode()); w.Code != 401 {
		t.Fatalf("bad sign-in: %d", w.Code)
	}
	if w := e.do("POST", "/admin/login", form, url.Values{"password": {"correct horse battery"}}.Encode()); w.Code != 303 {
		t.Fatalf("sign-in: %d %s", w.Code, w.Body)
	}

	all := e.audit("?limit=1000").Events
	got := brief(all[:len(all)-len(startup)])
	var newNext string
	after, _ := e.fd.Keysets().Get(t.Context(), "main")
	for _, k := range after.Keys {
		if k.State == jose.StateNext && k.Alg == active[0].Alg {
			newNext = k.Kid
		}
	}
	var activated string
	for _, k := range next {
		if k.Alg == active[0].Alg {
			activated = k.Kid
		}
	}
	want := []string{
		"key.retired | main/" + active[0].Kid + " | api-token | " + retiredWhy(rotated.Keyset, active[0].Kid),
		"key.activated | main/" + activated + " | api-token | was next",
		"key.generated | main/" + newNext + " | api-token | new " + active[0].Alg + " key, next",
		"key.revoked | main/" + active[0].Kid + " | api-token | ",
		"flow.undeployed | hello | api-token | ",
		"flow.deployed | hello | api-token | " + deployedWhy(all),
		"client.added | billing | api-token | ",
		"client.removed | billing | api-token | ",
		"user.added | alice | api-token | ",
		"user.removed | alice | api-token | ",
		"admin.sign_in_failed | admin | admin-ui | wrong password",
		"admin.sign_in | admin | admin-ui | ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Filters and paging.
	revoked := e.audit("?type=key.revoked")
	if len(revoked.Events) != 1 || revoked.Events[0].Subject != "main/"+active[0].Kid || revoked.Next != "" {
		t.Errorf("type filter: %+v", revoked)
	}
	keys := e.audit("?subject=main/")
	for _, ev := range keys.Events {
		if !strings.HasPrefix(ev.Subject, "main/") {
			t.Errorf("subject prefix filter let through %+v", ev)
		}
	}
	p1 := e.audit("?limit=3")
	p2 := e.audit("?limit=3&before=" + p1.Next)
	if len(p1.Events) != 3 || len(p2.Events) != 3 || p2.Events[0].ID >= p1.Events[2].ID || p1.Events[0].ID != all[0].ID {
		t.Errorf("paging: %v then %v", brief(p1.Events), brief(p2.Events))
	}
	for _, q := range []string{"?type=nope", "?limit=0", "?limit=5000", "?before=zz", "?since=yesterday", "?secret=1"} {
		if w := e.do("GET", "/admin/api/audit"+q, admin, ""); w.Code != 400 {
			t.Errorf("GET audit%s: %d, want 400", q, w.Code)
		}
	}
	// No event holds a token or the password.
	raw := e.do("GET", "/admin/api/audit?limit=1000", admin, "").Body.String()
	for _, secret := range []string{"correct horse", "nope", "test-admin-token", "eyJ", "long enough password"} {
		if strings.Contains(raw, secret) {
			t.Errorf("the audit log holds %q", secret)
		}
	}
}

func retiredWhy(info jose.KeysetInfo, kid string) string {
	for _, k := range info.Keys {
		if k.Kid == kid {
			return "rotated out, published until " + k.RetireAt.UTC().Format("2006-01-02T15:04:05Z07:00")
		}
	}
	return "?"
}

// deployedWhy is the why of the newest flow.deployed event: its version
// number comes from the store.
func deployedWhy(evs []audit.Event) string {
	for _, ev := range evs {
		if ev.Type == audit.FlowDeployed && ev.Subject == "hello" {
			return ev.Why
		}
	}
	return "?"
}

// TestAuditSessionCapAndSignOut: a person's sign-in past the cap of 100
// provider sessions ends their oldest session, and the audit log says so
// in exactly one user.session_ended event naming that session (a prefix
// of the SHA-256 of its cookie), the reason and the node that did it; an
// admin's sign-out everywhere is a user.signed_out with the count, a
// consent withdrawn a user.consent_withdrawn, a password an admin sets on
// the Users page a user.password_set with the sessions it ended (their
// browsers sign in again, their refresh tokens fail). No event holds a
// cookie, code, token, password or hash, or the session's whole store
// key.
func TestAuditSessionCapAndSignOut(t *testing.T) {
	var st store.Store
	e := newEnvWith(t, func(o *flowd.Options) { st = o.Store })
	ctx := t.Context()
	const redirect = "https://app.test/cb"
	const secret = "web-secret-0123456789abcdef"
	ada, err := e.fd.Users().Add(ctx, oidc.User{Username: "ada"}, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.fd.Clients().Add(ctx, oauth.Client{ID: "web", Scopes: []string{"openid"}, RedirectURIs: []string{redirect},
		GrantTypes: []string{"authorization_code", "refresh_token"}, FirstParty: true}, secret); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.fd.Clients().Add(ctx, oauth.Client{ID: "app", Scopes: []string{"openid"}, RedirectURIs: []string{redirect},
		GrantTypes: []string{"authorization_code", "refresh_token"}}, secret); err != nil {
		t.Fatal(err)
	}
	// signIn signs ada in to client in a fresh browser (allowing what it
	// asks) and exchanges the code: the browser's cookies and every value
	// the token endpoint answered.
	signIn := func(client string) (map[string]string, []string) {
		t.Helper()
		params := url.Values{"client_id": {client}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid"},
			"state": {"st"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		cookies := map[string]string{}
		resp := serve(e.h, "GET", "/oauth/authorize?"+params.Encode(), nil, cookies, [2]string{})
		page, _ := io.ReadAll(resp.Body)
		form := url.Values{"username": {"ada"}, "password": {"correct horse battery staple"}}
		for _, m := range loginHiddenRE.FindAllStringSubmatch(string(page), -1) {
			form.Set(m[1], html.UnescapeString(m[2]))
		}
		if resp.StatusCode != 200 || form.Get("tx") == "" {
			t.Fatalf("authorize: %d, no sign-in form:\n%s", resp.StatusCode, page)
		}
		resp = serve(e.h, "POST", "/oauth/authorize", form, cookies, [2]string{})
		if resp.StatusCode == 200 { // the consent question
			page, _ := io.ReadAll(resp.Body)
			form = url.Values{"decision": {"allow"}}
			for _, m := range loginHiddenRE.FindAllStringSubmatch(string(page), -1) {
				form.Set(m[1], html.UnescapeString(m[2]))
			}
			if !strings.Contains(string(page), "consent-form") || form.Get("csrf") == "" {
				t.Fatalf("after the sign-in: 200 without a consent form:\n%s", page)
			}
			resp = serve(e.h, "POST", "/oauth/consent", form, cookies, [2]string{})
		}
		loc, err := url.Parse(resp.Header.Get("Location"))
		code := ""
		if err == nil {
			code = loc.Query().Get("code")
		}
		if resp.StatusCode != 302 || code == "" || cookies["flowd_session"] == "" {
			t.Fatalf("sign-in: %d Location %q cookies %v", resp.StatusCode, resp.Header.Get("Location"), cookies)
		}
		form = url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
			"code_verifier": {"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"}}
		resp = serve(e.h, "POST", "/oauth/token", form, nil, [2]string{client, secret})
		var answer map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || resp.StatusCode != 200 {
			t.Fatalf("token: %d %v %v", resp.StatusCode, answer, err)
		}
		values := []string{code}
		for _, name := range []string{"access_token", "id_token", "refresh_token"} {
			v, _ := answer[name].(string)
			if v == "" {
				t.Fatalf("token answer without %s: %v", name, answer)
			}
			values = append(values, v)
		}
		return cookies, values
	}
	cookiesA, tokensA := signIn("web")
	sumA := sha256.Sum256([]byte(cookiesA["flowd_session"]))
	keyA := hex.EncodeToString(sumA[:])

	// Fill ada's session index to the cap with entries that outlive A's
	// and name no session (as sessions that logged out leave them): the
	// next sign-in must end A, and only A.
	err = st.UpdateKV(ctx, "oidc_user_sessions", ada.Sub, func(old []byte) ([]byte, error) {
		var idx struct {
			Sessions []map[string]any `json:"sessions"`
			Purge    int64            `json:"purge"`
		}
		if err := json.Unmarshal(old, &idx); err != nil || len(idx.Sessions) != 1 || idx.Sessions[0]["key"] != keyA {
			return nil, fmt.Errorf("ada's index after one sign-in: %s (%v)", old, err)
		}
		later := int64(idx.Sessions[0]["expires"].(float64)) + 3600
		for i := range 99 {
			sum := sha256.Sum256(fmt.Appendf(nil, "gone-%d", i))
			idx.Sessions = append(idx.Sessions, map[string]any{"key": hex.EncodeToString(sum[:]), "expires": later})
		}
		idx.Purge = later
		return json.Marshal(idx)
	})
	if err != nil {
		t.Fatal(err)
	}
	before := len(e.audit("?limit=1000").Events)
	cookiesB, tokensB := signIn("web")

	all := e.audit("?limit=1000").Events
	wantWhy := fmt.Sprintf("session_cap: session %s, signed in ", keyA[:16])
	got := brief(all[:len(all)-before])
	if len(got) != 1 || !strings.HasPrefix(got[0], "user.session_ended | ada | flow authorize/login | "+wantWhy) {
		t.Fatalf("events of the sign-in past the cap:\n%s\nwant one user.session_ended | ada | flow authorize/login | %s<time>",
			strings.Join(got, "\n"), wantWhy)
	}
	if signedIn, err := time.Parse(time.RFC3339, strings.TrimPrefix(all[0].Why, wantWhy)); err != nil ||
		signedIn.After(all[0].Time) || all[0].Time.Sub(signedIn) > time.Hour {
		t.Errorf("why %q: the sign-in time of A, before the event at %s", all[0].Why, all[0].Time)
	}
	// A is signed out: its browser gets the sign-in form again.
	params := url.Values{"client_id": {"web"}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	if resp := serve(e.h, "GET", "/oauth/authorize?"+params.Encode(), nil, cookiesA, [2]string{}); resp.StatusCode != 200 {
		t.Errorf("browser A after the cap: %d, want the sign-in form", resp.StatusCode)
	}

	admin := map[string]string{"Authorization": "Bearer test-admin-token"}
	if w := e.do("POST", "/admin/api/users/ada/signout", admin, ""); w.Code != 200 {
		t.Fatalf("sign out everywhere: %d %s", w.Code, w.Body)
	}
	if last := brief(e.audit("?limit=1").Events); len(last) != 1 || last[0] != "user.signed_out | ada | api-token | signed_out: 1 session ended" {
		t.Errorf("after the admin's sign-out everywhere: %v", last)
	}
	cookiesC, tokensC := signIn("app")
	if w := e.do("DELETE", "/admin/api/users/ada/consents/app", admin, ""); w.Code != 200 {
		t.Fatalf("withdraw consent: %d %s", w.Code, w.Body)
	}
	if last := brief(e.audit("?limit=1").Events); len(last) != 1 ||
		last[0] != "user.consent_withdrawn | ada | api-token | consent_withdrawn: client app, 1 grant ended" {
		t.Errorf("after the consent withdrawn: %v", last)
	}
	filtered := e.audit("?type=user.session_ended&subject=ada")
	if len(filtered.Events) != 1 || filtered.Events[0].ID != all[0].ID {
		t.Errorf("filter by the new type: %v", brief(filtered.Events))
	}

	// An admin sets ada's password on the Users page: her two open
	// sessions (C, and D signed in now) end, D's refresh token with them,
	// and the log has one user.password_set with the count.
	cookiesD, tokensD := signIn("web")
	const newPassword = "a brand new password 42"
	uiCookies := map[string]string{}
	if resp := serve(e.h, "POST", "/admin/login", url.Values{"password": {"correct horse battery"}}, uiCookies, [2]string{}); resp.StatusCode != 303 {
		t.Fatalf("admin sign-in: %d", resp.StatusCode)
	}
	page, _ := io.ReadAll(serve(e.h, "GET", "/admin/users", nil, uiCookies, [2]string{}).Body)
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if csrf == nil {
		t.Fatalf("no CSRF token on the users page:\n%s", page)
	}
	resp := serve(e.h, "POST", "/admin/users/ada/password", url.Values{"csrf": {string(csrf[1])}, "password": {newPassword}}, uiCookies, [2]string{})
	page, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Set a new password for ada and signed them out everywhere: 2 sessions ended") {
		t.Fatalf("password reset: %d\n%s", resp.StatusCode, page)
	}
	if last := brief(e.audit("?limit=1").Events); len(last) != 1 || last[0] != "user.password_set | ada | admin-ui | password_set: 2 sessions ended" {
		t.Errorf("after the password reset: %v", last)
	}
	for name, c := range map[string]map[string]string{"C": cookiesC, "D": cookiesD} {
		if resp := serve(e.h, "GET", "/oauth/authorize?"+params.Encode(), nil, c, [2]string{}); resp.StatusCode != 200 {
			t.Errorf("browser %s after the reset: %d, want the sign-in form", name, resp.StatusCode)
		}
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokensD[3]}}
	if resp := serve(e.h, "POST", "/oauth/token", refresh, nil, [2]string{"web", secret}); resp.StatusCode != 400 {
		t.Errorf("D's refresh token after the reset: %d, want 400", resp.StatusCode)
	}

	// The same through the admin API: PUT .../password.
	const apiPassword = "set through the API 77"
	w := e.do("PUT", "/admin/api/users/ADA/password", admin, `{"password": "`+apiPassword+`"}`)
	var reset struct {
		User     string
		Sessions *int
	}
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &reset) != nil || reset.User != "ada" || reset.Sessions == nil || *reset.Sessions != 0 {
		t.Fatalf("PUT password: %d %s", w.Code, w.Body)
	}
	if last := brief(e.audit("?limit=1").Events); len(last) != 1 || last[0] != "user.password_set | ada | api-token | password_set: 0 sessions ended" {
		t.Errorf("after the API's password reset: %v", last)
	}
	if _, err := e.fd.Users().Authenticate(t.Context(), "ada", apiPassword); err != nil {
		t.Errorf("the API's password does not sign in: %v", err)
	}
	for _, bad := range []struct{ path, body, code string }{
		{"/admin/api/users/ada/password", `{"password": "short"}`, `"code": "bad_user"`},
		{"/admin/api/users/nobody/password", `{"password": "long enough password"}`, `"code": "no_user"`},
		{"/admin/api/users/ada/password", `{"pass": "long enough password"}`, `"code": "bad_request"`},
	} {
		if w := e.do("PUT", bad.path, admin, bad.body); w.Code < 400 || w.Code >= 500 || !strings.Contains(w.Body.String(), bad.code) {
			t.Errorf("PUT %s %s: %d %s", bad.path, bad.body, w.Code, w.Body)
		}
	}
	if w := e.do("PUT", "/admin/api/users/ada/password", nil, `{"password": "long enough password"}`); w.Code != 401 {
		t.Errorf("PUT password without the token: %d", w.Code)
	}

	raw := e.do("GET", "/admin/api/audit?limit=1000", admin, "").Body.String()
	secrets := slices.Concat([]string{keyA, "correct horse", newPassword, apiPassword, "argon2id"}, tokensA, tokensB, tokensC, tokensD)
	for _, c := range []map[string]string{cookiesA, cookiesB, cookiesC, cookiesD, uiCookies} {
		for _, v := range c {
			secrets = append(secrets, v)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(raw, s) {
			t.Errorf("the audit log holds %q", s)
		}
	}
}

// TestAuditLongIdentifiers: a person whose username is the longest
// allowed (128 characters, no '.' or '@' to break it up) and a client
// whose id is too are audited like any other, each event found by its
// subject (on the old code every one was refused as token-like and only
// logged).
func TestAuditLongIdentifiers(t *testing.T) {
	e := newMetricsEnv(t)
	admin := map[string]string{"Authorization": "Bearer test-admin-token"}
	username := "grace-" + strings.Repeat("hopper_", 18)[:122]
	clientID := "billing-service-" + strings.Repeat("0123456789abcdef", 7)[:112]
	if len(username) != 128 || len(clientID) != 128 {
		t.Fatalf("lengths %d %d", len(username), len(clientID))
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/admin/api/users", `{"username": "` + username + `", "password": "a long enough password 1"}`},
		{"POST", "/admin/api/users/" + username + "/signout", ``},
		{"DELETE", "/admin/api/users/" + username, ``},
		{"POST", "/admin/api/clients", `{"id": "` + clientID + `", "scopes": ["read"]}`},
		{"DELETE", "/admin/api/clients/" + clientID, ``},
	} {
		if w := e.do(c.method, c.path, admin, c.body); w.Code >= 300 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, w.Code, w.Body)
		}
	}
	for _, tc := range []struct {
		subject string
		want    []string
	}{
		{username, []string{
			"user.added | " + username + " | api-token | ",
			"user.signed_out | " + username + " | api-token | signed_out: 0 sessions ended",
			"user.removed | " + username + " | api-token | ",
		}},
		{clientID, []string{
			"client.added | " + clientID + " | api-token | ",
			"client.removed | " + clientID + " | api-token | ",
		}},
	} {
		if got := brief(e.audit("?subject=" + url.QueryEscape(tc.subject)).Events); !slices.Equal(got, tc.want) {
			t.Errorf("events of %s:\n%s\nwant\n%s", tc.subject, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}
