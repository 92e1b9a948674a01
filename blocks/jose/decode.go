package jose

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds the inspect-only Decode and the strict JSON reader every
// token path (validate, decrypt, decode, remote JWKS) uses before go-jose
// sees anything. The reader exists because encoding/json silently keeps the
// last of duplicate members and replaces invalid UTF-8, and a header that
// two parsers read differently is how alg/kid smuggling starts: here a
// duplicate member, bad UTF-8, a lone surrogate, an out-of-range number or
// nesting deeper than a small limit is an error.

// MaxDecodeSize caps what Decode looks at.
const MaxDecodeSize = 64 << 10

// Nesting limits for the strict reader. A JOSE header nests at most two
// levels (epk, jwk, x5c, crit); claims may carry a few levels of structure.
const (
	maxHeaderDepth = 4
	maxClaimsDepth = 32
	maxHeaderBytes = 8 << 10 // decoded protected header
)

// Decoded is an UNVERIFIED view of a token, for inspection and debugging
// only: nothing in it has been authenticated. Verified is always false so
// that code and traces that carry it say so.
type Decoded struct {
	Verified bool           `json:"verified"` // always false
	Kind     string         `json:"kind"`     // "JWS" or "JWE"
	Header   map[string]any `json:"header"`   // protected header
	// Claims is the JWS payload when it is a JSON object; nil for a JWE
	// (whose payload stays encrypted) or a payload that is not JSON.
	Claims map[string]any `json:"claims,omitempty"`
}

// Decode shows the protected header and, for a JWS, the claims of a compact
// token WITHOUT verifying anything. Errors are *TokenError (malformed or
// token_too_large).
func Decode(token string) (Decoded, error) {
	if len(token) > MaxDecodeSize {
		return Decoded{}, tokenErr(ReasonTooLarge, "token exceeds the size limit")
	}
	segs, ok := splitCompact(token)
	if !ok {
		return Decoded{}, tokenErr(ReasonMalformed, "not a compact JWS or JWE")
	}
	hdr, terr := decodeHeader(segs[0])
	if terr != nil {
		return Decoded{}, terr
	}
	d := Decoded{Verified: false, Header: hdr}
	if len(segs) == 5 {
		d.Kind = "JWE"
		return d, nil
	}
	d.Kind = "JWS"
	if payload, err := base64.RawURLEncoding.DecodeString(segs[1]); err == nil {
		if claims, err := parseStrictObject(payload, maxClaimsDepth); err == nil {
			d.Claims = claims
		}
	}
	return d, nil
}

// tokenErr builds the one error type token checks return.
func tokenErr(r Reason, detail string) *TokenError {
	return &TokenError{Reason: r, Detail: detail}
}

// splitCompact splits a compact JWS (3 segments) or JWE (5 segments) and
// checks every segment is canonical unpadded base64url: no padding, no
// whitespace or line breaks (which Go's decoder would skip) and no stray
// bits in the last character (which would let two encodings carry one
// value). A JSON serialization fails here too.
func splitCompact(token string) (segs []string, ok bool) {
	var dots [4]int
	n := 0
	for i := 0; i < len(token); i++ {
		c := token[i]
		if c == '.' {
			if n == len(dots) {
				return nil, false
			}
			dots[n] = i
			n++
			continue
		}
		if b64URLValue[c] == 0xff {
			return nil, false
		}
	}
	if n != 2 && n != 4 {
		return nil, false
	}
	segs = make([]string, 0, n+1)
	start := 0
	for i := 0; i < n; i++ {
		segs = append(segs, token[start:dots[i]])
		start = dots[i] + 1
	}
	segs = append(segs, token[start:])
	for _, s := range segs {
		if !canonicalTail(s) {
			return nil, false
		}
	}
	return segs, true
}

// canonicalTail reports whether an alphabet-checked segment has a valid
// length and zero padding bits.
func canonicalTail(s string) bool {
	switch len(s) % 4 {
	case 1:
		return false
	case 2:
		return b64URLValue[s[len(s)-1]]&0x0f == 0
	case 3:
		return b64URLValue[s[len(s)-1]]&0x03 == 0
	}
	return true
}

