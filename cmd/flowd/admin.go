package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/ui"
)

// admin manages the admin UI: `flowd admin password` sets the login
// password (argon2id hash in the database). The password is read from
// --password-file or the first line of stdin, never from a flag, so it
// does not land in shell history or the process list.
func (c *cli) admin(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "password" {
		return usageError{errors.New("use: flowd admin password [--password-file FILE] (or the password on stdin)")}
	}
	fs := c.flags("admin password")
	var file string
	fs.StringVar(&file, "password-file", "", "read the new password from this file (first line)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	pw, err := readPassword(c.stdin, file)
	if err != nil {
		return err
	}
	if err := ui.CheckStrength(pw); err != nil {
		return err
	}
	st, _, err := c.openStore(false)
	switch {
	case err == nil:
		defer st.Close()
		if err := ui.NewPasswords(st, "").Set(ctx, pw); err != nil {
			return err
		}
	case errors.Is(err, store.ErrLocked):
		// A server holds the database: go through its admin API.
		b, berr := c.backend(ctx)
		if berr != nil {
			return berr
		}
		defer b.Close(context.Background())
		rb, ok := b.(*remoteBackend)
		if !ok {
			return err
		}
		body, _ := json.Marshal(map[string]string{"password": pw})
		if _, err := rb.do(ctx, "PUT", "/admin/password", body, nil); err != nil {
			return err
		}
	default:
		return err
	}
	fmt.Fprintln(c.stdout, "Admin password set. Log in at /admin/login.")
	if c.getenv("FLOWD_ADMIN_PASSWORD") != "" {
		fmt.Fprintln(c.stderr, "note: FLOWD_ADMIN_PASSWORD is set; while it is, it is the only password accepted.")
	}
	return nil
}

func readPassword(stdin io.Reader, file string) (string, error) {
	var r io.Reader = stdin
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		defer f.Close()
		r = f
	}
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usageError{errors.New("no password given: pipe it on stdin or use --password-file")}
	}
	return pw, nil
}
