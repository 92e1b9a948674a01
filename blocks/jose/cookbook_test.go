package jose

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
)

// RFC 7520 ("JOSE cookbook") examples, read in place from the shared test
// data (../shared/testdata/jose from the repository root). Every JWS
// example must verify through flowd's checks and key choice and go-jose,
// every JWE example must decrypt through the Decrypter, unless this table
// says why not; a skip not in the table, or a table entry that runs, fails.
var cookbookSkips = map[string]string{
	"jws/4_6.protecting_specific_header_fields.json":         "JSON serialization only (kid in an unprotected header): flowd takes compact serialization only",
	"jws/4_7.protecting_content_only.json":                   "JSON serialization only (no protected header at all)",
	"jws/4_8.multiple_signatures.json":                       "JSON serialization only (multiple signatures)",
	"rfc7797/4.2.hmac-sha2_b64_false.json":                   "JSON serialization only, and b64=false",
	"rfc7797/hmac-sha2_b64_false.json":                       "b64=false (RFC 7797) is refused by design: not a JWT (RFC 7797 section 7); checked to be refused",
	"curve25519/ecdh-es.json":                                "X25519 ECDH-ES: go-jose v4.1.8 has no X25519 (OKP) encryption keys",
	"jwe/5_10.including_additional_authentication_data.json": "JSON serialization only (external AAD)",
	"jwe/5_11.protecting_specific_header_fields.json":        "JSON serialization only (alg and kid unprotected)",
	"jwe/5_12.protecting_content_only.json":                  "JSON serialization only (no protected header)",
	"jwe/5_13.encrypting_to_multiple_recipients.json":        "JSON serialization only (multiple recipients)",
}

// cookbookDir is relative to this package's directory, where go test runs.
const cookbookDir = "../../../shared/testdata/jose/cookbook"

type cookbookExample struct {
	Title string `json:"title"`
	Input struct {
		Payload   string          `json:"payload"`
		Plaintext string          `json:"plaintext"`
		Key       json.RawMessage `json:"key"`
		Pwd       string          `json:"pwd"`
		Alg       json.RawMessage `json:"alg"`
		Enc       string          `json:"enc"`
		Zip       string          `json:"zip"`
	} `json:"input"`
	Output struct {
		Compact string `json:"compact"`
	} `json:"output"`
	// Section 6 (nesting) has its own shape.
	Sign    *cookbookExample `json:"sign"`
	Encrypt *cookbookExample `json:"encrypt"`
}

