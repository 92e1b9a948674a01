package main

// The store a command works on: the data folder's bbolt file (the
// default), or a cluster store on etcd named by --store / FLOWD_STORE:
//
//	flowd serve --store etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379/flowd
//
// On etcd every node needs the same master key (FLOWD_MASTER_KEY or
// --master-key-file; never created on the fly, since a node inventing its
// own would lock itself out of the cluster's secrets), keeps its run
// traces in <data>/runs.db, and registers itself under --node-id. CLI
// commands other than serve go through a running node's admin API.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/etcd"
)

const runsFile = "runs.db"

// clusterFlags are the flags of the store choice.
type clusterFlags struct {
	url           string
	ca, cert, key string
	user          string
	passwordFile  string
	nodeID        string
	nodeAddr      string
	masterKeyFile string
}

func (c *cli) storeFlags(fs *flag.FlagSet) {
	f := &c.cluster
	fs.StringVar(&f.url, "store", c.getenv("FLOWD_STORE"), "cluster store, e.g. etcd://host:2379/prefix (etcds:// for TLS); default: the bbolt file in --data")
	fs.StringVar(&f.ca, "etcd-ca", c.getenv("FLOWD_ETCD_CA"), "PEM CA bundle that signed the etcd servers' certificates (implies TLS)")
	fs.StringVar(&f.cert, "etcd-cert", c.getenv("FLOWD_ETCD_CERT"), "PEM client certificate for etcd (mutual TLS; needs --etcd-key)")
	fs.StringVar(&f.key, "etcd-key", c.getenv("FLOWD_ETCD_KEY"), "PEM private key of --etcd-cert")
	fs.StringVar(&f.user, "etcd-user", c.getenv("FLOWD_ETCD_USER"), "etcd user (password from FLOWD_ETCD_PASSWORD or --etcd-password-file)")
	fs.StringVar(&f.passwordFile, "etcd-password-file", c.getenv("FLOWD_ETCD_PASSWORD_FILE"), "file holding the etcd user's password (first line)")
	fs.StringVar(&f.nodeID, "node-id", c.getenv("FLOWD_NODE_ID"), "this node's name in the cluster (default: host name and a random suffix)")
	fs.StringVar(&f.nodeAddr, "node-addr", c.getenv("FLOWD_NODE_ADDR"), "URL the other cluster nodes reach this node at, for the merged runs view (default: the listen address)")
	fs.StringVar(&f.masterKeyFile, "master-key-file", c.getenv("FLOWD_MASTER_KEY_FILE"), "file holding the master key every cluster node shares (or FLOWD_MASTER_KEY)")
}

// errClusterCLI makes CLI commands use a running node's admin API: the
// cluster store has no local file to open, and opening the shared store
// from a second process would bypass the nodes.
var errClusterCLI = fmt.Errorf("the store is a cluster store (--store): commands go through a running node's admin API: %w", store.ErrLocked)

// servedStore is what serve runs on: the shared store, this node's runs
// store (nil: the shared store keeps runs), and how to close both.
type servedStore struct {
	store.Store
	runs    store.Runs
	cluster *etcd.Store // nil on bbolt
	close   func() error
}

func (s *servedStore) Close() error { return s.close() }

// openServeStore opens the store serve runs on. createdKey reports a new
// key file (bbolt only).
func (c *cli) openServeStore(ctx context.Context) (*servedStore, bool, error) {
	if c.cluster.url == "" {
		st, created, err := c.openStore(true)
		if err != nil {
			return nil, false, err
		}
		return &servedStore{Store: st, runs: st, close: st.Close}, created, nil
	}
	st, err := c.openCluster(ctx)
	return st, false, err
}

