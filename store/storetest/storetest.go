// Package storetest is the conformance suite every store.Store backend must
// pass. A backend's test calls Run with a function that opens a fresh store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... })
//	}
//
// The suite pins down the behaviour callers rely on but the interface
// cannot express: which sentinel each failure wraps, revision rules, ring
// trimming and ordering, atomicity of the update functions (contended, and
// CreateKV's create-if-absent), that namespaces and keys never run into
// each other, the deploy generation, the feed (every change once, in order,
// resumable, filtered, no values), the coordinator of one handle (fencing
// after a lost leadership, locks, the registry), and that returned slices
// are the caller's to keep. The Runs groups run when the store implements
// store.Runs; Expiry and Limits when it implements KVExpiry and Limited.
//
// RunNodes adds the cases that need two handles on one state (a campaign
// won by one node at a time, locks and the registry across nodes, one
// node's writes on another's feed).
//
// TwiceUpdates and BetweenUpdates wrap a store for other packages' tests:
// every update function runs twice, as on an optimistic backend.
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

// Run runs the suite. open must return a new, empty store that can hold
// secrets and keeps store.DefaultRunsPerFlow runs per flow; Run closes it
// when each subtest ends, so open need not.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Flows", []test{
			{"NotFound", testFlowsNotFound},
			{"Revisions", testFlowRevisions},
			{"PutOnMissingWithRev", testPutMissingWithRev},
			{"Record", testFlowRecord},
			{"ListSorted", testListFlows},
			{"Versions", testVersions},
			{"SetDeployed", testSetDeployed},
			{"DeleteConditions", testDeleteConditions},
			{"DeleteCascades", testDeleteCascades},
			{"Copies", testFlowCopies},
		}},
		{"Runs", []test{
			{"OrderAndGet", testRunsOrder},
			{"Limit", testRunsLimit},
			{"RingTrim", testRunsTrim},
			{"ReplaceSameID", testRunsReplace},
			{"BatchAtomic", testRunsBatchAtomic},
			{"Empty", testRunsEmpty},
			{"DeleteRuns", testDeleteRuns},
		}},
		{"KV", []test{
			{"CRUD", testKVCRUD},
			{"Namespaces", testKVNamespaces},
			{"ListOrder", testKVListOrder},
			{"Update", testKVUpdate},
			{"UpdateConcurrent", testKVUpdateConcurrent},
			{"UpdateContended", testKVUpdateContended},
			{"UpdateMany", testKVUpdateMany},
			{"UpdateManyInvalid", testKVUpdateManyInvalid},
			{"UpdateManyAtomic", testKVUpdateManyAtomic},
			{"UpdateManyRace", testKVUpdateManyRace},
			{"UpdateManyFeed", testKVUpdateManyFeed},
			{"UpdateManyWriteSkew", testKVUpdateManyWriteSkew},
			{"Create", testKVCreate},
			{"CreateRace", testKVCreateRace},
			{"LookAlike", testKVLookAlike},
			{"Expiry", testExpiry},
			{"Limits", testLimits},
			{"Copies", testKVCopies},
		}},
		{"Secrets", []test{
			{"CRUD", testSecretsCRUD},
			{"Kinds", testSecretKinds},
			{"UpdateAbort", testSecretUpdateAbort},
			{"UpdateConcurrent", testSecretUpdateConcurrent},
		}},
		{"Deployments", []test{{"DesiredState", testDesiredState}}},
		{"Feed", []test{
			{"EveryKind", testFeedEveryKind},
			{"Resume", testFeedResume},
			{"Filter", testFeedFilter},
			{"NoValues", testFeedNoValues},
			{"Concurrent", testFeedConcurrent},
			{"Ends", testFeedEnds},
		}},
		{"Coordinator", []test{
			{"Campaign", testCampaign},
			{"ForeignFence", testForeignFence},
			{"FenceRace", testFenceRace},
			{"Lock", testLock},
			{"LockExclusion", testLockExclusion},
			{"Registry", testRegistry},
		}},
		{"Context", []test{{"Cancelled", testCancelled}}},
		{"Invalid", []test{{"IDs", testInvalidIDs}, {"MaxLength", testMaxLength}}},
		{"Close", []test{{"ThenCalls", testClosed}}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tt := range g.tests {
				t.Run(tt.name, func(t *testing.T) {
					s := open(t)
					t.Cleanup(func() {
						if err := s.Close(); err != nil {
							t.Errorf("Close: %v", err)
						}
					})
					tt.fn(t, s)
				})
			}
		})
	}
}

type test struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

// errBoom is what update functions return to abort; "returned as is" is
// checked by identity.
var errBoom = errors.New("storetest: boom")

// rs returns s's run store, skipping the test when s keeps no runs (a
// cluster store: runs stay on each node).
func rs(t *testing.T, s store.Store) store.Runs {
	t.Helper()
	r, ok := s.(store.Runs)
	if !ok {
		t.Skip("the store keeps no runs (store.Runs not implemented)")
	}
	return r
}

// listRuns lists flow's runs as ListRuns(flow, limit) does; an error
// fails the test.
func listRuns(t *testing.T, s store.Store, flow string, limit int) []store.RunRecord {
	t.Helper()
	runs, err := rs(t, s).ListRuns(t.Context(), flow, limit)
	must(t, "ListRuns "+flow, err)
	return runs
}

// listKV lists the keys of namespace ns; an error fails the test.
func listKV(t *testing.T, s store.Store, ns string) []string {
	t.Helper()
	keys, err := s.ListKV(t.Context(), ns)
	must(t, "ListKV "+ns, err)
	return keys
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error = %v, want %v", what, err, target)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func put(t *testing.T, s store.Store, id, doc string) store.FlowRecord {
	t.Helper()
	rec, err := s.PutFlow(t.Context(), id, []byte(doc), store.AnyRev)
	must(t, "PutFlow "+id, err)
	return rec
}

func checkFlow(t *testing.T, got store.FlowRecord, id, doc string, rev int64, deployed, latest int) {
	t.Helper()
	if got.ID != id || string(got.Doc) != doc || got.Rev != rev || got.Deployed != deployed || got.Latest != latest || got.Updated.IsZero() {
		t.Errorf("flow = {ID:%q Doc:%q Rev:%d Deployed:%d Latest:%d Updated:%v}, want {ID:%q Doc:%q Rev:%d Deployed:%d Latest:%d Updated:non-zero}",
			got.ID, got.Doc, got.Rev, got.Deployed, got.Latest, got.Updated, id, doc, rev, deployed, latest)
	}
}

func testFlowsNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	put(t, s, "exists", "{}")
	if _, err := s.AddVersion(ctx, "exists", []byte("{}"), "deploy"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"GetFlow", func() error { _, err := s.GetFlow(ctx, "nope"); return err }},
		{"DeleteFlow any", func() error { return s.DeleteFlow(ctx, "nope", store.AnyRev) }},
		{"DeleteFlow rev", func() error { return s.DeleteFlow(ctx, "nope", 1) }},
		{"AddVersion", func() error { _, err := s.AddVersion(ctx, "nope", []byte("{}"), ""); return err }},
		{"SetDeployed", func() error { return s.SetDeployed(ctx, "nope", 0) }},
		{"ListVersions", func() error { _, err := s.ListVersions(ctx, "nope"); return err }},
		{"GetVersion of missing flow", func() error { _, err := s.GetVersion(ctx, "nope", 1); return err }},
		{"GetVersion past latest", func() error { _, err := s.GetVersion(ctx, "exists", 2); return err }},
		{"SetDeployed past latest", func() error { return s.SetDeployed(ctx, "exists", 2) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, tt.name, tt.call(), store.ErrNotFound) })
	}
}

func testFlowRevisions(t *testing.T, s store.Store) {
	ctx := t.Context()
	steps := []struct {
		name    string
		ifRev   int64
		wantRev int64 // 0 when the write must fail
		wantErr error
	}{
		{"create", store.MustCreate, 1, nil},
		{"create again", store.MustCreate, 0, store.ErrConflict},
		{"match", 1, 2, nil},
		{"stale", 1, 0, store.ErrConflict},
		{"any", store.AnyRev, 3, nil},
		{"match after any", 3, 4, nil},
		{"ahead", 99, 0, store.ErrConflict},
		{"bad condition", -2, 0, store.ErrInvalid},
	}
	lastDoc, lastRev := "", int64(0)
	for i, st := range steps {
		doc := fmt.Sprintf(`{"step":%d}`, i)
		rec, err := s.PutFlow(ctx, "f", []byte(doc), st.ifRev)
		if st.wantErr != nil {
			wantErr(t, st.name, err, st.wantErr)
		} else if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		} else {
			checkFlow(t, rec, "f", doc, st.wantRev, 0, 0)
			lastDoc, lastRev = doc, st.wantRev
		}
		got, err := s.GetFlow(ctx, "f")
		must(t, st.name+": GetFlow", err)
		// A refused write leaves the previous draft in place.
		checkFlow(t, got, "f", lastDoc, lastRev, 0, 0)
	}
}

func testPutMissingWithRev(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.PutFlow(ctx, "ghost", []byte("{}"), 3)
	wantErr(t, "PutFlow(ifRev 3) on a missing flow", err, store.ErrConflict)
	_, err = s.GetFlow(ctx, "ghost")
	wantErr(t, "GetFlow after refused put", err, store.ErrNotFound)

	rec, err := s.PutFlow(ctx, "new", []byte("{}"), store.AnyRev)
	must(t, "PutFlow(AnyRev) creates", err)
	checkFlow(t, rec, "new", "{}", 1, 0, 0)
}

func testFlowRecord(t *testing.T, s store.Store) {
	ctx := t.Context()
	rec := put(t, s, "rec", `{"a":1}`)
	got, err := s.GetFlow(ctx, "rec")
	must(t, "GetFlow", err)
	checkFlow(t, got, rec.ID, string(rec.Doc), rec.Rev, rec.Deployed, rec.Latest)
	// The returned record is the stored one, so it can serve as an ETag
	// source without a second read.
	if !got.Updated.Equal(rec.Updated) {
		t.Errorf("GetFlow Updated = %v, PutFlow returned %v", got.Updated, rec.Updated)
	}
}

func testListFlows(t *testing.T, s store.Store) {
	ctx := t.Context()
	got, err := s.ListFlows(ctx)
	must(t, "ListFlows on empty store", err)
	if len(got) != 0 {
		t.Errorf("ListFlows on empty store = %d flows, want 0", len(got))
	}
	for _, id := range []string{"b", "a", "B", "aa", "c"} {
		put(t, s, id, `{"id":"`+id+`"}`)
	}
	got, err = s.ListFlows(ctx)
	must(t, "ListFlows", err)
	var ids []string
	for _, f := range got {
		ids = append(ids, f.ID)
		checkFlow(t, f, f.ID, `{"id":"`+f.ID+`"}`, 1, 0, 0)
	}
	if want := []string{"B", "a", "aa", "b", "c"}; !slices.Equal(ids, want) {
		t.Errorf("ListFlows ids = %q, want %q", ids, want)
	}
}

func testVersions(t *testing.T, s store.Store) {
	ctx := t.Context()
	put(t, s, "f", "draft")
	for n := 1; n <= 3; n++ {
		v, err := s.AddVersion(ctx, "f", []byte("doc"+strconv.Itoa(n)), "note"+strconv.Itoa(n))
		must(t, "AddVersion", err)
		if v.Flow != "f" || v.N != n || string(v.Doc) != "doc"+strconv.Itoa(n) || v.Note != "note"+strconv.Itoa(n) || v.Created.IsZero() {
			t.Errorf("AddVersion = %+v, want version %d of f", v, n)
		}
		rec, err := s.GetFlow(ctx, "f")
		must(t, "GetFlow", err)
		// A deploy neither edits the draft nor bumps its revision.
		checkFlow(t, rec, "f", "draft", 1, n, n)
	}

	vs, err := s.ListVersions(ctx, "f")
	must(t, "ListVersions", err)
	var ns []int
	for _, v := range vs {
		ns = append(ns, v.N)
		if v.Flow != "f" || string(v.Doc) != "doc"+strconv.Itoa(v.N) || v.Note != "note"+strconv.Itoa(v.N) || v.Created.IsZero() {
			t.Errorf("ListVersions entry = %+v", v)
		}
	}
	if want := []int{3, 2, 1}; !slices.Equal(ns, want) {
		t.Errorf("ListVersions numbers = %v, want %v (newest first)", ns, want)
	}

	v2, err := s.GetVersion(ctx, "f", 2)
	must(t, "GetVersion 2", err)
	if v2.Flow != "f" || v2.N != 2 || string(v2.Doc) != "doc2" || v2.Note != "note2" || !v2.Created.Equal(vs[1].Created) {
		t.Errorf("GetVersion 2 = %+v, want %+v", v2, vs[1])
	}

	// Editing the draft keeps the deployment state.
	rec, err := s.PutFlow(ctx, "f", []byte("draft2"), 1)
	must(t, "PutFlow after deploys", err)
	checkFlow(t, rec, "f", "draft2", 2, 3, 3)

	// Numbering continues after an undeploy.
	must(t, "SetDeployed 0", s.SetDeployed(ctx, "f", 0))
	v4, err := s.AddVersion(ctx, "f", []byte("doc4"), "")
	must(t, "AddVersion 4", err)
	if v4.N != 4 {
		t.Errorf("AddVersion after undeploy: N = %d, want 4", v4.N)
	}
	rec, err = s.GetFlow(ctx, "f")
	must(t, "GetFlow", err)
	checkFlow(t, rec, "f", "draft2", 2, 4, 4)

	// Versions are numbered per flow.
	put(t, s, "g", "draft")
	vg, err := s.AddVersion(ctx, "g", []byte("g1"), "")
	must(t, "AddVersion g", err)
	if vg.N != 1 {
		t.Errorf("first version of another flow: N = %d, want 1", vg.N)
	}

	// A flow that was never deployed has no versions, and that is not an error.
	put(t, s, "h", "draft")
	vh, err := s.ListVersions(ctx, "h")
	must(t, "ListVersions of undeployed flow", err)
	if len(vh) != 0 {
		t.Errorf("ListVersions of undeployed flow = %d versions, want 0", len(vh))
	}
}

