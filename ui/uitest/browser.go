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
