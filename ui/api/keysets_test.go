package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/store/storetest"
	"github.com/flowd/flowd/ui/api"
)

const keysetToken = "ks-test-token"

// ksAllAlgs makes keys of every kind a keyset can hold, so that a leak of
// any private member (RSA d/p/q, EC and OKP d, oct k) would show.
var ksAllAlgs = []string{"RS256", "ES256", "EdDSA", "HS256", "RSA-OAEP-256", "ECDH-ES+A256KW", "A256KW", "dir"}

func newKeysetAPI(t *testing.T) (http.Handler, *jose.Keysets, *enginetest.Clock) {
	t.Helper()
	st := storetest.TempBolt(t)
	a := startApp(t, app.Config{Store: st, Registry: engine.NewRegistry()})
	clk := enginetest.NewClock(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	ks := jose.NewKeysets(st)
	ks.Now, ks.RSABits = clk.Now, 2048
	h := api.New(a, tokenIs(keysetToken), nil)
	api.RegisterKeysets(h, ks)
	for _, name := range []string{"main", "partners"} {
		if err := ks.Ensure(t.Context(), name, ksAllAlgs...); err != nil {
			t.Fatal(err)
		}
	}
	return h, ks, clk
}

// ksDo sends one authenticated request and checks the body for private
// JWK members: every answer of these endpoints passes through here.
func ksDo(t *testing.T, h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+keysetToken)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	for _, member := range []string{`"d"`, `"k"`, `"p"`, `"q"`, `"dp"`, `"dq"`, `"qi"`, `"jwk"`} {
		if strings.Contains(w.Body.String(), member) {
			t.Errorf("%s %s: answer has member %s: %s", method, path, member, w.Body)
		}
	}
	return w
}

