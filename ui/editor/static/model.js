// model.js: the flow document being edited, its undo/redo history, and
// the rules for what may be wired and what counts as a change vs deployed.

export function stableStringify(v) {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return '[' + v.map(stableStringify).join(',') + ']';
  return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + stableStringify(v[k])).join(',') + '}';
}

const wireKey = (w) => `${w.from}\u0000${w.port}\u0000${w.to}`;

export class Model extends EventTarget {
  constructor(doc, specs) {
    super();
    this.doc = doc;
    this.doc.nodes = this.doc.nodes || [];
    this.doc.wires = this.doc.wires || [];
    if (!Array.isArray(this.doc.notes)) delete this.doc.notes; // absent, not empty: the saved document stays as it was
    this.specs = specs; // type -> spec
    this.undoStack = [];
    this.redoStack = [];
    this.lastMerge = null;
  }

  node(id) { return this.doc.nodes.find((n) => n.id === id); }

  spec(type) { return this.specs.get(type); }

  // ports lists a node's output ports: the spec's, dynamic ones from the
  // fields the spec marks as naming ports (the rules of core.switch, the
  // outputs of core.call), and the implicit error port of non-triggers.
  ports(n) {
    const s = this.spec(n.type);
    if (!s) return ['error'];
    const out = [...(s.outputs || [])];
    if (s.dynamic) {
      for (const f of s.fields || []) {
        if (!f.ports) continue;
        const v = (n.config || {})[f.name];
        if (!Array.isArray(v)) continue;
        for (const e of v) {
          const name = f.kind === 'rules' ? e && e.name : e;
          if (typeof name === 'string' && name && name !== 'error' && !out.includes(name)) out.push(name);
        }
      }
    }
    if (!s.trigger) out.push('error');
    return out;
  }

  hasInput(n) {
    const s = this.spec(n.type);
    return !(s && s.trigger);
  }

  // canWire says why a wire may not be made, or '' if it may.
  canWire(from, port, to) {
    const a = this.node(from), b = this.node(to);
    if (!a || !b) return 'no such node';
    if (from === to) return 'a node cannot be wired to itself';
    if (!this.hasInput(b)) return `${b.type} is a trigger: it has no input`;
    if (!this.ports(a).includes(port)) return `no port ${port}`;
    if (this.doc.wires.some((w) => w.from === from && w.port === port && w.to === to)) return 'already wired';
    return '';
  }

  snapshot() { return JSON.stringify({ nodes: this.doc.nodes, wires: this.doc.wires, notes: this.doc.notes }); }

  restore(s) {
    const v = JSON.parse(s);
    this.doc.nodes = v.nodes;
    this.doc.wires = v.wires;
    if (v.notes) this.doc.notes = v.notes; else delete this.doc.notes;
  }

  notes() { return this.doc.notes || []; }

  note(id) { return this.notes().find((n) => n.id === id); }

  addNote(x, y, text = '') {
    let id = 'note';
    for (let i = 2; this.note(id); i++) id = `note_${i}`;
    this.change((d) => { (d.notes = d.notes || []).push({ id, text, x: Math.round(x), y: Math.round(y) }); });
    return id;
  }

  setNoteText(id, text) {
    this.change((d) => {
      const n = (d.notes || []).find((x) => x.id === id);
      if (n) n.text = text;
    }, { merge: `note/${id}`, kind: 'note', id });
  }

  // change records an undo step then applies fn. merge, if given, folds
  // consecutive changes with the same key (typing in one field) into one step.
  change(fn, { merge = null, kind = 'doc', id = null } = {}) {
    const now = Date.now();
    if (!(merge && this.lastMerge && this.lastMerge.key === merge && now - this.lastMerge.at < 1500)) {
      this.undoStack.push(this.snapshot());
      if (this.undoStack.length > 200) this.undoStack.shift();
    }
    this.lastMerge = merge ? { key: merge, at: now } : null;
    this.redoStack = [];
    fn(this.doc);
    this.emit(kind, id);
  }

  // checkpoint records an undo step for a change already applied in place
  // (a drag updates positions live, then commits once).
  checkpoint(before) {
    this.undoStack.push(before);
    this.redoStack = [];
    this.lastMerge = null;
    this.emit('moved');
  }

  undo() { this.travel(this.undoStack, this.redoStack); }

  redo() { this.travel(this.redoStack, this.undoStack); }

  // travel takes one step of history: the state on top of from comes
  // back, the current one goes on to.
  travel(from, to) {
    if (!from.length) return;
    to.push(this.snapshot());
    this.restore(from.pop());
    this.lastMerge = null;
    this.emit('doc');
  }

