package jose

// The flow blocks of this package sit on the library above them and add
// nothing cryptographic of their own: every block parses and checks its
// config at deploy (validators, encrypter options, durations), and a run
// only reads the message, calls the library and writes the answer.
//
//	jose.generate_key  keyset + alg          --out-->            msg.key
//	jose.rotate        keyset [+ alg]        --out-->            msg.rotation
//	jose.jwks          keyset                --ok / not_modified--> msg.jwks
//	jose.sign          keyset + claims       --out-->            msg.<target>, msg.<target>_kid
//	jose.validate      token + policy        --valid-->          msg.claims, msg.token_header, msg.key
//	                                         --invalid-->        msg.invalid {reason, detail}
//	jose.encrypt       payload               --out-->            msg.<target>
//	jose.decrypt       token [+ policy]      --valid / invalid-->  msg.decrypted | msg.claims ...
//	jose.decode        token                 --out / invalid-->  msg.decoded (UNVERIFIED)
//
// Every block also has the engine's "error" port: a missing keyset, a store
// failure or a key source that cannot be reached is an error, not a verdict
// on the token.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/flowd/flowd/engine"
)

// Category is the editor palette group of every block in this package.
const Category = "jose"

// ReasonTokenMissing is the reason a block gives when the message carries
// no token at all (no Authorization: Bearer header, or a token expression
// that gave nil or ""). It is a block-level reason: the library never
// sees a missing token.
const ReasonTokenMissing Reason = "token_missing"

// ErrBlockFailed is wrapped by the error of a jose block that panicked. The
// library guards every go-jose call; this is the second line.
var ErrBlockFailed = errors.New("jose block failed internally")

// Options configure the jose blocks.
type Options struct {
	// Logger gets block warnings (remote JWKS fetch failures, recovered
	// panics). nil discards them.
	Logger *slog.Logger
	// HTTPClient fetches remote JWK Sets for jose.validate and jose.decrypt.
	// nil means a client with dial, TLS and response timeouts.
	HTTPClient *http.Client
	// AllowInsecureJWKS lets jwks_url be http:// to a loopback host (tests,
	// a sidecar). Never set it in production.
	AllowInsecureJWKS bool
	// Now is the validators' clock for exp, nbf and iat; nil means the
	// keyset manager's clock (Keysets.Now, else time.Now).
	Now func() time.Time
	// Issuer is this server's issuer identifier: jose.sign uses it when its
	// issuer field is empty, jose.validate and jose.decrypt when theirs is.
	// DPoP checks take it as the public base URL of the request (htu).
	Issuer string
	// Replay remembers the jti of DPoP proofs. Give a cluster a
	// KVReplayCache over the shared store; nil means an in-memory cache of
	// this process (DefaultReplayEntries entries).
	Replay ReplayCache
}

// DefaultReplayEntries bounds the in-memory replay cache used when
// Options.Replay is nil.
const DefaultReplayEntries = 100_000

// blockDeps is what every factory gets: the shared keyset manager and the
// resolved options.
type blockDeps struct {
	ks       *Keysets
	signer   *Signer
	log      *slog.Logger
	client   *http.Client
	insecure bool
	now      func() time.Time
	issuer   string
	replay   ReplayCache
	nonces   *NonceSource
}

// Register adds the jose block types and their lint checks to reg. It
// needs no services: a runtime that deploys jose blocks gets the keyset
// manager and options given to Provide.
func Register(reg *engine.Registry) error {
	blocks := []struct {
		spec    engine.Spec
		factory func(*engine.Setup, *blockDeps) (engine.Block, error)
	}{
		{generateKeySpec(), newGenerateKeyFromConfig},
		{rotateSpec(), newRotateFromConfig},
		{jwksSpec(), newJWKSFromConfig},
		{signSpec(), newSignFromConfig},
		{validateSpec(), newValidateFromConfig},
		{encryptSpec(), newEncryptFromConfig},
		{decryptSpec(), newDecryptFromConfig},
		{decodeSpec(), newDecodeFromConfig},
		{dpopSpec(), newDPoPFromConfig},
	}
	for _, b := range blocks {
		typ, factory := b.spec.Type, b.factory
		err := reg.Register(b.spec, func(s *engine.Setup) (engine.Block, error) {
			d, err := depsFor(s)
			if err != nil {
				return nil, fmt.Errorf("%s needs a keyset manager: %w", typ, err)
			}
			blk, err := factory(s, d)
			if err != nil {
				return nil, err
			}
			return &guarded{typ: typ, b: blk, log: d.log}, nil
		})
		if err != nil {
			return err
		}
	}
	return registerLint(reg)
}

