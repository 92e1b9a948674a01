package flowd

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"slices"
	"testing"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/blocks/oidc"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/flows/examples"
	"github.com/flowd/flowd/store"
)

// TestRefLister: every kind of stored thing a field can name lists what
// exists, for the editor's pickers.
func TestRefLister(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "flowd.db"), store.BoltOptions{MasterKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fd, err := New(Options{Store: st, Examples: examples.FS, Issuer: "http://flowd.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := fd.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer fd.Close(context.Background())
	ctx := t.Context()
	if err := fd.keysets.Create(ctx, "partner", "ES256"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fd.clients.Add(ctx, oauth.Client{ID: "svc"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := fd.users.Add(ctx, oidc.User{Username: "ada"}, "a long password"); err != nil {
		t.Fatal(err)
	}
	list := refLister(fd.app, fd.keysets, fd.clients, fd.users, routePatterns{fd.router})
	for _, tc := range []struct {
		ref  engine.Ref
		want string
	}{
		{engine.RefKeyset, "partner"},
		{engine.RefClient, "svc"},
		{engine.RefUser, "ada"},
		{engine.RefFlow, "protected-api"},
		{engine.RefRoute, "GET /api/hello"},
	} {
		t.Run(string(tc.ref), func(t *testing.T) {
			got, err := list(ctx, tc.ref)
			if err != nil || !slices.Contains(got, tc.want) {
				t.Errorf("%s: %v %v, want %q among them", tc.ref, got, err, tc.want)
			}
		})
	}
	if _, err := list(ctx, "secretstore"); err == nil {
		t.Error("an unknown ref lists something")
	}
}
