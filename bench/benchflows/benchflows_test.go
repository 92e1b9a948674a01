package benchflows

import (
	"bytes"
	"encoding/json"
	"testing"
	"testing/fstest"

	"github.com/flowd/flowd/flows/examples"
)

func TestDocs(t *testing.T) {
	docs, err := Docs(examples.FS)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range derivations {
		t.Run(d.id, func(t *testing.T) {
			orig, _ := examples.FS.ReadFile(d.from + ".json")
			var want, got map[string]any
			if json.Unmarshal(orig, &want) != nil || json.Unmarshal(docs[d.id], &got) != nil {
				t.Fatal("not JSON")
			}
			// Exactly the derivation's changes.
			want["id"], want["name"], want["description"] = d.id, d.name, got["description"]
			for _, n := range want["nodes"].([]any) {
				node := n.(map[string]any)
				if node["type"] == "http.in" {
					node["config"].(map[string]any)["path"] = d.path
				}
				if node["id"] == d.node {
					node["config"].(map[string]any)[d.field] = d.value
				}
			}
			wj, _ := json.Marshal(want)
			gj, _ := json.Marshal(got)
			if !bytes.Equal(wj, gj) {
				t.Errorf("derived flow differs:\n%s\n%s", gj, wj)
			}
		})
	}
}

func TestDocsRefuseAChangedShape(t *testing.T) {
	for name, doc := range map[string]string{
		"no http.in":    `{"id":"token","nodes":[{"id":"sign","type":"jose.sign","config":{"alg":"RS256"}}]}`,
		"no sign node":  `{"id":"token","nodes":[{"id":"in","type":"http.in","config":{"path":"/oauth/token"}}]}`,
		"no alg member": `{"id":"token","nodes":[{"id":"in","type":"http.in","config":{}},{"id":"sign","type":"jose.sign","config":{}}]}`,
		"not JSON":      `{`,
	} {
		t.Run(name, func(t *testing.T) {
			fsys := fstest.MapFS{"token.json": {Data: []byte(doc)}, "protected-api.json": {Data: []byte(doc)}}
			if _, err := Docs(fsys); err == nil {
				t.Errorf("Docs accepted %s", doc)
			}
		})
	}
}
