package ui_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/flowd/flowd/audit"
	"github.com/flowd/flowd/ui/uitest"
)

// auditRows reads the audit page's rows: ids, and the page's links.
type auditPageRead struct {
	status        int
	ids, types    []string
	subjects      []string
	subjectLinks  map[string]string // subject -> href
	older, newest string
	errText       string
	empty         string
}

func readAudit(t *testing.T, c *uitest.Client, path string) auditPageRead {
	t.Helper()
	res, body := c.Get(t, path)
	d := doc(t, body)
	p := auditPageRead{status: res.StatusCode, subjectLinks: map[string]string{}}
	d.Find(tid("audit-row")).Each(func(_ int, s *goquery.Selection) {
		id, _ := s.Attr("data-id")
		typ, _ := s.Attr("data-type")
		subj, _ := s.Find(tid("audit-subject-cell")).Attr("data-subject")
		p.ids, p.types, p.subjects = append(p.ids, id), append(p.types, typ), append(p.subjects, subj)
		if href, ok := s.Find(tid("audit-subject-link")).Attr("href"); ok {
			p.subjectLinks[subj] = href
		}
	})
	p.older, _ = d.Find(tid("audit-older")).Attr("href")
	p.newest, _ = d.Find(tid("audit-newest")).Attr("href")
	p.errText = strings.TrimSpace(d.Find(tid("audit-error")).Text())
	p.empty = strings.TrimSpace(d.Find(tid("audit-empty")).Text())
	return p
}

