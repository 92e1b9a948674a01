package httpblock

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
)

// randomWords returns a source of random texts of chars, up to max runes
// long, drawn from rng.
func randomWords(rng *rand.Rand, chars string) func(max int) string {
	runes := []rune(chars)
	return func(max int) string {
		b := make([]rune, rng.IntN(max+1))
		for i := range b {
			b[i] = runes[rng.IntN(len(runes))]
		}
		return string(b)
	}
}

// TestSizeBound: the bound http.in gives the engine for a bodyless
// request (instead of the engine walking the message) is never below the
// engine's own estimate, on requests of every shape.
func TestSizeBound(t *testing.T) {
	tr := &inTrigger{params: []string{"id", "rest"}}
	rng := rand.New(rand.NewPCG(1, 2))
	word := randomWords(rng, "abcXYZ019-_.~%/ é\"\\")
	for i := range 2000 {
		q := url.Values{}
		for range rng.IntN(4) {
			k := word(6)
			for range 1 + rng.IntN(3) {
				q.Add(k, word(10))
			}
		}
		target := "/items/" + url.PathEscape(word(8)) + "/" + url.PathEscape(word(12))
		if len(q) > 0 {
			target += "?" + q.Encode()
		}
		r := httptest.NewRequest("GET", target, nil)
		r.SetPathValue("id", word(8))
		r.SetPathValue("rest", word(12))
		for range rng.IntN(6) {
			k := http.CanonicalHeaderKey("X-" + strings.Map(func(c rune) rune {
				if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
					return c
				}
				return 'h'
			}, word(8)))
			for range 1 + rng.IntN(3) {
				r.Header.Add(k, word(20))
			}
		}
		if i%7 == 0 {
			r.Header.Add("Cookie", "a=1")
			r.Header.Add("Cookie", "b=2")
		}
		msg, _, ref := tr.message(httptest.NewRecorder(), r, nil)
		if ref != nil {
			continue // a query net/url refuses
		}
		if got, est := tr.sizeBound(r), engine.MessageSize(msg); got < est {
			t.Fatalf("request %d (%s, %d headers): bound %d < engine estimate %d", i, target, len(r.Header), got, est)
		}
	}
}

// A bodyless request whose headers alone pass the message size limit is
// still refused with 413 before any block runs.
func TestSizeBoundHugeHeaders(t *testing.T) {
	e := newEnv(t, engine.Options{Limits: engine.Limits{MaxMessageBytes: 4096}})
	e.deploy(t, endpoint(t, "h", "GET", "/h", map[string]any{"body": `"ok"`}), 1)
	req := httptest.NewRequest("GET", "/h", nil)
	for i := range 10 {
		req.Header.Set(fmt.Sprintf("X-Big-%d", i), strings.Repeat("v", 500))
	}
	w := e.serve(req)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413: %s", w.Code, w.Body)
	}
	small := httptest.NewRequest("GET", "/h", nil)
	w = e.serve(small)
	if w.Code != 200 {
		t.Errorf("small request: %d %s", w.Code, w.Body)
	}
}

// TestBodyBound: for form and text bodies http.in also hands the engine a
// bound instead of a walk; with the request's bound it is never below the
// engine's estimate of the whole message. JSON bodies get no bound (-1).
func TestBodyBound(t *testing.T) {
	tr := &inTrigger{router: NewRouter(RouterOptions{}), maxBody: 1 << 20}
	rng := rand.New(rand.NewPCG(3, 4))
	word := randomWords(rng, "abcXYZ019-_.~ é\"\\=&+")
	kinds := []struct {
		name, ct string
		body     func() string
		want     int // -1: no bound
	}{
		{"form", "application/x-www-form-urlencoded", func() string {
			q := url.Values{}
			for range rng.IntN(6) {
				k := word(6)
				for range 1 + rng.IntN(3) {
					q.Add(k, word(12))
				}
			}
			enc := q.Encode()
			if rng.IntN(4) == 0 {
				enc += "&bare&=v&k=" // names without values, values without names
			}
			return enc
		}, 0},
		{"text", "text/plain", func() string { return word(40) }, 0},
		{"json", "application/json", func() string { return `{"a":[1,2,3],"b":"x"}` }, -1},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			for i := range 500 {
				body := k.body()
				r := httptest.NewRequest("POST", "/t?"+url.Values{"q": {word(5)}}.Encode(), strings.NewReader(body))
				r.Header.Set("Content-Type", k.ct)
				msg, size, ref := tr.message(httptest.NewRecorder(), r, nil)
				if ref != nil {
					t.Fatalf("body %q refused: %+v", body, ref.body)
				}
				bb := bodyBound(msg, size)
				if k.want < 0 {
					if bb >= 0 {
						t.Fatalf("body %q: bound %d, want none", body, bb)
					}
					continue
				}
				if bb < 0 {
					t.Fatalf("body %q: no bound", body)
				}
				if got, est := tr.sizeBound(r)+bb, engine.MessageSize(msg); got < est {
					t.Fatalf("request %d, body %q: bound %d < engine estimate %d", i, body, got, est)
				}
			}
		})
	}
}

