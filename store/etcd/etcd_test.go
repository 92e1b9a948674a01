package etcd_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/etcd"
	"github.com/flowd/flowd/store/etcd/etcdtest"
	"github.com/flowd/flowd/store/storetest"
)

func newClient(t testing.TB, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func randomPrefix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "flowd-test/" + hex.EncodeToString(b[:])
}

func randomKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

func open(t testing.TB, cli *clientv3.Client, prefix string, key []byte, opts ...func(*etcd.Options)) *etcd.Store {
	t.Helper()
	o := etcd.Options{Client: cli, Prefix: prefix, MasterKey: key, SessionTTL: 2 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	s, err := etcd.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	endpoint := etcdtest.Endpoint(t)
	cli := newClient(t, endpoint)
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, cli, randomPrefix(), randomKey())
	})
	// Two nodes: two clients (two connections), one prefix, one key.
	cli2 := newClient(t, endpoint)
	storetest.RunNodes(t, func(t *testing.T) (store.Store, store.Store) {
		prefix, key := randomPrefix(), randomKey()
		return open(t, cli, prefix, key), open(t, cli2, prefix, key)
	})
}

func TestMasterKeyMismatch(t *testing.T) {
	cli := newClient(t, etcdtest.Endpoint(t))
	prefix, key := randomPrefix(), randomKey()
	s := open(t, cli, prefix, key)
	ctx := t.Context()
	if err := s.UpdateSecret(ctx, "k", "n", func([]byte) ([]byte, error) { return []byte("v"), nil }); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()

	_, err := etcd.Open(ctx, etcd.Options{Client: cli, Prefix: prefix, MasterKey: randomKey()})
	if !errors.Is(err, store.ErrMasterKey) {
		t.Fatalf("Open with another key: %v, want ErrMasterKey", err)
	}
	if !strings.Contains(err.Error(), "every node") || strings.Contains(err.Error(), hex.EncodeToString(key)) {
		t.Errorf("error does not say every node needs the same key, or shows the key: %v", err)
	}
	// The right key still opens it, and another prefix takes another key.
	s = open(t, cli, prefix, key)
	if v, err := s.GetSecret(ctx, "k", "n"); err != nil || string(v) != "v" {
		t.Errorf("GetSecret with the right key = %q, %v", v, err)
	}
	_ = s.Close()
	other := open(t, cli, randomPrefix(), randomKey())
	_ = other.Close()
}

func TestPrefixesAreSeparate(t *testing.T) {
	cli := newClient(t, etcdtest.Endpoint(t))
	ctx := t.Context()
	a := open(t, cli, randomPrefix(), randomKey())
	defer a.Close()
	b := open(t, cli, randomPrefix(), randomKey())
	defer b.Close()
	if _, err := a.PutFlow(ctx, "f", []byte("{}"), store.AnyRev); err != nil {
		t.Fatal(err)
	}
	if err := a.SetKV(ctx, "ns", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if flows, err := b.ListFlows(ctx); err != nil || len(flows) != 0 {
		t.Errorf("other prefix ListFlows = %d flows, %v", len(flows), err)
	}
	if _, err := b.GetKV(ctx, "ns", "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("other prefix GetKV: %v, want ErrNotFound", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	cli := newClient(t, etcdtest.Endpoint(t))
	tests := []struct {
		name string
		opts etcd.Options
		want error
	}{
		{"no client", etcd.Options{MasterKey: randomKey()}, store.ErrInvalid},
		{"no master key", etcd.Options{Client: cli}, store.ErrNoMasterKey},
		{"short master key", etcd.Options{Client: cli, MasterKey: []byte("short")}, store.ErrInvalid},
		{"bad prefix", etcd.Options{Client: cli, MasterKey: randomKey(), Prefix: "a//b"}, store.ErrInvalid},
		{"session TTL too short", etcd.Options{Client: cli, MasterKey: randomKey(), SessionTTL: time.Second}, store.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := etcd.Open(t.Context(), tt.opts)
			if !errors.Is(err, tt.want) {
				t.Errorf("Open: %v, want %v", err, tt.want)
			}
			if s != nil {
				_ = s.Close()
			}
		})
	}
}

func TestLimits(t *testing.T) {
	cli := newClient(t, etcdtest.Endpoint(t))
	s := open(t, cli, randomPrefix(), randomKey())
	defer s.Close()
	ctx := t.Context()
	big := make([]byte, etcd.MaxValueBytes)
	if err := s.SetKV(ctx, "ns", "big", big); err != nil {
		t.Fatalf("SetKV of MaxValueBytes: %v", err)
	}
	if got, err := s.GetKV(ctx, "ns", "big"); err != nil || len(got) != len(big) {
		t.Errorf("GetKV = %d bytes, %v", len(got), err)
	}
	tooBig := make([]byte, etcd.MaxValueBytes+1)
	checks := []struct {
		name string
		err  error
	}{
		{"SetKV", s.SetKV(ctx, "ns", "k", tooBig)},
		{"CreateKV", s.CreateKV(ctx, "ns", "k2", tooBig)},
		{"UpdateKV", s.UpdateKV(ctx, "ns", "k3", func([]byte) ([]byte, error) { return tooBig, nil })},
		{"UpdateSecret", s.UpdateSecret(ctx, "kind", "n", func([]byte) ([]byte, error) { return big, nil })},
	}
	_, err := s.PutFlow(ctx, "f", tooBig, store.AnyRev)
	checks = append(checks, struct {
		name string
		err  error
	}{"PutFlow", err})
	for _, c := range checks {
		if !errors.Is(c.err, store.ErrInvalid) || !strings.Contains(c.err.Error(), "limit") {
			t.Errorf("%s of a too large value: %v, want ErrInvalid naming the limit", c.name, c.err)
		}
	}
	if l := s.Limits(); l.MaxValueBytes != etcd.MaxValueBytes || l.MaxTxnOps != 128 {
		t.Errorf("Limits = %+v", l)
	}
}

// TestAddVersionNilDoc: a nil document is an empty version, not an
// undeploy (DeployRequest reads a nil Doc as "deploy a stored version").
func TestAddVersionNilDoc(t *testing.T) {
	cli := newClient(t, etcdtest.Endpoint(t))
	s := open(t, cli, randomPrefix(), randomKey())
	defer s.Close()
	ctx := t.Context()
	if _, err := s.PutFlow(ctx, "f", []byte("{}"), store.AnyRev); err != nil {
		t.Fatal(err)
	}
	v, err := s.AddVersion(ctx, "f", nil, "")
	if err != nil || v.N != 1 {
		t.Fatalf("AddVersion(nil) = %d, %v; want version 1", v.N, err)
	}
	rec, err := s.GetFlow(ctx, "f")
	if err != nil || rec.Deployed != 1 || rec.Latest != 1 {
		t.Errorf("after AddVersion(nil): deployed %d, latest %d, %v; want 1, 1", rec.Deployed, rec.Latest, err)
	}
}
