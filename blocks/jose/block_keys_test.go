package jose

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	httpblock "github.com/flowd/flowd/blocks/http"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

func TestBlockSpecsAreDocumented(t *testing.T) {
	reg := enginetest.Registry(t, Register)
	var types []string
	for _, s := range reg.Specs() {
		types = append(types, s.Type)
		if s.Category != Category || s.Title == "" || s.Description == "" {
			t.Errorf("%s: category %q, title %q, description %d chars", s.Type, s.Category, s.Title, len(s.Description))
		}
		for _, f := range s.Fields {
			if f.Label == "" || f.Help == "" {
				t.Errorf("%s.%s: label %q, help %q", s.Type, f.Name, f.Label, f.Help)
			}
		}
	}
	want := []string{"jose.decode", "jose.decrypt", "jose.dpop", "jose.encrypt", "jose.generate_key", "jose.jwks",
		"jose.rotate", "jose.sign", "jose.validate"}
	if !slices.Equal(types, want) {
		t.Errorf("types = %v, want %v", types, want)
	}
	if err := Provide(engine.NewServices(), nil, Options{}); err == nil {
		t.Error("Provide without a keyset manager succeeded")
	}
	if err := Register(reg); !errors.Is(err, engine.ErrDuplicateType) {
		t.Errorf("second Register = %v, want ErrDuplicateType", err)
	}
}

func TestBlockRotateCreatesThenRotates(t *testing.T) {
	e := newBlockEnv(t)
	e.deploy(t, chainFlow(t, "rot", "jose.rotate", map[string]any{"keyset": "main", "algs": []string{"ES256", "EdDSA"}}, "out"))

	// First run: the keyset is created, nothing rotated.
	port, msg := e.run(t, "rot", engine.Msg{})
	if port != "out" {
		t.Fatalf("port %q error %q", port, errorText(msg))
	}
	rot := msg["rotation"].(map[string]any)
	info, err := e.ks.Get(t.Context(), "main")
	if err != nil {
		t.Fatal(err)
	}
	states := keysByState(info)
	if rot["keyset_created"] != true || len(rot["created"].([]string)) != 4 || len(rot["activated"].([]string)) != 2 ||
		len(rot["retired"].([]string)) != 0 || len(rot["deleted"].([]string)) != 0 {
		t.Errorf("first run rotation = %v", rot)
	}
	for _, alg := range []string{"ES256", "EdDSA"} {
		if len(states[alg][StateActive]) != 1 || len(states[alg][StateNext]) != 1 {
			t.Errorf("%s keys after creation: %v", alg, states[alg])
		}
	}

	// Second run: a real rotation of both algs.
	e.clk.Advance(time.Hour)
	_, msg = e.run(t, "rot", engine.Msg{})
	rot = msg["rotation"].(map[string]any)
	for _, alg := range []string{"ES256", "EdDSA"} {
		if !slices.Contains(rot["activated"].([]string), states[alg][StateNext][0]) ||
			!slices.Contains(rot["retired"].([]string), states[alg][StateActive][0]) {
			t.Errorf("%s: rotation %v does not move next->active->retired of %v", alg, rot, states[alg])
		}
	}
	if rot["keyset_created"] != false || len(rot["created"].([]string)) != 2 {
		t.Errorf("second run rotation = %v", rot)
	}
	info, _ = e.ks.Get(t.Context(), "main")
	for _, k := range info.Keys {
		if k.State == StateRetired && !k.RetireAt.Equal(e.clk.Now().Add(defaultRotateRetireAfter)) {
			t.Errorf("retired key %s retires at %v, want now + 48h", k.Kid, k.RetireAt)
		}
	}

	// An alg the keyset lacks is created on the first run of a block that names it.
	e.deploy(t, chainFlow(t, "rot-rs", "jose.rotate", map[string]any{"keyset": "main", "alg": "PS256"}, "out"))
	_, msg = e.run(t, "rot-rs", engine.Msg{})
	rot = msg["rotation"].(map[string]any)
	if rot["keyset_created"] != false || len(rot["created"].([]string)) != 2 || len(rot["retired"].([]string)) != 0 {
		t.Errorf("new alg rotation = %v", rot)
	}
	_, msg = e.run(t, "rot-rs", engine.Msg{})
	if rot := msg["rotation"].(map[string]any); len(rot["retired"].([]string)) != 1 || len(rot["activated"].([]string)) != 1 {
		t.Errorf("PS256 rotation = %v", rot)
	}
}