func testSetDeployed(t *testing.T, s store.Store) {
	ctx := t.Context()
	put(t, s, "f", "draft")
	for range 3 {
		_, err := s.AddVersion(ctx, "f", []byte("v"), "")
		must(t, "AddVersion", err)
	}
	tests := []struct {
		name     string
		n        int
		wantErr  error
		deployed int // after the call
	}{
		{"roll back", 1, nil, 1},
		{"undeploy", 0, nil, 0},
		{"latest", 3, nil, 3},
		{"past latest", 4, store.ErrNotFound, 3},
		{"negative", -1, store.ErrInvalid, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.SetDeployed(ctx, "f", tt.n)
			if tt.wantErr != nil {
				wantErr(t, "SetDeployed", err, tt.wantErr)
			} else if err != nil {
				t.Fatalf("SetDeployed(%d): %v", tt.n, err)
			}
			rec, err := s.GetFlow(ctx, "f")
			must(t, "GetFlow", err)
			checkFlow(t, rec, "f", "draft", 1, tt.deployed, 3)
		})
	}
}

func testDeleteConditions(t *testing.T, s store.Store) {
	ctx := t.Context()
	put(t, s, "f", "x")
	put(t, s, "f", "y") // rev 2
	tests := []struct {
		name    string
		ifRev   int64
		wantErr error
		exists  bool // afterwards
	}{
		{"stale", 1, store.ErrConflict, true},
		{"ahead", 3, store.ErrConflict, true},
		{"must create makes no sense", store.MustCreate, store.ErrInvalid, true},
		{"bad condition", -5, store.ErrInvalid, true},
		{"match", 2, nil, false},
		{"gone", store.AnyRev, store.ErrNotFound, false},
	}
	for _, tt := range tests {
		err := s.DeleteFlow(ctx, "f", tt.ifRev)
		if tt.wantErr != nil {
			wantErr(t, tt.name, err, tt.wantErr)
		} else if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		_, err = s.GetFlow(ctx, "f")
		if exists := err == nil; exists != tt.exists {
			t.Errorf("%s: after delete, GetFlow error = %v, want exists=%v", tt.name, err, tt.exists)
		}
	}
	put(t, s, "g", "x")
	must(t, "DeleteFlow AnyRev", s.DeleteFlow(ctx, "g", store.AnyRev))
}

func testDeleteCascades(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Now()
	for _, id := range []string{"a", "b"} {
		put(t, s, id, "draft")
		_, err := s.AddVersion(ctx, id, []byte("v1"), "")
		must(t, "AddVersion", err)
		must(t, "AppendRuns", rs(t, s).AppendRuns(ctx, []store.RunRecord{
			{Flow: id, ID: "r1", Started: now, Data: []byte("1")},
			{Flow: id, ID: "r2", Started: now.Add(time.Second), Data: []byte("2")},
		}))
	}
	must(t, "DeleteFlow a", s.DeleteFlow(ctx, "a", store.AnyRev))

	_, err := s.GetFlow(ctx, "a")
	wantErr(t, "GetFlow a", err, store.ErrNotFound)
	_, err = rs(t, s).GetRun(ctx, "a", "r1")
	wantErr(t, "GetRun a/r1", err, store.ErrNotFound)
	runs := listRuns(t, s, "a", 0)
	if len(runs) != 0 {
		t.Errorf("ListRuns a after delete = %d runs, want 0", len(runs))
	}

	// A flow created again under the same id starts from nothing.
	rec := put(t, s, "a", "again")
	checkFlow(t, rec, "a", "again", 1, 0, 0)
	vs, err := s.ListVersions(ctx, "a")
	must(t, "ListVersions a", err)
	if len(vs) != 0 {
		t.Errorf("ListVersions of recreated flow = %d, want 0", len(vs))
	}
	_, err = s.GetVersion(ctx, "a", 1)
	wantErr(t, "GetVersion of recreated flow", err, store.ErrNotFound)
	if v, err := s.AddVersion(ctx, "a", []byte("new"), ""); err != nil || v.N != 1 {
		t.Errorf("AddVersion of recreated flow = %d, %v; want 1, nil", v.N, err)
	}

	// The other flow is untouched.
	rec, err = s.GetFlow(ctx, "b")
	must(t, "GetFlow b", err)
	checkFlow(t, rec, "b", "draft", 1, 1, 1)
	runs = listRuns(t, s, "b", 0)
	if len(runs) != 2 {
		t.Errorf("ListRuns b = %d runs, want 2", len(runs))
	}
}

func testFlowCopies(t *testing.T, s store.Store) {
	ctx := t.Context()
	doc := []byte("original")
	rec, err := s.PutFlow(ctx, "f", doc, store.AnyRev)
	must(t, "PutFlow", err)
	copy(doc, "XXXXXXXX")
	copy(rec.Doc, "YYYYYYYY")
	got, err := s.GetFlow(ctx, "f")
	must(t, "GetFlow", err)
	if string(got.Doc) != "original" {
		t.Errorf("stored doc = %q after caller changed its slices, want %q", got.Doc, "original")
	}
	copy(got.Doc, "ZZZZZZZZ")
	v, err := s.AddVersion(ctx, "f", []byte("ver"), "")
	must(t, "AddVersion", err)
	copy(v.Doc, "QQQ")
	got, err = s.GetFlow(ctx, "f")
	must(t, "GetFlow", err)
	gv, err := s.GetVersion(ctx, "f", 1)
	must(t, "GetVersion", err)
	if string(got.Doc) != "original" || string(gv.Doc) != "ver" {
		t.Errorf("stored docs = %q, %q after caller changed returned slices", got.Doc, gv.Doc)
	}
}

