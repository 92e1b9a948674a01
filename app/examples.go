package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
)

//go:generate go run ./internal/shippedsums

// Prebuilt flows (Config.Examples) are reconciled with the store on every
// start, each by its flow id:
//
//	not in the store, store fresh      -> install and deploy (first start)
//	not in the store, store not fresh  -> left alone: deleted on purpose,
//	                                      unless it is new in this release
//	                                      and an example in the store calls
//	                                      it (core.call): installed, so the
//	                                      upgraded caller finds it
//	draft is the shipped document      -> nothing to do
//	draft is an earlier shipped one    -> draft := shipped, deployed as a new version if it was deployed
//	anything else (changed here)       -> left alone, a Warn says how to take the shipped one
//
// "Shipped" compares the SHA-256 of the canonical document (DecodeFlow, then
// EncodeFlow), so formatting does not matter. The sums flowd knows are
// shippedSums (compiled in, from git history) and those recorded under
// KV system/examples_shipped by every start, so an embedder's own examples
// upgrade too. A flow with undeployed changes counts as changed, and so does
// one whose history shows the shipped version was deployed and then left.
//
// KV system/examples_installed marks a store that is not fresh.
//
// Installing is several writes per flow (save the draft, then deploy it as
// version 1), and a first start can die between any two. So the installer
// writes its intent first: KV system/examples_pending lists the flow ids it
// owes an install, written once before it saves anything and cleared once
// every one of them was tried. A start that finds an id pending installs
// the flow if it is missing, or deploys it if it is saved but undeployed
// (the crash hit between the two writes), and logs that it did. A flow the
// installer finished is no longer pending, so one a user undeploys later
// stays undeployed.
var (
	keyInstalled = "examples_installed"
	keyPending   = "examples_pending" // JSON ["<flow id>", ...]
	keyShipped   = "examples_shipped" // JSON {"<flow id>": ["<sha256 hex>", ...]}
	noteUpgrade  = "shipped upgrade"
)

// example is one prebuilt flow as this binary ships it.
type example struct {
	file string // name in Config.Examples
	flow *engine.Flow
	doc  []byte // canonical
	sum  string // hex SHA-256 of doc
}

// exampleState is how a stored flow relates to its shipped example.
type exampleState int

const (
	exampleCurrent  exampleState = iota // the draft is the shipped document
	exampleOutdated                     // an earlier shipped document, unchanged here
	exampleChanged                      // changed here (or undeployed changes)
)

// syncExamples installs the examples on the first start and upgrades the
// unchanged ones on every start. Problems with one flow are logged and the
// others still go ahead; only store failures stop the start.
func (a *App) syncExamples(ctx context.Context) error {
	if a.cfg.Examples == nil {
		return nil
	}
	_, err := a.st.GetKV(ctx, nsSystem, keyInstalled)
	fresh := errors.Is(err, store.ErrNotFound)
	if err != nil && !fresh {
		return fmt.Errorf("app: read install marker: %w", err)
	}
	names, err := fs.Glob(a.cfg.Examples, "*.json")
	if err != nil {
		return fmt.Errorf("app: list examples: %w", err)
	}
	sort.Strings(names)
	recorded, err := a.recordedSums(ctx)
	if err != nil {
		return err
	}
	var failed []string
	var exs []example
	for _, name := range names {
		raw, err := fs.ReadFile(a.cfg.Examples, name)
		if err != nil {
			return fmt.Errorf("app: read example %s: %w", name, err)
		}
		ex, err := a.newExample(path.Base(name), raw)
		if err != nil {
			a.log.Error("example flow not installed", "file", path.Base(name), "err", err)
			failed = append(failed, name)
			continue
		}
		exs = append(exs, ex)
	}
	pending, err := a.pendingInstalls(ctx, exs, fresh, recorded)
	if err != nil {
		return err
	}
	for _, ex := range exs {
		known := append(slices.Clone(shippedSums[ex.flow.ID]), recorded[ex.flow.ID]...)
		ok, err := a.syncExample(ctx, ex, known, pending[ex.flow.ID])
		if err != nil {
			return err
		}
		if !ok {
			failed = append(failed, ex.file)
		}
	}
	if len(pending) > 0 {
		// Every owed install was tried: whatever happens next is the
		// user's, not the installer's.
		if err := a.st.UpdateKV(ctx, nsSystem, keyPending, func([]byte) ([]byte, error) { return nil, nil }); err != nil {
			return fmt.Errorf("app: clear pending example installs: %w", err)
		}
	}
	if err := a.recordSums(ctx, recorded, exs); err != nil {
		return err
	}
	if fresh {
		if err := a.st.SetKV(ctx, nsSystem, keyInstalled, []byte(a.cfg.Now().UTC().Format(time.RFC3339))); err != nil {
			return fmt.Errorf("app: write install marker: %w", err)
		}
	}
	if len(failed) > 0 {
		a.log.Warn("some example flows were not installed", "files", failed)
	}
	return nil
}

