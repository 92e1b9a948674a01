package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/store"
)

// The groups of the cluster-ready store: CreateKV, contended updates, the
// namespace look-alikes, the deployed state, the feed and the coordinator
// of one handle. RunNodes adds what needs two handles on one state.

func testKVCreate(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "CreateKV", s.CreateKV(ctx, "ns", "k", []byte("first")))
	wantErr(t, "CreateKV of a present key", s.CreateKV(ctx, "ns", "k", []byte("second")), store.ErrConflict)
	if v, err := s.GetKV(ctx, "ns", "k"); err != nil || string(v) != "first" {
		t.Errorf("GetKV after a refused create = %q, %v; want first (not overwritten)", v, err)
	}
	must(t, "CreateKV nil value", s.CreateKV(ctx, "ns", "empty", nil))
	if v, err := s.GetKV(ctx, "ns", "empty"); err != nil || v == nil || len(v) != 0 {
		t.Errorf("GetKV of a nil create = %q (nil=%v), %v; want an empty value", v, v == nil, err)
	}
	wantErr(t, "CreateKV of an empty present value", s.CreateKV(ctx, "ns", "empty", []byte("x")), store.ErrConflict)
	must(t, "DeleteKV", s.DeleteKV(ctx, "ns", "k"))
	must(t, "CreateKV after delete", s.CreateKV(ctx, "ns", "k", []byte("again")))
	// The same key in another namespace is another record.
	must(t, "CreateKV in another namespace", s.CreateKV(ctx, "other", "k", []byte("x")))
}

// testKVCreateRace: of N concurrent creates of one key exactly one wins.
func testKVCreateRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = s.CreateKV(ctx, "ns", "once", []byte(fmt.Sprint(i))) })
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Errorf("creates %d and %d both succeeded", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("create %d: %v, want nil or ErrConflict", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no create succeeded")
	}
	if v, err := s.GetKV(ctx, "ns", "once"); err != nil || string(v) != fmt.Sprint(won) {
		t.Errorf("GetKV = %q, %v; want the winner's %d", v, err, won)
	}
}

