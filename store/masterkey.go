package store

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// MasterKeyEnv is the environment variable that holds the master key.
const MasterKeyEnv = "FLOWD_MASTER_KEY"

// MasterKeyFile is the key file's name inside the data directory.
const MasterKeyFile = "master.key"

// LoadMasterKey returns the 32-byte master key for secrets: from
// FLOWD_MASTER_KEY when set (base64, standard or URL alphabet, padded or
// not, or 64 hex characters), else from dir/master.key, which is created
// with a fresh random key when missing (created is then true, so the caller
// can tell the user to back it up). getenv nil means os.Getenv.
//
// Errors never contain key material.
func LoadMasterKey(dir string, getenv func(string) string) (key []byte, created bool, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv(MasterKeyEnv); v != "" {
		key, err := parseMasterKey(v)
		if err != nil {
			return nil, false, fmt.Errorf("store: %s: %w", MasterKeyEnv, err)
		}
		return key, false, nil
	}
	path := filepath.Join(dir, MasterKeyFile)
	key, err = readKeyFile(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	return createKeyFile(dir, path)
}

// parseMasterKey decodes a key written by a person or a secrets manager.
// Hex is tried first: 64 hex characters are also valid base64, but would
// decode to 48 bytes and be refused.
func parseMasterKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 64 {
		if key, err := hex.DecodeString(s); err == nil {
			return key, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		key, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(key) != 32 {
			return nil, fmt.Errorf("decodes to %d bytes, want 32 (generate one with: openssl rand -base64 32): %w", len(key), ErrInvalid)
		}
		return key, nil
	}
	return nil, fmt.Errorf("is neither base64 nor 64 hex characters (generate one with: openssl rand -base64 32): %w", ErrInvalid)
}

func readKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		// Wrapped with %w so LoadMasterKey can tell "missing" apart.
		return nil, fmt.Errorf("store: master key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("store: master key file %s is not a regular file: %w", path, ErrInvalid)
	}
	// Windows reports 0666 for any writable file; its ACLs are not modes.
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("store: master key file %s has mode %04o, open to group or others: run chmod 600 %s: %w", path, perm, path, ErrInvalid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("store: master key file: %w", err)
	}
	key, err := parseMasterKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("store: master key file %s: %w", path, err)
	}
	return key, nil
}

// createKeyFile writes a new key to a temporary file and links it into
// place. link(2) fails if the name exists, so of two flowd processes
// starting at once exactly one key wins, and nobody ever reads a file that
// is still being written; the loser reads the winner's key.
func createKeyFile(dir, path string) ([]byte, bool, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("store: generate master key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("store: create master key file: %w", err)
	}
	text := base64.StdEncoding.EncodeToString(key) + "\n"

	// CreateTemp uses O_EXCL and mode 0600.
	tmp, err := os.CreateTemp(dir, ".master.key.*")
	if err != nil {
		return nil, false, fmt.Errorf("store: create master key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(text)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: write master key file: %w", err)
	}

	switch err := os.Link(tmp.Name(), path); {
	case err == nil:
	case errors.Is(err, fs.ErrExist):
		key, err := readKeyFile(path)
		return key, false, err
	default:
		// Some filesystems refuse hard links; O_EXCL still guarantees a
		// single winner, only without the complete-file guarantee.
		if err := writeExclusive(path, text); err != nil {
			if errors.Is(err, fs.ErrExist) {
				key, err := readKeyFile(path)
				return key, false, err
			}
			return nil, false, fmt.Errorf("store: write master key file: %w", err)
		}
	}
	syncDir(dir)
	return key, true, nil
}

func writeExclusive(path, text string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes the new directory entry durable, so a crash right after
// first start cannot lose the key that the database was sealed with. Best
// effort: not every platform can sync a directory.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
