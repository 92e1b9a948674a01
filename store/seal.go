package store

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
)

// Sealer seals and opens secret values with the master key: AES-256-GCM
// with a fresh random 96-bit nonce per seal, the value bound to where it is
// stored (its kind and name, NUL-separated, as additional data), and a
// format byte in front. Every backend seals through it, so a sealed record
// means the same wherever it is stored and a record copied under another
// kind or name fails to open.
//
// Sealed format: 0x01 | nonce (12 bytes) | ciphertext | GCM tag (16 bytes).
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer builds a Sealer from a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// newAEAD builds the secret cipher. NewGCMWithRandomNonce draws a fresh
// 12-byte nonce per Seal and prepends it, so two writes of one value never
// share a nonce and callers cannot get nonce handling wrong.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("master key is %d bytes, want 32: %w", len(key), ErrInvalid)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return aead, nil
}

// sealedV1 prefixes every sealed value so a later key-rotation scheme can
// tell formats apart.
const sealedV1 = 1

// additionalData binds a sealed value to where it is stored: a value copied
// under another kind or name fails authentication instead of decrypting.
func additionalData(kind, name string) []byte {
	ad := make([]byte, 0, len(kind)+1+len(name))
	ad = append(ad, kind...)
	ad = append(ad, 0)
	return append(ad, name...)
}

// Seal encrypts plain for kind/name.
func (s *Sealer) Seal(plain []byte, kind, name string) []byte {
	out := []byte{sealedV1}
	return s.aead.Seal(out, nil, plain, additionalData(kind, name))
}

// Open decrypts a value sealed for kind/name. A value sealed for another
// place, with another key, or damaged fails; the error wraps ErrMasterKey
// (the usual cause once the key check passed is a record copied under
// another name). The result is never nil.
func (s *Sealer) Open(sealed []byte, kind, name string) ([]byte, error) {
	if len(sealed) < 1 || sealed[0] != sealedV1 {
		return nil, fmt.Errorf("unknown sealed format: %w", ErrMasterKey)
	}
	plain, err := s.aead.Open(nil, nil, sealed[1:], additionalData(kind, name))
	if err != nil {
		return nil, fmt.Errorf("record does not authenticate under this name: %w", ErrMasterKey)
	}
	if plain == nil {
		plain = []byte{}
	}
	return plain, nil
}

// KeyCheckText is sealed as the key check record (bbolt: meta/key_check,
// kind "meta", name "key_check"). Its content does not matter; only that it
// opens with the key.
var KeyCheckText = []byte("flowd master key check v1")

// Key check placement, shared by every backend so the record is sealed
// identically everywhere.
const (
	KeyCheckKind = "meta"
	KeyCheckName = "key_check"
)

// NewKeyCheck returns the sealed key-check record a new store writes.
func (s *Sealer) NewKeyCheck() []byte { return s.Seal(KeyCheckText, KeyCheckKind, KeyCheckName) }

// CheckKey verifies a stored key-check record: ErrMasterKey when this
// key does not open it. where names the store for the message.
func (s *Sealer) CheckKey(where string, sealed []byte) error {
	if _, err := s.Open(sealed, KeyCheckKind, KeyCheckName); err != nil {
		return &sentinelError{
			msg: fmt.Sprintf("store: %s: the master key is not the one its secrets were written with (check FLOWD_MASTER_KEY or the key file)", where),
			err: ErrMasterKey,
		}
	}
	return nil
}
