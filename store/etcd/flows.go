package etcd

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/flowd/flowd/store"
)

// flowMeta is the value of flows/<id>; the draft is in drafts/<id>.
type flowMeta struct {
	Rev      int64     `json:"rev"`
	Updated  time.Time `json:"updated"`
	Deployed int       `json:"deployed"`
	Latest   int       `json:"latest"`
}

// versionHead precedes the document in versions/<id>/<n>.
type versionHead struct {
	Created time.Time `json:"created"`
	Note    string    `json:"note"`
}

func (s *Store) flowKey(id string) string  { return s.key("flows", id) }
func (s *Store) draftKey(id string) string { return s.key("drafts", id) }
func (s *Store) genKey() string            { return s.root + "deploy-gen" }
func (s *Store) versionKey(id string, n int) string {
	return s.prefix("versions", id) + fmt.Sprintf("%010d", n)
}

func normTime(t time.Time) time.Time { return time.Unix(t.Unix(), int64(t.Nanosecond())).UTC() }

func decodeMeta(id string, kv *mvccpb.KeyValue) (flowMeta, error) {
	var m flowMeta
	if err := json.Unmarshal(kv.Value, &m); err != nil || m.Rev < 1 || m.Deployed < 0 || m.Latest < m.Deployed {
		return flowMeta{}, fmt.Errorf("flows/%s: %w", id, errCorrupt)
	}
	m.Updated = normTime(m.Updated)
	return m, nil
}

func encodeMeta(m flowMeta) string {
	b, _ := json.Marshal(m) // plain fields: cannot fail
	return string(b)
}

func encodeVersion(h versionHead, doc []byte) string {
	head, _ := json.Marshal(h)
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(head)+len(doc)), uint32(len(head)))
	b = append(b, head...)
	return string(append(b, doc...))
}

func decodeVersion(id string, n int, b []byte) (store.Version, error) {
	bad := fmt.Errorf("versions/%s/%d: %w", id, n, errCorrupt)
	if len(b) < 4 {
		return store.Version{}, bad
	}
	hl := binary.BigEndian.Uint32(b)
	if uint64(hl) > uint64(len(b)-4) {
		return store.Version{}, bad
	}
	var h versionHead
	if err := json.Unmarshal(b[4:4+hl], &h); err != nil {
		return store.Version{}, bad
	}
	doc := append(make([]byte, 0, len(b)-4-int(hl)), b[4+hl:]...)
	return store.Version{Flow: id, N: n, Doc: doc, Created: normTime(h.Created), Note: h.Note}, nil
}

func checkDoc(doc []byte) error {
	if len(doc) > MaxValueBytes {
		return fmt.Errorf("flow document is %d bytes, more than the etcd store's limit of %d: %w", len(doc), MaxValueBytes, store.ErrInvalid)
	}
	return nil
}

// readFlow reads a flow's record (and, with draft, its document) in one
// revision. modRev is the record's ModRevision, 0 when absent (then err is
// ErrNotFound).
func (s *Store) readFlow(ctx context.Context, id string, draft bool) (rec store.FlowRecord, modRev, gen int64, err error) {
	var resp *clientv3.TxnResponse
	ops := []clientv3.Op{clientv3.OpGet(s.flowKey(id)), clientv3.OpGet(s.genKey())}
	if draft {
		ops = append(ops, clientv3.OpGet(s.draftKey(id)))
	}
	err = s.call(ctx, func(ctx context.Context) (err error) {
		resp, err = s.cli.Txn(ctx).Then(ops...).Commit()
		return err
	})
	if err != nil {
		return rec, 0, 0, err
	}
	if g := resp.Responses[1].GetResponseRange().Kvs; len(g) > 0 {
		gen = g[0].ModRevision
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return rec, 0, gen, store.ErrNotFound
	}
	m, err := decodeMeta(id, kvs[0])
	if err != nil {
		return rec, 0, gen, err
	}
	rec = store.FlowRecord{ID: id, Rev: m.Rev, Updated: m.Updated, Deployed: m.Deployed, Latest: m.Latest}
	if draft {
		d := resp.Responses[2].GetResponseRange().Kvs
		if len(d) == 0 {
			return rec, 0, gen, fmt.Errorf("drafts/%s is missing: %w", id, errCorrupt)
		}
		rec.Doc = append(make([]byte, 0, len(d[0].Value)), d[0].Value...)
	}
	return rec, kvs[0].ModRevision, gen, nil
}

func metaOf(rec store.FlowRecord) flowMeta {
	return flowMeta{Rev: rec.Rev, Updated: rec.Updated, Deployed: rec.Deployed, Latest: rec.Latest}
}

