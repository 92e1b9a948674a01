package oauth

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/flowd/flowd/blocks/core"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

type patterns []string

func (p patterns) Patterns() []string { return p }

// runFlow deploys manual -> block and runs it with msg.
func runFlow(t *testing.T, c *Clients, routes patterns, typ, config string, msg engine.Msg) *engine.Trace {
	t.Helper()
	reg := enginetest.Registry(t, core.Register, Register)
	svc := engine.NewServices()
	if err := Provide(svc, c, Options{Issuer: "https://id.example.com", Routes: routes}); err != nil {
		t.Fatal(err)
	}
	rt, err := engine.New(engine.Options{Registry: reg, Services: svc})
	if err != nil {
		t.Fatal(err)
	}
	if config == "" {
		config = "{}"
	}
	f, err := engine.DecodeFlow([]byte(`{"schema":"flowd/v1","id":"f","name":"f","nodes":[
		{"id":"m","type":"core.manual","x":0,"y":0},
		{"id":"b","type":"` + typ + `","config":` + config + `,"x":0,"y":0}],
		"wires":[{"from":"m","port":"out","to":"b"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Deploy(t.Context(), f, 1); err != nil {
		t.Fatal(err)
	}
	tr, err := rt.Run(t.Context(), "f", "", msg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return tr
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func request(headers map[string]any, body map[string]any) engine.Msg {
	if headers == nil {
		headers = map[string]any{}
	}
	m := engine.Msg{"req": map[string]any{"headers": headers}}
	if body != nil {
		m["body"] = body
	}
	return m
}

func TestClientAuth(t *testing.T) {
	c, _ := newClients(t)
	_, secret, err := c.Add(t.Context(), Client{ID: "svc:1", Scopes: []string{"read"}}, "s3cret/with+odd&chars")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		msg       engine.Msg
		port      string
		errorDesc string
	}{
		{"basic", request(map[string]any{"authorization": basic("svc:1", secret)}, nil), "ok", ""},
		{"post", request(nil, map[string]any{"client_id": "svc:1", "client_secret": secret}), "ok", ""},
		{"basic wrong secret", request(map[string]any{"authorization": basic("svc:1", "nope-nope-nope-nope")}, nil), "invalid", "client authentication failed"},
		{"unknown client", request(nil, map[string]any{"client_id": "ghost", "client_secret": secret}), "invalid", "client authentication failed"},
		{"both methods", request(map[string]any{"authorization": basic("svc:1", secret)}, map[string]any{"client_secret": secret}), "invalid", "not both"},
		{"bearer scheme", request(map[string]any{"authorization": "Bearer abc"}, nil), "invalid", "unsupported authorization scheme"},
		{"garbage basic", request(map[string]any{"authorization": "Basic %%%"}, nil), "invalid", "malformed"},
		{"no credentials", request(nil, nil), "invalid", "required"},
		{"mismatched post id", request(map[string]any{"authorization": basic("svc:1", secret)}, map[string]any{"client_id": "other"}), "invalid", "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := runFlow(t, c, nil, "oauth.client_auth", "", tc.msg)
			step := tr.Steps[1]
			if step.Port != tc.port {
				t.Fatalf("port %q, want %q (%+v)", step.Port, tc.port, step)
			}
			out := step.Msg.(map[string]any)
			if tc.port == "ok" {
				if cl := out["client"].(map[string]any); cl["id"] != "svc:1" {
					t.Fatalf("client %v", cl)
				}
				return
			}
			oe := out["oauth_error"].(map[string]any)
			if oe["error"] != "invalid_client" || oe["status"] != 401 || !strings.Contains(oe["error_description"].(string), tc.errorDesc) {
				t.Fatalf("oauth_error %v", oe)
			}
		})
	}
}

func TestClientCredentials(t *testing.T) {
	c, _ := newClients(t)
	client := map[string]any{"id": "svc", "scopes": []any{"read", "write"}, "audiences": []any{"https://billing.example"}}
	for _, tc := range []struct {
		name       string
		body       map[string]any
		bodyAll    map[string][]string
		port       string
		scope, aud string
		errCode    string
	}{
		{"default scopes and audience", map[string]any{"grant_type": "client_credentials"}, nil, "ok", "read write", "api", ""},
		{"subset of scopes", map[string]any{"grant_type": "client_credentials", "scope": "read"}, nil, "ok", "read", "api", ""},
		{"allowed resource", map[string]any{"grant_type": "client_credentials", "resource": "https://billing.example"}, nil, "ok", "read write", "https://billing.example", ""},
		{"scope not allowed", map[string]any{"grant_type": "client_credentials", "scope": "read admin"}, nil, "invalid", "", "", "invalid_scope"},
		{"resource not allowed", map[string]any{"grant_type": "client_credentials", "resource": "https://other.example"}, nil, "invalid", "", "", "invalid_target"},
		{"relative resource", map[string]any{"grant_type": "client_credentials", "resource": "/api"}, nil, "invalid", "", "", "invalid_target"},
		{"two resources", map[string]any{"grant_type": "client_credentials"}, map[string][]string{"resource": {"https://a", "https://b"}}, "invalid", "", "", "invalid_target"},
		{"missing grant", map[string]any{}, nil, "invalid", "", "", "invalid_request"},
		{"password grant", map[string]any{"grant_type": "password"}, nil, "invalid", "", "", "unsupported_grant_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := engine.Msg{"client": client, "body": tc.body}
			if tc.bodyAll != nil {
				msg["body_all"] = tc.bodyAll
			}
			tr := runFlow(t, c, nil, "oauth.client_credentials", `{"default_audience":"api"}`, msg)
			step := tr.Steps[1]
			if step.Port != tc.port {
				t.Fatalf("port %q, want %q: %+v", step.Port, tc.port, step.Msg)
			}
			out := step.Msg.(map[string]any)
			if tc.port == "ok" {
				g := out["grant"].(map[string]any)
				if g["scope"] != tc.scope || g["audience"] != tc.aud || g["client_id"] != "svc" || g["subject"] != "svc" {
					t.Fatalf("grant %v", g)
				}
				return
			}
			if oe := out["oauth_error"].(map[string]any); oe["error"] != tc.errCode || oe["status"] != 400 {
				t.Fatalf("oauth_error %v", oe)
			}
		})
	}
}

func TestDiscovery(t *testing.T) {
	c, _ := newClients(t)
	tr := runFlow(t, c, patterns{"GET /.well-known/jwks.json", "POST /oauth/token", "GET /.well-known/openid-configuration"},
		"oauth.discovery", "", nil)
	doc := tr.Steps[1].Msg.(map[string]any)["payload"].(map[string]any)
	for k, want := range map[string]any{
		"issuer":         "https://id.example.com",
		"jwks_uri":       "https://id.example.com/.well-known/jwks.json",
		"token_endpoint": "https://id.example.com/oauth/token",
	} {
		if doc[k] != want {
			t.Errorf("%s = %v, want %v", k, doc[k], want)
		}
	}
	for _, absent := range []string{"introspection_endpoint", "authorization_endpoint", "userinfo_endpoint", "end_session_endpoint"} {
		if _, ok := doc[absent]; ok {
			t.Errorf("%s listed but no flow serves it", absent)
		}
	}
	for _, required := range []string{"response_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported"} {
		if _, ok := doc[required]; !ok {
			t.Errorf("required member %s missing", required)
		}
	}
	if algs := doc["id_token_signing_alg_values_supported"].([]any); !slices.Contains(algs, any("RS256")) {
		t.Errorf("RS256 missing: %v", algs)
	}
}
