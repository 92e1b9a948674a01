// Package benchflows derives the benchmark's extra flows from flowd's
// prebuilt ones, so they follow every change to those:
//
//	token-es256    flows/examples/token.json on POST /bench/token-es256,
//	               client_credentials access tokens signed with ES256
//	hello-nocache  flows/examples/protected-api.json on GET
//	               /bench/hello-nocache, jose.validate's cache off
//
// bench/inprocess_test.go deploys them in process; bench/run.sh writes
// them with bench/writeflows and imports them.
package benchflows

import (
	"encoding/json"
	"fmt"
	"io/fs"
)

// derivation is one flow made from a prebuilt one: a new id and path, and
// one config field of one node changed.
type derivation struct {
	id, from, name, path, node, field string
	value                             any
}

var derivations = []derivation{
	{"token-es256", "token", "Token endpoint, ES256 access tokens (benchmark)", "/bench/token-es256", "sign", "alg", "ES256"},
	{"hello-nocache", "protected-api", "Protected API, verified-token cache off (benchmark)", "/bench/hello-nocache", "auth", "cache", 0},
}

// Docs returns the derived flow documents by id, from the prebuilt flows
// in examples (flows/examples.FS).
func Docs(examples fs.FS) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, d := range derivations {
		raw, err := fs.ReadFile(examples, d.from+".json")
		if err != nil {
			return nil, err
		}
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("%s.json: %w", d.from, err)
		}
		doc["id"], doc["name"] = d.id, d.name
		doc["description"] = fmt.Sprintf("Benchmark copy of %s.json (bench/benchflows): %s, %s.%s = %v.", d.from, d.path, d.node, d.field, d.value)
		found := 0
		nodes, _ := doc["nodes"].([]any)
		for _, n := range nodes {
			node, _ := n.(map[string]any)
			conf, _ := node["config"].(map[string]any)
			switch {
			case conf == nil:
			case node["type"] == "http.in":
				conf["path"] = d.path
				found++
			case node["id"] == d.node:
				if _, ok := conf[d.field]; !ok && d.field != "cache" {
					return nil, fmt.Errorf("%s.json: node %s has no %s", d.from, d.node, d.field)
				}
				conf[d.field] = d.value
				found++
			}
		}
		if found != 2 {
			return nil, fmt.Errorf("%s.json: want one http.in and node %q, found %d of them: the prebuilt flow changed shape", d.from, d.node, found)
		}
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return nil, err
		}
		out[d.id] = b
	}
	return out, nil
}
