package httpblock

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

// stalledBody yields a few bytes and then reports the client gone, as a
// connection that announced a large body and stopped sending does.
type stalledBody struct{ sent bool }

func (b *stalledBody) Read(p []byte) (int, error) {
	if b.sent {
		return 0, io.ErrUnexpectedEOF
	}
	b.sent = true
	return copy(p, "a=1"), nil
}

func (b *stalledBody) Close() error { return nil }

// TestInAllocatesOnlyWhatArrives: memory for a body follows the bytes
// received, not the Content-Length announced (1000 connections announcing
// 1 MiB each and sending nothing once held about 1 GB).
func TestInAllocatesOnlyWhatArrives(t *testing.T) {
	e := newEnv(t, engine.Options{Limits: engine.Limits{MaxMessageBytes: 10 << 20}})
	e.deploy(t, enginetest.Flow(t, "big", []enginetest.Node{
		{ID: "in", Type: "http.in", Config: map[string]any{"method": "POST", "path": "/big", "max_body": 8 << 20}},
		{ID: "respond", Type: "http.respond", Config: map[string]any{"status": 204}},
	}, "in:out->respond"), 1)
	const announced = 8 << 20
	send := func() int {
		req := httptest.NewRequest("POST", "/big", nil)
		req.Body = &stalledBody{}
		req.ContentLength = announced
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := e.serve(req)
		return w.Code
	}
	send() // warm up pools and the route table
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const requests = 4
	for range requests {
		if code := send(); code != http.StatusBadRequest {
			t.Fatalf("status = %d, want 400 for a body that stopped short", code)
		}
	}
	runtime.ReadMemStats(&after)
	perRequest := (after.TotalAlloc - before.TotalAlloc) / requests
	if perRequest > 256<<10 {
		t.Errorf("a request announcing %d bytes and sending 3 allocated %d bytes; want well under the announced size",
			announced, perRequest)
	}
}

// TestInBodyReadDeadline: a client that sends its headers and then
// trickles (here: stops sending) its body is cut off by the route's body
// deadline, even on a server without any ReadTimeout of its own.
func TestInBodyReadDeadline(t *testing.T) {
	router := NewRouter(RouterOptions{BodyReadTimeout: 200 * time.Millisecond})
	reg := testRegistry(t)
	rt, err := engine.New(engine.Options{Registry: reg, Services: services(t, router)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(t.Context()) })
	e := &env{router: router, rt: rt}
	e.deploy(t, endpoint(t, "slow", "POST", "/slow", map[string]any{"status": 204}), 1)
	srv := httptest.NewServer(router) // no ReadTimeout, no WriteTimeout
	t.Cleanup(srv.Close)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The test's own guard: without the body deadline the server would
	// wait for the body forever and this read would fail on it.
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1048576\r\n\r\nab"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "body could not be read") {
		t.Errorf("answer = %d %s, want 400 body could not be read", resp.StatusCode, body)
	}
}
