package engine

// This file holds what keeps a trace small and safe: the snapshot of a
// message at each step (bounded in depth, items, string length and bytes),
// redaction by key, by shape and of values marked secret, and the message
// size estimate the same walk computes. The trace format and its codec are
// in trace.go.

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Snapshot bounds: a trace must stay small however big the message.
const (
	snapMaxString = 512
	snapMaxItems  = 64
	snapMaxDepth  = 8
	snapBudget    = 16 << 10 // approximate bytes per step snapshot
)

// Redacted replaces sensitive values in traces.
const Redacted = "[redacted]"

// sensitiveKeys are message keys whose values never appear in a trace,
// compared case-insensitively.
var sensitiveKeys = map[string]bool{
	"authorization": true, "proxy-authorization": true, "cookie": true, "set-cookie": true,
	"password": true, "passwd": true, "secret": true, "client_secret": true,
	"token": true, "access_token": true, "id_token": true, "refresh_token": true, "jwt": true,
	"assertion": true, "client_assertion": true, "code": true, "code_verifier": true,
	"private_key": true, "privatekey": true, "jwk": true,
	"x-api-key": true, "api_key": true, "apikey": true, "session": true,
}

// jwkPrivate are JWK members that hold private material.
var jwkPrivate = map[string]bool{"d": true, "p": true, "q": true, "dp": true, "dq": true, "qi": true, "k": true, "oth": true}

// The markers a snapshot puts in place of values, boxed once so that
// storing them in a snapshot does not allocate.
var (
	redactedAny  any = Redacted
	truncatedAny any = "[truncated]"
	tooDeepAny   any = "[truncated: too deep]"
	valueAny     any = "[value]"
)

// snapper takes the snapshot of one message for one step. A snapshot is
// immutable once taken, which lets the next step share the parts of it
// that still match its own message: a pass-through block costs a walk of
// the message and no allocation, and a block that sets one field costs a
// new top-level map. That keeps the per-step price of tracing low without
// giving up a complete, redacted, bounded snapshot per step.
//
// The same walk estimates the message's encoded size (msgSize's estimate)
// for the message size limit, so a step walks its message once.
type snapper struct {
	budget  int
	extra   []string // block-declared sensitive keys
	secrets []string // values marked secret for this run (Exec.MarkSecret)
	size    int      // estimated encoded size of the message walked so far
	limit   int      // size above which the walk may stop early
}

func (s *snapper) isSensitive(k string) bool {
	if isSensitiveKey(k) {
		return true
	}
	for _, e := range s.extra {
		if strings.EqualFold(e, k) {
			return true
		}
	}
	return false
}

// sensitiveIndex holds sensitiveKeys by length and first letter: every
// key of every message is checked at every step, and this costs a couple
// of array loads and, rarely, one comparison.
var sensitiveIndex = func() (idx [24][26][]string) {
	for k := range sensitiveKeys {
		idx[len(k)][k[0]-'a'] = append(idx[len(k)][k[0]-'a'], k)
	}
	return idx
}()

// isSensitiveKey reports whether k is in sensitiveKeys, ignoring case.
func isSensitiveKey(k string) bool {
	for i := 0; i < len(k); i++ {
		if k[i] >= 0x80 { // Unicode case folding: "Key" is "key"
			return sensitiveKeys[strings.ToLower(k)]
		}
	}
	if len(k) == 0 || len(k) >= len(sensitiveIndex) {
		return false
	}
	c := k[0] | 0x20 // ASCII lower case
	if c < 'a' || c > 'z' {
		return false
	}
	for _, cand := range sensitiveIndex[len(k)][c-'a'] {
		if strings.EqualFold(k, cand) {
			return true
		}
	}
	return false
}

// snapshot copies v for a trace: sensitive keys and token-shaped strings
// redacted, long strings, big collections and deep nesting truncated.
func (s *snapper) snapshot(v any, depth int) any {
	s.limit = math.MaxInt
	out, _, _ := s.snap(v, nil, nil, depth)
	return out
}

// over reports whether the message is known to exceed the size limit; the
// walk then stops and its snapshot is discarded.
func (s *snapper) over() bool { return s.size > s.limit }

