// editor.js: boots the flow editor page. It loads the block specs and the
// flow, then wires the model, the canvas, the side panel, the debug panel,
// the toolbar and the keyboard together.

import { client, HTTPError, API, etagRev } from './api.js';
import { Model, diff, wireKey } from './model.js';
import { Canvas, NODE_W, nodeHeight } from './canvas.js';
import { bindLayout } from './layout.js';
import { bindFind } from './find.js';
import { copyFragment, pasteFragment, MAX_PASTE } from './clipboard.js';
import { Panel } from './panel.js';
import { Debug } from './debug.js';

const root = document.getElementById('flowd-editor');
const flowID = root.dataset.flow;
const api = client(root.dataset.csrf || '');
const $ = (sel) => root.querySelector(sel);
const statusEl = $('[data-testid="status"]');

function setStatus(text, kind = 'info') {
  statusEl.textContent = text;
  statusEl.dataset.kind = kind;
}

async function boot() {
  const [{ data: blocks }, { data: state }] = await Promise.all([
    api.get(`${API}/blocks`),
    api.get(`${API}/flows/${encodeURIComponent(flowID)}/state`),
  ]);
  const specs = new Map(blocks.blocks.map((s) => [s.type, s]));
  const model = new Model(state.draft, specs);
  const stats = { moves: 0, moveMs: 0 };
  const canvas = new Canvas($('[data-testid="canvas"]'), model, stats);
  const panel = new Panel($('[data-testid="panel"]'), model, api);
  const debug = new Debug($('[data-testid="debug"]'), flowID, api, canvas);
  const ed = { model, canvas, panel, debug, stats, rev: state.rev, deployed: state.deployed, saved: model.json(), problems: [], warnings: [], conflict: false };
  root.flowd = ed; // a handle for tests and the console

  buildPalette(ed, blocks.blocks);
  ed.layout = bindLayout(root, () => canvas.applyView());

  let validateTimer = 0;
  const scheduleValidate = () => { clearTimeout(validateTimer); validateTimer = setTimeout(() => validate(ed), 250); };

  model.addEventListener('change', (e) => {
    const { kind, id } = e.detail;
    if (kind === 'config' && id) canvas.refreshNode(id);
    else if (kind === 'note') { canvas.renderNotes(); canvas.paintSelection(); }
    else if (kind !== 'moved') canvas.render();
    if (kind === 'doc') panel.refresh(ed.problems);
    refreshMarks(ed);
    scheduleValidate();
    debug.prefill(model.doc);
  });
  canvas.addEventListener('select', () => {
    const ids = [...canvas.selected];
    debug.highlight(ids);
    if (!ids.length && canvas.selectedNotes.size === 1) {
      const [nid] = canvas.selectedNotes;
      if (panel.noteID !== nid) panel.showNote(nid);
    } else if (ids.length === 1) {
      if (panel.nodeID !== ids[0]) panel.show(ids[0]);
    } else {
      panel.empty(ids.length ? `${ids.length} nodes selected.` : 'Select a node to edit its settings.');
    }
  });
  canvas.addEventListener('refused', (e) => setStatus(`Wire refused: ${e.detail}`, 'warn'));
  canvas.addEventListener('view', () => { $('[data-testid="zoom"]').textContent = `${Math.round(canvas.view.k * 100)}%`; });

  const t0 = performance.now();
  canvas.render();
  canvas.fit();
  stats.renderMs = performance.now() - t0;
  refreshMarks(ed);
  debug.prefill(model.doc);
  await validate(ed);
  debug.listen(); // first, so no run falls between the list and the stream
  await debug.load();
  bindToolbar(ed);
  bindKeys(ed);
  window.addEventListener('beforeunload', (e) => {
    // After a conflict the changes are kept in sessionStorage for the reload.
    if (!ed.conflict && model.json() !== ed.saved) e.preventDefault();
  });
  offerRestore(ed);
  ed.readyAt = performance.now();
  root.dataset.ready = 'true';
}

function offerRestore(ed) {
  let doc = null;
  try { doc = JSON.parse(sessionStorage.getItem(backupKey) || 'null'); } catch { doc = null; }
  if (!doc || !Array.isArray(doc.nodes) || !Array.isArray(doc.wires)) return;
  const banner = $('[data-testid="restore"]');
  banner.hidden = false;
  const done = () => { sessionStorage.removeItem(backupKey); banner.hidden = true; };
  $('[data-testid="restore-apply"]').addEventListener('click', () => {
    ed.model.change((d) => {
      d.nodes = doc.nodes;
      d.wires = doc.wires;
      d.name = doc.name;
      d.description = doc.description;
    });
    done();
    setStatus('Your changes are back on top of the latest version (Undo takes them out). Review, then save or deploy.', 'warn');
  });
  $('[data-testid="restore-discard"]').addEventListener('click', done);
}

