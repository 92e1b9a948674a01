package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/blocks/oidc"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/flows/examples"
	"github.com/flowd/flowd/passhash"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/ui/api"
	"go.opentelemetry.io/otel/trace"
)

type cli struct {
	getenv             env
	stdin              io.Reader
	stdout, stderr     io.Writer
	data, addr, issuer string
	tlsCert, tlsKey    string
	// certCheck is how often, at most, serve looks for a renewed
	// certificate (zero: defaultCertCheck; tests shorten it).
	certCheck time.Duration
	// hashConcurrency and hashWait size the password-hashing pool
	// (serve's --hash-concurrency, --hash-wait; zero: flowd's defaults).
	hashConcurrency int
	hashWait        time.Duration
	// limits are serve's connection, timeout and body bounds (nil
	// outside serve: the defaults of flowd.Options apply).
	limits  *serveLimits
	cluster clusterFlags // --store and its options (store.go)
	runs    store.Runs   // this node's runs when the store keeps none
	// obs is serve's metrics listener and log format (nil outside serve).
	obs *serveObs
	// tracer receives serve's spans (nil: tracing is off; see tracing.go).
	tracer trace.TracerProvider
	// nodeAddr is where serve's admin API listens, published in the node
	// registry ("" outside serve).
	nodeAddr string
}

var errSilent = errors.New("silent")

type usageError struct{ error }

// parse parses flags that may come before, between or after positional
// arguments ("flowd run greet --input {}"), which the flag package alone
// does not allow.
func parse(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

// flags returns a FlagSet with the common flags bound.
func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.StringVar(&c.data, "data", or(c.getenv("FLOWD_DATA"), "flowd-data"), "data folder")
	fs.StringVar(&c.addr, "addr", or(c.getenv("FLOWD_ADDR"), "127.0.0.1:8080"), "listen address")
	fs.StringVar(&c.issuer, "issuer", c.getenv("FLOWD_ISSUER"), "OAuth/OpenID issuer URL (default http:// + the listen address, https:// with TLS)")
	fs.StringVar(&c.tlsCert, "tls-cert", c.getenv("FLOWD_TLS_CERT"), "serve HTTPS with this PEM certificate chain (needs --tls-key; reloaded when it changes)")
	fs.StringVar(&c.tlsKey, "tls-key", c.getenv("FLOWD_TLS_KEY"), "PEM private key of --tls-cert")
	c.storeFlags(fs)
	return fs
}

// scheme is the URL scheme flowd serves: https when given a certificate.
func (c *cli) scheme() string {
	if c.tlsCert != "" {
		return "https"
	}
	return "http"
}

// checkTLSFlags wants both TLS files or neither.
func (c *cli) checkTLSFlags() error {
	switch {
	case c.tlsCert != "" && c.tlsKey == "":
		return usageError{errors.New("--tls-cert needs --tls-key (FLOWD_TLS_KEY), the certificate's private key")}
	case c.tlsCert == "" && c.tlsKey != "":
		return usageError{errors.New("--tls-key needs --tls-cert (FLOWD_TLS_CERT), the certificate chain it belongs to")}
	}
	return nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (c *cli) logger() *slog.Logger {
	level := slog.LevelInfo
	if strings.EqualFold(c.getenv("FLOWD_LOG"), "debug") {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))
}

const (
	dbFile    = "flowd.db"
	tokenFile = "admin.token"
	addrFile  = "flowd.addr"
)

// openStore opens the data folder's database, creating folder, master key
// and database on first use.
func (c *cli) openStore(create bool) (*store.Bolt, bool, error) {
	if c.cluster.url != "" {
		return nil, false, errClusterCLI
	}
	if create {
		if err := os.MkdirAll(c.data, 0o700); err != nil {
			return nil, false, fmt.Errorf("create data folder: %w", err)
		}
	} else if _, err := os.Stat(filepath.Join(c.data, dbFile)); err != nil {
		return nil, false, fmt.Errorf("no flowd database in %s (start `flowd serve --data %s` once, or pass --data)", c.data, c.data)
	}
	key, created, err := store.LoadMasterKey(c.data, c.getenv)
	if err != nil {
		return nil, false, err
	}
	st, err := store.OpenBolt(filepath.Join(c.data, dbFile), store.BoltOptions{MasterKey: key})
	if err != nil {
		return nil, false, err
	}
	return st, created, nil
}

