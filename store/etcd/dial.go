package etcd

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/flowd/flowd/store"
)

// Target is where a cluster store lives, parsed from a store URL:
//
//	etcd://host1:2379,host2:2379,host3:2379/prefix   plain gRPC
//	etcds://host1:2379/prefix                        TLS
//
// A missing port is 2379; a missing prefix is DefaultPrefix. Credentials
// never go in the URL (it ends up in process lists and logs).
type Target struct {
	Endpoints []string // host:port
	TLS       bool
	Prefix    string
}

// ErrURL marks a store URL that does not parse; it wraps store.ErrInvalid.
var ErrURL = fmt.Errorf("bad store URL: %w", store.ErrInvalid)

// ParseURL parses an etcd:// or etcds:// store URL. Its errors never repeat
// a password that was put in the URL by mistake.
func ParseURL(raw string) (Target, error) {
	fail := func(format string, args ...any) (Target, error) {
		return Target{}, fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrURL)
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return fail("want etcd://host:port/prefix or etcds://host:port/prefix")
	}
	var t Target
	switch strings.ToLower(scheme) {
	case "etcd":
	case "etcds":
		t.TLS = true
	default:
		return fail("scheme %q: want etcd:// or etcds:// (TLS)", scheme)
	}
	hosts, path, _ := strings.Cut(rest, "/")
	if strings.ContainsAny(path, "?#") || strings.ContainsAny(hosts, "?#") {
		return fail("query or fragment in the URL: only etcd://hosts/prefix is understood")
	}
	if strings.Contains(hosts, "@") {
		return fail("credentials in the URL: use --etcd-user and FLOWD_ETCD_PASSWORD or --etcd-password-file")
	}
	if hosts == "" {
		return fail("no etcd host (etcd://host:2379/prefix)")
	}
	for _, h := range strings.Split(hosts, ",") {
		ep, err := endpoint(h)
		if err != nil {
			return fail("%v", err)
		}
		t.Endpoints = append(t.Endpoints, ep)
	}
	path = strings.TrimSuffix(path, "/")
	if path == "" {
		path = DefaultPrefix
	}
	if p, err := url.PathUnescape(path); err != nil || p != path {
		return fail("prefix %q: escapes are not allowed", path)
	}
	if err := checkPrefix(path); err != nil {
		return fail("%v", err)
	}
	t.Prefix = path
	return t, nil
}

func endpoint(h string) (string, error) {
	if h == "" {
		return "", errors.New("empty host in the host list")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port (or a bare IPv6 address in brackets).
		host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), "2379"
	}
	if host == "" || strings.ContainsAny(host, " /\\[]") {
		return "", fmt.Errorf("host %q", h)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("port %q of host %q: want 1-65535", port, host)
	}
	return net.JoinHostPort(host, port), nil
}

// ClientConfig is how to reach and authenticate to etcd.
type ClientConfig struct {
	Target
	CAFile   string // PEM CA bundle to verify the servers (TLS); "" = system roots
	CertFile string // PEM client certificate (mutual TLS), with KeyFile
	KeyFile  string
	Username string
	Password string // never logged
	// DialTimeout bounds the first connection; 0 means 5 s.
	DialTimeout time.Duration
}

// Dial builds an etcd client. It does not wait for a connection: the
// store's first call (Open) finds out, within its deadline.
func Dial(c ClientConfig) (*clientv3.Client, error) {
	if len(c.Endpoints) == 0 {
		return nil, fmt.Errorf("store/etcd: no endpoints: %w", store.ErrInvalid)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, fmt.Errorf("store/etcd: a client certificate needs its key and a key its certificate: %w", store.ErrInvalid)
	}
	if (c.Username == "") != (c.Password == "") {
		return nil, fmt.Errorf("store/etcd: etcd user and password go together: %w", store.ErrInvalid)
	}
	useTLS := c.TLS || c.CAFile != "" || c.CertFile != ""
	scheme := "http://"
	var tlsConf *tls.Config
	if useTLS {
		scheme = "https://"
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("store/etcd: CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("store/etcd: CA file %s holds no PEM certificate: %w", c.CAFile, store.ErrInvalid)
			}
			tlsConf.RootCAs = pool
		}
		if c.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("store/etcd: client certificate: %w", err)
			}
			tlsConf.Certificates = []tls.Certificate{cert}
		}
	}
	eps := make([]string, len(c.Endpoints))
	for i, ep := range c.Endpoints {
		eps[i] = scheme + ep
	}
	dt := c.DialTimeout
	if dt <= 0 {
		dt = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   eps,
		TLS:         tlsConf,
		Username:    c.Username,
		Password:    c.Password,
		DialTimeout: dt,
		// The client retries reads that fail with "unavailable" (no
		// leader, member down), by default up to 100 times 25 ms apart:
		// 2.5 s before a node cut off from the majority hears "no leader".
		// A few retries still move a read to another endpoint.
		MaxUnaryRetries:    5,
		BackoffWaitBetween: 20 * time.Millisecond,
		// Keepalive pings notice a dead connection without a request.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		// flowd reports the store's errors itself; etcd's client logs
		// would repeat them on every retry.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("store/etcd: client: %w", err)
	}
	return cli, nil
}
