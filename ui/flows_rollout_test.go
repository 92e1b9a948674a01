package ui_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/chromedp/chromedp"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
	"github.com/flowd/flowd/ui/uitest"
)

// TestFlowsDeploySaysWhereItRuns: on a cluster where a node does not
// apply the deploy, the flows page's deploy and import-and-deploy (and
// the versions page's restore of a deployed flow) say on
// how many nodes the version runs and which node is behind, instead of
// a bare "Deployed"; alone, a deploy still redirects with its done code.
func TestFlowsDeploySaysWhereItRuns(t *testing.T) {
	t.Parallel()
	mem := memstore.MustNew(t, memstore.Options{})
	env := uitest.Start(t, func(o *flowd.Options) {
		o.Store, o.Runs, o.NodeID = mem, memstore.MustNew(t, memstore.Options{}), "a"
	})
	c := env.Login(t)

	// Alone: the redirect, as before.
	res := c.PostForm(t, "/admin/flows/hello/deploy", url.Values{"csrf": {c.CSRF}})
	if res.StatusCode != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "done=deployed") {
		t.Fatalf("alone: %d %q, want 303 to done=deployed", res.StatusCode, res.Header.Get("Location"))
	}

	// Node c joins the registry at an address nobody answers and never
	// applies anything.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	if err := mem.Node().Register(t.Context(), store.NodeInfo{ID: "c", Addr: gone.URL}); err != nil {
		t.Fatal(err)
	}
	flash := func(t *testing.T, res *http.Response, body string) string {
		t.Helper()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200 with the flows page: %.300s", res.StatusCode, body)
		}
		doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		f := doc.Find(`[data-testid="flash"]`)
		if !f.HasClass("flash-warn") {
			t.Errorf("flash class %q, want flash-warn", f.AttrOr("class", ""))
		}
		return f.Text()
	}
	_, exported := c.Get(t, "/admin/flows/hello/export")
	for _, tc := range []struct {
		name, path string
		form       url.Values
		done       string
	}{
		{"deploy", "/admin/flows/hello/deploy", nil, "Deployed hello"},
		{"import and deploy", "/admin/flows/import", url.Values{"doc": {exported}, "deploy": {"true"}}, "Imported hello"},
		{"restore a deployed flow", "/admin/flows/hello/versions/1/restore", nil, "Restored hello v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"csrf": {c.CSRF}}
			for k, v := range tc.form {
				form[k] = v
			}
			res, body := c.PostFormBody(t, tc.path, form)
			got := flash(t, res, body)
			for _, want := range []string{tc.done + ": version ", "runs on 1 of 2 nodes.", "Node c has not applied it yet."} {
				if !strings.Contains(got, want) {
					t.Errorf("flash %q lacks %q", got, want)
				}
			}
		})
	}
	t.Run("import without deploy", func(t *testing.T) {
		res := c.PostForm(t, "/admin/flows/import", url.Values{"csrf": {c.CSRF}, "doc": {exported}})
		if res.StatusCode != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "done=imported") {
			t.Fatalf("%d %q, want 303 to done=imported", res.StatusCode, res.Header.Get("Location"))
		}
	})
}

// TestBrowserFlowsDeployRollout: the deploy button on the flows list, on
// a cluster where node c is behind, shows the warning in place.
func TestBrowserFlowsDeployRollout(t *testing.T) {
	mem := memstore.MustNew(t, memstore.Options{})
	env := uitest.Start(t, func(o *flowd.Options) {
		o.Store, o.Runs, o.NodeID = mem, memstore.MustNew(t, memstore.Options{}), "a"
	})
	c := env.Login(t)
	_, hello := c.Get(t, "/admin/flows/hello/export")
	copyDoc := strings.Replace(hello, `"id": "hello"`, `"id": "hello-2"`, 1)
	copyDoc = strings.Replace(copyDoc, `"path": "/hello"`, `"path": "/hello-2"`, 1)
	if copyDoc == hello {
		t.Fatalf("export did not have the expected shape: %.200s", hello)
	}
	if err := env.FD.Import(t.Context(), []byte(copyDoc), false); err != nil {
		t.Fatal(err)
	}
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	if err := mem.Node().Register(t.Context(), store.NodeInfo{ID: "c", Addr: gone.URL}); err != nil {
		t.Fatal(err)
	}
	ctx := adminBrowser(t, env, 700)
	err := chromedp.Do(ctx,
		chromedp.Navigate(env.URL+"/admin/flows"),
		chromedp.Click(css(`[data-flow="hello-2"] `+tid("flow-deploy"))),
		chromedp.WaitVisible(css(tid("flash")+".flash-warn")),
	)
	if err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Text(css(tid("flash"))))
	if err != nil || !strings.Contains(got, "Deployed hello-2: version 1 runs on 1 of 2 nodes. Node c has not applied it yet.") {
		t.Errorf("flash %q %v", got, err)
	}
	uitest.Shot(t, ctx, "flows-rollout")
}
