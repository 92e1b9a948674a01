package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowd/flowd/store/etcd/etcdtest"
)

func newMasterKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func clusterURL(endpoint string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "etcd://" + strings.TrimPrefix(endpoint, "http://") + "/flowd-test/cmd-" + hex.EncodeToString(b[:])
}

// TestServeOnEtcd runs two nodes on one etcd prefix: both serve the same
// signing keys, each keeps its runs in its own data folder, CLI commands
// go through a node's admin API, and a node with another master key
// refuses to start.
func TestServeOnEtcd(t *testing.T) {
	url := clusterURL(etcdtest.Endpoint(t))
	key := newMasterKey()
	vars := map[string]string{"FLOWD_MASTER_KEY": key, "FLOWD_STORE": url}
	d1, d2 := t.TempDir(), t.TempDir()
	n1 := serveWith(t, &cli{getenv: envOf(vars)}, "--data", d1, "--node-id", "node-1")
	if !strings.Contains(n1.out.String(), "this node: node-1") {
		t.Errorf("serve output does not name the node: %s", n1.out)
	}
	// Node 2 reads the same key from a file.
	keyFile := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n2 := serveWith(t, &cli{getenv: envOf(map[string]string{"FLOWD_STORE": url})}, "--data", d2, "--node-id", "node-2", "--master-key-file", keyFile)

	code, jwks1 := n1.get(t, "/.well-known/jwks.json", nil)
	code2, jwks2 := n2.get(t, "/.well-known/jwks.json", nil)
	if code != 200 || code2 != 200 || !strings.Contains(jwks1, `"kid"`) || jwks1 != jwks2 {
		t.Errorf("JWKS: node 1 %d %s, node 2 %d %s; want the same key set", code, jwks1, code2, jwks2)
	}
	for _, d := range []string{d1, d2} {
		if _, err := os.Stat(filepath.Join(d, runsFile)); err != nil {
			t.Errorf("runs file in %s: %v", d, err)
		}
		if _, err := os.Stat(filepath.Join(d, dbFile)); err == nil {
			t.Errorf("%s has a bbolt store next to the cluster store", d)
		}
	}

	// A CLI command reaches the store through node 1's admin API.
	code, out, errs := flowdCmd(t, vars, "flows", "--data", d1)
	if code != 0 || !strings.Contains(out, "jwks") {
		t.Errorf("flows through node 1 = %d %q %q", code, out, errs)
	}

	other := map[string]string{"FLOWD_MASTER_KEY": newMasterKey(), "FLOWD_STORE": url}
	code, _, errs = flowdCmd(t, other, "serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errs, "every node of a cluster needs the same master key") || strings.Contains(errs, other["FLOWD_MASTER_KEY"]) {
		t.Errorf("serve with another master key = %d %q, want a refusal that names the cause", code, errs)
	}
}