// GetFlow returns the flow's draft and deployment state.
func (s *Store) GetFlow(ctx context.Context, id string) (store.FlowRecord, error) {
	err := store.CheckName("flow id", id, store.MaxNameLen)
	var rec store.FlowRecord
	if err == nil {
		rec, _, _, err = s.readFlow(ctx, id, true)
	}
	if err != nil {
		return store.FlowRecord{}, fmt.Errorf("store: get flow %s: %w", q(id), err)
	}
	return rec, nil
}

// ListFlows returns every flow sorted by id.
func (s *Store) ListFlows(ctx context.Context) ([]store.FlowRecord, error) {
	var resp *clientv3.TxnResponse
	err := s.call(ctx, func(ctx context.Context) (err error) {
		resp, err = s.cli.Txn(ctx).Then(
			clientv3.OpGet(s.root+"flows/", clientv3.WithPrefix()),
			clientv3.OpGet(s.root+"drafts/", clientv3.WithPrefix()),
		).Commit()
		return err
	})
	out := []store.FlowRecord{}
	if err == nil {
		drafts := map[string][]byte{}
		for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
			drafts[strings.TrimPrefix(string(kv.Key), s.root+"drafts/")] = kv.Value
		}
		for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
			seg := strings.TrimPrefix(string(kv.Key), s.root+"flows/")
			var id string
			if id, err = unesc(seg); err != nil {
				break
			}
			var m flowMeta
			if m, err = decodeMeta(id, kv); err != nil {
				break
			}
			d, ok := drafts[seg]
			if !ok {
				err = fmt.Errorf("drafts/%s is missing: %w", id, errCorrupt)
				break
			}
			out = append(out, store.FlowRecord{ID: id, Doc: append([]byte{}, d...), Rev: m.Rev, Updated: m.Updated, Deployed: m.Deployed, Latest: m.Latest})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("store: list flows: %w", err)
	}
	slices.SortFunc(out, func(a, b store.FlowRecord) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// PutFlow writes the draft under the revision condition ifRev.
func (s *Store) PutFlow(ctx context.Context, id string, doc []byte, ifRev int64) (store.FlowRecord, error) {
	err := store.CheckName("flow id", id, store.MaxNameLen)
	if err == nil && ifRev < store.AnyRev {
		err = fmt.Errorf("revision condition %d: %w", ifRev, store.ErrInvalid)
	}
	if err == nil {
		err = checkDoc(doc)
	}
	var rec store.FlowRecord
	if err == nil {
		err = s.retrying(ctx, func() (bool, error) {
			cur, modRev, _, err := s.readFlow(ctx, id, false)
			switch {
			case errors.Is(err, store.ErrNotFound) && ifRev > 0:
				return false, fmt.Errorf("flow does not exist, want revision %d: %w", ifRev, store.ErrConflict)
			case errors.Is(err, store.ErrNotFound):
				cur = store.FlowRecord{ID: id}
			case err != nil:
				return false, err
			case ifRev == store.MustCreate:
				return false, fmt.Errorf("flow exists at revision %d: %w", cur.Rev, store.ErrConflict)
			case ifRev > 0 && cur.Rev != ifRev:
				return false, fmt.Errorf("flow is at revision %d, want %d: %w", cur.Rev, ifRev, store.ErrConflict)
			}
			next := cur
			next.Doc = append(make([]byte, 0, len(doc)), doc...)
			next.Rev++
			next.Updated = normTime(s.now())
			ok, _, err := s.commit(ctx,
				[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.flowKey(id)), "=", modRev)},
				[]clientv3.Op{clientv3.OpPut(s.flowKey(id), encodeMeta(metaOf(next))), clientv3.OpPut(s.draftKey(id), string(doc))},
				nil)
			if ok {
				rec = next
			}
			return ok, err
		})
	}
	if err != nil {
		return store.FlowRecord{}, fmt.Errorf("store: put flow %s: %w", q(id), err)
	}
	return rec, nil
}

// DeleteFlow removes the flow with its versions. ifRev is AnyRev or an
// exact revision.
func (s *Store) DeleteFlow(ctx context.Context, id string, ifRev int64) error {
	err := store.CheckName("flow id", id, store.MaxNameLen)
	if err == nil && ifRev != store.AnyRev && ifRev <= 0 {
		err = fmt.Errorf("revision condition %d: %w", ifRev, store.ErrInvalid)
	}
	if err == nil {
		err = s.retrying(ctx, func() (bool, error) {
			cur, modRev, _, err := s.readFlow(ctx, id, false)
			if err != nil {
				return false, err
			}
			if ifRev > 0 && cur.Rev != ifRev {
				return false, fmt.Errorf("flow is at revision %d, want %d: %w", cur.Rev, ifRev, store.ErrConflict)
			}
			ops := []clientv3.Op{
				clientv3.OpDelete(s.flowKey(id)),
				clientv3.OpDelete(s.draftKey(id)),
				clientv3.OpDelete(s.prefix("versions", id), clientv3.WithPrefix()),
			}
			if cur.Deployed > 0 {
				ops = append(ops, clientv3.OpPut(s.genKey(), ""))
			}
			ok, _, err := s.commit(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.flowKey(id)), "=", modRev)}, ops, nil)
			return ok, err
		})
	}
	if err != nil {
		return fmt.Errorf("store: delete flow %s: %w", q(id), err)
	}
	return nil
}