// testKVUpdateContended: every worker appends its own token to one record;
// the result holds every token exactly once, whatever the number of calls
// of fn (an optimistic backend retries). A lost update drops a token, a
// stale old duplicates none but drops one too.
func testKVUpdateContended(t *testing.T, s store.Store) {
	ctx := t.Context()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				tok := fmt.Sprintf("%d.%d;", w, i)
				err := s.UpdateKV(ctx, "ns", "hot", func(old []byte) ([]byte, error) {
					return append(old, tok...), nil
				})
				if err != nil {
					t.Errorf("UpdateKV: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	v, err := s.GetKV(ctx, "ns", "hot")
	must(t, "GetKV", err)
	toks := strings.Split(strings.TrimSuffix(string(v), ";"), ";")
	if len(toks) != workers*perWorker {
		t.Errorf("record holds %d tokens, want %d (lost or repeated updates)", len(toks), workers*perWorker)
	}
	seen := map[string]bool{}
	for _, tok := range toks {
		if seen[tok] {
			t.Errorf("token %s written twice", tok)
		}
		seen[tok] = true
	}
}

// testKVLookAlike: namespaces and keys are independent strings, whatever
// separator a backend's layout uses.
func testKVLookAlike(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "SetKV a b/c", s.SetKV(ctx, "a", "b/c", []byte("1")))
	must(t, "SetKV a/b c", s.SetKV(ctx, "a/b", "c", []byte("2")))
	must(t, "SetKV a%2Fb c", s.SetKV(ctx, "a%2Fb", "c", []byte("3")))
	for _, c := range []struct{ ns, key, want string }{{"a", "b/c", "1"}, {"a/b", "c", "2"}, {"a%2Fb", "c", "3"}} {
		if v, err := s.GetKV(ctx, c.ns, c.key); err != nil || string(v) != c.want {
			t.Errorf("GetKV %s %s = %q, %v; want %s", c.ns, c.key, v, err, c.want)
		}
	}
	for ns, want := range map[string][]string{"a": {"b/c"}, "a/b": {"c"}, "a%2Fb": {"c"}, "a/": {}} {
		if keys := listKV(t, s, ns); !slices.Equal(keys, want) {
			t.Errorf("ListKV %s = %q, want %q", ns, keys, want)
		}
	}
	must(t, "DeleteKV a b/c", s.DeleteKV(ctx, "a", "b/c"))
	if v, err := s.GetKV(ctx, "a/b", "c"); err != nil || string(v) != "2" {
		t.Errorf("GetKV a/b c after deleting a b/c = %q, %v", v, err)
	}
	// Byte order with the characters an escaping layout rewrites.
	for _, k := range []string{"%", "/", "%2F", "a/b", "a%b", "a", "%25", "a/"} {
		must(t, "SetKV "+k, s.SetKV(ctx, "order", k, []byte("x")))
	}
	keys := listKV(t, s, "order")
	want := []string{"%", "%25", "%2F", "/", "a", "a%b", "a/", "a/b"}
	if !slices.Equal(keys, want) {
		t.Errorf("ListKV order = %q, want %q (byte order of the decoded keys)", keys, want)
	}
	// Secrets too: kind "a" name "b/c" against kind "a/b" name "c".
	setSecret(t, s, "a", "b/c", "1")
	setSecret(t, s, "a/b", "c", "2")
	if v, err := s.GetSecret(ctx, "a", "b/c"); err != nil || string(v) != "1" {
		t.Errorf("GetSecret a b/c = %q, %v", v, err)
	}
	if v, err := s.GetSecret(ctx, "a/b", "c"); err != nil || string(v) != "2" {
		t.Errorf("GetSecret a/b c = %q, %v", v, err)
	}
}

func testDesiredState(t *testing.T, s store.Store) {
	ctx := t.Context()
	ds, err := s.DesiredState(ctx)
	must(t, "DesiredState", err)
	if len(ds.Flows) != 0 {
		t.Errorf("DesiredState of an empty store = %+v", ds.Flows)
	}
	gen0 := ds.Gen
	put(t, s, "b", "{}")
	put(t, s, "a", "{}")
	put(t, s, "c", "{}")
	if ds, _ := s.DesiredState(ctx); ds.Gen != gen0 {
		t.Errorf("PutFlow moved the deploy generation %d -> %d", gen0, ds.Gen)
	}
	_, err = s.AddVersion(ctx, "b", []byte(`{"v":1}`), "")
	must(t, "AddVersion b", err)
	n, gen, err := s.Deploy(ctx, store.DeployRequest{Flow: "a", Doc: []byte(`{"v":1}`), Note: "deploy", IfGen: store.AnyRev})
	must(t, "Deploy a", err)
	ds, err = s.DesiredState(ctx)
	must(t, "DesiredState", err)
	if n != 1 || gen != ds.Gen || ds.Gen <= gen0 {
		t.Errorf("Deploy = version %d, gen %d; DesiredState gen %d (before %d)", n, gen, ds.Gen, gen0)
	}
	want := []store.Deployment{{Flow: "a", Version: 1}, {Flow: "b", Version: 1}}
	if !slices.Equal(ds.Flows, want) {
		t.Errorf("DesiredState = %+v, want %+v (sorted, undeployed left out)", ds.Flows, want)
	}
	if v, err := s.GetVersion(ctx, "a", 1); err != nil || string(v.Doc) != `{"v":1}` || v.Note != "deploy" {
		t.Errorf("GetVersion a 1 = %+v, %v", v, err)
	}

	// A stale generation is refused and changes nothing.
	_, _, err = s.Deploy(ctx, store.DeployRequest{Flow: "c", Doc: []byte("{}"), IfGen: gen0})
	wantErr(t, "Deploy with a stale generation", err, store.ErrConflict)
	if rec, _ := s.GetFlow(ctx, "c"); rec.Latest != 0 || rec.Deployed != 0 {
		t.Errorf("refused Deploy stored a version: %+v", rec)
	}
	// The current generation is accepted; undeploy by version 0.
	_, gen2, err := s.Deploy(ctx, store.DeployRequest{Flow: "b", Version: 0, IfGen: ds.Gen})
	must(t, "Deploy undeploy with the current generation", err)
	if gen2 <= ds.Gen {
		t.Errorf("undeploy generation %d, want above %d", gen2, ds.Gen)
	}
	_, _, err = s.Deploy(ctx, store.DeployRequest{Flow: "b", Version: 2, IfGen: store.AnyRev})
	wantErr(t, "Deploy of a version never stored", err, store.ErrNotFound)
	_, _, err = s.Deploy(ctx, store.DeployRequest{Flow: "nope", Version: 1, IfGen: store.AnyRev})
	wantErr(t, "Deploy of a missing flow", err, store.ErrNotFound)
	_, _, err = s.Deploy(ctx, store.DeployRequest{Flow: "b", Version: -1, IfGen: store.AnyRev})
	wantErr(t, "Deploy of version -1", err, store.ErrInvalid)

	// Deleting a deployed flow moves the generation; SetDeployed does too.
	ds, _ = s.DesiredState(ctx)
	must(t, "DeleteFlow a", s.DeleteFlow(ctx, "a", store.AnyRev))
	ds2, _ := s.DesiredState(ctx)
	if ds2.Gen <= ds.Gen || len(ds2.Flows) != 0 {
		t.Errorf("after deleting the deployed flow: %+v (before gen %d)", ds2, ds.Gen)
	}
	must(t, "SetDeployed b 1", s.SetDeployed(ctx, "b", 1))
	ds3, _ := s.DesiredState(ctx)
	if ds3.Gen <= ds2.Gen || !slices.Equal(ds3.Flows, []store.Deployment{{Flow: "b", Version: 1}}) {
		t.Errorf("after SetDeployed: %+v (before gen %d)", ds3, ds2.Gen)
	}
}

// collect reads events from ch until it has n changes or the wait ends.
// watchNow watches s after its current revision, which it returns.
func watchNow(t *testing.T, s store.Store, f store.Filter) (int64, <-chan store.FeedEvent) {
	t.Helper()
	rev, err := s.Rev(t.Context())
	must(t, "Rev", err)
	ch, err := s.Watch(t.Context(), rev, f)
	must(t, "Watch", err)
	return rev, ch
}

func collect(t *testing.T, ch <-chan store.FeedEvent, n int) []store.Change {
	t.Helper()
	var out []store.Change
	timeout := time.After(10 * time.Second) // a hang guard, not a timing assertion
	for len(out) < n {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed after %d of %d changes", len(out), n)
			}
			if ev.Err != nil {
				t.Fatalf("watch ended: %v", ev.Err)
			}
			for _, c := range ev.Changes {
				if c.Rev != ev.Rev {
					t.Errorf("change %+v in event of revision %d", c, ev.Rev)
				}
			}
			out = append(out, ev.Changes...)
		case <-timeout:
			t.Fatalf("watch delivered %d of %d changes: %+v", len(out), n, out)
		}
	}
	return out
}

