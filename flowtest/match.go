package flowtest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

// lookup finds path ("a.b[0].c"; "" is v itself) in a decoded JSON value.
func lookup(v any, path string) (any, bool) {
	if path == "" {
		return v, true
	}
	for _, seg := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(seg, "[")
		if name != "" {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[name]; !ok {
				return nil, false
			}
		}
		for rest != "" {
			num, after, ok := strings.Cut(rest, "]")
			i, err := strconv.Atoi(num)
			if !ok || err != nil || i < 0 {
				return nil, false
			}
			l, ok := v.([]any)
			if !ok || i >= len(l) {
				return nil, false
			}
			v = l[i]
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return v, true
}

// normalize turns any Go value into what encoding/json decodes it to, so
// numbers, maps and lists compare alike whatever their Go types were.
func normalize(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return string(b)
	}
	return out
}

// match checks one value (found says whether the path exists) against an
// expected value or matcher. It returns "" on a match, else what it got.
func match(want any, got any, found bool, vars map[string]string) (ok bool, desc string) {
	if m, isMap := want.(map[string]any); isMap && len(m) == 1 {
		for k, arg := range m {
			switch k {
			case "$exists":
				b, _ := arg.(bool)
				return found == b, foundDesc(got, found)
			case "$regex":
				s, _ := arg.(string)
				re, err := regexp.Compile(s)
				if err != nil {
					return false, fmt.Sprintf("bad $regex %q: %v", s, err)
				}
				str, isStr := got.(string)
				return found && isStr && re.MatchString(str), foundDesc(got, found)
			case "$contains":
				s, _ := arg.(string)
				str, isStr := got.(string)
				return found && isStr && strings.Contains(str, s), foundDesc(got, found)
			case "$not":
				ok, desc := match(arg, got, found, vars)
				return !ok, desc
			case "$var":
				name, _ := arg.(string)
				val, ok := vars[name]
				if !ok {
					return false, fmt.Sprintf("no saved variable %q", name)
				}
				str, isStr := got.(string)
				return found && isStr && str == val, foundDesc(got, found)
			}
		}
	}
	if !found {
		return false, "nothing there"
	}
	return reflect.DeepEqual(normalize(want), normalize(got)), foundDesc(got, found)
}

func foundDesc(v any, found bool) string {
	if !found {
		return "nothing there"
	}
	return short(v)
}

// short renders a value for a failure message, clipped.
func short(v any) string {
	b, err := json.Marshal(v)
	s := string(b)
	if err != nil {
		s = fmt.Sprintf("%v", v)
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

var varPattern = regexp.MustCompile(`\{\{([A-Za-z0-9_]+)\}\}`)

// expand replaces {{name}} with saved variables; an unknown name is an error.
func expand(s string, vars map[string]string) (string, error) {
	var missing string
	out := varPattern.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-2]
		v, ok := vars[name]
		if !ok && missing == "" {
			missing = name
		}
		return v
	})
	if missing != "" {
		return "", fmt.Errorf("no saved variable %q", missing)
	}
	return out, nil
}

// expandAny expands strings inside a decoded JSON value.
func expandAny(v any, vars map[string]string) (any, error) {
	switch x := v.(type) {
	case string:
		return expand(x, vars)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ee, err := expandAny(e, vars)
			if err != nil {
				return nil, err
			}
			out[k] = ee
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			ee, err := expandAny(e, vars)
			if err != nil {
				return nil, err
			}
			out[i] = ee
		}
		return out, nil
	}
	return v, nil
}
