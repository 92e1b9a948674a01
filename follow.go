package flowd

import (
	"context"
	"errors"
	"log/slog"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/schedule"
	"github.com/flowd/flowd/store"
)

// follow makes every process-local cache follow the store's feed, so a
// change made on another node (or by the CLI on the same store) shows
// here within the feed's latency:
//
//	kv     vars/<flow>                 -> the flow's variable snapshot (app.VarsHook)
//	kv     system/admin_token_sha256   -> the admin API token hash (app.Tokens)
//	kv     schedule/<flow>/<node>      -> the schedule's pause and last-fired record
//	secret keyset/<name>               -> the keyset's view: JWKS body and ETag, signers, verify keys
//
// OAuth clients, people (users) and the admin password are read from the
// store on every use, so they have no cache to follow; the verification
// cache of client secrets (passhash.Hasher.VerifyCached) is keyed by the
// stored hash, so a changed or removed secret misses it at once.
func follow(a *app.App, tokens *app.Tokens, keysets *jose.Keysets, sched *schedule.Scheduler, log *slog.Logger) {
	a.OnChange(a.VarsHook())
	a.OnChange(tokens.Hook())
	a.OnChange(app.Hook{Name: "keysets", Match: store.Filter{Kinds: []store.Kind{store.KindSecret}, Group: "keyset"},
		Changed: func(ctx context.Context, c store.Change) {
			if err := keysets.Reload(ctx, c.Name); err != nil && !errors.Is(err, jose.ErrNoKeyset) {
				log.Warn("reloading a keyset", "keyset", c.Name, "err", err)
			}
		},
		Resync: func(ctx context.Context) {
			if err := keysets.ReloadCached(ctx); err != nil {
				log.Warn("reloading keysets", "err", err)
			}
		}})
	a.OnChange(app.Hook{Name: "schedules", Match: store.Filter{Kinds: []store.Kind{store.KindKV}, Group: schedule.Namespace},
		Changed: func(ctx context.Context, c store.Change) {
			if err := sched.Reload(ctx, c.Name); err != nil {
				log.Warn("reloading a schedule", "schedule", c.Name, "err", err)
			}
		},
		Resync: func(ctx context.Context) {
			if err := sched.ReloadAll(ctx); err != nil {
				log.Warn("reloading schedules", "err", err)
			}
		}})
}
