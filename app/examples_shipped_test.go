package app

import (
	"slices"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/flows/examples"
)

// TestShippedSumsCurrent: every prebuilt flow as this tree ships it is in
// shippedSums, so the release that next changes it can upgrade data folders
// holding this version. Failing: run `go generate ./app` and commit the file.
func TestShippedSumsCurrent(t *testing.T) {
	for _, file := range enginetest.Files(t, examples.FS, "*.json") {
		name, f := file.Name, file.Flow
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
