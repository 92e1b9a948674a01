package engine

import (
	"errors"
	"strings"
	"testing"
)

// TestNotes: notes decode strictly, keep their order, and a document
// without notes encodes with no "notes" member at all.
func TestNotes(t *testing.T) {
	const head = `{"schema": "flowd/v1", "id": "f", "name": "", "nodes": [], "wires": [], "notes": `
	for _, tc := range []struct {
		name, notes, field string
	}{
		{"unknown member", `[{"id": "a", "text": "x", "color": "red"}]`, "notes[0].color"},
		{"bad id", `[{"id": "a b", "text": "x"}]`, "notes[0].id"},
		{"missing id", `[{"text": "x"}]`, "notes[0].id"},
		{"duplicate id", `[{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]`, "notes[1].id"},
		{"text not a string", `[{"id": "a", "text": 3}]`, "notes[0].text"},
		{"text too long", `[{"id": "a", "text": "` + strings.Repeat("x", MaxNoteBytes+1) + `"}]`, "notes[0].text"},
		{"not a list", `{"id": "a"}`, "notes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeFlow([]byte(head + tc.notes + `}`))
			var ve ValidationErrors
			if !errors.As(err, &ve) || len(ve) == 0 {
				t.Fatalf("err %v, want a validation error", err)
			}
			if ve[0].Field != tc.field {
				t.Errorf("field %q, want %q (%v)", ve[0].Field, tc.field, err)
			}
		})
	}
	f, err := DecodeFlow([]byte(head + `[{"id": "b", "text": "second", "x": 1, "y": 2}, {"id": "a", "text": "first"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Notes) != 2 || f.Notes[0].ID != "b" || f.Notes[1].Text != "first" {
		t.Errorf("notes %+v", f.Notes)
	}
	f.Notes = nil
	enc, err := EncodeFlow(f)
	if err != nil || strings.Contains(string(enc), "notes") {
		t.Errorf("a flow without notes encodes %s (%v)", enc, err)
	}
}
