package jose

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/engine/enginetest"
	gojose "github.com/go-jose/go-jose/v4"
)

// Every attack asserts the one reason it must end with. Timings are only
// logged: a slow refusal is worth reading about, not a flaky failure.

type atCase struct {
	name   string
	token  string
	policy func(*Policy) // nil: atPolicy as is
	want   Reason
}

func atRun(t *testing.T, base Policy, cases []atCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			if tt.policy != nil {
				tt.policy(&p)
			}
			v := mustValidator(t, p)
			start := time.Now()
			res, err := v.Validate(t.Context(), tt.token)
			took := time.Since(start)
			if got := tokenReason(t, err); got != tt.want {
				t.Fatalf("reason = %q, want %q (%v)", got, tt.want, err)
			}
			if err != nil && res != nil {
				t.Fatal("a refused token returned a result")
			}
			t.Logf("%s in %s", tt.want, took)
		})
	}
}

func roomy(p *Policy) { p.MaxTokenSize = 1 << 20 }

func TestAttackAlgNone(t *testing.T) {
	rs, hs := testKeyFor(t, "RS256", "a"), testKeyFor(t, "HS256", "a")
	base := testPolicy(staticSource(rs, hs), "RS256", "HS256")
	claims := mustJSON(t, validClaims())
	good := signedToken(t, rs, nil, nil)
	sig := good[strings.LastIndex(good, ".")+1:]
	var cases []atCase
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		for _, kid := range []string{"", rs.kid} {
			h := map[string]any{"alg": alg}
			if kid != "" {
				h["kid"] = kid
			}
			unsigned := b64url([]byte(mustJSON(t, h))) + "." + b64url([]byte(claims)) + "."
			cases = append(cases,
				atCase{alg + " empty signature kid=" + kid, unsigned, nil, ReasonAlgNotAllowed},
				atCase{alg + " kept signature kid=" + kid, unsigned + sig, nil, ReasonAlgNotAllowed})
		}
	}
	cases = append(cases,
		atCase{"lower-case alg", signedToken(t, rs, func(h map[string]any) { h["alg"] = "rs256" }, nil), nil, ReasonAlgNotAllowed},
		atCase{"alg missing", signedToken(t, rs, func(h map[string]any) { delete(h, "alg") }, nil), nil, ReasonMalformed},
		atCase{"empty signature", good[:strings.LastIndex(good, ".")+1], nil, ReasonBadSignature},
		atCase{"tampered payload", strings.Join([]string{strings.Split(good, ".")[0], b64url([]byte(strings.Replace(claims, "alice", "admin", 1))), sig}, "."), nil, ReasonBadSignature},
	)
	atRun(t, base, cases)
}

// The public key, in every form an attacker might guess a library turns
// it into, used as an HMAC secret.
func TestAttackKeyConfusion(t *testing.T) {
	rs := testKeyFor(t, "RS256", "a")
	pub := &rs.priv.(*rsa.PrivateKey).PublicKey
	pkix, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(pub)
	jwkJSON, err := json.Marshal(gojose.JSONWebKey{Key: pub, KeyID: rs.kid, Algorithm: "RS256", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string][]byte{
		"PEM PKIX":      pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix}),
		"PEM PKCS1":     pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1}),
		"PEM no eol":    []byte(strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})))),
		"DER PKIX":      pkix,
		"DER PKCS1":     pkcs1,
		"JWK JSON":      jwkJSON,
		"raw modulus":   pub.N.Bytes(),
		"modulus b64":   []byte(b64url(pub.N.Bytes())),
		"jwk n member":  []byte(b64url(pub.N.Bytes())),
		"exponent only": []byte{1, 0, 1},
	}
	noAlg := *rs
	noAlg.verify.JWK.Algorithm = ""
	sources := map[string]*staticKeySource{"key with alg": staticSource(rs), "key without alg": staticSource(&noAlg)}
	var cases []atCase
	for srcName, src := range sources {
		base := testPolicy(src, "RS256", "HS256")
		for form, secret := range secrets {
			forger := &testKey{alg: "HS256", kid: rs.kid, priv: secret}
			withKid := signedToken(t, forger, nil, nil)
			withoutKid := signedToken(t, forger, func(h map[string]any) { delete(h, "kid") }, nil)
			cases = append(cases,
				atCase{srcName + "/" + form + "/kid", withKid, func(p *Policy) { *p = base }, ReasonAlgNotAllowed},
				atCase{srcName + "/" + form + "/no kid", withoutKid, func(p *Policy) { *p = base }, ReasonUnknownKid})
		}
	}
	// EC and Ed25519 public keys as HMAC secrets.
	es, ed := testKeyFor(t, "ES256", "a"), testKeyFor(t, "EdDSA", "a")
	ecPub := es.priv.(*ecdsa.PrivateKey).PublicKey
	ecBytes, _ := ecPub.Bytes()
	edBytes := []byte(ed.verify.JWK.Key.(ed25519.PublicKey))
	for name, k := range map[string]struct {
		key    *testKey
		secret []byte
	}{"EC point": {es, ecBytes}, "Ed25519 key": {ed, edBytes}} {
		forger := &testKey{alg: "HS256", kid: k.key.kid, priv: k.secret}
		cases = append(cases, atCase{name, signedToken(t, forger, nil, nil), func(p *Policy) {
			*p = testPolicy(staticSource(k.key), k.key.alg, "HS256")
		}, ReasonAlgNotAllowed})
	}
	atRun(t, testPolicy(staticSource(rs), "RS256", "HS256"), cases)
}

