package ui

import (
	"testing"
	"time"
)

func TestZoned(t *testing.T) {
	at := time.Date(2026, 7, 1, 1, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ name, tz, want string }{
		{"own zone", "Europe/Berlin", "Wed 2026-07-01 03:00 Europe/Berlin"},
		{"behind UTC, the day before", "America/New_York", "Tue 2026-06-30 21:00 America/New_York"},
		{"UTC says nothing new", "UTC", ""},
		{"empty", "", ""},
		{"unknown zone", "Mars/Olympus", ""},
		{"hostile", "../../etc/passwd", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := zoned(at, tc.tz); got != tc.want {
				t.Errorf("zoned(%s) = %q, want %q", tc.tz, got, tc.want)
			}
		})
	}
}
