package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Trace is the record of one run: per node the port taken, the duration, a
// size-bounded and redacted snapshot of the message it sent on, and the error.
//
// Its JSON form is a stored and served format: traces persisted by the
// store, the admin API's runs and the CLI all go through EncodeTrace and
// DecodeTrace, and engine/testdata/trace holds its goldens. Renaming or
// retyping a field is a new TraceVersion with a decoding rule for the old
// one; snapshots and redaction are in snapshot.go.
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
	// Light: the run was past its flow's snapshot rate
	// (Options.SnapshotsPerSecond), so its steps carry no message, except
	// steps that failed.
	Light bool `json:"light,omitempty"`
	// Answer is the status the run answered its trigger with, as a block
	// reported it (Exec.Answered: http.respond, the HTTP status); 0 when
	// none did. A sub-flow's answer is also its caller's. Added to version
	// 1 without a new version: older readers ignore it. (An int32 in the
	// padding after Light: the trace keeps its size class.)
	Answer int32 `json:"answer,omitempty"`
	// TraceID and SpanID link the run to its distributed trace (Options.
	// Tracer): the trace and the run span's ids in lowercase hex, empty
	// when the run was not traced or not sampled. Added to version 1
	// without a new version: older readers ignore them.
	TraceID string `json:"trace_id,omitempty"`
	SpanID  string `json:"span_id,omitempty"`
	Steps   []Step `json:"steps"`

	stepBuf [4]Step // Steps' first backing array, in the same allocation
	// idBuf holds ID's text for a trace the runtime made (newRunID):
	// one allocation less per run, and the trace stays 576 bytes, a
	// size class of its own.
	idBuf [runIDLen]byte
}

// Step is one node execution.
type Step struct {
	Node     string `json:"node"`
	Type     string `json:"type"`
	Port     string `json:"port,omitempty"` // "" when the branch ended here
	Duration int64  `json:"duration_ns"`
	Error    string `json:"error,omitempty"`
	// Msg is a redacted, truncated snapshot of the message (maps are
	// map[string]any, lists []any). Steps share the parts that did not
	// change between them: treat it as read-only.
	Msg any `json:"msg,omitempty"`
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
	snaps snapLimiter // the flow's snapshot rate
	mu    sync.Mutex
	buf   []*Trace
	next  int
	full  bool
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

// TraceVersion is the version of the trace encoding EncodeTrace writes, in
// its "v" member. Version 0 is the unversioned encoding written before
// traces carried a version: the same members without "v". Stored traces of
// every version DecodeTrace knows must keep loading.
const TraceVersion = 1

// ErrTraceVersion is returned by DecodeTrace for a trace written by a
// newer flowd, in an encoding this one does not know.
var ErrTraceVersion = errors.New("unknown trace encoding version")

// traceFields is Trace without its methods, so the codec can embed it.
type traceFields Trace

// EncodeTrace returns the JSON encoding of a trace, its stored and served
// form: {"v": TraceVersion, "id": ..., "steps": [...]}.
func EncodeTrace(t *Trace) ([]byte, error) {
	doc := struct {
		V int `json:"v"`
		*traceFields
	}{TraceVersion, (*traceFields)(t)}
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode trace %s: %w", t.ID, err)
	}
	return data, nil
}

// DecodeTrace reads a trace written by EncodeTrace, of the current version
// or an older one (a trace without "v" is version 0). Step messages decode
// as JSON values: maps are map[string]any, numbers float64.
func DecodeTrace(data []byte) (*Trace, error) {
	t := &Trace{}
	doc := struct {
		V *int `json:"v"`
		*traceFields
	}{traceFields: (*traceFields)(t)}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("decode trace: %w", err)
	}
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil, errors.New("decode trace: null")
	}
	v := 0
	if doc.V != nil {
		v = *doc.V
	}
	switch v {
	case 0, 1:
		// Version 1 added "v" to version 0 and changed nothing else.
	default:
		return nil, fmt.Errorf("decode trace %s: version %d: %w (this flowd reads up to %d)", t.ID, v, ErrTraceVersion, TraceVersion)
	}
	if t.Steps == nil {
		t.Steps = []Step{}
	}
	return t, nil
}
