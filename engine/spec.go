package engine

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is the type of a config field. It drives parsing at deploy, the
// editor's form widget, and the flow JSON Schema.
type Kind string

const (
	KindString   Kind = "string"   // one line of text
	KindText     Kind = "text"     // multi-line text
	KindInt      Kind = "int"      // whole number
	KindNumber   Kind = "number"   // any number
	KindBool     Kind = "bool"     // true/false
	KindDuration Kind = "duration" // Go duration text: "90s", "15m", "48h"
	KindEnum     Kind = "enum"     // one of Field.Enum
	KindStrings  Kind = "strings"  // list of strings
	KindExpr     Kind = "expr"     // an expr-lang expression, compiled at deploy
	KindExprMap  Kind = "exprmap"  // object of name -> expression (order irrelevant)
	KindRules    Kind = "rules"    // ordered list of {"name","expr"}
	KindJSON     Kind = "json"     // any JSON value
	KindSecret   Kind = "secret"   // the name of a stored secret, never the secret itself
)

// Ref is the kind of stored thing a string field names. The editor offers
// a picker of the existing ones (the current value preselected); the value
// stays a plain name, so parsing, the JSON Schema and exports are as for
// any string field.
type Ref string

const (
	RefKeyset Ref = "keyset" // a jose keyset
	RefClient Ref = "client" // an OAuth client id
	RefUser   Ref = "user"   // a username
	RefFlow   Ref = "flow"   // a flow id
	RefRoute  Ref = "route"  // an http.in route ("GET /path")
)

var refs = []Ref{RefKeyset, RefClient, RefUser, RefFlow, RefRoute}

var kinds = []Kind{KindString, KindText, KindInt, KindNumber, KindBool, KindDuration, KindEnum,
	KindStrings, KindExpr, KindExprMap, KindRules, KindJSON, KindSecret}

// Field describes one config field of a block.
type Field struct {
	Name     string   `json:"name"`
	Label    string   `json:"label,omitempty"`
	Kind     Kind     `json:"kind"`
	Required bool     `json:"required,omitempty"`
	Default  any      `json:"default,omitempty"`
	Enum     []string `json:"enum,omitempty"`
	// Secret marks a field whose value is sensitive; it is redacted in
	// traces, logs and API answers.
	Secret bool   `json:"secret,omitempty"`
	Help   string `json:"help,omitempty"`
	// Min and Max bound int, number and duration fields (durations as
	// text, e.g. "1s"); zero values mean unbounded.
	Min string `json:"min,omitempty"`
	Max string `json:"max,omitempty"`
	// Result constrains an expression's type at compile time: "bool",
	// "string", "number" or "" for any.
	Result string `json:"result,omitempty"`
	// ExprEnv, for expression kinds, replaces the standard environment
	// (msg, env, flow, now) with a block-specific one: a struct value whose
	// fields carry `expr:"name"` tags. Evaluate with Expr.Run.
	ExprEnv any `json:"-"`
	// Ref, on a string field, names the kind of stored thing its value
	// names (a keyset, a client, ...), for the editor's picker.
	Ref Ref `json:"ref,omitempty"`
	// RequiredIf marks a field required only when another field of the
	// block has a value: "field=value" (the keyset of jose.validate when
	// its key source is "keyset"). The factory enforces it; the editor
	// marks the field.
	RequiredIf string `json:"required_if,omitempty"`
	// Ports marks a strings or rules field whose entries (the strings, or
	// the rules' names) are output ports of the node, as the spec's
	// DynamicOutputs derives them: the editor wires them without asking
	// the server.
	Ports bool `json:"ports,omitempty"`
}

// Spec describes a block type: what it is, its config fields and its ports.
type Spec struct {
	Type        string  `json:"type"` // namespaced: "core.switch", "jose.sign"
	Title       string  `json:"title"`
	Category    string  `json:"category"`
	Description string  `json:"description"`
	Trigger     bool    `json:"trigger,omitempty"` // starts runs; has no input
	Fields      []Field `json:"fields"`
	// Outputs are the block's output ports. Non-trigger blocks also get an
	// implicit "error" port. A block with no outputs ends a branch.
	Outputs []string `json:"outputs"`
	// DynamicOutputs, if set, adds ports derived from the node's config
	// (core.switch: one per rule). It gets the parsed, valid config.
	DynamicOutputs func(c *Config) []string `json:"-"`
	// Sensitive lists message keys this block writes that traces must
	// redact, in addition to the built-in list (token, secret, ...).
	Sensitive []string `json:"-"`
	// Bounded declares that Process adds a bounded amount to the message,
	// whatever the message holds (http.respond adds nothing, jose.jwks one
	// key set, jose.validate at most its token's size limit). In runs without snapshots the engine
	// then skips re-measuring the message against Limits.MaxMessageBytes
	// after this block, a walk of the whole message. Blocks that evaluate
	// user expressions into the message, or copy in outside data of
	// unbounded size, must leave it false.
	Bounded bool `json:"-"`
	// LazyMessage declares that Process reads the message only through
	// Expr.Eval and engine.MsgPath (and writes it by plain assignment or
	// Exec.PutLazy), so Lazy values a trigger or an earlier block put in
	// it need not be built before this block runs. Blocks that read message values directly must leave it false:
	// the engine then builds them first.
	LazyMessage bool `json:"-"`
}

