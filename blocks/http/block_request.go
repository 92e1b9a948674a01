package httpblock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flowd/flowd/engine"
)

func requestSpec() engine.Spec {
	return engine.Spec{
		Type:     "http.request",
		Title:    "HTTP request",
		Category: Category,
		Description: "Calls an HTTP API and puts its answer on msg.response: {status, headers " +
			"(lowercase names), body (parsed JSON when the response says JSON, else text)}. " +
			"Every answer, 2xx to 5xx, leaves by \"out\"; network errors, timeouts, refused hosts " +
			"and oversized answers leave by \"error\". The request's own headers are not put on " +
			"the message, so credentials sent stay out of traces.",
		Fields: []engine.Field{
			{Name: "method", Label: "Method", Kind: engine.KindEnum, Default: "GET",
				Enum: []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"},
				Help: "HTTP method of the call."},
			{Name: "url", Label: "URL", Kind: engine.KindExpr, Required: true,
				Help: "Expression for the http or https URL, e.g. \"'https://api.example.com/users/' + " +
					"msg.req.params.id\" (literal text needs quotes)."},
			{Name: "headers", Label: "Headers", Kind: engine.KindExprMap,
				Help: "Header name -> expression, e.g. {\"Authorization\": \"'Bearer ' + env.API_TOKEN\"}. " +
					"An empty or nil value leaves the header out."},
			{Name: "body", Label: "Body", Kind: engine.KindExpr,
				Help: "Expression for the request body. Text and bytes are sent as is (default " +
					"Content-Type text/plain); a map is form-encoded when the Content-Type header is " +
					"application/x-www-form-urlencoded; anything else is sent as JSON. nil: no body."},
			{Name: "timeout", Label: "Timeout", Kind: engine.KindDuration, Default: "10s", Min: "1ms", Max: "60s",
				Help: "Longest the whole call may take, reading the answer included (at most 60s; the " +
					"run's own deadline still applies)."},
			{Name: "max_response", Label: "Response limit (bytes)", Kind: engine.KindInt, Default: 1 << 20,
				Min: "1", Max: strconv.Itoa(maxBodyCap),
				Help: "Largest response body accepted; a larger one is an error (default 1 MiB, at most 10 MiB)."},
			{Name: "allow_hosts", Label: "Allowed hosts", Kind: engine.KindStrings,
				Help: "If set, the only hosts the call (and every redirect) may go to: exact names " +
					"(\"api.example.com\") or \"*.example.com\" for any subdomain. Recommended whenever " +
					"the URL is built from request data. No ports or schemes."},
			{Name: "follow_redirects", Label: "Follow redirects", Kind: engine.KindBool, Default: false,
				Help: "Follow up to 10 redirects (each checked against the allowed hosts; https to http " +
					"refused). Off: a 3xx answer is the result."},
		},
		Outputs:   []string{"out"},
		Sensitive: tokenHeaders(),
	}
}

// hostRule is one allow_hosts entry: an exact name, or a suffix
// (".example.com") for a "*.example.com" entry.
type hostRule struct {
	name   string
	suffix bool
}

// request is an http.request node: one client (and connection pool) per
// node, built at deploy.
type request struct {
	method    string
	url       *engine.Expr
	headers   []configHeader
	body      *engine.Expr
	timeout   time.Duration
	maxResp   int64
	allow     []hostRule
	follow    bool
	transport *http.Transport // the node's own; nil with a shared RouterOptions.Outbound
	client    *http.Client
	tracer    engine.Tracer // passes the run's trace context on; nil: not traced
}

var (
	_ engine.Block  = (*request)(nil)
	_ engine.Closer = (*request)(nil)
)

func newRequestFromConfig(s *engine.Setup, outbound http.RoundTripper) (engine.Block, error) {
	c := s.Config
	headers, err := configHeaders(s, "client")
	if err != nil {
		return nil, err
	}
	var allow []hostRule
	for i, h := range c.Strings("allow_hosts") {
		r, err := parseHostRule(h)
		if err != nil {
			return nil, s.Errorf("allow_hosts", "item %d: %v", i, err)
		}
		allow = append(allow, r)
	}
	b := newRequest(c.String("method"), c.Expr("url"), headers, c.Expr("body"), c.Duration("timeout"),
		c.Int("max_response"), allow, c.Bool("follow_redirects"), outbound)
	b.tracer = s.Tracer
	return b, nil
}

func newRequest(method string, u *engine.Expr, headers []configHeader, body *engine.Expr,
	timeout time.Duration, maxResp int64, allow []hostRule, follow bool, outbound http.RoundTripper) *request {
	b := &request{method: method, url: u, headers: headers, body: body, timeout: timeout,
		maxResp: maxResp, allow: allow, follow: follow}
	rt := outbound
	if rt == nil {
		b.transport = http.DefaultTransport.(*http.Transport).Clone()
		rt = b.transport
	}
	b.client = &http.Client{Transport: rt, CheckRedirect: b.checkRedirect}
	return b
}

func parseHostRule(h string) (hostRule, error) {
	h = strings.ToLower(strings.TrimSpace(h))
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		if ip := net.ParseIP(h[1 : len(h)-1]); ip != nil && strings.Contains(h, ":") {
			return hostRule{name: ip.String()}, nil
		}
		return hostRule{}, fmt.Errorf("%q is not an IPv6 address", h)
	}
	h = strings.TrimSuffix(h, ".")
	rule := hostRule{name: h}
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		rule = hostRule{name: "." + rest, suffix: true}
		h = rest
	}
	if h == "" || strings.ContainsAny(h, "*/:@?#[] \t") {
		return hostRule{}, fmt.Errorf("%q must be a host name like \"api.example.com\" or \"*.example.com\" (no scheme, port or path)", h)
	}
	return rule, nil
}

