package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTestCommand: flowd test exits 0 when every case passes and 1 with
// the failing case, node and expectation when one fails, in text, TAP and
// JUnit XML.
func TestTestCommand(t *testing.T) {
	broken := filepath.Join("..", "..", "flowtest", "testdata", "broken")
	tests := []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{"passing", []string{"test", filepath.Join("..", "..", "flows", "examples", "tests", "hello.test.json")}, 0,
			[]string{"3 cases, 3 passed, 0 failed"}},
		{"stubbed outgoing requests", []string{"test", filepath.Join("..", "..", "flowtest", "testdata", "stubs")}, 0,
			[]string{"6 cases, 6 passed, 0 failed"}},
		{"failing, text", []string{"test", broken}, 1,
			[]string{`FAIL hello.test.json: case "greets by name": step 1: node "reply": expected json message = "hello, ada", got "bye"`, "3 cases, 1 passed, 2 failed"}},
		{"failing, TAP", []string{"test", "--format", "tap", broken}, 1,
			[]string{"TAP version 13", "not ok 1 - hello.test.json: greets by name", "ok 3 - hello.test.json: answers only GET"}},
		{"only matching cases", []string{"test", "--run", "only GET$", broken}, 0,
			[]string{"1 cases, 1 passed, 0 failed"}},
		{"bad --run", []string{"test", "--run", "(", broken}, 2, nil},
		{"bad format", []string{"test", "--format", "xml", broken}, 2, nil},
		{"nothing named", []string{"test"}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := flowdCmd(t, nil, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, out, errs)
			}
			for _, w := range tt.wants {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	t.Run("junit to a file", func(t *testing.T) {
		report := filepath.Join(t.TempDir(), "report.xml")
		code, out, _ := flowdCmd(t, nil, "test", "--format", "junit", "--out", report, broken)
		if code != 1 || !strings.Contains(out, "2 failed") {
			t.Fatalf("exit %d: %s", code, out)
		}
		b, err := os.ReadFile(report)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
		}
		if err := xml.Unmarshal(b, &doc); err != nil || doc.Tests != 3 || doc.Failures != 2 {
			t.Fatalf("report %+v (%v):\n%s", doc, err, b)
		}
	})
}

// TestValidateLint: flowd validate prints lint warnings of the files
// linted together; they fail the command only with --strict.
func TestValidateLint(t *testing.T) {
	dir := t.TempDir()
	rollover := filepath.Join(dir, "rollover.json")
	mint := filepath.Join(dir, "mint.json")
	os.WriteFile(rollover, []byte(`{"schema":"flowd/v1","id":"rollover","name":"r","nodes":[
	  {"id":"tick","type":"schedule.cron","config":{"spec":"0 3 * * *"},"x":0,"y":0},
	  {"id":"rotate","type":"jose.rotate","config":{"keyset":"main","retire_after":"2h"},"x":0,"y":0}],
	  "wires":[{"from":"tick","port":"out","to":"rotate"}]}`), 0o644)
	os.WriteFile(mint, []byte(`{"schema":"flowd/v1","id":"mint","name":"m","nodes":[
	  {"id":"go","type":"core.manual","x":0,"y":0},
	  {"id":"sign","type":"jose.sign","config":{"keyset":"main","ttl":"24h"},"lint_ignore":["jose.unpublished_keyset"],"x":0,"y":0}],
	  "wires":[{"from":"go","port":"out","to":"sign"}]}`), 0o644)
	for _, tt := range []struct {
		name string
		args []string
		code int
	}{
		{"warnings do not fail", []string{"validate", rollover, mint}, 0},
		{"--strict fails on warnings", []string{"validate", "--strict", rollover, mint}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, _ := flowdCmd(t, nil, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, out)
			}
			for _, want := range []string{"rollover.json: warning: rollover: node rotate: retire_after: keyset \"main\"",
				"set retire_after to at least 24h", "[jose.overlap]", "mint.json: warning: mint: node sign: ttl:"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "jose.unpublished_keyset") {
				t.Errorf("a silenced check reported:\n%s", out)
			}
		})
	}
}
