package jose

import (
	"context"
	"errors"
	"maps"
	"slices"
)

// ReloadCached reloads every keyset this manager has cached, for a node
// that fell behind its store's change feed and must assume any of them
// changed. A keyset gone from the store leaves the cache.
func (m *Keysets) ReloadCached(ctx context.Context) error {
	m.mu.RLock()
	names := slices.Collect(maps.Keys(m.entries))
	m.mu.RUnlock()
	var errs []error
	for _, name := range names {
		if err := m.Reload(ctx, name); err != nil && !errors.Is(err, ErrNoKeyset) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Loaded checks that every stored keyset decodes and has its view built:
// what a node needs to sign and publish keys. It returns the first
// failure.
func (m *Keysets) Loaded(ctx context.Context) error {
	names, err := m.List(ctx)
	if err != nil {
		return err
	}
	for _, name := range names {
		if _, err := m.view(ctx, name); err != nil {
			return err
		}
	}
	return nil
}
