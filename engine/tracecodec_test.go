package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// goldenTrace is the trace the codec goldens hold: a failed run with a
// handled error, a nested message, a redacted value and an unfinished
// branch.
func goldenTrace() *Trace {
	return &Trace{
		ID: "0193a1b2c3d4-0001-abcdef01", Flow: "token", Version: 3, Trigger: "in",
		Started:  time.Date(2026, 11, 30, 12, 0, 0, 123456789, time.UTC),
		Duration: 1532000, Status: StatusError, Error: `node "sign": keyset "main" has no active key`,
		ErrorNode: "sign", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7",
		Steps: []Step{
			{Node: "in", Type: "http.in", Port: "out", Msg: map[string]any{
				"req": map[string]any{"method": "POST", "headers": map[string]any{"authorization": Redacted}},
			}},
			{Node: "check", Type: "jose.validate", Port: "error", Duration: 250000, Error: "token_expired",
				Msg: map[string]any{"error": map[string]any{"message": "token_expired", "node": "check"}, "n": 1.5}},
			{Node: "sign", Type: "jose.sign", Duration: 82000, Error: `keyset "main" has no active key`},
		},
	}
}

// TestTraceGolden: EncodeTrace writes testdata/trace/v1.json (regenerate
// with -update and review the diff: a change there is a format change).
func TestTraceGolden(t *testing.T) {
	data, err := EncodeTrace(goldenTrace())
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := json.Indent(&got, data, "", "  "); err != nil {
		t.Fatal(err)
	}
	got.WriteByte('\n')
	path := filepath.Join("testdata", "trace", "v1.json")
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("EncodeTrace differs from %s (run with -update if the change is meant):\n%s", path, got.Bytes())
	}
	if !bytes.HasPrefix(data, []byte(`{"v":1,`)) {
		t.Errorf("encoding does not start with its version: %.40s", data)
	}
}

// TestDecodeTrace: every stored version decodes to the same trace; v0.json
// is the unversioned form databases hold from before the codec and is
// never regenerated.
func TestDecodeTrace(t *testing.T) {
	want := goldenTrace()
	// JSON numbers decode as float64.
	want.Steps[1].Msg.(map[string]any)["n"] = 1.5
	for _, name := range []string{"v0.json", "v1.json"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "trace", name))
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeTrace(data)
			if err != nil {
				t.Fatalf("DecodeTrace: %v", err)
			}
			if !reflect.DeepEqual(got.Steps, want.Steps) {
				t.Errorf("steps:\n got %#v\nwant %#v", got.Steps, want.Steps)
			}
			got.Steps, got.stepBuf = nil, [4]Step{}
			w := *want
			w.Steps = nil
			if name == "v0.json" {
				// Written before runs were traced: no trace ids.
				w.TraceID, w.SpanID = "", ""
			}
			if !reflect.DeepEqual(*got, w) {
				t.Errorf("trace:\n got %+v\nwant %+v", *got, w)
			}
		})
	}
}

func TestDecodeTraceErrors(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantIs  error
		wantMsg string
	}{
		{"newer version", `{"v":2,"id":"r1","steps":[]}`, ErrTraceVersion, "decode trace r1: version 2: unknown trace encoding version (this flowd reads up to 1)"},
		{"negative version", `{"v":-1,"id":"r1"}`, ErrTraceVersion, "version -1"},
		{"not JSON", `{"id":`, nil, "decode trace: unexpected end of JSON input"},
		{"wrong type", `{"id":"r1","duration_ns":"slow"}`, nil, "decode trace: json: cannot unmarshal string"},
		{"null", `null`, nil, "decode trace: null"},
		{"array", `[]`, nil, "decode trace: json: cannot unmarshal array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeTrace([]byte(tt.data))
			if err == nil || got != nil {
				t.Fatalf("DecodeTrace = %v, %v; want an error", got, err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
		})
	}
}

// TestTraceRoundTrip: a trace the runtime records survives the codec.
func TestTraceRoundTrip(t *testing.T) {
	in := goldenTrace()
	data, err := EncodeTrace(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeTrace(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := EncodeTrace(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, again) {
		t.Errorf("encode(decode(x)) != x:\n%s\n%s", data, again)
	}
	if empty, err := DecodeTrace([]byte(`{"v":1,"id":"r"}`)); err != nil || empty.Steps == nil {
		t.Errorf("a trace without steps decodes to %+v, %v; want empty steps", empty, err)
	}
}
