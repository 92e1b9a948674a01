package editor

import (
	"slices"
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

func problemsTitle(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return strconv.Itoa(n) + " problems"
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }

func pairMode(p Pair, typed bool) string {
	if typed && p.Text {
		return "text"
	}
	return "expr"
}
