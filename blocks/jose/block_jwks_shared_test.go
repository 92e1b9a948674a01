package jose

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

// TestBlockJWKSSharedValue: msg.jwks is one value shared by every run
// (engine.Exec.PutLazy), so a run that changes its msg.jwks, in place or
// by replacing members, must change only its own copy: the next run, of
// this flow or another, still gets the keyset's ETag and cached bytes.
func TestBlockJWKSSharedValue(t *testing.T) {
	e := newBlockEnv(t)
	if err := e.ks.Ensure(t.Context(), "main", "ES256"); err != nil {
		t.Fatal(err)
	}
	cached, etag, err := e.ks.JWKS(t.Context(), "main")
	if err != nil {
		t.Fatal(err)
	}
	// test.poke changes msg.jwks in place, as any block may change its
	// message.
	e.reg.MustRegister(engine.Spec{Type: "test.poke", Title: "poke", Category: "test", Outputs: []string{"out"}},
		func(*engine.Setup) (engine.Block, error) {
			return engine.BlockFunc(func(_ context.Context, _ *engine.Exec, m engine.Msg) (string, error) {
				j, ok := m["jwks"].(map[string]any)
				if !ok {
					return "", errors.New("msg.jwks is not a map")
				}
				j["etag"], j["extra"] = "tampered", 1
				delete(j, "body")
				return "out", nil
			}), nil
		})
	// A 304 run changes its msg.jwks; the 200 runs after it must not see
	// the change (the same block serves both).
	e.deploy(t, enginetest.Flow(t, "jwks", []enginetest.Node{
		{ID: "start", Type: "core.manual"},
		{ID: "b", Type: "jose.jwks", Config: map[string]any{"keyset": "main"}},
		{ID: "poke", Type: "test.poke"},
		{ID: "got_not_modified", Type: "test.capture"},
		{ID: "got_ok", Type: "test.capture"},
	}, "start:out->b", "b:not_modified->poke", "poke:out->got_not_modified", "b:ok->got_ok"))
	inm := engine.Msg{"req": map[string]any{"headers": map[string]any{"if-none-match": etag}}}
	for range 2 {
		port, msg := e.run(t, "jwks", inm)
		j, _ := msg["jwks"].(map[string]any)
		if port != "not_modified" || j["etag"] != "tampered" || j["extra"] != 1 || j["body"] != nil {
			t.Errorf("304 run: port %q, msg.jwks = %v, want the run's own changes", port, j)
		}
		port, msg = e.run(t, "jwks", engine.Msg{})
		j, _ = msg["jwks"].(map[string]any)
		body, _ := j["body"].([]byte)
		if port != "ok" || j["etag"] != etag || !bytes.Equal(body, cached) || j["extra"] != nil {
			t.Errorf("the next run: port %q, msg.jwks = %v, want etag %s and the cached body", port, j, etag)
		}
	}
}