// pendingInstalls returns the ids of the examples this start owes an
// install: those an earlier first start recorded and did not finish, and,
// on a fresh store, every example not in it yet, recorded before anything
// is saved so that a crash part way leaves the intent behind. On a store
// that is not fresh, a missing example is owed only when no start recorded
// it as shipped (it is new in this release, not deleted here) and an
// example in the store calls it as a sub-flow: an upgraded caller needs it.
func (a *App) pendingInstalls(ctx context.Context, exs []example, fresh bool, recorded map[string][]string) (map[string]bool, error) {
	var ids []string
	raw, err := a.st.GetKV(ctx, nsSystem, keyPending)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("app: read pending example installs: %w", err)
	default:
		if err := json.Unmarshal(raw, &ids); err != nil {
			return nil, fmt.Errorf("app: pending example installs: %w", err)
		}
	}
	pending := map[string]bool{}
	for _, id := range ids {
		pending[id] = true
	}
	called := map[string]bool{}
	if !fresh {
		var err error
		if called, err = a.calledExamples(ctx, exs); err != nil {
			return nil, err
		}
	}
	grew := false
	for _, ex := range exs {
		id := ex.flow.ID
		if pending[id] || (!fresh && (!called[id] || len(recorded[id]) > 0)) {
			continue
		}
		if _, err := a.st.GetFlow(ctx, id); errors.Is(err, store.ErrNotFound) {
			pending[id], grew = true, true
			ids = append(ids, id)
		} else if err != nil {
			return nil, fmt.Errorf("app: example flow %q: %w", id, err)
		}
	}
	if grew {
		data, err := json.Marshal(ids)
		if err != nil {
			return nil, fmt.Errorf("app: pending example installs: %w", err)
		}
		if err := a.st.SetKV(ctx, nsSystem, keyPending, data); err != nil {
			return nil, fmt.Errorf("app: record pending example installs: %w", err)
		}
	}
	return pending, nil
}

// calledExamples returns the ids the core.call nodes of the examples in
// the store call, as this release ships them (what an upgrade deploys).
func (a *App) calledExamples(ctx context.Context, exs []example) (map[string]bool, error) {
	out := map[string]bool{}
	for _, ex := range exs {
		if _, err := a.st.GetFlow(ctx, ex.flow.ID); errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("app: example flow %q: %w", ex.flow.ID, err)
		}
		for _, n := range ex.flow.Nodes {
			var target string
			if n.Type == "core.call" && !n.Disabled && json.Unmarshal(n.Config["flow"], &target) == nil && target != "" {
				out[target] = true
			}
		}
	}
	return out, nil
}

func (a *App) newExample(file string, raw []byte) (example, error) {
	f, canon, err := a.decode(raw)
	if err != nil {
		return example{}, err
	}
	return example{file: file, flow: f, doc: canon, sum: sum(canon)}, nil
}