func runIDs(runs []store.RunRecord) []string {
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	return ids
}

func testRunsOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	in := []store.RunRecord{
		{Flow: "f", ID: "r2", Started: base.Add(2 * time.Second), Data: []byte("two")},
		{Flow: "f", ID: "r0", Started: base.Add(-time.Hour), Data: []byte("zero")},
		{Flow: "f", ID: "r3b", Started: base.Add(3*time.Second + 7), Data: []byte("three b")},
		{Flow: "f", ID: "r3a", Started: base.Add(3*time.Second + 7), Data: []byte("three a")},
		{Flow: "f", ID: "r1", Started: base.Add(time.Second + 1), Data: nil},
		{Flow: "g", ID: "r9", Started: base.Add(time.Hour), Data: []byte("other flow")},
	}
	must(t, "AppendRuns", rs(t, s).AppendRuns(ctx, in))

	runs := listRuns(t, s, "f", 0)
	// Newest first by Started; runs started in the same instant by ID.
	if got, want := runIDs(runs), []string{"r3b", "r3a", "r2", "r1", "r0"}; !slices.Equal(got, want) {
		t.Fatalf("ListRuns ids = %q, want %q", got, want)
	}
	for _, r := range runs {
		want := in[slices.IndexFunc(in, func(x store.RunRecord) bool { return x.ID == r.ID })]
		if r.Flow != "f" || !r.Started.Equal(want.Started) || !bytes.Equal(r.Data, want.Data) {
			t.Errorf("ListRuns entry %s = {Flow:%q Started:%v Data:%q}, want {f %v %q}", r.ID, r.Flow, r.Started, r.Data, want.Started, want.Data)
		}
		got, err := rs(t, s).GetRun(ctx, "f", r.ID)
		must(t, "GetRun "+r.ID, err)
		if got.Flow != "f" || got.ID != r.ID || !got.Started.Equal(want.Started) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("GetRun %s = %+v, want %+v", r.ID, got, want)
		}
	}

	_, err := rs(t, s).GetRun(ctx, "f", "r9")
	wantErr(t, "GetRun of another flow's run", err, store.ErrNotFound)
	_, err = rs(t, s).GetRun(ctx, "nope", "r1")
	wantErr(t, "GetRun of unknown flow", err, store.ErrNotFound)
	none := listRuns(t, s, "nope", 10)
	if len(none) != 0 {
		t.Errorf("ListRuns of a flow without runs = %d, want 0", len(none))
	}
}

func testRunsLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	base := time.Now()
	var in []store.RunRecord
	for i := range 5 {
		in = append(in, store.RunRecord{Flow: "f", ID: fmt.Sprintf("r%d", i), Started: base.Add(time.Duration(i) * time.Millisecond)})
	}
	must(t, "AppendRuns", rs(t, s).AppendRuns(ctx, in))
	tests := []struct {
		limit int
		want  []string
	}{
		{1, []string{"r4"}},
		{3, []string{"r4", "r3", "r2"}},
		{5, []string{"r4", "r3", "r2", "r1", "r0"}},
		{50, []string{"r4", "r3", "r2", "r1", "r0"}},
		{0, []string{"r4", "r3", "r2", "r1", "r0"}},
		{-1, []string{"r4", "r3", "r2", "r1", "r0"}},
	}
	for _, tt := range tests {
		runs := listRuns(t, s, "f", tt.limit)
		if got := runIDs(runs); !slices.Equal(got, tt.want) {
			t.Errorf("ListRuns(limit %d) = %q, want %q", tt.limit, got, tt.want)
		}
	}
}

func testRunsTrim(t *testing.T, s store.Store) {
	ctx := t.Context()
	ring := store.DefaultRunsPerFlow
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	run := func(flow string, i int) store.RunRecord {
		return store.RunRecord{Flow: flow, ID: fmt.Sprintf("r%05d", i), Started: base.Add(time.Duration(i) * time.Second), Data: []byte(strconv.Itoa(i))}
	}
	wantNewest := func(flow string, last int) {
		t.Helper()
		runs := listRuns(t, s, flow, 0)
		var want []string
		for i := last; i > last-ring; i-- {
			want = append(want, run(flow, i).ID)
		}
		if got := runIDs(runs); !slices.Equal(got, want) {
			t.Fatalf("ring of %s holds %d runs %q..., want %d runs %q...%q", flow, len(got), got[:min(3, len(got))], ring, want[0], want[ring-1])
		}
	}

	// One batch larger than the ring, mixed with another flow's runs.
	var batch []store.RunRecord
	for i := range ring + 30 {
		batch = append(batch, run("f", i))
		if i%10 == 0 {
			batch = append(batch, run("g", i))
		}
	}
	must(t, "AppendRuns", rs(t, s).AppendRuns(ctx, batch))
	wantNewest("f", ring+29)
	gRuns := listRuns(t, s, "g", 0)
	if len(gRuns) != (ring+30+9)/10 {
		t.Errorf("ListRuns g = %d runs, want %d (another flow's ring is separate)", len(gRuns), (ring+30+9)/10)
	}

	// One run at a time keeps dropping the oldest.
	for i := ring + 30; i < ring+40; i++ {
		must(t, "AppendRuns", rs(t, s).AppendRuns(ctx, []store.RunRecord{run("f", i)}))
	}
	wantNewest("f", ring+39)
	_, err := rs(t, s).GetRun(ctx, "f", run("f", 39).ID)
	wantErr(t, "GetRun of a trimmed run", err, store.ErrNotFound)
	_, err = rs(t, s).GetRun(ctx, "f", run("f", 40).ID)
	must(t, "GetRun of the oldest kept run", err)

	// A run older than the whole ring is dropped at once.
	must(t, "AppendRuns old", rs(t, s).AppendRuns(ctx, []store.RunRecord{run("f", 5)}))
	wantNewest("f", ring+39)
	_, err = rs(t, s).GetRun(ctx, "f", run("f", 5).ID)
	wantErr(t, "GetRun of a run older than the ring", err, store.ErrNotFound)
}

func testRunsReplace(t *testing.T, s store.Store) {
	ctx := t.Context()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	must(t, "AppendRuns", rs(t, s).AppendRuns(ctx, []store.RunRecord{
		{Flow: "f", ID: "a", Started: t0, Data: []byte("first")},
		{Flow: "f", ID: "b", Started: t0.Add(time.Second), Data: []byte("b")},
	}))
	must(t, "AppendRuns again", rs(t, s).AppendRuns(ctx, []store.RunRecord{
		{Flow: "f", ID: "a", Started: t0.Add(2 * time.Second), Data: []byte("second")},
	}))
	runs := listRuns(t, s, "f", 0)
	if got, want := runIDs(runs), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Fatalf("ListRuns = %q, want %q (a replaced, now newest)", got, want)
	}
	if string(runs[0].Data) != "second" || !runs[0].Started.Equal(t0.Add(2*time.Second)) {
		t.Errorf("replaced run = %+v", runs[0])
	}
}