function refreshMarks(ed) {
  const d = diff(ed.model.doc, ed.deployed);
  const undeployed = new Set([...d.added, ...d.changed]);
  const invalid = new Set(ed.problems.map((p) => p.node).filter(Boolean));
  // A warning silenced in this tab since the last validation is gone at once.
  const warned = new Set(ed.warnings.filter((w) => {
    const n = w.node && ed.model.node(w.node);
    return n && !(n.lint_ignore || []).includes(w.check);
  }).map((w) => w.node));
  ed.canvas.setMarks(invalid, undeployed, warned);
  const pending = $('[data-testid="pending"]');
  pending.textContent = String(d.count);
  $('[data-testid="pending-label"]').textContent = d.count === 1 ? ' change' : ' changes';
  $('[data-testid="deploy"]').title = `Save and deploy (Ctrl+Enter). Changes since the deployed version: ${d.added.size} nodes added, ${d.removedNodes} removed, ${d.changed.size} changed; ${d.wiresAdded} wires added, ${d.wiresRemoved} removed`;
  $('[data-testid="deploy"]').dataset.pending = String(d.count);
  $('[data-testid="undo"]').disabled = !ed.model.undoStack.length;
  $('[data-testid="redo"]').disabled = !ed.model.redoStack.length;
  const dirty = ed.model.json() !== ed.saved;
  root.dataset.dirty = String(dirty);
}

// validate asks the API: 200 when the document is valid, 422 with its
// problems (node, field) otherwise; lint warnings come with either.
async function validate(ed) {
  try {
    const { data } = await api.post(`${API}/validate`, { body: ed.model.doc });
    ed.problems = [];
    ed.warnings = data.warnings || [];
  } catch (err) {
    if (!(err instanceof HTTPError) || err.status !== 422 || !err.body) return;
    ed.problems = err.body.error.problems || [{ message: err.body.error.message }];
    ed.warnings = err.body.warnings || [];
  }
  refreshMarks(ed);
  ed.panel.showErrors(ed.problems);
  ed.panel.showWarnings(ed.warnings);
  root.dataset.valid = String(!ed.problems.length);
}

const backupKey = `flowd-editor:${flowID}`;

function showConflict(ed, msg) {
  ed.conflict = true;
  // Kept for the reload the message asks for: the reloaded page offers
  // to put these changes back on top of the newer version.
  try { sessionStorage.setItem(backupKey, ed.model.json()); } catch { /* storage full or off: the tab still has them */ }
  const banner = $('[data-testid="conflict"]');
  $('[data-testid="conflict-message"]').textContent = msg;
  banner.hidden = false;
  setStatus('Not saved: the flow changed elsewhere.', 'error');
}

// deployedText says where a deployed version runs: on a cluster, how many
// nodes applied it and why the others did not (yet).
function deployedText(data) {
  const nodes = data.nodes || [];
  if (nodes.length <= 1 && data.complete !== false) return `Deployed version ${data.version}.`;
  if (data.note) return `Deployed version ${data.version} (runs on this node): ${data.note}.`;
  let text = `Deployed version ${data.version}: runs on ${data.applied} of ${nodes.length} nodes.`;
  for (const n of nodes) {
    if (n.state === 'failed') text += ` Node ${n.node} failed: ${n.error}.`;
    else if (n.state === 'behind') text += ` Node ${n.node} has not applied it yet${n.error ? ` (last error: ${n.error})` : ''}.`;
  }
  return text;
}

// save stores the draft (and deploys it) with If-Match: the revision this
// tab loaded. A 412 keeps everything in the tab and says why.
// Deploy is the API's save-then-deploy: the document in the body, the same
// If-Match; the new revision comes back as the ETag, also on a 422.
async function save(ed, deploy) {
  const url = `${API}/flows/${encodeURIComponent(flowID)}${deploy ? '/deploy' : ''}`;
  const body = ed.model.json();
  setStatus(deploy ? 'Deploying…' : 'Saving…');
  try {
    const { resp, data } = await (deploy ? api.post : api.put)(url, { body, headers: { 'If-Match': `"${ed.rev}"` } });
    ed.rev = etagRev(resp) || data.rev;
    ed.saved = body;
    if (deploy) {
      ed.deployed = JSON.parse(body);
      setStatus(deployedText(data), data.complete === false ? 'warn' : 'ok');
    } else {
      setStatus('Draft saved.', 'ok');
    }
  } catch (err) {
    if (!(err instanceof HTTPError)) { setStatus(`Not saved: ${err.message}`, 'error'); return; }
    if (err.status === 412) {
      // The API's code is "conflict"; what it means for this tab is ours to say.
      showConflict(ed, 'This flow was changed in another tab or by someone else: reload to see it. Your changes are kept in this tab.');
    } else if (err.status === 422 && err.body && etagRev(err)) {
      ed.rev = etagRev(err);
      ed.saved = body;
      ed.problems = err.body.error.problems || [];
      ed.panel.showErrors(ed.problems);
      setStatus(`Saved, not deployed: ${ed.problems.length} problem(s). ${ed.problems[0] ? ed.problems[0].message : ''}`, 'error');
    } else {
      setStatus(`Not saved: ${err.message}`, 'error');
    }
  }
  refreshMarks(ed);
}

