package jose

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRotateNeverHitsKeyCap: quick rotations (an operator pressing "rotate
// now" again and again) fill the keyset with retired keys still inside
// their deadline. Rotation must keep working, the scheduled one included:
// the keyset stays within its cap by evicting the retired keys with the
// nearest deadline (revoked ones first), logging each eviction, and never
// touches next or active keys. Past their deadline, retired keys are gone.
func TestRotateNeverHitsKeyCap(t *testing.T) {
	ctx := t.Context()
	m, _, clk := newKeysetsForTest(t)
	var logBuf bytes.Buffer
	m.Log = slog.New(slog.NewTextHandler(&logBuf, nil))
	algs := []string{"ES256", "HS256"}
	createKeyset(t, m, "auth", algs...)
	var evicted []string
	retireAt := map[string]time.Time{} // kid -> deadline, as retired
	for i := range 200 {
		clk.Advance(time.Minute)
		before, err := m.Get(ctx, "auth")
		if err != nil {
			t.Fatal(err)
		}
		rot, err := m.Rotate(ctx, "auth", RotateOptions{})
		if err != nil {
			t.Fatalf("quick rotation %d: %v", i+1, err)
		}
		info, err := m.Get(ctx, "auth")
		if err != nil {
			t.Fatal(err)
		}
		if len(info.Keys) > maxKeysPerKeyset {
			t.Fatalf("rotation %d: %d keys, cap %d", i+1, len(info.Keys), maxKeysPerKeyset)
		}
		assertOneActivePerAlg(t, info)
		for _, kid := range rot.Evicted {
			k := keyInfo(t, before, kid)
			if k.State != StateRetired {
				t.Fatalf("rotation %d evicted %s key %s", i+1, k.State, kid)
			}
			// Every retired key still present has a deadline no earlier
			// than the evicted one's: the nearest deadlines go first.
			for _, o := range info.Keys {
				if o.State == StateRetired && o.RetireAt.Before(k.RetireAt) {
					t.Fatalf("rotation %d evicted %s (deadline %v) but kept %s (deadline %v)", i+1, kid, k.RetireAt, o.Kid, o.RetireAt)
				}
			}
		}
		evicted = append(evicted, rot.Evicted...)
		for _, k := range info.Keys {
			if k.State == StateRetired {
				retireAt[k.Kid] = k.RetireAt
			}
		}
	}
	if len(evicted) == 0 {
		t.Fatal("200 quick rotations evicted nothing: the cap was never reached, the test proves nothing")
	}
	if n := strings.Count(logBuf.String(), "level=WARN"); n == 0 || !strings.Contains(logBuf.String(), evicted[len(evicted)-1]) {
		t.Errorf("evictions not logged as warnings naming the kids (%d warnings):\n%s", n, logBuf.String())
	}

	t.Run("the scheduled rotation succeeds at the cap", func(t *testing.T) {
		clk.Advance(3 * time.Hour) // the daily 03:00 run, all retired keys still inside 48 h
		if _, err := m.Rotate(ctx, "auth", RotateOptions{RetireAfter: 48 * time.Hour}); err != nil {
			t.Fatalf("scheduled rotation: %v", err)
		}
	})

	t.Run("an emergency revoke at the cap succeeds, evicting revoked keys first", func(t *testing.T) {
		clk.Advance(time.Minute)
		info, _ := m.Get(ctx, "auth")
		if len(info.Keys) != maxKeysPerKeyset {
			t.Fatalf("%d keys, want the keyset at its cap (%d)", len(info.Keys), maxKeysPerKeyset)
		}
		victim := keysByState(info)["ES256"][StateActive][0]
		logBuf.Reset()
		if err := m.Revoke(ctx, "auth", victim); err != nil {
			t.Fatalf("revoke at the cap: %v", err)
		}
		after, _ := m.Get(ctx, "auth")
		if hasKid(after, victim) || len(after.Keys) != maxKeysPerKeyset {
			t.Errorf("after revoke: victim kept %v, %d keys; want the revoked key evicted for the new next key", hasKid(after, victim), len(after.Keys))
		}
		if !strings.Contains(logBuf.String(), victim) {
			t.Errorf("eviction not logged: %s", logBuf.String())
		}
		assertOneActivePerAlg(t, after)
	})

	t.Run("retired keys past their deadline are deleted", func(t *testing.T) {
		clk.Advance(DefaultRetireAfter + time.Minute)
		now := clk.Now()
		rot, err := m.Rotate(ctx, "auth", RotateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rot.Evicted) != 0 {
			t.Errorf("evicted %v although expired keys made room", rot.Evicted)
		}
		info, _ := m.Get(ctx, "auth")
		for _, k := range info.Keys {
			if k.State == StateRetired && k.RetireAt.Before(now) {
				t.Errorf("retired key %s past its deadline %v still in the keyset", k.Kid, k.RetireAt)
			}
		}
		for kid, at := range retireAt {
			if at.Before(now) && hasKid(info, kid) {
				t.Errorf("expired key %s kept", kid)
			}
			if at.Before(now) && !slices.Contains(rot.Deleted, kid) && !slices.Contains(evicted, kid) && hasKid(info, kid) {
				t.Errorf("expired key %s neither deleted nor evicted", kid)
			}
		}
		if got := len(info.Keys); got != 2*len(algs)+len(rot.Retired) {
			t.Errorf("%d keys after the cleanup, want %d (active + next per alg, plus the keys just retired)", got, 2*len(algs)+len(rot.Retired))
		}
	})
}
