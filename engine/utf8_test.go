package engine

import (
	"bytes"
	"strings"
	"testing"
)

// TestDecodeFlowRefusesInvalidUTF8: text that is not valid UTF-8 (raw
// bytes, or a \u escape of a lone surrogate) is refused with the node and
// field, instead of being stored with U+FFFD so that export no longer
// matches import.
func TestDecodeFlowRefusesInvalidUTF8(t *testing.T) {
	doc := func(name, desc, nodeName, config, port string) []byte {
		return []byte(`{"schema":"flowd/v1","id":"f","name":"` + name + `","description":"` + desc + `",` +
			`"nodes":[{"id":"a","type":"t.x","name":"` + nodeName + `","config":` + config + `,"x":0,"y":0},` +
			`{"id":"b","type":"t.y","x":0,"y":0}],"wires":[{"from":"a","port":"` + port + `","to":"b"}]}`)
	}
	const ok, cfg = "ok", `{"path":"/p"}`
	tests := []struct {
		name        string
		data        []byte
		node, field string
		msg         string
	}{
		{"flow name raw byte", doc("bad\xff", ok, ok, cfg, "out"), "", "name", "not valid UTF-8"},
		{"flow name overlong encoding", doc("\xc0\xaf", ok, ok, cfg, "out"), "", "name", "not valid UTF-8"},
		{"description lone surrogate", doc(ok, `x\ud800y`, ok, cfg, "out"), "", "description", "not valid UTF-8"},
		{"description lone low surrogate", doc(ok, `\uDC00`, ok, cfg, "out"), "", "description", "not valid UTF-8"},
		{"node name", doc(ok, ok, "n\xfe", cfg, "out"), "a", "name", "not valid UTF-8"},
		{"config string", doc(ok, ok, ok, "{\"path\":\"/p\xff\"}", "out"), "a", "config.path", "not valid UTF-8"},
		{"nested config", doc(ok, ok, ok, `{"claims":{"sub":["x","\ud83d"]}}`, "out"), "a", "config.claims.sub[1]", "not valid UTF-8"},
		{"config key", doc(ok, ok, ok, "{\"p\xffth\":\"/p\"}", "out"), "a", "config", `key "p\ufffdth" is not valid UTF-8`},
		{"wire port", doc(ok, ok, ok, cfg, "o\xffut"), "", "wires[0].port", "not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeFlow(tc.data)
			ve := FirstValidation(err)
			if ve == nil {
				t.Fatalf("DecodeFlow error = %v, want a validation error", err)
			}
			if ve.Node != tc.node || ve.Field != tc.field || ve.Msg != tc.msg {
				t.Errorf("error = node %q field %q msg %q; want node %q field %q msg %q",
					ve.Node, ve.Field, ve.Msg, tc.node, tc.field, tc.msg)
			}
		})
	}

	// Real text, U+FFFD written as itself or escaped, and surrogate pairs
	// stay accepted, and export gives back the same text.
	valid := []struct{ name, in, want string }{
		{"replacement char literal", "a\uFFFDb", "a\uFFFDb"},
		{"replacement char escaped", `a\ufffdb`, "a\uFFFDb"},
		{"replacement char escaped upper", `a\uFFFDb`, "a\uFFFDb"},
		{"surrogate pair", `\ud83d\ude00`, "\U0001F600"},
		{"escaped backslash before u", `a\\ud800`, `a\ud800`},
		{"non-ASCII", "Zürich — 東京", "Zürich — 東京"},
	}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			f, err := DecodeFlow(doc(tc.in, ok, ok, cfg, "out"))
			if err != nil {
				t.Fatalf("DecodeFlow: %v", err)
			}
			if f.Name != tc.want {
				t.Errorf("name = %q, want %q", f.Name, tc.want)
			}
			out := mustEncode(t, f)
			g, err := DecodeFlow(out)
			if err != nil || g.Name != tc.want || !bytes.Equal(mustEncode(t, g), out) {
				t.Errorf("round trip changed the flow: %v %q", err, out)
			}
			if strings.Contains(string(out), "\\ufffd") {
				t.Errorf("export escapes U+FFFD: %s", out)
			}
		})
	}
}
