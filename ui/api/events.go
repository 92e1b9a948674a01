package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/flowd/flowd/engine"
)

// Stream timing of GET /flows/{id}/events: how often it looks for new
// runs, how long one stream lasts before the browser reconnects, and how
// long a quiet stream waits before a keep-alive comment.
const (
	streamPoll      = 250 * time.Millisecond
	streamMax       = 30 * time.Second
	streamKeepAlive = 15 * time.Second
)

// Close ends the open event streams (call it before http.Server.Shutdown,
// which waits for them). The handler keeps serving everything else.
func (h *Handler) Close() {
	h.closeOnce.Do(func() { close(h.done) })
}

// nodeStatus is a node's outcome in the latest run that reached it.
type nodeStatus struct {
	Port  string `json:"port,omitempty"`
	Error string `json:"error,omitempty"`
	Run   string `json:"run"`
}

type runEvent struct {
	Run    string                `json:"run"`
	Status string                `json:"status"`
	Nodes  map[string]nodeStatus `json:"nodes"`
}

// events streams (Server-Sent Events) one "run" event per new run of the
// flow on this node, with each node's port or error in it. It polls the
// runtime's in-memory trace ring, which is a cheap copy under a mutex. A
// stream ends after streamMax (EventSource reconnects, and the page
// reloads its runs list), so a server's graceful shutdown, which does not
// cancel requests, never waits long on an open editor tab; Close ends
// every stream at once.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := h.app.Info(r.Context(), id); err != nil {
		return err
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		return fmt.Errorf("events of flow %q: the connection cannot stream", id)
	}
	// Runs before the stream starts are history (the runs list has them);
	// snapshot them before the client can see the stream is open.
	seen := map[string]bool{}
	for _, t := range h.app.Traces(id) {
		seen[t.ID] = true
	}
	// A server-wide WriteTimeout would cut the stream; lift it for this
	// response (EventSource reconnects anyway if it is cut).
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n: connected\n\n")
	fl.Flush()

	tick := time.NewTicker(h.poll)
	defer tick.Stop()
	end := time.NewTimer(streamMax)
	defer end.Stop()
	quiet := time.Duration(0)
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-h.done:
			return nil
		case <-end.C:
			return nil
		case <-tick.C:
		}
		traces := h.app.Traces(id) // newest first
		var fresh []*engine.Trace
		for _, t := range traces {
			if !seen[t.ID] {
				fresh = append(fresh, t)
			}
		}
		if len(fresh) == 0 {
			if quiet += h.poll; quiet >= streamKeepAlive {
				quiet = 0
				fmt.Fprint(w, ": keep-alive\n\n")
				fl.Flush()
			}
			continue
		}
		seen = make(map[string]bool, len(traces))
		for _, t := range traces {
			seen[t.ID] = true
		}
		for i := len(fresh) - 1; i >= 0; i-- { // oldest first
			t := fresh[i]
			ev := runEvent{Run: t.ID, Status: t.Status, Nodes: map[string]nodeStatus{}}
			for _, s := range t.Steps {
				ev.Nodes[s.Node] = nodeStatus{Port: s.Port, Error: s.Error, Run: t.ID}
			}
			b, _ := json.Marshal(ev)
			fmt.Fprintf(w, "event: run\nid: %s\ndata: %s\n\n", t.ID, b)
		}
		fl.Flush()
	}
}
