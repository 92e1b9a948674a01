package httpblock

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/flowd/flowd/engine"
)

func respondSpec() engine.Spec {
	return engine.Spec{
		Type:    "http.respond",
		Bounded: true, // see engine.Spec.Bounded
		// It reads the message through expressions only.
		LazyMessage: true,
		Title:       "HTTP response",
		Category:    Category,
		Description: "Answers the request that started the run (an http.in), also from a sub-flow " +
			"that run called (core.call). The body is the " +
			"expression's value encoded as JSON, or written as is when it is text and the content " +
			"type is not JSON. Every response carries X-Content-Type-Options: nosniff and, unless " +
			"the flow sets Cache-Control, Cache-Control: no-store. The message then goes on by " +
			"\"out\" (say, to log); a second response to the same request is an error.",
		Fields: []engine.Field{
			{Name: "status", Label: "Status", Kind: engine.KindInt, Default: 200, Min: "200", Max: "599",
				Help: "HTTP status code, 200-599. 204 and 304 are sent without a body."},
			{Name: "headers", Label: "Headers", Kind: engine.KindExprMap,
				Help: "Header name -> expression, e.g. {\"Cache-Control\": \"'public, max-age=300'\", " +
					"\"ETag\": \"msg.etag\"}. An empty or nil value leaves the header out; a list " +
					"sends the header once per item (Set-Cookie). Content-Type here overrides " +
					"the content type field."},
			{Name: "body", Label: "Body", Kind: engine.KindExpr, Default: "msg.payload",
				Help: "Expression for the body. nil sends no body. Maps, lists and numbers are " +
					"encoded as JSON; text is JSON-encoded only when the content type is JSON."},
			{Name: "content_type", Label: "Content type", Kind: engine.KindString, Default: "application/json",
				Help: "Content-Type of the body, e.g. application/json, application/jwk-set+json, " +
					"text/plain; charset=utf-8, application/jwt."},
		},
		Outputs: []string{"out"},
	}
}

type respondHeader struct {
	configHeader
	values []string // the values when expr is a constant, evaluated at deploy
	// last is the most recent one-text value of a non-constant header and
	// its checked values: a header that repeats (an ETag, a Cache-Control
	// read from the message) costs a compare instead of an allocation.
	last *atomic.Pointer[lastHeader]
}

type lastHeader struct {
	text   string // the expression's text (headers)
	n      int    // the length (Content-Length)
	values []string
}

// respond writes the response of an http.in run.
type respond struct {
	status      int
	headers     []respondHeader
	body        *engine.Expr // nil: no body
	contentType string
	ctValue     []string // []string{contentType}
	// lastLength is the Content-Length value of the last response, kept
	// for the same reason as respondHeader.last.
	lastLength atomic.Pointer[lastHeader]
}

// Header values shared by every response. net/http copies a handler's
// header map when it writes the header and never changes the slices;
// they have no spare capacity, so an append elsewhere copies too.
var (
	nosniffValue = []string{"nosniff"}
	noStoreValue = []string{"no-store"}
)

var _ engine.Block = (*respond)(nil)

func newRespondFromConfig(s *engine.Setup) (engine.Block, error) {
	c := s.Config
	hs, err := configHeaders(s, "server")
	if err != nil {
		return nil, err
	}
	headers := make([]respondHeader, len(hs))
	for i, h := range hs {
		headers[i] = respondHeader{configHeader: h}
	}
	ct := c.String("content_type")
	if ct == "" {
		ct = "application/json"
	}
	if !validHeaderValue(ct) {
		return nil, s.Errorf("content_type", "must not contain control characters")
	}
	return newRespond(int(c.Int("status")), headers, c.Expr("body"), ct), nil
}

func newRespond(status int, headers []respondHeader, body *engine.Expr, contentType string) *respond {
	for i, h := range headers {
		// A constant header (say "'*'") is evaluated once, here.
		if v, ok := h.expr.Constant(); ok {
			if values, err := headerValues(v); err == nil {
				headers[i].values = slices.Clip(values)
			}
		}
		if headers[i].values == nil {
			headers[i].last = new(atomic.Pointer[lastHeader])
		}
	}
	return &respond{status: status, headers: headers, body: body, contentType: contentType,
		ctValue: []string{contentType}}
}

// headerValue is one evaluated header: most have one value.
type headerValue struct {
	name   string
	values []string
}

