package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/flowd/flowd/store"
)

// Tests of KV.UpdateKVs: several records read, changed and written in one
// transaction.

var (
	refA = store.KVRef{NS: "ns", Key: "a"}
	refB = store.KVRef{NS: "other", Key: "b"}
)

// getOrNil reads ns/key; nil when absent.
func getOrNil(t *testing.T, s store.Store, r store.KVRef) []byte {
	t.Helper()
	v, err := s.GetKV(t.Context(), r.NS, r.Key)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	must(t, "GetKV "+r.NS+"/"+r.Key, err)
	return v
}

func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// testKVUpdateMany: what fn sees and what is written, step by step, over
// two records in two namespaces.
func testKVUpdateMany(t *testing.T, s store.Store) {
	ctx := t.Context()
	refs := []store.KVRef{refA, refB}
	steps := []struct {
		name    string
		ret     [][]byte
		fnErr   error
		wantOld [][]byte // what fn must see (nil: absent)
		after   [][]byte // what is stored afterwards (nil: absent)
	}{
		{"both absent, left absent", [][]byte{nil, nil}, nil, [][]byte{nil, nil}, [][]byte{nil, nil}},
		{"abort on absent", [][]byte{[]byte("x"), []byte("y")}, errBoom, [][]byte{nil, nil}, [][]byte{nil, nil}},
		{"create both", [][]byte{[]byte("1"), []byte("2")}, nil, [][]byte{nil, nil}, [][]byte{[]byte("1"), []byte("2")}},
		{"change one, keep one", [][]byte{[]byte("3"), []byte("2")}, nil, [][]byte{[]byte("1"), []byte("2")}, [][]byte{[]byte("3"), []byte("2")}},
		{"abort keeps both", [][]byte{nil, []byte("9")}, errBoom, [][]byte{[]byte("3"), []byte("2")}, [][]byte{[]byte("3"), []byte("2")}},
		{"delete one, empty the other", [][]byte{nil, {}}, nil, [][]byte{[]byte("3"), []byte("2")}, [][]byte{nil, {}}},
		{"fn sees empty, not nil", [][]byte{nil, nil}, nil, [][]byte{nil, {}}, [][]byte{nil, nil}},
	}
	for _, st := range steps {
		calls := 0
		var saw [][]byte
		err := s.UpdateKVs(ctx, refs, func(old [][]byte) ([][]byte, error) {
			calls++
			saw = old
			return st.ret, st.fnErr
		})
		checkUpdateCall(t, st.name+": UpdateKVs", err, st.fnErr, calls)
		if len(saw) != len(refs) {
			t.Fatalf("%s: fn got %d values for %d records", st.name, len(saw), len(refs))
		}
		for i, r := range refs {
			if !sameBytes(saw[i], st.wantOld[i]) {
				t.Errorf("%s: fn saw %s/%s = %q (nil=%v), want %q (nil=%v)", st.name, r.NS, r.Key, saw[i], saw[i] == nil, st.wantOld[i], st.wantOld[i] == nil)
			}
			if got := getOrNil(t, s, r); !sameBytes(got, st.after[i]) {
				t.Errorf("%s: %s/%s = %q (nil=%v) afterwards, want %q (nil=%v)", st.name, r.NS, r.Key, got, got == nil, st.after[i], st.after[i] == nil)
			}
		}
	}
	// fn owns old: changing it in place writes nothing by itself.
	must(t, "SetKV", s.SetKV(ctx, refA.NS, refA.Key, []byte("value")))
	must(t, "UpdateKVs", s.UpdateKVs(ctx, []store.KVRef{refA}, func(old [][]byte) ([][]byte, error) {
		copy(old[0], "XXXXX")
		return [][]byte{[]byte("value")}, nil
	}))
	if got := getOrNil(t, s, refA); string(got) != "value" {
		t.Errorf("after fn changed its old slice: %q, want %q", got, "value")
	}
}

