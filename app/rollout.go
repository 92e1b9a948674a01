package app

import (
	"context"
	"fmt"
	"time"

	"github.com/flowd/flowd/store"
)

// A deploy's answer says which nodes run the new version. Every node
// writes, after each reconcile pass, the deploy generation it converged
// to and the flows it could not run into its entry of the store's node
// registry (Coordinator.SetApplied; leased on a cluster store, so a dead
// node drops out). The deploying node commits, waits for itself, then
// reads the registry until every live node reached the deploy's
// generation or the wait ends:
//
//	DeployWait --> commit (generation G) --> this node applied G --> Nodes() every 2..25 ms until all Gen >= G or wait passed
//	                                                                   |
//	                                      per node: Gen >= G, no problem with the flow --> applied
//	                                                Gen >= G, a problem with the flow  --> failed (its reason)
//	                                                Gen <  G                           --> behind (and its last problem with the flow, if any)

// DefaultDeployWait is how long a deploy waits for the other nodes
// unless told otherwise; MaxDeployWait bounds what a caller may ask for.
const (
	DefaultDeployWait = 2 * time.Second
	MaxDeployWait     = 30 * time.Second
)

// Node states in a deploy's answer.
const (
	NodeApplied = "applied" // runs the deployed version (or a newer deploy's state)
	NodeFailed  = "failed"  // reached the deploy but could not run the flow: Error says why
	NodeBehind  = "behind"  // had not reached the deploy when the wait ended
)

// NodeStatus is one node's part of a deploy's answer.
type NodeStatus struct {
	Node  string `json:"node"`
	State string `json:"state"`
	// Generation is the deploy generation the node last reported.
	Generation int64 `json:"generation"`
	// Error is why the node could not run the flow (failed), or its last
	// problem with it (behind).
	Error string `json:"error,omitempty"`
}

// Rollout is a deploy's answer: the version stored and where it runs.
type Rollout struct {
	Flow    string    `json:"flow"`
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	// Generation is the deploy generation that carries the version (0
	// when no reconcile loop runs: the CLI on a stopped server's store).
	Generation int64        `json:"generation"`
	Nodes      []NodeStatus `json:"nodes"`
	Applied    int          `json:"applied"` // nodes in state applied
	// Complete: every live node applied the version.
	Complete bool `json:"complete"`
	// Note says why the other nodes' states are unknown (the registry
	// could not be read): the deploy itself is committed and runs here.
	Note string `json:"note,omitempty"`
}

// DeployWait deploys like Deploy, then waits up to wait (0: not at all,
// capped at MaxDeployWait) for every live node to apply the version, and
// answers each node's state. A node that cannot run it does not fail the
// deploy (this node runs it, the store holds it): it is listed as failed,
// with its reason.
func (a *App) DeployWait(ctx context.Context, id string, wait time.Duration) (Rollout, error) {
	a.mu.Lock()
	v, gen, err := a.deploy(ctx, id, deployNoteUser)
	a.mu.Unlock()
	if err != nil {
		return Rollout{}, err
	}
	r := Rollout{Flow: v.Flow, Version: v.N, Created: v.Created, Generation: gen}
	r.Nodes, err = a.rollout(ctx, id, gen, min(max(wait, 0), MaxDeployWait))
	if err != nil {
		// Committed, and this node runs it: an error now would read as a
		// failed deploy. Answer this node, and why the others are unknown.
		r.Nodes = []NodeStatus{{Node: a.node, State: NodeApplied, Generation: gen}}
		r.Note = err.Error()
	}
	for _, n := range r.Nodes {
		if n.State == NodeApplied {
			r.Applied++
		}
	}
	r.Complete = r.Applied == len(r.Nodes) && r.Note == ""
	return r, nil
}

// rollout reads the node registry until every node reached gen, or wait
// passed, or ctx ended (then it answers what it saw last).
func (a *App) rollout(ctx context.Context, flow string, gen int64, wait time.Duration) ([]NodeStatus, error) {
	if !a.following() {
		// No reconcile loop, no registry entry: this process ran it.
		return []NodeStatus{{Node: a.node, State: NodeApplied}}, nil
	}
	deadline := time.Now().Add(wait)
	pause := 2 * time.Millisecond
	for {
		nodes, err := a.st.Nodes(ctx)
		if err != nil {
			return nil, fmt.Errorf("the other nodes' states are unknown: the node registry cannot be read: %w", err)
		}
		out, behind := nodeStates(nodes, flow, gen)
		if behind == 0 || !time.Now().Before(deadline) {
			return out, nil
		}
		t := time.NewTimer(min(pause, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return out, nil // the caller stopped waiting: answer what is known
		case <-t.C:
		}
		pause = min(2*pause, 25*time.Millisecond) // a stuck node costs at most 40 reads a second
	}
}

// nodeStates judges each registry entry against a deploy of flow at
// generation gen.
func nodeStates(nodes []store.NodeInfo, flow string, gen int64) (out []NodeStatus, behind int) {
	out = make([]NodeStatus, 0, len(nodes))
	for _, n := range nodes {
		s := NodeStatus{Node: n.ID, Generation: n.Gen, Error: n.Problems[flow]}
		switch {
		case n.Gen < gen:
			s.State = NodeBehind
			behind++
		case s.Error != "":
			s.State = NodeFailed
		default:
			s.State = NodeApplied
		}
		out = append(out, s)
	}
	return out, behind
}