type change struct {
	kind    store.Kind
	group   string
	name    string
	deleted bool
}

func strip(cs []store.Change) []change {
	out := make([]change, len(cs))
	for i, c := range cs {
		out[i] = change{c.Kind, c.Group, c.Name, c.Deleted}
	}
	return out
}

// everyKind writes one change of each kind and returns what the feed must
// report for it, in order.
func everyKind(t *testing.T, s store.Store) []change {
	ctx := t.Context()
	put(t, s, "f", "{}")
	_, err := s.AddVersion(ctx, "f", []byte("{}"), "")
	must(t, "AddVersion", err)
	must(t, "SetDeployed", s.SetDeployed(ctx, "f", 0))
	must(t, "SetKV", s.SetKV(ctx, "ns", "k", []byte("v")))
	must(t, "CreateKV", s.CreateKV(ctx, "ns", "new", []byte("v")))
	must(t, "UpdateKV", s.UpdateKV(ctx, "ns", "k", func([]byte) ([]byte, error) { return []byte("w"), nil }))
	must(t, "UpdateKV delete", s.UpdateKV(ctx, "ns", "new", func([]byte) ([]byte, error) { return nil, nil }))
	must(t, "DeleteKV", s.DeleteKV(ctx, "ns", "k"))
	setSecret(t, s, "kind", "name", "secret value")
	must(t, "DeleteSecret", s.DeleteSecret(ctx, "kind", "name"))
	must(t, "SetDeployed 1", s.SetDeployed(ctx, "f", 1))
	must(t, "DeleteFlow", s.DeleteFlow(ctx, "f", store.AnyRev))
	return []change{
		{store.KindFlow, "f", "", false},
		{store.KindFlow, "f", "", false}, {store.KindDeploy, "f", "", false},
		{store.KindFlow, "f", "", false}, {store.KindDeploy, "f", "", false},
		{store.KindKV, "ns", "k", false},
		{store.KindKV, "ns", "new", false},
		{store.KindKV, "ns", "k", false},
		{store.KindKV, "ns", "new", true},
		{store.KindKV, "ns", "k", true},
		{store.KindSecret, "kind", "name", false},
		{store.KindSecret, "kind", "name", true},
		{store.KindFlow, "f", "", false}, {store.KindDeploy, "f", "", false},
		{store.KindFlow, "f", "", true}, {store.KindDeploy, "f", "", true},
	}
}

func testFeedEveryKind(t *testing.T, s store.Store) {
	ctx := t.Context()
	rev0, ch := watchNow(t, s, store.Filter{})
	want := everyKind(t, s)
	got := collect(t, ch, len(want))
	if !slices.Equal(strip(got), want) {
		t.Errorf("feed =\n%+v\nwant\n%+v", strip(got), want)
	}
	// Revisions grow from commit to commit; one commit's changes share one.
	for i := 1; i < len(got); i++ {
		if got[i].Rev < got[i-1].Rev {
			t.Errorf("revision went back: %d after %d", got[i].Rev, got[i-1].Rev)
		}
	}
	if got[0].Rev <= rev0 {
		t.Errorf("first change has revision %d, not above the watch's %d", got[0].Rev, rev0)
	}
	rev, err := s.Rev(ctx)
	must(t, "Rev", err)
	if rev != got[len(got)-1].Rev {
		t.Errorf("Rev = %d after the last change of revision %d", rev, got[len(got)-1].Rev)
	}
	// Failed writes report nothing.
	wantErr(t, "CreateKV present", func() error {
		must(t, "SetKV", s.SetKV(ctx, "ns", "x", nil))
		return s.CreateKV(ctx, "ns", "x", nil)
	}(), store.ErrConflict)
	wantErr(t, "UpdateKV abort", s.UpdateKV(ctx, "ns", "x", func([]byte) ([]byte, error) { return nil, errBoom }), errBoom)
	must(t, "SetKV marker", s.SetKV(ctx, "ns", "marker", nil))
	next := strip(collect(t, ch, 2))
	if want := []change{{store.KindKV, "ns", "x", false}, {store.KindKV, "ns", "marker", false}}; !slices.Equal(next, want) {
		t.Errorf("after failed writes the feed reported %+v, want %+v", next, want)
	}
}

func testFeedResume(t *testing.T, s store.Store) {
	ctx := t.Context()
	rev0, err := s.Rev(ctx)
	must(t, "Rev", err)
	var revs []int64
	for i := range 5 {
		must(t, "SetKV", s.SetKV(ctx, "ns", fmt.Sprint(i), nil))
		r, err := s.Rev(ctx)
		must(t, "Rev", err)
		if r <= rev0 || (len(revs) > 0 && r <= revs[len(revs)-1]) {
			t.Fatalf("Rev after write %d = %d, not above %v / %d", i, r, revs, rev0)
		}
		revs = append(revs, r)
	}
	// Resume after the second write: writes 2, 3, 4 arrive, in order.
	ch, err := s.Watch(ctx, revs[1], store.Filter{})
	must(t, "Watch", err)
	got := collect(t, ch, 3)
	for i, c := range got {
		if c.Name != fmt.Sprint(i+2) || c.Rev != revs[i+2] {
			t.Errorf("resumed change %d = %+v, want key %d at revision %d", i, c, i+2, revs[i+2])
		}
	}
	// From the newest revision: nothing old, the next write.
	ch2, err := s.Watch(ctx, revs[4], store.Filter{})
	must(t, "Watch from newest", err)
	must(t, "SetKV", s.SetKV(ctx, "ns", "after", nil))
	if got := collect(t, ch2, 1); got[0].Name != "after" {
		t.Errorf("watch from the newest revision got %+v first", got[0])
	}
	_, err = s.Watch(ctx, revs[4]+1000, store.Filter{})
	wantErr(t, "Watch from a future revision", err, store.ErrInvalid)
}

