package oauth

// HashSecret returns the argon2id hash (PHC string format) of a secret or
// password, with a fresh random salt. It is slow on purpose (19 MiB, t=2).
func HashSecret(secret string) string { return hashSecret(secret) }

// VerifySecret checks secret against a hash made by HashSecret, in
// constant time. A malformed hash or one with out-of-range parameters is
// false, never a panic.
func VerifySecret(encoded, secret string) bool { return verifySecret(encoded, secret) }
