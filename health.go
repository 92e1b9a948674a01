package flowd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/flowd/flowd/engine"
)

// Health endpoints for load balancers and Kubernetes probes. Both are
// unauthenticated and answer no internals: a status word per check.
//
//	GET /healthz  200 {"status":"ok"}                 the process serves HTTP
//	GET /readyz   200 {"status":"ready", "checks":{"store":"ok","feed":"ok","keys":"ok","flows":"ok"}}
//	              503 {"status":"not ready", "checks":{... "unavailable" | "stale" | "stopped" | "failing" ...}}
//	              (keys "stale": a cluster node stopped signing, its feed silent past maxKeyStaleness)
//
// Handler serves them ahead of the flows' routes, so a flow cannot take
// these two paths: a deploy of an http.in node at either is refused with
// the node and field named (checkHealthRoutes). Flows keep every other
// path, wildcards included (a "/{p...}" route just does not see these two).
const (
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
)

// readyTimeout bounds the store calls of one /readyz; feedStale is how long
// this node may lag behind the store's newest revision and stay ready;
// readyEvery is how long one answer of /readyz is reused, so that probes
// (which carry no credentials) cannot make the store work harder than a
// few reads per second however many arrive.
const (
	readyTimeout = 2 * time.Second
	feedStale    = time.Second
	readyEvery   = 250 * time.Millisecond
)

// HealthHandler serves GET /healthz and GET /readyz (Handler already
// does): mount it at those two paths when you mount FlowHandler and
// AdminHandler yourself.
func (f *Flowd) HealthHandler() http.Handler { return f.health }

// Ready runs the readiness checks: every value "ok" means ready.
func (f *Flowd) Ready(ctx context.Context) map[string]string {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	r := f.app.Ready(ctx, feedStale)
	keys := "ok"
	if err := f.keysets.Loaded(ctx); err != nil {
		keys = "failing"
	} else if gate := f.keysets.SignGate; gate != nil && gate() != nil {
		keys = "stale" // signing stopped: see maxKeyStaleness
	}
	return map[string]string{"store": r.Store, "feed": r.Feed, "keys": keys, "flows": r.Flows}
}

// readyCache holds the last /readyz answer; mu also makes concurrent
// probes wait for one check instead of running their own.
type readyCache struct {
	mu     sync.Mutex
	at     time.Time
	checks map[string]string
}

func (c *readyCache) get(ctx context.Context, f *Flowd) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.checks == nil || time.Since(c.at) >= readyEvery {
		c.checks, c.at = f.Ready(ctx), time.Now()
	}
	return c.checks
}

func newHealth(f *Flowd) http.Handler {
	cache := &readyCache{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathHealthz, func(w http.ResponseWriter, r *http.Request) {
		writeHealth(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET "+PathReadyz, func(w http.ResponseWriter, r *http.Request) {
		// Not the request's own ctx: a client that hangs up must not
		// leave "unavailable" in the cache for the next probe.
		checks := cache.get(context.WithoutCancel(r.Context()), f)
		code, status := http.StatusOK, "ready"
		for _, v := range checks {
			if v != "ok" {
				code, status = http.StatusServiceUnavailable, "not ready"
			}
		}
		writeHealth(w, code, map[string]any{"status": status, "checks": checks})
	})
	return mux
}

func writeHealth(w http.ResponseWriter, code int, body map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(body) //nolint:errcheck // the client went away
}

// checkHealthRoutes refuses a flow whose http.in node claims /healthz or
// /readyz, which Handler serves itself.
func checkHealthRoutes(fl *engine.Flow) error {
	var errs engine.ValidationErrors
	for _, n := range fl.Nodes {
		if n.Type != "http.in" {
			continue
		}
		var path string
		if json.Unmarshal(n.Config["path"], &path) != nil {
			continue // the block's own validation names that problem
		}
		if path == PathHealthz || path == PathReadyz {
			errs = append(errs, &engine.ValidationError{Node: n.ID, Field: "path",
				Msg: fmt.Sprintf("%s is flowd's own health endpoint (load balancers probe it); choose another path", path)})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}
