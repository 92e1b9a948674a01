package store

import (
	"context"
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
	return s.readRecord(ctx, secretRecords, kind, name)
}

// UpdateSecret reads, changes and writes kind/name in one transaction. fn
// gets nil when the secret does not exist; returning nil deletes it. An
// error from fn aborts the transaction and is returned as is.
func (s *Bolt) UpdateSecret(ctx context.Context, kind, name string, fn func(old []byte) ([]byte, error)) error {
	return s.updateRecord(ctx, secretRecords, kind, name, fn)
}

// DeleteSecret removes kind/name; ErrNotFound if it is not there.
func (s *Bolt) DeleteSecret(ctx context.Context, kind, name string) error {
	return s.deleteRecord(ctx, secretRecords, kind, name)
}

// ListSecrets returns the names of a kind in byte order; values stay sealed.
func (s *Bolt) ListSecrets(ctx context.Context, kind string) ([]string, error) {
	return s.listRecords(ctx, secretRecords, kind)
}
