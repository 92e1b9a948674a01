package engine

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestDependencies keeps the engine's imports pointing inward: the
// standard library and expr only; never an HTTP server, the UI, bbolt, or
// the packages built on top of the engine.
func TestDependencies(t *testing.T) {
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
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}+{{end}}{{.ImportPath}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"net/http", // any server or client package: net/http, net/http/httptest, ...
		"go.etcd.io/bbolt",
		"github.com/a-h/templ",
		"github.com/flowd/flowd/ui",
		"github.com/flowd/flowd/store",
		"github.com/flowd/flowd/blocks",
		"github.com/flowd/flowd/app",
		"github.com/flowd/flowd/cmd",
	}
	allowedThirdParty := []string{"github.com/flowd/flowd/engine", "github.com/expr-lang/expr"}
	var sawExpr, sawSelf bool
	for _, line := range strings.Fields(string(out)) {
		pkg, third := strings.CutPrefix(line, "+")
		for _, f := range forbidden {
			if pkg == f || strings.HasPrefix(pkg, f+"/") {
				t.Errorf("engine depends on %s", pkg)
			}
		}
		if third {
			ok := false
			for _, a := range allowedThirdParty {
				ok = ok || pkg == a || strings.HasPrefix(pkg, a+"/")
			}
			if !ok {
				t.Errorf("engine depends on non-standard package %s; the engine imports the stdlib and expr only", pkg)
			}
		}
		sawExpr = sawExpr || pkg == "github.com/expr-lang/expr"
		sawSelf = sawSelf || pkg == "github.com/flowd/flowd/engine"
	}
	if !sawExpr || !sawSelf {
		t.Errorf("go list output looks wrong (expr %v, engine %v):\n%s", sawExpr, sawSelf, out)
	}
}
