package engine

import (
	"testing"
	"time"
)

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want string
	}{
		{"zero", 0, "0s"},
		{"whole hours", 48 * time.Hour, "48h"},
		{"hours and minutes", 90 * time.Minute, "1h30m"},
		{"hours and seconds", time.Hour + 5*time.Second, "1h0m5s"},
		{"whole minutes", 15 * time.Minute, "15m"},
		{"minutes and seconds", 90 * time.Second, "1m30s"},
		{"seconds", 30 * time.Second, "30s"},
		{"sub-second", 1500 * time.Millisecond, "1.5s"},
		{"milliseconds", 250 * time.Millisecond, "250ms"},
		{"negative hours", -2 * time.Hour, "-2h"},
		{"ten minutes exactly is not one minute", 10 * time.Minute, "10m"},
		{"ten hours", 10 * time.Hour, "10h"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := FormatDuration(tc.d)
			if got != tc.want {
				t.Errorf("FormatDuration(%v) = %q, want %q", tc.d, got, tc.want)
			}
			if back, err := time.ParseDuration(got); err != nil || back != tc.d {
				t.Errorf("%q parses back to %v, %v; want %v", got, back, err, tc.d)
			}
		})
	}
}
