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
	in := copyCallMsg(msg)
	if size > x.d.rt.limits.MaxMessageBytes {
		size = -1 // walk: the message may be smaller than the bound says
	}
	tr, err := d.run(ctx, entry, in, false, size, true, frame)
	x.callSteps += frame.used
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
	unwrapCallLazies(frame.msg, msg)
	return frame.port, frame.msg, frame.size, nil
}

// copyCallMsg is the deep copy of a caller's message the sub-run starts
// with (CopyValue), except that a Lazy value stays unbuilt: the sub-run
// gets a callLazy standing for a copy of it, made only if the sub-run
// needs the built value. So an http.in request whose msg.req no block of
// either flow builds (core.call, oauth.client_auth, jose.dpop, ... read it
// through MsgPath) is never built nor copied.
func copyCallMsg(msg Msg) Msg {
	in := make(Msg, len(msg))
	for k, v := range msg {
		if l, ok := v.(Lazy); ok {
			in[k] = &callLazy{src: l}
			continue
		}
		in[k] = CopyValue(v)
	}
	return in
}

// callLazy is a sub-run's copy of a Lazy value of its caller's message:
// built, it is a deep copy of the caller's built value, so nothing the
// sub-run does to it reaches the caller's message (whose value is the
// one the caller would have built itself: Lazy values are built once).
// Lookup answers are copies too. It lives as long as the caller's run,
// on its goroutine, like the Lazy it copies.
type callLazy struct {
	src   Lazy
	built any
}

func (c *callLazy) Value() any {
	if c.built == nil {
		c.built = CopyValue(c.src.Value())
	}
	return c.built
}

func (c *callLazy) Lookup(path []string) (any, bool) {
	if c.built != nil {
		return nil, false
	}
	v, ok := c.src.Lookup(path)
	if !ok {
		return nil, false
	}
	return CopyValue(v), true
}

// unwrapCallLazies puts back, in a sub-run's answer out, the caller's own
// Lazy values (from msg, the message the call was made with) where the
// sub-run handed back its callLazy unbuilt under the same key: nothing in
// the sub-run holds a part of it then, so the caller's value is what the
// copy would have been, and the caller builds it at most once.
func unwrapCallLazies(out, msg Msg) {
	for k, v := range out {
		if c, ok := v.(*callLazy); ok && c.built == nil {
			// Pointers only: == on other values may panic (a struct
			// holding a map), and a pointer is one value's identity.
			if src, ok := msg[k].(Lazy); ok && reflect.TypeOf(src).Kind() == reflect.Pointer && src == c.src {
				out[k] = src
			}
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