// AddVersion stores doc as version Latest+1 and deploys it.
func (s *Store) AddVersion(ctx context.Context, id string, doc []byte, note string) (store.Version, error) {
	err := store.CheckName("flow id", id, store.MaxNameLen)
	if err == nil && len(note) > store.MaxNoteLen {
		err = fmt.Errorf("note is %d bytes, more than %d: %w", len(note), store.MaxNoteLen, store.ErrInvalid)
	}
	if err == nil {
		err = checkDoc(doc)
	}
	var v store.Version
	if err == nil {
		if doc == nil {
			doc = []byte{} // a nil Doc would mean "deploy a stored version"
		}
		v, _, err = s.deploy(ctx, store.DeployRequest{Flow: id, Doc: doc, Note: note, IfGen: store.AnyRev})
	}
	if err != nil {
		return store.Version{}, fmt.Errorf("store: add version of flow %s: %w", q(id), err)
	}
	return v, nil
}

// SetDeployed records which stored version runs; 0 means undeployed.
func (s *Store) SetDeployed(ctx context.Context, id string, n int) error {
	err := store.CheckName("flow id", id, store.MaxNameLen)
	if err == nil && n < 0 {
		err = fmt.Errorf("version %d: %w", n, store.ErrInvalid)
	}
	if err == nil {
		_, _, err = s.deploy(ctx, store.DeployRequest{Flow: id, Version: n, IfGen: store.AnyRev})
	}
	if err != nil {
		return fmt.Errorf("store: set deployed version of flow %s to %d: %w", q(id), n, err)
	}
	return nil
}

// Deploy changes the desired state of one flow in one transaction.
func (s *Store) Deploy(ctx context.Context, r store.DeployRequest) (int, int64, error) {
	err := store.CheckName("flow id", r.Flow, store.MaxNameLen)
	switch {
	case err != nil:
	case r.Doc != nil && len(r.Note) > store.MaxNoteLen:
		err = fmt.Errorf("note is %d bytes, more than %d: %w", len(r.Note), store.MaxNoteLen, store.ErrInvalid)
	case r.Doc != nil:
		err = checkDoc(r.Doc)
	case r.Version < 0:
		err = fmt.Errorf("version %d: %w", r.Version, store.ErrInvalid)
	}
	if err == nil && r.IfGen < store.AnyRev {
		err = fmt.Errorf("generation condition %d: %w", r.IfGen, store.ErrInvalid)
	}
	var (
		v   store.Version
		gen int64
	)
	if err == nil {
		v, gen, err = s.deploy(ctx, r)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: deploy flow %s: %w", q(r.Flow), err)
	}
	return v.N, gen, nil
}

// deploy is AddVersion (r.Doc set) or SetDeployed, conditioned on the
// deploy generation unless r.IfGen is AnyRev. It returns the version (with
// its document when one was added) and the new generation.
func (s *Store) deploy(ctx context.Context, r store.DeployRequest) (store.Version, int64, error) {
	var (
		v   store.Version
		gen int64
	)
	err := s.retrying(ctx, func() (bool, error) {
		cur, modRev, curGen, err := s.readFlow(ctx, r.Flow, false)
		if err != nil {
			return false, err
		}
		if r.IfGen != store.AnyRev && curGen != r.IfGen {
			return false, fmt.Errorf("another deploy committed (generation %d, want %d): %w", curGen, r.IfGen, store.ErrConflict)
		}
		next := cur
		ops := []clientv3.Op{}
		if r.Doc != nil {
			v = store.Version{Flow: r.Flow, N: cur.Latest + 1, Doc: append([]byte{}, r.Doc...), Created: normTime(s.now()), Note: r.Note}
			ops = append(ops, clientv3.OpPut(s.versionKey(r.Flow, v.N), encodeVersion(versionHead{Created: v.Created, Note: v.Note}, r.Doc)))
			next.Latest, next.Deployed = v.N, v.N
		} else {
			if r.Version > cur.Latest {
				return false, fmt.Errorf("version %d: %w", r.Version, store.ErrNotFound)
			}
			v = store.Version{Flow: r.Flow, N: r.Version}
			next.Deployed = r.Version
		}
		ops = append(ops, clientv3.OpPut(s.flowKey(r.Flow), encodeMeta(metaOf(next))), clientv3.OpPut(s.genKey(), ""))
		cmps := []clientv3.Cmp{
			clientv3.Compare(clientv3.ModRevision(s.flowKey(r.Flow)), "=", modRev),
			clientv3.Compare(clientv3.ModRevision(s.genKey()), "=", curGen),
		}
		ok, resp, err := s.commit(ctx, cmps, ops, nil)
		if ok {
			if resp != nil {
				gen = resp.Header.Revision
			} else {
				// Landed, learnt through the marker: read the generation
				// back (a later deploy can only have raised it).
				_, _, gen, err = s.readFlow(ctx, r.Flow, false)
				if errors.Is(err, store.ErrNotFound) {
					err = nil
				}
			}
		}
		return ok, err
	})
	return v, gen, err
}

