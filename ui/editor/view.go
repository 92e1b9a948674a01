package editor

import (
	"strconv"
	"strings"
)

func joinLines(list []string, raw string) string {
	if raw != "" {
		return raw
	}
	return strings.Join(list, "\n")
}

func placeholder(def, fallback string) string {
	if def != "" {
		return def
	}
	return fallback
}

func pairID(field string, i int) string {
	if i < 0 {
		return "pair-" + field + "-new"
	}
	return "pair-" + field + "-" + strconv.Itoa(i)
}
