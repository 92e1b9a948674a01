package store

import (
	"context"
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

// GetSecret returns the decrypted value of kind/name, or ErrNotFound.
func (s *Bolt) GetSecret(ctx context.Context, kind, name string) ([]byte, error) {
	var v []byte
	err := s.secretReady()
	if err == nil {
		err = CheckSecret(kind, name)
	}
	if err == nil {
		err = s.view(ctx, func(tx *bolt.Tx) (err error) {
			v, err = s.getRecord(tx, bucketSecrets, kind, name, true)
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
	if err == nil {
		var fnErr error
		if fnErr, err = s.updateRecord(ctx, secretRecords, kind, name, fn); fnErr != nil {
			return fnErr
		}
	}
	if err != nil {
		return fmt.Errorf("store: update secret %s/%s: %w", q(kind), q(name), err)
	}
	return nil
}

// DeleteSecret removes kind/name; ErrNotFound if it is not there.
func (s *Bolt) DeleteSecret(ctx context.Context, kind, name string) error {
	return s.deleteRecord(ctx, secretRecords, kind, name)
}

// ListSecrets returns the names of a kind in byte order; values stay sealed.
func (s *Bolt) ListSecrets(ctx context.Context, kind string) ([]string, error) {
	return s.listRecords(ctx, secretRecords, kind)
}