func cbFiles(t *testing.T) []string {
	t.Helper()
	if _, err := os.Stat(cookbookDir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("RFC 7520 vectors not found at %s: CI must run them: %v", cookbookDir, err)
		}
		t.Skipf("RFC 7520 vectors not found at %s (they live outside the repository): %v", cookbookDir, err)
	}
	var files []string
	err := filepath.WalkDir(cookbookDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") && !strings.HasPrefix(filepath.Base(path), ".") {
			rel, _ := filepath.Rel(cookbookDir, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func cbLoad(t *testing.T, rel string) cookbookExample {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cookbookDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	var ex cookbookExample
	if err := json.Unmarshal(b, &ex); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return ex
}

// cbPrivateKey parses a cookbook key (they are all private or secret).
func cbPrivateKey(t *testing.T, raw json.RawMessage) gojose.JSONWebKey {
	t.Helper()
	var k gojose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		t.Fatalf("key: %v", err)
	}
	return k
}

// cbVerifyKey is what a key source would hand out for a cookbook key: the
// public half, or the secret for oct.
func cbVerifyKey(t *testing.T, raw json.RawMessage) VerifyKey {
	t.Helper()
	k := cbPrivateKey(t, raw)
	if _, secret := k.Key.([]byte); !secret {
		k = k.Public()
	}
	return VerifyKey{JWK: k}
}

func cbValidator(t *testing.T, alg string, keys ...VerifyKey) *Validator {
	t.Helper()
	p := DefaultPolicy()
	p.Algorithms = []string{alg}
	p.Source = &staticKeySource{keys: keys}
	p.Issuer = "hobbiton.example"
	p.AudienceOptional = true
	p.Now = func() time.Time { return time.Unix(1300819000, 0) } // before the section 6 token's exp
	return mustValidator(t, p)
}

func TestCookbook(t *testing.T) {
	files := cbFiles(t)
	ran := map[string]bool{}
	for _, rel := range files {
		t.Run(rel, func(t *testing.T) {
			ex := cbLoad(t, rel)
			skip := ""
			switch {
			case strings.HasPrefix(rel, "jwk/"):
				cbJWK(t, rel)
			case ex.Sign != nil:
				cbNested(t, ex)
			case ex.Output.Compact == "":
				skip = "no compact serialization"
			case strings.HasPrefix(rel, "rfc7797/"):
				cbB64False(t, ex)
				skip = "b64=false"
			case rel == "curve25519/ecdh-es.json":
				cbX25519Unsupported(t, ex)
				skip = "X25519"
			case ex.Input.Enc != "":
				cbJWE(t, ex)
			default:
				cbJWS(t, ex)
			}
			reason, expected := cookbookSkips[rel]
			switch {
			case skip != "" && !expected:
				t.Fatalf("unexpected skip (%s): add it to cookbookSkips with a reason, or make it run", skip)
			case skip == "" && expected:
				t.Fatalf("listed as skipped (%s) but it ran", reason)
			case skip != "":
				t.Logf("skipped: %s", reason)
			default:
				ran[rel] = true
			}
		})
	}
	for rel := range cookbookSkips {
		if !slices.Contains(files, rel) {
			t.Errorf("cookbookSkips lists %s, which does not exist", rel)
		}
	}
	t.Logf("%d examples ran, %d skipped with a reason", len(ran), len(cookbookSkips))
}

func cbAlg(t *testing.T, ex cookbookExample) string {
	t.Helper()
	var alg string
	if err := json.Unmarshal(ex.Input.Alg, &alg); err != nil {
		t.Fatalf("alg: %v", err)
	}
	return alg
}

// cbJWS verifies a compact example through every flowd check up to the
// signature (its payload is prose, not claims).
func cbJWS(t *testing.T, ex cookbookExample) {
	alg := cbAlg(t, ex)
	key := cbVerifyKey(t, ex.Input.Key)
	v := cbValidator(t, alg, key)
	segs := strings.Split(ex.Output.Compact, ".")
	if segs[1] == "" {
		// Detached content (RFC 7520 §4.5): flowd's header checks and key
		// choice, then go-jose's detached verification.
		hdr, terr := decodeHeader(segs[0])
		if terr != nil {
			t.Fatal(terr)
		}
		th, info, terr := v.checkHeader(hdr)
		if terr != nil {
			t.Fatal(terr)
		}
		_, material, outcome := pickVerifyKey([]VerifyKey{key}, th.Kid, info, time.Time{})
		if outcome != pickOne {
			t.Fatalf("key choice: %v", outcome)
		}
		obj, err := gojose.ParseDetached(ex.Output.Compact, []byte(ex.Input.Payload), info.parse)
		if err != nil {
			t.Fatal(err)
		}
		if err := obj.DetachedVerify([]byte(ex.Input.Payload), material); err != nil {
			t.Fatalf("detached: %v", err)
		}
		// The validator itself never takes detached content.
		if _, _, _, err := v.verify(t.Context(), ex.Output.Compact); tokenReason(t, err) != ReasonBadSignature {
			t.Fatalf("detached token through verify: %v", err)
		}
		return
	}
	_, got, payload, err := v.verify(t.Context(), ex.Output.Compact)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if string(payload) != ex.Input.Payload || got.JWK.KeyID != key.JWK.KeyID {
		t.Fatalf("payload %q key %q", payload, got.JWK.KeyID)
	}
	// A flipped signature bit must fail the same way.
	tampered := ex.Output.Compact[:len(ex.Output.Compact)-2] + cbFlipChar(ex.Output.Compact[len(ex.Output.Compact)-2]) + ex.Output.Compact[len(ex.Output.Compact)-1:]
	if _, _, _, err := v.verify(t.Context(), tampered); tokenReason(t, err) != ReasonBadSignature {
		t.Fatalf("tampered: %v", err)
	}
}

func cbFlipChar(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// cbJWE decrypts a compact example, switching on what it needs.
func cbJWE(t *testing.T, ex cookbookExample) {
	alg := cbAlg(t, ex)
	var key gojose.JSONWebKey
	if ex.Input.Pwd != "" {
		key = gojose.JSONWebKey{Key: []byte(ex.Input.Pwd)}
	} else {
		key = cbPrivateKey(t, ex.Input.Key)
	}
	allow := JWEAllow{
		RSA1_5: alg == "RSA1_5",
		PBES2:  strings.HasPrefix(alg, "PBES2"),
		CBC:    strings.Contains(ex.Input.Enc, "CBC"),
		Zip:    ex.Input.Zip != "",
	}
	t.Logf("alg %s enc %s, enabled: %+v", alg, ex.Input.Enc, allow)
	d := mustDecrypter(t, DecrypterOptions{Keys: []gojose.JSONWebKey{key}, KeyAlgorithms: []string{alg},
		ContentEncryptions: []string{ex.Input.Enc}, Allow: allow})
	out, err := d.Decrypt(ex.Output.Compact)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if string(out.Plaintext) != ex.Input.Plaintext {
		t.Fatalf("plaintext %q", out.Plaintext)
	}
	// Without the switch the same token is refused.
	if allow != (JWEAllow{}) {
		o := DecrypterOptions{Keys: []gojose.JSONWebKey{key}}
		if d2, err := NewDecrypter(o); err == nil {
			if _, err := d2.Decrypt(ex.Output.Compact); tokenReason(t, err) != ReasonDecryptFailed {
				t.Fatalf("decrypted with the defaults: %v", err)
			}
		}
	}
}

// cbNested is RFC 7520 §6: a PS256 JWT inside an RSA-OAEP JWE.
func cbNested(t *testing.T, ex cookbookExample) {
	v := cbValidator(t, cbAlg(t, *ex.Sign), cbVerifyKey(t, ex.Sign.Input.Key))
	res, err := v.Validate(t.Context(), ex.Sign.Output.Compact)
	if err != nil {
		t.Fatalf("inner JWT: %v", err)
	}
	key := cbPrivateKey(t, ex.Encrypt.Input.Key)
	d := mustDecrypter(t, DecrypterOptions{Keys: []gojose.JSONWebKey{key}, KeyAlgorithms: []string{cbAlg(t, *ex.Encrypt)},
		ContentEncryptions: []string{ex.Encrypt.Input.Enc}})
	nested, err := d.DecryptNested(t.Context(), ex.Encrypt.Output.Compact, v)
	if err != nil {
		t.Fatalf("DecryptNested: %v", err)
	}
	if nested.Claims["iss"] != "hobbiton.example" || nested.Claims["http://example.com/is_root"] != true ||
		res.Claims["exp"] != nested.Claims["exp"] {
		t.Fatalf("claims %v", nested.Claims)
	}
}

// cbB64False: flowd must refuse an RFC 7797 unencoded payload.
func cbB64False(t *testing.T, ex cookbookExample) {
	key := cbVerifyKey(t, ex.Input.Key)
	key.JWK.KeyID = ""
	v := cbValidator(t, cbAlg(t, ex), key)
	if _, _, _, err := v.verify(t.Context(), ex.Output.Compact); tokenReason(t, err) == "" {
		t.Fatal("b64=false token accepted")
	}
}

// cbX25519Unsupported pins the reason of the skip: if go-jose learns
// X25519, this fails and the example should run.
func cbX25519Unsupported(t *testing.T, ex cookbookExample) {
	var k gojose.JSONWebKey
	if err := k.UnmarshalJSON(ex.Input.Key); err == nil {
		t.Fatalf("go-jose now parses X25519 keys (%T): run the example", k.Key)
	}
}

// cbJWK runs the RFC 7520 §3 keys through remote key admission: public
// signature keys are admitted, private keys never, secrets only locally.
func cbJWK(t *testing.T, rel string) {
	raw, err := os.ReadFile(filepath.Join(cookbookDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]bool{ // remote, local secret
		"jwk/3_1.ec_public_key.json":                 {true, true},
		"jwk/3_2.ec_private_key.json":                {false, false},
		"jwk/3_3.rsa_public_key.json":                {true, true},
		"jwk/3_4.rsa_private_key.json":               {false, false},
		"jwk/3_5.symmetric_key_mac_computation.json": {false, true},
		"jwk/3_6.symmetric_key_encryption.json":      {false, false}, // an A256GCM key cannot verify
	}[rel]
	for i, allowSecret := range []bool{false, true} {
		_, err := admitJWK(raw, allowSecret)
		if (err == nil) != want[i] {
			t.Errorf("admitJWK(allowSecret=%v) err = %v, want admitted=%v", allowSecret, err, want[i])
		}
	}
}
