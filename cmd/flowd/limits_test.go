package main

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestServeLimitFlags(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"bad env number", map[string]string{"FLOWD_MAX_CONNS": "many"}, nil, `FLOWD_MAX_CONNS="many": want a whole number`},
		{"bad env duration", map[string]string{"FLOWD_READ_TIMEOUT": "15"}, nil, `FLOWD_READ_TIMEOUT="15": want a duration like 15s`},
		{"negative connections", nil, []string{"--max-conns-per-addr", "-1"}, "must be 0 (no limit) or more"},
		{"zero read timeout", nil, []string{"--read-timeout", "0s"}, "--read-timeout must be a positive duration, not 0s"},
		{"zero idle timeout", map[string]string{"FLOWD_IDLE_TIMEOUT": "0s"}, nil, "--idle-timeout must be a positive duration"},
		{"body over the cap", nil, []string{"--max-body", "20000000"}, "--max-body must be between 1 and 10485760 bytes, not 20000000"},
		{"trusted proxy not an address", nil, []string{"--trusted-proxies", "10.0.0.0/8,lb.local"},
			`--trusted-proxies (FLOWD_TRUSTED_PROXIES): trusted proxies: "lb.local" is not an address or CIDR`},
		{"trusted proxy env", map[string]string{"FLOWD_TRUSTED_PROXIES": "10.0.0.0/99"}, nil, `"10.0.0.0/99" is not an address or CIDR`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", data}, tc.args...)
			code, _, stderr := flowdCmd(t, tc.vars, args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tc.want)
			}
		})
	}
}

// TestServeConnectionsPerAddr: the connection after --max-conns-per-addr
// from one address is closed unread; the others are served, and a closed
// one frees its slot.
func TestServeConnectionsPerAddr(t *testing.T) {
	s := serveWith(t, &cli{getenv: envOf(map[string]string{"FLOWD_MAX_CONNS_PER_ADDR": "2"})}, "--data", t.TempDir())
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// ask sends one request on c and reports whether an answer came.
	ask := func(c net.Conn) bool {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			return false
		}
		buf := make([]byte, 12)
		n, err := c.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("no answer and no close within 10s")
		}
		return n > 0 && strings.HasPrefix(string(buf[:n]), "HTTP/1.1 ")
	}
	first, second := dial(), dial()
	if !ask(first) || !ask(second) {
		t.Fatal("the first two connections were not served")
	}
	if ask(dial()) {
		t.Error("the third connection from one address was served; want it closed")
	}
	first.Close()
	// The slot frees when the server sees the close; poll a few times.
	var served bool
	for range 50 {
		if served = ask(dial()); served {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !served {
		t.Error("a connection after one was closed was not served")
	}
}
