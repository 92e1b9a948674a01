package editor_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowd/flowd/ui/uitest"
)

// TestBrowserStoryTemplateCronSchedules is one user story end to end, in
// the real admin UI: log in, import the key-rollover template (Templates
// page → Use template), change its cron to every minute in the editor's
// side panel, deploy; the schedules page lists the next runs.
func TestBrowserStoryTemplateCronSchedules(t *testing.T) {
	env := uitest.Start(t)                   // first: its server closes after the browser
	ctx := uitest.Browser(t, 30*time.Second) // a safety limit; the story takes a few seconds
	uitest.WatchErrors(t, ctx)               // script errors and CSP violations fail the test
	uitest.LoginBrowser(t, ctx, env)

	// Templates page → Use template → Create: a copy under a new id, opened in the editor.
	row := `[data-template="key-rollover"] [data-testid="use-template"]`
	// Navigate, not a click on the nav link: the flows page LoginBrowser
	// waited for may still be loading, and a click on a node of a document
	// being replaced fails ("Could not find node with given id").
	// The form asks for id, name (prefilled) and warns that key-rollover
	// already rotates keyset main: the story accepts.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(env.URL+"/admin/templates"),
		chromedp.Click(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.CSS(`[data-template="key-rollover"] [data-testid="template-warning"]`)),
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		uitest.ClickJS(`[data-template="key-rollover"] [data-testid="template-create"]`),
		chromedp.WaitVisible(chromedp.CSS(`#flowd-editor[data-ready="true"]`)),
	); err != nil {
		t.Fatalf("use template: %v", err)
	}
	const flow = "key-rollover-2"
	if got := uitest.JS[string](t, ctx, `document.getElementById('flowd-editor').dataset.flow`); got != flow {
		t.Fatalf("editor opened flow %q, want %q", got, flow)
	}

	// The side panel: every minute instead of daily at 03:00, then deploy.
	selectNode(t, ctx, "daily")
	if v := uitest.JS[string](t, ctx, q("input-spec")+`.value`); v != "0 3 * * *" {
		t.Fatalf("spec shown %q", v)
	}
	setField(t, ctx, "input-spec", "* * * * *")
	// A copy never deployed counts every node and wire as pending: wait on
	// the editor's model instead.
	waitJS(t, ctx, "spec in the draft", `document.getElementById('flowd-editor').flowd.model.doc.nodes.find((n) => n.id === 'daily').config.spec === '* * * * *'`)
	click(t, ctx, "deploy")
	waitJS(t, ctx, "deployed", q("status")+`.textContent.includes('Deployed version') && `+q("pending")+`.textContent === '0'`)

	// The schedules page lists the new flow's next runs, one minute apart.
	sel := `[data-testid="schedule-row"][data-flow="` + flow + `"][data-node="daily"]`
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid="nav-schedules"]`)),
		chromedp.WaitVisible(chromedp.CSS(sel+` [data-testid="next-run"]`)),
	); err != nil {
		t.Fatalf("schedules page: %v", err)
	}
	if spec := uitest.JS[string](t, ctx, `document.querySelector('`+sel+` code').textContent`); spec != "* * * * *" {
		t.Errorf("spec on the schedules page %q, want %q", spec, "* * * * *")
	}
	stamps := uitest.JS[[]string](t, ctx, `Array.from(document.querySelectorAll('`+sel+` [data-testid="next-run"] time'), e => e.getAttribute('datetime'))`)
	if len(stamps) < 3 {
		t.Fatalf("%d next runs listed, want at least 3: %q", len(stamps), stamps)
	}
	var prev time.Time
	for i, s := range stamps {
		at, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatalf("next run %d: %v", i, err)
		}
		if i == 0 {
			if d := time.Until(at); d <= -time.Minute || d > time.Minute {
				t.Errorf("first next run %s is not within a minute of now", at)
			}
		} else if d := at.Sub(prev); d != time.Minute {
			t.Errorf("next runs %d and %d are %s apart, want 1m: %q", i-1, i, d, stamps)
		}
		prev = at
	}
}
