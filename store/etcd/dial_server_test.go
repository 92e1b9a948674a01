package etcd_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/etcd"
	"github.com/flowd/flowd/store/etcd/etcdtest"
)

// openVia dials with cfg and opens the store; the client closes with it.
func openVia(t *testing.T, cfg etcd.ClientConfig) (*etcd.Store, error) {
	t.Helper()
	cli, err := etcd.Dial(cfg)
	if err != nil {
		return nil, err
	}
	s, err := etcd.Open(t.Context(), etcd.Options{Client: cli, OwnClient: true, Prefix: cfg.Prefix, MasterKey: randomKey(), CallTimeout: 2 * time.Second})
	if err != nil {
		_ = cli.Close()
		return nil, err
	}
	return s, nil
}

// TestDialTLS: etcds:// with the CA and a client certificate works; without
// the certificate, or without the CA, the store does not open.
func TestDialTLS(t *testing.T) {
	srv, tf := etcdtest.StartTLS(t)
	target, err := etcd.ParseURL("etcds://" + strings.TrimPrefix(srv.Endpoint, "https://") + "/tls")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  etcd.ClientConfig
		ok   bool
	}{
		{"CA and client certificate", etcd.ClientConfig{Target: target, CAFile: tf.CA, CertFile: tf.Cert, KeyFile: tf.Key}, true},
		{"no client certificate", etcd.ClientConfig{Target: target, CAFile: tf.CA}, false},
		{"server not trusted", etcd.ClientConfig{Target: target, CertFile: tf.Cert, KeyFile: tf.Key}, false},
		{"plain gRPC to a TLS server", etcd.ClientConfig{Target: etcd.Target{Endpoints: target.Endpoints, Prefix: "tls"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := openVia(t, tt.cfg)
			if !tt.ok {
				if err == nil {
					_ = s.Close()
					t.Fatal("Open succeeded")
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			ctx := t.Context()
			if err := s.SetKV(ctx, "ns", "k", []byte("over TLS")); err != nil {
				t.Fatal(err)
			}
			if v, err := s.GetKV(ctx, "ns", "k"); err != nil || string(v) != "over TLS" {
				t.Errorf("GetKV = %q, %v", v, err)
			}
		})
	}
}

// TestDialAuth: with etcd's authentication on, a user whose role covers
// the prefix works there, is refused elsewhere, and a wrong password is
// refused. (Its own server: enabling auth on a shared one would lock the
// other tests out.)
func TestDialAuth(t *testing.T) {
	srv := etcdtest.Start(t)
	admin := newClient(t, srv.Endpoint)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	steps := []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "root-pw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.UserAdd(ctx, "flowd", "flowd-pw"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "flowd"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "flowd", "/mine/", clientv3.GetPrefixRangeEnd("/mine/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := admin.UserGrantRole(ctx, "flowd", "flowd"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("auth set-up step %d: %v", i, err)
		}
	}
	target := func(prefix string) etcd.Target {
		return etcd.Target{Endpoints: []string{strings.TrimPrefix(srv.Endpoint, "http://")}, Prefix: prefix}
	}
	s, err := openVia(t, etcd.ClientConfig{Target: target("mine"), Username: "flowd", Password: "flowd-pw"})
	if err != nil {
		t.Fatalf("Open with the right user: %v", err)
	}
	if err := s.SetKV(ctx, "ns", "k", []byte("v")); err != nil {
		t.Errorf("SetKV with the right user: %v", err)
	}
	if err := s.UpdateKV(ctx, "ns", "k", func([]byte) ([]byte, error) { return []byte("w"), nil }); err != nil {
		t.Errorf("UpdateKV (a marker under the prefix) with the right user: %v", err)
	}
	if l, err := s.Campaign(ctx, "scheduler"); err != nil {
		t.Errorf("Campaign with the right user: %v", err)
	} else {
		_ = l.Resign(ctx)
	}
	_ = s.Close()

	if s, err := openVia(t, etcd.ClientConfig{Target: target("theirs"), Username: "flowd", Password: "flowd-pw"}); err == nil {
		_ = s.Close()
		t.Error("Open of a prefix the user has no permission on succeeded")
	}
	s, err = openVia(t, etcd.ClientConfig{Target: target("mine"), Username: "flowd", Password: "wrong"})
	if err == nil {
		_ = s.Close()
		t.Fatal("Open with a wrong password succeeded")
	}
	t.Logf("wrong password: %v", err)
	if strings.Contains(err.Error(), "wrong") || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("wrong password: %v, want an authentication error that does not show the password", err)
	}
}
