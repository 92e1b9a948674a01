package core

import (
	"cmp"
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/flowd/flowd/engine"
)

// pemBlock matches PEM blocks, also cut ones, so a log line keeps the text
// around a key. Tokens and HTTP credentials are cut by the engine's rule
// (Exec.RedactText), the one traces use.
var pemBlock = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]+-----(?s:.*?)(-----END [A-Z0-9 ]+-----|$)`)

// minSecretLen is the shortest message secret scrub looks for: replacing
// every "ab" in a text would mangle it without protecting anything real.
const minSecretLen = 4

// scrub removes secrets from a text built from msg (a log line, a failure
// message): the values the engine redacts from msg (sensitive keys such as
// "authorization" or "password", token-shaped strings) wherever they occur
// in text, PEM blocks, then what the engine's shape rule finds (compact
// JWS/JWE, Bearer/DPoP/Basic credentials) and the values the run marked
// secret. red is x.Redact(msg); x nil means no run (engine.RedactText).
func scrub(x *engine.Exec, text string, msg engine.Msg, red any) string {
	if text == "" {
		return text
	}
	var secrets []string
	collectRedacted(msg, red, &secrets)
	// Longest first, so a secret containing another is removed whole.
	slices.SortFunc(secrets, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	for _, s := range secrets {
		text = strings.ReplaceAll(text, s, engine.Redacted)
	}
	text = pemBlock.ReplaceAllLiteralString(text, engine.Redacted)
	if x == nil {
		return engine.RedactText(text)
	}
	return x.RedactText(text)
}

// collectRedacted walks a value and its redacted copy side by side and adds
// to out every string of orig that the copy hides.
func collectRedacted(orig, red any, out *[]string) {
	if red == engine.Redacted {
		collectStrings(orig, out, 0)
		return
	}
	switch r := red.(type) {
	case map[string]any:
		switch o := orig.(type) {
		case map[string]any:
			for k, rv := range r {
				if ov, ok := o[k]; ok {
					collectRedacted(ov, rv, out)
				}
			}
		case map[string]string:
			for k, rv := range r {
				if ov, ok := o[k]; ok {
					collectRedacted(ov, rv, out)
				}
			}
		case map[string][]string:
			for k, rv := range r {
				if ov, ok := o[k]; ok {
					collectRedacted(ov, rv, out)
				}
			}
		}
	case []any:
		switch o := orig.(type) {
		case []any:
			for i := range min(len(o), len(r)) {
				collectRedacted(o[i], r[i], out)
			}
		case []string:
			for i := range min(len(o), len(r)) {
				collectRedacted(o[i], r[i], out)
			}
		}
	}
}

// collectStrings adds every string inside v (a redacted subtree, such as a
// JWK under "key") to out.
func collectStrings(v any, out *[]string, depth int) {
	if depth > 16 {
		return
	}
	switch t := v.(type) {
	case string:
		if len(t) >= minSecretLen {
			*out = append(*out, t)
		}
	case []byte:
		if len(t) >= minSecretLen {
			*out = append(*out, string(t))
		}
	case int, int64, float64, json.Number:
		// A numeric one-time code under "code" is a secret too; texts show
		// numbers as fmt does.
		if s := fmt.Sprint(t); len(s) >= minSecretLen {
			*out = append(*out, s)
		}
	case map[string]any:
		collectEach(maps.Values(t), out, depth)
	case []any:
		collectEach(slices.Values(t), out, depth)
	case map[string]string:
		collectEach(maps.Values(t), out, depth)
	case []string:
		collectEach(slices.Values(t), out, depth)
	case map[string][]string:
		collectEach(maps.Values(t), out, depth)
	}
}

// collectEach is collectStrings of every member of a map or list at depth.
func collectEach[V any](members iter.Seq[V], out *[]string, depth int) {
	for e := range members {
		collectStrings(e, out, depth+1)
	}
}
