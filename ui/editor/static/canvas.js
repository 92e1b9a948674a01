// canvas.js: the SVG canvas. Everything is built on pointer events (not
// HTML5 drag-and-drop). Geometry comes from the model (fixed node sizes),
// and the canvas rectangle is read once per gesture on pointerdown, so
// pointermove handlers never read layout: they only set transforms and
// path data.

import { wireKey } from './model.js';

const SVG = 'http://www.w3.org/2000/svg';
export const NODE_W = 180;
const HEAD = 36;
const ROW = 18;

export function nodeHeight(nports) { return HEAD + Math.max(1, nports) * ROW + 6; }
const portY = (i) => HEAD + ROW / 2 + i * ROW;

function el(name, attrs = {}, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// Far zoom (below FAR_K) swaps each node's title and type line for the
// title alone in up to two lines, in a font that grows as the view shrinks
// (up to FAR_MAX world px), so a fitted flow stays readable.
export const FAR_K = 0.9;
const FAR_MAX = 16;
const FAR_CHARS = 17; // characters per line at FAR_MAX in NODE_W

export const NOTE_W = 220;
const NOTE_CHARS = 30;

// noteLines wraps a note's text to NOTE_W (at most 30 lines shown).
export function noteLines(text) {
  const out = [];
  for (const para of String(text || '').split('\n')) {
    let line = '';
    for (const w of para.split(/\s+/).filter(Boolean)) {
      if (!line) line = w;
      else if ((line + ' ' + w).length <= NOTE_CHARS) line += ' ' + w;
      else { out.push(line); line = w; }
      while (line.length > NOTE_CHARS) { out.push(line.slice(0, NOTE_CHARS)); line = line.slice(NOTE_CHARS); }
    }
    out.push(line);
  }
  while (out.length && out[out.length - 1] === '') out.pop();
  return out.slice(0, 30);
}

const TITLE_CHARS = 21; // of the 13 px title in NODE_W

function clip(s, n) { return s.length > n ? s.slice(0, n - 1) + '…' : s; }

// titleLines splits a title into at most two lines of FAR_CHARS.
export function titleLines(s) {
  const words = s.split(/\s+/).filter(Boolean);
  const lines = [''];
  for (const w of words) {
    const cur = lines[lines.length - 1];
    if (!cur) lines[lines.length - 1] = w;
    else if ((cur + ' ' + w).length <= FAR_CHARS) lines[lines.length - 1] = cur + ' ' + w;
    else lines.push(w);
  }
  const out = lines.slice(0, 2).map((l) => (l.length > FAR_CHARS ? l.slice(0, FAR_CHARS - 1) + '…' : l));
  if (lines.length > 2 && !out[1].endsWith('…')) out[1] = (out[1].length >= FAR_CHARS ? out[1].slice(0, FAR_CHARS - 1) : out[1]) + '…';
  return out;
}

function bezier(x1, y1, x2, y2) {
  const dx = Math.max(40, Math.abs(x2 - x1) / 2);
  return `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`;
}

export class Canvas extends EventTarget {
  constructor(svg, model, stats) {
    super();
    this.svg = svg;
    this.model = model;
    this.stats = stats;
    this.viewport = svg.querySelector('.fe-viewport');
    this.wiresG = svg.querySelector('.fe-wires');
    this.nodesG = svg.querySelector('.fe-nodes');
    this.notesG = svg.querySelector('.fe-notes');
    this.noteEls = new Map(); // id -> {g, n, h}
    this.selectedNotes = new Set();
    this.ghost = svg.querySelector('.fe-ghost');
    this.band = svg.querySelector('.fe-band');
    this.view = { x: 40, y: 40, k: 1 };
    this.selected = new Set();
    this.selectedWires = new Set();
    this.nodeEls = new Map(); // id -> {g, ports: [..], h}
    this.wireEls = new Map(); // key -> {path, w}
    this.gesture = null;
    this.pointers = new Map();
    svg.addEventListener('pointerdown', (e) => this.down(e));
    svg.addEventListener('wheel', (e) => this.wheel(e), { passive: false });
    this.onMove = (e) => this.move(e);
    this.onUp = (e) => this.up(e);
    window.addEventListener('pointermove', this.onMove);
    window.addEventListener('pointerup', this.onUp);
    window.addEventListener('pointercancel', this.onUp);
    this.applyView();
  }

  // ---- rendering --------------------------------------------------------

  render() {
    this.renderNotes();
    this.nodesG.replaceChildren();
    this.wiresG.replaceChildren();
    this.nodeEls.clear();
    this.wireEls.clear();
    for (const n of this.model.doc.nodes) this.renderNode(n);
    for (const w of this.model.doc.wires) this.renderWire(w);
    for (const id of [...this.selected]) if (!this.nodeEls.has(id)) this.selected.delete(id);
    for (const k of [...this.selectedWires]) if (!this.wireEls.has(k)) this.selectedWires.delete(k);
    this.paintSelection();
  }

  renderNode(n) {
    const ports = this.model.ports(n);
    const h = nodeHeight(ports.length);
    const spec = this.model.spec(n.type);
    const g = el('g', { class: 'fe-node', 'data-node': n.id, 'data-testid': `node-${n.id}`, transform: `translate(${n.x},${n.y})` });
    if (spec && spec.trigger) g.classList.add('fe-trigger');
    if (!spec) g.classList.add('fe-unknown');
    if (n.disabled) g.classList.add('fe-disabled');
    g.append(el('rect', { class: 'fe-node-body', width: NODE_W, height: h, rx: 6 }));
    const title = n.name || n.id;
    g.append(el('title', {}, `${title} (${n.id}, ${n.type})`));
    g.append(el('text', { class: 'fe-node-title', x: 10, y: 16, 'data-testid': `title-${n.id}` }, clip(title, TITLE_CHARS)));
    g.append(el('text', { class: 'fe-node-type', x: 10, y: 30 }, clip(n.type, 26)));
    const far = el('text', { class: 'fe-node-far', x: 8, y: 16, 'data-testid': `far-${n.id}` });
    const lines = titleLines(n.name || n.id);
    lines.forEach((l, i) => far.append(el('tspan', { x: 8, y: lines.length === 1 ? 24 : 15 + i * 17 }, l)));
    g.append(far);
    if (this.model.hasInput(n)) {
      g.append(el('circle', { class: 'fe-port fe-in', cx: 0, cy: portY(0), r: 7, 'data-port-in': n.id, 'data-testid': `in-${n.id}` }));
    }
    ports.forEach((p, i) => {
      g.append(el('text', { class: 'fe-port-label', x: NODE_W - 12, y: portY(i) + 4, 'text-anchor': 'end' }, p));
      g.append(el('circle', { class: `fe-port fe-out${p === 'error' ? ' fe-err-port' : ''}`, cx: NODE_W, cy: portY(i), r: 7,
        'data-port-out': p, 'data-node': n.id, 'data-testid': `out-${n.id}-${p}` }));
    });
    const badge = el('text', { class: 'fe-badge', x: NODE_W - 8, y: -6, 'text-anchor': 'end', 'data-testid': `badge-${n.id}` });
    const inv = el('circle', { class: 'fe-mark fe-mark-invalid', cx: 8, cy: -2, r: 6, 'data-testid': `invalid-${n.id}` });
    inv.append(el('title', {}, 'invalid: see the side panel'));
    const und = el('circle', { class: 'fe-mark fe-mark-undeployed', cx: 24, cy: -2, r: 6, 'data-testid': `undeployed-${n.id}` });
    und.append(el('title', {}, 'changed since the deployed version'));
    // A lint warning is a triangle, so it reads apart from the round
    // error and undeployed marks also without colour.
    const warn = el('path', { class: 'fe-mark fe-mark-warning', d: 'M40,-9 L47,4 L33,4 Z', 'data-testid': `warning-${n.id}` });
    warn.append(el('title', {}, 'lint warning: see the side panel (warnings do not block deploy)'));
    g.append(badge, inv, und, warn);
    if (n.disabled) {
      g.append(el('text', { class: 'fe-disabled-tag', x: 10, y: h - 6, 'data-testid': `disabled-${n.id}` }, 'disabled'));
    }
    this.nodesG.append(g);
    this.nodeEls.set(n.id, { g, ports, h, badge, n });
    this.paintBadge(n.id);
    this.paintMarks(n.id);
  }

  renderNotes() {
    this.notesG.replaceChildren();
    this.noteEls.clear();
    for (const n of this.model.notes()) {
      const lines = noteLines(n.text);
      const h = 16 + Math.max(1, lines.length) * 17;
      const g = el('g', { class: 'fe-note', 'data-note': n.id, 'data-testid': `note-${n.id}`, transform: `translate(${n.x},${n.y})` });
      g.append(el('rect', { class: 'fe-note-body', width: NOTE_W, height: h, rx: 3 }));
      const text = el('text', { class: 'fe-note-text', x: 10, y: 12 });
      (lines.length ? lines : ['(empty note)']).forEach((l, i) => text.append(el('tspan', { x: 10, y: 22 + i * 17 }, l)));
      g.append(text);
      this.notesG.append(g);
      this.noteEls.set(n.id, { g, n, h });
    }
    for (const id of [...this.selectedNotes]) if (!this.noteEls.has(id)) this.selectedNotes.delete(id);
  }

  // refreshNode re-renders one node and its wires (a config edit may
  // change its title or ports) without touching the other nodes.
  refreshNode(id) {
    const old = this.nodeEls.get(id);
    const n = this.model.node(id);
    if (!old || !n) return this.render();
    const next = old.g.nextSibling;
    old.g.remove();
    this.nodeEls.delete(id);
    this.renderNode(n);
    const fresh = this.nodeEls.get(id);
    this.nodesG.insertBefore(fresh.g, next);
    for (const [k, we] of [...this.wireEls]) {
      if (we.w.from === id || we.w.to === id) { we.path.remove(); this.wireEls.delete(k); }
    }
    for (const w of this.model.doc.wires) if (w.from === id || w.to === id) this.renderWire(w);
    for (const k of [...this.selectedWires]) if (!this.wireEls.has(k)) this.selectedWires.delete(k);
    fresh.g.classList.toggle('fe-selected', this.selected.has(id));
  }

  portPos(id, port) {
    const e = this.nodeEls.get(id);
    if (!e) return null;
    if (port === null) return [e.n.x, e.n.y + portY(0)];
    const i = e.ports.indexOf(port);
    return [e.n.x + NODE_W, e.n.y + portY(i < 0 ? 0 : i)];
  }

  renderWire(w) {
    const a = this.portPos(w.from, w.port), b = this.portPos(w.to, null);
    if (!a || !b) return;
    const key = wireKey(w);
    const path = el('path', { class: `fe-wire${w.port === 'error' ? ' fe-err-wire' : ''}`, d: bezier(a[0], a[1], b[0], b[1]),
      'data-wire': key, 'data-testid': `wire-${w.from}-${w.port}-${w.to}` });
    this.wiresG.append(path);
    this.wireEls.set(key, { path, w });
  }

  updateWire(entry) {
    const { w, path } = entry;
    const a = this.portPos(w.from, w.port), b = this.portPos(w.to, null);
    if (a && b) path.setAttribute('d', bezier(a[0], a[1], b[0], b[1]));
  }

  setMarks(invalid, undeployed, warned = new Set()) {
    this.marks = { invalid, undeployed, warned };
    for (const id of this.nodeEls.keys()) this.paintMarks(id);
  }

  paintMarks(id) {
    const e = this.nodeEls.get(id), m = this.marks;
    if (!e || !m) return;
    e.g.classList.toggle('fe-invalid', m.invalid.has(id));
    e.g.classList.toggle('fe-undeployed', m.undeployed.has(id));
    e.g.classList.toggle('fe-warned', m.warned.has(id));
  }

  setBadges(nodes) {
    this.badges = nodes;
    for (const id of this.nodeEls.keys()) this.paintBadge(id);
  }

  paintBadge(id) {
    const e = this.nodeEls.get(id);
    const s = (this.badges || {})[id];
    e.badge.textContent = s ? (s.error ? 'error' : s.port || 'end') : '';
    e.g.classList.toggle('fe-ran-error', !!(s && (s.error || s.port === 'error')));
    e.g.classList.toggle('fe-ran', !!s);
  }

  // ---- selection --------------------------------------------------------

  select(ids, add = false) {
    if (!add) { this.selected.clear(); this.selectedWires.clear(); this.selectedNotes.clear(); }
    for (const id of ids) this.selected.add(id);
    this.paintSelection();
  }

  selectNote(id, add = false) {
    if (!add) { this.selected.clear(); this.selectedWires.clear(); this.selectedNotes.clear(); }
    this.selectedNotes.add(id);
    this.paintSelection();
  }

  paintSelection() {
    for (const [id, e] of this.noteEls) e.g.classList.toggle('fe-selected', this.selectedNotes.has(id));
    for (const [id, e] of this.nodeEls) e.g.classList.toggle('fe-selected', this.selected.has(id));
    for (const [k, e] of this.wireEls) e.path.classList.toggle('fe-selected', this.selectedWires.has(k));
    this.dispatchEvent(new CustomEvent('select'));
  }

  // ---- view -------------------------------------------------------------

  applyView() {
    const { x, y, k } = this.view;
    this.viewport.setAttribute('transform', `translate(${x},${y}) scale(${k})`);
    if (k !== this.lastK) { // not on pan: only a zoom restyles the titles
      this.lastK = k;
      const far = k < FAR_K;
      this.svg.classList.toggle('fe-far', far);
      if (far) {
        this.svg.style.setProperty('--fe-far-title', `${Math.min(FAR_MAX, 10.5 / k).toFixed(2)}px`);
        this.svg.style.setProperty('--fe-far-port', `${Math.min(15, 10 / k).toFixed(2)}px`);
      }
    }
    this.dispatchEvent(new CustomEvent('view'));
  }

  // visibleWorld is the part of the world the canvas shows, less a margin.
  visibleWorld(margin = 16) {
    const r = this.svg.getBoundingClientRect();
    const [x0, y0] = this.toWorld(margin, margin);
    const [x1, y1] = this.toWorld(r.width - margin, r.height - margin);
    return { x0, y0, x1, y1 };
  }

  // freeSpot returns the top-left corner closest to (x, y) where a node of
  // height h overlaps no other node (with a gap) and lies fully on the
  // visible canvas; (x, y) clamped onto the canvas if there is none.
  freeSpot(x, y, h) {
    const v = this.visibleWorld();
    const gap = 16;
    const clampX = (px) => Math.max(v.x0, Math.min(px, v.x1 - NODE_W));
    const clampY = (py) => Math.max(v.y0 + 12, Math.min(py, v.y1 - h));
    const rects = this.model.doc.nodes.map((n) => {
      const e = this.nodeEls.get(n.id);
      return [n.x - gap, n.y - 12 - gap, n.x + NODE_W + gap, n.y + (e ? e.h : 60) + gap];
    });
    for (const e of this.noteEls.values()) rects.push([e.n.x - gap, e.n.y - gap, e.n.x + NOTE_W + gap, e.n.y + e.h + gap]);
    const free = (px, py) => rects.every(([a, b, c, d]) => px + NODE_W <= a || px >= c || py + h <= b || py - 12 >= d);
    const fits = (px, py) => px >= v.x0 && py - 12 >= v.y0 && px + NODE_W <= v.x1 && py + h <= v.y1;
    const sx = clampX(x), sy = clampY(y);
    const step = 20;
    for (let ring = 0; ring <= 60; ring++) {
      let best = null, bestD = Infinity;
      for (let i = -ring; i <= ring; i++) {
        for (const [dx, dy] of [[i, -ring], [i, ring], [-ring, i], [ring, i]]) {
          const px = sx + dx * step, py = sy + dy * step;
          if (!fits(px, py) || !free(px, py)) continue;
          const d = Math.hypot(px - x, py - y);
          if (d < bestD) { best = [px, py]; bestD = d; }
        }
      }
      if (best) return best;
    }
    return [sx, sy];
  }

  // focusNode centers the view on a node (zooming in to at least 100%).
  focusNode(id) {
    const e = this.nodeEls.get(id);
    if (!e) return;
    const r = this.svg.getBoundingClientRect();
    const k = Math.max(this.view.k, 1);
    this.view = { k, x: r.width / 2 - (e.n.x + NODE_W / 2) * k, y: r.height / 2 - (e.n.y + e.h / 2) * k };
    this.applyView();
  }

  setMatches(ids) {
    for (const [id, e] of this.nodeEls) e.g.classList.toggle('fe-match', ids.has(id));
  }

  zoomAt(px, py, factor) {
    const k = Math.min(4, Math.max(0.1, this.view.k * factor));
    const f = k / this.view.k;
    this.view.x = px - (px - this.view.x) * f;
    this.view.y = py - (py - this.view.y) * f;
    this.view.k = k;
    this.applyView();
  }

  zoomCenter(factor) {
    const r = this.svg.getBoundingClientRect();
    this.zoomAt(r.width / 2, r.height / 2, factor);
  }

  reset() { this.view = { x: 40, y: 40, k: 1 }; this.applyView(); }

  fit() {
    const ns = this.model.doc.nodes;
    if (!ns.length && !this.noteEls.size) return this.reset();
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const n of ns) {
      const e = this.nodeEls.get(n.id);
      x0 = Math.min(x0, n.x); y0 = Math.min(y0, n.y - 12);
      x1 = Math.max(x1, n.x + NODE_W); y1 = Math.max(y1, n.y + (e ? e.h : 60));
    }
    for (const e of this.noteEls.values()) {
      x0 = Math.min(x0, e.n.x); y0 = Math.min(y0, e.n.y);
      x1 = Math.max(x1, e.n.x + NOTE_W); y1 = Math.max(y1, e.n.y + e.h);
    }
    const r = this.svg.getBoundingClientRect();
    const pad = 20;
    const k = Math.min(1.25, Math.max(0.1, Math.min((r.width - 2 * pad) / (x1 - x0 || 1), (r.height - 2 * pad) / (y1 - y0 || 1))));
    this.view = { k, x: pad - x0 * k + ((r.width - 2 * pad) - (x1 - x0) * k) / 2, y: pad - y0 * k + ((r.height - 2 * pad) - (y1 - y0) * k) / 2 };
    this.applyView();
  }

  // center of the visible area in world coordinates
  center() {
    const r = this.svg.getBoundingClientRect();
    return this.toWorld(r.width / 2, r.height / 2);
  }

  toWorld(sx, sy) { return [(sx - this.view.x) / this.view.k, (sy - this.view.y) / this.view.k]; }

  clientToWorld(cx, cy, rect) { return this.toWorld(cx - rect.left, cy - rect.top); }

  wheel(e) {
    e.preventDefault();
    const r = this.svg.getBoundingClientRect();
    const d = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
    this.zoomAt(e.clientX - r.left, e.clientY - r.top, Math.exp(-d * (e.ctrlKey ? 0.01 : 0.0015)));
  }

  // ---- gestures ---------------------------------------------------------

  down(e) {
    if (e.button !== 0 && e.pointerType === 'mouse') return;
    this.svg.focus({ preventScroll: true });
    const rect = this.svg.getBoundingClientRect(); // the one layout read per gesture
    this.pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    const t = e.target;
    if (this.pointers.size === 2 && this.gesture && (this.gesture.type === 'pan' || this.gesture.type === 'band')) {
      const [p1, p2] = [...this.pointers.values()];
      this.gesture = { type: 'pinch', rect, d0: Math.hypot(p1.x - p2.x, p1.y - p2.y), view0: { ...this.view },
        m0: [(p1.x + p2.x) / 2 - rect.left, (p1.y + p2.y) / 2 - rect.top] };
      this.band.setAttribute('visibility', 'hidden');
      return;
    }
    const out = t.closest && t.closest('[data-port-out]');
    if (out) {
      const from = out.getAttribute('data-node'), port = out.getAttribute('data-port-out');
      const a = this.portPos(from, port);
      this.gesture = { type: 'wire', rect, from, port, a, hover: null };
      this.ghost.setAttribute('d', bezier(a[0], a[1], a[0], a[1]));
      this.svg.classList.add('fe-wiring');
      for (const [id, en] of this.nodeEls) {
        en.g.classList.toggle('fe-can-drop', !this.model.canWire(from, port, id));
      }
      e.preventDefault();
      return;
    }
    const wire = t.closest && t.closest('[data-wire]');
    if (wire) {
      const k = wire.getAttribute('data-wire');
      if (!e.shiftKey) { this.selected.clear(); this.selectedWires.clear(); }
      if (this.selectedWires.has(k) && e.shiftKey) this.selectedWires.delete(k); else this.selectedWires.add(k);
      this.paintSelection();
      return;
    }
    const note = t.closest && t.closest('.fe-note');
    if (note) {
      const id = note.getAttribute('data-note');
      if (!this.selectedNotes.has(id) || this.selected.size) this.selectNote(id, e.shiftKey);
      const en = this.noteEls.get(id);
      this.gesture = { type: 'move', rect, sx: e.clientX, sy: e.clientY, moving: [{ en, x0: en.n.x, y0: en.n.y }], wires: [], before: this.model.snapshot(), moved: false };
      e.preventDefault();
      return;
    }
    const ng = t.closest && t.closest('.fe-node');
    if (ng) {
      const id = ng.getAttribute('data-node');
      if (e.shiftKey) {
        if (this.selected.has(id)) this.selected.delete(id); else this.selected.add(id);
        this.paintSelection();
      } else if (!this.selected.has(id)) {
        this.select([id]);
      }
      if (!this.selected.has(id)) return;
      const moving = [...this.selected].map((sid) => this.nodeEls.get(sid)).filter(Boolean).map((en) => ({ en, x0: en.n.x, y0: en.n.y }));
      const ids = new Set(moving.map((m) => m.en.n.id));
      const wires = [...this.wireEls.values()].filter((we) => ids.has(we.w.from) || ids.has(we.w.to));
      this.gesture = { type: 'move', rect, sx: e.clientX, sy: e.clientY, moving, wires, before: this.model.snapshot(), moved: false };
      e.preventDefault();
      return;
    }
    // background
    if (e.shiftKey) {
      const [wx, wy] = this.clientToWorld(e.clientX, e.clientY, rect);
      this.gesture = { type: 'band', rect, sx: e.clientX - rect.left, sy: e.clientY - rect.top, wx, wy };
    } else {
      this.gesture = { type: 'pan', rect, sx: e.clientX, sy: e.clientY, x0: this.view.x, y0: this.view.y, moved: false };
    }
    e.preventDefault();
  }

  move(e) {
    const g = this.gesture;
    if (!g) return;
    const t0 = performance.now();
    if (this.pointers.has(e.pointerId)) this.pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    switch (g.type) {
      case 'move': {
        const dx = (e.clientX - g.sx) / this.view.k, dy = (e.clientY - g.sy) / this.view.k;
        if (!g.moved && Math.abs(dx) + Math.abs(dy) < 2) break;
        g.moved = true;
        for (const m of g.moving) {
          m.en.n.x = Math.round(m.x0 + dx);
          m.en.n.y = Math.round(m.y0 + dy);
          m.en.g.setAttribute('transform', `translate(${m.en.n.x},${m.en.n.y})`);
        }
        for (const we of g.wires) this.updateWire(we);
        break;
      }
      case 'wire': {
        const [x, y] = this.clientToWorld(e.clientX, e.clientY, g.rect);
        this.ghost.setAttribute('d', bezier(g.a[0], g.a[1], x, y));
        const target = e.target && e.target.closest && e.target.closest('.fe-node');
        const id = target ? target.getAttribute('data-node') : null;
        if (id !== g.hover) {
          if (g.hover && this.nodeEls.get(g.hover)) this.nodeEls.get(g.hover).g.classList.remove('fe-drop-ok', 'fe-drop-no');
          g.hover = id;
          if (id) target.classList.add(this.model.canWire(g.from, g.port, id) ? 'fe-drop-no' : 'fe-drop-ok');
        }
        break;
      }
      case 'pan': {
        g.moved = true;
        this.view.x = g.x0 + e.clientX - g.sx;
        this.view.y = g.y0 + e.clientY - g.sy;
        this.applyView();
        break;
      }
      case 'band': {
        const x = e.clientX - g.rect.left, y = e.clientY - g.rect.top;
        this.band.setAttribute('x', Math.min(x, g.sx));
        this.band.setAttribute('y', Math.min(y, g.sy));
        this.band.setAttribute('width', Math.abs(x - g.sx));
        this.band.setAttribute('height', Math.abs(y - g.sy));
        this.band.setAttribute('visibility', 'visible');
        break;
      }
      case 'pinch': {
        const [p1, p2] = [...this.pointers.values()];
        if (!p2) break;
        const d = Math.hypot(p1.x - p2.x, p1.y - p2.y);
        const m = [(p1.x + p2.x) / 2 - g.rect.left, (p1.y + p2.y) / 2 - g.rect.top];
        const k = Math.min(4, Math.max(0.1, g.view0.k * d / (g.d0 || 1)));
        const f = k / g.view0.k;
        this.view = { k, x: m[0] - (g.m0[0] - g.view0.x) * f, y: m[1] - (g.m0[1] - g.view0.y) * f };
        this.applyView();
        break;
      }
    }
    if (this.stats) { this.stats.moves++; this.stats.moveMs += performance.now() - t0; }
  }

  up(e) {
    this.pointers.delete(e.pointerId);
    const g = this.gesture;
    if (!g) return;
    if (g.type === 'pinch') {
      if (this.pointers.size === 0) this.gesture = null;
      return;
    }
    this.gesture = null;
    switch (g.type) {
      case 'move':
        if (g.moved) this.model.checkpoint(g.before);
        break;
      case 'wire': {
        this.ghost.setAttribute('d', '');
        this.svg.classList.remove('fe-wiring');
        for (const en of this.nodeEls.values()) en.g.classList.remove('fe-can-drop', 'fe-drop-ok', 'fe-drop-no');
        const hit = document.elementFromPoint(e.clientX, e.clientY);
        const target = hit && hit.closest && hit.closest('.fe-node');
        if (!target) break;
        const why = this.model.addWire(g.from, g.port, target.getAttribute('data-node'));
        if (why) this.dispatchEvent(new CustomEvent('refused', { detail: why }));
        break;
      }
      case 'band': {
        this.band.setAttribute('visibility', 'hidden');
        const [wx, wy] = this.clientToWorld(e.clientX, e.clientY, g.rect);
        const x0 = Math.min(wx, g.wx), x1 = Math.max(wx, g.wx), y0 = Math.min(wy, g.wy), y1 = Math.max(wy, g.wy);
        const hits = [];
        for (const [id, en] of this.nodeEls) {
          if (en.n.x < x1 && en.n.x + NODE_W > x0 && en.n.y < y1 && en.n.y + en.h > y0) hits.push(id);
        }
        this.select(hits, true);
        break;
      }
      case 'pan':
        if (!g.moved) this.select([]);
        break;
    }
  }

  // moveSelection nudges the selected nodes (arrow keys).
  moveSelection(dx, dy) {
    if (!this.selected.size) return;
    const ids = new Set(this.selected);
    this.model.change((d) => { for (const n of d.nodes) if (ids.has(n.id)) { n.x += dx; n.y += dy; } }, { merge: 'nudge' });
  }
}