func TestAttackWeakHMACSecrets(t *testing.T) {
	var cases []atCase
	for _, n := range []int{0, 1} {
		secret := make([]byte, n)
		k := &testKey{alg: "HS256", kid: "weak", priv: secret, verify: VerifyKey{
			JWK: gojose.JSONWebKey{Key: secret, KeyID: "weak", Algorithm: "HS256", Use: "sig"}}}
		src := staticSource(k)
		cases = append(cases, atCase{"secret of " + string(rune('0'+n)) + " bytes", signedToken(t, k, nil, nil),
			func(p *Policy) { p.Source = src }, ReasonUnknownKid})
	}
	atRun(t, testPolicy(&staticKeySource{}, "HS256"), cases)
	// Refused at the key level too: such a JWK is never admitted.
	for _, k := range []string{``, `AQ`} {
		raw := `{"kty":"oct","kid":"weak","alg":"HS256","k":"` + k + `"}`
		if _, err := admitJWK([]byte(raw), true); err == nil {
			t.Errorf("admitJWK took an HMAC secret of %d bytes", len(k)*3/4)
		}
	}
}

func TestAttackKid(t *testing.T) {
	es := testKeyFor(t, "ES256", "a")
	kid := func(v any) string { return signedToken(t, es, func(h map[string]any) { h["kid"] = v }, nil) }
	atRun(t, testPolicy(staticSource(es), "ES256"), []atCase{
		{"path traversal", kid("../../etc/passwd"), nil, ReasonUnknownKid},
		{"path traversal encoded", kid("..%2F..%2Fetc%2Fpasswd"), nil, ReasonUnknownKid},
		{"SQL", kid("' OR '1'='1' --"), nil, ReasonUnknownKid},
		{"SQL union", kid(`x" UNION SELECT key FROM keys --`), nil, ReasonUnknownKid},
		{"10 kB kid", kid(strings.Repeat("k", 10<<10)), roomy, ReasonMalformed},
		{"10 kB kid, default size cap", kid(strings.Repeat("k", 10<<10)), nil, ReasonTooLarge},
		{"257-byte kid", kid(strings.Repeat("k", 257)), nil, ReasonMalformed},
		{"number kid", kid(42), nil, ReasonMalformed},
		{"object kid", kid(map[string]any{"kid": es.kid}), nil, ReasonMalformed},
		{"null kid", kid(nil), nil, ReasonMalformed},
		{"array kid", kid([]string{es.kid}), nil, ReasonMalformed},
		{"bool kid", kid(true), nil, ReasonMalformed},
		{"empty kid", kid(""), nil, ReasonMalformed},
		{"control characters", kid("a\r\nb"), nil, ReasonMalformed},
		{"NUL", kid("a\x00"), nil, ReasonMalformed},
	})
}

