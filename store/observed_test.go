package store_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
	"github.com/flowd/flowd/store/storetest"
)

// countOps counts the calls Observed reports, by operation.
type countOps struct {
	mu     sync.Mutex
	counts map[string]int
	asked  []string
}

func (c *countOps) Op(op string) func(time.Duration) {
	c.mu.Lock()
	c.asked = append(c.asked, op)
	c.mu.Unlock()
	return func(d time.Duration) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if d < 0 {
			c.counts["negative:"+op]++
		}
		c.counts[op]++
	}
}

func (c *countOps) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

// optional lists the optional interfaces a Store may implement, which
// Observed must keep. TestObservedKnowsEveryOptionalInterface keeps it
// complete.
var optional = map[string]reflect.Type{
	"Runs":     reflect.TypeFor[store.Runs](),
	"KVExpiry": reflect.TypeFor[store.KVExpiry](),
	"Limited":  reflect.TypeFor[store.Limited](),
}

// Stand-ins for backends with every mix of the optional interfaces.
type (
	bare       struct{ store.Store } // hides memstore's Runs
	withExpiry struct {
		store.Store
		calls *int
	}
	withLimits struct{ store.Store }
	withBoth   struct{ withExpiry }
	// The Runs methods of the store under test, which the embedded
	// store.Store hides, shown again by embedding store.Runs too.
	runsExpiry struct {
		withExpiry
		store.Runs
	}
	runsLimits struct {
		store.Store
		store.Runs
	}
	runsAll struct {
		withExpiry
		store.Runs
	}
)

func (w withExpiry) UpdateKVUntil(ctx context.Context, ns, key string, _ time.Time, fn func([]byte) ([]byte, error)) error {
	*w.calls++
	return w.UpdateKV(ctx, ns, key, fn)
}

func (w withExpiry) CreateKVUntil(ctx context.Context, ns, key string, val []byte, _ time.Time) error {
	*w.calls++
	return w.CreateKV(ctx, ns, key, val)
}

func (withLimits) Limits() store.Limits { return store.Limits{MaxValueBytes: 7} }
func (withBoth) Limits() store.Limits   { return store.Limits{MaxValueBytes: 7} }
func (runsLimits) Limits() store.Limits { return store.Limits{MaxValueBytes: 7} }
func (runsAll) Limits() store.Limits    { return store.Limits{MaxValueBytes: 7} }

