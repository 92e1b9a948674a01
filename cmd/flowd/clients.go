package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/flowd/flowd/blocks/oauth"
)

// clients manages OAuth clients: add, list, remove.
func (c *cli) clients(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{errors.New("use: flowd clients add|list|remove")}
	}
	sub, args := args[0], args[1:]
	fs := c.flags("clients " + sub)
	var id, secret, scopes, audiences, name string
	if sub == "add" {
		fs.StringVar(&id, "id", "", "client id")
		fs.StringVar(&secret, "secret", "", "client secret (at least 16 characters); omitted: one is generated and printed once")
		fs.StringVar(&scopes, "scopes", "", "allowed scopes, space separated")
		fs.StringVar(&audiences, "audiences", "", "allowed audiences (RFC 8707 resources), space separated")
		fs.StringVar(&name, "name", "", "display name")
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
		cl, generated, err := b.AddClient(ctx, oauth.Client{ID: id, Name: name, Scopes: strings.Fields(scopes),
			Audiences: strings.Fields(audiences)}, secret)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "added client %q (scopes: %s)\n", cl.ID, strings.Join(cl.Scopes, " "))
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
		fmt.Fprintln(tw, "ID\tSCOPES\tAUDIENCES\tCREATED")
		for _, cl := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cl.ID, strings.Join(cl.Scopes, " "), strings.Join(cl.Audiences, " "),
				cl.Created.Format("2006-01-02 15:04"))
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
	}
	return usageError{fmt.Errorf("unknown clients command %q (add, list, remove)", sub)}
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
	body, _ := json.Marshal(map[string]any{"id": cl.ID, "name": cl.Name, "secret": secret, "scopes": cl.Scopes, "audiences": cl.Audiences})
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
	var out struct {
		Clients []oauth.Client `json:"clients"`
	}
	_, err := r.do(ctx, "GET", "/clients", nil, &out)
	return out.Clients, err
}

func (r *remoteBackend) RemoveClient(ctx context.Context, id string) error {
	_, err := r.do(ctx, "DELETE", "/clients/"+id, nil, nil)
	return err
}
