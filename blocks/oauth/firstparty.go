package oauth

import (
	"context"
	"encoding/json"
	"fmt"
)

// SetFirstParty marks a client first-party (the OpenID Provider asks no
// consent for it, except for offline_access) or third-party, and returns
// it as it is now.
func (c *Clients) SetFirstParty(ctx context.Context, id string, firstParty bool) (Client, error) {
	if _, err := c.Get(ctx, id); err != nil {
		return Client{}, err
	}
	var out Client
	err := c.kv.UpdateKV(ctx, nsClients, id, func(old []byte) ([]byte, error) {
		out = Client{} // the function may run again: nothing kept from a first call
		if old == nil {
			return nil, fmt.Errorf("%w: %q", ErrNoClient, id)
		}
		if err := json.Unmarshal(old, &out); err != nil {
			return nil, fmt.Errorf("client %q record: %w", id, err)
		}
		out.FirstParty = firstParty
		return json.Marshal(out)
	})
	if err != nil {
		return Client{}, err
	}
	return out.View(), nil
}
