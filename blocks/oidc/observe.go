package oidc

import (
	"context"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
)

// observed makes the blocks with events count them through the engine's
// observer when it is an oauth.Observer: sign-ins by result, and the
// authorization_code and refresh_token grants by outcome. Counters are
// resolved here, at deploy.
func observed(typ string, s *engine.Setup, b engine.Block, err error) (engine.Block, error) {
	o, ok := oauth.ObserverOf(s)
	if err != nil || !ok {
		return b, err
	}
	var counters map[string]engine.Counter
	switch typ {
	case "oidc.login":
		counters = oauth.PortCounters([]string{"ok", "failed", "throttled", "invalid"}, func(p string) engine.Counter {
			return o.SignIn(s.FlowID, s.NodeID, p)
		})
	case "oidc.code_exchange":
		counters = oauth.PortCounters([]string{"ok", "invalid"}, func(p string) engine.Counter {
			return o.Grant(s.FlowID, s.NodeID, oauth.GrantAuthorizationCode, p)
		})
	case "oidc.refresh":
		counters = oauth.PortCounters([]string{"ok", "invalid"}, func(p string) engine.Counter {
			return o.Grant(s.FlowID, s.NodeID, oauth.GrantRefreshToken, p)
		})
	}
	return oauth.CountPorts(b, counters), nil
}

// actingNode names the node as the actor of the changes it reports
// (Users.OnSessionsEnded, the audit log), as jose's key-changing blocks
// do: "flow <flow>/<node>".
func actingNode(ctx context.Context, x *engine.Exec) context.Context {
	if x == nil || x.FlowID == "" {
		return ctx
	}
	return engine.WithActor(ctx, "flow "+x.FlowID+"/"+x.NodeID)
}