func testFeedFilter(t *testing.T, s store.Store) {
	ctx := t.Context()
	rev0, err := s.Rev(ctx)
	must(t, "Rev", err)
	deploys, err := s.Watch(ctx, rev0, store.Filter{Kinds: []store.Kind{store.KindDeploy}})
	must(t, "Watch deploys", err)
	vars, err := s.Watch(ctx, rev0, store.Filter{Kinds: []store.Kind{store.KindKV}, Group: "vars/"})
	must(t, "Watch vars/", err)
	exact, err := s.Watch(ctx, rev0, store.Filter{Group: "vars"})
	must(t, "Watch vars", err)
	everyKind(t, s)
	must(t, "SetKV vars/f", s.SetKV(ctx, "vars/f", "x", nil))
	must(t, "SetKV vars", s.SetKV(ctx, "vars", "y", nil))
	must(t, "SetKV varsity", s.SetKV(ctx, "varsity", "z", nil))
	if got, want := strip(collect(t, deploys, 4)), []change{
		{store.KindDeploy, "f", "", false}, {store.KindDeploy, "f", "", false},
		{store.KindDeploy, "f", "", false}, {store.KindDeploy, "f", "", true},
	}; !slices.Equal(got, want) {
		t.Errorf("deploy watch = %+v, want %+v", got, want)
	}
	if got := strip(collect(t, vars, 1)); got[0] != (change{store.KindKV, "vars/f", "x", false}) {
		t.Errorf("vars/ watch = %+v", got)
	}
	if got := strip(collect(t, exact, 1)); got[0] != (change{store.KindKV, "vars", "y", false}) {
		t.Errorf("exact group watch = %+v", got)
	}
}

// testFeedNoValues: a secret's value never crosses the feed.
func testFeedNoValues(t *testing.T, s store.Store) {
	_, ch := watchNow(t, s, store.Filter{})
	setSecret(t, s, "kind", "name", "hunter2-secret")
	got := collect(t, ch, 1)
	if strings.Contains(fmt.Sprintf("%+v", got), "hunter2") {
		t.Errorf("the feed carries the secret's value: %+v", got)
	}
}

// testFeedConcurrent: writers on many goroutines; one watcher sees every
// commit exactly once, in revision order.
func testFeedConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, ch := watchNow(t, s, store.Filter{})
	const w, per = 8, 8
	var wg sync.WaitGroup
	for i := range w {
		wg.Go(func() {
			for j := range per {
				if err := s.SetKV(ctx, "ns", fmt.Sprintf("%d.%d", i, j), nil); err != nil {
					t.Errorf("SetKV: %v", err)
				}
			}
		})
	}
	wg.Wait()
	got := collect(t, ch, w*per)
	seen := map[string]bool{}
	for i, c := range got {
		if seen[c.Name] {
			t.Errorf("change %s reported twice", c.Name)
		}
		seen[c.Name] = true
		if i > 0 && c.Rev <= got[i-1].Rev {
			t.Errorf("revision %d after %d: out of order", c.Rev, got[i-1].Rev)
		}
	}
}

func testFeedEnds(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	rev, err := s.Rev(ctx)
	must(t, "Rev", err)
	ch, err := s.Watch(ctx, rev, store.Filter{})
	must(t, "Watch", err)
	cancel()
	for ev := range ch {
		if ev.Err != nil || len(ev.Changes) > 0 {
			t.Errorf("event after cancel: %+v", ev)
		}
	}
	ch2, err := s.Watch(t.Context(), rev, store.Filter{})
	must(t, "Watch", err)
	must(t, "Close", s.Close())
	var last store.FeedEvent
	for ev := range ch2 {
		last = ev
	}
	wantErr(t, "last event after Close", last.Err, store.ErrClosed)
}

