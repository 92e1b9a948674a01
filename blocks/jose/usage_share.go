package jose

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"time"
)

// Per-key use across a cluster. Each node counts the tokens its own
// validations verified (keyUse); to show a cluster-wide figure, every node
// publishes UsageReport now and then as a record of its own in the
// store's node registry (it lives as long as the node's registration, so
// a dead node's counts vanish), and ClusterUsage adds the other nodes'
// latest reports to this node's live counts:
//
//	node a: keyUse --UsageReport every few s--> store node record "key_usage" (a)
//	node b: keyUse --UsageReport every few s--> store node record "key_usage" (b)
//	keysets page / API on a: Usage (a, live) + report of b (as of its last publish)
//
// A report holds, per verification key, the total, the last time, and the
// per-minute counts of the last hour, so the reader sums the minutes that
// are still inside its own last hour. It is bounded: at most
// maxReportKeys keys (the most recently used), under maxReportBytes.

const (
	maxReportKeys  = 128
	maxReportBytes = 60 << 10 // under store.MaxNodeDataBytes
	reportVersion  = 1
)

// usageReport is one node's published use.
type usageReport struct {
	V    int         `json:"v"`
	Keys []keyReport `json:"keys"`
}

type keyReport struct {
	Keyset string `json:"ks"`
	Kid    string `json:"kid"`
	Total  uint64 `json:"total"`
	Last   int64  `json:"last,omitempty"` // unix seconds
	// Minute is the unix minute of Counts[0]; Counts[i] is the count of
	// minute Minute-i (trailing zeros left out).
	Minute int64    `json:"minute"`
	Counts []uint64 `json:"counts,omitempty"`
}

// UsageReport is this process's use of every loaded keyset's
// verification keys, for the other nodes (see ClusterUsage). Keys never
// used are left out.
func (m *Keysets) UsageReport() ([]byte, error) {
	now := m.now()
	cur := now.Unix() / 60
	m.mu.RLock()
	entries := make([]*ksEntry, 0, len(m.entries))
	for _, e := range m.entries {
		entries = append(entries, e)
	}
	m.mu.RUnlock()
	var keys []keyReport
	for _, e := range entries {
		e.mu.Lock()
		for kid, u := range e.uses {
			total := u.total.Load()
			if total == 0 {
				continue
			}
			k := keyReport{Keyset: e.name, Kid: kid, Total: total, Last: u.last.Load(), Minute: cur}
			k.Counts = u.minutes(cur)
			keys = append(keys, k)
		}
		e.mu.Unlock()
	}
	// Most recently used first: what is cut to stay bounded is the least
	// recently used.
	slices.SortFunc(keys, func(a, b keyReport) int {
		return cmp.Or(cmp.Compare(b.Last, a.Last), cmp.Compare(a.Keyset, b.Keyset), cmp.Compare(a.Kid, b.Kid))
	})
	if len(keys) > maxReportKeys {
		keys = keys[:maxReportKeys]
	}
	for {
		b, err := json.Marshal(usageReport{V: reportVersion, Keys: keys})
		if err != nil || len(b) <= maxReportBytes || len(keys) == 0 {
			return b, err
		}
		keys = keys[:len(keys)*3/4]
	}
}

// minutes returns the counts of minutes cur, cur-1, ... cur-59, without
// trailing zeros.
func (u *keyUse) minutes(cur int64) []uint64 {
	var out []uint64
	for i := range u.ring {
		v := u.ring[i].Load()
		m := int64(v >> 32)
		age := (cur & 0xffffffff) - m
		if age < 0 || age >= 60 {
			continue
		}
		if int(age) >= len(out) {
			out = append(out, make([]uint64, int(age)+1-len(out))...)
		}
		out[age] += v & 0xffffffff
	}
	return out
}

// ClusterUsage is Usage with the other nodes' use added: their latest
// reports, read through UsagePeers (nil: this process alone). A report
// that does not decode is skipped; an error reading them answers this
// node's own use.
func (m *Keysets) ClusterUsage(ctx context.Context, name string) ([]KeyUsage, error) {
	out, err := m.Usage(ctx, name)
	if err != nil || m.UsagePeers == nil {
		return out, err
	}
	reports, err := m.UsagePeers(ctx)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			log := m.Log
			if log == nil {
				log = slog.Default()
			}
			log.Warn("per-key use of the other nodes cannot be read: this node's alone is shown", "keyset", name, "err", err)
		}
		return out, nil
	}
	idx := make(map[string]int, len(out))
	for i, u := range out {
		idx[u.Kid] = i
	}
	cur := m.now().Unix() / 60
	for _, raw := range reports {
		var r usageReport
		if json.Unmarshal(raw, &r) != nil || r.V != reportVersion {
			continue
		}
		for _, k := range r.Keys {
			i, ok := idx[k.Kid]
			if k.Keyset != name || !ok {
				continue // a key no longer published here verifies nothing here
			}
			u := &out[i]
			u.Verified += k.Total
			for j, c := range k.Counts[:min(len(k.Counts), 60)] {
				if age := cur - (k.Minute - int64(j)); age >= 0 && age < 60 {
					u.LastHour += c
				}
			}
			if k.Last > 0 {
				if t := time.Unix(k.Last, 0).UTC(); t.After(u.LastVerified) {
					u.LastVerified = t
				}
			}
		}
	}
	return out, nil
}
