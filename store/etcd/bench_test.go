package etcd_test

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/flowd/flowd/store/etcd/etcdtest"
)

// Round trips of the store's common calls against one etcd member (not a
// pass/fail test). go test -run='^$' -bench=. ./store/etcd/
func BenchmarkStore(b *testing.B) {
	cli := newClient(b, etcdtest.Endpoint(b))
	s := open(b, cli, randomPrefix(), randomKey())
	defer s.Close()
	ctx := b.Context()
	incr := func(old []byte) ([]byte, error) {
		n, _ := strconv.Atoi(string(old))
		return []byte(strconv.Itoa(n + 1)), nil
	}
	b.Run("GetKV", func(b *testing.B) {
		_ = s.SetKV(ctx, "ns", "k", []byte("v"))
		for b.Loop() {
			if _, err := s.GetKV(ctx, "ns", "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CreateKV", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if err := s.CreateKV(ctx, "codes", strconv.Itoa(i), []byte("v")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("UpdateKV", func(b *testing.B) {
		for b.Loop() {
			if err := s.UpdateKV(ctx, "ns", "counter", incr); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("UpdateKVParallelOwnKeys", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			key := strconv.FormatInt(n.Add(1), 10)
			for pb.Next() {
				if err := s.UpdateKV(ctx, "own", key, incr); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("UpdateKVParallelHotKey", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.UpdateKV(ctx, "hot", "k", incr); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
