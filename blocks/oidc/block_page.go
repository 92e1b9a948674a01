package oidc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/a-h/templ"

	"github.com/flowd/flowd/engine"
)

func pageSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.page", Title: "Provider page", Category: Category,
		Description: "Renders one of the provider's HTML pages into msg.payload: \"error\" shows " +
			"msg.oauth_error (for requests that must not be redirected: unknown client, unregistered " +
			"redirect URI, expired sign-in); \"logged_out\" confirms a logout; \"logout_confirm\" asks " +
			"whether to sign out (msg.logout from oidc.end_session); \"logout_cancelled\" says the " +
			"person is still signed in. Answer with content type text/html and a Content-Security-Policy.",
		Fields: []engine.Field{
			{Name: "page", Label: "Page", Kind: engine.KindEnum, Default: "error",
				Enum: []string{"error", "logged_out", "logout_confirm", "logout_cancelled"},
				Help: "Which page to render (see the description)."},
		},
		Outputs: []string{"out"},
	}
}

type pageBlock struct{ page string }

var _ engine.Block = (*pageBlock)(nil)

func newPageFromConfig(s *engine.Setup, _ *provider) (engine.Block, error) {
	return &pageBlock{page: s.Config.String("page")}, nil
}

func (b *pageBlock) Process(ctx context.Context, _ *engine.Exec, msg engine.Msg) (string, error) {
	var c templ.Component
	switch b.page {
	case "error":
		e := mapOf(msg["oauth_error"])
		v := messageView{Title: "Cannot continue", Message: stringField(e, "error_description"), Code: stringField(e, "error")}
		if v.Message == "" {
			v.Message = "The request could not be handled."
		}
		c = messagePage(v)
	case "logout_confirm":
		l := mapOf(msg["logout"])
		v := logoutView{Action: stringField(l, "action"), CSRF: stringField(l, "csrf"), Username: stringField(l, "username"), ClientName: stringField(l, "client_name")}
		if !looksLikeSecret(v.CSRF) || !isLocalPath(v.Action) {
			return "", fmtErr("oidc.page", errors.New("logout_confirm needs msg.logout from oidc.end_session's confirm port"))
		}
		c = logoutPage(v)
	case "logout_cancelled":
		c = messagePage(messageView{Title: "Still signed in", Message: "You have not been signed out. You can close this window."})
	default:
		c = messagePage(messageView{Title: "Signed out", Message: "You are signed out. You can close this window."})
	}
	return renderPage(ctx, msg, "oidc.page", c)
}

// renderPage renders one of the provider's pages into msg.payload; the
// message leaves by "out".
func renderPage(ctx context.Context, msg engine.Msg, block string, c templ.Component) (string, error) {
	var buf bytes.Buffer
	if err := c.Render(ctx, &buf); err != nil {
		return "", fmtErr(block, err)
	}
	msg["payload"] = buf.String()
	return "out", nil
}

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
