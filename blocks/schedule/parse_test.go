package schedule

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestPreviewAcrossDST(t *testing.T) {
	// 2026: Europe/Paris springs forward on 29 March (02:00 CET -> 03:00
	// CEST) and falls back on 25 October (03:00 CEST -> 02:00 CET);
	// America/New_York springs forward on 8 March (02:00 -> 03:00).
	tests := []struct {
		name, spec, zone, from string
		n                      int
		want                   []string // local times, RFC 3339
	}{
		{"daily 03:00, spring", "0 3 * * *", "Europe/Paris", "2026-03-27T12:00:00Z", 4, []string{
			"2026-03-28T03:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T03:00:00+02:00", "2026-03-31T03:00:00+02:00"}},
		{"daily 03:00, autumn", "0 3 * * *", "Europe/Paris", "2026-10-23T12:00:00Z", 3, []string{
			"2026-10-24T03:00:00+02:00", "2026-10-25T03:00:00+01:00", "2026-10-26T03:00:00+01:00"}},
		// 02:30 does not exist on 29 March: it runs when the gap ends.
		{"daily 02:30, spring gap", "30 2 * * *", "Europe/Paris", "2026-03-27T12:00:00Z", 3, []string{
			"2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
		{"daily 02:00, spring gap", "0 2 * * *", "Europe/Paris", "2026-03-28T12:00:00Z", 2, []string{
			"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"}},
		// 02:30 happens twice on 25 October: it runs once, the first time.
		{"daily 02:30, autumn repeat", "30 2 * * *", "Europe/Paris", "2026-10-23T12:00:00Z", 3, []string{
			"2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
		{"daily 02:30, from inside the repeat", "30 2 * * *", "Europe/Paris", "2026-10-25T01:15:00Z", 1, []string{
			"2026-10-26T02:30:00+01:00"}},
		{"daily 02:15, New York gap", "15 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 2, []string{
			"2026-03-08T03:00:00-04:00", "2026-03-09T02:15:00-04:00"}},
		// Wildcard specs follow elapsed time: every hour still fires once.
		{"hourly, autumn repeat", "30 * * * *", "Europe/Paris", "2026-10-24T23:00:00Z", 4, []string{
			"2026-10-25T01:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00", "2026-10-25T03:30:00+01:00"}},
		{"half-hourly, spring gap", "*/30 * * * *", "Europe/Paris", "2026-03-29T00:10:00Z", 3, []string{
			"2026-03-29T01:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00"}},
		{"seconds in UTC", "*/20 * * * * *", "UTC", "2026-03-10T12:00:00Z", 3, []string{
			"2026-03-10T12:00:20Z", "2026-03-10T12:00:40Z", "2026-03-10T12:01:00Z"}},
		{"default count", "@daily", "", "2026-03-10T12:00:00Z", 0, []string{
			"2026-03-11T00:00:00Z", "2026-03-12T00:00:00Z", "2026-03-13T00:00:00Z", "2026-03-14T00:00:00Z", "2026-03-15T00:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := mustTime(t, tt.from)
			s := NewScheduler(Options{Now: func() time.Time { return from }})
			got, err := s.Preview(tt.spec, tt.zone, tt.n)
			if err != nil {
				t.Fatalf("Preview: %v", err)
			}
			var local []string
			for _, g := range got {
				local = append(local, g.Format(time.RFC3339))
				if zone := cmpZone(tt.zone); g.Location().String() != zone {
					t.Errorf("time %s is in %s, want %s", g, g.Location(), zone)
				}
			}
			if !reflect.DeepEqual(local, tt.want) {
				t.Errorf("Preview = %v\nwant      %v", local, tt.want)
			}
		})
	}
}

func cmpZone(z string) string {
	if z == "" {
		return "UTC"
	}
	return z
}

func TestPreviewErrors(t *testing.T) {
	tests := []struct {
		name, spec, zone string
		wantField        string
		wantErr          error
		wantMsg          string
	}{
		{"bad minute", "61 * * * *", "UTC", "spec", ErrBadSpec,
			`spec: minute field "61": end of range (61) above maximum (59)`},
		{"half typed", "0 3 *", "UTC", "spec", ErrBadSpec,
			"spec: has 3 fields; want 5 (minute hour day-of-month month day-of-week), 6 with seconds first, or a descriptor such as \"@daily\""},
		{"empty", "", "UTC", "spec", ErrBadSpec,
			`spec: is empty; write a cron spec such as "0 3 * * *" or a descriptor such as "@daily"`},
		{"short every", "@every 100ms", "UTC", "spec", ErrBadSpec, "spec: @every must be at least 1s, not 100ms"},
		{"unknown zone", "0 3 * * *", "Mars/Olympus", "timezone", ErrBadTimezone,
			`timezone: unknown time zone "Mars/Olympus"; use an IANA name such as "Europe/Paris"`},
		{"both: zone first", "nonsense", "Mars/Olympus", "timezone", ErrBadTimezone,
			`timezone: unknown time zone "Mars/Olympus"; use an IANA name such as "Europe/Paris"`},
	}
	s := NewScheduler(Options{Now: func() time.Time { return fixedNow }})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Preview(tt.spec, tt.zone, 5)
			var se *SpecError
			if got != nil || !errors.As(err, &se) || !errors.Is(err, tt.wantErr) {
				t.Fatalf("Preview = %v, %v; want a *SpecError wrapping %v", got, err, tt.wantErr)
			}
			if se.Field != tt.wantField || err.Error() != tt.wantMsg {
				t.Errorf("error field %q %q\nwant field %q %q", se.Field, err, tt.wantField, tt.wantMsg)
			}
		})
	}
}

