package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// SchemaV1 is the only flow document schema this engine reads.
const SchemaV1 = "flowd/v1"

// MaxFlowBytes caps a flow document; a larger one is refused before parsing.
const MaxFlowBytes = 4 << 20

// Flow is a flow document: nodes (blocks with config and a canvas position)
// and wires between node ports.
type Flow struct {
	Schema      string `json:"schema"`
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Nodes       []Node `json:"nodes"`
	Wires       []Wire `json:"wires"`
	// Notes are comments on the canvas. They never run; a document
	// without any has no "notes" member, so older documents encode as
	// they always did.
	Notes []Note `json:"notes,omitempty"`
}

// Note is a comment on the canvas: text at a position.
type Note struct {
	ID   string  `json:"id"`
	Text string  `json:"text"`
	X    float64 `json:"x"`
	Y    float64 `json:"y"`
}

// MaxNoteBytes caps the text of one note.
const MaxNoteBytes = 4096

// Node is one block in a flow. Config holds the block's settings as given
// (canonical JSON per field); defaults are applied when the flow is built,
// not written back, so a document stays as its author wrote it.
type Node struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Name string `json:"name,omitempty"`
	// Disabled nodes stay in the document but are not built: a run
	// reaching one ends that branch there (see disabled.go).
	Disabled bool                       `json:"disabled,omitempty"`
	Config   map[string]json.RawMessage `json:"config,omitempty"`
	// LintIgnore lists lint check ids silenced on this node (sorted).
	LintIgnore []string `json:"lint_ignore,omitempty"`
	X          float64  `json:"x"`
	Y          float64  `json:"y"`
}

// Wire connects an output port of one node to the input of another.
type Wire struct {
	From string `json:"from"`
	Port string `json:"port"`
	To   string `json:"to"`
}