func (c *cli) newFlowd(st store.Store, log *slog.Logger) (*flowd.Flowd, error) {
	issuer := c.issuer
	if issuer == "" {
		issuer = c.scheme() + "://" + c.addr
	}
	snaps := 0
	if v := c.getenv("FLOWD_SNAPSHOTS_PER_SECOND"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("FLOWD_SNAPSHOTS_PER_SECOND=%q: want an integer (negative: every run)", v)
		}
		snaps = n
	}
	var maxBody int64
	var bodyTimeout time.Duration
	var proxies flowd.TrustedProxies
	if c.limits != nil {
		maxBody, bodyTimeout, proxies = c.limits.maxBody, c.limits.read, c.limits.proxies
	}
	return flowd.New(flowd.Options{Store: st, Runs: c.runs, MaxBodyBytes: maxBody, BodyReadTimeout: bodyTimeout, Logger: log, AdminToken: c.getenv("FLOWD_ADMIN_TOKEN"),
		AdminPassword: c.getenv("FLOWD_ADMIN_PASSWORD"), Examples: examples.FS, Env: exprEnv(c.getenv), Issuer: issuer,
		SnapshotsPerSecond: snaps, HashConcurrency: c.hashConcurrency, HashWait: c.hashWait, Metrics: c.obs.registerer(),
		TracerProvider: c.tracer,
		// The registry entry flowd.Start writes is the one registerNode
		// wrote (same id, address and version), with what this node applied.
		NodeID: c.cluster.nodeID, NodeAddr: c.nodeAddr, NodeVersion: version(),
		// Behind a TLS-terminating proxy flowd itself speaks http, but an
		// https issuer says browsers reach it over https.
		SecureCookies:  c.tlsCert != "" || strings.HasPrefix(strings.ToLower(issuer), "https://"),
		TrustedProxies: proxies})
}

// hashDefaults reads FLOWD_HASH_CONCURRENCY and FLOWD_HASH_WAIT, the
// defaults of serve's --hash-concurrency and --hash-wait.
func (c *cli) hashDefaults() (int, time.Duration, error) {
	conc, wait := passhash.DefaultConcurrency, passhash.DefaultWait
	if v := c.getenv("FLOWD_HASH_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, 0, fmt.Errorf("FLOWD_HASH_CONCURRENCY=%q: want an integer", v)
		}
		conc = n
	}
	if v := c.getenv("FLOWD_HASH_WAIT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return 0, 0, fmt.Errorf("FLOWD_HASH_WAIT=%q: want a duration such as 1s", v)
		}
		wait = d
	}
	return conc, wait, nil
}

// exprEnv returns the environment variables expressions may read: those
// named in FLOWD_EXPR_ENV (comma separated). Nothing else leaks into flows.
func exprEnv(getenv env) map[string]string {
	out := map[string]string{}
	for _, name := range strings.Split(getenv("FLOWD_EXPR_ENV"), ",") {
		if name = strings.TrimSpace(name); name != "" {
			out[name] = getenv(name)
		}
	}
	return out
}

