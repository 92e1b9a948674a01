package flowd

import (
	"slices"
	"testing"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/blocks/oidc"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/flows/examples"
)

// TestRefLister: every kind of stored thing a field can name lists what
// exists, for the editor's pickers.
func TestRefLister(t *testing.T) {
	fd := StartTest(t, Options{Examples: examples.FS, Issuer: "http://flowd.test"})
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
