package app

import "context"

// PeerToken mints a node token of a's cluster for node to read flow's runs.
func PeerToken(ctx context.Context, a *App, node, flow string) (string, error) {
	return a.peerToken(ctx, node, flow)
}
