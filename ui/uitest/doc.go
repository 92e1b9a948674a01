// Package uitest starts a real flowd (in process, on a temp store, behind
// httptest) for the admin UI's handler and browser tests, and drives
// chromium with chromedp.
//
// # Stability
//
// A test harness for flowd's own UI tests, not a supported API.
package uitest
