package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Lint finds what is valid but likely wrong: warnings, never deploy
// errors. A check has an id ("flow.unreachable", "jose.overlap"), looks at
// a set of flows at once (so it can relate a token's lifetime in one flow
// to the rotation of its keyset in another), and reports each finding at a
// node with a message that says what to change. A node silences a check
// by listing its id in lint_ignore.
//
// The engine owns the generic checks (flow.*); block packages add their
// own with Registry.RegisterCheck, so the engine never imports them.

// Warning is one lint finding.
type Warning struct {
	Check   string `json:"check"`
	Flow    string `json:"flow"`
	Node    string `json:"node,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (w Warning) String() string {
	var b strings.Builder
	b.WriteString(w.Flow)
	if w.Node != "" {
		b.WriteString(": node " + w.Node)
	}
	if w.Field != "" {
		b.WriteString(": " + w.Field)
	}
	fmt.Fprintf(&b, ": %s [%s]", w.Message, w.Check)
	return b.String()
}

// Check is a lint check. Run reports findings on any flow of the set; the
// caller keeps those it asked about and drops those a node silenced.
type Check struct {
	ID      string // namespaced like a block type: "jose.overlap"
	Summary string // one line for docs and the editor
	Run     func(ctx context.Context, s *LintSet) []Warning
}

var checkIDPattern = typePattern

// ErrDuplicateCheck: a lint check with this id is already registered.
var ErrDuplicateCheck = errors.New("lint check already registered")

func normalizeLintIgnore(n *Node) ValidationErrors {
	if len(n.LintIgnore) == 0 {
		n.LintIgnore = nil
		return nil
	}
	var errs ValidationErrors
	for _, id := range n.LintIgnore {
		if !checkIDPattern.MatchString(id) {
			errs = append(errs, verr(n.ID, "lint_ignore", "%q is not a lint check id (like \"jose.overlap\")", id))
		}
	}
	slices.Sort(n.LintIgnore)
	for i := 1; i < len(n.LintIgnore); i++ {
		if n.LintIgnore[i] == n.LintIgnore[i-1] {
			errs = append(errs, verr(n.ID, "lint_ignore", "%q is listed twice", n.LintIgnore[i]))
			break
		}
	}
	return errs
}

// RegisterCheck adds a lint check. Its id must be namespaced and unique.
func (reg *Registry) RegisterCheck(c Check) error {
	if !checkIDPattern.MatchString(c.ID) {
		return fmt.Errorf("register lint check %q: id must be namespaced like \"jose.overlap\"", c.ID)
	}
	if c.Run == nil {
		return fmt.Errorf("register lint check %q: nil Run", c.ID)
	}
	if reg.checks == nil {
		reg.checks = map[string]Check{}
	}
	if _, dup := reg.checks[c.ID]; dup || slices.ContainsFunc(builtinChecks, func(b Check) bool { return b.ID == c.ID }) {
		return fmt.Errorf("register lint check %q: %w", c.ID, ErrDuplicateCheck)
	}
	reg.checks[c.ID] = c
	return nil
}

// Checks returns every lint check, the engine's and the registered ones,
// sorted by id.
func (reg *Registry) Checks() []Check {
	out := slices.Clone(builtinChecks)
	for _, c := range reg.checks {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Check) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// LintNode is one node as checks see it: Spec is nil for an unknown block
// type and Config nil when the node's config does not parse (its errors
// are validation's business, not lint's).
type LintNode struct {
	Flow   *Flow
	Node   *Node
	Spec   *Spec
	Config *Config
}

// LintSet is the flows a lint looks at, with their parsed configs.
type LintSet struct {
	flows []*lintFlow
}

type lintFlow struct {
	f     *Flow
	nodes []*LintNode
	byID  map[string]*LintNode
	// reach[node] lists the trigger nodes a run can reach node from.
	reach map[string][]*LintNode
}

// Flows returns the flows of the set.
func (s *LintSet) Flows() []*Flow {
	out := make([]*Flow, len(s.flows))
	for i, lf := range s.flows {
		out[i] = lf.f
	}
	return out
}

// Nodes returns the enabled nodes of the given block types (every enabled
// node when none is given), flow by flow in document order. Disabled
// nodes do nothing at run time, so checks do not see them.
func (s *LintSet) Nodes(types ...string) []*LintNode {
	var out []*LintNode
	for _, lf := range s.flows {
		for _, n := range lf.nodes {
			if !n.Node.Disabled && (len(types) == 0 || slices.Contains(types, n.Node.Type)) {
				out = append(out, n)
			}
		}
	}
	return out
}

// Triggers returns the enabled trigger nodes from which a run can reach n.
func (s *LintSet) Triggers(n *LintNode) []*LintNode {
	for _, lf := range s.flows {
		if lf.f == n.Flow {
			return lf.reach[n.Node.ID]
		}
	}
	return nil
}

// Wired reports whether a wire leaves n by port.
func (n *LintNode) Wired(port string) bool {
	for _, w := range n.Flow.Wires {
		if w.From == n.Node.ID && w.Port == port {
			return true
		}
	}
	return false
}

// Warn returns a warning about n.
func (n *LintNode) Warn(check, field, format string, args ...any) Warning {
	return Warning{Check: check, Flow: n.Flow.ID, Node: n.Node.ID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Label names n for messages: "flow/node".
func (n *LintNode) Label() string { return n.Flow.ID + "/" + n.Node.ID }

// Lint runs every check over flows and returns the warnings about the
// flows named in focus (all of them when focus is empty), minus those a
// node silences, sorted by flow, node and check. Flows with validation
// errors are linted as far as their configs parse.
func (reg *Registry) Lint(ctx context.Context, flows []*Flow, focus ...string) []Warning {
	set := reg.lintSet(flows)
	var all []Warning
	for _, c := range reg.Checks() {
		all = append(all, safeCheck(ctx, c, set)...)
	}
	var out []Warning
	for _, w := range all {
		// A finding about no flow (a check that failed) is always kept.
		if len(focus) > 0 && w.Flow != "" && !slices.Contains(focus, w.Flow) {
			continue
		}
		if silenced(set, w) {
			continue
		}
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b Warning) int {
		return cmpStrings(a.Flow, b.Flow, a.Node, b.Node, a.Check, b.Check, a.Field, b.Field, a.Message, b.Message)
	})
	return slices.CompactFunc(out, func(a, b Warning) bool { return a == b })
}

func silenced(set *LintSet, w Warning) bool {
	for _, lf := range set.flows {
		if lf.f.ID != w.Flow {
			continue
		}
		if n := lf.byID[w.Node]; n != nil && slices.Contains(n.Node.LintIgnore, w.Check) {
			return true
		}
	}
	return false
}

// safeCheck runs one check; a panicking check costs its findings, not the
// caller (lint runs in API handlers).
func safeCheck(ctx context.Context, c Check, set *LintSet) (ws []Warning) {
	defer func() {
		if p := recover(); p != nil {
			ws = []Warning{{Check: c.ID, Message: fmt.Sprintf("lint check failed internally: %v", p)}}
		}
	}()
	return c.Run(ctx, set)
}

func (reg *Registry) lintSet(flows []*Flow) *LintSet {
	set := &LintSet{}
	for _, f := range flows {
		specs, configs, errs := reg.check(f, &compileEnv{})
		bad := map[string]bool{}
		for _, e := range errs {
			bad[e.Node] = true
		}
		lf := &lintFlow{f: f, byID: map[string]*LintNode{}, reach: map[string][]*LintNode{}}
		for i := range f.Nodes {
			n := &f.Nodes[i]
			ln := &LintNode{Flow: f, Node: n, Spec: specs[n.ID]}
			if !bad[n.ID] {
				ln.Config = configs[n.ID]
			}
			lf.nodes = append(lf.nodes, ln)
			lf.byID[n.ID] = ln
		}
		for _, t := range lf.nodes {
			if t.Spec == nil || !t.Spec.Trigger || t.Node.Disabled {
				continue
			}
			seen := map[string]bool{t.Node.ID: true}
			queue := []string{t.Node.ID}
			for len(queue) > 0 {
				id := queue[0]
				queue = queue[1:]
				lf.reach[id] = append(lf.reach[id], t)
				if n := lf.byID[id]; n == nil || n.Node.Disabled && id != t.Node.ID {
					continue // a disabled node ends its branch
				}
				for _, w := range f.Wires {
					if w.From == id && !seen[w.To] && lf.byID[w.To] != nil {
						seen[w.To] = true
						queue = append(queue, w.To)
					}
				}
			}
		}
		set.flows = append(set.flows, lf)
	}
	return set
}

// builtinChecks are the engine's own checks, about any flow.
var builtinChecks = []Check{
	{ID: "flow.unreachable", Summary: "a node no trigger's wires reach never runs",
		Run: func(_ context.Context, s *LintSet) []Warning {
			var out []Warning
			for _, n := range s.Nodes() {
				if n.Spec == nil || n.Spec.Trigger || len(s.Triggers(n)) > 0 {
					continue
				}
				out = append(out, n.Warn("flow.unreachable", "",
					"no trigger reaches this node, so it never runs: wire it from a node a trigger reaches, or delete it"))
			}
			return out
		}},
}

// ErrorPortCheck returns a check, for block packages to register, that
// warns about nodes of the given types (blocks that fail often: network
// calls, decryption) whose error port is not wired: their failures then
// end the run instead of being answered.
func ErrorPortCheck(id string, why string, types ...string) Check {
	return Check{ID: id, Summary: "error port of " + strings.Join(types, ", ") + " not wired",
		Run: func(_ context.Context, s *LintSet) []Warning {
			var out []Warning
			for _, n := range s.Nodes(types...) {
				if n.Spec == nil || n.Wired(ErrorPort) {
					continue
				}
				out = append(out, n.Warn(id, "",
					"%s %s; its error port is not wired, so a failure ends the run (an http.in caller gets a bare 500): wire \"error\" to a node that answers or logs it",
					n.Node.Type, why))
			}
			return out
		}}
}

// LintFlows lints flows together with the deployed flows the runtime
// holds (a flow given replaces its deployed version), reporting on the
// flows given.
func (r *Runtime) LintFlows(ctx context.Context, flows ...*Flow) []Warning {
	var set []*Flow
	var focus []string
	for _, f := range flows {
		set = append(set, f)
		focus = append(focus, f.ID)
	}
	r.fmu.RLock()
	for id, d := range r.flows {
		if !slices.Contains(focus, id) {
			set = append(set, d.flow)
		}
	}
	r.fmu.RUnlock()
	// Map order must not change which flow a finding lands on.
	slices.SortStableFunc(set[len(flows):], func(a, b *Flow) int { return strings.Compare(a.ID, b.ID) })
	return r.reg.Lint(ctx, set, focus...)
}
