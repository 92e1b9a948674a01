package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Helpers the OIDC, DPoP, PAR and conformance tests share on a running
// provider.

// redeployNode is what a person does to change one node of a shipped flow:
// export the flow, replace node's config, import it with --deploy.
func (p *provider) redeployNode(t *testing.T, flow, node string, config map[string]any) {
	t.Helper()
	code, doc, errs := flowdCmd(t, p.vars, "export", flow)
	if code != 0 {
		t.Fatalf("export %s: %s", flow, errs)
	}
	var f map[string]any
	if err := json.Unmarshal([]byte(doc), &f); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range f["nodes"].([]any) {
		if nd := n.(map[string]any); nd["id"] == node {
			nd["config"] = config
			found = true
		}
	}
	if !found {
		t.Fatalf("flow %s has no node %s", flow, node)
	}
	changed, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), flow+".json")
	if err := os.WriteFile(file, changed, 0o600); err != nil {
		t.Fatal(err)
	}
	mustCmd(t, p.vars, "import", "--deploy", file)
}

// post sends body to path with the given content type, authenticated as
// user:pass (client_secret_basic) unless user is empty, and returns the
// status, the headers and the raw body.
func (p *provider) post(t *testing.T, path, contentType, body, user, pass string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", p.issuer+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := p.s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

// decodeClaims reads a JWT's payload (the server already verified it).
func decodeClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