// skip accounts for the size of a value the snapshot does not show.
func (s *snapper) skip(v any, depth int) {
	s.size += msgSizeAt(v, s.limit-s.size, depth)
}

// snapNode privately mirrors one map or list of a snapshot: its members in
// a fixed order, so the next step compares its message against it by key
// lookups, without iterating (costly) Go maps. Like the snapshot, it is
// never changed once built.
type snapNode struct {
	keys []string    // map member names; nil for a list
	vals []any       // the snapshot's members or items
	kids []*snapNode // mirrors of container members; nil for leaves
}

// newSnapNode returns a node with room for n members (and their names
// if keyed). Its kids are allocated by add, only for a container member.
func newSnapNode(n int, keyed bool) *snapNode {
	if n <= 4 { // most maps in messages: one allocation
		sm := &smallSnapNode{}
		sm.vals = sm.v[:0:n]
		if keyed {
			sm.keys = sm.k[:0:n]
		}
		return &sm.snapNode
	}
	nd := &snapNode{vals: make([]any, 0, n)}
	if keyed {
		nd.keys = make([]string, 0, n)
	}
	return nd
}

type smallSnapNode struct {
	snapNode
	k [4]string
	v [4]any
}

// kid returns the mirror of member i, if it is a container.
func (pn *snapNode) kid(i int) *snapNode {
	if i < len(pn.kids) {
		return pn.kids[i]
	}
	return nil
}

// add appends a member's snapshot and mirror (a map's caller appends the
// member's name to keys).
func (pn *snapNode) add(val any, kid *snapNode) {
	if kid != nil {
		if pn.kids == nil {
			pn.kids = make([]*snapNode, len(pn.vals), cap(pn.vals))
		}
		pn.kids = append(pn.kids[:len(pn.vals)], kid)
	}
	pn.vals = append(pn.vals, val)
}

// snap returns the snapshot of v. prev is an earlier snapshot of (what
// may be) the same value and pn its mirror, or nil; when v's snapshot
// equals prev, snap returns prev itself and true, allocating nothing.
// The returned node mirrors the returned snapshot if it is a container.
func (s *snapper) snap(v, prev any, pn *snapNode, depth int) (any, *snapNode, bool) {
	if s.budget <= 0 {
		s.skip(v, depth)
		out, eq := mark(truncatedAny, prev)
		return out, nil, eq
	}
	switch t := v.(type) {
	case Lazy:
		return s.snap(t.Value(), prev, pn, depth)
	case map[string]any:
		return snapMap(s, t, prev, pn, depth, snapAny)
	case map[string]string:
		return snapMap(s, t, prev, pn, depth, snapString)
	case map[string][]string:
		return snapMap(s, t, prev, pn, depth, snapStrings)
	case []any:
		return snapList(s, t, prev, pn, depth, snapAny)
	case []string:
		return snapList(s, t, prev, pn, depth, snapString)
	case []map[string]any:
		return snapList(s, t, prev, pn, depth, func(s *snapper, e map[string]any, pv any, pn *snapNode, depth int) (any, *snapNode, bool) {
			return snapMap(s, e, pv, pn, depth, snapAny)
		})
	}
	out, eq := s.leaf(v, prev)
	return out, nil, eq
}

func snapAny(s *snapper, e, pv any, pn *snapNode, depth int) (any, *snapNode, bool) {
	return s.snap(e, pv, pn, depth)
}

func snapString(s *snapper, e string, pv any, _ *snapNode, _ int) (any, *snapNode, bool) {
	s.size += len(e) + 2
	out, eq := s.str(nil, e, pv)
	return out, nil, eq
}

func snapStrings(s *snapper, e []string, pv any, pn *snapNode, depth int) (any, *snapNode, bool) {
	return snapList(s, e, pv, pn, depth, snapString)
}

