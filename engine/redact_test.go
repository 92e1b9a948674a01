package engine

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// A compact JWS, a JWE with "dir" (empty encrypted key segment) and the
// value of an HTTP credential, as they sit in messages.
const (
	testJWS = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
	testJWE = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aXZpdml2aXZpdg.Y2lwaGVydGV4dA.dGFndGFndGFn"
)

// TestRedactShapes: what a trace shows of a string, by its shape and the
// run's marked values, wherever it sits.
func TestRedactShapes(t *testing.T) {
	marked := []string{"hunter2hunter2", "x9", "1234"}
	for _, tt := range []struct {
		name, in, want string
	}{
		{"JWS", testJWS, Redacted},
		{"JWE dir with an empty segment", testJWE, Redacted},
		{"JWS in a text", "copy of " + testJWS + ", done", "copy of " + Redacted + ", done"},
		{"JWE in a query", "a=1&t=" + testJWE + "&b=2", "a=1&t=" + Redacted + "&b=2"},
		{"Bearer header value", "Bearer 2YotnFZFEjr1zCsicMWpAA", Redacted},
		{"DPoP header value", "DPoP Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU", Redacted},
		{"Basic header value, any case", "bAsIc dXNlcjpwYXNzd29yZA==", Redacted},
		{"credential inside a text", "sent Authorization: Bearer 2YotnFZFEjr1zCsicMWpAA to the API",
			"sent Authorization: " + Redacted + " to the API"},
		{"PEM", "x -----BEGIN EC PRIVATE KEY----- y", Redacted},
		{"marked value", "hunter2hunter2", Redacted},
		{"marked value inside a text", "pw=hunter2hunter2;", "pw=" + Redacted + ";"},
		{"short marked value whole", "x9", Redacted},
		{"short marked value not cut from texts", "1234 Main Street", "1234 Main Street"},
		// Kept: values with dots or words that only look a little like tokens.
		{"dotted version", "release-1.2.3.4.5-final", "release-1.2.3.4.5-final"},
		{"host name", "eyJunk.example.com", "eyJunk.example.com"},
		{"header that is not JSON", "eyJhbGciOiJFUzI1NiJ.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl", "eyJhbGciOiJFUzI1NiJ.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"},
		{"four segments", testJWS + ".eHh4", testJWS + ".eHh4"},
		{"part of a longer base64url word", "word-" + testJWS, "word-" + testJWS},
		{"Basic as a word", "Basic plan, 10 users", "Basic plan, 10 users"},
		{"bearer in prose", "the bearer of this letter", "the bearer of this letter"},
		{"basic in prose", "Please use basic authentication or Basic Authentication", "Please use basic authentication or Basic Authentication"},
		{"lower-case credential inside a text", "got bearer abcdefgh1 ok", "got " + Redacted + " ok"},
		{"plain text", "plain text of some length", "plain text of some length"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, _, _ := (&snapper{budget: snapBudget, secrets: marked}).snap(tt.in, nil, nil, 0)
			if got != tt.want {
				t.Errorf("snapshot %q, want %q", got, tt.want)
			}
			x := &Exec{}
			for _, m := range marked {
				x.MarkSecret(m)
			}
			if got := x.RedactText(tt.in); got != tt.want {
				t.Errorf("RedactText %q, want %q", got, tt.want)
			}
		})
	}
}

// TestShapeCheckAllocates nothing for strings that are not secrets, and
// nothing to decide that a token-looking string is one.
func TestShapeCheckAllocates(t *testing.T) {
	for _, v := range []string{"plain text of some length", "eyJunk.example.com.and.more", "the bearer of this letter", testJWS} {
		if n := testing.AllocsPerRun(100, func() { _ = maybeSecret(v) && jwtLen(v) > 0 }); n != 0 {
			t.Errorf("%q: %v allocations", v, n)
		}
	}
}

