package flowd_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

// flowDoc builds a flow with enginetest.Flow: nodes are "id type
// config-json" triples, wires "from:port>to".
func flowDoc(t *testing.T, id string, nodes [][3]string, wires ...string) *engine.Flow {
	t.Helper()
	ns := make([]enginetest.Node, len(nodes))
	for i, n := range nodes {
		ns[i] = enginetest.Node{ID: n[0], Type: n[1]}
		if n[2] != "" {
			if err := json.Unmarshal([]byte(n[2]), &ns[i].Config); err != nil {
				t.Fatalf("%s/%s config: %v", id, n[0], err)
			}
		}
	}
	ws := make([]string, len(wires))
	for i, w := range wires {
		ws[i] = strings.Replace(w, ">", "->", 1)
	}
	return enginetest.Flow(t, id, ns, ws...)
}

func lintFlowd(t *testing.T, issuer string) *flowd.Flowd {
	t.Helper()
	return flowd.NewTest(t, flowd.Options{Issuer: issuer})
}

// Building blocks of the lint documents.
var (
	cron    = [3]string{"tick", "schedule.cron", `{"spec": "0 3 * * *"}`}
	manual  = [3]string{"go", "core.manual", ""}
	httpIn  = [3]string{"in", "http.in", `{"method": "GET", "path": "/x"}`}
	respond = [3]string{"reply", "http.respond", ""}
	rotate  = func(retire string) [3]string {
		return [3]string{"rotate", "jose.rotate", `{"keyset": "main", "retire_after": "` + retire + `"}`}
	}
	sign = func(ttl string) [3]string {
		return [3]string{"sign", "jose.sign", `{"keyset": "main", "ttl": "` + ttl + `"}`}
	}
	jwks = func(maxAge string) [3]string {
		return [3]string{"jwks", "jose.jwks", `{"keyset": "main", "max_age": "` + maxAge + `"}`}
	}
	validate = func(cfg string) [3]string { return [3]string{"check", "jose.validate", cfg} }
)

