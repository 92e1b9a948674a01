package otlp

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestEnabled(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		on       bool
		protocol string
		wantErr  string
	}{
		{"nothing set", nil, false, "", ""},
		{"endpoint only", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, true, ProtocolHTTP, ""},
		{"traces endpoint only", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, true, ProtocolHTTP, ""},
		{"exporter otlp", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, ProtocolHTTP, ""},
		{"exporter OTLP any case", map[string]string{"OTEL_TRACES_EXPORTER": " OTLP "}, true, ProtocolHTTP, ""},
		{"exporter none wins over endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, false, "", ""},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, false, "", ""},
		{"sdk disabled false", map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, true, ProtocolHTTP, ""},
		{"grpc", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, ProtocolGRPC, ""},
		{"traces protocol wins", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, true, ProtocolHTTP, ""},
		{"zipkin refused", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, "",
			`OTEL_TRACES_EXPORTER="zipkin": flowd exports traces over OTLP only (otlp or none)`},
		{"two exporters refused", map[string]string{"OTEL_TRACES_EXPORTER": "otlp,console"}, false, "", `OTEL_TRACES_EXPORTER="otlp,console"`},
		{"http/json refused", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, false, "",
			`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http/json": want http/protobuf or grpc`},
		{"protocol not asked when off", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"}, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			on, protocol, err := Enabled(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrConfig containing %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if on != tt.on || protocol != tt.protocol {
				t.Errorf("Enabled = %v, %q; want %v, %q", on, protocol, tt.on, tt.protocol)
			}
		})
	}
}

// TestFromEnvExportsOverHTTP: with the standard variables pointing at a
// collector, a span reaches it as OTLP/HTTP protobuf when the provider
// shuts down (the flush `flowd serve` does on exit), with the service
// name the environment gives.
func TestFromEnvExportsOverHTTP(t *testing.T) {
	var mu sync.Mutex
	var got []string
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type")+" "+r.Header.Get("X-Test")+" "+string(body))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	env := map[string]string{
		"OTEL_TRACES_EXPORTER":        "otlp",
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL,
		"OTEL_EXPORTER_OTLP_HEADERS":  "x-test=yes",
		"OTEL_SERVICE_NAME":           "flowd-test-svc",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	tp, err := FromEnv(t.Context(), func(k string) string { return env[k] }, "v9.9.9")
	if err != nil {
		t.Fatal(err)
	}
	if tp == nil {
		t.Fatal("tracing is off")
	}
	_, span := tp.Tracer("test").Start(t.Context(), "the-span")
	span.End()
	if err := tp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("collector got %d requests, want 1", len(got))
	}
	for _, want := range []string{"POST /v1/traces application/x-protobuf yes ", "the-span", "flowd-test-svc", "v9.9.9"} {
		if !strings.Contains(got[0], want) {
			t.Errorf("export %q does not contain %q", got[0], want)
		}
	}
}

func TestFromEnvOff(t *testing.T) {
	tp, err := FromEnv(t.Context(), func(string) string { return "" }, "")
	if tp != nil || err != nil {
		t.Fatalf("FromEnv = %v, %v; want nil, nil", tp, err)
	}
}
