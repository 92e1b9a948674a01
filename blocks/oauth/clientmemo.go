package oauth

import (
	"bytes"
	"slices"
	"sync"
)

// decodedClients remembers the last decoded record of each client id,
// with the stored bytes it came from. Get still reads the store on every
// call (so a change on any node is seen at once); only when the bytes are
// the ones decoded last time is the JSON decoding skipped. The token
// endpoint reads its client on every request, and the decoding was most
// of that read (docs/benchmarks.md). It holds one entry per registered
// client that was read; a missing client's entry is dropped.
type decodedClients struct {
	mu sync.RWMutex
	m  map[string]decodedClient
}

type decodedClient struct {
	raw []byte
	cl  Client
}

// get returns a copy of the client decoded from exactly raw, if any.
func (d *decodedClients) get(id string, raw []byte) (Client, bool) {
	d.mu.RLock()
	e, ok := d.m[id]
	d.mu.RUnlock()
	if !ok || !bytes.Equal(e.raw, raw) {
		return Client{}, false
	}
	return e.cl.clone(), true
}

func (d *decodedClients) put(id string, raw []byte, cl Client) {
	d.mu.Lock()
	if d.m == nil {
		d.m = map[string]decodedClient{}
	}
	d.m[id] = decodedClient{raw: bytes.Clone(raw), cl: cl.clone()}
	d.mu.Unlock()
}

func (d *decodedClients) forget(id string) {
	d.mu.Lock()
	delete(d.m, id)
	d.mu.Unlock()
}

// clone copies the slices, so a caller's edit reaches neither the memo nor
// another caller.
func (c Client) clone() Client {
	c.Scopes = slices.Clone(c.Scopes)
	c.Audiences = slices.Clone(c.Audiences)
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	return c
}