func (c *cli) openCluster(ctx context.Context) (*servedStore, error) {
	f := &c.cluster
	target, err := etcd.ParseURL(f.url)
	if err != nil {
		return nil, usageError{fmt.Errorf("--store: %w", err)}
	}
	key, err := c.clusterMasterKey()
	if err != nil {
		return nil, err
	}
	if f.nodeID == "" {
		f.nodeID = defaultNodeID()
	}
	if err := store.CheckName("--node-id", f.nodeID, store.MaxNameLen); err != nil {
		return nil, usageError{err}
	}
	if err := checkNodeAddr(f.nodeAddr); err != nil {
		return nil, usageError{err}
	}
	password := c.getenv("FLOWD_ETCD_PASSWORD")
	if f.passwordFile != "" {
		b, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-password-file: %w", err)
		}
		password, _, _ = strings.Cut(string(b), "\n")
		password = strings.TrimSuffix(password, "\r")
	}
	if (f.user == "") != (password == "") {
		return nil, usageError{errors.New("--etcd-user needs a password (FLOWD_ETCD_PASSWORD or --etcd-password-file), and a password needs --etcd-user")}
	}
	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	// Runs first: its file lock keeps a second node off this data folder
	// before anything touches the cluster.
	runs, err := store.OpenBolt(filepath.Join(c.data, runsFile), store.BoltOptions{})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return nil, fmt.Errorf("%w: is another flowd node using %s?", err, c.data)
		}
		return nil, err
	}
	cli, err := etcd.Dial(etcd.ClientConfig{Target: target, CAFile: f.ca, CertFile: f.cert, KeyFile: f.key, Username: f.user, Password: password})
	if err != nil {
		_ = runs.Close()
		return nil, err
	}
	st, err := etcd.Open(ctx, etcd.Options{Client: cli, OwnClient: true, Prefix: target.Prefix, MasterKey: key})
	if err != nil {
		_ = cli.Close()
		_ = runs.Close()
		if errors.Is(err, store.ErrUnavailable) {
			return nil, fmt.Errorf("cannot reach etcd at %s: %w", strings.Join(target.Endpoints, ","), err)
		}
		return nil, err
	}
	return &servedStore{Store: st, runs: runs, cluster: st, close: func() error {
		err := st.Close()
		if rerr := runs.Close(); err == nil {
			err = rerr
		}
		return err
	}}, nil
}

// clusterMasterKey reads the key every node shares. Unlike bbolt's data
// folder, a cluster node never makes one up.
func (c *cli) clusterMasterKey() ([]byte, error) {
	if v := c.getenv(store.MasterKeyEnv); v != "" {
		key, _, err := store.LoadMasterKey("", c.getenv)
		return key, err
	}
	path := c.cluster.masterKeyFile
	if path == "" {
		return nil, usageError{errors.New("a cluster store needs the master key all its nodes share: set FLOWD_MASTER_KEY or --master-key-file (make one with: openssl rand -base64 32)")}
	}
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("--master-key-file %s does not exist", path)
		}
		return nil, fmt.Errorf("--master-key-file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("--master-key-file %s has mode %04o, open to group or others: run chmod 600 %s", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--master-key-file: %w", err)
	}
	// The file holds what FLOWD_MASTER_KEY would: parse it the same way.
	key, _, err := store.LoadMasterKey("", func(name string) string {
		if name == store.MasterKeyEnv {
			return strings.TrimSpace(string(b))
		}
		return ""
	})
	if err != nil {
		return nil, fmt.Errorf("--master-key-file %s: %w", path, errors.Unwrap(err))
	}
	return key, nil
}

func defaultNodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// registerNode publishes this node (its id and admin address) in the
// cluster's registry; on bbolt there is nobody to tell.
func (c *cli) registerNode(ctx context.Context, st *servedStore, base string) error {
	if st.cluster == nil {
		return nil
	}
	if err := st.cluster.Register(ctx, store.NodeInfo{ID: c.cluster.nodeID, Addr: base, Version: version()}); err != nil {
		return err
	}
	target, _ := etcd.ParseURL(c.cluster.url) // parsed once already
	fmt.Fprintf(c.stdout, "Cluster store: etcd %s, prefix %s; this node: %s (runs in %s)\n",
		strings.Join(target.Endpoints, ","), target.Prefix, c.cluster.nodeID, filepath.Join(c.data, runsFile))
	return nil
}

// checkNodeAddr checks --node-addr: empty, or an http(s) URL with a host
// and nothing after it.
func checkNodeAddr(addr string) error {
	if addr == "" {
		return nil
	}
	u, err := url.Parse(addr)
	if err != nil {
		return errors.New("--node-addr is not a URL: want an http(s) URL of this node, like http://10.0.0.5:8080")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		// Redacted: a password put in the URL by mistake is not echoed.
		return fmt.Errorf("--node-addr %q: want an http(s) URL of this node, like http://10.0.0.5:8080", u.Redacted())
	}
	return nil
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}
