// Command flowdprof is `flowd serve` as cmd/flowd builds it (same store,
// same options, same prebuilt flows, same http.Server limits) plus
// net/http/pprof on a second loopback port, so bench/profile.sh can take
// a CPU profile of flowd under wrk without touching flowd's code.
//
//	flowdprof --data DIR --addr 127.0.0.1:18181 --pprof 127.0.0.1:18182
//
// It serves the flow endpoints only (no admin API): start it on a data
// folder that `flowd serve` prepared (clients registered).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/flows/examples"
	"github.com/flowd/flowd/store"
)

// noRuns is the run store with AppendRuns a no-op (--drop-runs).
type noRuns struct{ store.Runs }

func (noRuns) AppendRuns(context.Context, []store.RunRecord) error { return nil }

// noFlusher is a ResponseWriter without Flush (--no-flush).
type noFlusher struct{ w http.ResponseWriter }

func (n noFlusher) Header() http.Header         { return n.w.Header() }
func (n noFlusher) Write(b []byte) (int, error) { return n.w.Write(b) }
func (n noFlusher) WriteHeader(code int)        { n.w.WriteHeader(code) }

func main() {
	data := flag.String("data", "./flowd-data", "data folder")
	addr := flag.String("addr", "127.0.0.1:18181", "listen address of the flow endpoints")
	pprofAddr := flag.String("pprof", "127.0.0.1:18182", "listen address of /debug/pprof")
	issuer := flag.String("issuer", "", "issuer (default http:// + addr, as flowd serve)")
	dropRuns := flag.Bool("drop-runs", false, "experiment: do not write run traces to the store "+
		"(they are still taken, encoded and kept in memory); isolates the cost of bbolt commits")
	gcPercent := flag.Int("gc-percent", 400, "debug.SetGCPercent when GOGC is not set, as cmd/flowd does "+
		"since 3f76b94 (-1 leaves Go's default)")
	noFlush := flag.Bool("no-flush", false, "experiment: hide http.Flusher from the flows, so http.respond "+
		"cannot flush before the run ends and net/http sends the response when the handler returns")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("flowdprof: ")
	if os.Getenv("GOGC") == "" && *gcPercent != -1 {
		debug.SetGCPercent(*gcPercent)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	key, _, err := store.LoadMasterKey(*data, os.Getenv)
	if err != nil {
		log.Fatal(err)
	}
	st, err := store.OpenBolt(filepath.Join(*data, "flowd.db"), store.BoltOptions{MasterKey: key})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if *issuer == "" {
		*issuer = "http://" + ln.Addr().String()
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var runs store.Runs = st
	if *dropRuns {
		runs = noRuns{st}
	}
	fd, err := flowd.New(flowd.Options{Store: st, Runs: runs, Logger: logger, Examples: examples.FS,
		Env: map[string]string{}, Issuer: *issuer})
	if err != nil {
		log.Fatal(err)
	}
	if err := fd.Start(ctx); err != nil {
		log.Fatal(err)
	}

	pm := http.NewServeMux()
	pm.HandleFunc("/debug/pprof/", pprof.Index)
	pm.HandleFunc("/debug/pprof/profile", pprof.Profile)
	pm.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() { log.Println(http.ListenAndServe(*pprofAddr, pm)) }()

	mux := http.NewServeMux()
	var flows http.Handler = fd.FlowHandler()
	if *noFlush {
		next := flows
		flows = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(noFlusher{w}, r)
		})
	}
	mux.Handle("/", flows)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	fmt.Printf("flowdprof listening on http://%s, pprof on http://%s/debug/pprof/\n", ln.Addr(), *pprofAddr)
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }() //nolint:errcheck
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Print(err)
	}
	fd.Close(context.Background()) //nolint:errcheck
}
