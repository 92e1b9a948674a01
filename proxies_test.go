package flowd

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseTrustedProxies(t *testing.T) {
	tests := []struct {
		name, in, want, err string
	}{
		{name: "empty", in: "", want: ""},
		{name: "cidrs and addresses", in: "10.0.0.0/8, 192.0.2.7 ,fd00::/8", want: "10.0.0.0/8,192.0.2.7/32,fd00::/8"},
		{name: "host bits masked", in: "10.1.2.3/8", want: "10.0.0.0/8"},
		{name: "v4-mapped v6", in: "::ffff:192.0.2.7", want: "192.0.2.7/32"},
		{name: "v4-mapped v6 CIDR", in: "::ffff:10.0.0.0/104", want: "10.0.0.0/8"},
		{name: "too wide v4-mapped CIDR", in: "::ffff:0.0.0.0/80", err: "covers more than the IPv4-mapped range"},
		{name: "trailing comma", in: "10.0.0.1,", want: "10.0.0.1/32"},
		{name: "host name", in: "lb.example.com", err: `"lb.example.com" is not an address or CIDR`},
		{name: "bad prefix", in: "10.0.0.0/33", err: `"10.0.0.0/33" is not an address or CIDR`},
		{name: "port", in: "10.0.0.1:80", err: `"10.0.0.1:80" is not an address or CIDR`},
		{name: "zone", in: "fe80::1%eth0", err: "has a zone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tp, err := ParseTrustedProxies(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || tp.String() != tc.want {
				t.Fatalf("= %q, %v; want %q", tp.String(), err, tc.want)
			}
		})
	}
}

// TestClientAddr: X-Forwarded-For is believed only from a trusted peer,
// and then only up to the right-most untrusted hop: what a client writes
// into the header itself never becomes its address.
func TestClientAddr(t *testing.T) {
	tp, err := ParseTrustedProxies("10.0.0.0/8, 2001:db8:ffff::/48")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		peer   string
		xff    []string // header values, in order
		want   string
		remote string // what a handler behind wrap sees as RemoteAddr
	}{
		{name: "direct client, no header", peer: "198.51.100.7:5555", want: "198.51.100.7", remote: "198.51.100.7:5555"},
		{name: "direct client spoofs the header", peer: "198.51.100.7:5555", xff: []string{"203.0.113.1"},
			want: "198.51.100.7", remote: "198.51.100.7:5555"},
		{name: "through the balancer", peer: "10.0.0.2:4000", xff: []string{"203.0.113.9"},
			want: "203.0.113.9", remote: "203.0.113.9"},
		{name: "client prepends a forged hop", peer: "10.0.0.2:4000", xff: []string{"1.2.3.4, 203.0.113.9"},
			want: "203.0.113.9", remote: "203.0.113.9"},
		{name: "client forges a trusted hop", peer: "10.0.0.2:4000", xff: []string{"10.9.9.9, 203.0.113.9"},
			want: "203.0.113.9", remote: "203.0.113.9"},
		{name: "two trusted proxies", peer: "10.0.0.2:4000", xff: []string{"203.0.113.9, 10.0.0.5"},
			want: "203.0.113.9", remote: "203.0.113.9"},
		{name: "header split over two lines", peer: "10.0.0.2:4000", xff: []string{"1.2.3.4", "203.0.113.9, 10.0.0.5"},
			want: "203.0.113.9", remote: "203.0.113.9"},
		{name: "only trusted hops", peer: "10.0.0.2:4000", xff: []string{"10.0.0.8, 10.0.0.5"},
			want: "10.0.0.8", remote: "10.0.0.8"},
		{name: "trusted peer without header", peer: "10.0.0.2:4000", want: "10.0.0.2", remote: "10.0.0.2"},
		{name: "garbage right of the client: the trusted hop", peer: "10.0.0.2:4000", xff: []string{"203.0.113.9, <script>"},
			want: "10.0.0.2", remote: "10.0.0.2"},
		{name: "garbage left of the client is not read", peer: "10.0.0.2:4000", xff: []string{"not-an-ip, 203.0.113.9"},
			want: "203.0.113.9", remote: "203.0.113.9"},
		{name: "empty entries", peer: "10.0.0.2:4000", xff: []string{" , "}, want: "10.0.0.2", remote: "10.0.0.2"},
		{name: "hop with a port", peer: "10.0.0.2:4000", xff: []string{"203.0.113.9:1234"},
			want: "203.0.113.9", remote: "203.0.113.9"},
		{name: "ipv6 client through a v6 proxy", peer: "[2001:db8:ffff::1]:443", xff: []string{"[2001:db8:1::7]:999"},
			want: "2001:db8:1::7", remote: "2001:db8:1::7"},
		{name: "v4-mapped peer is the same proxy", peer: "[::ffff:10.0.0.2]:4000", xff: []string{"203.0.113.9"},
			want: "203.0.113.9", remote: "203.0.113.9"},
		{name: "zone in a hop is not an address", peer: "10.0.0.2:4000", xff: []string{"fe80::1%eth0"},
			want: "10.0.0.2", remote: "10.0.0.2"},
		{name: "a flood of hops: only the right-most are read", peer: "10.0.0.2:4000",
			xff:  []string{strings.Repeat("10.0.0.1, ", 100000) + "203.0.113.9"},
			want: "203.0.113.9", remote: "203.0.113.9"},
		{name: "peer not an address", peer: "@unix", xff: []string{"203.0.113.9"}, want: "@unix", remote: "@unix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tp.ClientAddr(r); got != tc.want {
				t.Errorf("ClientAddr = %q, want %q", got, tc.want)
			}
			var seen string
			tp.wrap(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r.RemoteAddr })).
				ServeHTTP(httptest.NewRecorder(), r)
			if seen != tc.remote {
				t.Errorf("handler saw RemoteAddr %q, want %q", seen, tc.remote)
			}
			if r.RemoteAddr != tc.peer {
				t.Errorf("the caller's request was changed: %q", r.RemoteAddr)
			}
		})
	}
	t.Run("no proxies trusted: the header is ignored", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.0.0.2:4000"
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		if got := (TrustedProxies{}).ClientAddr(r); got != "10.0.0.2" {
			t.Errorf("ClientAddr = %q", got)
		}
	})
}

// TestLimitListenerTrustedProxy: a trusted proxy's connections are not
// held to the per-address limit (they carry many clients); others are.
func TestLimitListenerTrustedProxy(t *testing.T) {
	tp, _ := ParseTrustedProxies("127.0.0.1")
	for _, tc := range []struct {
		name    string
		trusted TrustedProxies
		want    int // connections accepted of 3, PerAddr 1
	}{
		{"untrusted peer", TrustedProxies{}, 1},
		{"trusted peer", tp, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			l := LimitListener(ln, ConnLimits{PerAddr: 1, Max: 10, Trusted: tc.trusted})
			defer l.Close()
			accepted := make(chan net.Conn, 3)
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					accepted <- c
				}
			}()
			var conns []net.Conn
			for range 3 {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
			}
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			// Refused connections are closed at once; wait until all three
			// were either accepted or refused.
			waitUntil(t, func() bool { return len(accepted)+int(l.Refused()) == 3 })
			if got := len(accepted); got != tc.want {
				t.Errorf("accepted %d of 3 (refused %d), want %d", got, l.Refused(), tc.want)
			}
			for len(accepted) > 0 {
				(<-accepted).Close()
			}
		})
	}
}