func testRunsBatchAtomic(t *testing.T, s store.Store) {
	ctx := t.Context()
	err := rs(t, s).AppendRuns(ctx, []store.RunRecord{
		{Flow: "f", ID: "good", Started: time.Now()},
		{Flow: "f", ID: "", Started: time.Now()},
	})
	wantErr(t, "AppendRuns with an invalid record", err, store.ErrInvalid)
	runs := listRuns(t, s, "f", 0)
	if len(runs) != 0 {
		t.Errorf("a refused batch wrote %d runs, want 0", len(runs))
	}
}

func testRunsEmpty(t *testing.T, s store.Store) {
	must(t, "AppendRuns(nil)", rs(t, s).AppendRuns(t.Context(), nil))
}

func testKVCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.GetKV(ctx, "ns", "k")
	wantErr(t, "GetKV missing", err, store.ErrNotFound)
	wantErr(t, "DeleteKV missing", s.DeleteKV(ctx, "ns", "k"), store.ErrNotFound)

	steps := []struct {
		name string
		val  []byte
	}{
		{"set", []byte("v1")},
		{"overwrite", []byte("v2")},
		{"empty", []byte{}},
		{"nil is empty", nil},
		{"binary", []byte{0, 1, 2, 255}},
	}
	for _, st := range steps {
		must(t, st.name, s.SetKV(ctx, "ns", "k", st.val))
		got, err := s.GetKV(ctx, "ns", "k")
		must(t, st.name+": GetKV", err)
		if !bytes.Equal(got, st.val) {
			t.Errorf("%s: GetKV = %q, want %q", st.name, got, st.val)
		}
	}
	must(t, "DeleteKV", s.DeleteKV(ctx, "ns", "k"))
	_, err = s.GetKV(ctx, "ns", "k")
	wantErr(t, "GetKV after delete", err, store.ErrNotFound)
	keys := listKV(t, s, "ns")
	if len(keys) != 0 {
		t.Errorf("ListKV after delete = %q, want none", keys)
	}
}

func testKVNamespaces(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "SetKV a", s.SetKV(ctx, "a", "k", []byte("in a")))
	must(t, "SetKV b", s.SetKV(ctx, "b", "k", []byte("in b")))
	must(t, "SetKV b/only", s.SetKV(ctx, "b", "only", []byte("x")))
	tests := []struct {
		ns   string
		keys []string
		val  string
	}{
		{"a", []string{"k"}, "in a"},
		{"b", []string{"k", "only"}, "in b"},
	}
	for _, tt := range tests {
		keys := listKV(t, s, tt.ns)
		v, err := s.GetKV(ctx, tt.ns, "k")
		must(t, "GetKV", err)
		if !slices.Equal(keys, tt.keys) || string(v) != tt.val {
			t.Errorf("ns %s: keys %q, k=%q; want %q, %q", tt.ns, keys, v, tt.keys, tt.val)
		}
	}
	_, err := s.GetKV(ctx, "a", "only")
	wantErr(t, "GetKV of a key in another namespace", err, store.ErrNotFound)
	must(t, "DeleteKV a/k", s.DeleteKV(ctx, "a", "k"))
	if v, err := s.GetKV(ctx, "b", "k"); err != nil || string(v) != "in b" {
		t.Errorf("b/k after deleting a/k = %q, %v", v, err)
	}
	keys := listKV(t, s, "unknown")
	if len(keys) != 0 {
		t.Errorf("ListKV unknown namespace = %q, want none", keys)
	}
}

func testKVListOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, k := range []string{"b", "a", "B", "aa", "a/b", "é", "0"} {
		must(t, "SetKV "+k, s.SetKV(ctx, "ns", k, []byte(k)))
	}
	keys := listKV(t, s, "ns")
	if want := []string{"0", "B", "a", "a/b", "aa", "b", "é"}; !slices.Equal(keys, want) {
		t.Errorf("ListKV = %q, want %q (byte order)", keys, want)
	}
}

func testKVUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	update := func(fnErr error, ret []byte) (sawOld []byte, calls int, err error) {
		err = s.UpdateKV(ctx, "ns", "k", func(old []byte) ([]byte, error) {
			calls++
			sawOld = old
			return ret, fnErr
		})
		return sawOld, calls, err
	}
	steps := []struct {
		name    string
		ret     []byte
		fnErr   error
		wantOld []byte // nil: fn must see nil
		after   []byte // nil: the key must be absent
	}{
		{"delete missing is a no-op", nil, nil, nil, nil},
		{"abort on missing", []byte("x"), errBoom, nil, nil},
		{"create", []byte("1"), nil, nil, []byte("1")},
		{"change", []byte("2"), nil, []byte("1"), []byte("2")},
		{"abort keeps value", []byte("3"), errBoom, []byte("2"), []byte("2")},
		{"empty value is not a delete", []byte{}, nil, []byte("2"), []byte{}},
		{"fn sees empty, not nil", []byte("4"), nil, []byte{}, []byte("4")},
		{"delete", nil, nil, []byte("4"), nil},
	}
	for _, st := range steps {
		old, calls, err := update(st.fnErr, st.ret)
		checkUpdateCall(t, st.name+": UpdateKV", err, st.fnErr, calls)
		if (old == nil) != (st.wantOld == nil) || !bytes.Equal(old, st.wantOld) {
			t.Errorf("%s: fn saw %q (nil=%v), want %q (nil=%v)", st.name, old, old == nil, st.wantOld, st.wantOld == nil)
		}
		got, err := s.GetKV(ctx, "ns", "k")
		if st.after == nil {
			wantErr(t, st.name+": GetKV", err, store.ErrNotFound)
		} else if err != nil || !bytes.Equal(got, st.after) {
			t.Errorf("%s: GetKV = %q, %v; want %q", st.name, got, err, st.after)
		}
	}
}

// checkUpdateCall checks one UpdateKV(s) call: fn ran once, and its error
// came back as is (none when it returned none).
func checkUpdateCall(t *testing.T, what string, err, fnErr error, calls int) {
	t.Helper()
	if fnErr != nil {
		if err != fnErr {
			t.Errorf("%s error = %v, want fn's error as is", what, err)
		}
	} else if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if calls != 1 {
		t.Errorf("%s: fn called %d times, want 1", what, calls)
	}
}

