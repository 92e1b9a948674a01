package editor_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/flowd/flowd/ui/uitest"
)

// TestBrowserLightRuns: the debug panel shows a light run's steps as
// "message not captured" (not "null", no "Full value" button) under one
// note saying why, keeps a light run's failing step, and still shows full
// runs with their messages and the full value on demand.
func TestBrowserLightRuns(t *testing.T) {
	e := newEnv(t, oneSnapshotPerSecond)
	full, light, failed := lightRuns(t, e)
	ctx := browser(t)
	openEditor(t, ctx, e, "l")
	for _, id := range []string{full.ID, light.ID, failed.ID} {
		waitJS(t, ctx, "run "+id, `!!`+q("run-"+id))
	}
	uitest.JS[bool](t, ctx, `(document.querySelectorAll('.fe-run details').forEach((d) => { d.open = true; }), true)`)

	visible := func(t *testing.T, expr string) bool {
		return uitest.JS[bool](t, ctx, `(() => { const e = `+expr+`; return !!e && e.checkVisibility(); })()`)
	}
	text := func(t *testing.T, expr string) string {
		return uitest.JS[string](t, ctx, `(`+expr+` || {}).textContent || ''`)
	}

	tests := []struct {
		name     string
		id       string
		light    bool
		captured []bool // per step
	}{
		{"full", full.ID, false, []bool{true, true, true}},
		{"light", light.ID, true, []bool{false, false, false}},
		{"light failed", failed.ID, true, []bool{false, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			li := q("run-" + tc.id)
			if got := uitest.JS[string](t, ctx, li+`.dataset.light`); got != fmt.Sprint(tc.light) {
				t.Errorf("data-light %q, want %v", got, tc.light)
			}
			note := li + `.querySelector('[data-testid="light-note"]')`
			if got := visible(t, note); got != tc.light {
				t.Errorf("light note visible %v, want %v", got, tc.light)
			}
			if tc.light {
				if n := text(t, note); !strings.Contains(n, "snapshot rate") || !strings.Contains(n, "failing step keeps its message") {
					t.Errorf("light note %q", n)
				}
				if tag := text(t, li+`.querySelector('summary .fe-run-tag')`); tag != "light" {
					t.Errorf("summary tag %q", tag)
				}
			}
			if n := uitest.JS[int](t, ctx, li+`.querySelectorAll('.fe-step').length`); n != len(tc.captured) {
				t.Fatalf("%d steps, want %d", n, len(tc.captured))
			}
			for i, captured := range tc.captured {
				row := q(fmt.Sprintf("step-%s-%d", tc.id, i))
				none := row + `.querySelector('.fe-step-none')`
				pre := row + `.querySelector('.fe-step-msg')`
				if captured {
					if visible(t, none) || !visible(t, pre) || text(t, pre) == "" || text(t, pre) == "null" {
						t.Errorf("step %d: captured message shown as %q", i, text(t, row))
					}
					continue
				}
				if !visible(t, none) || text(t, none) != "message not captured" {
					t.Errorf("step %d: %q, want \"message not captured\" visible", i, text(t, row))
				}
				if uitest.JS[bool](t, ctx, `!!`+pre+` || !!`+row+`.querySelector('[data-full]')`) {
					t.Errorf("step %d: a message box or Full value button for a message not captured", i)
				}
			}
		})
	}

	// The full run's set step is cut (a 500-byte field): Full value fetches it.
	btn := fmt.Sprintf(`[data-full="%s/1"]`, full.ID)
	if err := chromedp.Do(ctx, chromedp.Click(btn)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "full value", `!document.querySelector('`+btn+`') && `+q("step-"+full.ID+"-1")+`.querySelector('.fe-step-msg').textContent.includes('"greeting": "hi"')`)
}
