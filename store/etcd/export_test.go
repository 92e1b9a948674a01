package etcd

import "time"

// SetMinExpiry shortens the lease of records written already due, so an
// expiry test need not wait 10 s.
func SetMinExpiry(s *Store, d time.Duration) { s.minExpiry = d }
