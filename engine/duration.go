package engine

import (
	"strings"
	"time"
)

// FormatDuration writes a duration as people write it in a flow: "48h",
// "1h30m", "90s" -> "1m30s", not time.Duration's "48h0m0s". The result
// parses back to d with time.ParseDuration, so the editor, the admin pages
// and messages can show it and a person can paste it into a field.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