func testCampaign(t *testing.T, s store.Store) {
	ctx := t.Context()
	l, err := s.Campaign(ctx, "scheduler")
	must(t, "Campaign", err)
	if l.Role() != "scheduler" {
		t.Errorf("Role = %q", l.Role())
	}
	fenced := l.Fenced(ctx)
	must(t, "fenced SetKV", s.SetKV(fenced, "ns", "k", []byte("1")))
	must(t, "fenced UpdateSecret", s.UpdateSecret(fenced, "kind", "name", func([]byte) ([]byte, error) { return []byte("s"), nil }))
	select {
	case <-l.Done():
		t.Fatal("Done closed while leading")
	default:
	}
	must(t, "Resign", l.Resign(ctx))
	must(t, "second Resign", l.Resign(ctx))
	select {
	case <-l.Done():
	default:
		t.Fatal("Done not closed after Resign")
	}
	rev0, _ := s.Rev(ctx)
	// Every write kind is fenced off and changes nothing; reads still work.
	for _, c := range []call{
		{"SetKV", func(ctx context.Context) error { return s.SetKV(ctx, "ns", "k", []byte("2")) }},
		{"CreateKV", func(ctx context.Context) error { return s.CreateKV(ctx, "ns", "new", nil) }},
		{"DeleteKV", func(ctx context.Context) error { return s.DeleteKV(ctx, "ns", "k") }},
		{"UpdateKV", func(ctx context.Context) error {
			return s.UpdateKV(ctx, "ns", "k", func([]byte) ([]byte, error) { return []byte("2"), nil })
		}},
		{"UpdateKVs", func(ctx context.Context) error {
			return s.UpdateKVs(ctx, []store.KVRef{{NS: "ns", Key: "k"}, {NS: "ns", Key: "k2"}}, func([][]byte) ([][]byte, error) {
				return [][]byte{[]byte("2"), []byte("2")}, nil
			})
		}},
		{"UpdateKVs unchanged", func(ctx context.Context) error {
			return s.UpdateKVs(ctx, []store.KVRef{{NS: "ns", Key: "k"}}, func(old [][]byte) ([][]byte, error) { return old, nil })
		}},
		{"UpdateSecret", func(ctx context.Context) error {
			return s.UpdateSecret(ctx, "kind", "name", func([]byte) ([]byte, error) { return []byte("2"), nil })
		}},
		{"DeleteSecret", func(ctx context.Context) error { return s.DeleteSecret(ctx, "kind", "name") }},
		{"PutFlow", func(ctx context.Context) error { _, err := s.PutFlow(ctx, "f", []byte("{}"), store.AnyRev); return err }},
		{"Deploy", func(ctx context.Context) error {
			_, _, err := s.Deploy(ctx, store.DeployRequest{Flow: "f", Doc: []byte("{}"), IfGen: store.AnyRev})
			return err
		}},
	} {
		wantErr(t, "fenced "+c.name+" after Resign", c.fn(fenced), store.ErrFenced)
	}
	if v, err := s.GetKV(fenced, "ns", "k"); err != nil || string(v) != "1" {
		t.Errorf("GetKV under a lost fence = %q, %v; want 1 (reads are not fenced, writes changed nothing)", v, err)
	}
	if rev, _ := s.Rev(ctx); rev != rev0 {
		t.Errorf("fenced-off writes moved the revision %d -> %d", rev0, rev)
	}
	// The role is free again; the new leadership's fence works.
	l2, err := s.Campaign(ctx, "scheduler")
	must(t, "Campaign again", err)
	must(t, "write under the new fence", s.SetKV(l2.Fenced(ctx), "ns", "k", []byte("3")))
	wantErr(t, "old fence stays lost", s.SetKV(fenced, "ns", "k", []byte("4")), store.ErrFenced)
	// Close ends the leadership.
	must(t, "Close", s.Close())
	select {
	case <-l2.Done():
	default:
		t.Error("Done not closed after Close")
	}
	_, err = s.Campaign(ctx, "other")
	wantErr(t, "Campaign after Close", err, store.ErrClosed)
}

// foreignFence is a fence no backend issued.
type foreignFence struct{}

func (foreignFence) Role() string          { return "scheduler" }
func (foreignFence) Lost() <-chan struct{} { return nil }

func testForeignFence(t *testing.T, s store.Store) {
	ctx := store.WithFence(t.Context(), foreignFence{})
	wantErr(t, "SetKV under a foreign fence", s.SetKV(ctx, "ns", "k", nil), store.ErrFenced)
	if _, err := s.GetKV(t.Context(), "ns", "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the fenced-off write landed: %v", err)
	}
}

