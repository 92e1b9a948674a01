package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/flowd/flowd/blocks/oidc"
)

// users manages the people who sign in through the OpenID flows: add,
// list, remove, sign out everywhere, set a password (which signs them out
// everywhere too).
func (c *cli) users(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{errors.New("use: flowd users add|list|remove|signout|set-password|consents|withdraw-consent")}
	}
	sub, args := args[0], args[1:]
	fs := c.flags("users " + sub)
	var username, password, email, name string
	var verified, fromStdin bool
	withPassword := sub == "add" || sub == "set-password"
	if withPassword {
		fs.StringVar(&password, "password", "", "password, at least 8 characters (prefer --password-stdin: a flag shows in ps and shell history)")
		fs.BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of stdin")
	}
	if sub == "add" {
		fs.StringVar(&username, "username", "", "username (stored lower case)")
		fs.StringVar(&email, "email", "", "email address (the email claim)")
		fs.BoolVar(&verified, "email-verified", false, "the email address is verified (email_verified claim)")
		fs.StringVar(&name, "name", "", "full name (the name claim)")
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if sub == "add" && username == "" {
		return usageError{errors.New("--username is required")}
	}
	if sub == "set-password" && fs.NArg() != 1 {
		return usageError{errors.New("use: flowd users set-password USERNAME --password-stdin (or --password)")}
	}
	if withPassword {
		if fromStdin == (password != "") {
			return usageError{errors.New("give exactly one of --password and --password-stdin")}
		}
		if fromStdin {
			line, err := bufio.NewReader(c.stdin).ReadString('\n')
			if err != nil && line == "" {
				return fmt.Errorf("read the password from stdin: %w", err)
			}
			password = strings.TrimRight(line, "\r\n")
		}
	}
	b, err := c.backend(ctx)
	if err != nil {
		return err
	}
	defer b.Close(context.Background())
	switch sub {
	case "add":
		if err := validText("--username", username, "--name", name, "--email", email, "the password", password); err != nil {
			return err
		}
		u, err := b.AddUser(ctx, oidc.User{Username: username, Email: email, EmailVerified: verified, Name: name}, password)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "added user %q (sub %s)\n", u.Username, u.Sub)
		return nil
	case "list":
		list, err := b.ListUsers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tSUB\tNAME\tEMAIL\tVERIFIED\tCREATED")
		for _, u := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\n", u.Username, u.Sub, u.Name, u.Email, u.EmailVerified,
				u.Created.Format("2006-01-02 15:04"))
		}
		return tw.Flush()
	case "remove", "signout":
		if fs.NArg() != 1 {
			return usageError{errors.New("name one username")}
		}
		op, done := b.RemoveUser, "removed user %q, signed out everywhere first: %d session(s) ended, their grants revoked\n"
		if sub == "signout" {
			op, done = b.SignOutUser, "signed %q out everywhere: %d session(s) ended, their grants revoked (offline_access grants stay)\n"
		}
		res, err := op(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, done, oidc.NormalizeUsername(fs.Arg(0)), res.Sessions)
		return nil
	case "set-password":
		if err := validText("the password", password); err != nil {
			return err
		}
		res, err := b.SetUserPassword(ctx, fs.Arg(0), password)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "set a new password for %q and signed them out everywhere: %d session(s) ended, their grants revoked (offline_access grants stay)\n",
			oidc.NormalizeUsername(fs.Arg(0)), res.Sessions)
		return nil
	case "consents", "withdraw-consent":
		cb, ok := b.(consentBackend)
		if !ok {
			return errors.New("this backend cannot manage consents")
		}
		if sub == "consents" {
			if fs.NArg() != 1 {
				return usageError{errors.New("use: flowd users consents USERNAME")}
			}
			list, err := cb.Consents(ctx, fs.Arg(0))
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CLIENT\tSCOPES\tGIVEN\tEXPIRES\tGRANTS")
			for _, cs := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", cs.ClientID, strings.Join(cs.Scopes, " "),
					cs.Given.Format("2006-01-02 15:04"), cs.Expires.Format("2006-01-02 15:04"), cs.Grants)
			}
			return tw.Flush()
		}
		if fs.NArg() != 2 {
			return usageError{errors.New("use: flowd users withdraw-consent USERNAME CLIENT_ID")}
		}
		n, err := cb.WithdrawConsent(ctx, fs.Arg(0), fs.Arg(1))
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "withdrew %s's consent for client %q: %d grants ended\n", oidc.NormalizeUsername(fs.Arg(0)), fs.Arg(1), n)
		return nil
	}
	return usageError{fmt.Errorf("unknown users command %q (add, list, remove, signout, set-password, consents, withdraw-consent)", sub)}
}