func TestBlockGenerateKey(t *testing.T) {
	e := newBlockEnv(t)
	e.deploy(t, chainFlow(t, "gen", "jose.generate_key", map[string]any{"keyset": "main", "alg": "ES384"}, "out"))
	port, msg := e.run(t, "gen", engine.Msg{})
	if port != engine.ErrorPort || !strings.Contains(errorText(msg), "keyset not found") {
		t.Fatalf("missing keyset: port %q error %q", port, errorText(msg))
	}
	e.ensure(t, "main", "ES256")
	// A next key needs an active one of its alg: refused, then made active.
	if port, msg := e.run(t, "gen", engine.Msg{}); port != engine.ErrorPort || !strings.Contains(errorText(msg), "no active ES384 key") {
		t.Fatalf("next without active: port %q error %q", port, errorText(msg))
	}
	e.deploy(t, chainFlow(t, "gen", "jose.generate_key", map[string]any{"keyset": "main", "alg": "ES384", "state": "active", "use": "sig"}, "out"))
	port, msg = e.run(t, "gen", engine.Msg{})
	if port != "out" {
		t.Fatalf("port %q error %q", port, errorText(msg))
	}
	key := msg["key"].(map[string]any)
	if key["alg"] != "ES384" || key["state"] != "active" || key["crv"] != "P-384" || key["use"] != "sig" || key["kid"] == "" {
		t.Errorf("msg.key = %v", key)
	}
	for _, private := range []string{"d", "jwk", "k"} {
		if _, ok := key[private]; ok {
			t.Errorf("msg.key has member %q", private)
		}
	}
}

