package ui_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/flowd/flowd/ui/uitest"
)

// 50 failures from a dozen addresses must not lock the real admin out:
// the right password from another address gets in; the attackers'
// addresses are held back.
func TestAdminLoginNoLockoutFromAttackers(t *testing.T) {
	t.Parallel()
	env := uitest.Start(t)
	h := env.FD.AdminHandler()
	post := func(addr, pw string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/admin/login", strings.NewReader(url.Values{"password": {pw}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = addr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	attackers := make([]string, 12)
	for i := range attackers {
		attackers[i] = fmt.Sprintf("203.0.113.%d:40000", i+1)
	}
	for i := range 50 {
		if w := post(attackers[i%len(attackers)], fmt.Sprint("guess ", i)); w.Code != http.StatusUnauthorized && w.Code != http.StatusTooManyRequests {
			t.Fatalf("guess %d: %d", i, w.Code)
		}
	}
	for _, tc := range []struct {
		name, addr, pw string
		want           int
	}{
		{"real admin from another address", "198.51.100.7:5000", uitest.Password, http.StatusSeeOther},
		{"real admin from another IPv6 address", "[2001:db8:aa::1]:5000", uitest.Password, http.StatusSeeOther},
		{"an attacker's address, even with the right password", attackers[0], uitest.Password, http.StatusTooManyRequests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := post(tc.addr, tc.pw)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
			if tc.want == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		})
	}
}
