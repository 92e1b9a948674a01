package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeHealth: `flowd serve` answers the load balancer's probes
// without a token, with a status word per check and nothing else.
func TestServeHealth(t *testing.T) {
	s := startServer(t, filepath.Join(t.TempDir(), "flowd-data"))
	if code, body := s.get(t, "/healthz", nil); code != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Errorf("GET /healthz = %d %s", code, body)
	}
	want := `{"checks":{"feed":"ok","flows":"ok","keys":"ok","store":"ok"},"status":"ready"}`
	// The prebuilt flows are deployed before serve listens; the start-up
	// run that makes keyset "main" may still be going.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := s.get(t, "/readyz", nil)
		if code == 200 && strings.TrimSpace(body) == want {
			break
		}
		if code != 503 || time.Now().After(deadline) {
			t.Fatalf("GET /readyz = %d %s, want 200 %s", code, body, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, _ := s.get(t, "/readyz", map[string]string{"Authorization": "Bearer wrong"}); code != 200 {
		t.Errorf("GET /readyz with a wrong token = %d: probes carry no token, and a wrong one changes nothing", code)
	}
}
