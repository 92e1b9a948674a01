package app_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/store/memstore"
)

// TestPeerEndpointRefuses: the node-to-node runs endpoint answers only a
// token of this cluster, for this node, for the flow asked about, in its
// lifetime.
func TestPeerEndpointRefuses(t *testing.T) {
	ctx := t.Context()
	mem := memstore.MustNew(t, memstore.Options{})
	a := startNodeReg(t, mem, "a", registry())
	b := startNodeReg(t, mem.Node(), "b", registry())
	other := startNodeReg(t, memstore.MustNew(t, memstore.Options{}), "a", registry()) // another cluster: another key
	if _, err := a.Import(ctx, []byte(doc("f", "")), true); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, mem, b)
	if _, err := b.Run(ctx, "f", "", nil); err != nil {
		t.Fatal(err)
	}
	mint := func(on *app.App, node, flow string) string {
		t.Helper()
		tok, err := app.PeerToken(ctx, on, node, flow)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := mint(a, "b", "f")
	// A node whose clock is two minutes behind minted it long expired.
	late, err := app.New(app.Config{Store: mem.Node(), Runs: memstore.MustNew(t, memstore.Options{}), Registry: registry(),
		NodeID: "late", Now: func() time.Time { return time.Now().Add(-2 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, auth, flow string
		want             int
	}{
		{"a token of this cluster for b", "Bearer " + good, "f", 200},
		{"no token", "", "f", 401},
		{"not a bearer", "Basic " + good, "f", 401},
		{"another cluster's token", "Bearer " + mint(other, "b", "f"), "f", 401},
		{"a token for node a", "Bearer " + mint(b, "a", "f"), "f", 401},
		{"a token for another flow", "Bearer " + mint(a, "b", "g"), "f", 401},
		{"a token for this flow asking for another", "Bearer " + good, "g", 401},
		{"an expired token", "Bearer " + mint(late, "b", "f"), "f", 401},
		{"alg none", "Bearer eyJhbGciOiJub25lIn0.eyJmbG93IjoiZiJ9.", "f", 401},
		{"too long", "Bearer " + strings.Repeat("x", 5000), "f", 401},
		{"a tampered signature", "Bearer " + good[:len(good)-3] + "AAA", "f", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", app.PeerRunsPath+"?flow="+tt.flow, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			b.PeerHandler().ServeHTTP(w, req)
			if w.Code != tt.want {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tt.want)
			}
			body := w.Body.String()
			if tt.want == 200 && (!strings.Contains(body, `"node":"b"`) || !strings.Contains(body, `"flow":"f"`)) {
				t.Errorf("answer %s, want b's run of f", body)
			}
			if tt.want != 200 && strings.Contains(body, `"runs"`) {
				t.Errorf("refusal reveals runs: %s", body)
			}
		})
	}
	t.Run("a registry that cannot be read lists this node's runs and says why", func(t *testing.T) {
		solo := startNodeReg(t, noRegistry{memstore.MustNew(t, memstore.Options{})}, "solo", registry())
		if _, err := solo.Import(ctx, []byte(doc("f", "")), true); err != nil {
			t.Fatal(err)
		}
		if _, err := solo.Run(ctx, "f", "", nil); err != nil {
			t.Fatal(err)
		}
		view, err := solo.ClusterRuns(ctx, "f", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(view.Runs) != 1 || view.Runs[0].Node != "solo" || !strings.Contains(view.Note, "node registry cannot be read") {
			t.Errorf("view %+v, want solo's run and a note", view)
		}
	})
	t.Run("a node without an address is named in the merged view", func(t *testing.T) {
		view, err := a.ClusterRuns(ctx, "f", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(view.Nodes) != 2 || view.Nodes[1].Node != "b" || view.Nodes[1].OK || !strings.Contains(view.Nodes[1].Error, "no address") {
			t.Errorf("nodes %+v, want b not asked: no address", view.Nodes)
		}
	})
}
