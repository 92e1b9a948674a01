package flowd_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/flowd/flowd"
)

func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := flowd.LimitListener(inner, flowd.ConnLimits{Max: 3, PerAddr: 2})
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func(t *testing.T, from string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.DialContext(t.Context(), "tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// admitted waits for the server side of a connection from addr.
	admitted := func(t *testing.T, from string) net.Conn {
		t.Helper()
		dial(t, from)
		select {
		case c := <-accepted:
			if host, _, _ := net.SplitHostPort(c.RemoteAddr().String()); host != from {
				t.Fatalf("accepted a connection from %s, want %s", host, from)
			}
			return c
		case <-time.After(10 * time.Second):
			t.Fatalf("connection from %s was not accepted", from)
			return nil
		}
	}
	// refused checks the server closed a connection without handing it on.
	refused := func(t *testing.T, from string) {
		t.Helper()
		c := dial(t, from)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("connection from %s over the limit was not closed (read: %v)", from, err)
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			t.Logf("refused connection read error: %v", err) // a reset is fine too
		}
	}

	first := admitted(t, "127.0.0.1")
	admitted(t, "127.0.0.1")
	refused(t, "127.0.0.1") // the third from one address
	admitted(t, "127.0.0.2")
	refused(t, "127.0.0.3") // a fourth in all
	if got := ln.Refused(); got != 2 {
		t.Errorf("Refused() = %d, want 2", got)
	}
	if got := ln.Open(); got != 3 {
		t.Errorf("Open() = %d, want 3", got)
	}
	// Closing gives the slot back, once however often it is closed.
	first.Close()
	first.Close()
	admitted(t, "127.0.0.1")
	refused(t, "127.0.0.1")
	if got := ln.Open(); got != 3 {
		t.Errorf("Open() after close and reconnect = %d, want 3", got)
	}
	select {
	case c := <-accepted:
		t.Errorf("a connection over the limits was handed on: %v", c.RemoteAddr())
	default:
	}
}

// ExampleLimitListener serves flowd's handler the way `flowd serve` does:
// bounded connections and timeouts on every request.
func ExampleLimitListener() {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ln := flowd.LimitListener(inner, flowd.ConnLimits{Max: flowd.DefaultMaxConns, PerAddr: flowd.DefaultMaxConnsPerAddr})
	srv := &http.Server{
		Handler:           http.NotFoundHandler(), // fd.Handler() of a flowd.New
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second, // headers and body
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	go srv.Serve(ln)
	defer srv.Close()

	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, ln.Open() <= 1, ln.Refused())
	// Output: 404 true 0
}