// leaf snapshots a value that is not a container.
func (s *snapper) leaf(v, prev any) (any, bool) {
	switch t := v.(type) {
	case nil:
		s.budget -= 8
		s.size += 8
		return nil, prev == nil
	case bool:
		s.budget -= 8
		s.size += 8
		p, ok := prev.(bool)
		return same(v, prev, ok && p == t)
	case int:
		s.budget -= 8
		s.size += 8
		p, ok := prev.(int)
		return same(v, prev, ok && p == t)
	case int64:
		s.budget -= 8
		s.size += 8
		p, ok := prev.(int64)
		return same(v, prev, ok && p == t)
	case float64:
		s.budget -= 8
		s.size += 8
		p, ok := prev.(float64)
		return same(v, prev, ok && p == t)
	case json.Number:
		s.budget -= len(t)
		s.size += 8
		p, ok := prev.(json.Number)
		return same(v, prev, ok && p == t)
	case int8, int16, int32, uint, uint8, uint16, uint32, uint64, float32:
		s.budget -= 8
		s.size += 8
		return same(v, prev, prev == v)
	case string:
		s.size += len(t) + 2
		return s.str(v, t, prev)
	case []byte:
		s.budget -= 16
		s.size += len(t)
		out := "[" + itoa(len(t)) + " bytes]"
		p, ok := prev.(string)
		return same(out, prev, ok && p == out)
	case time.Time:
		s.budget -= 32
		s.size += 8
		out := t.UTC().Format(time.RFC3339Nano)
		p, ok := prev.(string)
		return same(out, prev, ok && p == out)
	case time.Duration:
		s.budget -= 16
		s.size += 8
		out := t.String()
		p, ok := prev.(string)
		return same(out, prev, ok && p == out)
	}
	// Values of other Go types are not shown: they may hold anything.
	s.budget -= 16
	s.size += 8
	return mark(valueAny, prev)
}

// same returns prev if the new snapshot out equals it, else out.
func same(out, prev any, eq bool) (any, bool) {
	if eq {
		return prev, true
	}
	return out, false
}

// mark returns a marker string, or prev if prev is that marker.
func mark(m, prev any) (any, bool) {
	if p, ok := prev.(string); ok && p == m.(string) {
		return prev, true
	}
	return m, false
}

type childFunc[V any] func(s *snapper, e V, pv any, pn *snapNode, depth int) (any, *snapNode, bool)

// member snapshots one map member, redacting it if its key is sensitive.
// pv, if had, is the member's earlier snapshot.
func member[V any](s *snapper, k string, e V, pv any, pk *snapNode, had, isJWK bool, depth int, child childFunc[V]) (any, *snapNode, bool) {
	s.budget -= len(k) + 4
	// A key shown in clear in pv (a snapshot of this run, so taken with
	// the same sensitive keys) is not sensitive: skip the check.
	known := had && !isJWK && pv != redactedAny
	if !known && (isJWK && jwkPrivate[k] || s.isSensitive(k)) {
		s.size += msgSizeAt(any(e), s.limit-s.size, depth+1)
		out, eq := mark(redactedAny, pv)
		return out, nil, eq
	}
	return child(s, e, pv, pk, depth+1)
}

// snapMap snapshots a map, sharing prev when every member matches it.
func snapMap[V any](s *snapper, t map[string]V, prev any, pn *snapNode, depth int, child childFunc[V]) (any, *snapNode, bool) {
	if depth >= snapMaxDepth {
		s.skip(t, depth)
		out, eq := mark(tooDeepAny, prev)
		return out, nil, eq
	}
	s.size += 2
	_, isJWK := t["kty"]
	if pn != nil && pn.keys != nil && len(pn.keys) == len(t) {
		// Same number of members as before: look each one up by name.
		budget, size := s.budget, s.size
		var nd *snapNode // allocated at the first difference
		missing := false
		for i, k := range pn.keys {
			e, ok := t[k]
			if !ok {
				missing = true // a member was replaced: walk the map below
				break
			}
			s.size += len(k) + 4
			if s.over() {
				return nil, nil, false
			}
			c, cn, eq := member(s, k, e, pn.vals[i], pn.kid(i), true, isJWK, depth, child)
			if nd == nil && !eq {
				nd = newSnapNode(len(pn.keys), false)
				nd.keys = pn.keys // the same names: share them
				for j := range i {
					nd.add(pn.vals[j], pn.kid(j))
				}
			}
			if nd != nil {
				nd.add(c, cn)
			}
		}
		if !missing {
			if nd == nil {
				return prev, pn, true
			}
			out := make(map[string]any, len(nd.vals))
			for i, k := range nd.keys {
				out[k] = nd.vals[i]
			}
			return out, nd, false
		}
		s.budget, s.size = budget, size
	}
	n := min(len(t), snapMaxItems)
	nd := newSnapNode(n, true)
	for k, e := range t {
		s.size += len(k) + 4
		if s.over() {
			return nil, nil, false
		}
		if len(nd.keys) == n {
			s.size += msgSizeAt(any(e), s.limit-s.size, depth+1) // members past the cut count for the size
			continue
		}
		pv, pk, had := pn.find(k)
		c, cn, _ := member(s, k, e, pv, pk, had, isJWK, depth, child)
		nd.keys = append(nd.keys, k)
		nd.add(c, cn)
	}
	size := n
	if n < len(t) {
		size++ // room for the "…" member
	}
	out := make(map[string]any, size)
	for i, k := range nd.keys {
		out[k] = nd.vals[i]
	}
	if n < len(t) {
		out["…"] = "[" + itoa(len(t)-n) + " more keys]"
		return out, nil, false // a cut map is not reused
	}
	return out, nd, false
}

