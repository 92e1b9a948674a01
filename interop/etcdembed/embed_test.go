package etcdembed

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/etcd"
	"github.com/flowd/flowd/store/storetest"
)

// startEtcd starts a single-member embedded etcd on free loopback ports
// with a temporary data directory and returns its client URL.
func startEtcd(t *testing.T) string {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	// Closing the server logs its listeners' errors; the test reports
	// what matters itself.
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	client, peer := freeURL(t), freeURL(t)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatalf("embedded etcd: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("embedded etcd not ready after 30s")
	}
	return client.String()
}

func freeURL(t *testing.T) url.URL {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("listener address %v is not TCP", l.Addr())
	}
	return url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(addr.Port)}
}

func newClient(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func open(t *testing.T, cli *clientv3.Client, prefix string, key []byte) store.Store {
	t.Helper()
	s, err := etcd.Open(t.Context(), etcd.Options{Client: cli, Prefix: prefix, MasterKey: key, SessionTTL: 2 * time.Second})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformanceEmbedded(t *testing.T) {
	endpoint := startEtcd(t)
	cli, cli2 := newClient(t, endpoint), newClient(t, endpoint)
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, cli, "flowd-test/"+hex.EncodeToString(random(8)), random(32))
	})
	storetest.RunNodes(t, func(t *testing.T) (store.Store, store.Store) {
		prefix, key := "flowd-test/"+hex.EncodeToString(random(8)), random(32)
		return open(t, cli, prefix, key), open(t, cli2, prefix, key)
	})
}
