package passhash

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters of new hashes: OWASP's minimum recommendation
// (19 MiB, t=2, p=1).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
)

// Limits on the parameters a stored hash may ask for: a hash is data, and
// data must not be able to make one verification cost more than this.
const (
	maxMemory  = 256 * 1024
	maxTime    = 10
	maxThreads = 4
	maxKeyLen  = 64
)

// randomPrefix marks the fast format for generated 256-bit secrets.
const randomPrefix = "$sha256$"

// argonParams is a decoded argon2id PHC string.
type argonParams struct {
	m, t      uint32
	p         uint8
	salt, key []byte
}

// hashArgon computes a new argon2id PHC string. It is the expensive call
// the Hasher bounds.
func hashArgon(secret string) string {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(secret), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return encodeArgon(argonParams{m: argonMemory, t: argonTime, p: argonThreads, salt: salt, key: key})
}

func encodeArgon(a argonParams) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, a.m, a.t, a.p,
		base64.RawStdEncoding.EncodeToString(a.salt), base64.RawStdEncoding.EncodeToString(a.key))
}

// parseArgon decodes an argon2id PHC string; ok is false for anything
// malformed or out of range, never a panic.
func parseArgon(encoded string) (argonParams, bool) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return argonParams{}, false
	}
	var version int
	var a argonParams
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return argonParams{}, false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &a.m, &a.t, &a.p); err != nil ||
		a.m < 8 || a.m > maxMemory || a.t == 0 || a.t > maxTime || a.p == 0 || a.p > maxThreads {
		return argonParams{}, false
	}
	var err1, err2 error
	a.salt, err1 = base64.RawStdEncoding.DecodeString(parts[4])
	a.key, err2 = base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(a.salt) == 0 || len(a.salt) > 64 || len(a.key) == 0 || len(a.key) > maxKeyLen {
		return argonParams{}, false
	}
	return a, true
}

// verifyArgon is the expensive comparison, in constant time.
func verifyArgon(a argonParams, secret string) bool {
	return subtle.ConstantTimeCompare(argonKey(a, secret), a.key) == 1
}

func argonKey(a argonParams, secret string) []byte {
	return argon2.IDKey([]byte(secret), a.salt, a.t, a.m, a.p, uint32(len(a.key)))
}

// HashRandom returns the fast hash of a secret flowd generated itself
// (NewSecret: 256 random bits): "$sha256$" and the base64 SHA-256 digest.
// Nobody can search 2^256 candidates, fast hash or not, so a memory-hard
// hash adds nothing but cost. Never use it for a secret a person chose:
// those get Hash (argon2id).
func HashRandom(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return randomPrefix + base64.RawStdEncoding.EncodeToString(sum[:])
}

// checkRandom compares secret with a HashRandom string in constant time.
// known is false when encoded is not in that format.
func checkRandom(encoded, secret string) (match, known bool) {
	rest, ok := strings.CutPrefix(encoded, randomPrefix)
	if !ok {
		return false, false
	}
	want, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(want) != sha256.Size {
		return false, true
	}
	sum := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(sum[:], want) == 1, true
}

// IsRandom reports whether encoded is a HashRandom string.
func IsRandom(encoded string) bool { return strings.HasPrefix(encoded, randomPrefix) }

// dummy returns a well-formed argon2id hash that no secret matches, with
// today's parameters and a salt derived from seed, so each seed (an
// unknown client id, a username) has its own as real accounts do. Making
// it costs one HMAC, not an argon2id computation: nothing is hashed at
// start-up that nothing asked for.
func (h *Hasher) dummy(seed string) argonParams {
	m := hmac.New(sha256.New, h.key[:])
	m.Write([]byte("flowd dummy hash\x00"))
	m.Write([]byte(seed))
	sum := m.Sum(nil)
	key := make([]byte, argonKeyLen)
	rand.Read(key)
	return argonParams{m: argonMemory, t: argonTime, p: argonThreads, salt: sum[:saltLen], key: key}
}
