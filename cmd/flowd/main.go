// Command flowd runs the flowd flow engine on an embedded store (one bbolt
// file in a data folder) and manages its flows from the command line.
//
//	flowd [serve]              serve flows and the admin API
//	flowd import FILE...       store flow documents (--deploy to deploy them)
//	flowd export ID            print a flow's canonical JSON
//	flowd validate FILE...     check flow documents (exit 1 on problems)
//	flowd run ID               run a deployed flow once and print its trace
//	flowd test PATH...         run flow tests (*.test.json) on a throwaway store
//	flowd flows                list flows
//	flowd schema               print the flow document JSON Schema
//	flowd clients|users        manage OAuth clients and the people who sign in
//	flowd admin password       set the admin UI password (stdin or --password-file)
//	flowd audit                list the audit log
//
// Commands that read or change data work whether or not a server runs on
// the data folder: when one does (it holds the database file), they go
// through its admin API.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // schedules check IANA zones even where the OS has no zoneinfo

	"github.com/flowd/flowd/engine"
)

func main() {
	applyMemoryDefaults(os.Getenv) // GOGC 400, GOMEMLIMIT 40 MiB unless set (memory.go)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is how commands read the environment (tests pass a map).
type env func(string) string

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, getenv env, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	return c.main(ctx, args)
}

// main runs one command; tests that tune the cli (certCheck) call it.
func (c *cli) main(ctx context.Context, args []string) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	} else if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		cmd = "help" // the command list, not only serve's flags
	}
	var err error
	if cmd != "serve" {
		// Changes made on the data folder directly are the CLI's in the
		// audit log (through a server's API they are its token's).
		ctx = engine.WithActor(ctx, "cli")
	}
	switch cmd {
	case "serve":
		err = c.serve(ctx, args)
	case "import":
		err = c.importCmd(ctx, args)
	case "export":
		err = c.export(ctx, args)
	case "validate":
		err = c.validate(ctx, args)
	case "run":
		err = c.runCmd(ctx, args)
	case "test":
		err = c.testCmd(ctx, args)
	case "flows":
		err = c.flows(ctx, args)
	case "schema":
		err = c.schema(ctx, args)
	case "clients":
		err = c.clients(ctx, args)
	case "users":
		err = c.users(ctx, args)
	case "admin":
		err = c.admin(ctx, args)
	case "audit":
		err = c.auditCmd(ctx, args)
	case "help", "-h", "--help":
		fmt.Fprint(c.stdout, usage)
		return 0
	default:
		fmt.Fprintf(c.stderr, "flowd: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		if err != errSilent {
			fmt.Fprintf(c.stderr, "flowd %s: %v\n", cmd, err)
		}
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

const usage = `Usage: flowd [command] [flags]

Commands:
  serve              serve flows and the admin API (the default)
  import FILE...     store flow documents; --deploy deploys them
  export ID          print a flow's canonical JSON
  validate FILE...   check flow documents against the blocks (exit 1 on problems) and lint
                     them together (warnings; --strict makes them fail too)
  run ID             run a deployed flow once and print its trace (--input JSON, --node ID)
  test PATH...       run flow tests (*.test.json files, or folders of them) with a frozen
                     clock on a throwaway store; --format text|tap|junit, --out FILE,
                     --run REGEX (only matching "file: case" names)
  flows              list flows and their status
  schema             print the JSON Schema of flow documents
  clients add --id ID [--secret S] --scopes "a b" [--audiences "u v"]
             [--redirect-uris "u v"] [--post-logout-redirect-uris "u v"] [--public] [--grant-types "g h"]
                     register an OAuth client (a generated secret is printed once)
  clients list       list OAuth clients
  clients remove ID  remove an OAuth client
  users add --username U (--password P | --password-stdin) [--email E] [--email-verified] [--name N]
                     add a person who signs in through the OpenID flows
  users list         list users
  users remove U     remove a user
  users signout U    sign a user out everywhere: end their sessions, revoke their grants
  admin password     set the admin UI password (from stdin or --password-file)
  audit              list the audit log, newest first (--type T, --subject S or prefix/,
                     --since/--until RFC3339, --limit N, --before ID, --json)

Common flags and environment:
  --data DIR    data folder (FLOWD_DATA, default ./flowd-data)
  --addr ADDR   listen address (FLOWD_ADDR, default 127.0.0.1:8080)
  --issuer URL  OAuth/OpenID issuer (FLOWD_ISSUER, default http:// + the listen address,
                https:// with TLS)
  --tls-cert FILE, --tls-key FILE
                serve HTTPS with this PEM certificate chain and private key
                (FLOWD_TLS_CERT, FLOWD_TLS_KEY; both or neither; the files are
                read again when they change, so renewals need no restart)

Serve limits (README "Limits an operator can set"):
  --max-conns N (FLOWD_MAX_CONNS, 4096), --max-conns-per-addr N (FLOWD_MAX_CONNS_PER_ADDR, 256;
  0 behind a reverse proxy), --read-header-timeout D (5s), --read-timeout D (15s, whole
  request), --idle-timeout D (60s), --max-body BYTES (FLOWD_MAX_BODY, 1048576)

Serve observability (README "Metrics and audit"):
  --metrics-addr ADDR (FLOWD_METRICS_ADDR; off by default) serves GET /metrics there only;
  --log-format text|json (FLOWD_LOG_FORMAT, text); OpenTelemetry traces over OTLP when
  OTEL_TRACES_EXPORTER=otlp or OTEL_EXPORTER_OTLP_ENDPOINT is set (off by default; README "Tracing")

Commands that change data use the running server's admin API when a server
holds the data folder (token from FLOWD_ADMIN_TOKEN or DIR/admin.token; over
https they trust only the server's own certificate file).
`
