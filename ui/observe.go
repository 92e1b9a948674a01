package ui

import (
	"context"
	"time"

	"github.com/flowd/flowd/blocks/jose"
)

// Observer receives the admin UI's security events: a metrics backend or
// the audit log implements it. Calls happen on the request's goroutine and
// must not block. No password, address or session id is passed.
type Observer interface {
	// AdminSignIn reports one admin sign-in attempt by its result:
	// SignInOK, SignInWrongPassword, SignInThrottled or SignInBusy.
	AdminSignIn(result string)
}

// Admin sign-in results.
const (
	SignInOK            = "ok"
	SignInWrongPassword = "wrong_password"
	SignInThrottled     = "throttled"
	SignInBusy          = "busy"
)

// SignInResults lists every AdminSignIn result.
func SignInResults() []string {
	return []string{SignInOK, SignInWrongPassword, SignInThrottled, SignInBusy}
}

func (s *Server) signIn(result string) {
	if s.d.Observer != nil {
		s.d.Observer.AdminSignIn(result)
	}
}

// NextRotations returns, for every keyset a deployed, unpaused schedule
// rotates, the time of its next rotation (the keysets page's "next
// rotation"). Metrics read it at scrape time and the dashboard shows it.
func (s *Server) NextRotations(ctx context.Context) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if s.d.Keysets == nil || s.d.Scheduler == nil {
		return out, nil
	}
	names, flows, err := s.keysetsAndFlows(ctx)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if p := s.policyFor(flows, name); !p.nextRotation.IsZero() {
			out[name] = p.nextRotation
		}
	}
	return out, nil
}

// keyUsage is the per-key use of a keyset's verification keys by kid;
// empty when it cannot be read (the page then shows zeros).
func (s *Server) keyUsage(ctx context.Context, keyset string) map[string]jose.KeyUsage {
	out := map[string]jose.KeyUsage{}
	usage, err := s.d.Keysets.ClusterUsage(ctx, keyset) // every node's, on a cluster
	if err != nil {
		return out
	}
	for _, u := range usage {
		out[u.Kid] = u
	}
	return out
}
