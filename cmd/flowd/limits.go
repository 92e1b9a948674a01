package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/flowd/flowd"
)

// serveLimits are the bounds `flowd serve` puts on every client: how many
// connections it keeps, how long a request may take to arrive, how long
// an idle connection stays open, how large a flow endpoint's body may be.
type serveLimits struct {
	maxConns, perAddr      int
	readHeader, read, idle time.Duration
	maxBody                int64
	proxiesText            string
	proxies                flowd.TrustedProxies
	envErr                 error // a malformed FLOWD_* value, reported after parsing
}

// Defaults of the serve limits (see the README's "Limits an operator can set").
const (
	defaultReadHeaderTimeout = 5 * time.Second
	defaultReadTimeout       = 15 * time.Second
	defaultIdleTimeout       = 60 * time.Second
	defaultMaxBody           = 1 << 20
	maxMaxBody               = 10 << 20
	writeTimeout             = 60 * time.Second
	maxHeaderBytes           = 64 << 10
)

// bindLimits adds the limit flags to fs, with FLOWD_* variables as their
// defaults.
func (c *cli) bindLimits(fs *flag.FlagSet) *serveLimits {
	l := &serveLimits{}
	envInt := func(name string, def int64) int64 {
		v := c.getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			l.envErr = errors.Join(l.envErr, fmt.Errorf("%s=%q: want a whole number", name, v))
			return def
		}
		return n
	}
	envDur := func(name string, def time.Duration) time.Duration {
		v := c.getenv(name)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			l.envErr = errors.Join(l.envErr, fmt.Errorf("%s=%q: want a duration like 15s", name, v))
			return def
		}
		return d
	}
	fs.IntVar(&l.maxConns, "max-conns", int(envInt("FLOWD_MAX_CONNS", flowd.DefaultMaxConns)),
		"most client connections open at once; 0: no limit")
	fs.IntVar(&l.perAddr, "max-conns-per-addr", int(envInt("FLOWD_MAX_CONNS_PER_ADDR", flowd.DefaultMaxConnsPerAddr)),
		"most connections open at once from one IPv4 address or IPv6 /64; 0: no limit (use behind a reverse proxy)")
	fs.DurationVar(&l.readHeader, "read-header-timeout", envDur("FLOWD_READ_HEADER_TIMEOUT", defaultReadHeaderTimeout),
		"time a client has to send a request's headers")
	fs.DurationVar(&l.read, "read-timeout", envDur("FLOWD_READ_TIMEOUT", defaultReadTimeout),
		"time a client has to send a whole request, body included")
	fs.DurationVar(&l.idle, "idle-timeout", envDur("FLOWD_IDLE_TIMEOUT", defaultIdleTimeout),
		"how long an idle keep-alive connection stays open")
	fs.StringVar(&l.proxiesText, "trusted-proxies", c.getenv("FLOWD_TRUSTED_PROXIES"),
		"load balancers whose X-Forwarded-For names the client, as CIDRs or addresses (\"10.0.0.0/8,192.0.2.7\"); "+
			"their connections are also exempt from --max-conns-per-addr")
	fs.Int64Var(&l.maxBody, "max-body", envInt("FLOWD_MAX_BODY", defaultMaxBody),
		"default body limit of flow endpoints in bytes (an http.in node's max_body overrides it; at most 10 MiB)")
	return l
}

// check reports malformed environment values and out-of-range flags.
func (l *serveLimits) check() error {
	errs := []error{l.envErr}
	if l.maxConns < 0 || l.perAddr < 0 {
		errs = append(errs, errors.New("--max-conns and --max-conns-per-addr must be 0 (no limit) or more"))
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--read-header-timeout", l.readHeader}, {"--read-timeout", l.read}, {"--idle-timeout", l.idle}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be a positive duration, not %s", d.flag, d.v))
		}
	}
	if tp, err := flowd.ParseTrustedProxies(l.proxiesText); err != nil {
		errs = append(errs, fmt.Errorf("--trusted-proxies (FLOWD_TRUSTED_PROXIES): %w", err))
	} else {
		l.proxies = tp
	}
	if l.maxBody < 1 || l.maxBody > maxMaxBody {
		errs = append(errs, fmt.Errorf("--max-body must be between 1 and %d bytes, not %d", maxMaxBody, l.maxBody))
	}
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	return nil
}

// listener wraps ln with the connection limits.
func (l *serveLimits) listener(ln net.Listener) net.Listener {
	return flowd.LimitListener(ln, flowd.ConnLimits{Max: l.maxConns, PerAddr: l.perAddr, Trusted: l.proxies})
}

// server is the http.Server of `flowd serve`, with the limits' timeouts.
// ReadTimeout bounds headers and body of every request (admin API and
// forms included); flow endpoints also set the body deadline themselves
// (for embedders whose server has none). net/http lifts the deadline once
// a body is read to its end, so it does not cut a long run.
func (l *serveLimits) server(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: l.readHeader, ReadTimeout: l.read,
		WriteTimeout: writeTimeout, IdleTimeout: l.idle, MaxHeaderBytes: maxHeaderBytes}
}
