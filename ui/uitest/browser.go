package uitest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Chromium returns the chromium binary: /usr/bin/chromium or chromium on
// PATH. Without one the test is skipped, unless CI=true, where a browser
// test that cannot run is a failure.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found (CI=true): apt-get install -y chromium")
	}
	t.Skip("chromium not found; install it (apt-get install -y chromium) to run browser tests")
	return ""
}

// One chromium serves every browser test of a test binary: starting it
// costs seconds, a fresh browser context (own cookies, own storage) per
// test costs milliseconds.
var shared struct {
	once sync.Once
	ctx  context.Context
	err  error
}

// Browser returns a tab in a fresh browser context (no cookies from other
// tests) of the shared headless chromium; timeout bounds the whole test.
func Browser(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	exe := Chromium(t)
	shared.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(exe), chromedp.NoSandbox,
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.WindowSize(1280, 900),
		)
		// Never cancelled: the browser lives as long as the test binary
		// (chromedp ties it to this process, so it exits with it).
		actx, _ := chromedp.NewExecAllocator(context.Background(), opts...)
		shared.ctx, _ = chromedp.NewContext(actx)
		shared.err = chromedp.Do(shared.ctx)
	})
	if shared.err != nil {
		t.Fatalf("start chromium: %v", shared.err)
	}
	ctx, cancelC := chromedp.NewContext(shared.ctx, chromedp.WithNewBrowserContext())
	ctx, cancelT := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelT()
		cancelC()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return ctx
}

