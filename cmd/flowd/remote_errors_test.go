package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/blocks/oidc"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/storetest"
	"github.com/flowd/flowd/ui/api"
)

// twoBackends returns the CLI's two ways to the data: the store directly,
// and a server's admin API, each over its own fresh flowd.
func twoBackends(t *testing.T) (local *localBackend, remote *remoteBackend) {
	t.Helper()
	open := func() (*flowd.Flowd, *store.Bolt) {
		st := storetest.TempBolt(t)
		fd, err := flowd.New(flowd.Options{Store: st, AdminToken: "remote-errors-token", HashWait: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := fd.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fd.Close(context.Background()) })
		return fd, st
	}
	fd, st := open()
	local = &localBackend{fd: fd, st: st}
	fd2, _ := open()
	srv := httptest.NewServer(fd2.Handler())
	t.Cleanup(srv.Close)
	remote = &remoteBackend{base: srv.URL + "/admin/api", token: "remote-errors-token", client: srv.Client()}
	return local, remote
}

const badFlow = `{"schema":"flowd/v1","id":"bad","name":"Bad","nodes":[
 {"id":"go","type":"core.manual","x":0,"y":0},
 {"id":"log","type":"core.log","config":{"message":"'hi' +"},"x":200,"y":0}],
 "wires":[{"from":"go","port":"out","to":"log"}]}`

// TestRemoteErrorsAreLocalSentinels: what a command gets back through a
// server's API is the error it gets with the store in hand: the same
// sentinel for errors.Is, and validation problems with node and field.
func TestRemoteErrorsAreLocalSentinels(t *testing.T) {
	local, remote := twoBackends(t)
	ctx := t.Context()
	client := oauth.Client{ID: "svc", Scopes: []string{"read"}}
	for _, b := range []backend{local, remote} {
		if _, _, err := b.AddClient(ctx, client, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		call func(b backend) error
		want error
	}{
		{"invalid flow", func(b backend) error { _, _, err := b.Import(ctx, []byte(badFlow), true); return err }, engine.ErrInvalidFlow},
		{"unknown flow", func(b backend) error { _, err := b.Export(ctx, "nope"); return err }, store.ErrNotFound},
		{"run of a flow not deployed", func(b backend) error {
			if _, _, err := b.Import(ctx, []byte(strings.Replace(badFlow, `'hi' +`, `'hi'`, 1)), false); err != nil {
				return err
			}
			_, err := b.Run(ctx, "bad", "", nil)
			return err
		}, engine.ErrNotDeployed},
		{"unknown client", func(b backend) error { return b.RemoveClient(ctx, "nope") }, oauth.ErrNoClient},
		{"client twice", func(b backend) error { _, _, err := b.AddClient(ctx, client, ""); return err }, oauth.ErrClientExists},
		{"bad client", func(b backend) error {
			_, _, err := b.AddClient(ctx, oauth.Client{ID: "x", Scopes: []string{"read"}}, "short")
			return err
		}, oauth.ErrBadInput},
		{"unknown user", func(b backend) error { _, err := b.RemoveUser(ctx, "nobody"); return err }, oidc.ErrNoUser},
		{"bad user", func(b backend) error { _, err := b.AddUser(ctx, oidc.User{Username: "ada"}, "short"); return err }, oidc.ErrBadUser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lerr, rerr := tc.call(local), tc.call(remote)
			if !errors.Is(lerr, tc.want) {
				t.Fatalf("local: %v, want %v", lerr, tc.want)
			}
			if !errors.Is(rerr, tc.want) {
				t.Fatalf("remote: %v, want %v", rerr, tc.want)
			}
			lv, rv := engine.FirstValidation(lerr), engine.FirstValidation(rerr)
			if (lv == nil) != (rv == nil) {
				t.Fatalf("validation detail: local %v, remote %v", lv, rv)
			}
			if lv != nil && (lv.Node != rv.Node || lv.Field != rv.Field || lv.Line != rv.Line || lv.Column != rv.Column || lv.Msg != rv.Msg) {
				t.Errorf("remote problem %+v, local %+v", *rv, *lv)
			}
		})
	}
}

// TestRemoteStaleRevision: a remote 412 is store.ErrConflict (app's too),
// as a local write under a stale revision is.
func TestRemoteStaleRevision(t *testing.T) {
	local, remote := twoBackends(t)
	ctx := t.Context()
	doc := []byte(strings.Replace(badFlow, `'hi' +`, `'hi'`, 1))
	if _, _, err := local.Import(ctx, doc, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := remote.Import(ctx, doc, false); err != nil {
		t.Fatal(err)
	}
	_, lerr := local.fd.App().PutFlow(ctx, "bad", doc, store.MustCreate)
	_, rerr := remote.do(ctx, http.MethodPost, "/flows", doc, nil)
	for side, err := range map[string]error{"local": lerr, "remote": rerr} {
		if !errors.Is(err, store.ErrConflict) || !errors.Is(err, app.ErrConflict) {
			t.Errorf("%s: %v, want the revision conflict", side, err)
		}
	}
	var re *api.RemoteError
	if !errors.As(rerr, &re) || re.Status != http.StatusPreconditionFailed || re.Code != "conflict" {
		t.Errorf("remote: %#v, want a 412 conflict", rerr)
	}
}
