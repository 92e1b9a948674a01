package app

import (
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/flows/examples"
)

// TestShippedSumsCurrent: every prebuilt flow as this tree ships it is in
// shippedSums, so the release that next changes it can upgrade data folders
// holding this version. Failing: run `go generate ./app` and commit the file.
func TestShippedSumsCurrent(t *testing.T) {
	names, err := fs.Glob(examples.FS, "*.json")
	if err != nil || len(names) == 0 {
		t.Fatalf("examples: %v %v", names, err)
	}
	for _, name := range names {
		doc, err := fs.ReadFile(examples.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := engine.DecodeFlow(doc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		canon, err := engine.EncodeFlow(f)
		if err != nil {
			t.Fatal(err)
		}
		id := strings.TrimSuffix(name, ".json")
		if !slices.Contains(shippedSums[f.ID], sum(canon)) {
			t.Errorf("%s (flow %q): its sum %s is not in shippedSums; run `go generate ./app`", name, id, sum(canon)[:12])
		}
	}
}