// The attacker's key travels in the header or behind a URL: flowd never
// fetches or uses it.
func TestAttackHeaderKeyReferences(t *testing.T) {
	legit := testKeyFor(t, "ES256", "a")
	attacker := testKeyFor(t, "ES256", "attacker")
	var hits atomic.Int32
	lure := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write(publicJWKS(t, attacker))
	}))
	defer lure.Close()
	_, idpSrv := newIdP(t, 200, publicJWKS(t, legit), nil)
	remote := newTestRemote(t, idpSrv.URL, enginetest.NewClock(testNow), nil)

	attackerJWK, _ := json.Marshal(attacker.verify.JWK.Public())
	var jwk map[string]any
	_ = json.Unmarshal(attackerJWK, &jwk)
	cert := atSelfSignedCert(t, attacker.priv.(*ecdsa.PrivateKey))
	forge := func(edit func(h map[string]any)) string {
		h := jwtHeader(legit)
		edit(h)
		return signRaw(t, attacker, mustJSON(t, h), mustJSON(t, validClaims()))
	}
	atRun(t, testPolicy(remote, "ES256"), []atCase{
		{"jku, legit kid", forge(func(h map[string]any) { h["jku"] = lure.URL }), nil, ReasonBadSignature},
		{"jku, attacker kid", forge(func(h map[string]any) { h["jku"] = lure.URL; h["kid"] = attacker.kid }), nil, ReasonUnknownKid},
		{"x5u, legit kid", forge(func(h map[string]any) { h["x5u"] = lure.URL }), nil, ReasonBadSignature},
		{"x5u, no kid", forge(func(h map[string]any) { h["x5u"] = lure.URL; delete(h, "kid") }), nil, ReasonBadSignature},
		{"embedded jwk, legit kid", forge(func(h map[string]any) { h["jwk"] = jwk }), nil, ReasonBadSignature},
		{"embedded jwk, no kid", forge(func(h map[string]any) { h["jwk"] = jwk; delete(h, "kid") }), nil, ReasonBadSignature},
		{"embedded jwk, its own kid", forge(func(h map[string]any) { h["jwk"] = jwk; h["kid"] = attacker.kid }), nil, ReasonUnknownKid},
		{"self-signed x5c", forge(func(h map[string]any) { h["x5c"] = []string{cert} }), nil, ReasonBadSignature},
		{"self-signed x5c, no kid", forge(func(h map[string]any) { h["x5c"] = []string{cert}; delete(h, "kid") }), nil, ReasonBadSignature},
	})
	if n := hits.Load(); n != 0 {
		t.Fatalf("the attacker's URL was fetched %d times", n)
	}
}

func atSelfSignedCert(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp.example"},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der) // x5c is standard base64 (RFC 7515 §4.1.6)
}

// CVE-2022-21449: an ECDSA signature with r = s = 0 (or r = s = n) must
// never verify.
func TestAttackPsychicSignatures(t *testing.T) {
	var cases []atCase
	var keys []*testKey
	for _, alg := range []string{"ES256", "ES384", "ES512"} {
		k := testKeyFor(t, alg, "a")
		keys = append(keys, k)
		curve := k.priv.(*ecdsa.PrivateKey).Curve
		size := (curve.Params().BitSize + 7) / 8
		input := b64url([]byte(mustJSON(t, jwtHeader(k)))) + "." + b64url([]byte(mustJSON(t, validClaims())))
		n := curve.Params().N.FillBytes(make([]byte, size))
		sigs := map[string][]byte{
			"all zero":  make([]byte, 2*size),
			"r=s=n":     append(append([]byte{}, n...), n...),
			"r=0, s=n":  append(make([]byte, size), n...),
			"r=n, s=0":  append(append([]byte{}, n...), make([]byte, size)...),
			"short":     make([]byte, 2),
			"one zero":  {0},
			"too long":  make([]byte, 2*size+2),
			"all 0xff":  []byte(strings.Repeat("\xff", 2*size)),
			"r=1, s=1 ": append(append(make([]byte, size-1), 1), append(make([]byte, size-1), 1)...),
		}
		for name, sig := range sigs {
			cases = append(cases, atCase{alg + "/" + name, input + "." + b64url(sig), nil, ReasonBadSignature})
		}
	}
	src := staticSource(keys...)
	atRun(t, testPolicy(src, "ES256", "ES384", "ES512"), cases)
}

