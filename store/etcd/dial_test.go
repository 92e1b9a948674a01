package etcd_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/etcd"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		name      string
		url       string
		endpoints []string
		tls       bool
		prefix    string
		wantErr   string // "" = no error; else a word the error names
	}{
		{"one host", "etcd://10.0.0.1:2379/prod", []string{"10.0.0.1:2379"}, false, "prod", ""},
		{"three hosts, TLS", "etcds://a:2379,b:2379,c:2379/team/flowd", []string{"a:2379", "b:2379", "c:2379"}, true, "team/flowd", ""},
		{"default port and prefix", "etcd://localhost", []string{"localhost:2379"}, false, etcd.DefaultPrefix, ""},
		{"trailing slash", "etcd://localhost:23790/flowd/", []string{"localhost:23790"}, false, "flowd", ""},
		{"IPv6", "etcd://[::1]:2379/p", []string{"[::1]:2379"}, false, "p", ""},
		{"upper-case scheme", "ETCD://h:1/p", []string{"h:1"}, false, "p", ""},
		{"bbolt path", "/var/lib/flowd", nil, false, "", "etcd://"},
		{"http scheme", "http://h:2379/p", nil, false, "", "scheme"},
		{"postgres", "postgres://h/db", nil, false, "", "scheme"},
		{"missing host", "etcd:///prefix", nil, false, "", "host"},
		{"empty host in list", "etcd://a:1,,b:2/p", nil, false, "", "host"},
		{"bad port", "etcd://h:99999/p", nil, false, "", "port"},
		{"port not a number", "etcd://h:x/p", nil, false, "", "port"},
		{"double slash in prefix", "etcd://h/a//b", nil, false, "", "prefix"},
		{"dot-dot prefix", "etcd://h/a/../b", nil, false, "", "prefix"},
		{"space in prefix", "etcd://h/a b", nil, false, "", "prefix"},
		{"escaped prefix", "etcd://h/a%2Fb", nil, false, "", "prefix"},
		{"query", "etcd://h/p?x=1", nil, false, "", "query"},
		{"credentials", "etcd://root:hunter2@h/p", nil, false, "", "credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := etcd.ParseURL(tt.url)
			if tt.wantErr != "" {
				if !errors.Is(err, store.ErrInvalid) || !errors.Is(err, etcd.ErrURL) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseURL(%q) error = %v, want ErrURL naming %q", tt.url, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error repeats the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tt.url, err)
			}
			if !slices.Equal(got.Endpoints, tt.endpoints) || got.TLS != tt.tls || got.Prefix != tt.prefix {
				t.Errorf("ParseURL(%q) = %+v, want endpoints %q, TLS %v, prefix %q", tt.url, got, tt.endpoints, tt.tls, tt.prefix)
			}
		})
	}
}

func TestDialRefuses(t *testing.T) {
	target := etcd.Target{Endpoints: []string{"127.0.0.1:1"}}
	tests := []struct {
		name string
		cfg  etcd.ClientConfig
	}{
		{"no endpoints", etcd.ClientConfig{}},
		{"cert without key", etcd.ClientConfig{Target: target, CertFile: "c.pem"}},
		{"user without password", etcd.ClientConfig{Target: target, Username: "flowd"}},
		{"missing CA file", etcd.ClientConfig{Target: target, CAFile: "/nonexistent/ca.pem"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli, err := etcd.Dial(tt.cfg)
			if err == nil {
				_ = cli.Close()
				t.Fatal("Dial succeeded")
			}
		})
	}
}