  emit(kind, id = null) { this.dispatchEvent(new CustomEvent('change', { detail: { kind, id } })); }

  newID(type) {
    let base = (type.split('.').pop() || 'node').replace(/[^A-Za-z0-9_.-]/g, '_');
    if (!/^[A-Za-z0-9]/.test(base)) base = 'n' + base;
    let id = base;
    for (let i = 2; this.node(id); i++) id = `${base}_${i}`;
    return id;
  }

  addNode(type, x, y) {
    const id = this.newID(type);
    this.change((d) => d.nodes.push({ id, type, x: Math.round(x), y: Math.round(y) }));
    return id;
  }

  addWire(from, port, to) {
    const why = this.canWire(from, port, to);
    if (why) return why;
    this.change((d) => d.wires.push({ from, port, to }));
    return '';
  }

  remove(nodeIDs, wireKeys, noteIDs = []) {
    const ns = new Set(nodeIDs), ws = new Set(wireKeys), cs = new Set(noteIDs);
    if (!ns.size && !ws.size && !cs.size) return;
    this.change((d) => {
      d.nodes = d.nodes.filter((n) => !ns.has(n.id));
      d.wires = d.wires.filter((w) => !ns.has(w.from) && !ns.has(w.to) && !ws.has(wireKey(w)));
      if (d.notes) {
        d.notes = d.notes.filter((n) => !cs.has(n.id));
        if (!d.notes.length) delete d.notes;
      }
    });
  }

  setConfig(id, field, value) {
    this.change((d) => {
      const n = d.nodes.find((x) => x.id === id);
      if (!n) return;
      n.config = { ...(n.config || {}) };
      if (value === undefined) delete n.config[field];
      else n.config[field] = value;
      if (!Object.keys(n.config).length) delete n.config;
    }, { merge: `${id}/${field}`, kind: 'config', id });
  }

  setName(id, name) {
    this.change((d) => {
      const n = d.nodes.find((x) => x.id === id);
      if (!n) return;
      if (name) n.name = name; else delete n.name;
    }, { merge: `${id}/name`, kind: 'config', id });
  }

  // setDisabled disables (or enables) nodes: kept in the document,
  // skipped at run time. One undo step for the whole selection.
  setDisabled(ids, on) {
    const set = new Set(ids);
    if (!this.doc.nodes.some((n) => set.has(n.id) && !!n.disabled !== on)) return;
    this.change((d) => {
      for (const n of d.nodes) {
        if (!set.has(n.id)) continue;
        if (on) n.disabled = true; else delete n.disabled;
      }
    }, { kind: 'config', id: ids.length === 1 ? ids[0] : null });
  }

  // silence adds (on) or removes a lint check id from a node's
  // lint_ignore, which the engine keeps sorted and free of duplicates.
  silence(id, check, on = true) {
    const n = this.node(id);
    if (!n || (n.lint_ignore || []).includes(check) === on) return;
    this.change((d) => {
      const x = d.nodes.find((m) => m.id === id);
      const l = (x.lint_ignore || []).filter((c) => c !== check);
      if (on) l.push(check);
      l.sort();
      if (l.length) x.lint_ignore = l; else delete x.lint_ignore;
    }, { kind: 'config', id });
  }

  json() { return JSON.stringify(this.doc); }
}

export { wireKey };

// diff compares the draft with the deployed document (null: never
// deployed). Moves do not count: they change nothing that runs.
export function diff(draft, deployed) {
  const res = { changed: new Set(), added: new Set(), removedNodes: 0, wiresAdded: 0, wiresRemoved: 0, count: 0 };
  const old = new Map(((deployed && deployed.nodes) || []).map((n) => [n.id, n]));
  const cur = new Set();
  for (const n of draft.nodes) {
    cur.add(n.id);
    const o = old.get(n.id);
    if (!o) res.added.add(n.id);
    else if (o.type !== n.type || (o.name || '') !== (n.name || '') || !!o.disabled !== !!n.disabled ||
      stableStringify(o.config || {}) !== stableStringify(n.config || {})) res.changed.add(n.id);
  }
  for (const id of old.keys()) if (!cur.has(id)) res.removedNodes++;
  const ow = new Set(((deployed && deployed.wires) || []).map(wireKey));
  const nw = new Set(draft.wires.map(wireKey));
  for (const k of nw) if (!ow.has(k)) res.wiresAdded++;
  for (const k of ow) if (!nw.has(k)) res.wiresRemoved++;
  res.count = res.added.size + res.changed.size + res.removedNodes + res.wiresAdded + res.wiresRemoved;
  return res;
}