// find returns a map member's earlier snapshot and mirror.
func (pn *snapNode) find(k string) (any, *snapNode, bool) {
	if pn == nil {
		return nil, nil, false
	}
	for i, pk := range pn.keys {
		if pk == k {
			return pn.vals[i], pn.kid(i), true
		}
	}
	return nil, nil, false
}

// snapList snapshots a list, sharing prev when every item matches it.
func snapList[V any](s *snapper, t []V, prev any, pn *snapNode, depth int, child childFunc[V]) (any, *snapNode, bool) {
	if depth >= snapMaxDepth {
		s.skip(t, depth)
		out, eq := mark(tooDeepAny, prev)
		return out, nil, eq
	}
	s.size += 2
	n := min(len(t), snapMaxItems)
	reuse := pn != nil && pn.keys == nil && len(pn.vals) == len(t)
	var nd *snapNode
	if !reuse {
		nd = newSnapNode(n+1, false)
	}
	for i, e := range t[:n] {
		if s.size++; s.over() {
			return nil, nil, false
		}
		var pv any
		var pk *snapNode
		if pn != nil && pn.keys == nil && i < len(pn.vals) {
			pv, pk = pn.vals[i], pn.kid(i)
		}
		c, cn, eq := child(s, e, pv, pk, depth+1)
		if reuse && !eq {
			reuse = false
			nd = newSnapNode(n+1, false)
			for j := range i {
				nd.add(pn.vals[j], pn.kid(j))
			}
		}
		if !reuse {
			nd.add(c, cn)
		}
	}
	for _, e := range t[n:] { // items past the cut still count for the size
		if s.size++; s.over() {
			return nil, nil, false
		}
		s.size += msgSizeAt(any(e), s.limit-s.size, depth+1)
	}
	if reuse {
		return prev, pn, true
	}
	if len(t) > n {
		return append(nd.vals, "["+itoa(len(t)-n)+" more items]"), nil, false // a cut list is not reused
	}
	// The snapshot and its mirror share vals: neither ever changes it.
	return nd.vals, nd, false
}

// str snapshots a string. boxed, if not nil, is v already in an interface
// (so returning it does not allocate).
func (s *snapper) str(boxed any, v string, prev any) (any, bool) {
	p, isStr := prev.(string)
	if isStr && p == v && len(v) <= snapMaxString {
		// prev shows v as it is, so v was checked already (redaction is
		// idempotent, and a string this short is not cut).
		s.budget -= len(v)
		return prev, true
	}
	if len(v) <= snapMaxString && !maybeSecret(v) && !isMarked(v, s.secrets) {
		s.budget -= len(v)
		if isStr && p == v {
			return prev, true
		}
		if boxed == nil {
			boxed = v
		}
		return boxed, false
	}
	out := v
	if r, ok := redactSecrets(v, s.secrets); ok {
		out = r
	}
	if len(out) > snapMaxString {
		cut := snapMaxString
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = out[:cut] + "…[" + itoa(len(v)) + " bytes]"
	}
	s.budget -= len(out)
	if isStr && p == out {
		return prev, true
	}
	return out, false
}

