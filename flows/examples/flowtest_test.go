package examples_test

import (
	"io/fs"
	"path/filepath"
	"slices"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/flows/examples"
	"github.com/flowd/flowd/flowtest"
)

// TestFlowTests runs the flow tests of the prebuilt flows (tests/*.test.json),
// as `flowd test flows/examples` does, and checks that every prebuilt flow
// has some.
func TestFlowTests(t *testing.T) {
	s, err := flowtest.Load(".")
	if err != nil {
		t.Fatal(err)
	}
	names, err := fs.Glob(examples.FS, "*.json")
	if err != nil {
		t.Fatal(err)
	}
	covered := s.Covered()
	for _, name := range names {
		doc, _ := fs.ReadFile(examples.FS, name)
		f, err := engine.DecodeFlow(doc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Contains(covered, f.ID) {
			t.Errorf("prebuilt flow %q (%s) has no flow test: add tests/%s%s", f.ID, name, f.ID, flowtest.Suffix)
		}
	}
	for _, file := range s.Files {
		for i, c := range file.Cases {
			t.Run(filepath.Base(file.Path)+"/"+c.Name, func(t *testing.T) {
				r := s.RunCase(t.Context(), flowtest.Options{}, file, i)
				if r.Failure != nil {
					t.Fatal(r.Failure)
				}
			})
		}
	}
}