// Provide gives the jose blocks of a runtime built with svc their keyset
// manager and options. Every block works on the keysets of ks; nothing is
// global, so two runtimes may use two managers.
func Provide(svc *engine.Services, ks *Keysets, opts Options) error {
	if ks == nil {
		return errors.New("jose: Provide needs a keyset manager")
	}
	return engine.Provide(svc, newBlockDeps(ks, opts))
}

func newBlockDeps(ks *Keysets, opts Options) *blockDeps {
	d := &blockDeps{ks: ks, signer: NewSigner(ks), log: opts.Logger, client: opts.HTTPClient, issuer: opts.Issuer,
		insecure: opts.AllowInsecureJWKS, now: opts.Now}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.client == nil {
		d.client = defaultJWKSClient()
	}
	if d.now == nil {
		d.now = ks.now
	}
	d.replay = opts.Replay
	if d.replay == nil {
		d.replay = NewMemoryReplayCache(DefaultReplayEntries, d.now)
	}
	d.nonces = NewNonceSource(ks.store, DefaultNonceLifetime, d.now)
	return d
}

// ValidationIssuer stands in for flowd's issuer when a flow is only
// validated on a runtime without services (a bare registry: `flowd
// validate`): the server's issuer is not known to a file check, so blocks
// that default to it are checked as if one were set.
const ValidationIssuer = "https://issuer.invalid"

// depsFor finds the services of the runtime. A node only validated on a
// runtime without them is built on a keyset manager with no store, which
// it never reaches: the block is closed unrun.
func depsFor(s *engine.Setup) (*blockDeps, error) {
	return engine.ServiceOr(s, "jose.Provide", func() *blockDeps {
		return newBlockDeps(NewKeysets(nil), Options{Issuer: ValidationIssuer})
	})
}

// defaultJWKSClient bounds every phase of a JWKS fetch; RemoteJWKS adds an
// overall timeout on top.
func defaultJWKSClient() *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   3 * time.Second,
		ResponseHeaderTimeout: DefaultJWKSTimeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   2,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: tr, Timeout: DefaultJWKSTimeout}
}

// guarded turns a panic inside a jose block into a run error on the
// block's error port. The engine would recover it too, but as a failed run;
// a hostile token must never cost more than its own branch.
type guarded struct {
	typ string
	b   engine.Block
	log *slog.Logger
}

var (
	_ engine.Block  = (*guarded)(nil)
	_ engine.Closer = (*guarded)(nil)
)

func (g *guarded) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (port string, err error) {
	defer func() {
		if p := recover(); p != nil {
			// Only the panic's type and, for runtime errors, their fixed
			// text: a panic value from crypto code could hold anything.
			what := fmt.Sprintf("%T", p)
			if re, ok := p.(runtime.Error); ok {
				what = re.Error()
			}
			log := g.log
			if x != nil && x.Logger != nil {
				log = x.Logger
			}
			runID := ""
			if x != nil {
				runID = x.RunID
			}
			log.Error("jose block panicked", "type", g.typ, "run", runID, "panic", what)
			port, err = "", fmt.Errorf("%s: %w", g.typ, ErrBlockFailed)
		}
	}()
	return g.b.Process(ctx, x, msg)
}

// Close forwards to the wrapped block when it has a Close hook.
func (g *guarded) Close() error {
	if c, ok := g.b.(engine.Closer); ok {
		return c.Close()
	}
	return nil
}

// --- message helpers --------------------------------------------------------

// Ports shared by the token blocks.
const (
	portOut         = "out"
	portValid       = "valid"
	portInvalid     = "invalid"
	portOK          = "ok"
	portNotModified = "not_modified"
)

// tokenFieldHelp explains the token field of the blocks that read one.
const tokenFieldHelp = "Expression giving the token text, e.g. msg.body.token. Empty: the bearer " +
	"token of the request that started the run (msg.req.headers.authorization without its " +
	"\"Bearer \" prefix, any case). No token at all leaves by \"invalid\" with reason token_missing."

// readToken evaluates a token field: nil expr means the bearer token of
// msg.req. A missing token is a *TokenError (token_missing); an expression
// that fails is a run error.
func readToken(x *engine.Exec, msg engine.Msg, e *engine.Expr) (string, *TokenError, error) {
	if e == nil {
		tok, ok := bearerToken(msg)
		if !ok {
			return "", tokenErr(ReasonTokenMissing, "no Authorization: Bearer token in the request"), nil
		}
		return tok, nil, nil
	}
	v, err := e.Eval(x, msg)
	if err != nil {
		return "", nil, fmt.Errorf("token: %w", err)
	}
	switch t := v.(type) {
	case nil:
		return "", tokenErr(ReasonTokenMissing, "the token expression gave nil"), nil
	case string:
		if t == "" {
			return "", tokenErr(ReasonTokenMissing, "the token expression gave an empty text"), nil
		}
		return t, nil, nil
	case []byte:
		if len(t) == 0 {
			return "", tokenErr(ReasonTokenMissing, "the token expression gave no bytes"), nil
		}
		return string(t), nil, nil
	}
	return "", tokenErr(ReasonMalformed, fmt.Sprintf("the token expression gave %T, not text", v)), nil
}

