package jose

import (
	"encoding/json"
	"fmt"
	"log"
	"math"
	"reflect"
	"strings"
	"testing"

	gojose "github.com/go-jose/go-jose/v4"
)

func TestDecodeJWS(t *testing.T) {
	k := testKeyFor(t, "ES256", "a")
	d, err := Decode(signedToken(t, k, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if d.Verified || d.Kind != "JWS" || d.Header["alg"] != "ES256" || d.Header["kid"] != k.kid || d.Claims["sub"] != "alice" {
		t.Fatalf("decoded %+v", d)
	}
	// The label survives serialization, e.g. into a trace.
	b, _ := json.Marshal(d)
	if !strings.Contains(string(b), `"verified":false`) {
		t.Fatalf("JSON %s", b)
	}
	// Decode does not verify: a forged signature decodes the same.
	forged := signRaw(t, testKeyFor(t, "ES256", "b"), mustJSON(t, jwtHeader(k)), mustJSON(t, validClaims()))
	if d2, err := Decode(forged); err != nil || d2.Verified || d2.Claims["sub"] != "alice" {
		t.Fatalf("forged: %+v %v", d2, err)
	}
	// A payload that is not a JSON object has no claims.
	if d3, err := Decode(signRaw(t, k, mustJSON(t, jwtHeader(k)), "plain text")); err != nil || d3.Claims != nil {
		t.Fatalf("text payload: %+v %v", d3, err)
	}
}

func TestDecodeJWEShowsHeaderOnly(t *testing.T) {
	k := jweTestKeys(t)
	tok, err := mustEncrypter(t, k.aes256, EncrypterOptions{KeyAlgorithm: "A256KW"}).Encrypt([]byte(`{"secret":"s3cr3t"}`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(tok)
	if err != nil {
		t.Fatal(err)
	}
	if d.Verified || d.Kind != "JWE" || d.Header["alg"] != "A256KW" || d.Header["enc"] != "A256GCM" || d.Claims != nil {
		t.Fatalf("decoded %+v", d)
	}
}

func TestDecodeRefusals(t *testing.T) {
	k := testKeyFor(t, "HS256", "a")
	good := signedToken(t, k, nil, nil)
	tests := []struct {
		name, token string
		want        Reason
	}{
		{"too large", strings.Repeat("A", MaxDecodeSize+1), ReasonTooLarge},
		{"empty", "", ReasonMalformed},
		{"one segment", "eyJhbGciOiJIUzI1NiJ9", ReasonMalformed},
		{"four segments", good + ".AA", ReasonMalformed},
		{"JSON serialization", `{"payload":"e30","signatures":[]}`, ReasonMalformed},
		{"bad header", "AAAA." + strings.SplitN(good, ".", 2)[1], ReasonMalformed},
		{"duplicate header member", signRaw(t, k, `{"alg":"HS256","alg":"none"}`, "{}"), ReasonMalformed},
		{"empty header", "." + strings.SplitN(good, ".", 2)[1], ReasonMalformed},
		{"whitespace", good[:10] + "\n" + good[10:], ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.token)
			if got := tokenReason(t, err); got != tt.want {
				t.Fatalf("reason = %q, want %q (%v)", got, tt.want, err)
			}
		})
	}
}

func TestSplitCompactCanonicalBase64(t *testing.T) {
	tests := []struct {
		token string
		ok    bool
	}{
		{"AA.AA.AA", true},
		{"AA.AB.AA", false},   // stray bits: "AB" decodes like "AA"
		{"AAA.AAF.AA", false}, // "AAF" carries a stray bit, "AAE" does not
		{"AAA.AAE.AA", true},
		{"AAA.AAQ.AA", true},
		{"A.AA.AA", false}, // impossible length
		{"AA=.AA.AA", false},
		{"AA.AA.A+", false},
		{"AA.AA.A/", false},
		{"AA.A A.AA", false},
		{"AA.AA.AA\n", false},
		{"..", true},
		{"AA.AA.AA.AA.AA", true},
		{"AA.AA.AA.AA", false},
		{"AA.AA.AA.AA.AA.AA", false},
		{"AA", false},
	}
	for _, tt := range tests {
		if _, ok := splitCompact(tt.token); ok != tt.ok {
			t.Errorf("splitCompact(%q) ok = %v, want %v", tt.token, ok, tt.ok)
		}
	}
}

func TestStrictJSON(t *testing.T) {
	valid := []string{
		`{}`, ` { } `, `{"a":1}`, `{"a":-0.5e+10,"b":[true,false,null,"x",{}],"c":{"d":[]}}`,
		`{"e":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}`, `{"u":"é😀"}`, `{"n":0}`, `{"n":-0}`, `{"n":1E2}`,
		`{"big":1e308}`, `{"tiny":1e-400}`, `{"":""}`, "{\"a\":\n\t1\r}",
	}
	for _, s := range valid {
		got, err := parseStrictObject([]byte(s), 8)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		var want map[string]any
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatalf("%s: encoding/json: %v", s, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %#v, encoding/json %#v", s, got, want)
		}
	}
	invalid := []string{
		``, ` `, `[]`, `"s"`, `1`, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,}`, `{"a":1 "b":2}`,
		`{"a":1,"a":2}`, `{"a":{"b":1,"b":1}}`, `{"a":1,"\u0061":2}`, `{'a':1}`, `{a:1}`,
		`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":+1}`, `{"a":0x10}`, `{"a":1e999}`, `{"a":-1e999}`,
		`{"a":NaN}`, `{"a":Infinity}`, `{"a":tru}`, `{"a":nul}`, `{"a":True}`,
		`{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12G4"}`, `{"a":"\ud800"}`, `{"a":"\udc00"}`, `{"a":"\ud800\u0041"}`,
		`{"a":"\ud800x"}`, "{\"a\":\"\x01\"}", "{\"a\":\"\xff\"}", "{\"\xc3\":1}", `{"a":"unterminated}`,
		`{"a":1}}`, `{"a":1} x`, `{"a":[1,]}`, `{"a":[,1]}`, `{"a":[1 2]}`, "\ufeff{}",
		`{"a":` + strings.Repeat("[", 9) + strings.Repeat("]", 9) + `}`,
	}
	for _, s := range invalid {
		if _, err := parseStrictObject([]byte(s), 8); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if _, err := parseStrictObject([]byte(`{"a":[[[[[[[1]]]]]]]}`), 8); err != nil {
		t.Errorf("depth 8: %v", err)
	}
	v, _ := parseStrictObject([]byte(`{"n":1e19}`), 1)
	if v["n"].(float64) != 1e19 || math.IsInf(v["n"].(float64), 0) {
		t.Errorf("1e19 = %v", v["n"])
	}
}

// What the strict reader accepts, go-jose must read the same way: a
// header member the two parsers disagree on would be smuggling.
func TestStrictHeaderAgreesWithGoJose(t *testing.T) {
	k := testKeyFor(t, "HS256", "a")
	headers := []string{
		`{"alg":"HS256","kid":"` + k.kid + `"}`,
		`{"\u0061lg":"HS256","kid":"` + k.kid + `"}`,
		`{"alg":"HS\u0032\u00356","kid":"` + k.kid + `"}`,
		` {"kid" : "` + k.kid + `" , "alg" : "HS256" } `,
	}
	for _, h := range headers {
		tok := signRaw(t, k, h, mustJSON(t, validClaims()))
		obj, err := gojose.ParseSignedCompact(tok, []gojose.SignatureAlgorithm{"HS256"})
		if err != nil {
			t.Fatalf("%s: go-jose: %v", h, err)
		}
		ours, terr := decodeHeader(strings.Split(tok, ".")[0])
		if terr != nil {
			t.Fatalf("%s: %v", h, terr)
		}
		if ours["alg"] != string(obj.Signatures[0].Header.Algorithm) || ours["kid"] != obj.Signatures[0].Header.KeyID {
			t.Errorf("%s: ours %v, go-jose %+v", h, ours, obj.Signatures[0].Header)
		}
		v := mustValidator(t, testPolicy(staticSource(k), "HS256"))
		if _, err := v.Validate(t.Context(), tok); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
}

func TestKidShape(t *testing.T) {
	for kid, ok := range map[string]bool{
		"abc": true, "bilbo.baggins@hobbiton.example": true, "../../etc/passwd": true, "é-ß": true,
		"with space": true, "": false, strings.Repeat("k", 256): true, strings.Repeat("k", 257): false,
		"tab\there": false, "nl\n": false, "nul\x00": false, "bidi\u202e": false, "zwsp\u200b": false, "\xff": false,
	} {
		if kidShapeOK(kid) != ok {
			t.Errorf("kidShapeOK(%q) = %v", kid, !ok)
		}
	}
}

// Decode shows a token without verifying it: for debugging only.
func ExampleDecode() {
	d, err := Decode("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Kind, d.Header["alg"], d.Claims["sub"], "verified:", d.Verified)
	// Output: JWS HS256 alice verified: false
}
