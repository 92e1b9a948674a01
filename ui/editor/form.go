package editor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/ui/api"
)

// FormView is the side panel of one node.
type FormView struct {
	NodeID      string
	Type        string
	Title       string
	Description string
	Name        string
	Unknown     bool // the block type is not registered
	Disabled    bool // the node is kept but skipped at run time
	Fields      []FieldView
	Errors      []FieldError // node-level problems (no config field)
	// Problems are all of the node's problems, field ones labelled, for
	// the list at the top of the panel.
	Problems []string
}

// FieldView is one config field as its widget shows it.
type FieldView struct {
	Name     string
	Label    string
	Kind     string
	Help     string
	Required bool
	Secret   bool
	Enum     []string
	Set      bool     // the config holds a value
	Value    string   // scalar kinds and json: the text to edit
	Bool     bool     // bool: the effective value
	List     []string // strings
	Pairs    []Pair   // exprmap (sorted by name) and rules (in order)
	Default  string   // shown as a placeholder
	Errors   []FieldError
	// Ref is the kind of stored thing the field names; Choices are the
	// existing ones (nil: the list could not be read, a text box instead).
	Ref     string
	Choices []string
	// RequiredIf is "field=value": required while that field has value;
	// RequiredNow says whether it has it in this node's config.
	RequiredIf  string
	RequiredNow bool
	// TextDefault: new exprmap entries start as text, not expressions
	// (header values).
	TextDefault bool
}

// Pair is a name and an expression (exprmap entry or rule). Text is set
// when the expression is a plain string literal: the panel shows it as
// text (Literal) without quotes until switched to an expression.
type Pair struct {
	Name, Expr string
	Text       bool
	Literal    string
}

// FieldError is a problem with a field; expressions carry line and column.
type FieldError struct {
	Line, Column int
	Msg          string
}

func (e FieldError) String() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
	}
	return e.Msg
}

// BuildForm turns a node, its spec and the document's problems into a view.
// choices lists the existing stored things per Ref kind (missing: unknown).
func BuildForm(n engine.Node, spec engine.Spec, known bool, probs []api.Problem, choices map[engine.Ref][]string) FormView {
	fv := FormView{NodeID: n.ID, Type: n.Type, Name: n.Name, Title: spec.Title, Description: spec.Description, Unknown: !known, Disabled: n.Disabled}
	if !known {
		fv.Title = n.Type
	}
	byField := map[string][]FieldError{}
	for _, p := range probs {
		if p.Node != n.ID {
			continue
		}
		byField[p.Field] = append(byField[p.Field], FieldError{p.Line, p.Column, p.Message})
	}
	names := map[string]bool{}
	labels := map[string]string{}
	for _, f := range spec.Fields {
		names[f.Name] = true
		fld := buildField(f, n.Config[f.Name], byField[f.Name])
		if f.Ref != "" {
			fld.Ref = string(f.Ref)
			if c, ok := choices[f.Ref]; ok {
				fld.Choices = append([]string{}, c...)
			}
		}
		if f.RequiredIf != "" {
			fld.RequiredIf = f.RequiredIf
			other, want, _ := strings.Cut(f.RequiredIf, "=")
			fld.RequiredNow = effective(spec, n, other) == want
		}
		fv.Fields = append(fv.Fields, fld)
		labels[f.Name] = fld.Label
	}
	for _, p := range probs {
		if p.Node != n.ID {
			continue
		}
		msg := FieldError{p.Line, p.Column, p.Message}.String()
		if l, ok := labels[p.Field]; ok {
			msg = l + ": " + msg
		} else if p.Field != "" {
			msg = p.Field + ": " + msg
		}
		fv.Problems = append(fv.Problems, msg)
	}
	for _, field := range slices.Sorted(mapsKeys(byField)) {
		if !names[field] {
			for _, e := range byField[field] {
				if field != "" {
					e.Msg = field + ": " + e.Msg
				}
				fv.Errors = append(fv.Errors, e)
			}
		}
	}
	return fv
}

// effective is a field's configured value, or its default, as text.
func effective(spec engine.Spec, n engine.Node, field string) string {
	var s string
	if raw, ok := n.Config[field]; ok && json.Unmarshal(raw, &s) == nil {
		return s
	}
	for _, f := range spec.Fields {
		if f.Name == field {
			s, _ := f.Default.(string)
			return s
		}
	}
	return ""
}