// bearerToken reads msg.req.headers.authorization as http.in writes it
// (lowercase names) and strips the "Bearer" scheme, case-insensitively
// (RFC 9110 §11.1: auth schemes are case-insensitive).
func bearerToken(msg engine.Msg) (string, bool) {
	req, _ := msg["req"].(map[string]any)
	var auth string
	switch h := req["headers"].(type) {
	case map[string]any:
		auth, _ = h["authorization"].(string)
	case map[string]string:
		auth = h["authorization"]
	}
	const scheme = "bearer"
	if len(auth) <= len(scheme) || !strings.EqualFold(auth[:len(scheme)], scheme) ||
		(auth[len(scheme)] != ' ' && auth[len(scheme)] != '\t') {
		return "", false
	}
	tok := strings.Trim(auth[len(scheme):], " \t")
	return tok, tok != ""
}

// requestHeader reads one lowercase request header from msg.req.headers.
func requestHeader(msg engine.Msg, name string) string {
	// engine.Lookup also reads an http.in message's msg.req without
	// building it (engine.Lazy).
	if s, ok := engine.MsgPath(msg, "req", "headers", name).(string); ok {
		return s
	}
	req, _ := msg["req"].(map[string]any)
	if h, ok := req["headers"].(map[string]string); ok {
		return h[name]
	}
	return ""
}

// verdict routes a library error: a *TokenError leaves by "invalid" with
// its reason; anything else (key source down, cancelled) is a run error,
// because the token was not judged.
func verdict(msg engine.Msg, err error) (string, error) {
	var te *TokenError
	if errors.As(err, &te) {
		return markInvalid(msg, te), nil
	}
	return "", err
}

// markInvalid writes msg.invalid and removes what a valid token would have
// left, so the invalid branch never carries claims from an earlier step.
func markInvalid(msg engine.Msg, te *TokenError) string {
	delete(msg, "claims")
	delete(msg, "token_header")
	msg["invalid"] = map[string]any{"reason": string(te.Reason), "detail": te.Detail}
	return portInvalid
}

// markValid writes the verified claims, header and key of a token.
func markValid(msg engine.Msg, res *Result) string {
	delete(msg, "invalid")
	msg["claims"] = res.Claims
	msg["token_header"] = tokenHeaderMap(res.Header)
	key := map[string]any{"kid": res.Key.JWK.KeyID}
	if res.Key.State != "" {
		key["state"] = string(res.Key.State)
	}
	msg["key"] = key
	return portValid
}

func tokenHeaderMap(h TokenHeader) map[string]any {
	m := make(map[string]any, 4)
	m["alg"] = h.Alg
	if h.Kid != "" {
		m["kid"] = h.Kid
	}
	if h.Typ != "" {
		m["typ"] = h.Typ
	}
	if h.Cty != "" {
		m["cty"] = h.Cty
	}
	return m
}

// keyInfoMap is a KeyInfo as a message value (a map, so expressions,
// traces and http.respond all see its members).
func keyInfoMap(k KeyInfo) map[string]any {
	m := map[string]any{
		"kid": k.Kid, "kty": k.Kty, "alg": k.Alg, "use": string(k.Use),
		"state": string(k.State), "created": k.Created,
	}
	if k.Crv != "" {
		m["crv"] = k.Crv
	}
	if k.Size != 0 {
		m["size"] = k.Size
	}
	if !k.Activated.IsZero() {
		m["activated"] = k.Activated
	}
	if !k.RetireAt.IsZero() {
		m["retire_at"] = k.RetireAt
	}
	if k.Revoked {
		m["revoked"] = true
	}
	return m
}

// checkTarget checks a message field name a block writes to.
func checkTarget(s *engine.Setup, field, name string) error {
	if name == "" {
		return s.Errorf(field, "required: the message field to write, e.g. \"token\"")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return s.Errorf(field, "%q must be a plain field name (letters, digits, '_'; no dots)", name)
		}
	}
	switch name {
	case "req", "error", "invalid", "claims":
		return s.Errorf(field, "%q is written by other blocks; pick another name", name)
	}
	return nil
}

// checkKeysetField checks a keyset name given in a config field.
func checkKeysetField(s *engine.Setup, field, name string) error {
	if name == "" {
		return s.Errorf(field, "required: the name of a keyset")
	}
	if err := checkKeysetName(name); err != nil {
		return s.Errorf(field, "%v", err)
	}
	return nil
}
