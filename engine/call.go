package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
)

// Sub-flows: a flow with one entry trigger (a block implementing Entry,
// core.input) can be called from another flow's run (Exec.Call, the
// core.call block). The call runs the sub-flow's deployed version at the
// time of the call, on the caller's goroutine, inside the caller's run:
//
//	caller run:  in --> call(flow "auth") --ok--> ...     one step budget,
//	                       |        ^                     one deadline, the
//	sub-flow run:        input --> ... --> output "ok"    caller's ctx
//
// Binding is late, like a function called by name: deploying a new version
// of a sub-flow changes what every caller runs from the next call on,
// without redeploying the callers (their ports are checked at run time
// and by the core.call_target lint check). The sub-flow leaves its own
// trace; a failure in it is the call node's error in the caller (its
// error port, or the caller's run fails and the caller's catch sees it).
//
// The sub-flow runs on the caller's context, so what a trigger put there
// travels with the call: a sub-flow called from an http.in run can answer
// that request (http.respond finds the exchange on the context, and it
// is answered once, whichever flow answers).

// MaxCallDepth bounds nested sub-flow calls (a flow calling itself).
const MaxCallDepth = 8

// Sentinel errors of sub-flow calls.
var (
	ErrCallDepth  = errors.New("sub-flow calls nested too deep")
	ErrNoEntry    = errors.New("flow has no single sub-flow entry")
	ErrNoReturn   = errors.New("sub-flow ended without reaching an output")
	ErrTwoReturns = errors.New("sub-flow reached a second output")
)

// Entry is implemented by the trigger block a sub-flow is called through
// (core.input).
type Entry interface {
	SubflowEntry()
}

// callFrame is one call in progress. A catch run gets a seed frame: only
// the failed run's marked secrets, no call.
type callFrame struct {
	depth    int
	budget   int // node executions the sub-flow may use
	used     int
	port     string
	msg      Msg
	size     int // an upper bound of msg's estimated size; -1: unknown
	returned bool
	// secrets: in, the values the caller marked secret; out, the sub-run's.
	secrets []string
	answer  int32 // out: the sub-run's Exec.Answered
	seed    bool
}

// Call runs the deployed flow flowID from its entry with a copy of msg and
// returns the output port it answered on and its message. It counts
// against this run's step budget and deadline (ctx).
func (x *Exec) Call(ctx context.Context, flowID string, msg Msg) (port string, out Msg, err error) {
	port, out, _, err = x.CallSized(ctx, flowID, msg, -1)
	return port, out, err
}

// CallSized is Call for a caller that knows an upper bound of msg's
// estimated size (MessageSize; -1: unknown): the sub-run then starts
// without walking the message to check it against
// Limits.MaxMessageBytes. outSize is an upper bound of out's size when
// the sub-run knew one at its core.output, -1 otherwise. An overestimate
// only costs a walk; an underestimate would let a message grow past the
// limit.
func (x *Exec) CallSized(ctx context.Context, flowID string, msg Msg, size int) (port string, out Msg, outSize int, err error) {
	port, out, outSize, err = x.call1(ctx, flowID, msg, size)
	if err != nil {
		return "", nil, -1, err
	}
	return port, out, outSize, nil
}

func (x *Exec) call1(ctx context.Context, flowID string, msg Msg, size int) (string, Msg, int, error) {
	if x.d == nil {
		return "", nil, -1, fmt.Errorf("call %q: %w", flowID, ErrNotDeployed)
	}
	depth := 1
	if x.call != nil {
		depth = x.call.depth + 1
	}
	if depth > MaxCallDepth {
		return "", nil, -1, fmt.Errorf("call %q: %w (%d)", flowID, ErrCallDepth, MaxCallDepth)
	}
	rt := x.d.rt
	rt.fmu.RLock()
	d := rt.flows[flowID]
	rt.fmu.RUnlock()
	if d == nil {
		return "", nil, -1, fmt.Errorf("call %q: %w", flowID, ErrNotDeployed)
	}
	var entry *nodeInst
	for _, n := range d.order {
		if _, ok := n.block.(Entry); ok && n.trigger != nil {
			if entry != nil {
				entry = nil
				break
			}
			entry = n
		}
	}
	if entry == nil {
		return "", nil, -1, fmt.Errorf("call %q: %w (it needs exactly one core.input)", flowID, ErrNoEntry)
	}
	frame := &callFrame{depth: depth, budget: max(x.stepsLeft, 0), secrets: slices.Clip(x.secrets)}
	in := copyCallMsg(msg, frame)
	if size > x.d.rt.limits.MaxMessageBytes {
		size = -1 // walk: the message may be smaller than the bound says
	}
	tr, err := d.run(ctx, entry, in, false, size, true, frame)
	x.callSteps += frame.used
	x.Answered(int(frame.answer))     // also when the sub-run failed after answering
	for _, v := range frame.secrets { // what the sub-flow marked secret stays so here
		x.MarkSecret(v)
	}
	if err != nil {
		if tr != nil {
			return "", nil, -1, fmt.Errorf("sub-flow %q (run %s): %w", flowID, tr.ID, err)
		}
		return "", nil, -1, fmt.Errorf("sub-flow %q: %w", flowID, err)
	}
	if !frame.returned {
		return "", nil, -1, fmt.Errorf("call %q (run %s): %w", flowID, tr.ID, ErrNoReturn)
	}
	unwrapCallLazies(frame.msg, frame)
	return frame.port, frame.msg, frame.size, nil
}