// allowed checks a URL's host against allow_hosts.
func (b *request) allowed(u *url.URL) error {
	if len(b.allow) == 0 {
		return nil
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	}
	for _, r := range b.allow {
		if host == r.name || (r.suffix && len(host) > len(r.name) && strings.HasSuffix(host, r.name)) {
			return nil
		}
	}
	return fmt.Errorf("host %q: %w", host, ErrHostNotAllowed)
}

func (b *request) checkRedirect(req *http.Request, via []*http.Request) error {
	if !b.follow {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect to a %q URL refused", req.URL.Scheme)
	}
	if via[len(via)-1].URL.Scheme == "https" && req.URL.Scheme == "http" {
		return errors.New("redirect from https to http refused")
	}
	if err := b.allowed(req.URL); err != nil {
		return fmt.Errorf("redirect: %w", err)
	}
	return nil
}

// Close drops the node's idle connections once its version is replaced
// (a shared Outbound transport is its owner's to close).
func (b *request) Close() error {
	if b.transport != nil {
		b.transport.CloseIdleConnections()
	}
	return nil
}

func (b *request) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	raw, err := b.url.EvalString(x, msg)
	if err != nil {
		return "", fmt.Errorf("url: %w", err)
	}
	// Errors name only scheme and host: a path or query may hold a secret.
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("url: not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("url: scheme must be http or https")
	}
	if u.Host == "" {
		return "", errors.New("url: no host")
	}
	where := b.method + " " + u.Scheme + "://" + u.Host
	if err := b.allowed(u); err != nil {
		return "", fmt.Errorf("%s: %w", where, err)
	}
	header := make(http.Header, len(b.headers)+2)
	for _, h := range b.headers {
		v, err := h.expr.Eval(x, msg)
		if err != nil {
			return "", fmt.Errorf("header %s: %w", h.name, err)
		}
		values, err := headerValues(v)
		if err != nil {
			return "", fmt.Errorf("header %s: %w", h.name, err)
		}
		if len(values) > 0 {
			header[h.name] = values
		}
	}
	var body io.Reader
	if b.body != nil {
		v, err := b.body.Eval(x, msg)
		if err != nil {
			return "", fmt.Errorf("body: %w", err)
		}
		if body, err = requestBody(v, header); err != nil {
			return "", fmt.Errorf("body: %w", err)
		}
	}
	if _, ok := header["User-Agent"]; !ok {
		header["User-Agent"] = []string{"flowd"}
	}
	if b.tracer != nil {
		// The step's span goes on as the callee's parent (traceparent).
		b.tracer.Inject(ctx, headerCarrier(header))
	}

	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, b.method, u.String(), body)
	if err != nil {
		return "", fmt.Errorf("%s: cannot build the request", where)
	}
	req.Header = header
	resp, err := b.client.Do(req)
	if err != nil {
		return "", b.callError(ctx, where, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength > b.maxResp {
		return "", fmt.Errorf("%s: %w (%d bytes, limit %s)", where, ErrResponseTooLarge, resp.ContentLength, sizeText(b.maxResp))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, b.maxResp+1))
	if err != nil {
		return "", b.callError(ctx, where, err)
	}
	if int64(len(data)) > b.maxResp {
		return "", fmt.Errorf("%s: %w (limit %s)", where, ErrResponseTooLarge, sizeText(b.maxResp))
	}
	var rbody any
	if len(data) > 0 {
		if isJSONType(resp.Header.Get("Content-Type")) {
			if rbody, err = decodeJSON(data); err != nil {
				return "", fmt.Errorf("%s: status %d: response %s", where, resp.StatusCode, strings.TrimPrefix(err.Error(), "body "))
			}
		} else {
			rbody = string(data)
		}
	}
	msg["response"] = map[string]any{
		"status":  resp.StatusCode,
		"headers": headerMap(resp.Header),
		"body":    rbody,
	}
	return "out", nil
}

// callError words a failed call without the URL (url.Error quotes it,
// query and all).
func (b *request) callError(ctx context.Context, where string, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w (timeout %s or the run's deadline)", where, ErrTimeout, b.timeout)
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	return fmt.Errorf("%s: %w", where, err)
}

// requestBody encodes v and sets a default Content-Type in header.
func requestBody(v any, header http.Header) (io.Reader, error) {
	ct := header.Get("Content-Type")
	setCT := func(def string) {
		if ct == "" {
			header["Content-Type"] = []string{def}
		}
	}
	switch t := v.(type) {
	case nil:
		return nil, nil
	case string:
		setCT("text/plain; charset=utf-8")
		return strings.NewReader(t), nil
	case []byte:
		setCT("application/octet-stream")
		return bytes.NewReader(t), nil
	}
	if isFormType(ct) {
		form, err := formValues(v)
		if err != nil {
			return nil, err
		}
		return strings.NewReader(form.Encode()), nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("cannot encode as JSON: %w", err)
	}
	setCT("application/json")
	return bytes.NewReader(data), nil
}

// formValues encodes a map as form fields; list values repeat the name.
func formValues(v any) (url.Values, error) {
	form := url.Values{}
	add := func(k string, e any) {
		switch t := e.(type) {
		case nil:
		case string:
			form.Add(k, t)
		case []string:
			for _, s := range t {
				form.Add(k, s)
			}
		case []any:
			for _, s := range t {
				form.Add(k, fmt.Sprint(s))
			}
		default:
			form.Add(k, fmt.Sprint(t))
		}
	}
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			add(k, e)
		}
	case map[string]string:
		for k, e := range t {
			form.Add(k, e)
		}
	default:
		return nil, fmt.Errorf("a form body must be a map or text, not %T", v)
	}
	return form, nil
}
