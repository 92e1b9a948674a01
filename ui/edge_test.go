package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/ui/uitest"
)

// downStore is the bbolt store whose flow records cannot be reached while
// down is set (sessions, keys and the rest still answer), as a cluster
// store's are while it has no quorum.
type downStore struct {
	*store.Bolt
	down   atomic.Bool
	kvDown atomic.Bool // the KV namespaces too (sessions)
}

func (s *downStore) GetKV(ctx context.Context, ns, key string) ([]byte, error) {
	if s.kvDown.Load() {
		return nil, store.ErrUnavailable
	}
	return s.Bolt.GetKV(ctx, ns, key)
}

func (s *downStore) GetFlow(ctx context.Context, id string) (store.FlowRecord, error) {
	if s.down.Load() {
		return store.FlowRecord{}, store.ErrUnavailable
	}
	return s.Bolt.GetFlow(ctx, id)
}

func (s *downStore) ListFlows(ctx context.Context) ([]store.FlowRecord, error) {
	if s.down.Load() {
		return nil, store.ErrUnavailable
	}
	return s.Bolt.ListFlows(ctx)
}

func (s *downStore) PutFlow(ctx context.Context, id string, doc []byte, ifRev int64) (store.FlowRecord, error) {
	if s.down.Load() {
		return store.FlowRecord{}, store.ErrUnavailable
	}
	return s.Bolt.PutFlow(ctx, id, doc, ifRev)
}

