package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/flowd/flowd/blocks/oauth"
)

// clients manages OAuth clients: add, list, remove.
func (c *cli) clients(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{errors.New("use: flowd clients add|list|remove|first-party")}
	}
	sub, args := args[0], args[1:]
	fs := c.flags("clients " + sub)
	var id, secret, scopes, audiences, name, redirects, logoutRedirects, grants, authMethod, jwksFile, jwksURI string
	var public, dpopBound, requirePAR, firstParty bool
	if sub == "add" {
		fs.BoolVar(&firstParty, "first-party", false, "a first-party application (your own): people are not asked to consent to it, except for offline_access")
		fs.StringVar(&id, "id", "", "client id")
		fs.StringVar(&secret, "secret", "", "client secret (at least 16 characters); omitted: one is generated and printed once")
		fs.StringVar(&scopes, "scopes", "", "allowed scopes, space separated")
		fs.StringVar(&audiences, "audiences", "", "allowed audiences (RFC 8707 resources), space separated")
		fs.StringVar(&name, "name", "", "display name (shown on the sign-in page)")
		fs.StringVar(&redirects, "redirect-uris", "", "redirect URIs for the authorization code flow, space separated (matched exactly)")
		fs.StringVar(&logoutRedirects, "post-logout-redirect-uris", "", "post-logout redirect URIs, space separated (matched exactly)")
		fs.BoolVar(&public, "public", false, "public client (a browser or mobile app): no secret, PKCE required")
		fs.StringVar(&authMethod, "auth-method", "", "token_endpoint_auth_method: client_secret_basic, client_secret_post, private_key_jwt or none "+
			"(default: either secret method; none with --public; private_key_jwt with --jwks-file or --jwks-uri)")
		fs.StringVar(&jwksFile, "jwks-file", "", "private_key_jwt: a file holding the client's public keys (a JWK Set)")
		fs.StringVar(&jwksURI, "jwks-uri", "", "private_key_jwt: the https URL of the client's JWK Set (fetched and cached)")
		fs.BoolVar(&requirePAR, "require-par", false, "the authorization endpoint takes this client's requests only from the PAR endpoint (RFC 9126)")
		fs.BoolVar(&dpopBound, "dpop-bound", false, "every token request must carry a DPoP proof (RFC 9449 dpop_bound_access_tokens)")
		fs.StringVar(&grants, "grant-types", "", "allowed grant types, space separated: client_credentials, authorization_code, refresh_token "+
			"(default: client_credentials; authorization_code refresh_token with --redirect-uris or --public)")
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	b, err := c.backend(ctx)
	if err != nil {
		return err
	}
	defer b.Close(context.Background())
	switch sub {
	case "add":
		if id == "" {
			return usageError{errors.New("--id is required")}
		}
		if err := validText("--id", id, "--name", name, "--secret", secret, "--scopes", scopes, "--audiences", audiences,
			"--redirect-uris", redirects, "--post-logout-redirect-uris", logoutRedirects, "--grant-types", grants,
			"--auth-method", authMethod, "--jwks-uri", jwksURI); err != nil {
			return err
		}
		var jwks []byte
		if jwksFile != "" {
			if jwks, err = readJWKSFile(jwksFile); err != nil {
				return err
			}
		}
		cl, generated, err := b.AddClient(ctx, oauth.Client{ID: id, Name: name, Scopes: strings.Fields(scopes),
			Audiences: strings.Fields(audiences), Public: public, RedirectURIs: strings.Fields(redirects),
			PostLogoutRedirectURIs: strings.Fields(logoutRedirects), GrantTypes: strings.Fields(grants),
			DPoPBoundAccessTokens: dpopBound, TokenEndpointAuthMethod: authMethod, JWKS: jwks, JWKSURI: jwksURI,
			RequirePAR: requirePAR, FirstParty: firstParty}, secret)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "added client %q (scopes: %s)\n", cl.ID, strings.Join(cl.Scopes, " "))
		if len(cl.GrantTypes) > 0 {
			kind := "confidential"
			if cl.Public {
				kind = "public"
			}
			if cl.FirstParty {
				kind = "first-party " + kind
			}
			fmt.Fprintf(c.stdout, "%s client, grant types: %s\n", kind, strings.Join(cl.GrantTypes, " "))
		}
		if cl.TokenEndpointAuthMethod == oauth.AuthPrivateKeyJWT {
			fmt.Fprintln(c.stdout, "authenticates with private_key_jwt (no secret)")
		}
		if secret == "" && generated != "" {
			fmt.Fprintf(c.stdout, "client secret (shown once, store it now): %s\n", generated)
		}
		return nil
	case "list":
		list, err := b.ListClients(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTYPE\tGRANTS\tSCOPES\tAUDIENCES\tREDIRECT URIS\tCREATED")
		for _, cl := range list {
			kind, grants := "confidential", cl.GrantTypes
			if cl.Public {
				kind = "public"
			}
			if cl.FirstParty {
				kind += ",first-party"
			}
			if len(grants) == 0 && !cl.Public {
				grants = []string{oauth.GrantClientCredentials}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cl.ID, kind, strings.Join(grants, " "), strings.Join(cl.Scopes, " "),
				strings.Join(cl.Audiences, " "), strings.Join(cl.RedirectURIs, " "), cl.Created.Format("2006-01-02 15:04"))
		}
		return tw.Flush()
	case "remove":
		if fs.NArg() != 1 {
			return usageError{errors.New("name one client id")}
		}
		if err := b.RemoveClient(ctx, fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "removed client %q\n", fs.Arg(0))
		return nil
	case "first-party":
		// flowd clients first-party ID yes|no
		if fs.NArg() != 2 || fs.Arg(1) != "yes" && fs.Arg(1) != "no" {
			return usageError{errors.New("use: flowd clients first-party CLIENT_ID yes|no")}
		}
		fb, ok := b.(firstPartyBackend)
		if !ok {
			return errors.New("this backend cannot change clients")
		}
		cl, err := fb.SetFirstParty(ctx, fs.Arg(0), fs.Arg(1) == "yes")
		if err != nil {
			return err
		}
		if cl.FirstParty {
			fmt.Fprintf(c.stdout, "client %q is first-party: people are not asked to consent to it (except for offline_access)\n", cl.ID)
		} else {
			fmt.Fprintf(c.stdout, "client %q is third-party: people are asked to consent to it\n", cl.ID)
		}
		return nil
	}
	return usageError{fmt.Errorf("unknown clients command %q (add, list, remove, first-party)", sub)}
}