// testKVUpdateManyInvalid: bad record lists and bad results are ErrInvalid,
// and nothing is written.
func testKVUpdateManyInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "SetKV", s.SetKV(ctx, refA.NS, refA.Key, []byte("keep")))
	tooMany := make([]store.KVRef, store.MaxUpdateKVs+1)
	for i := range tooMany {
		tooMany[i] = store.KVRef{NS: "ns", Key: fmt.Sprint("k", i)}
	}
	badRefs := []struct {
		name string
		refs []store.KVRef
	}{
		{"none", nil},
		{"too many", tooMany},
		{"twice", []store.KVRef{refA, refB, refA}},
		{"empty namespace", []store.KVRef{refA, {NS: "", Key: "k"}}},
		{"NUL key", []store.KVRef{{NS: "ns", Key: "a\x00"}}},
		{"key too long", []store.KVRef{{NS: "ns", Key: strings.Repeat("k", store.MaxKeyLen+1)}}},
	}
	for _, b := range badRefs {
		called := false
		err := s.UpdateKVs(ctx, b.refs, func(old [][]byte) ([][]byte, error) {
			called = true
			return old, nil
		})
		wantErr(t, b.name, err, store.ErrInvalid)
		if called {
			t.Errorf("%s: fn ran for an invalid record list", b.name)
		}
	}
	wantErr(t, "nil fn", s.UpdateKVs(ctx, []store.KVRef{refA}, nil), store.ErrInvalid)
	for _, n := range []int{0, 1, 3} {
		err := s.UpdateKVs(ctx, []store.KVRef{refA, refB}, func([][]byte) ([][]byte, error) {
			return slices.Repeat([][]byte{[]byte("x")}, n), nil
		})
		wantErr(t, fmt.Sprintf("%d results for 2 records", n), err, store.ErrInvalid)
	}
	if got := getOrNil(t, s, refA); string(got) != "keep" {
		t.Errorf("%s = %q after refused updates, want %q", refA.Key, got, "keep")
	}
	if got := getOrNil(t, s, refB); got != nil {
		t.Errorf("%s = %q after refused updates, want absent", refB.Key, got)
	}
}

// testKVUpdateManyAtomic: workers add one to two counters in one update
// while others read both in an update that changes nothing; a reader
// never sees them differ (one snapshot), and no increment is lost. Single
// record updates of one counter, racing, must be ordered with them too.
func testKVUpdateManyAtomic(t *testing.T, s store.Store) {
	ctx := t.Context()
	both := []store.KVRef{refA, refB}
	var mu sync.Mutex
	var torn []string
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var a, b string
				err := s.UpdateKVs(ctx, both, func(old [][]byte) ([][]byte, error) {
					a, b = string(old[0]), string(old[1])
					return old, nil
				})
				if err != nil {
					t.Errorf("reading update: %v", err)
					return
				}
				if a != b {
					mu.Lock()
					torn = append(torn, a+"/"+b)
					mu.Unlock()
				}
			}
		})
	}
	concurrently(t, func() error {
		return s.UpdateKVs(ctx, both, func(old [][]byte) ([][]byte, error) {
			a, err := Increment(old[0])
			if err != nil {
				return nil, err
			}
			b, err := Increment(old[1])
			return [][]byte{a, b}, err
		})
	})
	close(stop)
	wg.Wait()
	if len(torn) > 0 {
		t.Errorf("a reading update saw the two counters differ %d times (first %s): not one snapshot", len(torn), torn[0])
	}
	want := strconv.Itoa(workers * perWorker)
	for _, r := range both {
		if got := getOrNil(t, s, r); string(got) != want {
			t.Errorf("%s/%s = %s, want %s (lost updates)", r.NS, r.Key, got, want)
		}
	}
}