// Node returns the node with id, or nil.
func (f *Flow) Node(id string) *Node {
	for i := range f.Nodes {
		if f.Nodes[i].ID == id {
			return &f.Nodes[i]
		}
	}
	return nil
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidID reports whether s is usable as a flow or node id: 1-64 characters
// of letters, digits, '_', '.', '-', starting with a letter or digit.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// DecodeFlow parses a flow document strictly: unknown fields, duplicate
// object keys, trailing data, a wrong schema and structural mistakes
// (duplicate ids, bad ids) are errors that name the node and field. It does
// not check block types or config: Registry.Validate does, with the specs.
func DecodeFlow(data []byte) (*Flow, error) {
	if len(data) > MaxFlowBytes {
		return nil, ValidationErrors{verr("", "", "document is %d bytes, more than the %d allowed", len(data), MaxFlowBytes)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ValidationErrors{verr("", "", "empty document")}
	}
	if err := checkJSON(data); err != nil {
		node, field := nodePath(data, err.path)
		return nil, ValidationErrors{verr(node, field, "%s", err.msg)}
	}
	var doc struct {
		Schema      *string           `json:"schema"`
		ID          string            `json:"id"`
		Name        string            `json:"name"`
		Description string            `json:"description"`
		Nodes       []json.RawMessage `json:"nodes"`
		Wires       []json.RawMessage `json:"wires"`
		Notes       []json.RawMessage `json:"notes"`
	}
	if err := strictUnmarshal(data, &doc); err != nil {
		return nil, ValidationErrors{verr("", jsonField(err), "%s", jsonMsg(err))}
	}
	var errs ValidationErrors
	switch {
	case doc.Schema == nil:
		errs = append(errs, verr("", "schema", "missing; want %q", SchemaV1))
	case *doc.Schema != SchemaV1:
		errs = append(errs, verr("", "schema", "unknown schema %q; this flowd reads %q", *doc.Schema, SchemaV1))
	}
	if !ValidID(doc.ID) {
		errs = append(errs, verr("", "id", "flow id %q must be 1-64 letters, digits, '_', '.' or '-'", doc.ID))
	}
	f := &Flow{Schema: SchemaV1, ID: doc.ID, Name: doc.Name, Description: doc.Description,
		Nodes: make([]Node, 0, len(doc.Nodes)), Wires: make([]Wire, 0, len(doc.Wires))}
	seen := map[string]bool{}
	for i, raw := range doc.Nodes {
		var n Node
		if err := strictUnmarshal(raw, &n); err != nil {
			errs = append(errs, verr(nodeLabel(raw, i), jsonField(err), "%s", jsonMsg(err)))
			continue
		}
		switch {
		case !ValidID(n.ID):
			errs = append(errs, verr(nodeLabel(raw, i), "id", "node id %q must be 1-64 letters, digits, '_', '.' or '-'", n.ID))
			continue
		case seen[n.ID]:
			errs = append(errs, verr(n.ID, "id", "duplicate node id"))
			continue
		case n.Type == "":
			errs = append(errs, verr(n.ID, "type", "missing block type"))
		}
		seen[n.ID] = true
		for k, v := range n.Config {
			c, err := canonicalJSON(v)
			if err != nil {
				errs = append(errs, verr(n.ID, k, "%v", err))
				continue
			}
			n.Config[k] = c
		}
		if len(n.Config) == 0 {
			n.Config = nil
		}
		errs = append(errs, normalizeLintIgnore(&n)...)
		f.Nodes = append(f.Nodes, n)
	}
	for i, raw := range doc.Wires {
		var w Wire
		field := fmt.Sprintf("wires[%d]", i)
		if err := strictUnmarshal(raw, &w); err != nil {
			if f := jsonField(err); f != "" {
				field += "." + f
			}
			errs = append(errs, verr("", field, "%s", jsonMsg(err)))
			continue
		}
		f.Wires = append(f.Wires, w)
	}
	noteIDs := map[string]bool{}
	for i, raw := range doc.Notes {
		var n Note
		field := fmt.Sprintf("notes[%d]", i)
		if err := strictUnmarshal(raw, &n); err != nil {
			if f := jsonField(err); f != "" {
				field += "." + f
			}
			errs = append(errs, verr("", field, "%s", jsonMsg(err)))
			continue
		}
		switch {
		case !ValidID(n.ID):
			errs = append(errs, verr("", field+".id", "note id %q must be 1-64 letters, digits, '_', '.' or '-'", n.ID))
		case noteIDs[n.ID]:
			errs = append(errs, verr("", field+".id", "duplicate note id %q", n.ID))
		case len(n.Text) > MaxNoteBytes:
			errs = append(errs, verr("", field+".text", "note text is %d bytes, more than the %d allowed", len(n.Text), MaxNoteBytes))
		default:
			noteIDs[n.ID] = true
			f.Notes = append(f.Notes, n)
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return f, nil
}

// nodeLabel names a node that failed to decode: its id if one can be read,
// else its position.
func nodeLabel(raw json.RawMessage, i int) string {
	var probe struct {
		ID any `json:"id"`
	}
	if json.Unmarshal(raw, &probe) == nil {
		if s, ok := probe.ID.(string); ok && s != "" {
			return s
		}
	}
	return fmt.Sprintf("nodes[%d]", i)
}

// strictUnmarshal decodes one JSON value into the struct pointer v,
// refusing unknown fields and trailing data. encoding/json matches object
// keys to fields case-insensitively ("ID" fills "id"), so keys are first
// checked to be exactly a field's name.
func strictUnmarshal(data []byte, v any) error {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		var keys map[string]json.RawMessage
		if json.Unmarshal(data, &keys) == nil {
			allowed := jsonFields(reflect.TypeOf(v).Elem())
			for _, k := range slices.Sorted(maps.Keys(keys)) {
				if !slices.Contains(allowed, k) {
					return fmt.Errorf("json: unknown field %q", k)
				}
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// jsonFields lists the JSON member names of a struct type.
func jsonFields(t reflect.Type) []string {
	out := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// jsonField extracts the field a json error is about, if it says.
func jsonField(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field
	}
	msg := err.Error()
	if i := strings.Index(msg, "unknown field "); i >= 0 {
		return strings.Trim(msg[i+len("unknown field "):], `"`)
	}
	return ""
}

func jsonMsg(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("must be %s, not JSON %s", jsonKind(te.Type.Kind().String()), te.Value)
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if strings.HasPrefix(msg, "unknown field ") {
		return "unknown field"
	}
	return msg
}

func jsonKind(k string) string {
	switch k {
	case "float64", "float32":
		return "a number"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return "a " + k
}

// maxDepth bounds JSON nesting in documents and config values.
const maxDepth = 64

// jsonPathError is a problem checkJSON found, with where it is.
type jsonPathError struct {
	path string // "nodes[2].config.claims", "" for the document itself
	msg  string
}

func (e *jsonPathError) Error() string {
	if e.path == "" {
		return e.msg
	}
	return e.path + ": " + e.msg
}

// checkJSON walks the tokens of a JSON document and refuses duplicate
// object keys (encoding/json silently keeps the last), nesting deeper than
// maxDepth, and malformed JSON, saying where.
func checkJSON(data []byte) *jsonPathError {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		obj    bool
		keys   map[string]bool
		expect bool   // in an object: next token is a key
		key    string // in an object: the current member
		idx    int    // in an array: the current element
	}
	var stack []frame
	fail := func(format string, args ...any) *jsonPathError {
		var b strings.Builder
		for i, f := range stack {
			switch {
			case !f.obj:
				b.WriteString("[" + strconv.Itoa(f.idx) + "]")
			case f.expect:
				// between members: the path is the object itself
			default:
				if i > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			}
		}
		return &jsonPathError{path: b.String(), msg: fmt.Sprintf(format, args...)}
	}
	// done marks the end of one value in the enclosing frame.
	done := func() {
		if len(stack) == 0 {
			return
		}
		if top := &stack[len(stack)-1]; top.obj {
			top.expect = true
		} else {
			top.idx++
		}
	}
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) != 0 {
				return fail("unexpected end of JSON")
			}
			return nil
		}
		if err != nil {
			return fail("malformed JSON at byte %d: %s", dec.InputOffset(), strings.TrimPrefix(err.Error(), "json: "))
		}
		str, isStr := tok.(string)
		isKey := isStr && len(stack) > 0 && stack[len(stack)-1].obj && stack[len(stack)-1].expect
		if isStr && !validText(data[start:dec.InputOffset()], str) {
			// encoding/json would store U+FFFD in place of the bad bytes,
			// so the flow exported later would not be the one imported.
			if isKey {
				return fail("key %+q is not valid UTF-8", str)
			}
			return fail("not valid UTF-8")
		}
		// A '}' also arrives where a key could: it closes the object (below).
		if key := str; isKey {
			top := &stack[len(stack)-1]
			if top.keys[key] {
				return fail("duplicate key %q", key)
			}
			top.keys[key] = true
			top.expect = false
			top.key = key
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= maxDepth {
				return fail("JSON nested deeper than %d levels", maxDepth)
			}
			stack = append(stack, frame{obj: tok == json.Delim('{'), keys: map[string]bool{}, expect: true})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		done()
	}
}

// validText reports whether the JSON string literal in raw (with the
// separators around it) decoded to s without replacing anything: raw is
// valid UTF-8, and no \u escape named a lone UTF-16 surrogate (both
// become U+FFFD in s).
func validText(raw []byte, s string) bool {
	if !utf8.Valid(raw) {
		return false
	}
	if !strings.ContainsRune(s, utf8.RuneError) {
		return true
	}
	// Every U+FFFD in s must stand in raw as itself or as \ufffd.
	literal := bytes.Count(raw, []byte(string(utf8.RuneError)))
	for i := 0; i < len(raw)-1; i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] == 'u' && i+6 <= len(raw) && strings.EqualFold(string(raw[i+2:i+6]), "fffd") {
			literal++
		}
		i++ // skip the escaped character
	}
	return strings.Count(s, string(utf8.RuneError)) == literal
}

// nodePath splits a JSON path inside the nodes array ("nodes[2].config.x")
// into the node's label (its id if the document yields one) and the rest.
func nodePath(data []byte, path string) (node, field string) {
	rest, ok := strings.CutPrefix(path, "nodes[")
	if !ok {
		return "", path
	}
	num, field, ok := strings.Cut(rest, "]")
	i, err := strconv.Atoi(num)
	if !ok || err != nil {
		return "", path
	}
	field = strings.TrimPrefix(field, ".")
	var doc struct {
		Nodes []json.RawMessage `json:"nodes"`
	}
	if json.Unmarshal(data, &doc) == nil && i < len(doc.Nodes) {
		return nodeLabel(doc.Nodes[i], i), field
	}
	return fmt.Sprintf("nodes[%d]", i), field
}

// canonicalJSON re-encodes a JSON value compactly with sorted object keys,
// numbers kept as written, and no HTML escaping.
func canonicalJSON(raw json.RawMessage) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("malformed JSON value: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return marshalCompact(v)
}

func marshalCompact(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// EncodeFlow writes the canonical form of a flow: fixed member order, nodes
// in document order, wires sorted, config keys sorted, 2-space indent, no
// HTML escaping, a final newline. DecodeFlow(EncodeFlow(f)) == f, and
// EncodeFlow(DecodeFlow(b)) == b for any canonical b.
func EncodeFlow(f *Flow) ([]byte, error) {
	c := *f
	c.Schema = SchemaV1
	if c.Nodes == nil {
		c.Nodes = []Node{}
	}
	c.Wires = slices.Clone(f.Wires)
	if c.Wires == nil {
		c.Wires = []Wire{}
	}
	slices.SortFunc(c.Wires, func(a, b Wire) int {
		return cmpStrings(a.From, b.From, a.Port, b.Port, a.To, b.To)
	})
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("encode flow %q: %w", f.ID, err)
	}
	return buf.Bytes(), nil
}

func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}