// TestClusterFlags checks the store options that are refused before any
// connection is made.
func TestClusterFlags(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	openKeyFile := filepath.Join(dir, "open-key")
	shortKeyFile := filepath.Join(dir, "short-key")
	for path, mode := range map[string]os.FileMode{keyFile: 0o600, openKeyFile: 0o644, shortKeyFile: 0o600} {
		text := newMasterKey()
		if path == shortKeyFile {
			text = "c2hvcnQ="
		}
		if err := os.WriteFile(path, []byte(text+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	key := newMasterKey()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string // in stderr
	}{
		{"bad scheme", map[string]string{"FLOWD_MASTER_KEY": key}, []string{"--store", "http://127.0.0.1:2379/p"}, 2, "want etcd:// or etcds://"},
		{"not a URL", map[string]string{"FLOWD_MASTER_KEY": key}, []string{"--store", "/var/lib/flowd"}, 2, "etcd://host:port/prefix"},
		{"missing host", map[string]string{"FLOWD_MASTER_KEY": key}, []string{"--store", "etcd:///p"}, 2, "no etcd host"},
		{"bad prefix", map[string]string{"FLOWD_MASTER_KEY": key}, []string{"--store", "etcd://h:2379/a//b"}, 2, "prefix"},
		{"password in the URL", map[string]string{"FLOWD_MASTER_KEY": key}, []string{"--store", "etcd://u:s3cret@h/p"}, 2, "credentials in the URL"},
		{"bad store from the environment", map[string]string{"FLOWD_MASTER_KEY": key, "FLOWD_STORE": "redis://h"}, nil, 2, "scheme"},
		{"no master key", nil, []string{"--store", "etcd://h:2379/p"}, 2, "needs the master key all its nodes share"},
		{"missing key file", nil, []string{"--store", "etcd://h:2379/p", "--master-key-file", filepath.Join(dir, "nope")}, 1, "does not exist"},
		{"key file open to others", nil, []string{"--store", "etcd://h:2379/p", "--master-key-file", openKeyFile}, 1, "chmod 600"},
		{"short key file", nil, []string{"--store", "etcd://h:2379/p", "--master-key-file", shortKeyFile}, 1, "want 32"},
		{"bad master key", map[string]string{"FLOWD_MASTER_KEY": "not a key"}, []string{"--store", "etcd://h:2379/p"}, 1, "FLOWD_MASTER_KEY"},
		{"user without password", map[string]string{"FLOWD_MASTER_KEY": key}, []string{"--store", "etcd://h:2379/p", "--etcd-user", "flowd"}, 2, "needs a password"},
		{"password without user", map[string]string{"FLOWD_MASTER_KEY": key, "FLOWD_ETCD_PASSWORD": "pw"}, []string{"--store", "etcd://h:2379/p"}, 2, "needs --etcd-user"},
		{"bad node id", nil, []string{"--store", "etcd://h:2379/p", "--master-key-file", keyFile, "--node-id", "a\x00b"}, 2, "--node-id"},
		{"node addr without scheme", nil, []string{"--store", "etcd://h:2379/p", "--master-key-file", keyFile, "--node-addr", "10.0.0.5:8080"}, 2, "--node-addr"},
		{"node addr with a path", nil, []string{"--store", "etcd://h:2379/p", "--master-key-file", keyFile, "--node-addr", "http://10.0.0.5:8080/admin"}, 2, "--node-addr"},
		{"node addr with credentials", map[string]string{"FLOWD_NODE_ADDR": "http://u:s3cret@10.0.0.5"}, []string{"--store", "etcd://h:2379/p", "--master-key-file", keyFile}, 2, "http(s) URL of this node"},
		{"cert without key", map[string]string{"FLOWD_MASTER_KEY": key}, []string{"--store", "etcd://h:2379/p", "--etcd-cert", keyFile}, 1, "needs its key"},
	}
	// CLI commands on a cluster store need a running node.
	code, _, errs := flowdCmd(t, map[string]string{"FLOWD_STORE": "etcd://h:2379/p"}, "flows", "--data", t.TempDir())
	if code != 1 || !strings.Contains(errs, "go through a running node's admin API") {
		t.Errorf("flows on a cluster store without a node = %d %q", code, errs)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0"}, tt.args...)
			code, _, errs := flowdCmd(t, tt.env, args...)
			if code != tt.code || !strings.Contains(errs, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d naming %q", code, errs, tt.code, tt.want)
			}
			for _, secret := range []string{"s3cret", key} {
				if strings.Contains(errs, secret) {
					t.Errorf("stderr shows a secret: %q", errs)
				}
			}
		})
	}
}

// TestServeOnEtcdTLS: the TLS options reach etcd (mutual TLS).
func TestServeOnEtcdTLS(t *testing.T) {
	srv, tf := etcdtest.StartTLS(t)
	url := "etcds://" + strings.TrimPrefix(srv.Endpoint, "https://") + "/tls"
	vars := map[string]string{"FLOWD_MASTER_KEY": newMasterKey(), "FLOWD_ETCD_CA": tf.CA}
	n := serveWith(t, &cli{getenv: envOf(vars)}, "--data", t.TempDir(), "--store", url, "--etcd-cert", tf.Cert, "--etcd-key", tf.Key)
	if code, body := n.get(t, "/.well-known/jwks.json", nil); code != 200 || !strings.Contains(body, `"kid"`) {
		t.Errorf("JWKS over a TLS store = %d %s", code, body)
	}
}
