package oauth

import (
	"context"

	"github.com/flowd/flowd/engine"
)

// Observer is the event interface of the OAuth and OpenID blocks (this
// package and blocks/oidc). A metrics backend given to the runtime as its
// engine.Observer implements it; a factory resolves one counter per
// output port at deploy (engine.Setup.Observer), and a run bumps the
// counter of the port its node left by. No client id, user or token is a
// label.
type Observer interface {
	// Grant counts a token endpoint's decisions for one grant type:
	// outcome "ok" is a grant that goes on to be signed, "invalid" a
	// refusal (msg.oauth_error says why).
	Grant(flow, node, grantType, outcome string) engine.Counter
	// ClientAuth counts oauth.client_auth results: ok, invalid,
	// throttled, busy.
	ClientAuth(flow, node, result string) engine.Counter
	// SignIn counts oidc.login results: ok, failed, throttled, invalid.
	SignIn(flow, node, result string) engine.Counter
}

// CountPorts wraps b so that every time it leaves by one of the ports of
// counters, that counter counts. It returns b itself when counters is
// empty (no observer). The map is read-only after this call.
func CountPorts(b engine.Block, counters map[string]engine.Counter) engine.Block {
	if len(counters) == 0 {
		return b
	}
	return &portCounted{b: b, byPort: counters}
}

// ObserverOf returns the Setup's observer as an Observer, if it is one.
func ObserverOf(s *engine.Setup) (Observer, bool) {
	o, ok := s.Observer.(Observer)
	return o, ok
}

type portCounted struct {
	b      engine.Block
	byPort map[string]engine.Counter
}

var (
	_ engine.Block  = (*portCounted)(nil)
	_ engine.Closer = (*portCounted)(nil)
)

func (p *portCounted) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	port, err := p.b.Process(ctx, x, msg)
	if err == nil {
		if c := p.byPort[port]; c != nil {
			c.Inc()
		}
	}
	return port, err
}

func (p *portCounted) Close() error {
	if c, ok := p.b.(engine.Closer); ok {
		return c.Close()
	}
	return nil
}

// portCounters resolves one counter per port with fn.
func portCounters(ports []string, fn func(port string) engine.Counter) map[string]engine.Counter {
	m := make(map[string]engine.Counter, len(ports))
	for _, p := range ports {
		m[p] = fn(p)
	}
	return m
}

// PortCounters resolves one counter per port with fn (for blocks/oidc).
func PortCounters(ports []string, fn func(port string) engine.Counter) map[string]engine.Counter {
	return portCounters(ports, fn)
}

// observed wraps a factory of this package so the blocks with events
// count them (see Observer).
func observed(typ string, fac engine.Factory) engine.Factory {
	return func(s *engine.Setup) (engine.Block, error) {
		b, err := fac(s)
		o, ok := ObserverOf(s)
		if err != nil || !ok {
			return b, err
		}
		switch typ {
		case "oauth.client_auth":
			return CountPorts(b, portCounters([]string{"ok", "invalid", "throttled", "busy"}, func(p string) engine.Counter {
				return o.ClientAuth(s.FlowID, s.NodeID, p)
			})), nil
		case "oauth.client_credentials":
			return CountPorts(b, portCounters([]string{"ok", "invalid"}, func(p string) engine.Counter {
				return o.Grant(s.FlowID, s.NodeID, GrantClientCredentials, p)
			})), nil
		}
		return b, nil
	}
}
