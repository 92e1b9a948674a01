package flowd_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/flowd/flowd"

// importRule says what one package (or, with a "/..." suffix, a package
// and everything under it) may import: packages of this module, and
// third-party modules. Paths are relative to the module ("." is the root
// package). The standard library is always allowed here; engine's own
// test (engine/deps_test.go) also keeps it off net/http.
type importRule struct {
	pkg        string
	module     []string
	thirdParty []string
}

// importRules is DESIGN.md section 2 ("Packages and who may import whom")
// as the code must keep it. Dependencies point inward: blocks depend on the
// engine, never the reverse; the admin side (app, ui) depends on blocks for
// their admin views; only the composition roots (the root package, cmd,
// the test harnesses and bench) see everything. A package missing from
// this table fails the test: add it here and to DESIGN.md together.
var importRules = []importRule{
	{pkg: "engine", thirdParty: []string{"github.com/expr-lang/expr"}},
	{pkg: "engine/enginetest", module: []string{"engine"}},
	{pkg: "passhash", thirdParty: []string{"golang.org/x/crypto"}},

	{pkg: "store/storeerr"},
	{pkg: "store", module: []string{"store/storeerr"}, thirdParty: []string{"go.etcd.io/bbolt"}},
	{pkg: "store/memstore", module: []string{"store"}},
	{pkg: "store/storetest", module: []string{"store"}},
	{pkg: "store/etcd", module: []string{"store"},
		thirdParty: []string{"go.etcd.io/etcd/", "go.uber.org/zap", "google.golang.org/grpc"}},
	{pkg: "store/etcd/etcdtest"},

	{pkg: "blocks/core", module: []string{"engine"}},
	// http on storeerr only: an unreachable store is a 503, without bbolt.
	{pkg: "blocks/http", module: []string{"engine", "store/storeerr"}},
	{pkg: "blocks/jose", module: []string{"engine"}, thirdParty: []string{"github.com/go-jose/go-jose/v4"}},
	{pkg: "blocks/jose/josetest", thirdParty: []string{"github.com/go-jose/go-jose/v4"}},
	// schedule on store: the cluster's fenced schedule state (issue 12);
	// oauth on jose: private_key_jwt client assertions (issue 15).
	{pkg: "blocks/schedule", module: []string{"engine", "store"}, thirdParty: []string{"github.com/robfig/cron/v3"}},
	{pkg: "blocks/oauth", module: []string{"engine", "store", "passhash", "blocks/jose"}},
	{pkg: "blocks/oidc", module: []string{"engine", "store", "passhash", "blocks/jose", "blocks/oauth"},
		thirdParty: []string{"github.com/a-h/templ", "golang.org/x/crypto"}},

	// app signs the node-to-node runs calls (peer.go) with go-jose.
	{pkg: "app/...", module: []string{"engine", "store"}, thirdParty: []string{"github.com/go-jose/go-jose/v4"}},
	{pkg: "flows/examples"},
	// The observability packages (issue 14): audit on the stdlib only,
	// metrics reading the services it measures.
	{pkg: "audit"},
	{pkg: "metrics", module: []string{"engine", "blocks/...", "ui", "store"},
		thirdParty: []string{"github.com/prometheus/client_golang/", "github.com/prometheus/client_model/"}},
	// tracing: the engine's Tracer seam over the OpenTelemetry API only
	// (no SDK); tracing/otlp: the SDK and OTLP exporters `flowd serve` uses.
	{pkg: "tracing", module: []string{"engine"}, thirdParty: []string{"go.opentelemetry.io/otel/attribute",
		"go.opentelemetry.io/otel/codes", "go.opentelemetry.io/otel/propagation", "go.opentelemetry.io/otel/trace"}},
	{pkg: "tracing/otlp", thirdParty: []string{"go.opentelemetry.io/otel"}},

	{pkg: "ui/api", module: []string{"app", "engine", "store", "blocks/...", "audit", "passhash"}},
	{pkg: "ui/editor", module: []string{"app", "engine", "ui/api"}, thirdParty: []string{"github.com/a-h/templ"}},
	{pkg: "ui", module: []string{"app", "engine", "store", "passhash", "ui/api", "blocks/...", "audit"},
		thirdParty: []string{"github.com/a-h/templ"}},

	{pkg: ".", module: []string{"app", "engine", "store/...", "passhash", "blocks/...", "ui", "ui/api", "ui/editor", "audit", "metrics", "tracing"},
		thirdParty: []string{"github.com/prometheus/client_golang/", "go.opentelemetry.io/otel/trace"}},
	{pkg: "cmd/...", module: []string{".", "app", "engine", "store/...", "passhash", "blocks/...", "flows/examples", "flowtest", "ui", "ui/api", "audit", "metrics", "tracing/..."},
		thirdParty: []string{"github.com/prometheus/client_golang/", "go.opentelemetry.io/otel"}},
	// flowtest runs flow test files on a throwaway flowd (issue 17).
	{pkg: "flowtest", module: []string{".", "engine", "store/memstore", "blocks/oauth", "blocks/oidc"}},
	{pkg: "ui/uitest", module: []string{".", "engine/enginetest", "flows/examples", "store/..."},
		thirdParty: []string{"github.com/chromedp/"}},
	{pkg: "bench/...", module: []string{".", "bench/...", "flows/examples", "store/..."},
		thirdParty: []string{"github.com/go-jose/go-jose/v4", "golang.org/x/crypto"}},
}

