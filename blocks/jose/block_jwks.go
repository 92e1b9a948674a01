package jose

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flowd/flowd/engine"
)

// JWKSContentType is the media type of a JWK Set (RFC 7517 §8.5.1).
const JWKSContentType = "application/jwk-set+json"

func jwksSpec() engine.Spec {
	return engine.Spec{
		Type:    "jose.jwks",
		Bounded: true, // see engine.Spec.Bounded
		// It reads one request header, through requestHeader.
		LazyMessage: true,
		Title:       "JWKS",
		Category:    Category,
		Description: "Puts the public JWK Set of a keyset at msg.jwks, as the exact bytes cached " +
			"since the keyset last changed (no serializing per request): msg.jwks.body (bytes; " +
			"http.respond writes bytes as they are), etag, cache_control, max_age (seconds) and " +
			"content_type. A request whose If-None-Match matches the ETag leaves by " +
			"\"not_modified\" (answer 304 there), every other by \"ok\". Wire it like: " +
			"jose.jwks --ok--> http.respond {body: msg.jwks.body, content_type: " +
			"application/jwk-set+json, headers: {ETag: msg.jwks.etag, Cache-Control: " +
			"msg.jwks.cache_control}}. An unknown keyset is an error; one whose first keys are " +
			"still being made (jose.rotate creating it) is an engine.ErrUnavailable error, which " +
			"http.in answers 503 temporarily_unavailable with Retry-After.",
		Fields: []engine.Field{
			{Name: "keyset", Label: "Keyset", Kind: engine.KindString, Ref: engine.RefKeyset, Required: true,
				Help: "Name of the keyset whose public keys to publish."},
			{Name: "max_age", Label: "Cache lifetime", Kind: engine.KindDuration,
				Default: defaultJWKSMaxAge.String(), Max: "24h",
				Help: "How long clients may cache the set: Cache-Control max-age, in whole " +
					"seconds. Keep it within the jwks_max_age that jose.rotate assumes."},
		},
		Outputs: []string{portOK, portNotModified},
	}
}

type jwksBlock struct {
	ks     *Keysets
	keyset string
	// The constant members of msg.jwks, boxed once so a request does not
	// allocate them again.
	maxAge, cacheControl, contentType any
	// boxed is the body and ETag of the last keyset version served, boxed
	// once per version for the same reason.
	boxed atomic.Pointer[jwksBoxed]
	// ok, notModified and unavailable count answers (nil: not counted).
	ok, notModified, unavailable engine.Counter
}

var _ engine.Block = (*jwksBlock)(nil)

// jwksBoxed is msg.jwks for one version of the set: an immutable Lazy
// value shared by every run (engine.Exec.PutLazy). A block that reads
// msg.jwks.<member> through an expression (http.respond) gets the member
// without a copy; a block that may change the message gets its own copy
// of the map, built by the engine before it runs.
type jwksBoxed struct {
	etag string
	out  map[string]any // never changed once published
}

var _ engine.Lazy = (*jwksBoxed)(nil)

// Value returns a copy of msg.jwks the caller owns: a clone copies the
// map's memory as it is, cheaper than building it key by key.
func (bx *jwksBoxed) Value() any { return maps.Clone(bx.out) }

// Lookup answers msg.jwks.<member> (nil for an unknown member, as the
// built map would); deeper paths are left to the built value.
func (bx *jwksBoxed) Lookup(path []string) (any, bool) {
	if len(path) != 1 {
		return nil, false
	}
	return bx.out[path[0]], true
}

func newJWKSFromConfig(s *engine.Setup, d *blockDeps) (engine.Block, error) {
	c := s.Config
	name := c.String("keyset")
	if err := checkKeysetField(s, "keyset", name); err != nil {
		return nil, err
	}
	maxAge := c.Duration("max_age")
	if maxAge%time.Second != 0 {
		return nil, s.Errorf("max_age", "must be whole seconds (Cache-Control max-age counts seconds)")
	}
	b := newJWKS(d.ks, name, maxAge)
	if o, ok := s.Observer.(Observer); ok {
		b.ok, b.notModified = o.JWKSAnswer(s.FlowID, s.NodeID, name, 200), o.JWKSAnswer(s.FlowID, s.NodeID, name, 304)
		b.unavailable = o.JWKSAnswer(s.FlowID, s.NodeID, name, 503)
	}
	return b, nil
}

func newJWKS(ks *Keysets, keyset string, maxAge time.Duration) *jwksBlock {
	secs := int64(maxAge / time.Second)
	return &jwksBlock{ks: ks, keyset: keyset, maxAge: secs,
		cacheControl: "public, max-age=" + strconv.FormatInt(secs, 10), contentType: JWKSContentType}
}

func (b *jwksBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	body, etag, err := b.ks.JWKS(ctx, b.keyset)
	if err != nil {
		if b.unavailable != nil && errors.Is(err, engine.ErrUnavailable) {
			b.unavailable.Inc() // http.in answers it 503 with Retry-After
		}
		return "", fmt.Errorf("JWKS of keyset %q: %w", b.keyset, err)
	}
	// body is the manager's cached slice, shared read-only with every other
	// request: it is passed on, never copied or re-encoded. The ETag is the
	// body's hash, so an equal ETag means the boxed body is the same bytes.
	bx := b.boxed.Load()
	if bx == nil || bx.etag != etag {
		bx = &jwksBoxed{etag: etag, out: map[string]any{
			"body":          body,
			"etag":          etag,
			"cache_control": b.cacheControl,
			"max_age":       b.maxAge,
			"content_type":  b.contentType,
		}}
		b.boxed.Store(bx)
	}
	x.PutLazy(msg, "jwks", bx)
	if inm := ifNoneMatch(msg); inm != "" && etagMatch(inm, etag) {
		if b.notModified != nil {
			b.notModified.Inc()
		}
		return portNotModified, nil
	}
	if b.ok != nil {
		b.ok.Inc()
	}
	return portOK, nil
}

// ifNoneMatchPath is msg.req.headers.if-none-match, as one slice for
// every request (a path built per call is an allocation).
var ifNoneMatchPath = []string{"req", "headers", "if-none-match"}

// ifNoneMatch is requestHeader(msg, "if-none-match") without allocating.
func ifNoneMatch(msg engine.Msg) string {
	if s, ok := engine.MsgPath(msg, ifNoneMatchPath...).(string); ok {
		return s
	}
	req, _ := msg["req"].(map[string]any)
	if h, ok := req["headers"].(map[string]string); ok {
		return h["if-none-match"]
	}
	return ""
}

// etagMatch applies If-None-Match (RFC 9110 §13.1.2): "*" or a list of
// entity tags, compared weakly (a W/ prefix is ignored).
func etagMatch(header, etag string) bool {
	if strings.TrimSpace(header) == "*" {
		return true
	}
	want := strings.TrimPrefix(etag, "W/")
	for rest := header; rest != ""; {
		var tag string
		tag, rest, _ = strings.Cut(rest, ",")
		tag = strings.TrimSpace(tag)
		if strings.TrimPrefix(tag, "W/") == want {
			return true
		}
	}
	return false
}
