package oauth

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Grant types a client may be allowed.
const (
	GrantClientCredentials = "client_credentials"
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
)

var knownGrants = []string{GrantClientCredentials, GrantAuthorizationCode, GrantRefreshToken}

// privateScheme is an RFC 8252 §7.1 private-use URI scheme: a reversed
// domain name, so it always holds a dot (com.example.app:/callback).
var privateScheme = regexp.MustCompile(`^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+$`)

// checkBrowserFields checks and normalizes what the authorization code
// flow needs: redirect URIs, post-logout redirect URIs and grant types.
//
// A client registered with redirect URIs but no grant types gets
// authorization_code and refresh_token; a public client always needs
// them, since it cannot use client_credentials.
func checkBrowserFields(cl *Client) error {
	for _, list := range []struct {
		name string
		uris []string
	}{{"redirect URI", cl.RedirectURIs}, {"post-logout redirect URI", cl.PostLogoutRedirectURIs}} {
		for _, u := range list.uris {
			if err := CheckRedirectURI(u); err != nil {
				return fmt.Errorf("%w: %s %q: %v", ErrBadInput, list.name, truncate(u, 200), err)
			}
		}
	}
	cl.RedirectURIs = dedupe(cl.RedirectURIs)
	cl.PostLogoutRedirectURIs = dedupe(cl.PostLogoutRedirectURIs)
	for _, g := range cl.GrantTypes {
		if !slices.Contains(knownGrants, g) {
			return fmt.Errorf("%w: grant type %q is not one of %s", ErrBadInput, truncate(g, 64), strings.Join(knownGrants, ", "))
		}
	}
	cl.GrantTypes = dedupe(cl.GrantTypes)
	if len(cl.GrantTypes) == 0 && (cl.Public || len(cl.RedirectURIs) > 0) {
		cl.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
	}
	if cl.Public && slices.Contains(cl.GrantTypes, GrantClientCredentials) {
		return fmt.Errorf("%w: a public client cannot use client_credentials (it has no secret)", ErrBadInput)
	}
	if slices.Contains(cl.GrantTypes, GrantAuthorizationCode) && len(cl.RedirectURIs) == 0 {
		return fmt.Errorf("%w: the authorization_code grant needs at least one redirect URI", ErrBadInput)
	}
	if slices.Contains(cl.GrantTypes, GrantRefreshToken) && !slices.Contains(cl.GrantTypes, GrantAuthorizationCode) {
		return fmt.Errorf("%w: refresh_token is only issued with authorization_code", ErrBadInput)
	}
	return nil
}

// CheckRedirectURI checks a redirect URI at registration. Requests are
// compared with registered URIs by exact string match (see
// Client.AllowsRedirectURI for the one exception, the port of a loopback
// IP literal), so what is checked here is what a browser will be sent
// to: an absolute https URL; http only
// to a loopback host (RFC 8252 §7.3, apps on the same machine); or an RFC
// 8252 private-use scheme (com.example.app:/cb). Never a fragment, user
// info, or a scheme like javascript: or data:.
func CheckRedirectURI(raw string) error {
	if raw == "" || len(raw) > 2000 {
		return fmt.Errorf("must be 1-2000 characters")
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return fmt.Errorf("must not contain spaces, control characters or backslashes")
		}
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("must be an absolute URI")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("must not have a fragment")
	}
	if u.User != nil {
		return fmt.Errorf("must not carry user info")
	}
	switch scheme := u.Scheme; {
	case scheme == "https":
		if u.Host == "" {
			return fmt.Errorf("needs a host")
		}
	case scheme == "http":
		if !isLoopback(u.Hostname()) {
			return fmt.Errorf("http is only allowed to a loopback host (127.0.0.1, [::1], localhost); use https")
		}
	case privateScheme.MatchString(scheme):
		// A native app's private-use scheme.
	default:
		return fmt.Errorf("scheme %q is not allowed (https, http to loopback, or a private-use scheme like com.example.app)", truncate(scheme, 32))
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// AllowsRedirectURI reports whether an authorization request's
// redirect_uri is one the client registered: character for character, or
// (RFC 8252 §7.3) an http URI to the loopback IP literal 127.0.0.1 or
// [::1] that differs from a registered one in its port alone, since a
// native app listens on whatever port the system gives it.
// localhost is not such a literal (RFC 8252 §8.3: it may resolve
// elsewhere), so it is matched exactly like any other host.
func (c *Client) AllowsRedirectURI(requested string) bool {
	if slices.Contains(c.RedirectURIs, requested) {
		return true
	}
	host, _, rest, ok := splitLoopback(requested, true)
	if !ok {
		return false
	}
	for _, reg := range c.RedirectURIs {
		h, _, r, ok := splitLoopback(reg, false)
		if ok && h == host && r == rest {
			return true
		}
	}
	return false
}

// splitLoopback splits an http URI whose host is the IP literal 127.0.0.1
// or [::1] into that host, its port ("" when absent) and the rest (path,
// query and anything after them, byte for byte). Any other URI, and any
// authority with more in it than host and port (user info, a longer
// name, another spelling of the address), is not split: ok is false.
//
// The comparison is on the raw text, not on a parsed and re-encoded URL,
// so that what is compared is exactly what the browser will be sent to.
// A requested port must be canonical (1-65535, no sign, no leading zero);
// a registered one may be anything registration let through.
func splitLoopback(uri string, strictPort bool) (host, port, rest string, ok bool) {
	after, found := strings.CutPrefix(uri, "http://")
	if !found {
		return "", "", "", false
	}
	end := strings.IndexAny(after, "/?#")
	if end < 0 {
		end = len(after)
	}
	authority, rest := after[:end], after[end:]
	for _, h := range []string{"127.0.0.1", "[::1]"} {
		p, found := strings.CutPrefix(authority, h)
		if !found {
			continue
		}
		switch {
		case p == "":
			return h, "", rest, true
		case p[0] != ':' || !allDigits(p[1:]):
			return "", "", "", false
		case strictPort && !canonicalPort(p[1:]):
			return "", "", "", false
		}
		return h, p[1:], rest, true
	}
	return "", "", "", false
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// canonicalPort is a TCP port a listener can have, written the one way
// every parser reads the same: 1-65535 in decimal, no leading zero.
func canonicalPort(s string) bool {
	if !allDigits(s) || len(s) > 5 || s[0] == '0' {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n <= 65535
}
