package jose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestClusterUsageSumsReports: another node's report adds its total, the
// minutes still inside this node's last hour and its last time; reports
// of other keysets, of keys not published here, and ones that do not
// decode add nothing; without reports the answer is this node's own.
func TestClusterUsageSumsReports(t *testing.T) {
	e := newBlockEnv(t)
	ctx := t.Context()
	e.validateTimes(t, 3)
	now := e.clk.Now()
	kid := activeKid(t, e.ks, "main")

	// This node's own report is what its counters say.
	raw, err := e.ks.UsageReport()
	if err != nil {
		t.Fatal(err)
	}
	var own usageReport
	if err := json.Unmarshal(raw, &own); err != nil {
		t.Fatal(err)
	}
	if len(own.Keys) != 1 || own.Keys[0].Kid != kid || own.Keys[0].Keyset != "main" || own.Keys[0].Total != 3 ||
		own.Keys[0].Minute != now.Unix()/60 || fmt.Sprint(own.Keys[0].Counts) != "[3]" || own.Keys[0].Last != now.Unix() {
		t.Fatalf("own report %s", raw)
	}

	cur := now.Unix() / 60
	later := now.Add(10 * time.Minute).Truncate(time.Second)
	report := func(keys ...keyReport) []byte {
		b, _ := json.Marshal(usageReport{V: reportVersion, Keys: keys})
		return b
	}
	peers := map[string][]byte{
		// 10 in all; 4 this minute, 2 two minutes ago, 7 fifty-nine
		// minutes ago (in the hour), and older ones.
		"b": report(keyReport{Keyset: "main", Kid: kid, Total: 30, Last: later.Unix(), Minute: cur,
			Counts: append([]uint64{4, 0, 2}, append(make([]uint64, 56), 7)...)}),
		// A report two hours old: its total counts, its minutes do not.
		"c": report(keyReport{Keyset: "main", Kid: kid, Total: 5, Last: now.Add(-2 * time.Hour).Unix(), Minute: cur - 120, Counts: []uint64{5}}),
		"d": report(keyReport{Keyset: "other", Kid: kid, Total: 100, Minute: cur, Counts: []uint64{100}},
			keyReport{Keyset: "main", Kid: "not-published-here", Total: 100, Minute: cur, Counts: []uint64{100}}),
		"e": []byte("{not json"),
		"f": []byte(`{"v":2,"keys":[{"ks":"main","kid":"` + kid + `","total":1000}]}`),
		// A hostile report with far more minutes than an hour has.
		"g": report(keyReport{Keyset: "main", Kid: kid, Total: 1, Minute: cur, Counts: append(make([]uint64, 60), make([]uint64, 100000)...)}),
	}
	tests := []struct {
		name  string
		peers func(context.Context) (map[string][]byte, error)
		want  KeyUsage
	}{
		{"no peers", nil, KeyUsage{Verified: 3, LastHour: 3, LastVerified: now.Truncate(time.Second)}},
		{"reports added", func(context.Context) (map[string][]byte, error) { return peers, nil },
			KeyUsage{Verified: 3 + 30 + 5 + 1, LastHour: 3 + 4 + 2 + 7, LastVerified: later.UTC()}},
		{"peers unreadable: own alone", func(context.Context) (map[string][]byte, error) { return nil, errors.New("store down") },
			KeyUsage{Verified: 3, LastHour: 3, LastVerified: now.Truncate(time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.ks.UsagePeers = tt.peers
			usage, err := e.ks.ClusterUsage(ctx, "main")
			if err != nil {
				t.Fatal(err)
			}
			got := usage[0]
			tt.want.Kid, tt.want.State = kid, StateActive
			got.LastVerified = got.LastVerified.UTC()
			tt.want.LastVerified = tt.want.LastVerified.UTC()
			if len(usage) != 2 || got != tt.want {
				t.Errorf("usage %+v, want %+v first", usage, tt.want)
			}
		})
	}
}

func activeKid(t *testing.T, ks *Keysets, name string) string {
	t.Helper()
	info, err := ks.Get(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range info.Keys {
		if k.State == StateActive {
			return k.Kid
		}
	}
	t.Fatal("no active key")
	return ""
}

// TestUsageReportIsBounded: however many keys were used, a report keeps
// the most recently used ones, under the size a node record may have.
func TestUsageReportIsBounded(t *testing.T) {
	ks := NewKeysets(nil)
	now := time.Unix(1_800_000_000, 0)
	ks.Now = func() time.Time { return now }
	e := &ksEntry{name: "big", uses: map[string]*keyUse{}}
	for i := range 1000 {
		u := &keyUse{}
		for m := range 60 {
			u.note(now.Add(-time.Duration(m)*time.Minute).Unix() - int64(i))
		}
		e.uses[fmt.Sprintf("kid-%04d-%s", i, strings.Repeat("x", 40))] = u
	}
	ks.entries = map[string]*ksEntry{"big": e}
	raw, err := ks.UsageReport()
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > maxReportBytes {
		t.Fatalf("report is %d bytes, more than %d", len(raw), maxReportBytes)
	}
	var r usageReport
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Keys) == 0 || len(r.Keys) > maxReportKeys {
		t.Fatalf("%d keys reported", len(r.Keys))
	}
	for i, k := range r.Keys {
		if want := fmt.Sprintf("kid-%04d-", i); !strings.HasPrefix(k.Kid, want) {
			t.Fatalf("key %d is %s, want the most recently used first (%s...)", i, k.Kid, want)
		}
	}
}