// minMarkedInside is the length from which a marked secret is also cut out
// of longer strings; a shorter one is redacted only where it is the whole
// value (cutting every "1234" out of every text would mangle traces).
const minMarkedInside = 8

// isMarked reports whether v holds a value marked secret.
func isMarked(v string, marked []string) bool {
	for _, m := range marked {
		if v == m || len(m) >= minMarkedInside && strings.Contains(v, m) {
			return true
		}
	}
	return false
}

// minAuthCred is the shortest credential after an HTTP auth scheme that
// counts as one: "Basic plan" is a phrase, "Basic dXNlcjpw..." is not.
const minAuthCred = 8

// maybeSecret is a quick test for the shapes redactSecrets looks for:
// most strings cost a length check, or two substring searches and a scan
// for spaces.
func maybeSecret(v string) bool {
	if len(v) < len("DPoP ")+minAuthCred {
		return false
	}
	return strings.Contains(v, "eyJ") || strings.Contains(v, "-----BEGIN ") || nextAuthCred(v, 0) >= 0
}

// redactSecrets catches credentials wherever they sit in a string: a
// string that is an HTTP credential (Bearer, DPoP or Basic and a token68,
// as in an Authorization header) or holds a PEM block goes whole; marked
// values, credentials after an auth scheme inside a text, and compact
// JWS/JWE tokens (three or five base64url segments whose first decodes to
// a JSON object) are cut out of the text around them.
func redactSecrets(v string, marked []string) (string, bool) {
	if strings.Contains(v, "-----BEGIN ") || authCredEnd(v, 0) >= 0 {
		return Redacted, true
	}
	for _, m := range marked {
		if v == m {
			return Redacted, true
		}
	}
	found := false
	for _, m := range marked {
		if len(m) >= minMarkedInside && strings.Contains(v, m) {
			v, found = strings.ReplaceAll(v, m, Redacted), true
		}
	}
	if len(v) < len("DPoP ")+minAuthCred {
		return v, found
	}
	var b strings.Builder
	rest := v
	for {
		i, end := nextSecretSpan(rest)
		if i < 0 {
			break
		}
		found = true
		b.WriteString(rest[:i])
		b.WriteString(Redacted)
		rest = rest[end:]
	}
	if b.Len() == 0 {
		return v, found
	}
	b.WriteString(rest)
	return b.String(), true
}

// nextSecretSpan finds the first credential or token in s: its start and
// end, or -1.
func nextSecretSpan(s string) (int, int) {
	start, end := -1, -1
	if i := nextAuthCred(s, 0); i >= 0 {
		start, end = i, authCredEnd(s, i)
	}
	for from := 0; ; {
		j := strings.Index(s[from:], "eyJ")
		if j < 0 {
			break
		}
		j += from
		if start >= 0 && j >= start {
			break
		}
		// A token starts a word: not inside a base64url run or a dotted
		// name such as "a.eyJx.y.z".
		if n := jwtLen(s[j:]); n > 0 && (j == 0 || !isB64URL(s[j-1]) && s[j-1] != '.') {
			return j, j + n
		}
		from = j + 3
	}
	return start, end
}

// nextAuthCred returns the index, at or after from, of an HTTP auth scheme
// (Bearer, DPoP, Basic; any case) that starts a word and is followed by a
// credential, or -1. It looks only before spaces, so most texts cost an
// IndexByte per word.
func nextAuthCred(s string, from int) int {
	for {
		sp := strings.IndexByte(s[from:], ' ')
		if sp < 0 {
			return -1
		}
		sp += from
		// The schemes end in r (beareR), c (basiC) or p (dpoP): one byte
		// rules out most words.
		if c := s[max(sp-1, 0)] | 0x20; sp == 0 || c != 'r' && c != 'c' && c != 'p' {
			from = sp + 1
			continue
		}
		for _, n := range [...]int{6, 5, 4} { // bearer, basic, dpop
			i := sp - n
			if i < 0 || i > 0 && isAlnum(s[i-1]) {
				continue
			}
			end := authCredEnd(s, i)
			// Inside a text, "basic authentication" is prose: there the
			// credential must look generated (see credLike).
			if end >= 0 && (i == 0 || credLike(strings.TrimLeft(s[sp:end], " "))) {
				return i
			}
		}
		from = sp + 1
	}
}