function buildPalette(ed, blocks) {
  const pal = $('[data-testid="palette"]');
  let cat = null;
  for (const s of blocks) {
    if (s.category !== cat) {
      cat = s.category;
      const h = document.createElement('h3');
      h.textContent = cat;
      pal.append(h);
    }
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'fe-block' + (s.trigger ? ' fe-block-trigger' : '');
    b.dataset.type = s.type;
    b.dataset.testid = `palette-${s.type}`;
    b.setAttribute('data-testid', `palette-${s.type}`);
    b.title = s.description || '';
    const t = document.createElement('span');
    t.textContent = s.title;
    const ty = document.createElement('small');
    ty.textContent = s.type;
    b.append(t, ty);
    pal.append(b);
  }
  const filter = $('[data-testid="palette-filter"]');
  filter.addEventListener('input', () => {
    const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    let heading = null, shown = 0;
    const close = () => { if (heading) heading.hidden = shown === 0; };
    for (const el of pal.querySelectorAll('h3, [data-type]')) {
      if (el.tagName === 'H3') { close(); heading = el; shown = 0; continue; }
      const text = el.textContent.toLowerCase(); // title and type
      el.hidden = !words.every((w) => text.includes(w));
      if (!el.hidden) shown++;
    }
    close();
  });
  let drag = null;
  // New blocks land in free space on the visible canvas, as near the
  // wanted point as there is room.
  const heightOf = (type) => nodeHeight(ed.model.ports({ type }).length);
  const addAt = (type, x, y) => {
    const h = heightOf(type);
    const [px, py] = ed.canvas.freeSpot(x - NODE_W / 2, y - h / 2, h);
    const id = ed.model.addNode(type, px, py);
    ed.canvas.select([id]);
    setStatus(`Added ${id}.`);
  };
  const addAtCenter = (type) => {
    const [x, y] = ed.canvas.center();
    addAt(type, x, y);
  };
  // Keyboard activation (Enter/Space) arrives as a click with detail 0.
  pal.addEventListener('click', (e) => {
    const b = e.target.closest('[data-type]');
    if (b && e.detail === 0) addAtCenter(b.dataset.type);
  });
  pal.addEventListener('pointerdown', (e) => {
    const b = e.target.closest('[data-type]');
    if (!b || e.button !== 0) return;
    e.preventDefault();
    drag = { type: b.dataset.type, sx: e.clientX, sy: e.clientY, ghost: null, rect: ed.canvas.svg.getBoundingClientRect() };
  });
  window.addEventListener('pointermove', (e) => {
    if (!drag) return;
    if (!drag.ghost && Math.abs(e.clientX - drag.sx) + Math.abs(e.clientY - drag.sy) > 4) {
      drag.ghost = document.createElement('div');
      drag.ghost.className = 'fe-drag-ghost';
      drag.ghost.textContent = drag.type;
      document.body.append(drag.ghost);
    }
    if (drag.ghost) drag.ghost.style.transform = `translate(${e.clientX + 4}px, ${e.clientY + 4}px)`;
  });
  window.addEventListener('pointerup', (e) => {
    if (!drag) return;
    const d = drag;
    drag = null;
    if (!d.ghost) return addAtCenter(d.type);
    d.ghost.remove();
    const r = d.rect;
    if (e.clientX < r.left || e.clientX > r.right || e.clientY < r.top || e.clientY > r.bottom) return;
    const [x, y] = ed.canvas.clientToWorld(e.clientX, e.clientY, r);
    addAt(d.type, x, y);
  });
}

function deleteSelection(ed) {
  ed.model.remove([...ed.canvas.selected], [...ed.canvas.selectedWires], [...ed.canvas.selectedNotes]);
  ed.canvas.select([]);
}