func TestBlockJWKSServesCachedBytes(t *testing.T) {
	e := newBlockEnv(t)
	e.ensure(t, "main", "ES256", "RS256")
	e.deploy(t, chainFlow(t, "jwks", "jose.jwks", map[string]any{"keyset": "main", "max_age": "10m"}, "ok", "not_modified"))
	cached, etag, err := e.ks.JWKS(t.Context(), "main")
	if err != nil {
		t.Fatal(err)
	}

	port, msg := e.run(t, "jwks", engine.Msg{})
	if port != "ok" {
		t.Fatalf("port %q error %q", port, errorText(msg))
	}
	j := msg["jwks"].(map[string]any)
	body := j["body"].([]byte)
	if unsafe.SliceData(body) != unsafe.SliceData(cached) || len(body) != len(cached) {
		t.Error("msg.jwks.body is not the manager's cached slice")
	}
	if j["etag"] != etag || j["cache_control"] != "public, max-age=600" || j["max_age"] != int64(600) ||
		j["content_type"] != "application/jwk-set+json" {
		t.Errorf("msg.jwks = %v", j)
	}

	for _, tt := range []struct {
		inm  string
		port string
	}{
		{etag, "not_modified"},
		{"W/" + etag, "not_modified"},
		{`"other", ` + etag, "not_modified"},
		{"*", "not_modified"},
		{`"other"`, "ok"},
		{strings.Trim(etag, `"`), "ok"},
	} {
		msg := engine.Msg{"req": map[string]any{"headers": map[string]any{"if-none-match": tt.inm}}}
		if port, _ := e.run(t, "jwks", msg); port != tt.port {
			t.Errorf("If-None-Match %s: port %q, want %q", tt.inm, port, tt.port)
		}
	}

	// A rotation changes bytes and ETag; the old ETag no longer matches.
	if _, err := e.ks.Rotate(t.Context(), "main", RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	msg = engine.Msg{"req": map[string]any{"headers": map[string]any{"if-none-match": etag}}}
	port, msg = e.run(t, "jwks", msg)
	if port != "ok" || msg["jwks"].(map[string]any)["etag"] == etag {
		t.Errorf("after rotation: port %q, etag unchanged %v", port, msg["jwks"].(map[string]any)["etag"] == etag)
	}

	e.deploy(t, chainFlow(t, "nojwks", "jose.jwks", map[string]any{"keyset": "nope"}, "ok", "not_modified"))
	if port, msg := e.run(t, "nojwks", engine.Msg{}); port != engine.ErrorPort || !strings.Contains(errorText(msg), "keyset not found") {
		t.Errorf("unknown keyset: port %q error %q", port, errorText(msg))
	}
}

// TestBlockJWKSOverHTTP serves the JWKS as the prebuilt flow does:
// http.in -> jose.jwks -> http.respond, and checks the bytes on the wire
// are the cached ones, byte for byte.
func TestBlockJWKSOverHTTP(t *testing.T) {
	e := newBlockEnv(t)
	router := httpblock.NewRouter(httpblock.RouterOptions{})
	if err := httpblock.Register(e.reg); err != nil {
		t.Fatal(err)
	}
	if err := httpblock.Provide(e.svc, router); err != nil {
		t.Fatal(err)
	}
	e.ensure(t, "main", "ES256")
	headers := map[string]string{"ETag": "msg.jwks.etag", "Cache-Control": "msg.jwks.cache_control"}
	e.deploy(t, enginetest.Flow(t, "jwks-endpoint", []enginetest.Node{
		{ID: "in", Type: "http.in", Config: map[string]any{"path": "/.well-known/jwks.json"}},
		{ID: "jwks", Type: "jose.jwks", Config: map[string]any{"keyset": "main"}},
		{ID: "ok", Type: "http.respond", Config: map[string]any{"body": "msg.jwks.body",
			"content_type": "application/jwk-set+json", "headers": headers}},
		{ID: "same", Type: "http.respond", Config: map[string]any{"status": 304, "body": "nil", "headers": headers}},
	}, "in:out->jwks", "jwks:ok->ok", "jwks:not_modified->same"))
	cached, etag, err := e.ks.JWKS(t.Context(), "main")
	if err != nil {
		t.Fatal(err)
	}

	w := httptest.NewRecorder()
	router.ServeHTTP(w, httptest.NewRequest("GET", "/.well-known/jwks.json", nil))
	if w.Code != 200 || w.Body.String() != string(cached) || w.Header().Get("ETag") != etag ||
		w.Header().Get("Cache-Control") != "public, max-age=900" || w.Header().Get("Content-Type") != JWKSContentType {
		t.Errorf("GET: %d %v %q", w.Code, w.Header(), w.Body)
	}
	req := httptest.NewRequest("GET", "/.well-known/jwks.json", nil)
	req.Header.Set("If-None-Match", etag)
	w = httptest.NewRecorder()
	router.ServeHTTP(w, req)
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 || w.Header().Get("ETag") != etag {
		t.Errorf("conditional GET: %d %v %q", w.Code, w.Header(), w.Body)
	}
}

// TestBlockRollover runs a key rollover end to end with the test clock:
// tokens signed before a rotation validate until their key is deleted past
// retire_after, new tokens carry the new kid, and revoke removes a key at
// once.
func TestBlockRollover(t *testing.T) {
	e := newBlockEnv(t)
	ctx := t.Context()
	// retire_after 90m >= max_token_ttl 1h + jwks_max_age 15m.
	e.deploy(t, chainFlow(t, "rotate", "jose.rotate", map[string]any{"keyset": "main", "alg": "ES256",
		"retire_after": "90m", "max_token_ttl": "1h", "jwks_max_age": "15m"}, "out"))
	// These tokens live 3h: longer than the max_token_ttl the rotation
	// assumes, so that deletion, not expiry, is what ends them.
	signCfg := withMembers(signConfig("main", "ES256"), "ttl", "3h")
	e.deploy(t, chainFlow(t, "sign", "jose.sign", signCfg, "out"))
	e.deploy(t, chainFlow(t, "validate", "jose.validate", validateConfig("main", "ES256"), "valid", "invalid"))

	rotate := func() map[string]any {
		t.Helper()
		port, msg := e.run(t, "rotate", engine.Msg{})
		if port != "out" {
			t.Fatalf("rotate: port %q error %q", port, errorText(msg))
		}
		return msg["rotation"].(map[string]any)
	}
	validate := func(tok string) (reason, state string) {
		t.Helper()
		port, msg := e.run(t, "validate", engine.Msg{"token": tok})
		switch port {
		case "valid":
			return "", msg["key"].(map[string]any)["state"].(string)
		case "invalid":
			return invalidReason(msg), ""
		}
		t.Fatalf("validate: port %q error %q", port, errorText(msg))
		return "", ""
	}

	// t0: the first run creates the keyset.
	if rot := rotate(); rot["keyset_created"] != true {
		t.Fatalf("first rotation = %v", rot)
	}
	tokA, kidA := e.sign(t, "sign", nil)
	if r, st := validate(tokA); r != "" || st != "active" {
		t.Fatalf("token A: reason %q state %q", r, st)
	}

	// t0+10m: rotate. A's key is retired until t0+100m; B gets the new kid.
	e.clk.Advance(10 * time.Minute)
	rot := rotate()
	if !slices.Equal(rot["retired"].([]string), []string{kidA}) {
		t.Fatalf("rotation %v did not retire %s", rot, kidA)
	}
	tokB, kidB := e.sign(t, "sign", nil)
	if kidB == kidA || !slices.Equal(rot["activated"].([]string), []string{kidB}) {
		t.Fatalf("token B kid %s; rotation %v", kidB, rot)
	}
	if r, st := validate(tokA); r != "" || st != "retired" {
		t.Errorf("token A after rotation: reason %q state %q", r, st)
	}
	if r, st := validate(tokB); r != "" || st != "active" {
		t.Errorf("token B: reason %q state %q", r, st)
	}

	// t0+60m: still inside retire_after.
	e.clk.Advance(50 * time.Minute)
	if r, _ := validate(tokA); r != "" {
		t.Errorf("token A within retire_after: %q", r)
	}

	// t0+101m: past A's deadline; the next rotation deletes its key.
	e.clk.Advance(41 * time.Minute)
	rot = rotate()
	if !slices.Contains(rot["deleted"].([]string), kidA) {
		t.Fatalf("rotation %v did not delete %s", rot, kidA)
	}
	if r, _ := validate(tokA); r != string(ReasonUnknownKid) {
		t.Errorf("token A after deletion: reason %q, want unknown_kid", r)
	}
	if r, st := validate(tokB); r != "" || st != "retired" {
		t.Errorf("token B after second rotation: reason %q state %q", r, st)
	}

	// Emergency revoke: B's key goes at once, and new tokens still sign.
	if err := e.ks.Revoke(ctx, "main", kidB); err != nil {
		t.Fatal(err)
	}
	if r, _ := validate(tokB); r != string(ReasonUnknownKid) {
		t.Errorf("token B after revoke: reason %q, want unknown_kid", r)
	}
	tokC, kidC := e.sign(t, "sign", nil)
	if kidC == kidA || kidC == kidB {
		t.Errorf("token C signed by old kid %s", kidC)
	}
	if r, st := validate(tokC); r != "" || st != "active" {
		t.Errorf("token C: reason %q state %q", r, st)
	}
	body, _, _ := e.ks.JWKS(ctx, "main")
	for _, kid := range []string{kidA, kidB} {
		if strings.Contains(string(body), kid) {
			t.Errorf("JWKS still publishes %s", kid)
		}
	}
}

// panicBlock panics: the guard must turn that into an error port.
type panicBlock struct{}

func (panicBlock) Process(context.Context, *engine.Exec, engine.Msg) (string, error) {
	var m map[string]int
	m["boom"]++ // a runtime error, as a bug in crypto code would raise
	return "", nil
}

func TestBlockGuardRecovers(t *testing.T) {
	g := &guarded{typ: "jose.test", b: panicBlock{}, log: slog.New(slog.DiscardHandler)}
	port, err := g.Process(t.Context(), &engine.Exec{RunID: "r1"}, engine.Msg{})
	if port != "" || !errors.Is(err, ErrBlockFailed) || !strings.Contains(err.Error(), "jose.test") {
		t.Errorf("port %q err %v", port, err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("Close of a block without Close: %v", err)
	}
}

func TestBearerToken(t *testing.T) {
	for _, tt := range []struct {
		auth string
		tok  string
		ok   bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer   abc  ", "abc", true},
		{"BEARER\tabc", "abc", true},
		{"Bearerabc", "", false},
		{"Bearer ", "", false},
		{"Bearer", "", false},
		{"Basic abc", "", false},
		{"", "", false},
	} {
		msg := engine.Msg{"req": map[string]any{"headers": map[string]any{"authorization": tt.auth}}}
		tok, ok := bearerToken(msg)
		if tok != tt.tok || ok != tt.ok {
			t.Errorf("%q: got %q %v, want %q %v", tt.auth, tok, ok, tt.tok, tt.ok)
		}
		msg = engine.Msg{"req": map[string]any{"headers": map[string]string{"authorization": tt.auth}}}
		if tok, ok := bearerToken(msg); tok != tt.tok || ok != tt.ok {
			t.Errorf("%q (map[string]string): got %q %v", tt.auth, tok, ok)
		}
	}
	if _, ok := bearerToken(engine.Msg{"req": "nonsense"}); ok {
		t.Error("a req that is not an object gave a token")
	}
}

// BenchmarkJWKSBlock measures the block alone (no engine, no trace): its
// only allocation is the msg.jwks map, never the body.
func BenchmarkJWKSBlock(b *testing.B) {
	e := newBlockEnv(b)
	e.ensure(b, "main", "ES256", "RS256")
	blk := newJWKS(e.ks, "main", 15*time.Minute)
	msg := engine.Msg{}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := blk.Process(b.Context(), nil, msg); err != nil {
			b.Fatal(err)
		}
	}
}
