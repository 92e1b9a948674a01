package store

import (
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// secretReady rejects secret operations up front when there is no key, so
// the user learns about the missing configuration, not about a failed read.
// List and delete are refused too: one rule is easier to explain than which
// secret operations happen to work without a key.
func (s *Bolt) secretReady() error {
	if s.sealer == nil {
		return ErrNoMasterKey
	}
	return nil
}

// getSecret reads and opens kind/name inside tx; nil, ErrNotFound if absent.
func (s *Bolt) getSecret(tx *bolt.Tx, kind, name string) ([]byte, error) {
	sealed, err := getIn(tx, bucketSecrets, kind, name)
	if err != nil {
		return nil, err
	}
	// The key passed the key check at open, so a failure means the record
	// itself is damaged or was copied here from another name.
	return s.sealer.Open(sealed, kind, name)
}

// GetSecret returns the decrypted value of kind/name, or ErrNotFound.
func (s *Bolt) GetSecret(ctx context.Context, kind, name string) ([]byte, error) {
	var v []byte
	err := s.secretReady()
	if err == nil {
		err = CheckSecret(kind, name)
	}
	if err == nil {
		err = s.view(ctx, func(tx *bolt.Tx) (err error) {
			v, err = s.getSecret(tx, kind, name)
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("store: get secret %s/%s: %w", q(kind), q(name), err)
	}
	return v, nil
}

// UpdateSecret reads, changes and writes kind/name in one transaction. fn
// gets nil when the secret does not exist; returning nil deletes it. An
// error from fn aborts the transaction and is returned as is.
func (s *Bolt) UpdateSecret(ctx context.Context, kind, name string, fn func(old []byte) ([]byte, error)) error {
	err := s.secretReady()
	if err == nil {
		err = CheckSecret(kind, name)
	}
	if err == nil && fn == nil {
		err = fmt.Errorf("nil update function: %w", ErrInvalid)
	}
	var fnErr error
	if err == nil {
		err = s.write(ctx, func(tx *bolt.Tx, c *commit) error {
			old, err := s.getSecret(tx, kind, name)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			val, err := fn(old)
			if err != nil {
				fnErr = err
				return err
			}
			var sealed []byte
			if val != nil {
				sealed = s.sealer.Seal(val, kind, name)
			}
			return applyUpdate(tx, c, KindSecret, bucketSecrets, kind, name, old != nil, sealed)
		})
	}
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("store: update secret %s/%s: %w", q(kind), q(name), err)
	}
	return nil
}

// DeleteSecret removes kind/name; ErrNotFound if it is not there.
func (s *Bolt) DeleteSecret(ctx context.Context, kind, name string) error {
	err := s.secretReady()
	if err == nil {
		err = CheckSecret(kind, name)
	}
	if err == nil {
		err = s.write(ctx, func(tx *bolt.Tx, c *commit) error {
			c.add(Change{Kind: KindSecret, Group: kind, Name: name, Deleted: true})
			return deleteIn(tx, bucketSecrets, kind, name)
		})
	}
	if err != nil {
		return fmt.Errorf("store: delete secret %s/%s: %w", q(kind), q(name), err)
	}
	return nil
}

// ListSecrets returns the names of a kind in byte order; values stay sealed.
func (s *Bolt) ListSecrets(ctx context.Context, kind string) ([]string, error) {
	var names []string
	err := s.secretReady()
	if err == nil {
		err = CheckName("kind", kind, MaxNameLen)
	}
	if err == nil {
		err = s.view(ctx, func(tx *bolt.Tx) (err error) {
			names, err = listIn(tx, bucketSecrets, kind)
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("store: list secrets %s: %w", q(kind), err)
	}
	return names, nil
}