// DesiredState returns every deployed flow and the deploy generation.
func (s *Store) DesiredState(ctx context.Context) (store.DesiredState, error) {
	var resp *clientv3.TxnResponse
	err := s.call(ctx, func(ctx context.Context) (err error) {
		resp, err = s.cli.Txn(ctx).Then(
			clientv3.OpGet(s.root+"flows/", clientv3.WithPrefix()),
			clientv3.OpGet(s.genKey()),
		).Commit()
		return err
	})
	ds := store.DesiredState{Flows: []store.Deployment{}}
	if err == nil {
		if g := resp.Responses[1].GetResponseRange().Kvs; len(g) > 0 {
			ds.Gen = g[0].ModRevision
		}
		for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
			var id string
			if id, err = unesc(strings.TrimPrefix(string(kv.Key), s.root+"flows/")); err != nil {
				break
			}
			var m flowMeta
			if m, err = decodeMeta(id, kv); err != nil {
				break
			}
			if m.Deployed > 0 {
				ds.Flows = append(ds.Flows, store.Deployment{Flow: id, Version: m.Deployed})
			}
		}
	}
	if err != nil {
		return store.DesiredState{}, fmt.Errorf("store: desired state: %w", err)
	}
	slices.SortFunc(ds.Flows, func(a, b store.Deployment) int { return strings.Compare(a.Flow, b.Flow) })
	return ds, nil
}

// ListVersions returns the versions of a flow, newest first.
func (s *Store) ListVersions(ctx context.Context, id string) ([]store.Version, error) {
	err := store.CheckName("flow id", id, store.MaxNameLen)
	out := []store.Version{}
	if err == nil {
		var resp *clientv3.TxnResponse
		err = s.call(ctx, func(ctx context.Context) (err error) {
			resp, err = s.cli.Txn(ctx).Then(
				clientv3.OpGet(s.flowKey(id), clientv3.WithCountOnly()),
				clientv3.OpGet(s.prefix("versions", id), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)),
			).Commit()
			return err
		})
		if err == nil && resp.Responses[0].GetResponseRange().Count == 0 {
			err = store.ErrNotFound
		}
		if err == nil {
			for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
				var n int
				n, err = strconv.Atoi(strings.TrimPrefix(string(kv.Key), s.prefix("versions", id)))
				if err != nil || n < 1 {
					err = fmt.Errorf("version key %q: %w", kv.Key, errCorrupt)
					break
				}
				var v store.Version
				if v, err = decodeVersion(id, n, kv.Value); err != nil {
					break
				}
				out = append(out, v)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("store: list versions of flow %s: %w", q(id), err)
	}
	return out, nil
}

// GetVersion returns version n (1, 2, ...) of a flow.
func (s *Store) GetVersion(ctx context.Context, id string, n int) (store.Version, error) {
	err := store.CheckName("flow id", id, store.MaxNameLen)
	if err == nil && n < 1 {
		err = fmt.Errorf("version %d: %w", n, store.ErrInvalid)
	}
	var v store.Version
	if err == nil {
		var resp *clientv3.TxnResponse
		err = s.call(ctx, func(ctx context.Context) (err error) {
			resp, err = s.cli.Txn(ctx).Then(
				clientv3.OpGet(s.flowKey(id), clientv3.WithCountOnly()),
				clientv3.OpGet(s.versionKey(id, n)),
			).Commit()
			return err
		})
		switch {
		case err != nil:
		case resp.Responses[0].GetResponseRange().Count == 0:
			err = store.ErrNotFound
		case len(resp.Responses[1].GetResponseRange().Kvs) == 0:
			err = fmt.Errorf("version %d: %w", n, store.ErrNotFound)
		default:
			v, err = decodeVersion(id, n, resp.Responses[1].GetResponseRange().Kvs[0].Value)
		}
	}
	if err != nil {
		return store.Version{}, fmt.Errorf("store: get version %d of flow %s: %w", n, q(id), err)
	}
	return v, nil
}