func (c *cli) serve(ctx context.Context, args []string) error {
	fs := c.flags("serve")
	conc, wait, err := c.hashDefaults()
	if err != nil {
		return err
	}
	fs.IntVar(&c.hashConcurrency, "hash-concurrency", conc,
		"argon2id computations at once (19 MiB each) for secrets and passwords (env FLOWD_HASH_CONCURRENCY)")
	fs.DurationVar(&c.hashWait, "hash-wait", wait,
		"how long a request waits for a hashing slot before 503 (env FLOWD_HASH_WAIT)")
	c.limits = c.bindLimits(fs)
	c.obs = c.bindObs(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := c.limits.check(); err != nil {
		return err
	}
	if err := c.obs.check(); err != nil {
		return err
	}
	if c.hashConcurrency < 1 || c.hashConcurrency > 256 {
		return usageError{fmt.Errorf("--hash-concurrency %d: want 1 to 256", c.hashConcurrency)}
	}
	if c.hashWait < time.Millisecond || c.hashWait > time.Minute {
		return usageError{fmt.Errorf("--hash-wait %s: want 1ms to 1m", c.hashWait)}
	}
	log := c.obsLogger(c.obs)
	tp, stopTracing, err := c.startTracing(ctx, log)
	if err != nil {
		return err
	}
	defer stopTracing()
	if tp != nil {
		c.tracer = tp
	}
	// TLS files are checked before the data folder is created, so a typo
	// leaves nothing behind.
	if err := c.checkTLSFlags(); err != nil {
		return err
	}
	var tlsConf *tls.Config
	if c.tlsCert != "" {
		every := c.certCheck
		if every <= 0 {
			every = defaultCertCheck
		}
		cf, err := newCertFiles(c.tlsCert, c.tlsKey, every, log)
		if err != nil {
			return err
		}
		// Go's default cipher suites; the version floor drops TLS 1.0/1.1.
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cf.GetCertificate}
	}
	st, createdKey, err := c.openServeStore(ctx)
	if err != nil {
		if errors.Is(err, store.ErrLocked) && c.cluster.url == "" {
			return fmt.Errorf("%w: is another flowd serving %s?", err, c.data)
		}
		return err
	}
	defer st.Close()
	c.runs = st.runs
	if createdKey {
		fmt.Fprintf(c.stdout, "Created master key %s (keep it: it decrypts the keys in %s)\n",
			filepath.Join(c.data, "master.key"), dbFile)
	}
	// Listen before building flowd: with --addr :0 the issuer's port is
	// only known once the socket is open.
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.addr, err)
	}
	defer ln.Close()
	ln = c.limits.listener(ln)
	mln, err := c.obs.listen()
	if err != nil {
		return err
	}
	if mln != nil {
		defer mln.Close()
	}
	addr := ln.Addr().String()
	base := c.scheme() + "://" + addr
	if c.issuer == "" {
		c.issuer = base
	}
	c.nodeAddr = base
	if c.cluster.nodeAddr != "" {
		// The listen address may be 0.0.0.0 or a name only this host
		// resolves: other nodes reach this one at --node-addr.
		c.nodeAddr = strings.TrimSuffix(c.cluster.nodeAddr, "/")
	}
	fd, err := c.newFlowd(st.Store, log)
	if err != nil {
		return err
	}
	if err := c.registerNode(ctx, st, c.nodeAddr); err != nil {
		return err
	}
	tok, err := fd.EnsureAdminToken(ctx)
	if err != nil {
		return err
	}
	tokenPath := filepath.Join(c.data, tokenFile)
	if tok != "" {
		if err := writeSecretFile(tokenPath, tok+"\n"); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "Created the admin API token in %s (mode 0600).\n", tokenPath)
	}
	if err := fd.Start(ctx); err != nil {
		return err
	}
	_ = c.writeAddrFile(base)
	defer os.Remove(filepath.Join(c.data, addrFile))

	srv := c.limits.server(fd.Handler())
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	srv.TLSConfig = tlsConf

	fmt.Fprintf(c.stdout, "flowd listening on %s (data: %s, issuer: %s)\n", base, c.data, c.issuer)
	if c.getenv("FLOWD_ADMIN_TOKEN") != "" {
		fmt.Fprintf(c.stdout, "Admin API: %s/admin/api (token: $FLOWD_ADMIN_TOKEN)\n", base)
	} else {
		fmt.Fprintf(c.stdout, "Admin API: curl -H \"Authorization: Bearer $(cat %s)\" %s/admin/api/flows\n", tokenPath, base)
	}
	if fd.AdminPasswordSet(ctx) {
		fmt.Fprintf(c.stdout, "Admin UI: %s/admin/\n", base)
	} else {
		fmt.Fprintf(c.stdout, "Admin UI: %s/admin/ (set a password first: flowd admin password --data %s, reads it from stdin; or FLOWD_ADMIN_PASSWORD)\n", base, c.data)
	}
	if mln != nil {
		c.obs.serveMetrics(ctx, mln, log)
		fmt.Fprintf(c.stdout, "Metrics: http://%s/metrics\n", mln.Addr())
	}
	srv.RegisterOnShutdown(fd.CloseStreams)
	errc := make(chan error, 1)
	go func() {
		if tlsConf != nil {
			// The certificate comes from TLSConfig.GetCertificate; ServeTLS
			// adds HTTP/2 to the offered protocols.
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		_ = fd.Close(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(c.stdout, "flowd shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if cerr := fd.Close(sctx); err == nil {
		err = cerr
	}
	return err
}

// writeAddrFile tells CLI commands where the server holding the data
// folder answers: its base URL, and with TLS the certificate file they
// trust for that call.
//
//	https://127.0.0.1:8443
//	tls-cert /etc/flowd/fullchain.pem
func (c *cli) writeAddrFile(base string) error {
	text := base + "\n"
	if c.tlsCert != "" {
		// Absolute: the CLI may run from another folder.
		abs, err := filepath.Abs(c.tlsCert)
		if err != nil {
			abs = c.tlsCert
		}
		text += "tls-cert " + abs + "\n"
	}
	return os.WriteFile(filepath.Join(c.data, addrFile), []byte(text), 0o600)
}

// readAddrFile reads what writeAddrFile wrote. A bare address (an older
// flowd's file) is plain http.
func readAddrFile(path string) (base, certFile string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case i == 0 && strings.Contains(line, "://"):
			base = line
		case i == 0:
			base = "http://" + line
		case strings.HasPrefix(line, "tls-cert "):
			certFile = strings.TrimPrefix(line, "tls-cert ")
		}
	}
	return base, certFile, nil
}

func writeSecretFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// backend is where data commands go: the store directly, or a running
// server's admin API when that server holds the database.
type backend interface {
	Flows(ctx context.Context) ([]app.FlowInfo, error)
	// Import stores a flow and, with deploy, deploys it and answers where
	// it runs (nil without deploy).
	Import(ctx context.Context, doc []byte, deploy bool) (app.FlowInfo, *app.Rollout, error)
	Export(ctx context.Context, id string) ([]byte, error)
	Run(ctx context.Context, id, node string, input map[string]any) (*engine.Trace, error)
	AddClient(ctx context.Context, cl oauth.Client, secret string) (oauth.Client, string, error)
	ListClients(ctx context.Context) ([]oauth.Client, error)
	RemoveClient(ctx context.Context, id string) error
	AddUser(ctx context.Context, u oidc.User, password string) (oidc.User, error)
	ListUsers(ctx context.Context) ([]oidc.User, error)
	RemoveUser(ctx context.Context, username string) (oidc.SignOutResult, error)
	SignOutUser(ctx context.Context, username string) (oidc.SignOutResult, error)
	// SetUserPassword sets a person's password, then signs them out
	// everywhere (oidc.Users.SetPasswordSignedOut).
	SetUserPassword(ctx context.Context, username, password string) (oidc.SignOutResult, error)
	Close(ctx context.Context) error
}

