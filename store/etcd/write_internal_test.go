package etcd

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/flowd/flowd/store/etcd/etcdtest"
)

// TestResolve checks how an ambiguous commit is decided: the marker says it
// landed; without it, the comparisons say whether it still can.
func TestResolve(t *testing.T) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdtest.Endpoint(t)}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	key := make([]byte, 32)
	s, err := Open(t.Context(), Options{Client: cli, Prefix: "flowd-test/resolve-" + time.Now().Format("150405.000000000"), MasterKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	k := s.key("kv", "ns", "k")
	absent := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(k), "=", 0)}

	landedMarker := s.newMarker()
	if _, err := cli.Put(ctx, landedMarker, ""); err != nil {
		t.Fatal(err)
	}
	lostMarker := s.newMarker()

	// Before k is written: a missing marker may still land.
	landed, canLand, err := s.resolve(ctx, lostMarker, absent)
	if err != nil || landed || !canLand {
		t.Errorf("marker absent, condition holds: landed %v, canLand %v, %v; want false, true", landed, canLand, err)
	}
	if _, err := cli.Put(ctx, k, "v"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name            string
		marker          string
		landed, canLand bool
	}{
		{"marker present", landedMarker, true, false},
		{"marker absent, condition moved", lostMarker, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			landed, canLand, err := s.resolve(context.Background(), tt.marker, absent)
			if err != nil || landed != tt.landed || canLand != tt.canLand {
				t.Errorf("resolve = %v, %v, %v; want %v, %v", landed, canLand, err, tt.landed, tt.canLand)
			}
		})
	}
}