func testLock(t *testing.T, s store.Store) {
	ctx := t.Context()
	unlock, err := s.Lock(ctx, "start")
	must(t, "Lock", err)
	_, err = s.TryLock(ctx, "start")
	wantErr(t, "TryLock of a held lock", err, store.ErrLockHeld)
	other, err := s.TryLock(ctx, "other")
	must(t, "TryLock of another lock", err)
	must(t, "unlock other", other(ctx))
	// A waiting Lock gets it once released, not before.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = s.Lock(wctx, "start")
	cancel()
	wantErr(t, "Lock of a held lock until the deadline", err, context.DeadlineExceeded)
	got := make(chan error, 1)
	go func() {
		u, err := s.Lock(ctx, "start")
		if err == nil {
			err = u(ctx)
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("second Lock returned while the first held it: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	must(t, "unlock", unlock(ctx))
	must(t, "second unlock", unlock(ctx))
	select {
	case err := <-got:
		must(t, "waiting Lock", err)
	case <-time.After(10 * time.Second): // hang guard
		t.Fatal("waiting Lock never got the released lock")
	}
	_, err = s.Lock(ctx, "")
	wantErr(t, "Lock of an empty name", err, store.ErrInvalid)
}

// testLockExclusion: N goroutines increment a plain variable under the
// lock; a lock that let two in would lose increments (and -race reports it).
func testLockExclusion(t *testing.T, s store.Store) {
	ctx := t.Context()
	n := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				unlock, err := s.Lock(ctx, "counter")
				if err != nil {
					t.Errorf("Lock: %v", err)
					return
				}
				v := n
				time.Sleep(time.Microsecond)
				n = v + 1
				if err := unlock(ctx); err != nil {
					t.Errorf("unlock: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if n != 160 {
		t.Errorf("counter = %d, want 160 (two holders at once)", n)
	}
}

func testRegistry(t *testing.T, s store.Store) {
	ctx := t.Context()
	wantErr(t, "SetApplied before Register", s.SetApplied(ctx, 1, 1, nil), store.ErrNotFound)
	wantErr(t, "SetNodeData before Register", s.SetNodeData(ctx, "usage", []byte("x")), store.ErrNotFound)
	must(t, "Register", s.Register(ctx, store.NodeInfo{ID: "n1", Addr: "127.0.0.1:1", Version: "v1", Blocks: "h"}))
	nodes, err := s.Nodes(ctx)
	must(t, "Nodes", err)
	if len(nodes) != 1 || nodes[0].ID != "n1" || nodes[0].Addr != "127.0.0.1:1" || nodes[0].Version != "v1" || nodes[0].Blocks != "h" || nodes[0].Applied != 0 {
		t.Fatalf("Nodes = %+v", nodes)
	}
	must(t, "SetApplied", s.SetApplied(ctx, 7, 5, map[string]string{"f": "route taken"}))
	nodes, err = s.Nodes(ctx)
	must(t, "Nodes", err)
	if nodes[0].Applied != 7 || nodes[0].Gen != 5 || nodes[0].Problems["f"] != "route taken" || nodes[0].Updated.IsZero() {
		t.Errorf("after SetApplied: %+v", nodes[0])
	}
	nodes[0].Problems["f"] = "changed by the caller"
	if again, _ := s.Nodes(ctx); again[0].Problems["f"] != "route taken" {
		t.Error("Nodes returned the store's own map")
	}
	// Re-registering keeps what was applied.
	must(t, "Register again", s.Register(ctx, store.NodeInfo{ID: "n1", Addr: "127.0.0.1:2"}))
	if nodes, _ = s.Nodes(ctx); len(nodes) != 1 || nodes[0].Addr != "127.0.0.1:2" || nodes[0].Applied != 7 || nodes[0].Gen != 5 {
		t.Errorf("after re-Register: %+v", nodes)
	}
	wantErr(t, "Register without id", s.Register(ctx, store.NodeInfo{}), store.ErrInvalid)

	// Node records: replaced by the next write, bounded, named by CheckName rules.
	must(t, "SetNodeData", s.SetNodeData(ctx, "usage", []byte("one")))
	must(t, "SetNodeData again", s.SetNodeData(ctx, "usage", []byte("two")))
	got, err := s.NodeData(ctx, "usage")
	must(t, "NodeData", err)
	if len(got) != 1 || string(got["n1"]) != "two" {
		t.Errorf("NodeData = %q, want n1: two", got)
	}
	got["n1"][0] = 'X'
	if again, _ := s.NodeData(ctx, "usage"); string(again["n1"]) != "two" {
		t.Error("NodeData returned the store's own bytes")
	}
	if other, err := s.NodeData(ctx, "other"); err != nil || len(other) != 0 {
		t.Errorf("NodeData of an unused name = %q, %v; want none", other, err)
	}
	wantErr(t, "SetNodeData too large", s.SetNodeData(ctx, "usage", make([]byte, store.MaxNodeDataBytes+1)), store.ErrInvalid)
	wantErr(t, "SetNodeData bad name", s.SetNodeData(ctx, "a\x00b", nil), store.ErrInvalid)
	wantErr(t, "NodeData bad name", func() error { _, err := s.NodeData(ctx, ""); return err }(), store.ErrInvalid)
}

// RunNodes runs the groups that need two handles (nodes) on one shared
// state: open returns two fresh handles on a new, empty state. RunNodes
// closes them when each subtest ends.
func RunNodes(t *testing.T, open func(t *testing.T) (a, b store.Store)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b store.Store)
	}{
		{"CampaignExclusive", testNodesCampaign},
		{"LockAcrossNodes", testNodesLock},
		{"Registry", testNodesRegistry},
		{"FeedAcrossNodes", testNodesFeed},
		{"CreateKVAcrossNodes", testNodesCreate},
		{"CloseEndsWaits", testNodesCloseEndsWaits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := open(t)
			t.Cleanup(func() {
				_ = a.Close()
				_ = b.Close()
			})
			tt.fn(t, a, b)
		})
	}
}

func testNodesCampaign(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	la, err := a.Campaign(ctx, "scheduler")
	must(t, "a Campaign", err)
	won := make(chan store.Leadership, 1)
	go func() {
		lb, err := b.Campaign(ctx, "scheduler")
		if err != nil {
			t.Errorf("b Campaign: %v", err)
			close(won)
			return
		}
		won <- lb
	}()
	select {
	case <-won:
		t.Fatal("b won the role while a held it")
	case <-time.After(50 * time.Millisecond):
	}
	fenced := la.Fenced(ctx)
	must(t, "a fenced write while leading", a.SetKV(fenced, "ns", "k", []byte("a")))
	must(t, "a Resign", la.Resign(ctx))
	var lb store.Leadership
	select {
	case lb = <-won:
	case <-time.After(10 * time.Second): // hang guard
		t.Fatal("b never won after a resigned")
	}
	if lb == nil {
		t.FailNow()
	}
	wantErr(t, "a's fenced write after losing", a.SetKV(fenced, "ns", "k", []byte("stale")), store.ErrFenced)
	must(t, "b fenced write", b.SetKV(lb.Fenced(ctx), "ns", "k", []byte("b")))
	if v, _ := a.GetKV(ctx, "ns", "k"); string(v) != "b" {
		t.Errorf("value = %q, want b", v)
	}
	// b's handle closes without resigning: its leadership is lost (a
	// write under its fence fails, whichever handle carries it) and a can
	// win again.
	fencedB := lb.Fenced(ctx)
	must(t, "b Close", b.Close())
	select {
	case <-lb.Done():
	default:
		t.Error("b's Done not closed after its handle closed")
	}
	wantErr(t, "write under b's fence after b closed", a.SetKV(fencedB, "ns", "k", []byte("late")), store.ErrFenced)
	la2, err := a.Campaign(ctx, "scheduler")
	must(t, "a Campaign after b closed", err)
	must(t, "a Resign", la2.Resign(ctx))
}

func testNodesLock(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	unlock, err := a.Lock(ctx, "start")
	must(t, "a Lock", err)
	_, err = b.TryLock(ctx, "start")
	wantErr(t, "b TryLock while a holds", err, store.ErrLockHeld)
	must(t, "a unlock", unlock(ctx))
	ub, err := b.TryLock(ctx, "start")
	must(t, "b TryLock after release", err)
	// A handle that closes releases its locks.
	must(t, "b Close", b.Close())
	must(t, "b's unlock after its Close", ub(ctx))
	ua, err := a.TryLock(ctx, "start")
	must(t, "a TryLock after b closed", err)
	must(t, "a unlock", ua(ctx))
}

func testNodesRegistry(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	must(t, "a Register", a.Register(ctx, store.NodeInfo{ID: "a"}))
	must(t, "b Register", b.Register(ctx, store.NodeInfo{ID: "b"}))
	wantErr(t, "b Register with a's id", b.Register(ctx, store.NodeInfo{ID: "a"}), store.ErrConflict)
	must(t, "b SetApplied", b.SetApplied(ctx, 3, 2, nil))
	nodes, err := a.Nodes(ctx)
	must(t, "Nodes", err)
	if len(nodes) != 2 || nodes[0].ID != "a" || nodes[1].ID != "b" || nodes[1].Applied != 3 || nodes[1].Gen != 2 {
		t.Fatalf("Nodes = %+v", nodes)
	}
	must(t, "a SetNodeData", a.SetNodeData(ctx, "usage", []byte("from a")))
	must(t, "b SetNodeData", b.SetNodeData(ctx, "usage", []byte("from b")))
	data, err := a.NodeData(ctx, "usage")
	must(t, "NodeData", err)
	if len(data) != 2 || string(data["a"]) != "from a" || string(data["b"]) != "from b" {
		t.Errorf("NodeData = %q, want both nodes' records", data)
	}
	must(t, "b Close", b.Close())
	if nodes, _ = a.Nodes(ctx); len(nodes) != 1 || nodes[0].ID != "a" {
		t.Errorf("Nodes after b closed = %+v", nodes)
	}
	if data, _ = a.NodeData(ctx, "usage"); len(data) != 1 || string(data["a"]) != "from a" {
		t.Errorf("NodeData after b closed = %q, want a's alone (b's records go with it)", data)
	}
}

func testNodesFeed(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	rev, err := a.Rev(ctx)
	must(t, "Rev", err)
	ch, err := a.Watch(ctx, rev, store.Filter{})
	must(t, "a Watch", err)
	must(t, "b SetKV", b.SetKV(ctx, "ns", "from-b", nil))
	must(t, "a SetKV", a.SetKV(ctx, "ns", "from-a", nil))
	got := strip(collect(t, ch, 2))
	if want := []change{{store.KindKV, "ns", "from-b", false}, {store.KindKV, "ns", "from-a", false}}; !slices.Equal(got, want) {
		t.Errorf("a's watch = %+v, want %+v", got, want)
	}
	if rb, _ := b.Rev(ctx); rb <= rev {
		t.Errorf("b's Rev %d not above %d", rb, rev)
	}
}

func testNodesCreate(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	must(t, "a CreateKV", a.CreateKV(ctx, "codes", "c1", []byte("a")))
	wantErr(t, "b CreateKV of the same key", b.CreateKV(ctx, "codes", "c1", []byte("b")), store.ErrConflict)
	if v, err := b.GetKV(ctx, "codes", "c1"); err != nil || !bytes.Equal(v, []byte("a")) {
		t.Errorf("b GetKV = %q, %v", v, err)
	}
}

// testLimits: a backend that advertises limits refuses a value above them
// with ErrInvalid and takes one at the limit. Skipped without Limited.
func testLimits(t *testing.T, s store.Store) {
	l, ok := s.(store.Limited)
	if !ok || l.Limits().MaxValueBytes <= 0 {
		t.Skip("the store advertises no value limit")
	}
	ctx := t.Context()
	max := l.Limits().MaxValueBytes
	// The key and namespace take room in a request too; a value a little
	// under the limit must pass, one above must not.
	must(t, "SetKV just under the limit", s.SetKV(ctx, "ns", "k", bytes.Repeat([]byte("x"), max-1024)))
	wantErr(t, "SetKV above the limit", s.SetKV(ctx, "ns", "big", bytes.Repeat([]byte("x"), max+1)), store.ErrInvalid)
	_, err := s.PutFlow(ctx, "f", bytes.Repeat([]byte("x"), max+1), store.AnyRev)
	wantErr(t, "PutFlow above the limit", err, store.ErrInvalid)
	if _, err := s.GetKV(ctx, "ns", "big"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused value was stored: %v", err)
	}
}

// testExpiry: KVExpiry's writes behave as UpdateKV and CreateKV until they
// expire (whether and when a backend drops them is its own test's
// business: lease TTLs are a minimum). Skipped without KVExpiry.
func testExpiry(t *testing.T, s store.Store) {
	e, ok := s.(store.KVExpiry)
	if !ok {
		t.Skip("the store has no KVExpiry")
	}
	ctx := t.Context()
	until := time.Now().Add(time.Hour)
	must(t, "CreateKVUntil", e.CreateKVUntil(ctx, "ns", "k", []byte("1"), until))
	wantErr(t, "CreateKVUntil of a present key", e.CreateKVUntil(ctx, "ns", "k", []byte("2"), until), store.ErrConflict)
	must(t, "UpdateKVUntil", e.UpdateKVUntil(ctx, "ns", "k", until, Increment))
	if v, err := s.GetKV(ctx, "ns", "k"); err != nil || string(v) != "2" {
		t.Errorf("GetKV = %q, %v; want 2", v, err)
	}
	wantErr(t, "UpdateKVUntil abort", e.UpdateKVUntil(ctx, "ns", "k", until, func([]byte) ([]byte, error) { return nil, errBoom }), errBoom)
	must(t, "UpdateKVUntil delete", e.UpdateKVUntil(ctx, "ns", "k", until, func([]byte) ([]byte, error) { return nil, nil }))
	if _, err := s.GetKV(ctx, "ns", "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetKV after delete: %v", err)
	}
}

