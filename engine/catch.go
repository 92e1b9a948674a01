package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
)

// Catch triggers receive failed runs, as Node-RED's catch node and n8n's
// error workflow do:
//
//	flow F: http.in --> A --> B (fails, error port not wired)
//	                                   |
//	        run fails -> F's catch triggers (scope "flow"): a new run of F
//	                  -> every other flow's catch triggers (scope "global")
//
// A catch run is a run of its own (its own limits, trace and run id) that
// starts when the failed run has ended, on the same goroutine, before the
// failed run's caller gets its error. A catch run that fails is traced and
// logged but caught by nobody, so catches cannot loop.

// Catch scopes.
const (
	CatchFlow   = "flow"   // failed runs of the catch trigger's own flow
	CatchGlobal = "global" // failed runs of every other flow
)

// Catcher is implemented by trigger blocks that receive failed runs
// (core.catch). CatchScope returns CatchFlow or CatchGlobal.
type Catcher interface {
	CatchScope() string
}

// catchMsg is what a catch run starts with. msg.error names the failure;
// a flow's own catch also gets the message the failing step had
// (msg.message), a global one only the failure (it is another flow's data).
func catchMsg(d *deployment, tr *Trace, failed Msg, err error, own bool) Msg {
	e := map[string]any{"message": err.Error(), "flow": d.flow.ID, "version": d.version,
		"run_id": tr.ID, "trigger": tr.Trigger}
	if tr.ErrorNode != "" {
		e["node"] = tr.ErrorNode
	}
	m := Msg{"error": e}
	if own && failed != nil && !errors.Is(err, ErrMessageTooBig) {
		m["message"] = CopyValue(failed)
	}
	return m
}

// dispatchCatch starts the catch runs of a failed run of d. The caller's
// cancellation does not reach them: a client that went away still leaves
// its failure to the catch flows.
//
// The flow's own catch runs get the failing message, so they also get the
// values the failed run marked secret: they stay redacted in their traces.
func (r *Runtime) dispatchCatch(ctx context.Context, d *deployment, tr *Trace, failed Msg, err error, secrets []string) {
	ctx = context.WithoutCancel(ctx)
	for _, n := range d.catchFlow {
		r.runCatch(ctx, d, n, catchMsg(d, tr, failed, err, true), &callFrame{seed: true, secrets: slices.Clip(secrets)})
	}
	if r.catchGlobal.Load() == 0 {
		return
	}
	r.fmu.RLock()
	var targets []*deployment
	for id, o := range r.flows {
		if id != d.flow.ID && len(o.catchGlobal) > 0 {
			targets = append(targets, o)
		}
	}
	r.fmu.RUnlock()
	slices.SortFunc(targets, func(a, b *deployment) int { return strings.Compare(a.flow.ID, b.flow.ID) })
	for _, o := range targets {
		for _, n := range o.catchGlobal {
			r.runCatch(ctx, o, n, catchMsg(d, tr, failed, err, false), &callFrame{seed: true, secrets: slices.Clip(secrets)})
		}
	}
}

func (r *Runtime) runCatch(ctx context.Context, d *deployment, n *nodeInst, msg Msg, seed *callFrame) {
	ctr, err := d.run(ctx, n, msg, false, -1, true, seed)
	if err != nil && !errors.Is(err, ErrNotDeployed) {
		run := ""
		if ctr != nil {
			run = ctr.ID
		}
		r.log.Warn("catch run failed", "flow", d.flow.ID, "node", n.node.ID, "run", run, "err", err)
	}
}