func (l *localBackend) AddUser(ctx context.Context, u oidc.User, password string) (oidc.User, error) {
	return l.fd.Users().Add(ctx, u, password)
}

func (l *localBackend) ListUsers(ctx context.Context) ([]oidc.User, error) {
	return l.fd.Users().List(ctx)
}

func (l *localBackend) RemoveUser(ctx context.Context, username string) (oidc.SignOutResult, error) {
	return l.fd.Users().RemoveSignedOut(ctx, username)
}

func (r *remoteBackend) AddUser(ctx context.Context, u oidc.User, password string) (oidc.User, error) {
	body, _ := json.Marshal(map[string]any{"username": u.Username, "password": password, "email": u.Email,
		"email_verified": u.EmailVerified, "name": u.Name})
	return doField[oidc.User](ctx, r, "POST", "/users", body, "user")
}

func (r *remoteBackend) ListUsers(ctx context.Context) ([]oidc.User, error) {
	return doField[[]oidc.User](ctx, r, "GET", "/users", nil, "users")
}

func (r *remoteBackend) RemoveUser(ctx context.Context, username string) (oidc.SignOutResult, error) {
	var out oidc.SignOutResult
	_, err := r.do(ctx, "DELETE", userPath(username), nil, &out)
	return out, err
}

func (l *localBackend) SignOutUser(ctx context.Context, username string) (oidc.SignOutResult, error) {
	return l.fd.Users().SignOut(ctx, username)
}

func (r *remoteBackend) SignOutUser(ctx context.Context, username string) (oidc.SignOutResult, error) {
	var out oidc.SignOutResult
	_, err := r.do(ctx, "POST", userPath(username)+"/signout", nil, &out)
	return out, err
}

func (l *localBackend) SetUserPassword(ctx context.Context, username, password string) (oidc.SignOutResult, error) {
	return l.fd.Users().SetPasswordSignedOut(ctx, username, password)
}

func (r *remoteBackend) SetUserPassword(ctx context.Context, username, password string) (oidc.SignOutResult, error) {
	body, _ := json.Marshal(map[string]string{"password": password})
	var out oidc.SignOutResult
	_, err := r.do(ctx, "PUT", userPath(username)+"/password", body, &out)
	return out, err
}

// userPath is the admin API path of a person's record.
func userPath(username string) string {
	return "/users/" + url.PathEscape(oidc.NormalizeUsername(username))
}

// consentBackend lists and withdraws people's consents.
type consentBackend interface {
	Consents(ctx context.Context, username string) ([]oidc.Consent, error)
	WithdrawConsent(ctx context.Context, username, clientID string) (int, error)
}

func (l *localBackend) Consents(ctx context.Context, username string) ([]oidc.Consent, error) {
	return l.fd.Users().Consents(ctx, username)
}

func (l *localBackend) WithdrawConsent(ctx context.Context, username, clientID string) (int, error) {
	return l.fd.Users().WithdrawConsent(ctx, username, clientID)
}

func (r *remoteBackend) Consents(ctx context.Context, username string) ([]oidc.Consent, error) {
	return doField[[]oidc.Consent](ctx, r, "GET", userPath(username)+"/consents", nil, "consents")
}

func (r *remoteBackend) WithdrawConsent(ctx context.Context, username, clientID string) (int, error) {
	return doField[int](ctx, r, "DELETE", userPath(username)+"/consents/"+url.PathEscape(clientID), nil, "grants_ended")
}
