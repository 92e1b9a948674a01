package editor

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/ui/api"
)

func render(t *testing.T, v FormView) *goquery.Document {
	t.Helper()
	var buf bytes.Buffer
	if err := Form(v).Render(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestFieldWidgets renders every field kind with a value and an error and
// checks the widget, the value it shows, and the error next to it.
func TestFieldWidgets(t *testing.T) {
	tests := []struct {
		name   string
		field  engine.Field
		raw    string
		errs   []FieldError
		widget string // selector inside the field, relative
		value  string // widget value (attribute value, text, or "checked")
		errTxt string
	}{
		{"string", engine.Field{Name: "path", Kind: engine.KindString}, `"/a<b>"`, nil, `input[type=text][data-testid=input-path]`, "/a<b>", ""},
		{"text", engine.Field{Name: "note", Kind: engine.KindText}, `"two\nlines"`, nil, `textarea[data-testid=input-note]`, "two\nlines", ""},
		{"int", engine.Field{Name: "status", Kind: engine.KindInt}, `401`, []FieldError{{Msg: "too big"}}, `input[type=number][step="1"]`, "401", "too big"},
		{"number", engine.Field{Name: "ratio", Kind: engine.KindNumber}, `0.5`, nil, `input[type=number][step=any]`, "0.5", ""},
		{"bool", engine.Field{Name: "catch_up", Kind: engine.KindBool}, `true`, nil, `input[type=checkbox]`, "checked", ""},
		{"duration", engine.Field{Name: "ttl", Kind: engine.KindDuration}, `"15m"`, []FieldError{{Msg: "bad duration"}}, `input[type=text][data-testid=input-ttl]`, "15m", "bad duration"},
		{"enum", engine.Field{Name: "method", Kind: engine.KindEnum, Enum: []string{"GET", "POST"}}, `"POST"`, nil, `select option[selected]`, "POST", ""},
		{"strings", engine.Field{Name: "algs", Kind: engine.KindStrings}, `["RS256","ES256"]`, nil, `textarea[data-testid=input-algs]`, "RS256\nES256", ""},
		{"expr", engine.Field{Name: "body", Kind: engine.KindExpr}, `"msg.a +"`, []FieldError{{Line: 1, Column: 7, Msg: "unexpected end"}}, `textarea.fe-code`, "msg.a +", "line 1, column 7: unexpected end"},
		{"exprmap", engine.Field{Name: "headers", Kind: engine.KindExprMap}, `{"b":"2","a":"1"}`, nil, `[data-testid=pair-headers-0] [data-pair-name]`, "a", ""},
		{"rules", engine.Field{Name: "rules", Kind: engine.KindRules}, `[{"name":"z","expr":"true"},{"name":"a","expr":"false"}]`, nil, `[data-testid=pair-rules-0] [data-pair-name]`, "z", ""},
		{"json", engine.Field{Name: "payload", Kind: engine.KindJSON}, `{"a":[1,2]}`, nil, `textarea[data-testid=input-payload]`, "{\n  \"a\": [\n    1,\n    2\n  ]\n}", ""},
		{"secret", engine.Field{Name: "client_secret", Kind: engine.KindSecret}, `"prod-secret"`, nil, `input[type=text][autocomplete=off]`, "prod-secret", ""},
		{"secret-flag", engine.Field{Name: "password", Kind: engine.KindString, Secret: true}, `"x"`, nil, `input[type=password]`, "x", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fv := buildField(tc.field, json.RawMessage(tc.raw), tc.errs)
			doc := render(t, FormView{NodeID: "n1", Type: "x.y", Title: "T", Fields: []FieldView{fv}})
			field := doc.Find(`[data-testid="field-` + tc.field.Name + `"]`)
			if field.Length() != 1 {
				t.Fatalf("field wrapper: found %d", field.Length())
			}
			if got := field.AttrOr("data-kind", ""); got != string(tc.field.Kind) {
				t.Errorf("data-kind = %q, want %q", got, tc.field.Kind)
			}
			if got := field.AttrOr("data-set", ""); got != "true" {
				t.Errorf("data-set = %q", got)
			}
			w := field.Find(tc.widget)
			if w.Length() == 0 {
				t.Fatalf("widget %s missing in %s", tc.widget, must(field.Html()))
			}
			w = w.First()
			var got string
			switch {
			case tc.value == "checked":
				if _, ok := w.Attr("checked"); ok {
					got = "checked"
				}
			case goquery.NodeName(w) == "textarea" || goquery.NodeName(w) == "option":
				got = w.Text()
			default:
				got = w.AttrOr("value", "")
			}
			if got != tc.value {
				t.Errorf("value = %q, want %q", got, tc.value)
			}
			errs := field.Find(`[data-testid="errors-` + tc.field.Name + `"] li`)
			if tc.errTxt == "" && errs.Length() != 0 {
				t.Errorf("unexpected errors %q", errs.Text())
			}
			if tc.errTxt != "" && strings.TrimSpace(errs.Text()) != tc.errTxt {
				t.Errorf("errors = %q, want %q", errs.Text(), tc.errTxt)
			}
		})
	}
}

func must(s string, _ error) string { return s }

// TestBuildFormErrors: problems of the node land on their field; others
// (unknown fields) on the node; other nodes' problems are dropped.
func TestBuildFormErrors(t *testing.T) {
	spec := engine.Spec{Type: "x.y", Title: "XY", Fields: []engine.Field{{Name: "a", Kind: engine.KindExpr, Required: true}}}
	n := engine.Node{ID: "n1", Type: "x.y", Name: "<b>name</b>"}
	probs := []api.Problem{
		{Node: "n1", Field: "a", Line: 2, Column: 3, Message: "bad"},
		{Node: "n1", Field: "zzz", Message: "unknown field"},
		{Node: "other", Field: "a", Message: "not mine"},
	}
	doc := render(t, BuildForm(n, spec, true, probs, nil))
	if got := doc.Find(`[data-testid=errors-a] li`).Text(); got != "line 2, column 3: bad" {
		t.Errorf("field error = %q", got)
	}
	if got := doc.Find(`[data-testid=node-errors] li`).Text(); got != "zzz: unknown field" {
		t.Errorf("node error = %q", got)
	}
	if got := doc.Find(`[data-testid=node-name]`).AttrOr("value", ""); got != "<b>name</b>" {
		t.Errorf("name = %q", got)
	}
	if doc.Find("b").Length() != 0 {
		t.Error("node name was not escaped")
	}
	if got := doc.Find(`[data-testid=form-title]`).Text(); got != "XY" {
		t.Errorf("title = %q", got)
	}
	unknown := render(t, BuildForm(engine.Node{ID: "u", Type: "no.such"}, engine.Spec{}, false, nil, nil))
	if unknown.Find(`[data-testid=unknown-type]`).Length() != 1 {
		t.Error("unknown type not flagged")
	}
}
