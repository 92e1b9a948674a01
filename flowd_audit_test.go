package flowd_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/flowd/flowd/audit"
	"github.com/flowd/flowd/blocks/jose"
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
