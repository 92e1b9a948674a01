package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// commandNames reads the commands main dispatches on from main.go itself,
// so a new command without a line in the usage text fails this test.
func commandNames(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	ast.Inspect(f, func(n ast.Node) bool {
		fn, ok := n.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "main" || fn.Recv == nil {
			return true
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			cc, ok := n.(*ast.CaseClause)
			if !ok {
				return true
			}
			for _, e := range cc.List {
				if lit, ok := e.(*ast.BasicLit); ok {
					if s, err := strconv.Unquote(lit.Value); err == nil && !strings.HasPrefix(s, "-") && s != "help" {
						names = append(names, s)
					}
				}
			}
			return true
		})
		return false
	})
	if len(names) < 5 {
		t.Fatalf("found only commands %v in main.go", names)
	}
	return names
}

func TestHelpListsEveryCommand(t *testing.T) {
	cmds := commandNames(t)
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(t.Context(), args, func(string) string { return "" }, strings.NewReader(""), &out, &errb)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errb.String())
			}
			for _, c := range cmds {
				if !strings.Contains(out.String(), "\n  "+c+" ") {
					t.Errorf("usage does not list %q:\n%s", c, out.String())
				}
			}
		})
	}
}
