package api

import (
	"context"

	"github.com/flowd/flowd/blocks/jose"
)

// keysetWithUsage is a keyset's public description plus, per published
// verification key, the tokens it verified: since each process started,
// in the last hour, and when it last did ("usage"), summed over the live
// nodes of a cluster (jose.Keysets.ClusterUsage: other nodes' figures as
// of their last report, at most seconds old). An operator sees that a
// retired key is no longer used before deleting or revoking it.
type keysetWithUsage struct {
	jose.KeysetInfo
	Usage []jose.KeyUsage `json:"usage"`
}

func (kh *keysetHandlers) withUsage(ctx context.Context, info jose.KeysetInfo) keysetWithUsage {
	u, err := kh.ks.ClusterUsage(ctx, info.Name)
	if err != nil || u == nil {
		u = []jose.KeyUsage{}
	}
	return keysetWithUsage{KeysetInfo: info, Usage: u}
}
