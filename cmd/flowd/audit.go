package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/flowd/flowd/audit"
)

// auditCmd lists the audit log, newest first: from the data folder when
// no server holds it, else through the server's admin API.
//
//	flowd audit [--type key.revoked] [--subject main/] [--since 2026-12-01T00:00:00Z] [--until ...] [--limit 100] [--before <id>] [--json]
func (c *cli) auditCmd(ctx context.Context, args []string) error {
	fs := c.flags("audit")
	var q audit.Query
	var since, until string
	var asJSON bool
	fs.StringVar(&q.Type, "type", "", "only events of this type (key.generated, key.revoked, flow.deployed, admin.sign_in_failed, ...)")
	fs.StringVar(&q.Subject, "subject", "", "only this subject; ending in / a prefix (main/ is every key of keyset main)")
	fs.StringVar(&since, "since", "", "only events at or after this RFC 3339 time")
	fs.StringVar(&until, "until", "", "only events at or before this RFC 3339 time")
	fs.StringVar(&q.Before, "before", "", "only events older than this event id (the next page)")
	fs.IntVar(&q.Limit, "limit", 100, "at most this many events (1 to 1000)")
	fs.BoolVar(&asJSON, "json", false, "print JSON: {\"events\": [...], \"next\": id}")
	if err := parse(fs, args); err != nil {
		return err
	}
	for _, t := range []struct {
		flag, v string
		dst     *time.Time
	}{{"--since", since, &q.Since}, {"--until", until, &q.Until}} {
		if t.v == "" {
			continue
		}
		tm, err := time.Parse(time.RFC3339, t.v)
		if err != nil {
			return usageError{fmt.Errorf("%s %q: want an RFC 3339 time like 2026-12-03T10:00:00Z", t.flag, t.v)}
		}
		*t.dst = tm
	}
	b, err := c.backend(ctx)
	if err != nil {
		return err
	}
	defer b.Close(context.Background())
	var events []audit.Event
	var next string
	switch b := b.(type) {
	case *localBackend:
		events, next, err = b.fd.Audit().List(ctx, q)
		if errors.Is(err, audit.ErrBadQuery) {
			return usageError{err}
		}
	case *remoteBackend:
		events, next, err = b.audit(ctx, q)
	default:
		err = fmt.Errorf("no audit log through %T", b)
	}
	if err != nil {
		return err
	}
	if asJSON {
		if events == nil {
			events = []audit.Event{}
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"events": events, "next": next})
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTYPE\tSUBJECT\tACTOR\tWHY")
	for _, e := range events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339), e.Type, e.Subject, e.Actor, e.Why)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(c.stdout, "more: flowd audit --before %s\n", next)
	}
	return nil
}

func (r *remoteBackend) audit(ctx context.Context, q audit.Query) ([]audit.Event, string, error) {
	v := url.Values{}
	for k, s := range map[string]string{"type": q.Type, "subject": q.Subject, "before": q.Before} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out struct {
		Events []audit.Event `json:"events"`
		Next   string        `json:"next"`
	}
	if _, err := r.do(ctx, "GET", "/audit?"+v.Encode(), nil, &out); err != nil {
		return nil, "", err
	}
	return out.Events, out.Next, nil
}
