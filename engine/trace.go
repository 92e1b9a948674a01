package engine

import (
	"encoding/json"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Trace is the record of one run: per node the port taken, the duration, a
// size-bounded and redacted snapshot of the message it sent on, and the error.
type Trace struct {
	ID       string    `json:"id"`
	Flow     string    `json:"flow"`
	Version  int       `json:"version"`
	Trigger  string    `json:"trigger"`
	Started  time.Time `json:"started"`
	Duration int64     `json:"duration_ns"`
	Status   string    `json:"status"` // "ok" or "error"
	Error    string    `json:"error,omitempty"`
	// ErrorNode is the node whose failure ended the run, if one did.
	ErrorNode string `json:"error_node,omitempty"`
	Steps     []Step `json:"steps"`
}

// Step is one node execution.
type Step struct {
	Node     string `json:"node"`
	Type     string `json:"type"`
	Port     string `json:"port,omitempty"` // "" when the branch ended here
	Duration int64  `json:"duration_ns"`
	Error    string `json:"error,omitempty"`
	Msg      any    `json:"msg,omitempty"` // redacted, truncated snapshot
}

// Run status values.
const (
	StatusOK    = "ok"
	StatusError = "error"
)

// TraceSink persists finished traces. Save must not block the run: the
// flowd server batches them into the store in the background.
type TraceSink interface {
	SaveTrace(t *Trace)
}

// traceRing keeps the last n traces of a flow in memory.
type traceRing struct {
	mu   sync.Mutex
	buf  []*Trace
	next int
	full bool
}

func newTraceRing(n int) *traceRing { return &traceRing{buf: make([]*Trace, n)} }

func (r *traceRing) add(t *Trace) {
	r.mu.Lock()
	r.buf[r.next] = t
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
	r.mu.Unlock()
}

// list returns newest first.
func (r *traceRing) list() []*Trace {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	out := make([]*Trace, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}

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
	"private_key": true, "privatekey": true, "key": true, "keys": true, "jwk": true,
	"x-api-key": true, "api_key": true, "apikey": true, "session": true,
}

// jwkPrivate are JWK members that hold private material.
var jwkPrivate = map[string]bool{"d": true, "p": true, "q": true, "dp": true, "dq": true, "qi": true, "k": true, "oth": true}

type snapper struct {
	budget int
	extra  []string // block-declared sensitive keys
}

func (s *snapper) isSensitive(k string) bool {
	if sensitiveKeys[k] {
		return true
	}
	lk := strings.ToLower(k)
	if lk != k && sensitiveKeys[lk] {
		return true
	}
	for _, e := range s.extra {
		if strings.EqualFold(e, k) {
			return true
		}
	}
	return false
}

// snapshot copies v for a trace: sensitive keys and token-shaped strings
// redacted, long strings, big collections and deep nesting truncated.
func (s *snapper) snapshot(v any, depth int) any {
	if s.budget <= 0 {
		return "[truncated]"
	}
	switch t := v.(type) {
	case nil, bool, int, int64, float64, json.Number:
		s.budget -= 8
		return t
	case string:
		return s.str(t)
	case []byte:
		s.budget -= 16
		return "[" + itoa(len(t)) + " bytes]"
	case map[string]any:
		if depth >= snapMaxDepth {
			return "[truncated: too deep]"
		}
		_, isJWK := t["kty"]
		out := make(map[string]any, min(len(t), snapMaxItems))
		n := 0
		for k, e := range t {
			if n == snapMaxItems {
				out["…"] = "[" + itoa(len(t)-n) + " more keys]"
				break
			}
			n++
			s.budget -= len(k) + 4
			if s.isSensitive(k) || (isJWK && jwkPrivate[k]) {
				out[k] = Redacted
				continue
			}
			out[k] = s.snapshot(e, depth+1)
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(t))
		for k, e := range t {
			s.budget -= len(k) + 4
			if s.isSensitive(k) {
				out[k] = Redacted
			} else {
				out[k] = s.str(e)
			}
		}
		return out
	case map[string][]string:
		out := make(map[string]any, len(t))
		for k, e := range t {
			s.budget -= len(k) + 4
			if s.isSensitive(k) {
				out[k] = Redacted
			} else {
				out[k] = s.snapshot(stringsToAny(e), depth+1)
			}
		}
		return out
	case []any:
		if depth >= snapMaxDepth {
			return "[truncated: too deep]"
		}
		n := min(len(t), snapMaxItems)
		out := make([]any, 0, n+1)
		for _, e := range t[:n] {
			out = append(out, s.snapshot(e, depth+1))
		}
		if len(t) > n {
			out = append(out, "["+itoa(len(t)-n)+" more items]")
		}
		return out
	case []string:
		return s.snapshot(stringsToAny(t), depth)
	case time.Time:
		s.budget -= 32
		return t.UTC().Format(time.RFC3339Nano)
	case time.Duration:
		s.budget -= 16
		return t.String()
	}
	// Values of other Go types are not shown: they may hold anything.
	s.budget -= 16
	return "[value]"
}

func stringsToAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (s *snapper) str(v string) string {
	if looksSecret(v) {
		s.budget -= len(Redacted)
		return Redacted
	}
	if len(v) > snapMaxString {
		cut := snapMaxString
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		s.budget -= cut
		return v[:cut] + "…[" + itoa(len(v)) + " bytes]"
	}
	s.budget -= len(v)
	return v
}

// looksSecret catches tokens and keys wherever they sit in a message:
// compact JWS/JWE, bearer/basic credentials, PEM blocks.
func looksSecret(v string) bool {
	if len(v) < 16 {
		return false
	}
	if strings.HasPrefix(v, "eyJ") && strings.Count(v, ".") >= 2 {
		return true
	}
	if len(v) > 7 && (strings.EqualFold(v[:7], "bearer ") || strings.EqualFold(v[:6], "basic ")) {
		return true
	}
	return strings.Contains(v, "-----BEGIN ")
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// Redact returns a redacted, truncated copy of any message-like value, for
// logs and API answers outside traces.
func Redact(v any) any {
	s := &snapper{budget: snapBudget}
	return s.snapshot(v, 0)
}

// msgSize estimates the encoded size of a message, stopping once it passes
// limit. It walks the value without allocating.
func msgSize(v any, limit int) int {
	switch t := v.(type) {
	case string:
		return len(t) + 2
	case []byte:
		return len(t)
	case map[string]any:
		n := 2
		for k, e := range t {
			n += len(k) + 4 + msgSize(e, limit-n)
			if n > limit {
				return n
			}
		}
		return n
	case []any:
		n := 2
		for _, e := range t {
			n += msgSize(e, limit-n) + 1
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
			n += len(k) + 4 + msgSize(e, limit-n)
		}
		return n
	}
	return 8
}

// CopyValue deep-copies the JSON-like parts of a message (maps and slices);
// other values are shared. Each fan-out wire gets its own copy.
func CopyValue(v any) any {
	switch t := v.(type) {
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
	}
	return v
}