// ErrorPort is the implicit port a failed block sends its message out of.
const ErrorPort = "error"

// Block is a built, ready block instance. Process handles one message and
// returns the output port to send it on ("" to end the branch). msg is the
// block's own copy: mutate it freely. Process must honour ctx.
type Block interface {
	Process(ctx context.Context, x *Exec, msg Msg) (port string, err error)
}

// BlockFunc adapts a function to Block.
type BlockFunc func(ctx context.Context, x *Exec, msg Msg) (string, error)

func (f BlockFunc) Process(ctx context.Context, x *Exec, msg Msg) (string, error) {
	return f(ctx, x, msg)
}

// Trigger is implemented by instances of trigger blocks. Start is called
// when the flow version deploys (after every node is built) and Stop when
// it is replaced or undeployed. During a redeploy the new version starts
// before the old one stops, so a trigger that claims a shared resource
// (an HTTP route) must accept a claim from the same flow.
type Trigger interface {
	Start(ctx context.Context, t *TriggerContext) error
	Stop(ctx context.Context) error
}

// Closer is an optional hook: Close runs once the version is replaced and
// its runs in flight have finished.
type Closer interface {
	Close() error
}

// Setup is what a factory gets to build one node.
type Setup struct {
	Ctx    context.Context
	FlowID string
	NodeID string
	// Version is the flow version being built (0 when only validating).
	Version int
	Config  *Config
	Logger  *slog.Logger
	// Limits of the runtime, for blocks that check them at deploy.
	Limits Limits
	// Observer is the runtime's observer (never nil; NopObserver when
	// validating). A block package type-asserts it to its own event
	// interface at deploy; see Observer.
	Observer Observer
	// Services are the host's shared services (Options.Services); a
	// factory reaches them with Service. nil when the runtime has none.
	Services *Services
	// Validating is true when the node is built only to check it
	// (Runtime.Validate, version 0): the block is closed right after,
	// never started or run. A block package whose services are missing
	// may then still check its config (a bare registry, `flowd validate`).
	Validating bool
	// Tracer is the runtime's tracer, nil when runs are not traced (and
	// when validating). http.in and http.request pass trace context
	// through it; see Tracer.
	Tracer Tracer
}

// Errorf returns a deploy error naming this node and field.
func (s *Setup) Errorf(field, format string, args ...any) error {
	return ValidationErrors{verr(s.NodeID, field, format, args...)}
}

// Factory turns a validated config into a ready instance.
type Factory func(s *Setup) (Block, error)

type entry struct {
	spec    Spec
	factory Factory
}

// Registry holds block types. It is a value: an embedder builds one from the
// block packages it wants plus its own; there is no global registry.
type Registry struct {
	types  map[string]*entry
	checks map[string]Check // lint checks block packages add (lint.go)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{types: map[string]*entry{}} }

var typePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)
var fieldPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
var portPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)