// Increment is an UpdateKV function that counts in decimal text (a
// missing record is 0): a backend's own tests count acknowledged writes
// with it.
func Increment(old []byte) ([]byte, error) {
	n := 0
	if old != nil {
		var err error
		if n, err = strconv.Atoi(string(old)); err != nil {
			return nil, err
		}
	}
	return []byte(strconv.Itoa(n + 1)), nil
}

// Enough contention to lose updates if read-modify-write were not one
// transaction, few enough to stay quick on a store that syncs every commit.
const workers, perWorker = 16, 16

func concurrently(t *testing.T, fn func() error) {
	t.Helper()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				if err := fn(); err != nil {
					t.Errorf("update: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// countConcurrently runs the Increment update concurrently and checks
// that the counter read counts every one of them.
func countConcurrently(t *testing.T, what string, update func() error, read func() ([]byte, error)) {
	t.Helper()
	concurrently(t, update)
	got, err := read()
	must(t, what, err)
	if want := strconv.Itoa(workers * perWorker); string(got) != want {
		t.Errorf("counter = %s, want %s (lost updates)", got, want)
	}
}

func testKVUpdateConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	countConcurrently(t, "GetKV",
		func() error { return s.UpdateKV(ctx, "ns", "counter", Increment) },
		func() ([]byte, error) { return s.GetKV(ctx, "ns", "counter") })
}

func testKVCopies(t *testing.T, s store.Store) {
	ctx := t.Context()
	val := []byte("value")
	must(t, "SetKV", s.SetKV(ctx, "ns", "k", val))
	copy(val, "XXXXX")
	got, err := s.GetKV(ctx, "ns", "k")
	must(t, "GetKV", err)
	copy(got, "YYYYY")
	again, err := s.GetKV(ctx, "ns", "k")
	must(t, "GetKV", err)
	if string(again) != "value" {
		t.Errorf("GetKV = %q after caller changed its slices, want %q", again, "value")
	}
	must(t, "UpdateKV", s.UpdateKV(ctx, "ns", "k", func(old []byte) ([]byte, error) {
		copy(old, "ZZZZZ") // fn owns old; changing it must not write
		return []byte("new"), nil
	}))
}

func setSecret(t *testing.T, s store.Store, kind, name, val string) {
	t.Helper()
	must(t, "UpdateSecret "+kind+"/"+name, s.UpdateSecret(t.Context(), kind, name, func([]byte) ([]byte, error) {
		return []byte(val), nil
	}))
}

func testSecretsCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.GetSecret(ctx, "key", "a")
	wantErr(t, "GetSecret missing", err, store.ErrNotFound)
	wantErr(t, "DeleteSecret missing", s.DeleteSecret(ctx, "key", "a"), store.ErrNotFound)

	setSecret(t, s, "key", "b", "bee")
	setSecret(t, s, "key", "a", "ay")
	setSecret(t, s, "key", "a", "ay2")
	setSecret(t, s, "key", "empty", "")
	tests := []struct{ name, want string }{{"a", "ay2"}, {"b", "bee"}, {"empty", ""}}
	for _, tt := range tests {
		got, err := s.GetSecret(ctx, "key", tt.name)
		if err != nil || string(got) != tt.want {
			t.Errorf("GetSecret %s = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	names, err := s.ListSecrets(ctx, "key")
	must(t, "ListSecrets", err)
	if want := []string{"a", "b", "empty"}; !slices.Equal(names, want) {
		t.Errorf("ListSecrets = %q, want %q", names, want)
	}

	must(t, "DeleteSecret", s.DeleteSecret(ctx, "key", "a"))
	_, err = s.GetSecret(ctx, "key", "a")
	wantErr(t, "GetSecret after delete", err, store.ErrNotFound)

	// Returning nil deletes.
	must(t, "UpdateSecret nil", s.UpdateSecret(ctx, "key", "b", func(old []byte) ([]byte, error) {
		if string(old) != "bee" {
			t.Errorf("fn saw %q, want %q", old, "bee")
		}
		return nil, nil
	}))
	_, err = s.GetSecret(ctx, "key", "b")
	wantErr(t, "GetSecret after nil update", err, store.ErrNotFound)
	names, err = s.ListSecrets(ctx, "key")
	must(t, "ListSecrets", err)
	if want := []string{"empty"}; !slices.Equal(names, want) {
		t.Errorf("ListSecrets = %q, want %q", names, want)
	}
}

func testSecretKinds(t *testing.T, s store.Store) {
	ctx := t.Context()
	setSecret(t, s, "jwk", "main", "jwk value")
	setSecret(t, s, "client", "main", "client value")
	for _, tt := range []struct{ kind, want string }{{"jwk", "jwk value"}, {"client", "client value"}} {
		got, err := s.GetSecret(ctx, tt.kind, "main")
		if err != nil || string(got) != tt.want {
			t.Errorf("GetSecret %s/main = %q, %v; want %q", tt.kind, got, err, tt.want)
		}
		names, err := s.ListSecrets(ctx, tt.kind)
		if err != nil || !slices.Equal(names, []string{"main"}) {
			t.Errorf("ListSecrets %s = %q, %v", tt.kind, names, err)
		}
	}
	names, err := s.ListSecrets(ctx, "unknown")
	if err != nil || len(names) != 0 {
		t.Errorf("ListSecrets unknown kind = %q, %v; want none", names, err)
	}
	// Names may look like separators without colliding across kinds.
	setSecret(t, s, "a", "b\x01c", "1")
	_, err = s.GetSecret(ctx, "a\x01b", "c")
	wantErr(t, "GetSecret of a look-alike", err, store.ErrNotFound)
}

func testSecretUpdateAbort(t *testing.T, s store.Store) {
	ctx := t.Context()
	abort := func([]byte) ([]byte, error) { return []byte("must not land"), errBoom }

	if err := s.UpdateSecret(ctx, "key", "new", abort); err != errBoom {
		t.Errorf("UpdateSecret error = %v, want fn's error as is", err)
	}
	_, err := s.GetSecret(ctx, "key", "new")
	wantErr(t, "GetSecret after aborted create", err, store.ErrNotFound)

	setSecret(t, s, "key", "old", "kept")
	if err := s.UpdateSecret(ctx, "key", "old", abort); err != errBoom {
		t.Errorf("UpdateSecret error = %v, want fn's error as is", err)
	}
	got, err := s.GetSecret(ctx, "key", "old")
	if err != nil || string(got) != "kept" {
		t.Errorf("GetSecret after aborted update = %q, %v; want %q", got, err, "kept")
	}
}

func testSecretUpdateConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	countConcurrently(t, "GetSecret",
		func() error { return s.UpdateSecret(ctx, "counter", "n", Increment) },
		func() ([]byte, error) { return s.GetSecret(ctx, "counter", "n") })
}

type call struct {
	name string
	fn   func(ctx context.Context) error
}

// everyMethod calls each method with arguments that would succeed on a store
// filled by prepare, so any error is the one under test. fnCalled records
// whether an update function ran.
func everyMethod(s store.Store, fnCalled *bool) []call {
	upd := func(old []byte) ([]byte, error) { *fnCalled = true; return []byte("x"), nil }
	run := []store.RunRecord{{Flow: "f", ID: "r2", Started: time.Now()}}
	calls := []call{
		{"GetFlow", func(ctx context.Context) error { _, err := s.GetFlow(ctx, "f"); return err }},
		{"ListFlows", func(ctx context.Context) error { _, err := s.ListFlows(ctx); return err }},
		{"PutFlow", func(ctx context.Context) error { _, err := s.PutFlow(ctx, "f", []byte("{}"), store.AnyRev); return err }},
		{"DeleteFlow", func(ctx context.Context) error { return s.DeleteFlow(ctx, "f", store.AnyRev) }},
		{"AddVersion", func(ctx context.Context) error { _, err := s.AddVersion(ctx, "f", []byte("{}"), ""); return err }},
		{"SetDeployed", func(ctx context.Context) error { return s.SetDeployed(ctx, "f", 1) }},
		{"ListVersions", func(ctx context.Context) error { _, err := s.ListVersions(ctx, "f"); return err }},
		{"GetVersion", func(ctx context.Context) error { _, err := s.GetVersion(ctx, "f", 1); return err }},
		{"GetKV", func(ctx context.Context) error { _, err := s.GetKV(ctx, "ns", "k"); return err }},
		{"SetKV", func(ctx context.Context) error { return s.SetKV(ctx, "ns", "k", []byte("v")) }},
		{"DeleteKV", func(ctx context.Context) error { return s.DeleteKV(ctx, "ns", "k") }},
		{"ListKV", func(ctx context.Context) error { _, err := s.ListKV(ctx, "ns"); return err }},
		{"UpdateKV", func(ctx context.Context) error { return s.UpdateKV(ctx, "ns", "k", upd) }},
		{"UpdateKVs", func(ctx context.Context) error {
			return s.UpdateKVs(ctx, []store.KVRef{{NS: "ns", Key: "k"}, {NS: "ns", Key: "k2"}}, func(old [][]byte) ([][]byte, error) {
				*fnCalled = true
				return [][]byte{[]byte("x"), nil}, nil
			})
		}},
		{"GetSecret", func(ctx context.Context) error { _, err := s.GetSecret(ctx, "kind", "name"); return err }},
		{"UpdateSecret", func(ctx context.Context) error { return s.UpdateSecret(ctx, "kind", "name", upd) }},
		{"DeleteSecret", func(ctx context.Context) error { return s.DeleteSecret(ctx, "kind", "name") }},
		{"ListSecrets", func(ctx context.Context) error { _, err := s.ListSecrets(ctx, "kind"); return err }},
		{"CreateKV", func(ctx context.Context) error { return s.CreateKV(ctx, "ns", "new", nil) }},
		{"DesiredState", func(ctx context.Context) error { _, err := s.DesiredState(ctx); return err }},
		{"Deploy", func(ctx context.Context) error {
			_, _, err := s.Deploy(ctx, store.DeployRequest{Flow: "f", Version: 1, IfGen: store.AnyRev})
			return err
		}},
		{"Rev", func(ctx context.Context) error { _, err := s.Rev(ctx); return err }},
		{"Watch", func(ctx context.Context) error { _, err := s.Watch(ctx, 0, store.Filter{}); return err }},
		{"Campaign", func(ctx context.Context) error { _, err := s.Campaign(ctx, "role"); return err }},
		{"Lock", func(ctx context.Context) error { _, err := s.Lock(ctx, "lock"); return err }},
		{"TryLock", func(ctx context.Context) error { _, err := s.TryLock(ctx, "lock"); return err }},
		{"Register", func(ctx context.Context) error { return s.Register(ctx, store.NodeInfo{ID: "n"}) }},
		{"Nodes", func(ctx context.Context) error { _, err := s.Nodes(ctx); return err }},
		{"SetApplied", func(ctx context.Context) error { return s.SetApplied(ctx, 0, 0, nil) }},
		{"SetNodeData", func(ctx context.Context) error { return s.SetNodeData(ctx, "d", nil) }},
		{"NodeData", func(ctx context.Context) error { _, err := s.NodeData(ctx, "d"); return err }},
	}
	if r, ok := s.(store.Runs); ok {
		calls = append(calls, []call{
			{"AppendRuns", func(ctx context.Context) error { return r.AppendRuns(ctx, run) }},
			{"AppendRuns empty", func(ctx context.Context) error { return r.AppendRuns(ctx, nil) }},
			{"ListRuns", func(ctx context.Context) error { _, err := r.ListRuns(ctx, "f", 10); return err }},
			{"GetRun", func(ctx context.Context) error { _, err := r.GetRun(ctx, "f", "r1"); return err }},
			{"DeleteRuns", func(ctx context.Context) error { return r.DeleteRuns(ctx, "f") }},
		}...)
	}
	return calls
}

// prepare fills s so that every call in everyMethod would succeed.
func prepare(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	put(t, s, "f", "{}")
	_, err := s.AddVersion(ctx, "f", []byte("{}"), "")
	must(t, "AddVersion", err)
	if r, ok := s.(store.Runs); ok {
		must(t, "AppendRuns", r.AppendRuns(ctx, []store.RunRecord{{Flow: "f", ID: "r1", Started: time.Now()}}))
	}
	must(t, "SetKV", s.SetKV(ctx, "ns", "k", []byte("v")))
	setSecret(t, s, "kind", "name", "v")
}

func testCancelled(t *testing.T, s store.Store) {
	prepare(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var fnCalled bool
	for _, c := range everyMethod(s, &fnCalled) {
		wantErr(t, c.name, c.fn(ctx), context.Canceled)
	}
	if fnCalled {
		t.Error("an update function ran under a cancelled context")
	}
	// Nothing was changed: the deletes above were refused.
	if _, err := s.GetFlow(t.Context(), "f"); err != nil {
		t.Errorf("GetFlow after cancelled calls: %v", err)
	}
	if v, err := s.GetKV(t.Context(), "ns", "k"); err != nil || string(v) != "v" {
		t.Errorf("GetKV after cancelled calls = %q, %v", v, err)
	}
}

func testClosed(t *testing.T, s store.Store) {
	prepare(t, s)
	must(t, "Close", s.Close())
	must(t, "second Close", s.Close())
	var fnCalled bool
	for _, c := range everyMethod(s, &fnCalled) {
		wantErr(t, c.name, c.fn(t.Context()), store.ErrClosed)
	}
	if fnCalled {
		t.Error("an update function ran on a closed store")
	}
}

func testInvalidIDs(t *testing.T, s store.Store) {
	prepare(t, s)
	bad := []struct{ name, id string }{
		{"empty", ""},
		{"too long", strings.Repeat("x", 201)},
		{"NUL", "a\x00b"},
		{"not UTF-8", "a\xffb"},
	}
	noop := func(old []byte) ([]byte, error) { return old, nil }
	for _, b := range bad {
		id := b.id
		run := func(flow, rid string) []store.RunRecord {
			return []store.RunRecord{{Flow: flow, ID: rid, Started: time.Now()}}
		}
		calls := []call{
			{"GetFlow", func(ctx context.Context) error { _, err := s.GetFlow(ctx, id); return err }},
			{"PutFlow", func(ctx context.Context) error { _, err := s.PutFlow(ctx, id, []byte("{}"), store.AnyRev); return err }},
			{"DeleteFlow", func(ctx context.Context) error { return s.DeleteFlow(ctx, id, store.AnyRev) }},
			{"AddVersion", func(ctx context.Context) error { _, err := s.AddVersion(ctx, id, nil, ""); return err }},
			{"SetDeployed", func(ctx context.Context) error { return s.SetDeployed(ctx, id, 0) }},
			{"ListVersions", func(ctx context.Context) error { _, err := s.ListVersions(ctx, id); return err }},
			{"GetVersion", func(ctx context.Context) error { _, err := s.GetVersion(ctx, id, 1); return err }},
			{"GetKV ns", func(ctx context.Context) error { _, err := s.GetKV(ctx, id, "k"); return err }},
			{"SetKV ns", func(ctx context.Context) error { return s.SetKV(ctx, id, "k", nil) }},
			{"DeleteKV ns", func(ctx context.Context) error { return s.DeleteKV(ctx, id, "k") }},
			{"ListKV ns", func(ctx context.Context) error { _, err := s.ListKV(ctx, id); return err }},
			{"UpdateKV ns", func(ctx context.Context) error { return s.UpdateKV(ctx, id, "k", noop) }},
			{"GetSecret kind", func(ctx context.Context) error { _, err := s.GetSecret(ctx, id, "name"); return err }},
			{"GetSecret name", func(ctx context.Context) error { _, err := s.GetSecret(ctx, "kind", id); return err }},
			{"UpdateSecret kind", func(ctx context.Context) error { return s.UpdateSecret(ctx, id, "name", noop) }},
			{"UpdateSecret name", func(ctx context.Context) error { return s.UpdateSecret(ctx, "kind", id, noop) }},
			{"DeleteSecret kind", func(ctx context.Context) error { return s.DeleteSecret(ctx, id, "name") }},
			{"DeleteSecret name", func(ctx context.Context) error { return s.DeleteSecret(ctx, "kind", id) }},
			{"ListSecrets", func(ctx context.Context) error { _, err := s.ListSecrets(ctx, id); return err }},
			{"CreateKV ns", func(ctx context.Context) error { return s.CreateKV(ctx, id, "k", nil) }},
			{"Deploy", func(ctx context.Context) error {
				_, _, err := s.Deploy(ctx, store.DeployRequest{Flow: id, IfGen: store.AnyRev})
				return err
			}},
			{"Campaign", func(ctx context.Context) error { _, err := s.Campaign(ctx, id); return err }},
			{"Lock", func(ctx context.Context) error { _, err := s.Lock(ctx, id); return err }},
			{"TryLock", func(ctx context.Context) error { _, err := s.TryLock(ctx, id); return err }},
			{"Register", func(ctx context.Context) error { return s.Register(ctx, store.NodeInfo{ID: id}) }},
		}
		if r, ok := s.(store.Runs); ok {
			calls = append(calls, []call{
				{"AppendRuns flow", func(ctx context.Context) error { return r.AppendRuns(ctx, run(id, "r")) }},
				{"AppendRuns id", func(ctx context.Context) error { return r.AppendRuns(ctx, run("f", id)) }},
				{"ListRuns", func(ctx context.Context) error { _, err := r.ListRuns(ctx, id, 1); return err }},
				{"GetRun flow", func(ctx context.Context) error { _, err := r.GetRun(ctx, id, "r1"); return err }},
				{"GetRun id", func(ctx context.Context) error { _, err := r.GetRun(ctx, "f", id); return err }},
				{"DeleteRuns", func(ctx context.Context) error { return r.DeleteRuns(ctx, id) }},
			}...)
		}
		// KV keys may be longer than ids, so only the other bad keys apply.
		if b.name != "too long" {
			calls = append(calls,
				call{"GetKV key", func(ctx context.Context) error { _, err := s.GetKV(ctx, "ns", id); return err }},
				call{"SetKV key", func(ctx context.Context) error { return s.SetKV(ctx, "ns", id, nil) }},
				call{"DeleteKV key", func(ctx context.Context) error { return s.DeleteKV(ctx, "ns", id) }},
				call{"UpdateKV key", func(ctx context.Context) error { return s.UpdateKV(ctx, "ns", id, noop) }},
			)
		}
		t.Run(b.name, func(t *testing.T) {
			for _, c := range calls {
				wantErr(t, c.name, c.fn(t.Context()), store.ErrInvalid)
			}
		})
	}
	flows, err := s.ListFlows(t.Context())
	if err != nil || len(flows) != 1 {
		t.Errorf("after invalid calls: %d flows, %v; want only the prepared one", len(flows), err)
	}
}

func testMaxLength(t *testing.T, s store.Store) {
	ctx := t.Context()
	id := strings.Repeat("é", 100) // 200 bytes, the longest valid id
	put(t, s, id, "{}")
	if got, err := s.GetFlow(ctx, id); err != nil || got.ID != id {
		t.Errorf("GetFlow of a 200-byte id = %q, %v", got.ID, err)
	}
	must(t, "AppendRuns", rs(t, s).AppendRuns(ctx, []store.RunRecord{{Flow: id, ID: id, Started: time.Now()}}))
	if _, err := rs(t, s).GetRun(ctx, id, id); err != nil {
		t.Errorf("GetRun of 200-byte ids: %v", err)
	}
	must(t, "SetKV", s.SetKV(ctx, id, id, []byte("v")))
	setSecret(t, s, id, id, "v")
	if v, err := s.GetSecret(ctx, id, id); err != nil || string(v) != "v" {
		t.Errorf("GetSecret of 200-byte ids = %q, %v", v, err)
	}
}
