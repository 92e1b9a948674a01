package flowd

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// ConnLimits bound the connections a listener keeps open. Zero fields are
// unlimited.
type ConnLimits struct {
	// Max is the most connections open at once.
	Max int
	// PerAddr is the most connections open at once from one client
	// address: one IPv4 address, or one IPv6 /64 (the block a single
	// host is usually given). Behind a reverse proxy every connection
	// comes from the proxy: list it in Trusted.
	PerAddr int
	// Trusted proxies are exempt from PerAddr (their connections carry
	// many clients; the client address is known only once a request's
	// X-Forwarded-For is read, and Max still bounds them).
	Trusted TrustedProxies
}

// Default connection limits of `flowd serve`.
const (
	DefaultMaxConns        = 4096
	DefaultMaxConnsPerAddr = 256
)

// LimitListener returns ln with lim enforced: a connection over a limit is
// closed as soon as it is accepted, before anything is read from it or
// allocated for it, so holding many idle or slow connections costs an
// attacker the same as it costs flowd. Serve the result with http.Server
// (directly, or through ServeTLS). Refused reports how many connections
// were closed so.
func LimitListener(ln net.Listener, lim ConnLimits) *LimitedListener {
	return &LimitedListener{Listener: ln, lim: lim, byAddr: map[netip.Prefix]int{}}
}

// LimitedListener is a listener with ConnLimits; see LimitListener.
type LimitedListener struct {
	net.Listener
	lim     ConnLimits
	refused atomic.Int64

	mu     sync.Mutex
	open   int
	byAddr map[netip.Prefix]int
}

// Accept waits for the next connection within the limits.
func (l *LimitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := addrKey(c.RemoteAddr())
		if key.IsValid() && l.lim.Trusted.Trusts(key.Addr()) {
			key = netip.Prefix{} // counted against Max only
		}
		if l.acquire(key) {
			return &limitedConn{Conn: c, release: func() { l.release(key) }}, nil
		}
		l.refused.Add(1)
		_ = c.Close()
	}
}

// Refused is the number of connections closed for being over a limit.
func (l *LimitedListener) Refused() int64 { return l.refused.Load() }

// Open is the number of connections accepted and not yet closed.
func (l *LimitedListener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

func (l *LimitedListener) acquire(key netip.Prefix) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lim.Max > 0 && l.open >= l.lim.Max {
		return false
	}
	if l.lim.PerAddr > 0 && key.IsValid() && l.byAddr[key] >= l.lim.PerAddr {
		return false
	}
	l.open++
	if key.IsValid() {
		l.byAddr[key]++
	}
	return true
}

func (l *LimitedListener) release(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if !key.IsValid() {
		return
	}
	if n := l.byAddr[key] - 1; n > 0 {
		l.byAddr[key] = n
	} else {
		delete(l.byAddr, key)
	}
}

// addrKey is the client address a per-address limit counts: the IPv4
// address, or the /64 of an IPv6 one. Other addresses (a Unix socket)
// yield the zero Prefix and are counted only against Max.
func addrKey(a net.Addr) netip.Prefix {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Prefix{}
	}
	ip := ap.Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// limitedConn gives its slot back once, however often it is closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
