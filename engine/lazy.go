package engine

// Lazy is a top-level value of a message that is built only when
// something needs it (http.in's msg.req: seven maps per request that a
// JWKS endpoint never reads). Only the values of the message a trigger
// fires, and values a block puts with Exec.PutLazy, may be Lazy, never
// values nested deeper.
//
// The engine builds it in place (msg[key] = Value()) before any block
// whose Spec.LazyMessage is false, before an expression runs on the VM
// (Exec.Env), and wherever it walks the message (snapshots, the size
// check, copies for fan-out and catch runs): blocks and traces see exactly
// the value Value builds. A block with Spec.LazyMessage reads the message
// only through Expr.Eval and Lookup, which may answer without building.
//
// A trigger's Lazy is used by one run on one goroutine, and only while
// that run lasts (it may hold the request being served). A Lazy a block
// puts with Exec.PutLazy may instead be one immutable value shared by
// every run (jose.jwks's msg.jwks): its Value then returns a new copy on
// every call, which the caller owns.
type Lazy interface {
	// Value builds the value on the first call and returns that same
	// value on every later one (or, for a shared Lazy, a new copy of
	// the same value each time). The engine stores what it gets in the
	// message when a block needs the built value.
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

// PutLazy sets msg[key] to v, a Lazy value, and tells the run that the
// message now holds one: blocks after this one see v built (as
// msg[key] = v.Value()) unless their Spec.LazyMessage is set, exactly as
// for a trigger's Lazy values. It lets a block hand on a value shared by
// every run (say, a cached document) without copying it for each run,
// while a block that changes the value still gets a copy of its own.
// msg must be the message the running step received; with a nil Exec (a
// block called outside a run) the value is built at once.
func (x *Exec) PutLazy(msg Msg, key string, v Lazy) {
	if x == nil {
		msg[key] = v.Value()
		return
	}
	msg[key] = v
	x.lazy = true
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