// TestLazyRequest: msg.req's answers without building it (a header, the
// method, path and host) are what the built msg.req holds, on requests
// with headers of every shape, including names set by hand in another
// case and repeated values; the built value is the one message builds.
func TestLazyRequest(t *testing.T) {
	tr := &inTrigger{router: NewRouter(RouterOptions{}), maxBody: 1 << 20, params: []string{"id"}}
	rng := rand.New(rand.NewPCG(5, 6))
	names := []string{"Authorization", "If-None-Match", "Cookie", "Set-Cookie", "X-Custom", "Accept", "Dpop"}
	for i := range 500 {
		r := httptest.NewRequest([]string{"GET", "POST", "PATCH"}[rng.IntN(3)], "/items/7?q=1", nil)
		r.SetPathValue("id", "7")
		r.Host = []string{"a.example", "b.example:8080"}[rng.IntN(2)]
		for range rng.IntN(6) {
			k := names[rng.IntN(len(names))]
			for range 1 + rng.IntN(2) {
				r.Header.Add(k, fmt.Sprintf("v%d", rng.IntN(100)))
			}
		}
		switch i % 10 {
		case 0: // a name set by hand, not canonical: lowercased like the rest
			r.Header["x-hand"] = []string{"h"}
		case 1: // two spellings of one name: only the built map can say which wins
			r.Header["X-Dup"] = []string{"1"}
			r.Header["x-dup"] = []string{"2"}
		case 2: // a non-ASCII name
			r.Header["X-Ünï"] = []string{"u"}
		}
		msg, _, ref := tr.message(httptest.NewRecorder(), r, nil)
		if ref != nil {
			t.Fatalf("request refused: %+v", ref.body)
		}
		lz, ok := msg["req"].(*lazyReq)
		if !ok {
			t.Fatalf("msg.req is %T, want the lazy request", msg["req"])
		}
		want := tr.request(r, url.Values{"q": {"1"}})
		wantHeaders := want["headers"].(map[string]any)
		for _, name := range []string{"authorization", "if-none-match", "cookie", "set-cookie", "x-custom", "accept",
			"dpop", "x-hand", "x-dup", "x-ünï", "missing", "Authorization"} {
			got, ok := lz.Lookup([]string{"headers", name})
			if name == "x-dup" && i%10 == 1 {
				if ok {
					t.Errorf("request %d: %s answered %v without the built map", i, name, got)
				}
				continue
			}
			if !ok || got != wantHeaders[name] {
				t.Errorf("request %d: header %s: %v (%v), built %v", i, name, got, ok, wantHeaders[name])
			}
		}
		for _, k := range []string{"method", "path", "host"} {
			if got, ok := lz.Lookup([]string{k}); !ok || got != want[k] {
				t.Errorf("request %d: %s: %v (%v), built %v", i, k, got, ok, want[k])
			}
		}
		if _, ok := lz.Lookup([]string{"params", "id"}); ok {
			t.Errorf("request %d: params answered without building", i)
		}
		built := lz.Value()
		if i%10 == 1 { // which spelling wins is the map's iteration order, built or not
			delete(built.(map[string]any)["headers"].(map[string]any), "x-dup")
			delete(wantHeaders, "x-dup")
		}
		if !reflect.DeepEqual(built, want) || lz.Value().(map[string]any)["headers"] == nil {
			t.Fatalf("request %d: built %v, want %v", i, built, want)
		}
		if reflect.ValueOf(lz.Value()).Pointer() != reflect.ValueOf(built).Pointer() {
			t.Fatalf("request %d: Value built twice", i)
		}
	}
}