// matches reports whether the module-relative path p is pattern or, for a
// "x/..." pattern, x or below it.
func matches(pattern, p string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return p == pattern
}

// ruleFor returns the most specific rule for a package: its own, else
// the longest "x/..." rule above it.
func ruleFor(p string) (importRule, bool) {
	best, score := importRule{}, -1
	for _, r := range importRules {
		if !matches(r.pkg, p) {
			continue
		}
		s := len(r.pkg)
		if r.pkg == p {
			s = 1 << 20
		}
		if s > score {
			best, score = r, s
		}
	}
	return best, score >= 0
}

// forbiddenImports checks a package's imports against the table and
// returns one line per forbidden edge, "from -> to".
func forbiddenImports(pkg string, imports []string) []string {
	rel := relPath(pkg)
	rule, ok := ruleFor(rel)
	if !ok {
		return []string{rel + ": not in the import table (deps_test.go importRules); add it there and to DESIGN.md section 2"}
	}
	var out []string
	for _, imp := range imports {
		switch {
		case imp == module || strings.HasPrefix(imp, module+"/"):
			to := relPath(imp)
			if !slices.ContainsFunc(rule.module, func(pat string) bool { return matches(pat, to) }) {
				out = append(out, rel+" -> "+to+": forbidden edge (allowed: "+strings.Join(rule.module, ", ")+")")
			}
		case isStandard(imp) || imp == "C":
		default:
			if !slices.ContainsFunc(rule.thirdParty, func(m string) bool {
				return imp == m || strings.HasPrefix(imp, strings.TrimSuffix(m, "/")+"/")
			}) {
				out = append(out, rel+" -> "+imp+": third-party import not allowed for "+rel)
			}
		}
	}
	return out
}

func relPath(pkg string) string {
	if pkg == module {
		return "."
	}
	return strings.TrimPrefix(pkg, module+"/")
}

// isStandard: standard library paths have no dot in their first element.
func isStandard(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".")
}

// goList runs the go tool's list command in the module root.
func goList(t *testing.T, args ...string) []byte {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, serr := os.Stat(goTool); serr != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("go tool not found, and CI=%s requires this test to run", os.Getenv("CI"))
			}
			t.Skip("go tool not found")
		}
	}
	cmd := exec.Command(goTool, append([]string{"list"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr.Bytes())
	}
	return out
}

// TestImportEdges keeps the package graph to the table above (and so to
// DESIGN.md): every import of every package of the module, tests aside,
// must be an allowed edge.
func TestImportEdges(t *testing.T) {
	out := goList(t, "-json=ImportPath,Imports", "./...")
	dec := json.NewDecoder(bytes.NewReader(out))
	seen := 0
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		seen++
		for _, bad := range forbiddenImports(p.ImportPath, p.Imports) {
			t.Error(bad)
		}
	}
	if seen < 20 {
		t.Fatalf("go list found %d packages; the module has more, so its output was misread", seen)
	}
}