func TestAttackCurveAlgMismatch(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := &testKey{alg: "ES384", kid: "p384", priv: p384, verify: VerifyKey{
		JWK: gojose.JSONWebKey{Key: &p384.PublicKey, KeyID: "p384", Use: "sig"}}} // no alg member
	asES256 := func(h map[string]any) { h["alg"] = "ES256" }
	atRun(t, testPolicy(staticSource(k), "ES256", "ES384"), []atCase{
		{"ES256 header, P-384 key", signedToken(t, k, asES256, nil), nil, ReasonAlgNotAllowed},
		{"ES256 header, P-384 key, no kid", signedToken(t, k, func(h map[string]any) { asES256(h); delete(h, "kid") }, nil), nil, ReasonUnknownKid},
		{"ES384 as it should be", signedToken(t, k, nil, nil), nil, ""},
	})
}

func TestAttackShapeAndSize(t *testing.T) {
	es := testKeyFor(t, "ES256", "a")
	good := signedToken(t, es, nil, nil)
	parts := strings.Split(good, ".")
	deep := `{"alg":"ES256","kid":"` + es.kid + `","x":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`
	hugeHeader := `{"alg":"ES256","kid":"` + es.kid + `","x":"` + strings.Repeat("a", 9<<10) + `"}`
	jwe, err := mustEncrypter(t, jweTestKeys(t).aes256, EncrypterOptions{KeyAlgorithm: "A256KW"}).Encrypt([]byte(mustJSON(t, validClaims())))
	if err != nil {
		t.Fatal(err)
	}
	jsonSer := mustJSON(t, map[string]any{"payload": parts[1], "signatures": []any{map[string]any{"protected": parts[0], "signature": parts[2]}}})
	flat := mustJSON(t, map[string]any{"payload": parts[1], "protected": parts[0], "signature": parts[2]})
	atRun(t, testPolicy(staticSource(es), "ES256"), []atCase{
		{"100 000 dots", strings.Repeat(".", 100000), nil, ReasonTooLarge},
		{"100 000 dots, roomy cap", strings.Repeat(".", 100000), roomy, ReasonMalformed},
		{"1 MiB token", strings.Repeat("A", 1<<20), nil, ReasonTooLarge},
		{"1 MiB of a real token", good + strings.Repeat("A", 1<<20-len(good)), nil, ReasonTooLarge},
		{"exactly at the size cap", atTokenOfSize(t, es, DefaultMaxTokenSize), nil, ""},
		{"one byte over the cap", atTokenOfSize(t, es, DefaultMaxTokenSize) + "A", nil, ReasonTooLarge},
		{"deeply nested header", signRaw(t, es, deep, mustJSON(t, validClaims())), roomy, ReasonMalformed},
		{"huge header", signRaw(t, es, hugeHeader, mustJSON(t, validClaims())), roomy, ReasonMalformed},
		{"header not JSON", signRaw(t, es, `alg=ES256`, mustJSON(t, validClaims())), nil, ReasonMalformed},
		{"header an array", signRaw(t, es, `["ES256"]`, mustJSON(t, validClaims())), nil, ReasonMalformed},
		{"duplicate alg", signRaw(t, es, `{"alg":"ES256","kid":"`+es.kid+`","alg":"none"}`, mustJSON(t, validClaims())), nil, ReasonMalformed},
		{"duplicate kid", signRaw(t, es, `{"alg":"ES256","kid":"x","kid":"`+es.kid+`"}`, mustJSON(t, validClaims())), nil, ReasonMalformed},
		{"duplicate via escape", signRaw(t, es, `{"alg":"ES256","kid":"`+es.kid+`","\u0061lg":"HS256"}`, mustJSON(t, validClaims())), nil, ReasonMalformed},
		{"JSON serialization", jsonSer, nil, ReasonMalformed},
		{"flattened JSON serialization", flat, nil, ReasonMalformed},
		{"5-segment JWE", jwe, nil, ReasonMalformed},
		{"two segments", parts[0] + "." + parts[1], nil, ReasonMalformed},
		{"four segments", good + ".", nil, ReasonMalformed},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], nil, ReasonMalformed},
		{"standard base64 alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(good), nil, atStdAlphabetReason(good)},
		{"line break", parts[0] + ".\n" + parts[1] + "." + parts[2], nil, ReasonMalformed},
		{"stray bits in payload", parts[0] + "." + atStrayBits(parts[1]) + "." + parts[2], nil, ReasonMalformed},
		{"empty header", "." + parts[1] + "." + parts[2], nil, ReasonMalformed},
		{"empty token", "", nil, ReasonMalformed},
		{"empty payload", signRaw(t, es, mustJSON(t, jwtHeader(es)), ""), nil, ReasonMalformed},
	})
}

