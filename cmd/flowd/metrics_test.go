package main

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var metricsRE = regexp.MustCompile(`Metrics: (http://\S+/metrics)`)

// TestServeMetricsListener: --metrics-addr serves /metrics on its own
// listener (with the Go runtime and process collectors), the main
// listener does not, and --log-format json writes JSON lines.
func TestServeMetricsListener(t *testing.T) {
	s := serveWith(t, &cli{getenv: envOf(nil)}, "--data", t.TempDir(), "--metrics-addr", "127.0.0.1:0", "--log-format", "json")
	var url string
	deadline := time.Now().Add(10 * time.Second)
	for url == "" && time.Now().Before(deadline) {
		if m := metricsRE.FindStringSubmatch(s.out.String()); m != nil {
			url = m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	if url == "" {
		t.Fatalf("no metrics address printed: %s", s.out)
	}
	if code, _ := s.get(t, "/.well-known/jwks.json", nil); code != 200 {
		t.Fatalf("jwks: %d", code)
	}
	if code, _ := s.get(t, "/metrics", nil); code != 404 {
		t.Errorf("/metrics on the main listener: %d, want 404 (a flow route like any other)", code)
	}
	resp, err := s.client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d %s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "flowd_runs_total", "flowd_jose_keys", "flowd_store_operation_duration_seconds"} {
		if fams[name] == nil {
			t.Errorf("no %s in the scrape", name)
		}
	}
	var got float64
	for _, m := range fams["flowd_jwks_responses_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "status" && l.GetValue() == "200" {
				got += m.GetCounter().GetValue()
			}
		}
	}
	if got != 1 {
		t.Errorf("flowd_jwks_responses_total{status=200} = %v, want 1", got)
	}
	if resp, err := s.client.Post(url, "text/plain", nil); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST /metrics: %d, want 405", resp.StatusCode)
		}
	}
	lines := strings.Split(strings.TrimSpace(s.errs.String()), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("no log lines")
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["msg"] == nil || rec["level"] == nil {
			t.Errorf("log line is not a JSON record: %q", l)
		}
	}
}

func TestServeRefusesBadLogFormat(t *testing.T) {
	code, _, errs := flowdCmd(t, nil, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--log-format", "xml")
	if code != 2 || !strings.Contains(errs, `--log-format "xml": want text or json`) {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}
