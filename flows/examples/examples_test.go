package examples_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/flows/examples"
	"github.com/flowd/flowd/store/storetest"
)

// newFlowd builds a flowd with opts on a fresh bbolt store in the test's
// temp folder; both are closed when the test ends.
func newFlowd(tb testing.TB, opts flowd.Options) *flowd.Flowd {
	tb.Helper()
	opts.Store = storetest.TempBolt(tb)
	fd, err := flowd.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { fd.Close(context.Background()) })
	return fd
}

// TestExamplesCanonicalAndValid: every prebuilt flow is stored in canonical
// form (export(import(f)) == f byte for byte) and validates against the
// standard blocks exactly as a deploy would.
func TestExamplesCanonicalAndValid(t *testing.T) {
	fd := newFlowd(t, flowd.Options{Issuer: "http://127.0.0.1:8080"})
	names, err := fs.Glob(examples.FS, "*.json")
	if err != nil || len(names) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	files := append([]string{}, names...)
	tour, _ := filepath.Glob(filepath.Join("..", "tour", "*.json"))
	for _, name := range append(files, tour...) {
		t.Run(filepath.Base(name), func(t *testing.T) {
			var doc []byte
			var err error
			if filepath.IsAbs(name) || filepath.Dir(name) != "." {
				doc, err = os.ReadFile(name)
			} else {
				doc, err = fs.ReadFile(examples.FS, name)
			}
			if err != nil {
				t.Fatal(err)
			}
			f, err := engine.DecodeFlow(doc)
			if err != nil {
				t.Fatal(err)
			}
			out, err := engine.EncodeFlow(f)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != string(doc) {
				t.Fatalf("%s is not canonical; canonical form:\n%s", name, out)
			}
			if _, err := fd.App().Validate(t.Context(), doc); err != nil {
				t.Fatalf("%s does not validate: %v", name, err)
			}
		})
	}
}