func TestPreviewCapsCount(t *testing.T) {
	s := NewScheduler(Options{Now: func() time.Time { return fixedNow }})
	tests := []struct {
		name string
		n    int
		want int
	}{
		{"zero means five", 0, 5},
		{"negative means five", -3, 5},
		{"one", 1, 1},
		{"capped", 1000, maxNext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Preview("* * * * * *", "UTC", tt.n)
			if err != nil || len(got) != tt.want {
				t.Errorf("Preview(n=%d) = %d times, %v; want %d", tt.n, len(got), err, tt.want)
			}
		})
	}
}

func TestTickAt(t *testing.T) {
	tests := []struct {
		name, spec, zone, at, want string
	}{
		{"on time", "0 3 * * *", "UTC", "2026-03-10T03:00:00.2Z", "2026-03-10T03:00:00Z"},
		{"late", "0 3 * * *", "UTC", "2026-03-10T03:00:30Z", "2026-03-10T03:00:00Z"},
		{"every second", "* * * * * *", "UTC", "2026-03-10T12:00:05.7Z", "2026-03-10T12:00:05Z"},
		{"every", "@every 10s", "UTC", "2026-03-10T12:00:05.7Z", "2026-03-10T12:00:05Z"},
		{"no tick nearby", "0 3 * * *", "UTC", "2026-03-10T05:00:00.5Z", "2026-03-10T05:00:00Z"},
		{"end of a DST gap", "30 2 * * *", "Europe/Paris", "2026-03-29T01:00:00.1Z", "2026-03-29T01:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCompile(t, tt.spec, tt.zone)
			if got := tickAt(c.sched, mustTime(t, tt.at)); !got.Equal(mustTime(t, tt.want)) {
				t.Errorf("tickAt = %s, want %s", got.UTC().Format(time.RFC3339Nano), tt.want)
			}
		})
	}
}

func TestLatestTick(t *testing.T) {
	now := "2026-03-10T12:00:00Z"
	tests := []struct {
		name, spec, first, want string
	}{
		{"daily", "0 3 * * *", "2026-03-09T03:00:00Z", "2026-03-10T03:00:00Z"},
		{"daily, only one missed", "0 3 * * *", "2026-03-10T03:00:00Z", "2026-03-10T03:00:00Z"},
		{"every second for two days", "* * * * * *", "2026-03-08T12:00:01Z", "2026-03-10T12:00:00Z"},
		{"yearly for six years", "@yearly", "2021-01-01T00:00:00Z", "2026-01-01T00:00:00Z"},
		{"every 7m", "@every 7m", "2026-03-10T10:00:00Z", "2026-03-10T11:59:00Z"},
		{"first is now", "0 12 * * *", "2026-03-10T12:00:00Z", "2026-03-10T12:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCompile(t, tt.spec, "UTC")
			got := latestTick(c.sched, mustTime(t, tt.first), mustTime(t, now))
			if !got.Equal(mustTime(t, tt.want)) {
				t.Errorf("latestTick = %s, want %s", got.UTC().Format(time.RFC3339), tt.want)
			}
		})
	}
}

func mustCompile(t testing.TB, spec, zone string) *compiled {
	t.Helper()
	c, errs := compile(spec, zone, time.UTC, fixedNow)
	if errs != nil {
		t.Fatalf("compile(%q, %q): %v", spec, zone, errs[0])
	}
	return c
}

func TestFixedDailySpecsFireOncePerLocalDay(t *testing.T) {
	// Zones with DST at midnight (Santiago, Havana, Beirut), a 30-minute
	// shift (Lord Howe), and the southern hemisphere. Over two years, a
	// daily spec fires once on every local date, at increasing instants.
	zones := []string{"Europe/Paris", "America/New_York", "America/Santiago", "America/Havana",
		"Asia/Beirut", "Australia/Lord_Howe", "Pacific/Chatham", "Pacific/Auckland"}
	specs := []string{"0 0 * * *", "@daily", "30 0 * * *", "0 1 * * *", "45 1 * * *", "15 2 * * *", "30 2 * * *", "0 3 * * *"}
	from := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	for _, zone := range zones {
		for _, spec := range specs {
			t.Run(zone+" "+spec, func(t *testing.T) {
				c := mustCompile(t, spec, zone)
				seen := map[string]int{}
				prev := from
				for range 2 * 366 {
					next := c.sched.Next(prev)
					if !next.After(prev) {
						t.Fatalf("Next(%s) = %s, not after it", prev, next)
					}
					seen[next.In(c.loc).Format(time.DateOnly)]++
					prev = next
				}
				day := from.In(c.loc).AddDate(0, 0, 2)
				for ; day.Before(prev.In(c.loc).AddDate(0, 0, -1)); day = day.AddDate(0, 0, 1) {
					if n := seen[day.Format(time.DateOnly)]; n != 1 {
						t.Errorf("%s: fired %d times", day.Format(time.DateOnly), n)
					}
				}
			})
		}
	}
}