// TestObservedKeepsOptionalInterfaces: for every mix of optional
// interfaces, the observed store implements exactly those of the store it
// wraps, and the calls through them reach it and are timed.
func TestObservedKeepsOptionalInterfaces(t *testing.T) {
	mk := func(t *testing.T) (store.Store, *int) {
		calls := 0
		return memstore.MustNew(t, memstore.Options{}), &calls
	}
	tests := []struct {
		name string
		open func(t *testing.T) (store.Store, *int)
		want []string
	}{
		{"none", func(t *testing.T) (store.Store, *int) { s, c := mk(t); return bare{s}, c }, nil},
		{"memstore (Runs)", func(t *testing.T) (store.Store, *int) { return mk(t) }, []string{"Runs"}},
		{"KVExpiry", func(t *testing.T) (store.Store, *int) { s, c := mk(t); return withExpiry{bare{s}, c}, c }, []string{"KVExpiry"}},
		{"Limited", func(t *testing.T) (store.Store, *int) { s, c := mk(t); return withLimits{bare{s}}, c }, []string{"Limited"}},
		{"KVExpiry+Limited", func(t *testing.T) (store.Store, *int) { s, c := mk(t); return withBoth{withExpiry{bare{s}, c}}, c },
			[]string{"KVExpiry", "Limited"}},
		{"Runs+KVExpiry", func(t *testing.T) (store.Store, *int) {
			s, c := mk(t)
			return runsExpiry{withExpiry{s, c}, s.(store.Runs)}, c
		},
			[]string{"KVExpiry", "Runs"}},
		{"Runs+Limited", func(t *testing.T) (store.Store, *int) { s, c := mk(t); return runsLimits{s, s.(store.Runs)}, c }, []string{"Limited", "Runs"}},
		{"all", func(t *testing.T) (store.Store, *int) {
			s, c := mk(t)
			return runsAll{withExpiry{s, c}, s.(store.Runs)}, c
		},
			[]string{"KVExpiry", "Limited", "Runs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner, calls := tt.open(t)
			ops := &countOps{counts: map[string]int{}}
			s := store.Observed(inner, ops)
			var has, innerHas []string
			for name, typ := range optional {
				if reflect.TypeOf(s).Implements(typ) {
					has = append(has, name)
				}
				if reflect.TypeOf(inner).Implements(typ) {
					innerHas = append(innerHas, name)
				}
			}
			slices.Sort(has)
			slices.Sort(innerHas)
			if !slices.Equal(innerHas, tt.want) {
				t.Fatalf("the stand-in implements %v, want %v: the test is wrong", innerHas, tt.want)
			}
			if !slices.Equal(has, tt.want) {
				t.Errorf("Observed implements %v, the store it wraps %v", has, tt.want)
			}
			ctx := t.Context()
			want := map[string]int{}
			if err := s.SetKV(ctx, "ns", "k", []byte("v")); err != nil {
				t.Fatal(err)
			}
			want["kv_set"]++
			if r, ok := s.(store.Runs); ok {
				if err := r.AppendRuns(ctx, []store.RunRecord{{Flow: "f", ID: "r1", Started: time.Now(), Data: []byte("{}")}}); err != nil {
					t.Fatal(err)
				}
				if got, err := r.ListRuns(ctx, "f", 10); err != nil || len(got) != 1 {
					t.Fatalf("ListRuns through the wrapper: %v %v", got, err)
				}
				want["runs_append"]++
				want["runs_list"]++
			}
			if e, ok := s.(store.KVExpiry); ok {
				if err := e.CreateKVUntil(ctx, "ns", "e", []byte("1"), time.Now().Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
				if err := e.UpdateKVUntil(ctx, "ns", "e", time.Now().Add(time.Hour), func([]byte) ([]byte, error) { return []byte("2"), nil }); err != nil {
					t.Fatal(err)
				}
				if *calls != 2 {
					t.Errorf("the wrapped store's expiry methods ran %d times, want 2", *calls)
				}
				want["kv_create"]++
				want["kv_update"]++
			}
			if l, ok := s.(store.Limited); ok && l.Limits().MaxValueBytes != 7 {
				t.Errorf("Limits through the wrapper: %+v", l.Limits())
			}
			if got := ops.snapshot(); !maps.Equal(got, want) {
				t.Errorf("timed %v, want %v", got, want)
			}
		})
	}
}

// TestObservedKnowsEveryOptionalInterface reads the store package's
// interfaces: every one a backend may implement beside Store must be in
// optional (and so kept by Observed, tested above). A new optional
// interface fails here until Observed keeps it.
func TestObservedKnowsEveryOptionalInterface(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var found []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				if _, isIface := ts.Type.(*ast.InterfaceType); isIface && ts.Name.IsExported() {
					found = append(found, ts.Name.Name)
				}
			}
		}
	}
	storeType := reflect.TypeFor[store.Store]()
	// Interfaces that are parts of Store, or are not implemented by a
	// store (what its methods return, what it is given).
	notOptional := map[string]bool{"Store": true, "Leadership": true, "Fence": true, "OpObserver": true}
	for _, name := range found {
		if notOptional[name] || optional[name] != nil {
			continue
		}
		if typ := storeInterface(name); typ != nil && storeType.Implements(typ) {
			continue // a part of Store: Flows, KV, Feed, ...
		}
		t.Errorf("store.%s is an interface a store may implement that Observed does not know: keep it in Observed and in this test's optional list", name)
	}
	if len(found) < 10 {
		t.Fatalf("found only %v: the source was misread", found)
	}
}

// storeInterface maps the names of Store's parts to their types.
func storeInterface(name string) reflect.Type {
	return map[string]reflect.Type{
		"Flows": reflect.TypeFor[store.Flows](), "Deployments": reflect.TypeFor[store.Deployments](),
		"KV": reflect.TypeFor[store.KV](), "Secrets": reflect.TypeFor[store.Secrets](),
		"Feed": reflect.TypeFor[store.Feed](), "Coordinator": reflect.TypeFor[store.Coordinator](),
	}[name]
}

// TestObservedConformance: the observed bbolt store passes the suite every
// backend must pass, so the wrapper changes nothing it passes through.
func TestObservedConformance(t *testing.T) {
	ops := &countOps{counts: map[string]int{}}
	storetest.Run(t, func(t *testing.T) store.Store {
		return store.Observed(openAt(t, filepath.Join(t.TempDir(), "flowd.db"), store.BoltOptions{MasterKey: newKey(t)}), ops)
	})
	got := ops.snapshot()
	for _, op := range []string{"flow_put", "kv_update", "secret_update", "runs_append"} {
		if got[op] == 0 {
			t.Errorf("no %s timed over the whole suite: %v", op, got)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "negative:") {
			t.Errorf("a negative duration was reported: %s", k)
		}
	}
}

func TestObservedNilObserver(t *testing.T) {
	s := memstore.MustNew(t, memstore.Options{})
	if got := store.Observed(s, nil); got != store.Store(s) {
		t.Errorf("Observed(s, nil) = %T, want s itself", got)
	}
}
