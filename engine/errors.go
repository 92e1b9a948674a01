package engine

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors; check with errors.Is.
var (
	ErrInvalidFlow   = errors.New("invalid flow") // wraps every *ValidationError
	ErrUnknownType   = errors.New("unknown block type")
	ErrNotDeployed   = errors.New("flow is not deployed")
	ErrNoTrigger     = errors.New("flow has no trigger to run")
	ErrClosed        = errors.New("runtime is closed")
	ErrStepLimit     = errors.New("run exceeded its node execution limit")
	ErrDeadline      = errors.New("run exceeded its deadline")
	ErrMessageTooBig = errors.New("message exceeded the size limit")
	ErrDuplicateType = errors.New("block type already registered")
	ErrBlockPanic    = errors.New("block panicked")
	// ErrUnavailable: a block cannot do its work now but expects to
	// shortly, and nothing was changed, so the same request may be sent
	// again (keys still being generated). Wrap it in an UnavailableError
	// to say what a client may be told; http.in answers 503 with
	// Retry-After.
	ErrUnavailable = errors.New("temporarily unavailable")
)

// UnavailableError is a refusal that will pass: it wraps ErrUnavailable
// and the cause, and carries what an edge may show a client.
type UnavailableError struct {
	// Public says what is missing in words safe to show any client: no
	// internals, no secrets, no request data.
	Public string
	// RetryAfter is when asking again makes sense (0: the edge's default).
	RetryAfter time.Duration
	// Err is the cause, for logs and errors.Is.
	Err error
}

func (e *UnavailableError) Error() string {
	if e.Err == nil {
		return e.Public
	}
	return e.Public + ": " + e.Err.Error()
}

// Unwrap makes errors.Is find both ErrUnavailable and the cause.
func (e *UnavailableError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// ValidationError names what is wrong in a flow document: the node and the
// config field, and for expressions the line and column (1-based).
type ValidationError struct {
	Node   string // node id ("" for document-level problems)
	Field  string // config field, or a document field such as "wires[2].to"
	Line   int    // expression line, 0 if not an expression error
	Column int    // expression column, 0 if not an expression error
	Msg    string

	// cause, if set, is what Unwrap returns instead of ErrInvalidFlow: an
	// error wrapping ErrInvalidFlow and a more precise sentinel.
	cause error
}

// errUnknownTypeCause lets errors.Is find both ErrInvalidFlow and
// ErrUnknownType in an unknown-type validation error.
var errUnknownTypeCause = fmt.Errorf("%w: %w", ErrInvalidFlow, ErrUnknownType)

func (e *ValidationError) Error() string {
	var b strings.Builder
	if e.Node != "" {
		fmt.Fprintf(&b, "node %q: ", e.Node)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "field %q: ", e.Field)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d, column %d: ", e.Line, e.Column)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalidFlow) hold, and for an unknown
// block type errors.Is(err, ErrUnknownType) too.
func (e *ValidationError) Unwrap() error {
	if e.cause != nil {
		return e.cause
	}
	return ErrInvalidFlow
}

// ValidationErrors is every problem found in one document, in document order.
type ValidationErrors []*ValidationError

func (es ValidationErrors) Error() string {
	if len(es) == 1 {
		return es[0].Error()
	}
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return fmt.Sprintf("%d problems: %s", len(es), strings.Join(parts, "; "))
}

func (es ValidationErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// err returns nil for an empty list so callers can `return errs.err()`.
func (es ValidationErrors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// FirstValidation returns the first *ValidationError inside err, if any,
// so an HTTP edge can report its node and field.
func FirstValidation(err error) *ValidationError {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve
	}
	return nil
}

func verr(node, field, format string, args ...any) *ValidationError {
	return &ValidationError{Node: node, Field: field, Msg: fmt.Sprintf(format, args...)}
}