// engineForbidden are packages the engine must not reach even indirectly:
// no HTTP server or client, no UI, no storage engine.
var engineForbidden = []string{"net/http", "go.etcd.io/bbolt", "github.com/a-h/templ"}

// TestEngineDependencies: the engine's whole dependency tree (not only its
// direct imports) is the standard library and expr, and never net/http.
func TestEngineDependencies(t *testing.T) {
	out := goList(t, "-deps", "-f", "{{if not .Standard}}+{{end}}{{.ImportPath}}", "./engine")
	var sawExpr, sawEngine bool
	for _, line := range strings.Fields(string(out)) {
		pkg, third := strings.CutPrefix(line, "+")
		for _, f := range engineForbidden {
			if pkg == f || strings.HasPrefix(pkg, f+"/") {
				t.Errorf("engine depends on %s", pkg)
			}
		}
		switch {
		case pkg == module+"/engine":
			sawEngine = true
		case strings.HasPrefix(pkg, "github.com/expr-lang/expr"):
			sawExpr = true
		case third:
			t.Errorf("engine depends on %s; the engine imports the stdlib and expr only", pkg)
		}
	}
	if !sawExpr || !sawEngine {
		t.Errorf("go list output looks wrong (expr %v, engine %v):\n%s", sawExpr, sawEngine, out)
	}
}

// TestImportRules: the checker itself names forbidden edges and accepts
// allowed ones.
func TestImportRules(t *testing.T) {
	tests := []struct {
		name    string
		pkg     string
		imports []string
		want    []string
	}{
		{"engine on the stdlib and expr", module + "/engine", []string{"context", "github.com/expr-lang/expr/vm"}, nil},
		{"engine importing a block", module + "/engine", []string{module + "/blocks/core"},
			[]string{"engine -> blocks/core: forbidden edge (allowed: )"}},
		{"engine importing bbolt", module + "/engine", []string{"go.etcd.io/bbolt"},
			[]string{"engine -> go.etcd.io/bbolt: third-party import not allowed for engine"}},
		{"block importing the admin side", module + "/blocks/jose", []string{module + "/engine", module + "/app"},
			[]string{"blocks/jose -> app: forbidden edge (allowed: engine)"}},
		{"block importing a block that imports it", module + "/blocks/jose", []string{module + "/blocks/oauth"},
			[]string{"blocks/jose -> blocks/oauth: forbidden edge (allowed: engine)"}},
		{"audit importing the engine", module + "/audit", []string{module + "/engine"},
			[]string{"audit -> engine: forbidden edge (allowed: )"}},
		{"store importing the engine", module + "/store", []string{module + "/engine"},
			[]string{"store -> engine: forbidden edge (allowed: store/storeerr)"}},
		{"oidc on jose and oauth", module + "/blocks/oidc", []string{module + "/blocks/jose", module + "/blocks/oauth", "github.com/a-h/templ/runtime"}, nil},
		{"ui on any block package", module + "/ui", []string{module + "/blocks/schedule", module + "/ui/api"}, nil},
		{"ui importing the editor", module + "/ui", []string{module + "/ui/editor"},
			[]string{"ui -> ui/editor: forbidden edge (allowed: app, engine, store, passhash, ui/api, blocks/..., audit)"}},
		{"root importing a test harness", module, []string{module + "/ui/uitest"},
			[]string{". -> ui/uitest: forbidden edge (allowed: app, engine, store/..., passhash, blocks/..., ui, ui/api, ui/editor, audit, metrics, tracing)"}},
		{"sub-package of a prefix rule", module + "/app/internal/x", []string{module + "/store"}, nil},
		{"unknown package", module + "/blocks/ldap", nil,
			[]string{"blocks/ldap: not in the import table (deps_test.go importRules); add it there and to DESIGN.md section 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := forbiddenImports(tt.pkg, tt.imports)
			if !slices.Equal(got, tt.want) {
				t.Errorf("forbiddenImports = %q, want %q", got, tt.want)
			}
		})
	}
}