// settled waits for the start-up's key events (the key-rollover flow's
// ensure run writes them in the background), so the log holds still
// while a test compares pages with it.
func settled(t *testing.T, env *uitest.Env) {
	t.Helper()
	info, err := env.FD.Keysets().Get(t.Context(), "main")
	if err != nil {
		t.Fatal(err)
	}
	for range 500 {
		evs, _, err := env.FD.Audit().List(t.Context(), audit.Query{Type: audit.KeyGenerated, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) >= len(info.Keys) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the start-up key events did not arrive")
}

func eventIDs(evs []audit.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// TestAuditPageFilters: each filter of the page lists exactly what
// audit.List answers for the same query (the API's code), newest first,
// and bad filters are answered 400 with the problem named.
func TestAuditPageFilters(t *testing.T) {
	t.Parallel()
	env := uitest.Start(t)
	settled(t, env)
	c := env.Login(t)
	if res, body := env.API(t, "POST", "/keysets/main/rotate", []byte(`{"retire_after": "48h", "force": true}`)); res.StatusCode != 200 {
		t.Fatalf("rotate: %d %s", res.StatusCode, body)
	}
	for _, call := range []struct{ method, path, body string }{
		{"POST", "/clients", `{"id": "billing", "scopes": ["read"]}`},
		{"POST", "/clients", `{"id": "gone", "scopes": ["read"]}`},
		{"DELETE", "/clients/gone", ``},
		{"POST", "/users", `{"username": "ada", "password": "a long enough password 1"}`},
		{"POST", "/users/ada/signout", ``},
	} {
		if res, body := env.API(t, call.method, call.path, []byte(call.body)); res.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", call.method, call.path, res.StatusCode, body)
		}
	}
	log := env.FD.Audit()
	list := func(q audit.Query) []string {
		t.Helper()
		q.Limit = 50
		evs, _, err := log.List(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		return eventIDs(evs)
	}
	future := time.Now().UTC().Add(2 * time.Hour)
	tests := []struct {
		name  string
		query string
		want  audit.Query
		check func(t *testing.T, p auditPageRead)
	}{
		{"everything", "", audit.Query{}, nil},
		{"by type", "?type=key.retired", audit.Query{Type: audit.KeyRetired}, func(t *testing.T, p auditPageRead) {
			if len(p.ids) == 0 || slices.ContainsFunc(p.types, func(s string) bool { return s != audit.KeyRetired }) {
				t.Errorf("types %v", p.types)
			}
			for _, s := range p.subjects {
				if p.subjectLinks[s] != "/admin/keysets#keyset-main" {
					t.Errorf("key %s links to %q", s, p.subjectLinks[s])
				}
			}
		}},
		{"by subject prefix", "?subject=main/", audit.Query{Subject: "main/"}, func(t *testing.T, p auditPageRead) {
			if len(p.ids) == 0 || slices.ContainsFunc(p.subjects, func(s string) bool { return !strings.HasPrefix(s, "main/") }) {
				t.Errorf("subjects %v", p.subjects)
			}
		}},
		{"a client that exists and one that is gone", "?subject=billing", audit.Query{Subject: "billing"}, func(t *testing.T, p auditPageRead) {
			if p.subjectLinks["billing"] != "/admin/clients/billing/edit" {
				t.Errorf("billing links to %q", p.subjectLinks["billing"])
			}
			gone := readAudit(t, c, "/admin/audit?subject=gone")
			if len(gone.ids) != 2 || len(gone.subjectLinks) != 0 {
				t.Errorf("removed client: %d events, links %v", len(gone.ids), gone.subjectLinks)
			}
		}},
		{"a person signed out, by its type", "?type=user.signed_out", audit.Query{Type: audit.UserSignedOut}, func(t *testing.T, p auditPageRead) {
			if len(p.ids) != 1 || p.subjectLinks["ada"] != "/admin/users" {
				t.Errorf("%d events, links %v; want ada's sign-out linking to the users page", len(p.ids), p.subjectLinks)
			}
			// The type menu offers every type, the session events included.
			_, body := c.Get(t, "/admin/audit")
			var offered []string
			doc(t, body).Find(tid("audit-type") + " option").Each(func(_ int, o *goquery.Selection) {
				if v, _ := o.Attr("value"); v != "" {
					offered = append(offered, v)
				}
			})
			if !slices.Equal(offered, audit.Types()) || !slices.Contains(offered, "user.session_ended") {
				t.Errorf("type menu %v, want %v", offered, audit.Types())
			}
		}},
		{"last hour", "?range=1h", audit.Query{Since: time.Now().Add(-time.Hour)}, nil},
		{"from a date-time field", "?since=" + url.QueryEscape(future.Format("2006-01-02T15:04")), audit.Query{Since: future.Truncate(time.Minute)},
			func(t *testing.T, p auditPageRead) {
				if p.empty != "No events match these filters. Show every event." {
					t.Errorf("empty state %q", p.empty)
				}
			}},
		{"until a date-time field", "?until=2020-01-01T00:00", audit.Query{Until: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := readAudit(t, c, "/admin/audit"+tt.query)
			if p.status != http.StatusOK {
				t.Fatalf("status %d (%s)", p.status, p.errText)
			}
			if want := list(tt.want); !slices.Equal(p.ids, want) {
				t.Errorf("page lists %v, audit.List %v", p.ids, want)
			}
			if !slices.IsSortedFunc(p.ids, func(a, b string) int { return strings.Compare(b, a) }) {
				t.Errorf("not newest first: %v", p.ids)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
	bad := []struct{ query, want string }{
		{"?type=key.lost", `unknown type "key.lost"`},
		{"?since=yesterday", "since must be an RFC 3339 time"},
		{"?range=2y", "range must be one of 1h, 24h, 7d, 30d"},
		{"?limit=0", "limit must be a positive integer"},
		{"?limit=5000", "limit must be 1 to 1000"},
		{"?before=../../x", "before must be an event id"},
		{"?colour=red", `unknown query parameter "colour"`},
	}
	for _, tt := range bad {
		t.Run("bad "+tt.query, func(t *testing.T) {
			p := readAudit(t, c, "/admin/audit"+tt.query)
			if p.status != http.StatusBadRequest || !strings.Contains(p.errText, tt.want) || len(p.ids) != 0 {
				t.Errorf("%d %q (rows %d), want 400 naming %q", p.status, p.errText, len(p.ids), tt.want)
			}
		})
	}
}

// TestAuditPagePaging: pages of three through "Older events" list every
// event once, newest first, as audit.List does; later pages link back to
// the newest.
func TestAuditPagePaging(t *testing.T) {
	t.Parallel()
	env := uitest.Start(t)
	settled(t, env)
	c := env.Login(t)
	for _, id := range []string{"a", "b", "c", "d"} {
		if res, body := env.API(t, "POST", "/clients", []byte(`{"id": "`+id+`", "scopes": ["read"]}`)); res.StatusCode >= 300 {
			t.Fatalf("add client: %d %s", res.StatusCode, body)
		}
	}
	all, _, err := env.FD.Audit().List(t.Context(), audit.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	path := "/admin/audit?limit=3"
	for page := 0; path != ""; page++ {
		if page > len(all) {
			t.Fatal("paging does not end")
		}
		p := readAudit(t, c, path)
		if p.status != 200 || len(p.ids) == 0 || len(p.ids) > 3 {
			t.Fatalf("page %d: %d, %d rows", page, p.status, len(p.ids))
		}
		if (page > 0) != (p.newest == "/admin/audit?limit=3") {
			t.Errorf("page %d: newest link %q", page, p.newest)
		}
		seen = append(seen, p.ids...)
		path = p.older
	}
	if want := eventIDs(all); !slices.Equal(seen, want) {
		t.Errorf("paged %v\nwant %v", seen, want)
	}
}
