// Command handwritten is the baseline of bench/run.sh: bench/baseline's
// plain net/http + go-jose server doing the same work as flowd's prebuilt
// jwks and protected-api flows, written the way a competent engineer would
// write it by hand (no flow engine, no traces, no expressions).
//
//	GET /.well-known/jwks.json  the JWK Set fetched once at start from
//	                            --jwks-url, served from memory with ETag/304,
//	                            Cache-Control public, max-age=900, CORS *
//	GET /api/hello              validates the bearer access token (RS256 or
//	                            ES256, key chosen by kid from that JWK Set,
//	                            iss, aud, exp/nbf/iat with 30 s leeway,
//	                            typ at+jwt) and answers its claims as JSON,
//	                            or 401 with WWW-Authenticate (RFC 6750)
//	GET /bench/hello-nocache    the same
//	POST /oauth/token           client_credentials (RS256), for the --client
//	POST /bench/token-es256     clients (the same with ES256)
//
// It is not part of flowd; it only exists to be measured against it.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/flowd/flowd/bench/baseline"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	jwksURL := flag.String("jwks-url", "", "URL of the JWK Set to serve and verify with (fetched once at start)")
	issuer := flag.String("issuer", "", "exact iss the tokens must carry (default: the JWKS URL's scheme and host)")
	audience := flag.String("audience", "flowd-api", "audience the tokens' aud must contain")
	pprofAddr := flag.String("pprof", "", "if set, serve /debug/pprof/ on this address (bench/profile.sh)")
	handoff := flag.Bool("x-handoff", false, "experiment (off in bench/run.sh): after each request, hand a record "+
		"to a background goroutine through a buffered channel, as flowd hands each run's trace to its writer")
	var clients clientFlags
	flag.Var(&clients, "client", "a client of the token endpoints: 'id|secret|scopes|audiences' (scopes and "+
		"audiences space separated); repeat for more")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("handwritten: ")
	if *jwksURL == "" {
		log.Fatal("--jwks-url is required")
	}
	body, err := fetchJWKS(*jwksURL)
	if err != nil {
		log.Fatal(err)
	}
	if *issuer == "" {
		*issuer = strings.TrimSuffix(*jwksURL, "/.well-known/jwks.json")
	}
	s, err := baseline.NewServer(baseline.Options{JWKS: body, Issuer: *issuer, Audience: *audience, Clients: clients})
	if err != nil {
		log.Fatal(err)
	}
	// Hashing the clients' secrets (argon2id, 19 MiB each) is start-up
	// work flowd does not do: give that memory back before measuring.
	runtime.GC()
	debug.FreeOSMemory()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if *pprofAddr != "" {
		pm := http.NewServeMux()
		pm.HandleFunc("/debug/pprof/", pprof.Index)
		pm.HandleFunc("/debug/pprof/profile", pprof.Profile)
		pm.HandleFunc("/debug/pprof/trace", pprof.Trace)
		go func() { log.Println(http.ListenAndServe(*pprofAddr, pm)) }()
	}
	mux := s.Handler()
	// The same server limits as flowd's serve command.
	var handler http.Handler = mux
	if *handoff {
		handler = withHandoff(mux)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	fmt.Printf("handwritten listening on http://%s (%d keys, issuer %s)\n", ln.Addr(), s.Keys(), *issuer)
	log.Fatal(srv.Serve(ln))
}

type clientFlags []baseline.Client

func (c *clientFlags) String() string { return fmt.Sprint(len(*c), " clients") }

func (c *clientFlags) Set(v string) error {
	f := strings.Split(v, "|")
	if len(f) != 4 || f[0] == "" || f[1] == "" {
		return fmt.Errorf("want id|secret|scopes|audiences, got %d fields", len(f))
	}
	*c = append(*c, baseline.Client{ID: f[0], Secret: f[1], Scopes: strings.Fields(f[2]), Audiences: strings.Fields(f[3])})
	return nil
}

func fetchJWKS(url string) ([]byte, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS: %s answered %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	return body, nil
}

// withHandoff is the --x-handoff experiment: a non-blocking send per
// request to a buffered channel that one goroutine drains, the way flowd's
// runs hand their traces to app.traceWriter (an async access log would do
// the same). It wakes the drainer on the request's goroutine.
func withHandoff(next http.Handler) http.Handler {
	type record struct {
		path  string
		start time.Time
	}
	ch := make(chan record, 4096)
	go func() {
		n := 0
		for r := range ch {
			n += len(r.path)
		}
	}()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		select {
		case ch <- record{r.URL.Path, start}:
		default:
		}
	})
}
