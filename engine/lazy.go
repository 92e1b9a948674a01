package engine

// Lazy is a top-level value of a trigger's message that is built only when
// something needs it (http.in's msg.req: seven maps per request that a
// JWKS endpoint never reads). Only the values of the message a trigger
// fires may be Lazy, never values nested deeper.
//
// The engine builds it in place (msg[key] = Value()) before any block
// whose Spec.LazyMessage is false, before an expression runs on the VM
// (Exec.Env), and wherever it walks the message (snapshots, the size
// check, copies for fan-out and catch runs): blocks and traces see exactly
// the value Value builds. A block with Spec.LazyMessage reads the message
// only through Expr.Eval and Lookup, which may answer without building.
//
// A Lazy is used by one run on one goroutine, and only while that run
// lasts (it may hold the request being served).
type Lazy interface {
	// Value builds the value on the first call and returns that same
	// value on every later one.
	Value() any
	// Lookup returns the value at path below this one (path[0] is a key
	// of the built value) and true, without building it when it can;
	// false when only the built value can tell (the caller then walks
	// Value()). A missing key is (nil, true).
	Lookup(path []string) (any, bool)
}

// MsgPath returns msg.path[0].path[1]... through maps and Lazy values, or
// nil when a key is missing or a step is not a map: what an expression
// msg.a.b gives, without the VM, and without building a Lazy value that
// can answer the path itself.
func MsgPath(msg Msg, path ...string) any {
	v, _ := walkPath(msg, path)
	return v
}

// hasLazy reports whether a trigger's message holds a Lazy value.
func hasLazy(msg Msg) bool {
	for _, v := range msg {
		if _, ok := v.(Lazy); ok {
			return true
		}
	}
	return false
}

// resolveLazy builds the message's Lazy values in place.
func resolveLazy(msg Msg) {
	for k, v := range msg {
		if l, ok := v.(Lazy); ok {
			msg[k] = l.Value()
		}
	}
}
