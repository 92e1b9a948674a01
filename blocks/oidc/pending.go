package oidc

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/flowd/flowd/engine"
)

// A pending sign-in (the authorization request waiting for the person to
// type a password) lives in the browser, not in the store: an
// unauthenticated GET /oauth/authorize writes nothing, so nobody can fill
// the disk with them, and any node of a cluster can take the form post.
//
// Each is one cookie, <prefix>flowd_tx_<id>, whose value is the
// pendingSignIn sealed with the provider's cookie key (keys.go) and bound
// by additional data to its purpose and id: a cookie moved to another
// name, changed, or made by another provider does not open. The expiry is
// inside, so an old cookie a browser kept is refused all the same. The
// form carries the id and a CSRF token whose SHA-256 the cookie holds.
const (
	txCookiePrefix = "flowd_tx_"
	// maxPendingSignIns bounds the sign-in cookies of one browser: a new
	// sign-in beyond it pushes out the oldest (that tab's form then
	// answers "expired").
	maxPendingSignIns = 5
	// maxTxCookieValue is the longest sealed value flowd sets or opens.
	// Browsers keep at least 4096 bytes of name, value and attributes
	// per cookie (RFC 6265 §6.1); the name and attributes take about 100.
	maxTxCookieValue = 3900
	// maxCookiesLooked bounds the work on a request's sign-in cookies.
	maxCookiesLooked = 32
)

// pendingSignIn is what a sign-in cookie seals. The client's display name
// is left out (looked up again on the post), which keeps the cookie small.
type pendingSignIn struct {
	Authz   authzRequest `json:"a"`
	CSRF    string       `json:"c"` // SHA-256 of the form's CSRF token, hex
	Expires int64        `json:"e"`
}

// usedTxRecord marks a sign-in transaction as used (oidc_tx/<sha256(id)>),
// written by the sign-in that succeeded, so that a form posted again (or
// by two requests at once) signs in only once. Kept until the cookie
// would have expired.
type usedTxRecord struct {
	Purge int64 `json:"purge"`
}

// markUsed records a single-use key (oidc_tx/<key>, kept until purge) in
// one transaction. first is false when it was recorded already, by an
// earlier or a concurrent request: only the first goes on.
func markUsed(ctx context.Context, kv KV, key string, purge int64) (first bool, err error) {
	err = updateRec(ctx, kv, nsTx, key, func(cur *usedTxRecord) (*usedTxRecord, error) {
		first = cur == nil // set on every call: the function may run again
		if cur != nil {
			return cur, nil
		}
		return &usedTxRecord{Purge: purge}, nil
	})
	return first, err
}

// Errors of sealing and opening a sign-in cookie.
var (
	errPendingTooLarge = errors.New("the authorization request is too large to keep while the person signs in")
	errPendingRefused  = errors.New("sign-in cookie refused")
)

// pendingAD is the additional data of a sign-in cookie: its purpose and id.
func pendingAD(id string) []byte { return []byte("flowd oidc sign-in v1\x00" + id) }