// authCredEnd returns the end of "scheme SP token68" at s[i:], or -1.
func authCredEnd(s string, i int) int {
	rest := s[i:]
	n := 0
	switch {
	case len(rest) > 7 && strings.EqualFold(rest[:7], "bearer "):
		n = 7
	case len(rest) > 6 && strings.EqualFold(rest[:6], "basic "):
		n = 6
	case len(rest) > 5 && strings.EqualFold(rest[:5], "dpop "):
		n = 5
	default:
		return -1
	}
	j := i + n
	for j < len(s) && s[j] == ' ' {
		j++
	}
	k := j
	for k < len(s) && isToken68(s[k]) {
		k++
	}
	if k-j < minAuthCred {
		return -1
	}
	return k
}

// credLike reports whether a token68 looks generated rather than a word:
// it has a digit, a symbol, or an upper-case letter after its first.
func credLike(c string) bool {
	for i := 0; i < len(c); i++ {
		if b := c[i]; !('a' <= b && b <= 'z') && !(i == 0 && 'A' <= b && b <= 'Z') {
			return true
		}
	}
	return false
}

// isToken68 reports whether c may appear in an RFC 7235 token68.
func isToken68(c byte) bool {
	return isB64URL(c) || c == '.' || c == '~' || c == '+' || c == '/' || c == '='
}

func isAlnum(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
}

// jwtLen returns the length of the compact JWS (three segments) or JWE
// (five) at the start of s, or 0. Segments are base64url and may be empty
// (a JWE with "dir" has no encrypted key, an unsecured JWS no signature);
// the first must decode to a JSON object.
func jwtLen(s string) int {
	segs, i := 1, 0
	for ; i < len(s); i++ {
		c := s[i]
		if isB64URL(c) {
			continue
		}
		if c == '.' {
			segs++
			continue
		}
		break
	}
	// A final dot ends a sentence, unless the token needs it (an
	// unsecured JWS "header.payload." ends with one).
	if (segs == 4 || segs == 6) && s[i-1] == '.' {
		i--
		segs--
	}
	if segs != 3 && segs != 5 || i < 16 {
		return 0
	}
	if !jsonObjectB64(s[:strings.IndexByte(s, '.')]) {
		return 0
	}
	return i
}

// jsonObjectB64 reports whether the base64url text h decodes to something
// shaped like a JSON object: '{' then '"' first, '}' last (JSON white
// space aside). It decodes into a stack buffer, without allocating; of a
// header longer than the buffer only the start is checked.
func jsonObjectB64(h string) bool {
	var buf [384]byte
	n, whole := 0, true
	var acc uint32
	bits := 0
	for i := 0; i < len(h); i++ {
		d := b64URLValue(h[i])
		if d < 0 {
			return false
		}
		acc = acc<<6 | uint32(d)
		bits += 6
		if bits >= 8 {
			bits -= 8
			if n == len(buf) {
				whole = false
				break
			}
			buf[n] = byte(acc >> bits)
			n++
		}
	}
	b := buf[:n]
	for len(b) > 0 && isJSONSpace(b[0]) {
		b = b[1:]
	}
	if len(b) < 2 || b[0] != '{' {
		return false
	}
	b = b[1:]
	for len(b) > 0 && isJSONSpace(b[0]) {
		b = b[1:]
	}
	if len(b) == 0 || b[0] != '"' {
		return false
	}
	if !whole {
		return true
	}
	for len(b) > 0 && isJSONSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return len(b) > 0 && b[len(b)-1] == '}'
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func b64URLValue(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return int(c - 'A')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 26
	case '0' <= c && c <= '9':
		return int(c-'0') + 52
	case c == '-':
		return 62
	case c == '_':
		return 63
	}
	return -1
}

func isB64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

func itoa(n int) string { return strconv.Itoa(n) }

// Redact returns a redacted, truncated copy of any message-like value, for
// logs and API answers outside traces. Exec.Redact also hides the values
// the run marked secret.
func Redact(v any) any {
	s := &snapper{budget: snapBudget}
	return s.snapshot(v, 0)
}

