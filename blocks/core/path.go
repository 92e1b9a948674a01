package core

import (
	"fmt"
	"strings"
)

// path is a dotted message path split into keys: "user.id" -> [user id].
type path []string

func (p path) String() string { return strings.Join(p, ".") }

// parsePath splits a dotted path; empty keys ("a..b", ".a", "") are refused.
func parsePath(s string) (path, error) {
	if s == "" {
		return nil, fmt.Errorf("path is empty")
	}
	p := path(strings.Split(s, "."))
	for _, k := range p {
		if k == "" {
			return nil, fmt.Errorf("path %q has an empty key (two dots, or a dot at an end)", s)
		}
	}
	return p, nil
}

// hasPrefix reports whether q starts with every key of p.
func (p path) hasPrefix(q path) bool {
	if len(q) > len(p) {
		return false
	}
	for i := range q {
		if p[i] != q[i] {
			return false
		}
	}
	return true
}

// overlap returns a problem if one path equals or lies inside another: the
// result would then depend on the order of the entries, which an object of
// name -> expression does not have.
func overlap(a, b path) error {
	switch {
	case a.hasPrefix(b) && len(a) == len(b):
		return fmt.Errorf("%q is given twice", a.String())
	case a.hasPrefix(b):
		return fmt.Errorf("%q lies inside %q", a.String(), b.String())
	case b.hasPrefix(a):
		return fmt.Errorf("%q lies inside %q", b.String(), a.String())
	}
	return nil
}

// parent walks m to the object that holds p's last key. With create, missing
// (or nil) objects on the way are made, and string maps (HTTP headers) are
// widened to map[string]any in place; without create nothing in m changes
// and a nil result with a nil error means "absent, would be created". A key
// on the way that holds something other than an object is an error naming
// that prefix.
func parent(m map[string]any, p path, create bool) (map[string]any, error) {
	cur := m
	for i, k := range p[:len(p)-1] {
		var next map[string]any
		switch v := cur[k].(type) {
		case map[string]any:
			next = v
		case nil:
			if !create {
				return nil, nil
			}
			next = map[string]any{}
		case map[string]string:
			next = make(map[string]any, len(v)+1)
			for k2, e := range v {
				next[k2] = e
			}
		case map[string][]string:
			next = make(map[string]any, len(v)+1)
			for k2, e := range v {
				next[k2] = e
			}
		default:
			return nil, fmt.Errorf("msg.%s is %s, not an object", p[:i+1].String(), describe(v))
		}
		if create {
			cur[k] = next
		}
		cur = next
	}
	return cur, nil
}

// checkSet reports whether setPath(m, p, ...) would succeed, changing nothing.
func checkSet(m map[string]any, p path) error {
	_, err := parent(m, p, false)
	return err
}

// setPath puts v at p, creating objects on the way. On error m is unchanged.
func setPath(m map[string]any, p path, v any) error {
	if err := checkSet(m, p); err != nil {
		return err
	}
	obj, err := parent(m, p, true)
	if err != nil {
		return err
	}
	obj[p[len(p)-1]] = v
	return nil
}

// deletePath removes p; an absent path, or one through a non-object, is
// already deleted.
func deletePath(m map[string]any, p path) {
	cur := any(m)
	for _, k := range p[:len(p)-1] {
		o, ok := cur.(map[string]any)
		if !ok {
			return
		}
		cur = o[k]
	}
	last := p[len(p)-1]
	switch o := cur.(type) {
	case map[string]any:
		delete(o, last)
	case map[string]string:
		delete(o, last)
	case map[string][]string:
		delete(o, last)
	}
}

// describe names a value's JSON kind for error messages without showing the
// value itself, which may be a secret.
func describe(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "true/false"
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return "a number"
	case []any, []string:
		return "a list"
	}
	return fmt.Sprintf("a %T", v)
}