// Screenshot writes png to docs/screenshots/name.png under the module root
// when FLOWD_SCREENSHOTS=1, so ordinary test runs leave the tree clean.
func Screenshot(t testing.TB, name string, png []byte) {
	t.Helper()
	if os.Getenv("FLOWD_SCREENSHOTS") != "1" {
		return
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

// ClickJS clicks the element that the CSS selector sel matches, from
// JavaScript. Use it for a click that replaces the page (a form submit):
// chromedp.Click holds the node's id across its mouse events and now and
// then fails with "No node with given id found" when the page goes away
// under it. A selector that matches nothing is an error.
func ClickJS(sel string) chromedp.Action[chromedp.Void] {
	click := chromedp.Evaluate[any](fmt.Sprintf("document.querySelector(%q).click()", sel))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := click(ctx, t)
		return chromedp.Void{}, err
	}
}

// WaitText waits until the element that sel matches has non-empty text
// and returns it (trimmed), reading it from JavaScript each time: after a
// page was replaced, a node id chromedp looked up a moment before can
// already be gone ("No node with given id found").
func WaitText(ctx context.Context, sel string) (string, error) {
	read := chromedp.Evaluate[string](fmt.Sprintf("((document.querySelector(%q) || {}).textContent || '').trim()", sel))
	for {
		text, err := chromedp.Run(ctx, read)
		if err == nil && text != "" {
			return text, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return "", fmt.Errorf("no text at %s: %w", sel, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// LoginBrowser logs the tab in to env's admin UI and waits for the flows
// page.
func LoginBrowser(t testing.TB, ctx context.Context, env *Env) {
	t.Helper()
	pw := chromedp.CSS(`[data-testid="login-password"]`)
	err := chromedp.Do(ctx,
		chromedp.Navigate(env.URL+"/admin/flows"),
		chromedp.WaitVisible(pw),
		chromedp.SetValue(pw, Password),
		ClickJS(`[data-testid="login-submit"]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="flows"]`)),
	)
	if err != nil {
		t.Fatalf("log in: %v", err)
	}
}

// Viewport sets the tab's window size (CSS pixels).
func Viewport(t testing.TB, ctx context.Context, w, h int64) {
	t.Helper()
	if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: w, Height: h, DeviceScaleFactor: 1}); err != nil {
		t.Fatalf("viewport %dx%d: %v", w, h, err)
	}
}

// JS evaluates expr in the page and returns its value.
func JS[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// WaitJS waits (up to 15 s) until expr is truthy, evaluating it afresh
// each time, so a page replaced meanwhile (a form submit) does not fail it.
func WaitJS(t testing.TB, ctx context.Context, what, expr string) {
	t.Helper()
	check := chromedp.Evaluate[bool]("!!(" + expr + ")")
	deadline := time.After(15 * time.Second)
	var last error
	for {
		ok, err := chromedp.Run(ctx, check)
		if err == nil && ok {
			return
		}
		last = err
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s (%s): %v (last error %v)", what, expr, ctx.Err(), last)
		case <-deadline:
			t.Fatalf("waiting for %s (%s): timed out (last error %v)", what, expr, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Center returns the viewport center of the element sel matches.
func Center(t testing.TB, ctx context.Context, sel string) (float64, float64) {
	t.Helper()
	v := JS[[]float64](t, ctx, fmt.Sprintf(`(() => { const e = document.querySelector(%q); const r = e.getBoundingClientRect(); return [r.left + r.width/2, r.top + r.height/2]; })()`, sel))
	return v[0], v[1]
}

// Held marks a dispatched mouse event as made with the left button down.
func Held(p *input.DispatchMouseEventParams) {
	p.Button = input.MouseButtonLeft
	p.Buttons = 1
	p.ClickCount = 1
}

// Drag presses the left button at (x0, y0), moves in steps and releases
// at (x1, y1): real mouse input, which chromium turns into pointer events.
func Drag(t testing.TB, ctx context.Context, x0, y0, x1, y1 float64, steps int) {
	t.Helper()
	acts := []chromedp.Action[chromedp.Void]{
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x0, y0),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, x0, y0, Held),
	}
	for i := 1; i <= steps; i++ {
		f := float64(i) / float64(steps)
		acts = append(acts, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x0+(x1-x0)*f, y0+(y1-y0)*f, Held))
	}
	acts = append(acts, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, x1, y1, Held))
	if err := chromedp.Do(ctx, acts...); err != nil {
		t.Fatal(err)
	}
}

// Click clicks the center of the element sel matches with the mouse.
func Click(t testing.TB, ctx context.Context, sel string) {
	t.Helper()
	x, y := Center(t, ctx, sel)
	Drag(t, ctx, x, y, x, y, 0)
}

// Keys types text (and key names such as kb.Enter) into the focused
// element as keyboard events.
func Keys(t testing.TB, ctx context.Context, text string, opts ...chromedp.KeyOption) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.KeyEvent(text, opts...)); err != nil {
		t.Fatalf("keys %q: %v", text, err)
	}
}

// Shot takes a screenshot of the viewport and stores it with Screenshot.
func Shot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("FLOWD_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	Screenshot(t, name, png)
}

// FullShot takes a screenshot of the whole page and stores it with
// Screenshot.
func FullShot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("FLOWD_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	Screenshot(t, name, png)
}

// ClickWith clicks the center of the element sel matches with modifier
// keys held (chromedp.ModifierShift, ...).
func ClickWith(t testing.TB, ctx context.Context, sel string, mods chromedp.Modifier) {
	t.Helper()
	x, y := Center(t, ctx, sel)
	with := func(p *input.DispatchMouseEventParams) {
		Held(p)
		p.Modifiers = int64(mods)
	}
	if err := chromedp.Do(ctx,
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x, y),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, x, y, with),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, x, y, with),
	); err != nil {
		t.Fatal(err)
	}
}

// WatchErrors fails the test on script exceptions and console errors in
// the tab (CSP violations among them). Network errors are not counted:
// expected 4xx answers log them.
func WatchErrors(t testing.TB, ctx context.Context) {
	t.Helper()
	err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			t.Errorf("script exception: %s %v", e.ExceptionDetails.Text, e.ExceptionDetails.Exception)
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError && e.Entry.Source != cdplog.EntrySourceNetwork {
				t.Errorf("console %s: %s", e.Entry.Source, e.Entry.Text)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
}