// b64URLValue maps a byte to its base64url value, 0xff when not in the
// alphabet.
var b64URLValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// decodeHeader base64url-decodes and strictly parses a protected header.
func decodeHeader(seg string) (map[string]any, *TokenError) {
	if seg == "" {
		return nil, tokenErr(ReasonMalformed, "empty protected header")
	}
	if base64.RawURLEncoding.DecodedLen(len(seg)) > maxHeaderBytes {
		return nil, tokenErr(ReasonMalformed, "protected header too large")
	}
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, tokenErr(ReasonMalformed, "protected header is not base64url")
	}
	hdr, err := parseStrictObject(raw, maxHeaderDepth)
	if err != nil {
		return nil, tokenErr(ReasonMalformed, "protected header: "+err.Error())
	}
	return hdr, nil
}

// Errors of the strict JSON reader. Their text names the problem only.
var (
	errJSONSyntax    = errors.New("invalid JSON")
	errJSONDuplicate = errors.New("duplicate member")
	errJSONDepth     = errors.New("nested too deeply")
	errJSONNotObject = errors.New("not a JSON object")
	errJSONString    = errors.New("invalid string")
	errJSONNumber    = errors.New("number out of range")
	errJSONTrailing  = errors.New("data after the JSON value")
)

// parseStrictObject parses data, which must hold exactly one JSON object,
// into maps, slices, strings, float64, bool and nil (like encoding/json
// into any), refusing anything RFC 8259 calls implementation-defined.
func parseStrictObject(data []byte, maxDepth int) (map[string]any, error) {
	p := strictJSON{data: data, maxDepth: maxDepth}
	p.skipSpace()
	if !p.at('{') {
		return nil, errJSONNotObject
	}
	v, err := p.whole()
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// validateStrictJSON checks that data is one strict JSON value of any kind.
func validateStrictJSON(data []byte, maxDepth int) error {
	p := strictJSON{data: data, maxDepth: maxDepth}
	_, err := p.whole()
	return err
}

type strictJSON struct {
	data     []byte
	pos      int
	depth    int
	maxDepth int
}

// whole reads the data as one value with nothing but white space around it.
func (p *strictJSON) whole() (any, error) {
	p.skipSpace()
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, errJSONTrailing
	}
	return v, nil
}

// at reports whether the next byte is c.
func (p *strictJSON) at(c byte) bool { return p.pos < len(p.data) && p.data[p.pos] == c }

func (p *strictJSON) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *strictJSON) value() (any, error) {
	if p.pos >= len(p.data) {
		return nil, errJSONSyntax
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	}
	return nil, errJSONSyntax
}

func (p *strictJSON) literal(lit string) error {
	if len(p.data)-p.pos < len(lit) || string(p.data[p.pos:p.pos+len(lit)]) != lit {
		return errJSONSyntax
	}
	p.pos += len(lit)
	return nil
}

func (p *strictJSON) enter() error {
	p.depth++
	if p.depth > p.maxDepth {
		return errJSONDepth
	}
	return nil
}

// open enters a container at its opening bracket and reports whether it
// is empty (closer follows at once, and is consumed too).
func (p *strictJSON) open(closer byte) (bool, error) {
	if err := p.enter(); err != nil {
		return false, err
	}
	p.pos++ // the opening bracket
	p.skipSpace()
	if p.at(closer) {
		p.pos++
		p.depth--
		return true, nil
	}
	return false, nil
}

// more reads what follows a member of a container: a comma (true, another
// member comes) or closer (false, the container ends).
func (p *strictJSON) more(closer byte) (bool, error) {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return false, errJSONSyntax
	}
	switch p.data[p.pos] {
	case ',':
		p.pos++
		return true, nil
	case closer:
		p.pos++
		p.depth--
		return false, nil
	}
	return false, errJSONSyntax
}