function addNote(ed) {
  const [cx, cy] = ed.canvas.center();
  const [x, y] = ed.canvas.freeSpot(cx - 110, cy - 30, 60);
  const id = ed.model.addNote(x, y);
  ed.canvas.selectNote(id);
  setStatus(`Added ${id}: type its text in the side panel.`);
}

function bindToolbar(ed) {
  const actions = {
    undo: () => ed.model.undo(),
    redo: () => ed.model.redo(),
    delete: () => deleteSelection(ed),
    'zoom-in': () => ed.canvas.zoomCenter(1.2),
    'zoom-out': () => ed.canvas.zoomCenter(1 / 1.2),
    fit: () => ed.canvas.fit(),
    reset: () => ed.canvas.reset(),
    save: () => save(ed, false),
    deploy: () => save(ed, true),
    help: () => $('[data-testid="help-dialog"]').showModal(),
    'toggle-palette': () => ed.layout.toggle('palette'),
    'toggle-side': () => ed.layout.toggle('side'),
    duplicate: () => duplicate(ed),
    note: () => addNote(ed),
    disable: () => toggleDisabled(ed),
  };
  $('.fe-toolbar').addEventListener('click', (e) => {
    const b = e.target.closest('[data-action]');
    if (b && actions[b.dataset.action]) actions[b.dataset.action]();
  });
  ed.actions = actions;
}

// toggleDisabled disables the selected nodes, or enables them when all
// of them are disabled already.
function toggleDisabled(ed) {
  const ids = [...ed.canvas.selected];
  if (!ids.length) { setStatus('Select nodes to disable or enable (D).', 'warn'); return; }
  const on = !ids.every((id) => ed.model.node(id) && ed.model.node(id).disabled);
  ed.model.setDisabled(ids, on);
  ed.canvas.paintSelection();
  const box = $('[data-testid="node-disabled"]');
  if (box && ids.includes(ed.panel.nodeID)) box.checked = on;
  setStatus(`${on ? 'Disabled' : 'Enabled'} ${ids.length === 1 ? ids[0] : `${ids.length} nodes`}.`);
}

function duplicate(ed) {
  const frag = copyFragment(ed.model.doc, ed.canvas.selected);
  if (!frag) return;
  const ids = pasteFragment(ed.model, frag, 40, 40);
  ed.canvas.select(ids);
  setStatus(`Duplicated ${ids.length} node(s).`);
}

// The clipboard holds flow JSON ({"schema": "flowd/v1", "nodes", "wires"}):
// the system clipboard when the browser lets the page use it (copy and
// paste events), and localStorage, shared by the tabs of this origin, so a
// copy in one flow's tab pastes into another's.
const clipKey = 'flowd-editor:clipboard';

function copySelection(ed, cut) {
  const frag = copyFragment(ed.model.doc, ed.canvas.selected);
  if (!frag) return null;
  const text = JSON.stringify(frag, null, 2);
  try { localStorage.setItem(clipKey, text); } catch { /* storage off: the system clipboard may still work */ }
  if (cut) deleteSelection(ed);
  setStatus(`${cut ? 'Cut' : 'Copied'} ${frag.nodes.length} node(s) as flow JSON.`);
  return text;
}

function paste(ed, text) {
  let frag;
  try { frag = JSON.parse(text); } catch { return false; }
  if (!frag || !Array.isArray(frag.nodes) || !frag.nodes.length) return false;
  const [cx, cy] = ed.canvas.center();
  const some = frag.nodes.slice(0, MAX_PASTE).filter((n) => n && typeof n === 'object');
  if (!some.length) return false;
  const xs = some.map((n) => Number(n.x) || 0), ys = some.map((n) => Number(n.y) || 0);
  const bw = Math.max(...xs) - Math.min(...xs) + NODE_W, bh = Math.max(...ys) - Math.min(...ys) + 80;
  const [px, py] = ed.canvas.freeSpot(cx - bw / 2, cy - bh / 2, bh);
  const ids = pasteFragment(ed.model, frag, px - Math.min(...xs), py - Math.min(...ys));
  if (!ids.length) return false;
  ed.canvas.select(ids);
  setStatus(`Pasted ${ids.length} node(s).`);
  return true;
}