func (c *cli) backend(ctx context.Context) (backend, error) {
	st, _, err := c.openStore(false)
	if err == nil {
		fd, err := c.newFlowd(st, slog.New(slog.DiscardHandler))
		if err != nil {
			st.Close()
			return nil, err
		}
		return &localBackend{fd: fd, st: st}, nil
	}
	if !errors.Is(err, store.ErrLocked) {
		return nil, err
	}
	if err := c.checkTLSFlags(); err != nil {
		return nil, err
	}
	// The server's flowd.addr names its URL and certificate; FLOWD_ADDR
	// still picks the address, and without the file --addr and --tls-cert
	// describe the server.
	base, certFile, rerr := readAddrFile(filepath.Join(c.data, addrFile))
	if rerr != nil && c.cluster.url != "" && c.getenv("FLOWD_ADDR") == "" {
		return nil, fmt.Errorf("%w, and no node serves from %s (start flowd serve there, or set FLOWD_ADDR and FLOWD_ADMIN_TOKEN to a node's)", errClusterCLI, c.data)
	}
	if rerr != nil {
		base, certFile = c.scheme()+"://"+c.addr, c.tlsCert
	}
	if addr := c.getenv("FLOWD_ADDR"); addr != "" {
		base = strings.SplitN(base, "://", 2)[0] + "://" + addr
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil // the server is local to the data folder
	if strings.HasPrefix(base, "https://") {
		if certFile == "" {
			return nil, fmt.Errorf("the server holding %s serves https, but no certificate to trust is known (pass --tls-cert)", c.data)
		}
		conf, err := pinnedTLS(certFile)
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig = conf
	}
	tok := c.getenv("FLOWD_ADMIN_TOKEN")
	if tok == "" {
		b, rerr := os.ReadFile(filepath.Join(c.data, tokenFile))
		if rerr != nil {
			return nil, fmt.Errorf("a server holds %s; set FLOWD_ADMIN_TOKEN to use its admin API", c.data)
		}
		tok = strings.TrimSpace(string(b))
	}
	return &remoteBackend{base: base + "/admin/api", token: tok, certFile: certFile,
		client: &http.Client{Timeout: 60 * time.Second, Transport: transport}}, nil
}

type localBackend struct {
	fd *flowd.Flowd
	st *store.Bolt
}

func (l *localBackend) Flows(ctx context.Context) ([]app.FlowInfo, error) {
	return l.fd.App().ListFlows(ctx)
}

func (l *localBackend) Import(ctx context.Context, doc []byte, deploy bool) (app.FlowInfo, *app.Rollout, error) {
	wait := time.Duration(-1)
	if deploy {
		wait = 0 // this process is the only node
	}
	return l.fd.App().ImportWait(ctx, doc, wait)
}

func (l *localBackend) Export(ctx context.Context, id string) ([]byte, error) {
	doc, _, err := l.fd.App().Export(ctx, id)
	return doc, err
}

// Run deploys just this flow's stored version in this process and runs it.
func (l *localBackend) Run(ctx context.Context, id, node string, input map[string]any) (*engine.Trace, error) {
	a := l.fd.App()
	if _, err := a.LoadDeployed(ctx, id); err != nil {
		if errors.Is(err, engine.ErrNotDeployed) {
			err = fmt.Errorf("%w (deploy it first: flowd import --deploy FILE)", err)
		}
		return nil, err
	}
	tr, err := a.Run(ctx, id, node, input)
	a.FlushTraces()
	return tr, err
}

func (l *localBackend) Close(ctx context.Context) error {
	err := l.fd.Close(ctx)
	if cerr := l.st.Close(); err == nil {
		err = cerr
	}
	return err
}

type remoteBackend struct {
	base     string
	token    string
	certFile string // the certificate an https server must present
	client   *http.Client
}

func (r *remoteBackend) do(ctx context.Context, method, path string, body []byte, out any) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		var cve *tls.CertificateVerificationError
		if errors.As(err, &cve) {
			return nil, fmt.Errorf("the server holding the data folder does not present the certificate in %s "+
				"(renewed a moment ago? try again): %w", r.certFile, err)
		}
		return nil, fmt.Errorf("the server holding the data folder did not answer: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		// The API's error table read backwards: errors.Is finds the same
		// sentinel a local call returns, validation errors keep node and field.
		return nil, api.FromResponse(resp.StatusCode, resp.Header, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("server answer: %w", err)
		}
	}
	return data, nil
}

// doField calls the admin API like do and returns one field of its
// JSON answer: the API wraps what it answers ({"flows": [...]}).
func doField[T any](ctx context.Context, r *remoteBackend, method, path string, body []byte, field string) (T, error) {
	var v T
	var out map[string]json.RawMessage
	if _, err := r.do(ctx, method, path, body, &out); err != nil {
		return v, err
	}
	if raw, ok := out[field]; ok {
		if err := json.Unmarshal(raw, &v); err != nil {
			return v, fmt.Errorf("server answer: %w", err)
		}
	}
	return v, nil
}

