package flowd_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/flows/examples"
)

// TestBareRegistry: a registry of the standard blocks needs no services.
// Every shipped flow validates on a runtime without any, and deploying a
// block that needs one fails with ErrNoService naming the Provide to call.
func TestBareRegistry(t *testing.T) {
	reg, err := flowd.NewRegistry(flowd.StandardBlocks()...)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := engine.New(engine.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(t.Context()) })
	// The bare registry is the one flowd.New serves: no spec depends on a
	// service (`flowd schema` prints what the editor and API offer).
	fd := flowd.NewTest(t, flowd.Options{})
	bare, err := reg.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	served, err := fd.App().Registry().JSONSchema()
	if err != nil || !bytes.Equal(bare, served) {
		t.Errorf("bare registry's schema differs from flowd.New's (%v)", err)
	}
	for _, file := range enginetest.Files(t, examples.FS, "*.json") {
		if err := rt.Validate(t.Context(), file.Flow); err != nil {
			t.Errorf("%s: validate without services: %v", file.Name, err)
		}
	}
	for _, tc := range []struct {
		typ, config, provide string
	}{
		{"http.in", `{"path": "/x"}`, "httpblock.Provide"},
		{"schedule.cron", `{"spec": "@daily"}`, "schedule.Provide"},
		{"jose.jwks", `{"keyset": "main"}`, "jose.Provide"},
		{"oauth.client_auth", `{}`, "oauth.Provide"},
		{"oidc.userinfo", `{}`, "oidc.Provide"},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			f, err := engine.DecodeFlow([]byte(`{"schema": "flowd/v1", "id": "f", "name": "f", "nodes": [
			  {"id": "n", "type": "` + tc.typ + `", "config": ` + tc.config + `, "x": 0, "y": 0}], "wires": []}`))
			if err != nil {
				t.Fatal(err)
			}
			err = rt.Deploy(t.Context(), f, 1)
			if !errors.Is(err, engine.ErrNoService) || !strings.Contains(err.Error(), tc.provide) {
				t.Errorf("deploy without services: %v, want ErrNoService naming %s", err, tc.provide)
			}
		})
	}
}

// TestBlocksOption: Options.Blocks chooses the block packages, and their
// lint checks come with them.
func TestBlocksOption(t *testing.T) {
	for _, tc := range []struct {
		name      string
		blocks    []func(*engine.Registry) error
		wantTypes []string
		noTypes   []string
	}{
		{"default is every standard package", nil,
			[]string{"core.set", "http.in", "schedule.cron", "jose.sign", "oauth.client_auth", "oidc.authorize"}, nil},
		{"a subset", flowd.StandardBlocks()[:2], []string{"core.set", "http.in"},
			[]string{"schedule.cron", "jose.sign", "oauth.client_auth", "oidc.authorize"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd := flowd.NewTest(t, flowd.Options{Blocks: tc.blocks})
			reg := fd.App().Registry()
			for _, typ := range tc.wantTypes {
				if _, ok := reg.Spec(typ); !ok {
					t.Errorf("%s missing", typ)
				}
			}
			for _, typ := range tc.noTypes {
				if _, ok := reg.Spec(typ); ok {
					t.Errorf("%s registered, not chosen", typ)
				}
			}
		})
	}
}