// TestLintChecks: every lint check, with documents that trigger it and
// documents that do not.
func TestLintChecks(t *testing.T) {
	rotation := func(retire string) *engine.Flow {
		return flowDoc(t, "rollover", [][3]string{cron, rotate(retire)}, "tick:out>rotate")
	}
	publish := func(maxAge string) *engine.Flow {
		return flowDoc(t, "keys", [][3]string{httpIn, jwks(maxAge), respond}, "in:out>jwks", "jwks:ok>reply")
	}
	minting := func(ttl string) *engine.Flow {
		return flowDoc(t, "mint", [][3]string{manual, sign(ttl)}, "go:out>sign")
	}
	api := func(cfg string) *engine.Flow {
		return flowDoc(t, "api", [][3]string{httpIn, validate(cfg), respond}, "in:out>check", "check:valid>reply", "check:invalid>reply")
	}
	good := `{"keyset": "main", "audience": ["api"], "issuer": "https://id.example"}`
	tests := []struct {
		check  string
		name   string
		issuer string
		flows  []*engine.Flow
		want   []string // "flow/node field" of each warning of this check
	}{
		{"flow.unreachable", "a node no trigger reaches", "", []*engine.Flow{
			flowDoc(t, "f", [][3]string{manual, {"a", "core.log", `{"message": "\"a\""}`}, {"b", "core.log", `{"message": "\"b\""}`}}, "go:out>a")},
			[]string{"f/b"}},
		{"flow.unreachable", "every node reached", "", []*engine.Flow{
			flowDoc(t, "f", [][3]string{manual, {"a", "core.log", `{"message": "\"a\""}`}}, "go:out>a")}, nil},
		{"flow.unreachable", "reached only through a disabled node", "", []*engine.Flow{
			flowDoc(t, "f", [][3]string{manual, {"a", "core.log", `{"message": "\"a\""}`}, {"b", "core.log", `{"message": "\"b\""}`}}, "go:out>a", "a:out>b")}, nil},

		{"jose.overlap", "retire_after shorter than token ttl + JWKS max-age, across flows", "", []*engine.Flow{
			rotation("2h"), publish("24h"), minting("24h")}, []string{"mint/sign ttl", "rollover/rotate retire_after"}},
		{"jose.overlap", "ttl + max-age exceeds retire_after by a minute", "", []*engine.Flow{
			rotation("2h"), publish("1h"), minting("1h1m")}, []string{"mint/sign ttl", "rollover/rotate retire_after"}},
		{"jose.overlap", "retire_after covers ttl + max-age", "", []*engine.Flow{
			rotation("48h"), publish("24h"), minting("24h")}, nil},
		{"jose.overlap", "in one flow, reported once", "", []*engine.Flow{
			flowDoc(t, "one", [][3]string{cron, rotate("2h"), manual, sign("3h")}, "tick:out>rotate", "go:out>sign")},
			[]string{"one/rotate retire_after"}},

		{"jose.validate_audience", "audience_optional without an audience", "https://id.example", []*engine.Flow{api(`{"keyset": "main", "audience_optional": true}`)}, []string{"api/check audience_optional"}},
		{"jose.validate_audience", "an audience", "https://id.example", []*engine.Flow{api(`{"keyset": "main", "audience": ["api"]}`)}, nil},

		{"jose.unpublished_keyset", "signs with a keyset nobody publishes", "", []*engine.Flow{minting("1h")}, []string{"mint/sign keyset"}},
		{"jose.unpublished_keyset", "a JWKS flow publishes it", "", []*engine.Flow{minting("1h"), publish("15m")}, nil},
		{"jose.unpublished_keyset", "HMAC keys are never published", "", []*engine.Flow{
			flowDoc(t, "mint", [][3]string{manual, {"sign", "jose.sign", `{"keyset": "main", "alg": "HS256"}`}}, "go:out>sign")}, nil},

		{"jose.unrotated_keyset", "validates with a keyset nothing rotates", "", []*engine.Flow{api(good)}, []string{"api/check keyset"}},
		{"jose.unrotated_keyset", "rotated only at start-up (ensure) is not rotated", "", []*engine.Flow{api(good),
			flowDoc(t, "boot", [][3]string{{"boot", "core.startup", ""}, {"ensure", "jose.rotate", `{"keyset": "main", "mode": "ensure"}`}}, "boot:out>ensure")},
			[]string{"api/check keyset"}},
		{"jose.unrotated_keyset", "a schedule rotates it", "", []*engine.Flow{api(good), rotation("48h")}, nil},

		{"jose.decrypt_error_unwired", "decrypt without an error wire", "", []*engine.Flow{
			flowDoc(t, "d", [][3]string{manual, {"dec", "jose.decrypt", `{"keyset": "main"}`}}, "go:out>dec")},
			[]string{"d/dec"}},
		{"jose.decrypt_error_unwired", "decrypt with an error wire", "", []*engine.Flow{
			flowDoc(t, "d", [][3]string{manual, {"dec", "jose.decrypt", `{"keyset": "main"}`}, {"log", "core.log", `{"message": "msg.error.message"}`}},
				"go:out>dec", "dec:error>log")}, nil},

		{"http.request_error_unwired", "request without an error wire", "", []*engine.Flow{
			flowDoc(t, "r", [][3]string{manual, {"call", "http.request", `{"url": "\"https://api.example/x\""}`}}, "go:out>call")},
			[]string{"r/call"}},
		{"http.request_error_unwired", "request with an error wire", "", []*engine.Flow{
			flowDoc(t, "r", [][3]string{manual, {"call", "http.request", `{"url": "\"https://api.example/x\""}`}, {"log", "core.log", `{"message": "msg.error.message"}`}},
				"go:out>call", "call:error>log")}, nil},

		{"core.call_target", "calls a flow that is not there", "", []*engine.Flow{
			flowDoc(t, "c", [][3]string{manual, {"call", "core.call", `{"flow": "sub", "outputs": ["ok"]}`}}, "go:out>call")},
			[]string{"c/call flow"}},
		{"core.call_target", "a port the call does not list, one the sub-flow lacks", "", []*engine.Flow{
			flowDoc(t, "c", [][3]string{manual, {"call", "core.call", `{"flow": "sub", "outputs": ["ok", "maybe"]}`}}, "go:out>call"),
			flowDoc(t, "sub", [][3]string{{"in", "core.input", ""}, {"yes", "core.output", `{"port": "ok"}`}, {"no", "core.output", `{"port": "denied"}`}}, "in:out>yes", "in:out>no")},
			[]string{"c/call outputs", "c/call outputs"}},
		{"core.call_target", "the sub-flow answers on the ports listed", "", []*engine.Flow{
			flowDoc(t, "c", [][3]string{manual, {"call", "core.call", `{"flow": "sub", "outputs": ["ok", "denied"]}`}}, "go:out>call"),
			flowDoc(t, "sub", [][3]string{{"in", "core.input", ""}, {"yes", "core.output", `{"port": "ok"}`}, {"no", "core.output", `{"port": "denied"}`}}, "in:out>yes", "in:out>no")},
			nil},

		{"oauth.discovery_rs256", "discovery promises RS256, ID tokens are ES256", "https://id.example", []*engine.Flow{
			flowDoc(t, "meta", [][3]string{httpIn, {"meta", "oauth.discovery", ""}, respond}, "in:out>meta", "meta:out>reply"),
			flowDoc(t, "tok", [][3]string{manual, {"idt", "oidc.id_token", `{"alg": "ES256"}`}}, "go:out>idt")},
			[]string{"meta/meta signing_algs"}},
		{"oauth.discovery_rs256", "ID tokens are RS256", "https://id.example", []*engine.Flow{
			flowDoc(t, "meta", [][3]string{httpIn, {"meta", "oauth.discovery", ""}, respond}, "in:out>meta", "meta:out>reply"),
			flowDoc(t, "tok", [][3]string{manual, {"idt", "oidc.id_token", `{"alg": "RS256"}`}}, "go:out>idt")}, nil},
	}
	fds := map[string]*flowd.Flowd{}
	tested := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.check+"/"+tt.name, func(t *testing.T) {
			fd := fds[tt.issuer]
			if fd == nil {
				fd = lintFlowd(t, tt.issuer)
				fds[tt.issuer] = fd
			}
			for _, f := range tt.flows {
				if err := fd.App().CheckFlow(t.Context(), f); err != nil {
					t.Fatalf("flow %s is not valid (lint documents must be): %v", f.ID, err)
				}
			}
			var got []string
			for _, w := range fd.App().Registry().Lint(t.Context(), tt.flows) {
				if w.Check != tt.check {
					continue
				}
				if w.Message == "" {
					t.Errorf("%v has no message", w)
				}
				got = append(got, strings.TrimSpace(w.Flow+"/"+w.Node+" "+w.Field))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("warnings %q, want %q", got, tt.want)
			}
			if len(tt.want) > 0 {
				tested[tt.check+"+"] = true
			} else {
				tested[tt.check+"-"] = true
			}
		})
	}
	for _, c := range lintFlowd(t, "").App().Registry().Checks() {
		if !tested[c.ID+"+"] || !tested[c.ID+"-"] {
			t.Errorf("check %s lacks a document that triggers it or one that does not", c.ID)
		}
	}
}