// Register adds a block type. A duplicate, empty or non-namespaced type, a
// nil factory or an inconsistent field list is an error.
func (r *Registry) Register(spec Spec, factory Factory) error {
	if !typePattern.MatchString(spec.Type) {
		return fmt.Errorf("register block type %q: type must be namespaced like \"core.switch\"", spec.Type)
	}
	if _, dup := r.types[spec.Type]; dup {
		return fmt.Errorf("register block type %q: %w", spec.Type, ErrDuplicateType)
	}
	if factory == nil {
		return fmt.Errorf("register block type %q: nil factory", spec.Type)
	}
	seen := map[string]bool{}
	for _, f := range spec.Fields {
		if !fieldPattern.MatchString(f.Name) || seen[f.Name] {
			return fmt.Errorf("register block type %q: bad or duplicate field name %q", spec.Type, f.Name)
		}
		seen[f.Name] = true
		if !slices.Contains(kinds, f.Kind) {
			return fmt.Errorf("register block type %q: field %q has unknown kind %q", spec.Type, f.Name, f.Kind)
		}
		if f.Kind == KindEnum && len(f.Enum) == 0 {
			return fmt.Errorf("register block type %q: enum field %q lists no values", spec.Type, f.Name)
		}
		if err := checkFieldSpec(f); err != nil {
			return fmt.Errorf("register block type %q: field %q: %v", spec.Type, f.Name, err)
		}
	}
	for _, f := range spec.Fields {
		if f.Ref != "" && (f.Kind != KindString || !slices.Contains(refs, f.Ref)) {
			return fmt.Errorf("register block type %q: field %q: ref %q needs a string field and one of %v", spec.Type, f.Name, f.Ref, refs)
		}
		if f.Ports && (spec.DynamicOutputs == nil || (f.Kind != KindStrings && f.Kind != KindRules)) {
			return fmt.Errorf("register block type %q: field %q: ports needs a strings or rules field and DynamicOutputs", spec.Type, f.Name)
		}
		if f.RequiredIf != "" {
			other, _, ok := strings.Cut(f.RequiredIf, "=")
			if !ok || other == f.Name || !seen[other] {
				return fmt.Errorf("register block type %q: field %q: required_if %q must be \"field=value\" naming another field", spec.Type, f.Name, f.RequiredIf)
			}
		}
	}
	for i, p := range spec.Outputs {
		if !portPattern.MatchString(p) || (p == ErrorPort && !spec.Trigger) || slices.Contains(spec.Outputs[:i], p) {
			return fmt.Errorf("register block type %q: bad or duplicate output port %q", spec.Type, p)
		}
	}
	// The registry keeps its own copies: a caller reusing its slices must
	// not change a registered type.
	spec.Fields = slices.Clone(spec.Fields)
	spec.Outputs = slices.Clone(spec.Outputs)
	spec.Sensitive = slices.Clone(spec.Sensitive)
	if spec.Fields == nil {
		spec.Fields = []Field{}
	}
	if spec.Outputs == nil {
		spec.Outputs = []string{}
	}
	r.types[spec.Type] = &entry{spec: spec, factory: factory}
	return nil
}

// checkFieldSpec checks what Register can about one field beyond its name
// and kind: bounds that parse, a known result type, and a default that
// parses and, for expressions, compiles.
func checkFieldSpec(f Field) error {
	for _, b := range []string{f.Min, f.Max} {
		if b == "" {
			continue
		}
		var err error
		switch f.Kind {
		case KindInt, KindNumber:
			_, err = strconv.ParseFloat(b, 64)
		case KindDuration:
			_, err = time.ParseDuration(b)
		default:
			err = fmt.Errorf("kind %s takes no bounds", f.Kind)
		}
		if err != nil {
			return fmt.Errorf("bad bound %q: %v", b, err)
		}
	}
	switch f.Result {
	case "", "bool", "string", "number":
	default:
		return fmt.Errorf("unknown expression result %q", f.Result)
	}
	if f.Default == nil {
		return nil
	}
	v, err := parseField(f, f.Default)
	if err != nil {
		return fmt.Errorf("default: %v", err)
	}
	if _, errs := compileField(f, v, "", &compileEnv{}); errs != nil {
		return fmt.Errorf("default: %v", errs)
	}
	return nil
}

// MustRegister is Register for start-up code: it panics on a programmer error.
func (r *Registry) MustRegister(spec Spec, factory Factory) {
	if err := r.Register(spec, factory); err != nil {
		panic(err)
	}
}

// Spec returns the spec of a block type.
func (r *Registry) Spec(typ string) (Spec, bool) {
	e, ok := r.types[typ]
	if !ok {
		return Spec{}, false
	}
	return e.spec, true
}

// Specs returns every spec sorted by category then type.
func (r *Registry) Specs() []Spec {
	out := make([]Spec, 0, len(r.types))
	for _, e := range r.types {
		out = append(out, e.spec)
	}
	slices.SortFunc(out, func(a, b Spec) int { return cmpStrings(a.Category, b.Category, a.Type, b.Type) })
	return out
}

// Ports returns the output ports of a node given its parsed config,
// including the implicit error port.
func (s *Spec) Ports(c *Config) []string {
	ports := slices.Clone(s.Outputs)
	if s.DynamicOutputs != nil && c != nil {
		for _, p := range s.DynamicOutputs(c) {
			if !slices.Contains(ports, p) {
				ports = append(ports, p)
			}
		}
	}
	if !s.Trigger {
		ports = append(ports, ErrorPort)
	}
	return ports
}

// IsSecretField reports whether a node's field is marked secret in its spec.
func (r *Registry) IsSecretField(typ, field string) bool {
	e, ok := r.types[typ]
	if !ok {
		return false
	}
	for _, f := range e.spec.Fields {
		if f.Name == field {
			return f.Secret
		}
	}
	return false
}

func (s *Spec) field(name string) (Field, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}
