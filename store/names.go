package store

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits on names, the same on every backend so that a name one backend
// accepts, all do. They keep keys well under bbolt's 32 KiB and error
// messages readable; NUL is refused because it separates kind and name in
// the secrets' additional data.
const (
	MaxNameLen = 200  // flow ids, namespaces, secret kinds and names, roles, lock and node names
	MaxKeyLen  = 1024 // KV keys may be hashes or URLs
	MaxNoteLen = 1024 // version notes
)

// CheckName validates a name: not empty, at most max bytes, valid UTF-8,
// no NUL byte. The error names what and wraps ErrInvalid.
func CheckName(what, s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty: %w", what, ErrInvalid)
	case len(s) > max:
		return fmt.Errorf("%s is %d bytes, more than %d: %w", what, len(s), max, ErrInvalid)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%s contains a NUL byte: %w", what, ErrInvalid)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not valid UTF-8: %w", what, ErrInvalid)
	}
	return nil
}

// CheckFlowID validates a flow id.
func CheckFlowID(id string) error { return CheckName("flow id", id, MaxNameLen) }

// CheckKV validates a KV namespace and key.
func CheckKV(ns, key string) error {
	if err := CheckName("namespace", ns, MaxNameLen); err != nil {
		return err
	}
	return CheckName("key", key, MaxKeyLen)
}

// MaxUpdateKVs is how many records one UpdateKVs may change: well inside
// etcd's 128 operations per transaction (each record is a compare and a
// write, plus the commit marker).
const MaxUpdateKVs = 16

// CheckKVRefs validates the records of an UpdateKVs: 1 to MaxUpdateKVs,
// each a valid namespace and key, none twice.
func CheckKVRefs(refs []KVRef) error {
	if len(refs) == 0 || len(refs) > MaxUpdateKVs {
		return fmt.Errorf("%d records in one update, want 1 to %d: %w", len(refs), MaxUpdateKVs, ErrInvalid)
	}
	for i, r := range refs {
		if err := CheckKV(r.NS, r.Key); err != nil {
			return err
		}
		for _, o := range refs[:i] {
			if o == r {
				return fmt.Errorf("record %s/%s named twice in one update: %w", q(r.NS), q(r.Key), ErrInvalid)
			}
		}
	}
	return nil
}

// CheckKVResults validates what an UpdateKVs function returned: one value
// per record.
func CheckKVResults(refs []KVRef, vals [][]byte) error {
	if len(vals) != len(refs) {
		return fmt.Errorf("the update function returned %d values for %d records: %w", len(vals), len(refs), ErrInvalid)
	}
	return nil
}

// QuoteKVRefs names the records of an UpdateKVs for an error message.
func QuoteKVRefs(refs []KVRef) string {
	var b strings.Builder
	for i, r := range refs {
		if i == 3 {
			fmt.Fprintf(&b, " and %d more", len(refs)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(q(r.NS) + "/" + q(r.Key))
	}
	return b.String()
}

// SameValue reports whether an update's result leaves a record as it was:
// both absent, or the same bytes.
func SameValue(old, val []byte) bool {
	return (old == nil) == (val == nil) && bytes.Equal(old, val)
}

// CheckSecret validates a secret kind and name.
func CheckSecret(kind, name string) error {
	if err := CheckName("kind", kind, MaxNameLen); err != nil {
		return err
	}
	return CheckName("name", name, MaxNameLen)
}

// CheckNote validates a version note.
func CheckNote(note string) error {
	if len(note) > MaxNoteLen {
		return fmt.Errorf("note is %d bytes, more than %d: %w", len(note), MaxNoteLen, ErrInvalid)
	}
	return nil
}

// CheckRun validates a run record's names.
func CheckRun(r RunRecord) error {
	if err := CheckFlowID(r.Flow); err != nil {
		return err
	}
	return CheckName("run id", r.ID, MaxNameLen)
}

// CheckDeploy validates a DeployRequest the same way on every backend.
func CheckDeploy(r DeployRequest) error {
	if err := CheckFlowID(r.Flow); err != nil {
		return err
	}
	if err := CheckNote(r.Note); err != nil {
		return err
	}
	if r.Doc == nil && r.Version < 0 {
		return fmt.Errorf("version %d: %w", r.Version, ErrInvalid)
	}
	if r.IfGen < AnyRev {
		return fmt.Errorf("generation condition %d: %w", r.IfGen, ErrInvalid)
	}
	return nil
}

// Quote quotes a name for an error message, cut short so that a hostile
// 100 KiB id does not become a 100 KiB log line.
func Quote(s string) string {
	const max = 64
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q...", s[:cut])
}

// q is Quote, short for the many error messages of this package.
func q(s string) string { return Quote(s) }

// Clone copies b; the result is never nil, so an empty record stays
// distinguishable from a missing one.
func Clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}