func (l *localBackend) AddClient(ctx context.Context, cl oauth.Client, secret string) (oauth.Client, string, error) {
	return l.fd.Clients().Add(ctx, cl, secret)
}

func (l *localBackend) ListClients(ctx context.Context) ([]oauth.Client, error) {
	return l.fd.Clients().List(ctx)
}

func (l *localBackend) RemoveClient(ctx context.Context, id string) error {
	return l.fd.Clients().Remove(ctx, id)
}

func (r *remoteBackend) AddClient(ctx context.Context, cl oauth.Client, secret string) (oauth.Client, string, error) {
	body, _ := json.Marshal(map[string]any{"id": cl.ID, "name": cl.Name, "secret": secret, "scopes": cl.Scopes, "audiences": cl.Audiences,
		"public": cl.Public, "redirect_uris": cl.RedirectURIs, "post_logout_redirect_uris": cl.PostLogoutRedirectURIs,
		"grant_types": cl.GrantTypes, "dpop_bound_access_tokens": cl.DPoPBoundAccessTokens,
		"token_endpoint_auth_method": cl.TokenEndpointAuthMethod, "jwks": cl.JWKS, "jwks_uri": cl.JWKSURI,
		"require_pushed_authorization_requests": cl.RequirePAR, "first_party": cl.FirstParty})
	var out struct {
		Client oauth.Client `json:"client"`
		Secret string       `json:"secret"`
	}
	if _, err := r.do(ctx, "POST", "/clients", body, &out); err != nil {
		return oauth.Client{}, "", err
	}
	return out.Client, out.Secret, nil
}

func (r *remoteBackend) ListClients(ctx context.Context) ([]oauth.Client, error) {
	return doField[[]oauth.Client](ctx, r, "GET", "/clients", nil, "clients")
}

func (r *remoteBackend) RemoveClient(ctx context.Context, id string) error {
	_, err := r.do(ctx, "DELETE", "/clients/"+id, nil, nil)
	return err
}

// firstPartyBackend changes whether a client is first-party.
type firstPartyBackend interface {
	SetFirstParty(ctx context.Context, id string, firstParty bool) (oauth.Client, error)
}

func (l *localBackend) SetFirstParty(ctx context.Context, id string, firstParty bool) (oauth.Client, error) {
	return l.fd.Clients().SetFirstParty(ctx, id, firstParty)
}

func (r *remoteBackend) SetFirstParty(ctx context.Context, id string, firstParty bool) (oauth.Client, error) {
	body, _ := json.Marshal(map[string]any{"first_party": firstParty})
	return doField[oauth.Client](ctx, r, "PATCH", "/clients/"+url.PathEscape(id), body, "client")
}

// validText refuses flag values (name, value pairs) that are not valid
// UTF-8 before they reach the registry or the JSON of the admin API, whose
// encoder would replace the bad bytes with U+FFFD without a word.
func validText(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !utf8.ValidString(pairs[i+1]) {
			return usageError{fmt.Errorf("%s is not valid UTF-8", pairs[i])}
		}
	}
	return nil
}

// maxJWKSFile bounds --jwks-file (the registry refuses more than 64 KiB).
const maxJWKSFile = 64 << 10

// readJWKSFile reads a client's public JWK Set; the registry checks it.
func readJWKSFile(name string) (json.RawMessage, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("--jwks-file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxJWKSFile+1))
	if err != nil {
		return nil, fmt.Errorf("--jwks-file: %w", err)
	}
	if len(b) > maxJWKSFile {
		return nil, fmt.Errorf("--jwks-file: larger than %d bytes", maxJWKSFile)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("--jwks-file %s: not JSON", name)
	}
	return b, nil
}