func pendingPlain(tx pendingSignIn) ([]byte, error) {
	tx.Authz.ClientName = ""
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // a state full of '<' would take six bytes a character
	if err := enc.Encode(tx); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// pendingFits reports whether a checked authorization request fits in a
// sign-in cookie. oidc.authorize refuses a request that does not, before
// anything else is done with it.
func pendingFits(a authzRequest) bool {
	plain, err := pendingPlain(pendingSignIn{Authz: a, CSRF: strings.Repeat("0", 64), Expires: 1 << 40})
	if err != nil {
		return false
	}
	n := chacha20poly1305.NonceSizeX + len(plain) + chacha20poly1305.Overhead
	return (n+2)/3*4 <= maxTxCookieValue // base64 without padding is at most this
}

func sealPending(k *providerKeys, id string, tx pendingSignIn) (string, error) {
	return sealRequest(k, pendingAD(id), tx)
}

// openPending opens a sign-in cookie value. Its size is checked before
// anything is decoded; every failure is the one errPendingRefused.
func openPending(k *providerKeys, id, value string) (*pendingSignIn, error) {
	return openRequest(k, pendingAD(id), value)
}

// sealRequest seals a waiting request (a sign-in, or a consent question:
// block_consent.go) for a cookie, bound to what ad names; one that would
// not fit in a cookie is errPendingTooLarge.
func sealRequest(k *providerKeys, ad []byte, q pendingSignIn) (string, error) {
	plain, err := pendingPlain(q)
	if err != nil {
		return "", err
	}
	if k.sealedLen(len(plain)) > maxTxCookieValue {
		return "", errPendingTooLarge
	}
	return k.seal(plain, ad), nil
}

// openRequest opens what sealRequest sealed with the same ad. The size is
// checked before anything is decoded; every failure is the one
// errPendingRefused.
func openRequest(k *providerKeys, ad []byte, value string) (*pendingSignIn, error) {
	if value == "" || len(value) > maxTxCookieValue {
		return nil, errPendingRefused
	}
	plain, err := k.open(value, ad)
	if err != nil {
		return nil, errPendingRefused
	}
	var q pendingSignIn
	if err := json.Unmarshal(plain, &q); err != nil || q.Authz.ClientID == "" {
		return nil, errPendingRefused
	}
	return &q, nil
}

// requestCookies is one kind of cookie a waiting request is sealed in: a
// sign-in (signInCookies) or a consent question (block_consent.go).
type requestCookies struct {
	base string // the name's prefix, before the id
	seal func(k *providerKeys, id string, q pendingSignIn) (string, error)
	open func(k *providerKeys, id, value string) (*pendingSignIn, error)
}

// signInCookies are the sign-in cookies of oidc.login_page.
var signInCookies = requestCookies{base: txCookiePrefix, seal: sealPending, open: openPending}

// putRequest seals a in a new cookie of kind, valid for ttl, and deletes
// the cookies of that kind that crowded names, so that the browser holds
// at most maxPendingSignIns of them. It returns the cookie's id and the
// form's CSRF token (the cookie holds its hash).
func (p *provider) putRequest(ctx context.Context, msg engine.Msg, now time.Time, kind requestCookies, a authzRequest,
	ttl time.Duration) (id, csrf string, err error) {
	keys, err := p.keys(ctx)
	if err != nil {
		return "", "", err
	}
	id, csrf = newID(), newSecret()
	value, err := kind.seal(keys, id, pendingSignIn{Authz: a, CSRF: hashKey(csrf), Expires: now.Add(ttl).Unix()})
	if err != nil {
		return "", "", err
	}
	for _, old := range p.crowded(msg, kind.base, now, func(id, value string) (*pendingSignIn, error) {
		return kind.open(keys, id, value)
	}) {
		addCookie(msg, p.cookie(kind.base+old, "", -1))
	}
	addCookie(msg, p.cookie(kind.base+id, value, ttl))
	return id, csrf, nil
}

// crowded names the cookies of one kind (name prefix + id) to delete so
// that, with the one about to be added, the browser holds at most
// maxPendingSignIns of them: those that do not open (open says) or have
// expired, then the oldest.
func (p *provider) crowded(msg engine.Msg, base string, now time.Time, open func(id, value string) (*pendingSignIn, error)) []string {
	raw := header(msg, "cookie")
	if raw == "" {
		return nil
	}
	cookies, err := http.ParseCookie(raw)
	if err != nil {
		return nil
	}
	prefix := p.cookieName(base)
	type live struct {
		id      string
		expires int64
	}
	var drop []string
	var keep []live
	seen := map[string]bool{}
	for _, c := range cookies {
		id, ok := strings.CutPrefix(c.Name, prefix)
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		if !looksLikeID(id) {
			continue // not a name flowd sets: it can only delete what it can name
		}
		if len(seen) > maxCookiesLooked {
			drop = append(drop, id)
			continue
		}
		q, err := open(id, c.Value)
		if err != nil || now.Unix() >= q.Expires {
			drop = append(drop, id)
			continue
		}
		keep = append(keep, live{id, q.Expires})
	}
	if extra := len(keep) - (maxPendingSignIns - 1); extra > 0 {
		slices.SortFunc(keep, func(a, b live) int { return cmp.Compare(a.expires, b.expires) })
		for _, l := range keep[:extra] {
			drop = append(drop, l.id)
		}
	}
	return drop
}