// TestMarkedSecretsInTraces: a value a block marks secret is redacted in
// every step of the run, the steps before the mark included, under
// whatever name a later block copies it to; token- and credential-shaped
// values copied to harmless names are redacted too; the literal value of
// a config field marked Secret is redacted wherever it lands.
func TestMarkedSecretsInTraces(t *testing.T) {
	h := newHarness()
	reg := testRegistry(t, h)
	reg.MustRegister(Spec{Type: "test.mark", Title: "Mark", Category: "test", Outputs: []string{"out"},
		Fields: []Field{{Name: "field", Kind: KindString, Required: true}}},
		func(s *Setup) (Block, error) {
			f := s.Config.String("field")
			return BlockFunc(func(_ context.Context, x *Exec, msg Msg) (string, error) {
				v, _ := msg[f].(string)
				x.MarkSecret(v)
				return "out", nil
			}), nil
		})
	reg.MustRegister(Spec{Type: "test.apikey", Title: "API key", Category: "test", Outputs: []string{"out"},
		Fields: []Field{{Name: "key", Kind: KindString, Secret: true}}},
		func(s *Setup) (Block, error) {
			k := s.Config.String("key")
			return BlockFunc(func(_ context.Context, _ *Exec, msg Msg) (string, error) {
				msg["header"] = "X-Key " + k
				return "out", nil
			}), nil
		})
	rt := newTestRuntime(t, h, Options{Registry: reg})
	f := mkFlow("f", []Node{
		node("in", "test.trigger", nil),
		node("mark", "test.mark", map[string]any{"field": "pass"}),
		node("key", "test.apikey", map[string]any{"key": "k-0123456789"}),
		node("copy", "test.set", map[string]any{"set": map[string]any{
			"pw": "msg.pass", "copy": "msg.token", "enc": "msg.jwe", "auth": "'DPoP ' + msg.opaque", "note": "'v1.2.3 ok'"}}),
	}, "in.out>mark", "mark.out>key", "key.out>copy")
	deploy(t, rt, f, 1)
	tr, err := rt.Run(t.Context(), "f", "in", Msg{"pass": "hunter2hunter2", "token": testJWS, "jwe": testJWE, "opaque": "2YotnFZFEjr1zCsicMWpAA"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2hunter2", testJWS, testJWE, "k-0123456789", "DPoP 2Yotn"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("trace shows %q:\n%s", secret, raw)
		}
	}
	last := tr.Steps[len(tr.Steps)-1].Msg.(map[string]any)
	for field, want := range map[string]any{
		"pass": Redacted, "pw": Redacted, "copy": Redacted, "enc": Redacted, "auth": Redacted,
		"header": "X-Key " + Redacted, "note": "v1.2.3 ok", "opaque": "2YotnFZFEjr1zCsicMWpAA",
	} {
		if last[field] != want {
			t.Errorf("last step msg.%s = %v, want %v", field, last[field], want)
		}
	}
	if first := tr.Steps[0].Msg.(map[string]any); first["pass"] != Redacted {
		t.Errorf("the trigger's step, taken before the mark, shows pass = %v", first["pass"])
	}
}

// FuzzRedactText: any text is handled without a panic, redaction is
// idempotent (a snapshot shared between steps is not checked again), and
// no token the shape rule finds is left in the output.
func FuzzRedactText(f *testing.F) {
	for _, s := range []string{testJWS, testJWE, "Bearer 2YotnFZFEjr1zCsicMWpAA", "a DPoP x.y.z9~~~~~~ b", "eyJ.eyJ..", "basic  ", "eyJ" + strings.Repeat("A", 600) + ".a.b"} {
		f.Add(s)
	}
	x := &Exec{}
	x.MarkSecret("hunter2hunter2")
	f.Fuzz(func(t *testing.T, s string) {
		once := x.RedactText(s)
		if twice := x.RedactText(once); twice != once {
			t.Errorf("not idempotent: %q -> %q -> %q", s, once, twice)
		}
		if i, _ := nextSecretSpan(once); i >= 0 {
			t.Errorf("%q -> %q still holds a credential at %d", s, once, i)
		}
	})
}
