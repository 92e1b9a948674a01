package ui_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestDashboardEmptyStates: on a fresh node the dashboard says in words
// what did not happen, counts the one admin sign-in, and refuses an
// unknown window.
func TestDashboardEmptyStates(t *testing.T) {
	t.Parallel()
	_, c, d := adminPage(t, "/admin/dashboard")
	for card, want := range map[string]string{
		"validations": "No tokens validated in the last hour.",
		"tokens":      "No tokens issued in the last hour.",
	} {
		if got := strings.TrimSpace(d.Find(tid("dash-"+card) + " " + tid("dash-empty")).Text()); got != want {
			t.Errorf("%s: %q, want %q", card, got, want)
		}
	}
	if got := strings.TrimSpace(d.Find(tid("dash-sign-ins") + ` [data-key="admin_sign_ins:ok"] ` + tid("dash-hour")).Text()); got != "1" {
		t.Errorf("admin sign-ins in the last hour: %q, want 1", got)
	}
	if d.Find(tid("dash-partial")).Length() != 1 {
		t.Error("no word that the node is up for less than the window")
	}
	day := doc(t, c.GetBody(t, "/admin/dashboard?window=day"))
	if got := strings.TrimSpace(day.Find(tid("dash-tokens") + " " + tid("dash-empty")).Text()); got != "No tokens issued in the last day." {
		t.Errorf("day view: %q", got)
	}
	if res, _ := c.Get(t, "/admin/dashboard?window=week"); res.StatusCode != http.StatusBadRequest {
		t.Errorf("window=week: %d, want 400", res.StatusCode)
	}
	// /admin/ lands on the dashboard.
	if res, _ := c.Get(t, "/admin/"); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/dashboard" {
		t.Errorf("/admin/: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
}
