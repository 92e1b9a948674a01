package examples_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/flowd/flowd/engine/enginetest"
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
	covered := s.Covered()
	for _, file := range enginetest.Files(t, examples.FS, "*.json") {
		if id := file.Flow.ID; !slices.Contains(covered, id) {
			t.Errorf("prebuilt flow %q (%s) has no flow test: add tests/%s%s", id, file.Name, id, flowtest.Suffix)
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