// atTokenOfSize is a valid token of exactly size bytes, padded through a
// header member and a claim (base64 skips one length in four, so both).
func atTokenOfSize(t *testing.T, k *testKey, size int) string {
	t.Helper()
	for h := 0; h < 4; h++ {
		for n := size*3/4 - 400; n < size; n++ {
			tok := signedToken(t, k, func(hd map[string]any) { hd["pad"] = strings.Repeat("h", h) },
				func(c map[string]any) { c["pad"] = strings.Repeat("p", n) })
			if len(tok) == size {
				return tok
			}
			if len(tok) > size {
				break
			}
		}
	}
	t.Fatalf("no token of %d bytes", size)
	return ""
}

// atStdAlphabetReason: a token with no - or _ stays valid under the
// replacement, one that has them becomes malformed.
func atStdAlphabetReason(tok string) Reason {
	if strings.ContainsAny(tok, "-_") {
		return ReasonMalformed
	}
	return ""
}

// atStrayBits changes the unused low bits of the last character, which a
// lenient decoder ignores (Wycheproof ModifiedUnusedBitsInPayload).
func atStrayBits(seg string) string {
	for len(seg)%4 == 0 {
		seg += "AA" // force a partial group; the test only needs the shape
	}
	last := b64URLValue[seg[len(seg)-1]] | 1
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return seg[:len(seg)-1] + string(alphabet[last])
}

func TestAttackCrit(t *testing.T) {
	es := testKeyFor(t, "ES256", "a")
	crit := func(list any, extra map[string]any) string {
		return signedToken(t, es, func(h map[string]any) {
			h["crit"] = list
			for k, v := range extra {
				h[k] = v
			}
		}, nil)
	}
	atRun(t, testPolicy(staticSource(es), "ES256"), []atCase{
		{"empty", crit([]string{}, nil), nil, ReasonCritUnsupported},
		{"unknown", crit([]string{"http://example.com/ext"}, map[string]any{"http://example.com/ext": true}), nil, ReasonCritUnsupported},
		{"unknown and absent", crit([]string{"ext"}, nil), nil, ReasonCritUnsupported},
		{"duplicated", crit([]string{"ext", "ext"}, map[string]any{"ext": 1}), nil, ReasonCritUnsupported},
		{"registered header alg", crit([]string{"alg"}, nil), nil, ReasonCritUnsupported},
		{"registered header kid", crit([]string{"kid"}, nil), nil, ReasonCritUnsupported},
		{"registered claim exp", crit([]string{"exp"}, map[string]any{"exp": testNow.Unix() + 60}), nil, ReasonCritUnsupported},
		{"b64 false", crit([]string{"b64"}, map[string]any{"b64": false}), nil, ReasonCritUnsupported},
		{"b64 without crit", signedToken(t, es, func(h map[string]any) { h["b64"] = true }, nil), nil, ReasonCritUnsupported},
		{"not an array", crit("ext", map[string]any{"ext": 1}), nil, ReasonMalformed},
		{"non-string member", crit([]any{1}, nil), nil, ReasonMalformed},
	})
}