// TestSameErrorEverySurface sends the same error through the three admin
// surfaces, with real requests: the JSON API with its token, the editor
// (its page, its views, and the API calls its scripts make with the
// session) and the HTML pages. Each answers with the one error table's
// status (and Retry-After for a store that cannot be reached).
func TestSameErrorEverySurface(t *testing.T) {
	var st *downStore
	env := uitest.Start(t, func(o *flowd.Options) {
		st = &downStore{Bolt: o.Store.(*store.Bolt)}
		o.Store = st
	})
	c := env.Login(t)
	doc, _, err := env.FD.App().Export(t.Context(), "hello")
	if err != nil {
		t.Fatal(err)
	}
	big := `{"schema":"flowd/v1","id":"hello","name":"` + strings.Repeat("a", engine.MaxFlowBytes) + `"}`

	type req struct {
		surface, method, path, body string
		header                      map[string]string
		form                        url.Values // a page's form post (csrf added)
	}
	api := func(method, path, body string, h ...string) req {
		return req{surface: "api", method: method, path: path, body: body, header: pairs(h)}
	}
	editor := func(method, path, body string, h ...string) req {
		return req{surface: "editor", method: method, path: path, body: body, header: pairs(h)}
	}
	page := func(method, path string, form url.Values) req {
		return req{surface: "page", method: method, path: path, form: form}
	}
	send := func(t *testing.T, r req) *http.Response {
		t.Helper()
		var hr *http.Request
		if r.form != nil {
			r.form.Set("csrf", c.CSRF)
			hr, _ = http.NewRequest(r.method, env.URL+r.path, strings.NewReader(r.form.Encode()))
			hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			hr, _ = http.NewRequest(r.method, env.URL+r.path, strings.NewReader(r.body))
		}
		for k, v := range r.header {
			hr.Header.Set(k, v)
		}
		if r.surface == "api" {
			hr.Header.Set("Authorization", "Bearer "+uitest.Token)
			res, err := http.DefaultClient.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res
		}
		if r.method != http.MethodGet {
			hr.Header.Set("X-CSRF-Token", c.CSRF)
		}
		res, _ := c.Do(t, hr)
		return res
	}

	for _, tc := range []struct {
		name   string
		down   bool // the store's flow records cannot be reached
		kvDown bool // nor its KV records (the admin sessions)
		status int
		retry  string
		reqs   []req
	}{
		{"stale revision", false, false, http.StatusPreconditionFailed, "", []req{
			api("PUT", "/admin/api/flows/hello", string(doc), "If-Match", `"99"`),
			api("PUT", "/admin/api/flows/hello", string(doc), "If-Match", `"stale-etag"`),
			editor("PUT", "/admin/api/flows/hello", string(doc), "If-Match", `"99"`),
			editor("POST", "/admin/api/flows/hello/deploy", string(doc), "If-Match", `"99"`),
			page("POST", "/admin/flows", url.Values{"id": {"hello"}}),
		}},
		{"malformed If-Match", false, false, http.StatusBadRequest, "", []req{
			api("PUT", "/admin/api/flows/hello", string(doc), "If-Match", `stale-etag`),
			editor("PUT", "/admin/api/flows/hello", string(doc), "If-Match", `stale-etag`),
		}},
		{"unknown flow", false, false, http.StatusNotFound, "", []req{
			api("GET", "/admin/api/flows/nope", ""),
			editor("GET", "/admin/flows/nope/edit", ""),
			editor("GET", "/admin/api/flows/nope/events", ""),
			page("POST", "/admin/flows/nope/deploy", url.Values{}),
		}},
		{"invalid flow", false, false, http.StatusUnprocessableEntity, "", []req{
			api("PUT", "/admin/api/flows/hello", `{"schema":`),
			editor("POST", "/admin/api/validate", `{"schema":`),
			page("POST", "/admin/flows/import", url.Values{"doc": {`{"schema":`}}),
		}},
		{"too large", false, false, http.StatusRequestEntityTooLarge, "", []req{
			api("PUT", "/admin/api/flows/hello", big),
			editor("PUT", "/admin/api/flows/hello", big),
			editor("POST", "/admin/editor/form", `{"flow":`+big+`,"node":"`+strings.Repeat("x", 4096)+`"}`),
			page("POST", "/admin/flows/import", url.Values{"doc": {big}}),
		}},
		{"store unavailable", true, false, http.StatusServiceUnavailable, "2", []req{
			api("GET", "/admin/api/flows", ""),
			api("PUT", "/admin/api/flows/hello", string(doc)),
			editor("GET", "/admin/flows/hello/edit", ""),
			editor("GET", "/admin/api/flows/hello/state", ""),
			page("GET", "/admin/flows", nil),
			page("POST", "/admin/flows/hello/deploy", url.Values{}),
			page("POST", "/admin/flows", url.Values{"id": {"fresh"}}),
		}},
		// A good session cookie is not sent to the login page because the
		// store cannot say whether it is good.
		{"sessions unavailable", false, true, http.StatusServiceUnavailable, "2", []req{
			editor("GET", "/admin/flows/hello/edit", ""),
			editor("GET", "/admin/api/flows", ""),
			editor("PUT", "/admin/api/flows/hello", string(doc)),
			page("GET", "/admin/flows", nil),
			page("POST", "/admin/flows/hello/deploy", url.Values{}),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st.down.Store(tc.down)
			st.kvDown.Store(tc.kvDown)
			defer st.down.Store(false)
			defer st.kvDown.Store(false)
			for _, r := range tc.reqs {
				res := send(t, r)
				if res.StatusCode != tc.status || res.Header.Get("Retry-After") != tc.retry {
					t.Errorf("%s %s %s: %d Retry-After %q, want %d %q", r.surface, r.method, r.path,
						res.StatusCode, res.Header.Get("Retry-After"), tc.status, tc.retry)
				}
			}
		})
	}
	// A create that finds the flow says so, on the page and in the API.
	res, body := c.Post(t, "/admin/flows", url.Values{"id": {"hello"}})
	if res.StatusCode != http.StatusPreconditionFailed || !strings.Contains(body, `A flow &#34;hello&#34; exists already: choose another id.`) {
		t.Errorf("new flow over an existing one: %d\n%s", res.StatusCode, body)
	}
	res, raw := env.API(t, "POST", "/flows", doc)
	if res.StatusCode != http.StatusPreconditionFailed || !strings.Contains(string(raw), `a flow \"hello\" exists already`) {
		t.Errorf("POST /flows over an existing one: %d %s", res.StatusCode, raw)
	}
	if strings.Contains(env.Log.String(), "admin UI error") || strings.Contains(env.Log.String(), "admin error") {
		t.Errorf("an error was answered as a 500:\n%s", env.Log)
	}
}

func pairs(kv []string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}