func (p *strictJSON) object() (any, error) {
	empty, err := p.open('}')
	if err != nil {
		return nil, err
	}
	m := make(map[string]any, 8)
	for more := !empty; more; {
		p.skipSpace()
		if !p.at('"') {
			return nil, errJSONSyntax
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if !p.at(':') {
			return nil, errJSONSyntax
		}
		p.pos++
		p.skipSpace()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		if _, dup := m[key]; dup {
			return nil, errJSONDuplicate
		}
		m[key] = v
		if more, err = p.more('}'); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (p *strictJSON) array() (any, error) {
	empty, err := p.open(']')
	if err != nil {
		return nil, err
	}
	a := []any{}
	for more := !empty; more; {
		p.skipSpace()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		if more, err = p.more(']'); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// str reads a string starting at the opening quote.
func (p *strictJSON) str() (string, error) {
	start := p.pos + 1
	ascii := true
	for i := start; i < len(p.data); i++ {
		c := p.data[i]
		switch {
		case c == '"':
			s := p.data[start:i]
			if !ascii && !utf8.Valid(s) {
				return "", errJSONString
			}
			p.pos = i + 1
			return string(s), nil
		case c == '\\':
			return p.strEscaped(start, i)
		case c < 0x20:
			return "", errJSONString
		case c >= 0x80:
			ascii = false
		}
	}
	return "", errJSONSyntax
}

// simpleEscapes maps the byte after a backslash to the byte it stands
// for; zero means it is no one-byte escape (\u is read apart).
var simpleEscapes = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// strEscaped finishes a string that has escapes; esc is the first backslash.
func (p *strictJSON) strEscaped(start, esc int) (string, error) {
	buf := make([]byte, 0, esc-start+16)
	buf = append(buf, p.data[start:esc]...)
	i := esc
	for i < len(p.data) {
		c := p.data[i]
		switch {
		case c == '"':
			if !utf8.Valid(buf) {
				return "", errJSONString
			}
			p.pos = i + 1
			return string(buf), nil
		case c < 0x20:
			return "", errJSONString
		case c != '\\':
			buf = append(buf, c)
			i++
			continue
		}
		// backslash
		if i+1 >= len(p.data) {
			return "", errJSONSyntax
		}
		if b := simpleEscapes[p.data[i+1]]; b != 0 {
			buf = append(buf, b)
			i += 2
			continue
		}
		if p.data[i+1] != 'u' {
			return "", errJSONString
		}
		r, ok := hex4(p.data, i+2)
		if !ok {
			return "", errJSONString
		}
		i += 6
		if utf16.IsSurrogate(r) {
			// Only a high surrogate followed by an escaped low one
			// makes a character; anything else is refused.
			if r >= 0xdc00 || i+1 >= len(p.data) || p.data[i] != '\\' || p.data[i+1] != 'u' {
				return "", errJSONString
			}
			lo, ok := hex4(p.data, i+2)
			if !ok || lo < 0xdc00 || lo > 0xdfff {
				return "", errJSONString
			}
			r = utf16.DecodeRune(r, lo)
			i += 6
		}
		buf = utf8.AppendRune(buf, r)
	}
	return "", errJSONSyntax
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// number reads an RFC 8259 number into a float64; one that overflows a
// float64 (1e400) is an error, not infinity.
func (p *strictJSON) number() (any, error) {
	d := p.data
	start := p.pos
	i := start
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return nil, errJSONSyntax
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return nil, errJSONSyntax
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return nil, errJSONSyntax
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	f, err := strconv.ParseFloat(string(d[start:i]), 64)
	if err != nil {
		return nil, errJSONNumber
	}
	p.pos = i
	return f, nil
}

// kidShapeOK is the shape every kid must have before it is compared with
// anything: short, and printable (no control or format characters that
// would hide in logs and traces).
func kidShapeOK(kid string) bool {
	if kid == "" || len(kid) > maxKidLen || !utf8.ValidString(kid) {
		return false
	}
	return strings.IndexFunc(kid, func(r rune) bool { return !strconv.IsPrint(r) }) < 0
}

// maxKidLen bounds a kid: thumbprints are 43 characters, UUIDs 36.
const maxKidLen = 256