func TestAttackClaims(t *testing.T) {
	es := testKeyFor(t, "ES256", "a")
	now := testNow.Unix()
	claim := func(name string, v any) string {
		return signedToken(t, es, nil, func(c map[string]any) {
			if v == nil {
				delete(c, name)
			} else {
				c[name] = v
			}
		})
	}
	leeway := func(p *Policy) { p.Leeway = time.Minute }
	atRun(t, testPolicy(staticSource(es), "ES256"), []atCase{
		{"exp just outside leeway", claim("exp", now-61), leeway, ReasonExpired},
		{"exp exactly at the boundary", claim("exp", now-60), leeway, ""},
		{"exp now, no leeway", claim("exp", now), nil, ""},
		{"exp one second ago, no leeway", claim("exp", now-1), nil, ReasonExpired},
		{"nbf just outside leeway", claim("nbf", now+61), leeway, ReasonNotYetValid},
		{"nbf exactly at the boundary", claim("nbf", now+60), leeway, ""},
		{"iat just outside leeway", claim("iat", now+61), leeway, ReasonIssuedInFuture},
		{"iat exactly at the boundary", claim("iat", now+60), leeway, ""},
		{"missing exp", claim("exp", nil), nil, ReasonMissingClaim},
		{"string exp", claim("exp", "9999999999"), nil, ReasonMalformed},
		{"exp 1e19", claim("exp", 1e19), nil, ""},
		{"nbf 1e19", claim("nbf", 1e19), nil, ReasonNotYetValid},
		{"iat 1e19", claim("iat", 1e19), nil, ReasonIssuedInFuture},
		{"exp negative", claim("exp", -1), nil, ReasonExpired},
		{"exp -1e19", claim("exp", -1e19), nil, ReasonExpired},
		{"exp 1.7976931348623157e308", claim("exp", 1.7976931348623157e308), nil, ""},
		{"trailing-slash issuer", claim("iss", testIssuer+"/"), nil, ReasonWrongIssuer},
		{"wrong audience", claim("aud", "https://other.example"), nil, ReasonWrongAudience},
		{"ID token where an access token is required", signedToken(t, es, func(h map[string]any) { h["typ"] = "JWT" }, nil),
			func(p *Policy) { p.Types = []string{"at+jwt"} }, ReasonWrongType},
	})
}

func TestAttackRevokedKey(t *testing.T) {
	es, es2 := testKeyFor(t, "ES256", "a"), testKeyFor(t, "ES256", "b")
	// The source no longer has es (revoked), even after a refresh.
	src := &staticKeySource{keys: []VerifyKey{es2.verify}}
	atRun(t, testPolicy(src, "ES256"), []atCase{
		{"token of a revoked key", signedToken(t, es, nil, nil), nil, ReasonUnknownKid},
	})
	if src.refreshes.Load() != 1 {
		t.Fatalf("refreshes = %d", src.refreshes.Load())
	}
}

// The JWE attacks of the list live with the decrypter; this re-runs the
// headline ones so the attack suite reads complete.
func TestAttackJWE(t *testing.T) {
	k := jweTestKeys(t)
	d := mustDecrypter(t, DecrypterOptions{Keys: []gojose.JSONWebKey{k.pwd, k.aes256},
		KeyAlgorithms: []string{"PBES2-HS512+A256KW", "A256KW"}, ContentEncryptions: []string{"A256GCM", "A128CBC-HS256"},
		Allow: JWEAllow{PBES2: true, CBC: true, Zip: true}})
	salt := b64url(make([]byte, 16))
	p2c := func(n float64) string {
		return craftJWE(mustJSON(t, map[string]any{"alg": "PBES2-HS512+A256KW", "enc": "A256GCM", "p2c": n, "p2s": salt}),
			make([]byte, 40), make([]byte, 12), []byte("x"), make([]byte, 16))
	}
	kw := mustEncrypter(t, k.aes256, EncrypterOptions{KeyAlgorithm: "A256KW", Allow: JWEAllow{CBC: true, Zip: true}, Compress: true})
	bomb, _ := kw.Encrypt(make([]byte, 10<<20))
	cbc := mustEncrypter(t, k.aes256, EncrypterOptions{KeyAlgorithm: "A256KW", ContentEncryption: "A128CBC-HS256", Allow: JWEAllow{CBC: true}})
	cbcTok, _ := cbc.Encrypt([]byte("secret"))
	h, seg := jweSegments(t, cbcTok)
	for _, tt := range []struct{ name, token string }{
		{"PBES2 p2c 2^31", p2c(1 << 31)},
		{"PBES2 p2c 1e15", p2c(1e15)},
		{"zip bomb (10 MiB of zeros)", bomb},
		{"empty encrypted_key", craftJWE(h, nil, seg[1], seg[2], seg[3])},
		{"empty CBC ciphertext", craftJWE(h, seg[0], seg[1], nil, seg[3])},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := d.Decrypt(tt.token)
			if got := tokenReason(t, err); got != ReasonDecryptFailed {
				t.Fatalf("reason = %q (%v)", got, err)
			}
			t.Logf("refused in %s (token %d bytes)", time.Since(start), len(tt.token))
		})
	}
}