// TestLintIgnore: a node silences a check by listing its id; other checks
// and other nodes still report.
func TestLintIgnore(t *testing.T) {
	fd := lintFlowd(t, "")
	doc := func(ignore string) *engine.Flow {
		f := flowDoc(t, "api", [][3]string{httpIn, validate(`{"keyset": "main", "issuer": "https://id.example", "audience_optional": true}`), respond}, "in:out>check", "check:valid>reply")
		if ignore != "" {
			f.Nodes[1].LintIgnore = strings.Split(ignore, ",")
		}
		return f
	}
	tests := []struct {
		name, ignore string
		want         []string
	}{
		{"nothing silenced", "", []string{"jose.unrotated_keyset", "jose.validate_audience"}},
		{"one silenced", "jose.validate_audience", []string{"jose.unrotated_keyset"}},
		{"all silenced", "jose.unrotated_keyset,jose.validate_audience", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, w := range fd.App().Registry().Lint(t.Context(), []*engine.Flow{doc(tt.ignore)}) {
				got = append(got, w.Check)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("checks %q, want %q", got, tt.want)
			}
		})
	}
}

// TestPrebuiltFlowsLintClean: the shipped flows, linted together, warn
// about nothing.
func TestPrebuiltFlowsLintClean(t *testing.T) {
	fd := lintFlowd(t, "https://id.example")
	names, _ := filepath.Glob("flows/examples/*.json")
	var flows []*engine.Flow
	for _, name := range names {
		doc, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := engine.DecodeFlow(doc)
		if err != nil {
			t.Fatal(err)
		}
		flows = append(flows, f)
	}
	for _, w := range fd.App().Registry().Lint(t.Context(), flows) {
		t.Errorf("%v", w)
	}
}