// copyCallMsg is the copy of a caller's message the sub-run starts with:
// its scalars as they are, and for each value CopyValue would copy (maps,
// lists, a Lazy value) a callLazy standing for that copy, made only when
// the sub-run needs the value built. Blocks with Spec.LazyMessage read
// through Expr.Eval and MsgPath, so a value the sub-flow only reads
// member by member, or not at all, is never copied (an http.in request's
// msg.req is not even built); any other block gets it built, a deep copy,
// as before: nothing the sub-run changes in place reaches the caller's
// message, which is the one it had if the call fails.
func copyCallMsg(msg Msg, frame *callFrame) Msg {
	in := make(Msg, len(msg))
	for k, v := range msg {
		if copied(v) {
			in[k] = &callLazy{src: v, frame: frame, key: k}
			continue
		}
		in[k] = v
	}
	return in
}

// copied reports whether CopyValue copies v (a container, or a Lazy).
func copied(v any) bool {
	switch v.(type) {
	case Lazy, map[string]any, []any, map[string]string, []string, []byte, map[string][]string, []map[string]any:
		return true
	}
	return false
}

// callLazy is a sub-run's copy of a top-level value of its caller's
// message (a container or a Lazy value): built, it is a deep copy of it
// (of the caller's built value, for a Lazy one, which is built once), so
// nothing the sub-run does to it reaches the caller. Lookup answers a
// path that ends on a scalar without copying (a scalar is immutable);
// a path ending on a container builds the copy, once. It lives as long
// as the caller's run, on its goroutine, like the values it copies.
type callLazy struct {
	src   any
	frame *callFrame // the call it was made for
	key   string     // the member it was made for
	built any
	done  bool
}

func (c *callLazy) Value() any {
	if !c.done {
		c.built, c.done = CopyValue(c.src), true
	}
	return c.built
}

func (c *callLazy) Lookup(path []string) (any, bool) {
	if c.done {
		return nil, false
	}
	var v any
	if l, ok := c.src.(Lazy); ok {
		if v, ok = l.Lookup(path); !ok {
			return nil, false
		}
	} else {
		// As walkPath: through map[string]any (a missing key is nil);
		// any other step is for the built value to answer.
		v = c.src
		for _, k := range path {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			v = m[k]
		}
	}
	if copied(v) {
		return nil, false
	}
	return v, true
}

// unwrapCallLazies puts back, in a sub-run's answer out, the caller's own
// values where the sub-run handed back, under the key it was made for,
// the callLazy of this call unbuilt: nothing in the sub-run holds a part
// of it then, so the caller's value is what the copy would have been
// (and a Lazy one is built at most once).
func unwrapCallLazies(out Msg, frame *callFrame) {
	for k, v := range out {
		if c, ok := v.(*callLazy); ok && c.frame == frame && c.key == k && !c.done {
			out[k] = c.src
		}
	}
}

// Return answers the call this run serves with msg on port (core.output).
// A run that no call started (a manual run of the sub-flow) has no one to
// answer: Return then does nothing, so a sub-flow can be run and tested
// alone.
func (x *Exec) Return(port string, msg Msg) error {
	f := x.call
	if f == nil {
		return nil
	}
	if f.returned {
		return fmt.Errorf("%w (%q after %q)", ErrTwoReturns, port, f.port)
	}
	f.port, f.msg, f.returned = port, msg, true
	f.size = -1
	if x.bound > 0 && sameMsg(msg, x.stepMsg) {
		f.size = x.bound - 1
	}
	return nil
}

// ReplaceMsg sets msg's content to out's, for blocks that hand back a
// message built elsewhere (core.call).
func ReplaceMsg(msg, out Msg) {
	clear(msg)
	for k, v := range out {
		msg[k] = v
	}
}

// sameMsg reports whether a and b are the same map (not equal contents).
func sameMsg(a, b Msg) bool {
	return a != nil && b != nil && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}
