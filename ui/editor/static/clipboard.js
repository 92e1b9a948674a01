// clipboard.js: copy and paste of nodes as flow JSON. A fragment is a
// flow document of the selected nodes and the wires between them; pasting
// gives every node an id free in the target flow and rewires accordingly.

export function copyFragment(doc, selected) {
  const ids = new Set(selected);
  if (!ids.size) return null;
  const nodes = doc.nodes.filter((n) => ids.has(n.id)).map((n) => JSON.parse(JSON.stringify(n)));
  if (!nodes.length) return null;
  const wires = doc.wires.filter((w) => ids.has(w.from) && ids.has(w.to)).map((w) => ({ ...w }));
  return { schema: 'flowd/v1', nodes, wires };
}

const isStr = (v) => typeof v === 'string' && v !== '';
// engine.ValidID's rule; a pasted id outside it gets a fresh one.
const VALID_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
// A paste is a person's selection, not a flow import: a bounded number.
export const MAX_PASTE = 500;

// pasteFragment adds the fragment's nodes shifted by (dx, dy) as one undo
// step and returns their new ids. Anything that is not a node (no id or
// type) is skipped; wires whose ends were not pasted are dropped.
export function pasteFragment(model, frag, dx, dy) {
  const rename = new Map();
  const nodes = [];
  const taken = new Set(model.doc.nodes.map((n) => n.id));
  for (const n of (frag.nodes || []).slice(0, MAX_PASTE)) {
    if (!n || !isStr(n.id) || !isStr(n.type) || rename.has(n.id)) continue;
    let id = VALID_ID.test(n.id) ? n.id : model.newID(n.type);
    if (taken.has(id)) {
      const base = id.replace(/_\d+$/, '');
      for (let i = 2; taken.has(id); i++) id = `${base}_${i}`;
    }
    taken.add(id);
    rename.set(n.id, id);
    const num = (v) => (Number.isFinite(Number(v)) ? Number(v) : 0);
    const out = { id, type: n.type, x: Math.round(num(n.x) + dx), y: Math.round(num(n.y) + dy) };
    if (isStr(n.name)) out.name = n.name;
    if (n.config && typeof n.config === 'object' && !Array.isArray(n.config)) out.config = JSON.parse(JSON.stringify(n.config));
    nodes.push(out);
  }
  if (!nodes.length) return [];
  const wires = [];
  for (const w of frag.wires || []) {
    if (!w || !rename.has(w.from) || !rename.has(w.to) || !isStr(w.port)) continue;
    wires.push({ from: rename.get(w.from), port: w.port, to: rename.get(w.to) });
  }
  model.change((d) => { d.nodes.push(...nodes); d.wires.push(...wires); });
  return nodes.map((n) => n.id);
}