func TestKeysetEndpoints(t *testing.T) {
	h, ks, clk := newKeysetAPI(t)
	ctx := t.Context()
	main, err := ks.Get(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	activeES := ""
	for _, k := range main.Keys {
		if k.Alg == "ES256" && k.State == jose.StateActive {
			activeES = k.Kid
		}
	}

	t.Run("list", func(t *testing.T) {
		w := ksDo(t, h, "GET", "/admin/api/keysets", "")
		var out struct{ Keysets []jose.KeysetInfo }
		if err := json.Unmarshal(w.Body.Bytes(), &out); w.Code != 200 || err != nil {
			t.Fatalf("%d %v %s", w.Code, err, w.Body)
		}
		var names []string
		for _, k := range out.Keysets {
			names = append(names, k.Name)
			if len(k.Keys) != 2*len(ksAllAlgs) {
				t.Errorf("%s: %d keys, want %d", k.Name, len(k.Keys), 2*len(ksAllAlgs))
			}
			for _, key := range k.Keys {
				if key.Kid == "" || key.State == "" || key.Created.IsZero() {
					t.Errorf("%s: key without kid, state or created: %+v", k.Name, key)
				}
			}
		}
		if !slices.Equal(names, []string{"main", "partners"}) {
			t.Errorf("names %v", names)
		}
	})

	t.Run("get", func(t *testing.T) {
		w := ksDo(t, h, "GET", "/admin/api/keysets/main", "")
		var info jose.KeysetInfo
		if err := json.Unmarshal(w.Body.Bytes(), &info); w.Code != 200 || err != nil || info.Name != "main" {
			t.Fatalf("%d %v %s", w.Code, err, w.Body)
		}
	})

	t.Run("jwks preview is the served bytes", func(t *testing.T) {
		body, etag, err := ks.JWKS(ctx, "main")
		if err != nil {
			t.Fatal(err)
		}
		w := ksDo(t, h, "GET", "/admin/api/keysets/main/jwks", "")
		if w.Code != 200 || w.Body.String() != string(body) || w.Header().Get("ETag") != etag ||
			w.Header().Get("Content-Type") != jose.JWKSContentType {
			t.Errorf("%d %v %s", w.Code, w.Header(), w.Body)
		}
	})

	t.Run("rotate one alg", func(t *testing.T) {
		clk.Advance(time.Hour)
		w := ksDo(t, h, "POST", "/admin/api/keysets/main/rotate", `{"alg": "ES256", "retire_after": "72h"}`)
		var out struct {
			Rotation jose.Rotation
			Keyset   jose.KeysetInfo
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); w.Code != 200 || err != nil {
			t.Fatalf("%d %v %s", w.Code, err, w.Body)
		}
		if !slices.Equal(out.Rotation.Retired, []string{activeES}) || len(out.Rotation.Activated) != 1 {
			t.Errorf("rotation %+v", out.Rotation)
		}
		for _, k := range out.Keyset.Keys {
			if k.Kid == activeES && (k.State != jose.StateRetired || !k.RetireAt.Equal(clk.Now().Add(72*time.Hour))) {
				t.Errorf("old key %+v, want retired until now + 72h", k)
			}
		}
	})

	t.Run("rotate everything with an empty body", func(t *testing.T) {
		w := ksDo(t, h, "POST", "/admin/api/keysets/partners/rotate", "")
		var out struct{ Rotation jose.Rotation }
		if err := json.Unmarshal(w.Body.Bytes(), &out); w.Code != 200 || err != nil || len(out.Rotation.Retired) != len(ksAllAlgs) {
			t.Fatalf("%d %v %s", w.Code, err, w.Body)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		w := ksDo(t, h, "POST", "/admin/api/keysets/main/keys/"+activeES+"/revoke", "")
		var info jose.KeysetInfo
		if err := json.Unmarshal(w.Body.Bytes(), &info); w.Code != 200 || err != nil {
			t.Fatalf("%d %v %s", w.Code, err, w.Body)
		}
		i := slices.IndexFunc(info.Keys, func(k jose.KeyInfo) bool { return k.Kid == activeES })
		if i < 0 || !info.Keys[i].Revoked {
			t.Errorf("key %s not revoked: %+v", activeES, info.Keys)
		}
		body, _, _ := ks.JWKS(ctx, "main")
		if strings.Contains(string(body), activeES) {
			t.Error("revoked key still in the JWKS")
		}
	})

	for _, tt := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"unknown keyset", "GET", "/admin/api/keysets/nope", "", 404, "no_keyset"},
		{"unknown keyset jwks", "GET", "/admin/api/keysets/nope/jwks", "", 404, "no_keyset"},
		{"bad keyset name", "GET", "/admin/api/keysets/a%20b", "", 400, "bad_keyset"},
		{"rotate unknown keyset", "POST", "/admin/api/keysets/nope/rotate", "", 404, "no_keyset"},
		{"rotate unknown alg", "POST", "/admin/api/keysets/main/rotate", `{"alg": "XX1"}`, 400, "unsupported_alg"},
		{"rotate alg the keyset lacks", "POST", "/admin/api/keysets/main/rotate", `{"alg": "PS512"}`, 400, "no_active_key"},
		{"rotate bad duration", "POST", "/admin/api/keysets/main/rotate", `{"retire_after": "soon"}`, 400, "bad_request"},
		{"rotate negative duration", "POST", "/admin/api/keysets/main/rotate", `{"retire_after": "-1h"}`, 400, "bad_request"},
		{"rotate unknown member", "POST", "/admin/api/keysets/main/rotate", `{"forced": true}`, 400, "bad_request"},
		{"revoke unknown kid", "POST", "/admin/api/keysets/main/keys/nope/revoke", "", 404, "no_key"},
		{"revoke in unknown keyset", "POST", "/admin/api/keysets/nope/keys/x/revoke", "", 404, "no_keyset"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := ksDo(t, h, tt.method, tt.path, tt.body)
			var e struct{ Error struct{ Code string } }
			if err := json.Unmarshal(w.Body.Bytes(), &e); w.Code != tt.status || err != nil || e.Error.Code != tt.code {
				t.Errorf("%d %s, want %d %s", w.Code, w.Body, tt.status, tt.code)
			}
		})
	}

	t.Run("the scan would see private members", func(t *testing.T) {
		for _, alg := range []string{"RS256", "ES256", "HS256"} {
			k, err := jose.NewKey(alg, "", jose.KeyOptions{RSABits: 2048})
			if err != nil {
				t.Fatal(err)
			}
			leak, err := json.MarshalIndent(k.JWK, "", "  ") // as WriteJSON would
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(leak), `"d"`) && !strings.Contains(string(leak), `"k"`) {
				t.Errorf("%s: a private JWK has neither \"d\" nor \"k\": the scan checks nothing", alg)
			}
		}
	})

	t.Run("no token", func(t *testing.T) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/admin/api/keysets", nil))
		if w.Code != http.StatusUnauthorized || strings.Contains(w.Body.String(), "main") {
			t.Errorf("%d %s", w.Code, w.Body)
		}
	})
}
