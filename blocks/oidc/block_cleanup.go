package oidc

import (
	"context"
	"encoding/json"
	"time"

	"github.com/flowd/flowd/engine"
)

func cleanupSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.cleanup", Title: "Clean up provider state", Category: Category,
		Description: "Deletes expired login transactions, sessions, codes, grants, refresh tokens and " +
			"login counters. Run it from a schedule (the authorize flow does, hourly). msg.cleanup " +
			"counts what was deleted per kind.",
		Outputs: []string{"out"},
	}
}

type cleanupBlock struct{ p *provider }

var _ engine.Block = (*cleanupBlock)(nil)

func newCleanupFromConfig(_ *engine.Setup, p *provider) (engine.Block, error) {
	return &cleanupBlock{p: p}, nil
}

func (b *cleanupBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	counts, err := cleanup(ctx, b.p.State, x.Now())
	if err != nil {
		return "", fmtErr("oidc.cleanup", err)
	}
	out := make(map[string]any, len(counts))
	for k, v := range counts {
		out[k] = v
	}
	msg["cleanup"] = out
	return "out", nil
}

// cleanup deletes every state record whose purge time has passed. Each
// deletion re-reads the record in its transaction, so a record refreshed
// meanwhile stays.
func cleanup(ctx context.Context, kv KV, now time.Time) (map[string]int, error) {
	type purgeOnly struct {
		Purge int64 `json:"purge"`
	}
	counts := map[string]int{}
	for _, ns := range stateNamespaces {
		keys, err := kv.ListKV(ctx, ns)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if err := ctx.Err(); err != nil {
				return counts, err
			}
			var deleted bool
			err := kv.UpdateKV(ctx, ns, k, func(old []byte) ([]byte, error) {
				var rec purgeOnly
				deleted = false // the function may run again: count after the commit
				if old == nil || json.Unmarshal(old, &rec) != nil || rec.Purge > now.Unix() {
					return old, nil // kept as it is (an unreadable record is left for a person to look at)
				}
				deleted = true
				return nil, nil
			})
			if err != nil {
				return nil, err
			}
			if deleted {
				counts[ns]++
			}
		}
	}
	return counts, nil
}