// RedactText cuts credentials out of a free text (a log line, an error):
// the token and credential shapes traces redact, wherever they sit.
// Exec.RedactText also cuts the values the run marked secret.
func RedactText(text string) string {
	out, _ := redactSecrets(text, nil)
	return out
}

// redactMarked returns snap (a trace snapshot: maps, lists, strings and
// scalars) with the marked values redacted, copying only what changes.
// It is for the steps taken before a block marked a value it had received.
func redactMarked(snap any, marked []string, depth int) (any, bool) {
	if depth > snapMaxDepth+1 {
		return snap, false
	}
	switch t := snap.(type) {
	case string:
		if !isMarked(t, marked) {
			return snap, false
		}
		out, _ := redactSecrets(t, marked)
		return out, true
	case map[string]any:
		var out map[string]any
		for k, e := range t {
			if r, changed := redactMarked(e, marked, depth+1); changed {
				if out == nil {
					out = make(map[string]any, len(t))
					for k2, e2 := range t {
						out[k2] = e2
					}
				}
				out[k] = r
			}
		}
		if out == nil {
			return snap, false
		}
		return out, true
	case []any:
		var out []any
		for i, e := range t {
			if r, changed := redactMarked(e, marked, depth+1); changed {
				if out == nil {
					out = append([]any(nil), t...)
				}
				out[i] = r
			}
		}
		if out == nil {
			return snap, false
		}
		return out, true
	}
	return snap, false
}

// maxMsgDepth bounds the nesting msgSize walks: a deeper message (or one
// that contains itself, which a buggy block can build) counts as too big
// instead of overflowing the stack.
const maxMsgDepth = 256

// MessageSize is the engine's estimate of a message's encoded size, the
// figure Limits.MaxMessageBytes bounds (and TriggerContext.FireSized's
// size is in).
func MessageSize(v any) int { return msgSizeAt(v, math.MaxInt/2, 0) }

// msgSize estimates the encoded size of a message, stopping once it passes
// limit. It walks the value without allocating.
func msgSize(v any, limit int) int { return msgSizeAt(v, limit, 0) }

func msgSizeAt(v any, limit, depth int) int {
	if depth > maxMsgDepth || limit < 0 {
		return limit + 1
	}
	switch t := v.(type) {
	case string:
		return len(t) + 2
	case []byte:
		return len(t)
	case Lazy:
		return msgSizeAt(t.Value(), limit, depth)
	case map[string]any:
		n := 2
		for k, e := range t {
			n += len(k) + 4
			if n > limit {
				return n
			}
			n += msgSizeAt(e, limit-n, depth+1)
			if n > limit {
				return n
			}
		}
		return n
	case []any:
		n := 2
		for _, e := range t {
			n += msgSizeAt(e, limit-n, depth+1) + 1
			if n > limit {
				return n
			}
		}
		return n
	case []map[string]any:
		n := 2
		for _, e := range t {
			n += msgSizeAt(e, limit-n, depth+1) + 1
			if n > limit {
				return n
			}
		}
		return n
	case map[string]string:
		n := 2
		for k, e := range t {
			n += len(k) + len(e) + 6
		}
		return n
	case []string:
		n := 2
		for _, e := range t {
			n += len(e) + 3
		}
		return n
	case map[string][]string:
		n := 2
		for k, e := range t {
			n += len(k) + 6
			for _, s := range e {
				n += len(s) + 3
			}
		}
		return n
	}
	return 8
}

// CopyValue deep-copies the JSON-like parts of a message (maps and slices);
// other values are shared. Each fan-out wire gets its own copy.
func CopyValue(v any) any {
	switch t := v.(type) {
	case Lazy:
		return CopyValue(t.Value())
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = CopyValue(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = CopyValue(e)
		}
		return out
	case map[string]string:
		out := make(map[string]string, len(t))
		for k, e := range t {
			out[k] = e
		}
		return out
	case []string:
		return append([]string(nil), t...)
	case []byte:
		return append([]byte(nil), t...)
	case map[string][]string:
		out := make(map[string][]string, len(t))
		for k, e := range t {
			out[k] = append([]string(nil), e...)
		}
		return out
	case []map[string]any:
		out := make([]map[string]any, len(t))
		for i, e := range t {
			out[i] = CopyValue(e).(map[string]any)
		}
		return out
	}
	return v
}