// testKVUpdateManyRace is the shape of an authorization code exchange:
// racers present one code at once; each, in one update, either spends the
// unused code and creates the grant it names, or finds it spent and marks
// that grant revoked. Exactly one racer wins, whatever the number of calls
// of fn, and the grant ends revoked by the others. Half the racers name
// the records in the other order.
func testKVUpdateManyRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	code := store.KVRef{NS: "codes", Key: "c1"}
	grant := store.KVRef{NS: "grants", Key: "g1"}
	must(t, "SetKV", s.SetKV(ctx, code.NS, code.Key, []byte("unused")))
	const racers = 16
	won := make([]bool, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			<-start
			refs, ci, gi := []store.KVRef{code, grant}, 0, 1
			if i%2 == 1 {
				refs, ci, gi = []store.KVRef{grant, code}, 1, 0
			}
			errs[i] = s.UpdateKVs(ctx, refs, func(old [][]byte) ([][]byte, error) {
				won[i] = false // fn may run again: nothing kept from an earlier call
				out := slices.Clone(old)
				switch string(old[ci]) {
				case "unused":
					won[i] = true
					out[ci] = []byte("used")
					out[gi] = []byte("live:" + strconv.Itoa(i))
				case "used":
					if g := string(old[gi]); !strings.HasSuffix(g, ";revoked") {
						out[gi] = []byte(g + ";revoked")
					}
				default:
					return nil, fmt.Errorf("code record %q", old[ci])
				}
				return out, nil
			})
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i := range racers {
		switch {
		case errs[i] != nil:
			t.Errorf("racer %d: %v", i, errs[i])
		case won[i] && winner >= 0:
			t.Errorf("racers %d and %d both spent the code", winner, i)
		case won[i]:
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no racer spent the code")
	}
	if got := string(getOrNil(t, s, code)); got != "used" {
		t.Errorf("code = %q, want used", got)
	}
	if got, want := string(getOrNil(t, s, grant)), "live:"+strconv.Itoa(winner)+";revoked"; got != want {
		t.Errorf("grant = %q, want %q (the winner's, revoked by the others)", got, want)
	}
}

// testKVUpdateManyFeed: an update of several records reports the records
// it changed (not those it left as they were), and a failed one nothing.
func testKVUpdateManyFeed(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "SetKV", s.SetKV(ctx, refA.NS, refA.Key, []byte("1")))
	must(t, "SetKV", s.SetKV(ctx, refB.NS, refB.Key, []byte("2")))
	_, ch := watchNow(t, s, store.Filter{})
	refC := store.KVRef{NS: "ns", Key: "c"}
	wantErr(t, "abort", s.UpdateKVs(ctx, []store.KVRef{refA, refC}, func([][]byte) ([][]byte, error) { return nil, errBoom }), errBoom)
	must(t, "UpdateKVs", s.UpdateKVs(ctx, []store.KVRef{refA, refB, refC}, func(old [][]byte) ([][]byte, error) {
		return [][]byte{nil, old[1], []byte("3")}, nil
	}))
	must(t, "SetKV marker", s.SetKV(ctx, "ns", "marker", nil))
	got := collect(t, ch, 3)
	if got[0].Rev != got[1].Rev {
		t.Errorf("one update's changes have revisions %d and %d, want one", got[0].Rev, got[1].Rev)
	}
	first := strip(got[:2])
	slices.SortFunc(first, func(x, y change) int { return strings.Compare(x.name, y.name) })
	want := []change{{store.KindKV, "ns", "a", true}, {store.KindKV, "ns", "c", false}, {store.KindKV, "ns", "marker", false}}
	if all := append(first, strip(got[2:])...); !slices.Equal(all, want) {
		t.Errorf("feed = %+v, want %+v", all, want)
	}
}

// testKVUpdateManyWriteSkew: records an update leaves as they were are
// still part of its condition. Two racers per round: each sets its own
// record only if both are unset, leaving the other as it read it. If the
// unchanged record were not checked at commit, both could win (write skew).
func testKVUpdateManyWriteSkew(t *testing.T, s store.Store) {
	ctx := t.Context()
	const rounds, racers = 10, 6
	for round := range rounds {
		x := store.KVRef{NS: "skew", Key: fmt.Sprint("x", round)}
		y := store.KVRef{NS: "skew", Key: fmt.Sprint("y", round)}
		won := make([]bool, racers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range racers {
			wg.Go(func() {
				<-start
				err := s.UpdateKVs(ctx, []store.KVRef{x, y}, func(old [][]byte) ([][]byte, error) {
					won[i] = false
					if old[0] != nil || old[1] != nil {
						return old, nil
					}
					won[i] = true
					out := [][]byte{nil, nil}
					out[i%2] = []byte(fmt.Sprint(i))
					return out, nil
				})
				if err != nil {
					t.Errorf("round %d racer %d: %v", round, i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		n := 0
		for _, w := range won {
			if w {
				n++
			}
		}
		gx, gy := getOrNil(t, s, x), getOrNil(t, s, y)
		if n != 1 || (gx == nil) == (gy == nil) {
			t.Fatalf("round %d: %d winners, x=%q y=%q; want 1 winner and exactly one record set", round, n, gx, gy)
		}
	}
}