// syncExample installs, upgrades or leaves one example; known holds the sums
// of its shipped versions; owed says an install of it is pending. It reports false when a first install failed (the
// failure is logged) and returns only store failures, which stop the start.
// It holds a.mu throughout, so no deploy, undeploy or delete slips between
// looking at the flow and changing it.
func (a *App) syncExample(ctx context.Context, ex example, known []string, owed bool) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id := ex.flow.ID
	rec, err := a.st.GetFlow(ctx, id)
	switch {
	case err == nil && owed && rec.Deployed == 0 && slices.Contains(docSums(rec.Doc), ex.sum):
		// Saved by an install that stopped before deploying it.
		v, _, err := a.deploy(ctx, id, deployNoteUser)
		if err != nil {
			a.log.Error("example flow not installed: an earlier first start saved it but did not deploy it, and it does not deploy",
				"file", ex.file, "flow", id, "err", err)
			return false, nil
		}
		a.log.Info("prebuilt flow deployed: an earlier first start saved it but stopped before deploying it",
			"flow", id, "version", v.N)
		return true, nil
	case errors.Is(err, store.ErrNotFound) && owed:
		if _, err := a.takeShipped(ctx, ex, store.FlowRecord{}, true); err != nil {
			a.log.Error("example flow not installed", "file", ex.file, "err", err)
			return false, nil
		}
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return true, nil // deleted on purpose
	case err != nil:
		return false, fmt.Errorf("app: example flow %q: %w", id, err)
	}
	state, from, err := a.exampleState(ctx, rec, ex, known)
	if err != nil {
		return false, err
	}
	switch state {
	case exampleCurrent:
		return true, nil
	case exampleChanged:
		a.log.Warn("prebuilt flow was changed here, so the version this flowd ships was not installed",
			"flow", id, "take_it", "flowd import --deploy flows/examples/"+ex.file+
				" (your version stays in the flow's history: restore it on the flow's versions page)")
		return true, nil
	}
	deploy := rec.Deployed != 0
	v, err := a.takeShipped(ctx, ex, rec, deploy)
	switch {
	case err != nil && deploy:
		a.log.Error("prebuilt flow not upgraded: the version this flowd ships did not deploy, the old one keeps running",
			"flow", id, "version", rec.Deployed, "err", err)
	case err != nil:
		a.log.Error("prebuilt flow not upgraded", "flow", id, "err", err)
	case deploy:
		a.log.Info("prebuilt flow upgraded to the version this flowd ships", "flow", id,
			"from_version", rec.Deployed, "to_version", v.N, "from_sha256", from[:12], "to_sha256", ex.sum[:12])
	default:
		a.log.Info("prebuilt flow's draft upgraded to the version this flowd ships (it stays undeployed)", "flow", id,
			"from_sha256", from[:12], "to_sha256", ex.sum[:12])
	}
	return true, nil
}

// exampleState compares a stored flow with its example. For an outdated
// flow it also returns the sum of the shipped version the flow holds.
func (a *App) exampleState(ctx context.Context, rec store.FlowRecord, ex example, known []string) (exampleState, string, error) {
	if rec.Deployed != 0 {
		v, err := a.st.GetVersion(ctx, rec.ID, rec.Deployed)
		if errors.Is(err, store.ErrNotFound) {
			return exampleChanged, "", nil
		}
		if err != nil {
			return 0, "", fmt.Errorf("app: deployed version of %q: %w", rec.ID, err)
		}
		if !bytes.Equal(v.Doc, rec.Doc) {
			return exampleChanged, "", nil
		}
	}
	sums := docSums(rec.Doc)
	if slices.Contains(sums, ex.sum) {
		return exampleCurrent, "", nil
	}
	i := slices.IndexFunc(sums, func(s string) bool { return slices.Contains(known, s) })
	if i < 0 {
		return exampleChanged, "", nil
	}
	back, err := a.wentBack(ctx, rec.ID, ex)
	if err != nil || back {
		return exampleChanged, "", err
	}
	return exampleOutdated, sums[i], nil
}

