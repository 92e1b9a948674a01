package jose

import (
	"strconv"

	"github.com/flowd/flowd/engine"
)

// cacheFields are the verified-token cache fields of a validating block.
//
// The default, 4096 tokens within 8 MiB: a token seen again is answered in
// a few microseconds instead of a signature verification (about 200 µs for
// RSA-3072, 60 µs for ES256 on this project's machines). Real clients send
// the same access token many times during its life, so a node's working
// set is the number of clients active within a token lifetime; 4096 holds
// that for most deployments, at about 1 KiB per typical access token
// (4 MiB), well inside the 64 MiB a validating node is meant to need. The
// byte bound takes over for large tokens.
func cacheFields() []engine.Field {
	return []engine.Field{
		{Name: "cache", Label: "Verified-token cache (tokens)", Kind: engine.KindInt,
			Default: DefaultCacheEntries, Min: "0", Max: strconv.Itoa(MaxCacheEntries),
			Help: "How many verified tokens to remember (by SHA-256 of the token), so a token seen " +
				"again skips the signature check. exp, nbf, iat, max_age, the key (revoked, retired " +
				"or rotated away: the entry ends at once) and the whole policy are checked on every " +
				"use. 0 turns the cache off."},
		{Name: "cache_bytes", Label: "Verified-token cache (bytes)", Kind: engine.KindInt,
			Default: DefaultCacheBytes, Min: "65536", Max: strconv.Itoa(MaxCacheBytes),
			Help: "Bound on the cache's estimated memory; the least recently used tokens go first."},
	}
}

// enableCache gives the policy's Validator its own cache from the block's
// cache fields (a redeploy builds a new block, so a new, empty cache).
func (p *tokenPolicy) enableCache(s *engine.Setup) error {
	v, err := p.v.withCache(CacheOptions{Entries: int(s.Config.Int("cache")), Bytes: s.Config.Int("cache_bytes")})
	if err != nil {
		return s.Errorf("cache", "%v", err)
	}
	p.v = v
	return nil
}
