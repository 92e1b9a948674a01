package flowd

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// TrustedProxies are the load balancers and reverse proxies in front of
// flowd whose X-Forwarded-For headers it believes. Behind a balancer every
// connection comes from the balancer; without this, sign-in throttles,
// the admin login limiter and the per-address connection limit would treat
// all clients as one.
//
// The client address of a request is:
//
//   - the peer (the TCP address) when the peer is not a trusted proxy:
//     then X-Forwarded-For is whatever the client wrote, and ignored;
//   - else the right-most X-Forwarded-For entry that is not a trusted
//     proxy (each proxy appends the address it got the request from, so
//     entries to the left of the first untrusted one are the client's to
//     forge);
//   - when every entry is a trusted proxy, the left-most one; when an
//     entry is not an address, the trusted hop to its right (the forged
//     or broken part is not believed).
type TrustedProxies struct {
	nets []netip.Prefix
}

// ParseTrustedProxies reads a comma-separated list of CIDRs or single
// addresses ("10.0.0.0/8, 192.0.2.7, fd00::/8"). An empty list trusts
// no one.
func ParseTrustedProxies(s string) (TrustedProxies, error) {
	var tp TrustedProxies
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		var p netip.Prefix
		var err error
		if strings.Contains(f, "/") {
			p, err = netip.ParsePrefix(f)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(f); err == nil {
				if a.Zone() != "" {
					return TrustedProxies{}, fmt.Errorf("trusted proxies: %q has a zone; give the address without it", f)
				}
				p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			}
		}
		if err != nil || !p.IsValid() {
			return TrustedProxies{}, fmt.Errorf("trusted proxies: %q is not an address or CIDR (like 10.0.0.0/8)", f)
		}
		if bits := p.Bits(); p.Addr().Is4In6() {
			if bits < 96 {
				return TrustedProxies{}, fmt.Errorf("trusted proxies: %q covers more than the IPv4-mapped range", f)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), bits-96)
		}
		tp.nets = append(tp.nets, p.Masked())
	}
	return tp, nil
}

// Empty reports whether no proxy is trusted.
func (tp TrustedProxies) Empty() bool { return len(tp.nets) == 0 }

// String is the list as ParseTrustedProxies reads it.
func (tp TrustedProxies) String() string {
	parts := make([]string, len(tp.nets))
	for i, p := range tp.nets {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

// Trusts reports whether a is one of the proxies.
func (tp TrustedProxies) Trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range tp.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// maxForwardedHops bounds the X-Forwarded-For entries looked at: no real
// chain of proxies is longer, and a client cannot make flowd parse more.
const maxForwardedHops = 32

// ClientAddr returns the client's address for r (see TrustedProxies), or
// r.RemoteAddr's host when that is not an address.
func (tp TrustedProxies) ClientAddr(r *http.Request) string {
	peer, ok := parseHop(r.RemoteAddr)
	if !ok {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return r.RemoteAddr
		}
		return host
	}
	if !tp.Trusts(peer) {
		return peer.String()
	}
	hops := forwardedHops(r.Header.Values("X-Forwarded-For"))
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break
		}
		client = a
		if !tp.Trusts(a) {
			break
		}
	}
	return client.String()
}

// forwardedHops splits X-Forwarded-For header values into entries, in
// order, keeping only the right-most maxForwardedHops.
func forwardedHops(values []string) []string {
	var hops []string
	for _, v := range values {
		for _, h := range strings.Split(v, ",") {
			hops = append(hops, strings.TrimSpace(h))
		}
	}
	if len(hops) > maxForwardedHops {
		hops = hops[len(hops)-maxForwardedHops:]
	}
	return hops
}

// parseHop reads "192.0.2.1", "192.0.2.1:443", "2001:db8::1" or
// "[2001:db8::1]:443".
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// wrap makes h see the client address as r.RemoteAddr (a bare address,
// no port) when the peer is a trusted proxy, so every consumer (http.in's
// msg.req.remote_addr, the sign-in throttle's client_ip, the admin login
// limiter) uses it. Requests from other peers pass unchanged.
func (tp TrustedProxies) wrap(h http.Handler) http.Handler {
	if tp.Empty() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if peer, ok := parseHop(r.RemoteAddr); ok && tp.Trusts(peer) {
			r2 := *r
			r2.RemoteAddr = tp.ClientAddr(r)
			r = &r2
		}
		h.ServeHTTP(w, r)
	})
}
