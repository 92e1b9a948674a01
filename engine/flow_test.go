package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func goldenFlows(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/flows/*.json")
	if err != nil || len(files) < 3 {
		t.Fatalf("want at least 3 golden flows in testdata/flows, got %d (%v)", len(files), err)
	}
	return files
}

// TestFlowGolden: every document in testdata/flows is canonical, so
// EncodeFlow(DecodeFlow(b)) == b byte for byte, and it is a valid flow.
func TestFlowGolden(t *testing.T) {
	h := newHarness()
	reg := testRegistry(t, h)
	rt := newTestRuntime(t, h, Options{Registry: reg})
	for _, file := range goldenFlows(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			f := mustDecode(t, b)
			enc := mustEncode(t, f)
			if *update && !bytes.Equal(enc, b) {
				if err := os.WriteFile(file, enc, 0o644); err != nil {
					t.Fatal(err)
				}
				b = enc
			}
			if !bytes.Equal(enc, b) {
				t.Errorf("EncodeFlow(DecodeFlow(b)) != b (run with -update if the format changed on purpose)\n got: %s\nwant: %s", enc, b)
			}
			if f2 := mustDecode(t, enc); !reflect.DeepEqual(f, f2) {
				t.Errorf("DecodeFlow(EncodeFlow(f)) != f\n got: %+v\nwant: %+v", f2, f)
			}
			if err := reg.Validate(f); err != nil {
				t.Errorf("Registry.Validate: %v", err)
			}
			if err := rt.Validate(t.Context(), f); err != nil {
				t.Errorf("Runtime.Validate: %v", err)
			}
			if err := checkSchema(t, reg, b); err != nil {
				t.Errorf("JSON Schema rejects a valid flow: %v", err)
			}
		})
	}
}

// TestFlowGoldenContent pins what the goldens are meant to exercise, so a
// careless -update cannot quietly drop it.
func TestFlowGoldenContent(t *testing.T) {
	b, err := os.ReadFile("testdata/flows/token-endpoint.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"max_body": 1e3`, `"ratio": 0.1`, `"big": 12345678901234567890`, `"neg": -2.5e-3`,
		`&& len(msg.body.client_id) > 0`, `< 256`, `<script>&</script>`, `<b>&amp;</b>`,
		`令牌 🔑`, `\u2028`, `\n  \"access_token\"`, `"empty": {}`, `"list": []`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("token-endpoint.json lacks %s", want)
		}
	}
	f, err := DecodeFlow(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(f.Wires); got != 6 {
		t.Errorf("wires = %d, want 6", got)
	}
	if !slices.IsSortedFunc(f.Wires, func(a, b Wire) int { return cmpStrings(a.From, b.From, a.Port, b.Port, a.To, b.To) }) {
		t.Errorf("golden wires are not sorted: %v", f.Wires)
	}
}

// TestFlowNonCanonical: hand-edited and restyled documents encode to the
// golden canonical form.
func TestFlowNonCanonical(t *testing.T) {
	for _, golden := range goldenFlows(t) {
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Base(golden)
		variants := map[string][]byte{}
		if b, err := os.ReadFile(filepath.Join("testdata/noncanonical", base)); err == nil {
			variants["hand-edited"] = b
		}
		for name, st := range map[string]jsonStyle{
			"compact":                 {},
			"reversed keys":           {reverseKeys: true, indent: "  "},
			"unsorted wires":          {reverseWires: true, indent: "    "},
			"html escaped, tabs":      {escapeHTML: true, indent: "\t"},
			"everything, crlf spaces": {reverseKeys: true, reverseWires: true, escapeHTML: true, crlf: true},
		} {
			variants[name] = restyle(t, want, st)
		}
		for name, b := range variants {
			t.Run(base+"/"+name, func(t *testing.T) {
				if bytes.Equal(b, want) {
					t.Fatalf("variant is canonical already; the test tests nothing")
				}
				if got := reencode(t, b); !bytes.Equal(got, want) {
					t.Errorf("canonical form differs\n got: %s\nwant: %s", got, want)
				}
			})
		}
	}
}

// mustDecode decodes a flow document the engine must accept.
func mustDecode(t testing.TB, b []byte) *Flow {
	t.Helper()
	f, err := DecodeFlow(b)
	if err != nil {
		t.Fatalf("DecodeFlow: %v\n%s", err, b)
	}
	return f
}

// mustEncode encodes f, failing the test on an error.
func mustEncode(t testing.TB, f *Flow) []byte {
	t.Helper()
	b, err := EncodeFlow(f)
	if err != nil {
		t.Fatalf("EncodeFlow: %v", err)
	}
	return b
}

// reencode is EncodeFlow(DecodeFlow(b)): the canonical form of b.
func reencode(t testing.TB, b []byte) []byte {
	t.Helper()
	return mustEncode(t, mustDecode(t, b))
}

type jsonStyle struct {
	reverseKeys, reverseWires, escapeHTML, crlf bool
	indent                                      string
}

// restyle rewrites a JSON document with a different but equivalent layout.
func restyle(t testing.TB, b []byte, st jsonStyle) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	// each writes n comma-separated items between open and close.
	each := func(open, close byte, n int, item func(i int)) {
		buf.WriteByte(open)
		for i := range n {
			if i > 0 {
				buf.WriteByte(',')
			}
			item(i)
		}
		buf.WriteByte(close)
	}
	var write func(v any, key string)
	write = func(v any, key string) {
		switch t := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if st.reverseKeys {
				slices.Reverse(keys)
			}
			each('{', '}', len(keys), func(i int) {
				write(keys[i], "")
				buf.WriteByte(':')
				write(t[keys[i]], keys[i])
			})
		case []any:
			if key == "wires" && st.reverseWires {
				t = slices.Clone(t)
				slices.Reverse(t)
			}
			each('[', ']', len(t), func(i int) { write(t[i], "") })
		default:
			var e bytes.Buffer
			enc := json.NewEncoder(&e)
			enc.SetEscapeHTML(st.escapeHTML)
			if err := enc.Encode(t); err != nil {
				panic(err)
			}
			buf.Write(bytes.TrimRight(e.Bytes(), "\n"))
		}
	}
	write(v, "")
	out := buf.Bytes()
	prefix := ""
	if st.crlf {
		prefix, st.indent = "\r", " \t"
	}
	if st.indent != "" {
		var ind bytes.Buffer
		if err := json.Indent(&ind, out, prefix, st.indent); err != nil {
			t.Fatal(err)
		}
		out = ind.Bytes()
	}
	return out
}

// Building blocks of hostile documents.
const (
	trig = `{"id":"t","type":"test.trigger","x":0,"y":0}`
	pass = `{"id":"p","type":"test.pass"}`
)

func doc(nodes ...string) string { return docW(nodes, "") }

func docW(nodes []string, wires string) string {
	return `{"schema":"flowd/v1","id":"f","name":"F","nodes":[` + strings.Join(nodes, ",") + `],"wires":[` + wires + `]}`
}

// kitchen is a test.kitchen node "k" with extra config members; "name"
// is "n" unless cfg sets it.
func kitchen(cfg string) string {
	switch {
	case strings.HasPrefix(cfg, `"name":`):
	case cfg != "":
		cfg = `"name":"n",` + cfg
	default:
		cfg = `"name":"n"`
	}
	return `{"id":"k","type":"test.kitchen","config":{` + cfg + `}}`
}

func nested(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

func TestFlowBadDocuments(t *testing.T) {
	type stage int
	const (
		decode   stage = iota // DecodeFlow refuses it
		registry              // DecodeFlow accepts, Registry.Validate (and Runtime.Validate) refuse
		runtime               // only Runtime.Validate (factories) refuses
	)
	tests := []struct {
		name         string
		doc          string
		stage        stage
		node, field  string
		line, column int
		msg          string // substring of the first error's Msg
		is           error  // another sentinel errors.Is must find
		count        int    // number of problems reported (0: don't care beyond 1+)
	}{
		{name: "empty document", doc: "  \n", stage: decode, msg: "empty document", count: 1},
		{name: "malformed JSON", doc: `{"schema":"flowd/v1","id":"f",`, stage: decode, msg: "unexpected end of JSON", count: 1},
		{name: "malformed JSON inside a node", doc: `{"schema":"flowd/v1","id":"f","nodes":[{"id":"a","type":"test.pass","config":{"x":tru}}]}`,
			stage: decode, node: "nodes[0]", field: "config.x", msg: "malformed JSON at byte", count: 1},
		{name: "trailing data", doc: doc(trig) + ` {}`, stage: decode, msg: "trailing data", count: 1},
		{name: "trailing garbage", doc: doc(trig) + ` x`, stage: decode, msg: "malformed JSON", count: 1},
		{name: "not an object", doc: `[1,2]`, stage: decode, msg: "must be an object", count: 1},
		{name: "unknown top-level field", doc: `{"schema":"flowd/v1","id":"f","name":"F","owner":"me","nodes":[],"wires":[]}`,
			stage: decode, field: "owner", msg: "unknown field", count: 1},
		{name: "top-level field in other case", doc: `{"schema":"flowd/v1","ID":"f","nodes":[],"wires":[]}`,
			stage: decode, field: "ID", msg: "unknown field", count: 1},
		{name: "wrong-typed top-level field", doc: `{"schema":"flowd/v1","id":"f","nodes":{}}`,
			stage: decode, field: "nodes", msg: "must be an array", count: 1},
		{name: "bad flow id", doc: `{"schema":"flowd/v1","id":"a b","nodes":[],"wires":[]}`,
			stage: decode, field: "id", msg: "flow id", count: 1},
		{name: "wrong schema", doc: `{"schema":"flowd/v2","id":"f","nodes":[],"wires":[]}`,
			stage: decode, field: "schema", msg: `unknown schema "flowd/v2"`, count: 1},
		{name: "missing schema", doc: `{"id":"f","nodes":[],"wires":[]}`,
			stage: decode, field: "schema", msg: "missing", count: 1},
		{name: "unknown node field", doc: doc(trig, `{"id":"a","type":"test.pass","colour":"red"}`),
			stage: decode, node: "a", field: "colour", msg: "unknown field", count: 1},
		{name: "node field in other case", doc: doc(trig, `{"id":"a","Type":"test.pass"}`),
			stage: decode, node: "a", field: "Type", msg: "unknown field", count: 1},
		{name: "wrong-typed node field", doc: doc(trig, `{"id":"a","type":"test.pass","x":"left"}`),
			stage: decode, node: "a", field: "x", msg: "must be a number", count: 1},
		{name: "node without id", doc: doc(trig, `{"type":"test.pass"}`),
			stage: decode, node: "nodes[1]", field: "id", msg: "node id", count: 1},
		{name: "node without type", doc: doc(trig, `{"id":"a"}`),
			stage: decode, node: "a", field: "type", msg: "missing block type", count: 1},
		{name: "duplicate node id", doc: doc(trig, pass, pass),
			stage: decode, node: "p", field: "id", msg: "duplicate node id", count: 1},
		{name: "unknown wire field", doc: docW([]string{trig, pass}, `{"from":"t","port":"out","to":"p","via":"q"}`),
			stage: decode, field: "wires[0].via", msg: "unknown field", count: 1},
		{name: "duplicate JSON keys, top level", doc: `{"schema":"flowd/v1","id":"f","id":"g","nodes":[],"wires":[]}`,
			stage: decode, msg: `duplicate key "id"`, count: 1},
		{name: "duplicate JSON keys in config", doc: doc(trig, `{"id":"k","type":"test.kitchen","config":{"name":"a","name":"b"}}`),
			stage: decode, node: "k", field: "config", msg: `duplicate key "name"`, count: 1},
		{name: "duplicate JSON keys, escaped", doc: doc(trig, `{"id":"k","type":"test.kitchen","config":{"name":"a","n\u0061me":"b"}}`),
			stage: decode, node: "k", field: "config", msg: `duplicate key "name"`, count: 1},
		{name: "100-level nesting in config", doc: doc(trig, kitchen(`"data":`+nested(100))),
			stage: decode, node: "k", field: "config.data" + strings.Repeat("[0]", 60), msg: "nested deeper than 64", count: 1},
		{name: "document over MaxFlowBytes", doc: doc(trig, kitchen(`"text":"`+strings.Repeat("a", MaxFlowBytes)+`"`)),
			stage: decode, msg: "more than the 4194304 allowed", count: 1},

		{name: "unknown block type", doc: doc(trig, `{"id":"a","type":"test.nope"}`),
			stage: registry, node: "a", field: "type", msg: `unknown block type "test.nope"`, is: ErrUnknownType, count: 1},
		{name: "unknown config field", doc: doc(trig, kitchen(`"bogus":1`)),
			stage: registry, node: "k", field: "bogus", msg: "unknown field for block type test.kitchen", count: 1},
		{name: "unknown config fields, sorted", doc: doc(trig, kitchen(`"zz":1,"aa":2,"mm":3`)),
			stage: registry, node: "k", field: "aa", msg: "unknown field", count: 3},
		{name: "missing required field", doc: doc(trig, `{"id":"k","type":"test.kitchen"}`),
			stage: registry, node: "k", field: "name", msg: "required", count: 1},
		{name: "required field empty", doc: doc(trig, `{"id":"k","type":"test.kitchen","config":{"name":""}}`),
			stage: registry, node: "k", field: "name", msg: "required", count: 1},
		{name: "required field null", doc: doc(trig, `{"id":"k","type":"test.kitchen","config":{"name":null}}`),
			stage: registry, node: "k", field: "name", msg: "required", count: 1},
		{name: "string for int", doc: doc(trig, kitchen(`"count":"5"`)),
			stage: registry, node: "k", field: "count", msg: "must be a whole number", count: 1},
		{name: "fraction for int", doc: doc(trig, kitchen(`"count":2.5`)),
			stage: registry, node: "k", field: "count", msg: "must be a whole number, not 2.5", count: 1},
		{name: "int under its minimum", doc: doc(trig, kitchen(`"count":0`)),
			stage: registry, node: "k", field: "count", msg: "must be at least 1", count: 1},
		{name: "number over its maximum", doc: doc(trig, kitchen(`"ratio":1.5`)),
			stage: registry, node: "k", field: "ratio", msg: "must be at most 1", count: 1},
		{name: "infinite number", doc: doc(trig, kitchen(`"ratio":1e999`)),
			stage: registry, node: "k", field: "ratio", msg: "finite", count: 1},
		{name: "string with a newline", doc: doc(trig, kitchen(`"name":"a\nb"`)),
			stage: registry, node: "k", field: "name", msg: "one line", count: 1},
		{name: "bool as string", doc: doc(trig, kitchen(`"on":"yes"`)),
			stage: registry, node: "k", field: "on", msg: "true or false", count: 1},
		{name: "bad duration", doc: doc(trig, kitchen(`"wait":"5 minutes"`)),
			stage: registry, node: "k", field: "wait", msg: `not "5 minutes"`, count: 1},
		{name: "negative duration", doc: doc(trig, kitchen(`"wait":"-5s"`)),
			stage: registry, node: "k", field: "wait", msg: "negative", count: 1},
		{name: "duration over its maximum", doc: doc(trig, kitchen(`"wait":"2h"`)),
			stage: registry, node: "k", field: "wait", msg: "at most 1h", count: 1},
		{name: "duration as number", doc: doc(trig, kitchen(`"wait":30`)),
			stage: registry, node: "k", field: "wait", msg: "duration text", count: 1},
		{name: "enum value not listed", doc: doc(trig, kitchen(`"mode":"c"`)),
			stage: registry, node: "k", field: "mode", msg: `must be one of ["a" "b"]`, count: 1},
		{name: "strings with a number", doc: doc(trig, kitchen(`"tags":["a",2]`)),
			stage: registry, node: "k", field: "tags", msg: "item 1 must be a string", count: 1},
		{name: "bad expression on line 2", doc: doc(trig, kitchen(`"cond":"msg.a == 1 &&\n  msg.b >"`)),
			stage: registry, node: "k", field: "cond", line: 2, column: 9, msg: "unexpected token EOF", count: 1},
		{name: "unknown variable on line 3", doc: doc(trig, kitchen(`"cond":"msg.a == 1 &&\n\n    user.admin"`)),
			stage: registry, node: "k", field: "cond", line: 3, column: 5, msg: "unknown name user", count: 1},
		{name: "unknown function", doc: doc(trig, kitchen(`"cond":"isAdmin(msg.user)"`)),
			stage: registry, node: "k", field: "cond", line: 1, column: 1, msg: "unknown name isAdmin", count: 1},
		{name: "expression of the wrong type", doc: doc(trig, kitchen(`"cond":"1 + 2"`)),
			stage: registry, node: "k", field: "cond", msg: "expected bool", count: 1},
		{name: "expression that is not a string", doc: doc(trig, kitchen(`"cond":true`)),
			stage: registry, node: "k", field: "cond", msg: "must be an expression", count: 1},
		{name: "bad exprmap entry", doc: doc(trig, kitchen(`"set":{"ok":"1","bad":"msg.a )"}`)),
			stage: registry, node: "k", field: "set.bad", line: 1, column: 7, msg: `unexpected token Bracket(")")`, count: 1},
		{name: "rules not a list", doc: doc(trig, kitchen(`"rules":{"a":"true"}`)),
			stage: registry, node: "k", field: "rules", msg: "must be a list", count: 1},
		{name: "rule with a duplicate name", doc: doc(trig, kitchen(`"rules":[{"name":"a","expr":"true"},{"name":"a","expr":"false"}]`)),
			stage: registry, node: "k", field: "rules", msg: `item 1: name "a" must be unique`, count: 1},
		{name: "rule with an extra member", doc: doc(trig, kitchen(`"rules":[{"name":"a","expr":"true","x":1}]`)),
			stage: registry, node: "k", field: "rules", msg: "item 0 must be", count: 1},
		{name: "dangling wire from", doc: docW([]string{trig, pass}, `{"from":"ghost","port":"out","to":"p"}`),
			stage: registry, node: "ghost", field: "wires[0].from", msg: "does not exist", count: 1},
		{name: "dangling wire to", doc: docW([]string{trig, pass}, `{"from":"t","port":"out","to":"ghost"}`),
			stage: registry, node: "ghost", field: "wires[0].to", msg: "does not exist", count: 1},
		{name: "duplicate wire", doc: docW([]string{trig, pass}, `{"from":"t","port":"out","to":"p"},{"from":"t","port":"out","to":"p"}`),
			stage: registry, node: "t", field: "wires[1]", msg: "duplicate wire t:out -> p", count: 1},
		{name: "wire from a missing port", doc: docW([]string{trig, pass}, `{"from":"t","port":"nope","to":"p"}`),
			stage: registry, node: "t", field: "wires[0].port", msg: `no output port "nope"`, count: 1},
		{name: "wire from a trigger's error port", doc: docW([]string{trig, pass}, `{"from":"t","port":"error","to":"p"}`),
			stage: registry, node: "t", field: "wires[0].port", msg: `no output port "error"`, count: 1},
		{name: "wire from a missing dynamic port", doc: docW([]string{trig, pass,
			`{"id":"s","type":"test.switch","config":{"rules":[{"name":"admin","expr":"msg.admin == true"}]}}`},
			`{"from":"t","port":"out","to":"s"},{"from":"s","port":"admin","to":"p"},{"from":"s","port":"user","to":"p"}`),
			stage: registry, node: "s", field: "wires[2].port", msg: `no output port "user"`, count: 1},
		{name: "wire into a trigger", doc: docW([]string{trig, pass}, `{"from":"p","port":"out","to":"t"}`),
			stage: registry, node: "t", field: "wires[0].to", msg: "is a trigger and has no input", count: 1},
		{name: "several problems, in document order", doc: docW([]string{trig, kitchen(`"count":"x"`), `{"id":"z","type":"test.zzz"}`},
			`{"from":"t","port":"out","to":"ghost"}`),
			stage: registry, node: "k", field: "count", msg: "whole number", count: 3},

		{name: "factory refuses a field", doc: doc(trig, kitchen(`"name":"explode"`)),
			stage: runtime, node: "k", field: "name", msg: "refused by the factory", count: 1},
		{name: "factory panics", doc: doc(trig, kitchen(`"name":"panic"`)),
			stage: runtime, node: "k", msg: "building the block failed: factory panic", count: 1},
		{name: "factory builds nothing", doc: doc(trig, kitchen(`"name":"nil"`)),
			stage: runtime, node: "k", msg: "built nothing", count: 1},
		{name: "factory fails with a plain error", doc: doc(trig, kitchen(`"name":"plain-error"`)),
			stage: runtime, node: "k", msg: "keystore unavailable", count: 1},
	}
	h := newHarness()
	reg := testRegistry(t, h)
	rt := newTestRuntime(t, h, Options{Registry: reg})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := DecodeFlow([]byte(tt.doc))
			if tt.stage > decode {
				if err != nil {
					t.Fatalf("DecodeFlow: %v", err)
				}
				err = reg.Validate(f)
				if tt.stage == runtime {
					if err != nil {
						t.Fatalf("Registry.Validate: %v", err)
					}
				}
				rerr := rt.Validate(t.Context(), f)
				if tt.stage == runtime {
					err = rerr
				} else if got, want := FirstValidation(rerr), FirstValidation(err); want != nil && (got == nil || *got != *want) {
					t.Errorf("Runtime.Validate's first error %v differs from Registry.Validate's %v", rerr, err)
				}
			}
			if err == nil {
				t.Fatalf("no error")
			}
			if !errors.Is(err, ErrInvalidFlow) {
				t.Errorf("errors.Is(err, ErrInvalidFlow) = false for %v", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(err, %v) = false for %v", tt.is, err)
			}
			var ves ValidationErrors
			if !errors.As(err, &ves) {
				t.Fatalf("error %T is not ValidationErrors: %v", err, err)
			}
			if tt.count > 0 && len(ves) != tt.count {
				t.Errorf("%d problems, want %d: %v", len(ves), tt.count, err)
			}
			ve := FirstValidation(err)
			if ve == nil {
				t.Fatalf("FirstValidation(%v) = nil", err)
			}
			if ve != ves[0] {
				t.Errorf("FirstValidation is not the first problem")
			}
			if ve.Node != tt.node || ve.Field != tt.field || ve.Line != tt.line || ve.Column != tt.column {
				t.Errorf("got node %q field %q line %d column %d, want node %q field %q line %d column %d (%v)",
					ve.Node, ve.Field, ve.Line, ve.Column, tt.node, tt.field, tt.line, tt.column, ve)
			}
			if !strings.Contains(ve.Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", ve.Msg, tt.msg)
			}
			// The error text names node and field, for logs and API answers.
			for _, s := range []string{tt.node, tt.field} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error text %q does not name %q", err.Error(), s)
				}
			}
		})
	}
}

// TestFlowUnknownTypeAndConfigReportsEveryProblem: Validate reports all
// problems at once, each naming its node, in document order.
func TestFlowEveryProblem(t *testing.T) {
	h := newHarness()
	reg := testRegistry(t, h)
	f, err := DecodeFlow([]byte(docW([]string{trig, kitchen(`"count":"x","mode":"z"`), `{"id":"z","type":"test.zzz"}`},
		`{"from":"t","port":"out","to":"ghost"},{"from":"k","port":"nope","to":"z"}`)))
	if err != nil {
		t.Fatal(err)
	}
	err = reg.Validate(f)
	var ves ValidationErrors
	if !errors.As(err, &ves) {
		t.Fatalf("got %v", err)
	}
	var got []string
	for _, ve := range ves {
		got = append(got, ve.Node+"/"+ve.Field)
	}
	// k's bad config hides the port check of its wire: its ports may
	// depend on the config.
	want := []string{"k/count", "k/mode", "z/type", "ghost/wires[0].to"}
	if !slices.Equal(got, want) {
		t.Errorf("problems %q, want %q", got, want)
	}
	if !strings.HasPrefix(err.Error(), "4 problems: ") {
		t.Errorf("error text %q", err)
	}
}

func TestEncodeFlowFromGo(t *testing.T) {
	// A Flow built in Go (nil slices, unsorted wires) encodes canonically.
	f := &Flow{ID: "g", Name: "G", Nodes: []Node{node("b", "test.pass", nil), node("a", "test.trigger", map[string]any{"fail_start": false})},
		Wires: wires("b.out>a", "a.out>b")}
	got, err := EncodeFlow(f)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "schema": "flowd/v1",
  "id": "g",
  "name": "G",
  "nodes": [
    {
      "id": "b",
      "type": "test.pass",
      "x": 0,
      "y": 0
    },
    {
      "id": "a",
      "type": "test.trigger",
      "config": {
        "fail_start": false
      },
      "x": 0,
      "y": 0
    }
  ],
  "wires": [
    {
      "from": "a",
      "port": "out",
      "to": "b"
    },
    {
      "from": "b",
      "port": "out",
      "to": "a"
    }
  ]
}
`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if f.Wires[0].From != "b" {
		t.Errorf("EncodeFlow sorted the caller's wires")
	}
	empty, err := EncodeFlow(&Flow{ID: "e"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"schema\": \"flowd/v1\",\n  \"id\": \"e\",\n  \"name\": \"\",\n  \"nodes\": [],\n  \"wires\": []\n}\n"; string(empty) != want {
		t.Errorf("empty flow: got %q want %q", empty, want)
	}
}

func TestFlowNode(t *testing.T) {
	f := mkFlow("f", []Node{node("a", "test.pass", nil), node("b", "test.pass", nil)})
	if n := f.Node("b"); n == nil || n != &f.Nodes[1] {
		t.Errorf("Node(b) = %v", n)
	}
	if n := f.Node("c"); n != nil {
		t.Errorf("Node(c) = %v", n)
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"a", true}, {"key-rollover", true}, {"v1.2_x", true}, {"0abc", true},
		{strings.Repeat("a", 64), true}, {strings.Repeat("a", 65), false},
		{"", false}, {"-a", false}, {".a", false}, {"a b", false}, {"a/b", false}, {"é", false}, {"a\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := ValidID(tt.id); got != tt.want {
				t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}
