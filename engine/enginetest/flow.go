package enginetest

import (
	"encoding/json"
	"io/fs"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
)

// Node is one node of a test flow.
type Node struct {
	ID     string
	Type   string
	Config map[string]any
	X, Y   float64 // editor position; both zero: the node's place in a left-to-right row
}

// Flow writes a flow document (schema flowd/v1) with the nodes laid out
// left to right (unless they give a position) and decodes it with engine.DecodeFlow, as flowd reads
// files; a document the engine refuses fails the test. Wires are
// "from:port->to".
func Flow(t testing.TB, id string, nodes []Node, wires ...string) *engine.Flow {
	t.Helper()
	f, err := engine.DecodeFlow(FlowJSON(t, id, nodes, wires...))
	if err != nil {
		t.Fatalf("enginetest.Flow %q: DecodeFlow: %v", id, err)
	}
	return f
}

// FlowJSON is Flow's document, for tests of the decoder or of an API that
// takes the JSON.
func FlowJSON(t testing.TB, id string, nodes []Node, wires ...string) []byte {
	t.Helper()
	type jnode struct {
		ID     string         `json:"id"`
		Type   string         `json:"type"`
		Config map[string]any `json:"config,omitempty"`
		X      float64        `json:"x"`
		Y      float64        `json:"y"`
	}
	type jwire struct {
		From string `json:"from"`
		Port string `json:"port"`
		To   string `json:"to"`
	}
	doc := struct {
		Schema string  `json:"schema"`
		ID     string  `json:"id"`
		Name   string  `json:"name"`
		Nodes  []jnode `json:"nodes"`
		Wires  []jwire `json:"wires"`
	}{Schema: engine.SchemaV1, ID: id, Name: id, Nodes: []jnode{}, Wires: []jwire{}}
	for i, n := range nodes {
		x, y := n.X, n.Y
		if x == 0 && y == 0 {
			x = float64(200 * i)
		}
		doc.Nodes = append(doc.Nodes, jnode{ID: n.ID, Type: n.Type, Config: n.Config, X: x, Y: y})
	}
	for _, w := range wires {
		from, to, ok := strings.Cut(w, "->")
		node, port, ok2 := strings.Cut(from, ":")
		if !ok || !ok2 || node == "" || port == "" || to == "" {
			t.Fatalf("enginetest: bad wire %q, want from:port->to", w)
		}
		doc.Wires = append(doc.Wires, jwire{From: node, Port: port, To: to})
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("enginetest: encoding flow %q: %v", id, err)
	}
	return data
}

// Ports lists "node:port" for every step of a trace, in order: the path a
// run took, in one comparable value.
func Ports(tr *engine.Trace) []string {
	out := make([]string, 0, len(tr.Steps))
	for _, s := range tr.Steps {
		out = append(out, s.Node+":"+s.Port)
	}
	return out
}

// Step returns the first trace step of a node, failing the test if the run
// did not reach it.
func Step(t testing.TB, tr *engine.Trace, node string) engine.Step {
	t.Helper()
	for _, s := range tr.Steps {
		if s.Node == node {
			return s
		}
	}
	t.Fatalf("enginetest: no step for node %q in trace %v", node, Ports(tr))
	return engine.Step{}
}

// Chain is Flow for a flow whose nodes run one after the other: each
// node's "out" port is wired to the next node.
func Chain(t testing.TB, id string, nodes ...Node) *engine.Flow {
	t.Helper()
	wires := make([]string, 0, len(nodes))
	for i := 1; i < len(nodes); i++ {
		wires = append(wires, nodes[i-1].ID+":out->"+nodes[i].ID)
	}
	return Flow(t, id, nodes, wires...)
}

// File is one flow document of a folder: its file name, its bytes and
// the flow they decode to.
type File struct {
	Name string
	Doc  []byte
	Flow *engine.Flow
}

// Files reads the flow documents of fsys matching pattern (fs.Glob) and
// decodes each as flowd reads files; no match, or a document the engine
// refuses, fails the test.
func Files(t testing.TB, fsys fs.FS, pattern string) []File {
	t.Helper()
	names, err := fs.Glob(fsys, pattern)
	if err != nil || len(names) == 0 {
		t.Fatalf("enginetest: no flow files %s: %v", pattern, err)
	}
	files := make([]File, len(names))
	for i, name := range names {
		doc, err := fs.ReadFile(fsys, name)
		if err != nil {
			t.Fatalf("enginetest: %v", err)
		}
		f, err := engine.DecodeFlow(doc)
		if err != nil {
			t.Fatalf("enginetest: %s: DecodeFlow: %v", name, err)
		}
		files[i] = File{Name: name, Doc: doc, Flow: f}
	}
	return files
}