func (b *respond) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	ex := exchangeFrom(ctx)
	if ex == nil {
		return "", ErrNoRequest
	}
	if ex.written {
		return "", fmt.Errorf("%w (status %d)", ErrAlreadyResponded, ex.status)
	}
	// Evaluate everything before touching the response, so an error leaves
	// it unsent and the http.in answers 500 with the run id.
	ct := b.contentType
	var hbuf [4]headerValue
	set := hbuf[:0]
	for _, h := range b.headers {
		values := h.values
		if values == nil {
			v, err := h.expr.Eval(x, msg)
			if err != nil {
				return "", fmt.Errorf("header %s: %w", h.name, err)
			}
			if values, err = h.valuesOf(v); err != nil {
				return "", fmt.Errorf("header %s: %w", h.name, err)
			}
		}
		if len(values) == 0 {
			continue
		}
		if h.name == "Content-Type" {
			ct = values[0]
			continue
		}
		set = append(set, headerValue{h.name, values})
	}
	noBody := b.status == http.StatusNoContent || b.status == http.StatusNotModified
	var body []byte // what to send
	if !noBody && b.body != nil {
		v, err := b.body.Eval(x, msg)
		if err != nil {
			return "", fmt.Errorf("body: %w", err)
		}
		switch t := v.(type) {
		case []byte:
			body = t // sent as is, without a copy into a buffer first
		default:
			buf := getBuf()
			defer putBuf(buf)
			if err := encodeBody(buf, v, isJSONType(ct)); err != nil {
				return "", fmt.Errorf("body: %w", err)
			}
			body = buf.Bytes()
		}
	}

	h := ex.w.Header()
	h["X-Content-Type-Options"] = nosniffValue
	for _, hv := range set {
		h[hv.name] = hv.values
	}
	if _, ok := h["Cache-Control"]; !ok {
		h["Cache-Control"] = noStoreValue
	}
	if !noBody {
		if len(body) > 0 {
			if ct == b.contentType {
				h["Content-Type"] = b.ctValue
			} else {
				h["Content-Type"] = []string{ct}
			}
		}
		h["Content-Length"] = b.contentLength(len(body))
	}
	ex.written, ex.status = true, b.status
	x.Answered(b.status)
	ex.w.WriteHeader(b.status)
	if len(body) > 0 {
		// A failed write means the client left; the run goes on regardless.
		ex.w.Write(body) //nolint:errcheck
	}
	// Send it now: blocks after "out" (logging) must not delay the client.
	if f, ok := ex.w.(http.Flusher); ok {
		f.Flush()
	}
	return "out", nil
}

// valuesOf is headerValues for this header, reusing the values of the
// last response when the expression gave the same text. The shared slice
// is safe: net/http copies nothing into it and never changes it, as with
// the constant headers above.
func (h *respondHeader) valuesOf(v any) ([]string, error) {
	s, ok := v.(string)
	if !ok || h.last == nil {
		return headerValues(v)
	}
	if l := h.last.Load(); l != nil && l.text == s {
		return l.values, nil
	}
	values, err := headerValues(s)
	if err == nil && values != nil {
		h.last.Store(&lastHeader{text: s, values: slices.Clip(values)})
	}
	return values, err
}

// contentLength returns the Content-Length header value for n bytes.
func (b *respond) contentLength(n int) []string {
	if l := b.lastLength.Load(); l != nil && l.n == n {
		return l.values
	}
	values := []string{strconv.Itoa(n)}
	b.lastLength.Store(&lastHeader{n: n, values: values})
	return values
}

// headerValues turns an expression result into header values: nil and ""
// mean none; a list gives one value per item.
func headerValues(v any) ([]string, error) {
	var out []string
	switch t := v.(type) {
	case nil:
		return nil, nil
	case string:
		if t == "" {
			return nil, nil
		}
		out = []string{t}
	case []string:
		out = slices.Clone(t) // the message may change after the response is sent
	case []any:
		out = make([]string, 0, len(t))
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, s)
			} else {
				out = append(out, fmt.Sprint(e))
			}
		}
	default:
		out = []string{fmt.Sprint(t)}
	}
	for _, s := range out {
		if !validHeaderValue(s) {
			return nil, fmt.Errorf("value contains control characters (CR, LF, ...)")
		}
	}
	return out, nil
}

// encodeBody writes v: []byte as is, text as is unless the content type is
// JSON, anything else as JSON (no HTML escaping: this is an API, not a page).
func encodeBody(buf *bytes.Buffer, v any, asJSON bool) error {
	switch t := v.(type) {
	case nil:
		return nil
	case []byte:
		buf.Write(t)
		return nil
	case string:
		if !asJSON {
			buf.WriteString(t)
			return nil
		}
	}
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		buf.Reset()
		return fmt.Errorf("cannot encode as JSON: %w", err)
	}
	return nil
}
