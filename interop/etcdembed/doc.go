// Package etcdembed runs flowd's store conformance suite (store/storetest)
// on store/etcd against an embedded, current etcd server
// (go.etcd.io/etcd/server/v3/embed). It is a separate module so that
// flowd's own go.mod does not carry etcd's server and its dependencies;
// CI runs it next to the suite against Debian's etcd-server 3.4.
package etcdembed