// testDeleteRuns: a flow's runs go, another flow's stay; deleting none is
// no error.
func testDeleteRuns(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := rs(t, s)
	now := time.Now()
	must(t, "AppendRuns", r.AppendRuns(ctx, []store.RunRecord{
		{Flow: "a", ID: "1", Started: now}, {Flow: "a", ID: "2", Started: now}, {Flow: "b", ID: "1", Started: now},
	}))
	must(t, "DeleteRuns a", r.DeleteRuns(ctx, "a"))
	must(t, "DeleteRuns a again", r.DeleteRuns(ctx, "a"))
	if runs, err := r.ListRuns(ctx, "a", 0); err != nil || len(runs) != 0 {
		t.Errorf("runs of a after DeleteRuns = %d, %v", len(runs), err)
	}
	if runs, err := r.ListRuns(ctx, "b", 0); err != nil || len(runs) != 1 {
		t.Errorf("runs of b after deleting a's = %d, %v; want 1", len(runs), err)
	}
	must(t, "AppendRuns after DeleteRuns", r.AppendRuns(ctx, []store.RunRecord{{Flow: "a", ID: "3", Started: now}}))
}

// testFenceRace: fenced writes racing a Resign either commit before Resign
// returns or fail with ErrFenced; none lands after. A backend that checks
// the fence apart from the write (check, then write) fails this.
func testFenceRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	l, err := s.Campaign(ctx, "scheduler")
	must(t, "Campaign", err)
	fenced := l.Fenced(ctx)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := s.UpdateKV(fenced, "ns", "n", Increment)
				if err != nil && !errors.Is(err, store.ErrFenced) {
					t.Errorf("fenced UpdateKV: %v", err)
					return
				}
			}
		})
	}
	// Let some writes land, then resign in the middle of the stream.
	guard := time.Now().Add(10 * time.Second) // a hang guard, not a timing assertion
	for {
		v, _ := s.GetKV(ctx, "ns", "n")
		if n, err := strconv.Atoi(string(v)); err == nil && n >= 5 {
			break
		}
		if time.Now().After(guard) {
			close(stop)
			wg.Wait()
			t.Fatal("fenced writes never landed while leading")
		}
		time.Sleep(time.Millisecond)
	}
	must(t, "Resign", l.Resign(ctx))
	after, err := s.GetKV(ctx, "ns", "n")
	must(t, "GetKV after Resign", err)
	// The writers keep trying for a while; nothing more may land.
	for range 20 {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	final, err := s.GetKV(ctx, "ns", "n")
	must(t, "GetKV", err)
	if string(final) != string(after) {
		t.Errorf("value moved from %s to %s after Resign returned: a fenced write landed", after, final)
	}
}

// testNodesCloseEndsWaits: closing a handle ends its Campaign and Lock
// waits with ErrClosed instead of leaving them blocked.
func testNodesCloseEndsWaits(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	_, err := a.Campaign(ctx, "scheduler")
	must(t, "a Campaign", err)
	_, err = a.Lock(ctx, "start")
	must(t, "a Lock", err)
	errs := make(chan error, 2)
	go func() { _, err := b.Campaign(ctx, "scheduler"); errs <- err }()
	go func() { _, err := b.Lock(ctx, "start"); errs <- err }()
	time.Sleep(20 * time.Millisecond) // let them wait (a pass either way)
	must(t, "b Close", b.Close())
	for range 2 {
		select {
		case err := <-errs:
			wantErr(t, "wait of a closed handle", err, store.ErrClosed)
		case <-time.After(10 * time.Second): // hang guard
			t.Fatal("a closed handle's wait never ended")
		}
	}
}
