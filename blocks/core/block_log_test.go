package core

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

func TestLogNeverPrintsSecrets(t *testing.T) {
	const (
		bearer   = "Bearer abc123def456ghi789"
		jwt      = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbm4iLCJhdWQiOiJhcGkifQ.MEUCIQDsig-nature_value"
		password = "hunter2-correct-horse"
	)
	// Pieces that must never appear anywhere in the log output.
	leaks := []string{"abc123def456ghi789", "eyJhbGci", "eyJzdWIi", "MEUCIQDsig", password, "xyz-987654"}
	in := func() engine.Msg {
		return engine.Msg{
			"authorization": bearer,
			"note":          jwt,
			"password":      password,
			"user":          "ann",
			"headers":       map[string]string{"Authorization": "Basic xyz-987654", "Accept": "*/*"},
			"nested":        map[string]any{"id_token": jwt, "items": []any{jwt, "plain"}},
		}
	}
	tests := []struct {
		name      string
		level     string
		message   string
		wantLevel string
		wantText  string
	}{
		{name: "default text", level: "info",
			wantLevel: "INFO", wantText: defaultLogText},
		{name: "bearer header in the text", level: "warn", message: `"auth=" + msg.authorization`,
			wantLevel: "WARN", wantText: "auth=[redacted]"},
		{name: "jwt and password in the text", level: "error",
			message:   `"user " + msg.user + " pw " + msg.password + " token " + msg.note`,
			wantLevel: "ERROR", wantText: "user ann pw [redacted] token [redacted]"},
		{name: "header map value", level: "debug", message: `"h: " + msg.headers.Authorization`,
			wantLevel: "DEBUG", wantText: "h: [redacted]"},
		{name: "whole message as text", level: "info", message: `toJSON(msg)`,
			wantLevel: "INFO"},
		{name: "token written into the expression", level: "info",
			message:   `"x ` + jwt + ` y"`,
			wantLevel: "INFO", wantText: "x [redacted] y"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf enginetest.LogBuffer
			logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			rt := newRuntime(t, engine.Options{Logger: logger})
			cfg := map[string]any{"level": tc.level}
			if tc.message != "" {
				cfg["message"] = tc.message
			}
			enginetest.Deploy(t, rt, manualFlow(t, "f", enginetest.Node{ID: "log", Type: "core.log", Config: cfg}))
			tr, err := rt.Run(t.Context(), "f", "", in())
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			equal(t, "ports", enginetest.Ports(tr), []string{"in:out", "log:out"})

			out := buf.String()
			for _, leak := range leaks {
				if strings.Contains(out, leak) {
					t.Errorf("log output contains %q:\n%s", leak, out)
				}
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 1 {
				t.Fatalf("want 1 log line, got %d:\n%s", len(lines), out)
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
				t.Fatal(err)
			}
			equal(t, "level", rec["level"], tc.wantLevel)
			if tc.wantText != "" {
				equal(t, "text", rec["msg"], tc.wantText)
			}
			equal(t, "run id", rec["run"], tr.ID)
			equal(t, "flow", rec["flow"], "f")
			equal(t, "node", rec["node"], "log")
			data, _ := rec[logDataKey].(map[string]any)
			equal(t, "data.user", data["user"], "ann")
			equal(t, "data.authorization", data["authorization"], engine.Redacted)
			equal(t, "data.note", data["note"], engine.Redacted)
		})
	}
}

func TestLogLevelFilter(t *testing.T) {
	tests := []struct {
		name, level string
		wantLines   int
	}{
		{name: "below the handler level is skipped", level: "debug", wantLines: 0},
		{name: "at the handler level", level: "info", wantLines: 1},
		{name: "above the handler level", level: "error", wantLines: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf enginetest.LogBuffer
			logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
			rt := newRuntime(t, engine.Options{Logger: logger})
			// Counting "n=1" shows whether the line was written.
			enginetest.Deploy(t, rt, manualFlow(t, "f", enginetest.Node{ID: "log", Type: "core.log",
				Config: map[string]any{"level": tc.level, "message": `"n=" + string(msg.n)`}}))
			tr, err := rt.Run(t.Context(), "f", "", engine.Msg{"n": 1})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			equal(t, "ports", enginetest.Ports(tr), []string{"in:out", "log:out"})
			got := strings.Count(buf.String(), "n=1")
			equal(t, "lines", got, tc.wantLines)
		})
	}
}

func TestLogDeployErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  map[string]any
		want engine.ValidationError
	}{
		{name: "unknown level", cfg: map[string]any{"level": "trace"},
			want: engine.ValidationError{Node: "log", Field: "level", Msg: "must be one of"}},
		{name: "message not text", cfg: map[string]any{"message": "1 + 1"},
			want: engine.ValidationError{Node: "log", Field: "message", Msg: "expected string, but got int"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			refused(t, manualFlow(t, "f", enginetest.Node{ID: "log", Type: "core.log", Config: tc.cfg}), tc.want)
		})
	}
}