// wentBack reports whether the flow's history holds ex followed by another
// version: someone restored an older version after ex was deployed (say a
// rollback of an upgrade), which a restart must not undo. Versions of ex
// with nothing after them are upgrades whose deploy failed, tried again.
func (a *App) wentBack(ctx context.Context, id string, ex example) (bool, error) {
	vs, err := a.st.ListVersions(ctx, id)
	if err != nil {
		return false, fmt.Errorf("app: versions of %q: %w", id, err)
	}
	later := false         // a version newer than the one at hand is not ex
	for _, v := range vs { // newest first
		isEx := slices.Contains(docSums(v.Doc), ex.sum)
		if isEx && later {
			return true, nil
		}
		later = later || !isEx
	}
	return false, nil
}

// takeShipped makes ex the flow's draft and, if deploy, deploys it as a new
// version: the one path for first installs (from is the zero record) and
// upgrades. A failed deploy of an upgrade puts the old draft back, so the
// flow reads as it did and the next start tries again; Deploy has already
// put back which version is deployed. a.mu must be held.
func (a *App) takeShipped(ctx context.Context, ex example, from store.FlowRecord, deploy bool) (store.Version, error) {
	id := ex.flow.ID
	ifRev, note := store.MustCreate, deployNoteUser
	if from.Rev != 0 {
		ifRev, note = from.Rev, noteUpgrade
	}
	if deploy {
		if err := a.validate(ctx, ex.flow); err != nil {
			return store.Version{}, err
		}
	}
	rec, err := a.st.PutFlow(ctx, id, ex.doc, ifRev)
	if err != nil {
		return store.Version{}, fmt.Errorf("save flow %q: %w", id, err)
	}
	if !deploy {
		return store.Version{}, nil
	}
	v, _, err := a.deploy(ctx, id, note)
	if err != nil && from.Rev != 0 {
		if _, perr := a.st.PutFlow(ctx, id, from.Doc, rec.Rev); perr != nil {
			a.log.Error("restoring the draft after a failed upgrade", "flow", id, "err", perr)
		}
	}
	return v, err
}

// recordedSums reads the sums earlier starts recorded, by flow id.
func (a *App) recordedSums(ctx context.Context) (map[string][]string, error) {
	raw, err := a.st.GetKV(ctx, nsSystem, keyShipped)
	if errors.Is(err, store.ErrNotFound) {
		return map[string][]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("app: read shipped example sums: %w", err)
	}
	out := map[string][]string{}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("app: shipped example sums: %w", err)
	}
	return out, nil
}

// recordSums adds the examples' sums to those recorded, writing only when
// one is new. Every example counts, whether this start installed, upgraded
// or left its flow: this binary shipped it, so a later hand import of the
// same document is recognised as shipped too.
func (a *App) recordSums(ctx context.Context, recorded map[string][]string, exs []example) error {
	if !slices.ContainsFunc(exs, func(ex example) bool { return !slices.Contains(recorded[ex.flow.ID], ex.sum) }) {
		return nil
	}
	err := a.st.UpdateKV(ctx, nsSystem, keyShipped, func(old []byte) ([]byte, error) {
		sums := map[string][]string{}
		if old != nil {
			if err := json.Unmarshal(old, &sums); err != nil {
				return nil, fmt.Errorf("shipped example sums: %w", err)
			}
		}
		for _, ex := range exs {
			if id := ex.flow.ID; !slices.Contains(sums[id], ex.sum) {
				sums[id] = append(sums[id], ex.sum)
			}
		}
		return json.Marshal(sums)
	})
	if err != nil {
		return fmt.Errorf("app: record shipped example sums: %w", err)
	}
	return nil
}

// docSums returns the sums a stored document may be known by: its canonical
// form as today's engine writes it, and its bytes as stored (a document an
// older flowd stored in a form today's decoder refuses is still recognised
// by the sum recorded when it was installed).
func docSums(doc []byte) []string {
	sums := []string{sum(doc)}
	if f, err := engine.DecodeFlow(doc); err == nil {
		if canon, err := engine.EncodeFlow(f); err == nil && !bytes.Equal(canon, doc) {
			sums = append(sums, sum(canon))
		}
	}
	return sums
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