func (r *remoteBackend) Flows(ctx context.Context) ([]app.FlowInfo, error) {
	return doField[[]app.FlowInfo](ctx, r, "GET", "/flows", nil, "flows")
}

func (r *remoteBackend) Import(ctx context.Context, doc []byte, deploy bool) (app.FlowInfo, *app.Rollout, error) {
	f, err := engine.DecodeFlow(doc)
	if err != nil {
		return app.FlowInfo{}, nil, err
	}
	var info app.FlowInfo
	if _, err := r.do(ctx, "PUT", "/flows/"+f.ID, doc, &info); err != nil {
		return info, nil, err
	}
	if !deploy {
		return info, nil, nil
	}
	// The server waits (2 s by default) for every node of a cluster.
	var ro app.Rollout
	if _, err := r.do(ctx, "POST", "/flows/"+f.ID+"/deploy", nil, &ro); err != nil {
		return info, nil, err
	}
	_, err = r.do(ctx, "GET", "/flows/"+f.ID+"/info", nil, &info)
	return info, &ro, err
}

func (r *remoteBackend) Export(ctx context.Context, id string) ([]byte, error) {
	return r.do(ctx, "GET", "/flows/"+id, nil, nil)
}

func (r *remoteBackend) Run(ctx context.Context, id, node string, input map[string]any) (*engine.Trace, error) {
	body, _ := json.Marshal(map[string]any{"node": node, "input": input})
	data, err := r.do(ctx, "POST", "/flows/"+id+"/run", body, nil)
	if err != nil {
		return nil, err
	}
	tr, err := engine.DecodeTrace(data)
	if err != nil {
		return nil, fmt.Errorf("the server's run answer: %w", err)
	}
	if tr.Status == engine.StatusError {
		return tr, errors.New(tr.Error)
	}
	return tr, nil
}

func (r *remoteBackend) Close(context.Context) error { return nil }

func (c *cli) importCmd(ctx context.Context, args []string) error {
	fs := c.flags("import")
	deploy := fs.Bool("deploy", false, "deploy the flows after storing them")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("name one or more flow files")}
	}
	b, err := c.backend(ctx)
	if err != nil {
		return err
	}
	defer b.Close(context.Background())
	failed := 0
	for _, name := range fs.Args() {
		doc, err := readFlowFile(name)
		if err == nil {
			var info app.FlowInfo
			var ro *app.Rollout
			info, ro, err = b.Import(ctx, doc, *deploy)
			if err == nil {
				fmt.Fprintf(c.stdout, "%s: imported flow %q (%s)\n", name, info.ID, info.Status)
				if ro != nil && !c.printRollout(ro) {
					failed++
				}
				continue
			}
		}
		failed++
		fmt.Fprintf(c.stderr, "%s: %v\n", name, err)
	}
	if failed > 0 {
		return errSilent
	}
	return nil
}

// printRollout prints where a deployed version runs: one line, plus one
// per node that does not run it (failed, with its reason, or behind). It
// reports false when a node failed to run it (the import then exits
// non-zero, although the version is stored and runs elsewhere).
func (c *cli) printRollout(ro *app.Rollout) bool {
	fmt.Fprintf(c.stdout, "  version %d runs on %d of %d node(s)\n", ro.Version, ro.Applied, len(ro.Nodes))
	if ro.Note != "" {
		fmt.Fprintf(c.stderr, "  %s\n", ro.Note)
	}
	ok := true
	for _, n := range ro.Nodes {
		switch n.State {
		case app.NodeFailed:
			ok = false
			fmt.Fprintf(c.stderr, "  node %s failed: %s\n", n.Node, n.Error)
		case app.NodeBehind:
			line := fmt.Sprintf("  node %s has not applied it yet (at deploy generation %d of %d)", n.Node, n.Generation, ro.Generation)
			if n.Error != "" {
				line += "; its last error: " + n.Error
			}
			fmt.Fprintln(c.stderr, line)
		}
	}
	return ok
}

func readFlowFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := io.ReadAll(io.LimitReader(f, engine.MaxFlowBytes+1))
	if err != nil {
		return nil, err
	}
	return doc, nil
}

func (c *cli) export(ctx context.Context, args []string) error {
	fs := c.flags("export")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("name one flow id")}
	}
	b, err := c.backend(ctx)
	if err != nil {
		return err
	}
	defer b.Close(context.Background())
	doc, err := b.Export(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	_, err = c.stdout.Write(doc)
	return err
}

// validate checks files with the standard blocks; it needs no data folder,
// so it fits any CI pipeline.
func (c *cli) validate(ctx context.Context, args []string) error {
	fs := c.flags("validate")
	strict := fs.Bool("strict", false, "exit 1 on lint warnings too")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("name one or more flow files")}
	}
	// A bare registry: no store, no key, no services. Factories still
	// check every config (engine.Setup.Validating).
	reg, err := flowd.NewRegistry(flowd.StandardBlocks()...)
	if err != nil {
		return err
	}
	rt, err := engine.New(engine.Options{Registry: reg})
	if err != nil {
		return err
	}
	defer rt.Close(context.Background())
	failed := 0
	// The files are linted together, so checks relate a token signed in
	// one to the rotation of its keyset in another.
	var flows []*engine.Flow
	files := map[string]string{}
	for _, name := range fs.Args() {
		doc, err := readFlowFile(name)
		if err == nil {
			var f *engine.Flow
			f, err = engine.DecodeFlow(doc)
			if err == nil {
				flows = append(flows, f)
				files[f.ID] = name
				err = rt.Validate(ctx, f)
				if err == nil {
					fmt.Fprintf(c.stdout, "%s: ok (flow %q, %d nodes)\n", name, f.ID, len(f.Nodes))
					continue
				}
			}
		}
		failed++
		var list engine.ValidationErrors
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintf(c.stdout, "%s: %v\n", name, e)
			}
		} else {
			fmt.Fprintf(c.stdout, "%s: %v\n", name, err)
		}
	}
	warnings := reg.Lint(ctx, flows)
	for _, w := range warnings {
		fmt.Fprintf(c.stdout, "%s: warning: %v\n", files[w.Flow], w)
	}
	if failed > 0 || *strict && len(warnings) > 0 {
		return errSilent
	}
	return nil
}

func (c *cli) runCmd(ctx context.Context, args []string) error {
	fs := c.flags("run")
	input := fs.String("input", "", "input message as a JSON object")
	node := fs.String("node", "", "trigger node to start from (default: the flow's only or manual trigger)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("name one flow id")}
	}
	var msg map[string]any
	if *input != "" {
		if err := json.Unmarshal([]byte(*input), &msg); err != nil {
			return usageError{fmt.Errorf("--input must be a JSON object: %v", err)}
		}
	}
	b, err := c.backend(ctx)
	if err != nil {
		return err
	}
	defer b.Close(context.Background())
	tr, err := b.Run(ctx, fs.Arg(0), *node, msg)
	if tr != nil {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		_ = enc.Encode(tr)
	}
	return err
}

func (c *cli) flows(ctx context.Context, args []string) error {
	fs := c.flags("flows")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	b, err := c.backend(ctx)
	if err != nil {
		return err
	}
	defer b.Close(context.Background())
	list, err := b.Flows(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tVERSION\tNODES\tNAME")
	for _, f := range list {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", f.ID, f.Status, f.Deployed, f.Nodes, f.Name)
	}
	return tw.Flush()
}

func (c *cli) schema(ctx context.Context, args []string) error {
	fs := c.flags("schema")
	if err := parse(fs, args); err != nil {
		return err
	}
	reg, err := flowd.NewRegistry(flowd.StandardBlocks()...)
	if err != nil {
		return err
	}
	s, err := reg.JSONSchema()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "%s\n", s)
	return err
}
