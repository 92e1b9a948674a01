package jose

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

// TestReasonsListsEveryReasonConstant: a metrics backend creates its
// series from Reasons(), so a Reason constant added anywhere in the
// package without joining the list would be refused uncounted.
func TestReasonsListsEveryReasonConstant(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var declared []Reason
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok || vs.Type == nil {
				return true
			}
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Reason" {
				return true
			}
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok {
					s, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					declared = append(declared, Reason(s))
				}
			}
			return true
		})
	}
	got := Reasons()
	slices.Sort(declared)
	slices.Sort(got)
	if len(declared) < 16 || !slices.Equal(declared, got) {
		t.Errorf("Reasons() = %v\ndeclared constants = %v", got, declared)
	}
}

// TestKeyUseWindow: the last-hour count keeps the 60 minutes up to now
// and forgets older ones, also when a ring slot is reused.
func TestKeyUseWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 30, 0, time.UTC)
	tests := []struct {
		name     string
		at       []time.Duration // offsets from t0 of verifications
		now      time.Duration
		lastHour uint64
		total    uint64
		last     time.Duration
	}{
		{"none", nil, 0, 0, 0, -1},
		{"same minute", []time.Duration{0, 10 * time.Second, 20 * time.Second}, 29 * time.Second, 3, 3, 20 * time.Second},
		{"spread over the hour", []time.Duration{0, 30 * time.Minute, 59 * time.Minute}, 59 * time.Minute, 3, 3, 59 * time.Minute},
		{"first minute falls out", []time.Duration{0, 30 * time.Minute}, 60 * time.Minute, 1, 2, 30 * time.Minute},
		{"slot reused an hour later", []time.Duration{0, 0, 60 * time.Minute}, 60 * time.Minute, 1, 3, 60 * time.Minute},
		{"all old", []time.Duration{0, time.Minute}, 3 * time.Hour, 0, 2, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var u keyUse
			for _, d := range tt.at {
				u.note(t0.Add(d).Unix())
			}
			if got := u.lastHour(t0.Add(tt.now)); got != tt.lastHour {
				t.Errorf("lastHour = %d, want %d", got, tt.lastHour)
			}
			if got := u.total.Load(); got != tt.total {
				t.Errorf("total = %d, want %d", got, tt.total)
			}
			wantLast := int64(0)
			if tt.last >= 0 {
				wantLast = t0.Add(tt.last).Unix()
			}
			if got := u.last.Load(); got != wantLast {
				t.Errorf("last = %d, want %d", got, wantLast)
			}
		})
	}
}

// TestKeysetUsageFollowsValidations: a valid token counts for the key
// that verified it, the counter survives a rotation (a new view), and
// Usage lists it with the key's new state.
func TestKeysetUsageFollowsValidations(t *testing.T) {
	e := newBlockEnv(t)
	ctx := t.Context()
	tok := e.validateTimes(t, 3)
	if port, _ := e.run(t, "v", engine.Msg{"token": flipSignature(tok)}); port != "invalid" {
		t.Fatalf("flipped signature took %q", port)
	}
	before, err := e.ks.Usage(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 2 {
		t.Fatalf("usage before rotation %+v", before)
	}
	for _, u := range before {
		want := KeyUsage{Kid: u.Kid, State: u.State}
		if u.State == StateActive {
			want.Verified, want.LastHour, want.LastVerified = 3, 3, e.clk.Now().Truncate(time.Second)
		}
		if u != want {
			t.Errorf("usage before rotation %+v, want %+v", u, want)
		}
	}
	old := before[slices.IndexFunc(before, func(u KeyUsage) bool { return u.State == StateActive })]
	if _, err := e.ks.Rotate(ctx, "main", RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	after, err := e.ks.Usage(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(after, func(u KeyUsage) bool { return u.Kid == old.Kid })
	if i < 0 || after[i].Verified != 3 || after[i].State != StateRetired {
		t.Fatalf("usage after rotation %+v (old kid %s)", after, old.Kid)
	}
}