// humanDuration writes a duration as people do: "48h", not "48h0m0s".
// Text that is not a duration is returned as it is.
func humanDuration(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil || s == "" {
		return s
	}
	return engine.FormatDuration(d)
}

// stringLiteral returns the text of an expression that is one
// double-quoted string literal, as the panel shows it in text mode.
func stringLiteral(expr string) (string, bool) {
	e := strings.TrimSpace(expr)
	if len(e) < 2 || e[0] != '"' || e[len(e)-1] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal([]byte(e), &s) != nil {
		return "", false
	}
	return s, true
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func buildField(f engine.Field, raw json.RawMessage, errs []FieldError) FieldView {
	label := f.Label
	if label == "" {
		label = f.Name
	}
	v := FieldView{Name: f.Name, Label: label, Kind: string(f.Kind), Help: f.Help, Required: f.Required,
		Secret: f.Secret, Enum: f.Enum, Set: len(raw) > 0, Errors: errs}
	if f.Default != nil {
		if s, ok := f.Default.(string); ok {
			v.Default = s
		} else if b, err := json.Marshal(f.Default); err == nil {
			v.Default = string(b)
		}
	}
	switch f.Kind {
	case engine.KindBool:
		var b bool
		if v.Set {
			v.Bool = json.Unmarshal(raw, &b) == nil && b
		} else {
			v.Bool = f.Default == true
		}
	case engine.KindStrings:
		if json.Unmarshal(raw, &v.List) != nil && v.Set {
			v.Value = string(raw)
		}
		if l, ok := f.Default.([]string); ok {
			v.Default = strings.Join(l, "\n")
		}
	case engine.KindExprMap:
		var m map[string]string
		if json.Unmarshal(raw, &m) == nil {
			for _, k := range slices.Sorted(mapsKeys(m)) {
				p := Pair{Name: k, Expr: m[k]}
				p.Literal, p.Text = stringLiteral(m[k])
				v.Pairs = append(v.Pairs, p)
			}
		}
		v.TextDefault = strings.Contains(f.Name, "header")
	case engine.KindRules:
		var rules []struct {
			Name string `json:"name"`
			Expr string `json:"expr"`
		}
		if json.Unmarshal(raw, &rules) == nil {
			for _, r := range rules {
				v.Pairs = append(v.Pairs, Pair{Name: r.Name, Expr: r.Expr})
			}
		}
	case engine.KindJSON:
		if v.Set {
			var buf bytes.Buffer
			if json.Indent(&buf, raw, "", "  ") == nil {
				v.Value = buf.String()
			} else {
				v.Value = string(raw)
			}
		}
	default:
		var s string
		if json.Unmarshal(raw, &s) == nil {
			v.Value = s
		} else if v.Set {
			v.Value = string(raw) // numbers, or a wrong type the errors explain
		}
	}
	if f.Kind == engine.KindDuration {
		v.Value = humanDuration(v.Value)
		v.Default = humanDuration(v.Default)
	}
	return v
}

// form renders the side panel of one node of the posted document, with
// the document's validation problems next to the fields.
func (h *Handler) form(w http.ResponseWriter, r *http.Request) {
	body, err := api.ReadBody(w, r, engine.MaxFlowBytes+1024)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var req struct {
		Flow json.RawMessage `json:"flow"`
		Node string          `json:"node"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		h.fail(w, r, api.BadRequest("body must be {\"flow\": document, \"node\": id}"))
		return
	}
	var loose engine.Flow
	if err := json.Unmarshal(req.Flow, &loose); err != nil {
		h.fail(w, r, api.BadRequest("flow: %v", err))
		return
	}
	n := loose.Node(req.Node)
	if n == nil {
		h.fail(w, r, api.Errorf(http.StatusNotFound, "not_found", "no such node in the document"))
		return
	}
	_, verr := h.app.Validate(r.Context(), req.Flow)
	spec, known := h.opts.Registry.Spec(n.Type)
	choices := map[engine.Ref][]string{}
	for _, f := range spec.Fields {
		if _, done := choices[f.Ref]; f.Ref == "" || done || h.opts.Refs == nil {
			continue
		}
		list, err := h.opts.Refs(r.Context(), f.Ref)
		if err != nil {
			h.log.Warn("list for a picker", "ref", f.Ref, "err", err)
			continue // the field falls back to a text box
		}
		choices[f.Ref] = list
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := Form(BuildForm(*n, spec, known, api.Problems(verr), choices)).Render(r.Context(), w); err != nil {
		h.log.Error("render form", "err", err)
	}
}