function bindClipboard(ed) {
  const editable = (t) => t && t.closest && t.closest('input, textarea, select, [contenteditable="true"], dialog');
  // Text the person selected (a trace, a help text) is theirs to copy.
  const textSelected = () => { const sel = window.getSelection(); return !!sel && !sel.isCollapsed && String(sel).trim() !== ''; };
  let pending = false;
  let last = { text: null, at: 0 };
  const copy = (cut) => {
    if (textSelected()) return null;
    const text = copySelection(ed, cut);
    if (text) last = { text, at: Date.now() };
    return text;
  };
  // The key handler copies first; the copy/cut event that follows puts the
  // same text on the system clipboard.
  const onCopy = (cut) => (e) => {
    if (editable(e.target) || textSelected()) return;
    const text = Date.now() - last.at < 1000 ? last.text : (ed.canvas.selected.size ? copy(cut) : null);
    if (text && e.clipboardData) { e.clipboardData.setData('text/plain', text); e.preventDefault(); }
  };
  document.addEventListener('copy', onCopy(false));
  document.addEventListener('cut', onCopy(true));
  // Ctrl+V: the paste event that follows the key (same task) may bring
  // flow JSON from the system clipboard; when it does not, the key's
  // release pastes the localStorage copy. No timers: a background tab's
  // are throttled.
  document.addEventListener('paste', (e) => {
    if (editable(e.target)) return;
    const text = e.clipboardData ? e.clipboardData.getData('text/plain') : '';
    if (text && paste(ed, text)) { pending = false; e.preventDefault(); }
  });
  document.addEventListener('keyup', (e) => {
    if (!pending || e.key.toLowerCase() !== 'v') return;
    pending = false;
    let text = null;
    try { text = localStorage.getItem(clipKey); } catch { text = null; }
    if (!text || !paste(ed, text)) setStatus('Nothing to paste: copy nodes first (Ctrl+C).', 'warn');
  });
  return {
    copy,
    paste: () => { pending = true; },
  };
}

function bindKeys(ed) {
  const clip = bindClipboard(ed);
  const find = bindFind(root, ed, setStatus);
  // N adds a note when the key comes up, not down: the key's character
  // (a separate event after keydown, e.g. from a remote-controlled
  // browser) must not land in the note's text, which has the focus then.
  let noteKey = false;
  document.addEventListener('keyup', (e) => {
    if (!noteKey || (e.key !== 'n' && e.key !== 'N')) return;
    noteKey = false;
    ed.actions.note();
  });
  document.addEventListener('keydown', (e) => {
    const t = e.target;
    const mod = e.ctrlKey || e.metaKey;
    if (mod && e.key.toLowerCase() === 'f') { e.preventDefault(); find.focus(); return; }
    if (t.closest && t.closest('input, textarea, select, [contenteditable="true"], dialog')) return;
    const a = ed.actions;
    let done = true;
    if (mod && e.key.toLowerCase() === 'c') { clip.copy(false); done = false; } // the copy event follows
    else if (mod && e.key.toLowerCase() === 'x') { clip.copy(true); done = false; }
    else if (mod && e.key.toLowerCase() === 'v') { clip.paste(); done = false; }
    else if (mod && e.key.toLowerCase() === 'd') a.duplicate();
    else if (mod && e.key.toLowerCase() === 'z') (e.shiftKey ? a.redo : a.undo)();
    else if (mod && e.key.toLowerCase() === 'y') a.redo();
    else if (mod && e.key.toLowerCase() === 's') a.save();
    else if (mod && e.key === 'Enter') a.deploy();
    else if (mod && e.key.toLowerCase() === 'a') ed.canvas.select(ed.model.doc.nodes.map((n) => n.id));
    else if (mod) done = false;
    else if (e.key === 'Delete' || e.key === 'Backspace') a.delete();
    else if (e.key === '?') a.help();
    else if (e.key === 'f' || e.key === 'F') a.fit();
    else if (e.key === 'd' || e.key === 'D') a.disable();
    else if (e.key === 'b' || e.key === 'B') a['toggle-palette']();
    else if (e.key === 'n' || e.key === 'N') noteKey = true; // the note comes on keyup (below)
    else if (e.key === 'p' || e.key === 'P') a['toggle-side']();
    else if (e.key === '0') a.reset();
    else if (e.key === '+' || e.key === '=') a['zoom-in']();
    else if (e.key === '-') a['zoom-out']();
    else if (e.key === 'Escape') ed.canvas.select([]);
    else if (e.key.startsWith('Arrow')) {
      const s = e.shiftKey ? 10 : 1;
      const [dx, dy] = { ArrowLeft: [-s, 0], ArrowRight: [s, 0], ArrowUp: [0, -s], ArrowDown: [0, s] }[e.key];
      ed.canvas.moveSelection(dx * 4, dy * 4);
    } else done = false;
    if (done) e.preventDefault();
  });
}

boot().catch((err) => {
  setStatus(`The editor could not start: ${err.message}`, 'error');
  root.dataset.ready = 'error';
});

export { wireKey };
