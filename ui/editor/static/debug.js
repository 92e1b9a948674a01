// debug.js: the runs list (traces per node, values truncated by the
// server, the full value on demand), live node badges over SSE, and the
// "try it" form that calls an http.in endpoint of this flow. All from the
// admin API: GET /flows/{id}/runs?view=summary, .../runs/{run}/steps/{i}
// and the event stream GET /flows/{id}/events.

import { API } from './api.js';

const NOT_CAPTURED = 'message not captured';

// LIGHT_NOTE explains a light run (the trace's "light" flag). Try-it
// requests count against the rate like any other request.
const LIGHT_NOTE = 'Light run: this flow ran more often than its snapshot rate allows, so its messages were not kept. ' +
  'A failing step keeps its message; runs started by hand through the API always keep theirs.';

function h(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const REDACTED = '[redacted]';

// jsonTree renders a value as collapsible JSON (objects and lists in
// <details>, open to depth 2), with redacted values marked. Text only.
export function jsonTree(v, key = null, depth = 0) {
  const keyEl = () => h('span', { class: 'fe-j-key' }, `${JSON.stringify(key)}: `);
  if (v !== null && typeof v === 'object') {
    const list = Array.isArray(v);
    const entries = list ? v.map((x, i) => [i, x]) : Object.keys(v).map((k) => [k, v[k]]);
    const d = h('details', { class: 'fe-j-node' });
    d.open = depth < 2;
    const sum = h('summary');
    if (key !== null) sum.append(keyEl());
    sum.append(list ? '[' : '{', h('span', { class: 'fe-j-count' }, ` ${entries.length} ${list ? 'items' : 'keys'} `));
    d.append(sum);
    const body = h('div', { class: 'fe-j-body' });
    for (const [k, x] of entries) body.append(jsonTree(x, list ? null : k, depth + 1));
    d.append(body, h('div', { class: 'fe-j-close' }, list ? ']' : '}'));
    return d;
  }
  const row = h('div', { class: 'fe-j-row' });
  if (key !== null) row.append(keyEl());
  const val = h('span', { class: `fe-j-val fe-j-${v === null ? 'null' : typeof v}` }, JSON.stringify(v));
  if (v === REDACTED) {
    val.classList.add('fe-j-redacted');
    val.setAttribute('title', 'Redacted in the trace: tokens, keys and secrets are never recorded');
    val.dataset.testid = 'redacted';
  }
  row.append(val);
  return row;
}

// showValue fills box with a message: a tree when it is whole JSON, the
// text as it is when it was cut.
function showValue(box, text) {
  let v;
  try { v = JSON.parse(text); } catch { box.textContent = text; box.classList.add('fe-step-cut'); return; }
  box.classList.remove('fe-step-cut');
  box.replaceChildren(jsonTree(v));
}

// Headers a replayed request does not copy: the browser sets them, or
// they are the old request's own.
const SKIP_HEADERS = new Set(['host', 'content-length', 'connection', 'accept-encoding', 'cookie', 'origin', 'referer', 'user-agent', 'x-forwarded-for']);

export class Debug {
  constructor(root, flowID, api, canvas) {
    this.root = root;
    this.flowID = flowID;
    this.api = api;
    this.canvas = canvas;
    this.list = root.querySelector('[data-testid="runs"]');
    this.badges = {};
    this.hl = new Set();
    this.list.addEventListener('click', (e) => { this.full(e); this.again(e); });
    this.doc = null;
    const form = root.querySelector('[data-testid="try-form"]');
    form.addEventListener('submit', (e) => { e.preventDefault(); this.tryIt(form); });
  }

  async load() {
    let runs, cluster, note;
    try {
      ({ data: { runs, nodes: cluster, note } } = await this.api.get(`${API}/flows/${encodeURIComponent(this.flowID)}/runs?view=summary&limit=20`));
    } catch {
      return;
    }
    this.multi = (cluster || []).length > 1;
    const items = runs.map((r) => this.renderRun(r));
    // On a cluster each node keeps its own runs: say whose are missing.
    for (const n of cluster || []) {
      if (!n.ok) items.unshift(h('li', { class: 'fe-run-note', 'data-testid': `runs-missing-${n.node}` }, `Runs of node ${n.node} are not shown: ${n.error}`));
    }
    if (note) items.unshift(h('li', { class: 'fe-run-note', 'data-testid': 'runs-note' }, note));
    this.list.replaceChildren(...items);
    this.highlight(this.hl);
    if (runs.length && !Object.keys(this.badges).length) {
      const nodes = {};
      for (const r of [...runs].reverse()) for (const s of r.steps) nodes[s.node] = { port: s.port, error: s.error };
      this.setBadges(nodes);
    }
  }

  renderRun(r) {
    const li = h('li', { 'data-testid': `run-${r.id}`, 'data-status': r.status, 'data-light': String(!!r.light), class: `fe-run fe-run-${r.status}` });
    const d = h('details');
    const when = new Date(r.started).toLocaleTimeString();
    const sum = h('summary', { class: 'fe-run-sum' });
    const outcome = r.http_status ? String(r.http_status) : r.status;
    const oc = h('span', { class: `fe-run-status ${r.status === 'error' || r.http_status >= 500 ? 'fe-bad' : r.http_status >= 400 ? 'fe-warn' : 'fe-good'}`, 'data-testid': 'outcome' }, outcome);
    const trig = h('span', { class: 'fe-run-trigger', 'data-testid': 'trigger-name', title: `${r.trigger} (${r.trigger_type || 'trigger'})` }, r.trigger_name || r.trigger);
    sum.append(oc, ' ', trig, ' ', h('span', { class: 'fe-run-when' }, `${when} · ${(r.duration_ns / 1e6).toFixed(1)} ms`));
    if (r.light) sum.append(' ', h('span', { class: 'fe-run-tag', title: 'Messages not kept for this run' }, 'light'));
    if (r.node && this.multi) sum.append(' ', h('span', { class: 'fe-run-tag', 'data-testid': 'run-node', title: 'The cluster node that ran it' }, r.node));
    d.append(sum);
    if (r.steps.length && r.steps[0].captured) {
      d.append(h('button', { type: 'button', class: 'fe-again', 'data-again': r.id, 'data-trigger': r.trigger, 'data-trigger-type': r.trigger_type || '', 'data-testid': 'again' }, 'Run again with this input'));
    }
    if (r.error) d.append(h('p', { class: 'fe-run-error' }, `${r.error_node ? r.error_node + ': ' : ''}${r.error}`));
    if (r.light) d.append(h('p', { class: 'fe-run-note', 'data-testid': 'light-note' }, LIGHT_NOTE));
    // The run's distributed trace: search the tracing backend by this id
    // (its run span carries the run id as flowd.run.id).
    if (r.trace_id) d.append(h('p', { class: 'fe-run-note', 'data-testid': 'trace-id', title: `span ${r.span_id}` }, `Run ${r.id} · trace ${r.trace_id}`));
    r.steps.forEach((s, i) => {
      const row = h('div', { class: 'fe-step', 'data-testid': `step-${r.id}-${i}`, 'data-node': s.node, 'data-port': s.port || '', 'data-captured': String(s.captured) });
      row.append(h('strong', {}, s.node), h('span', { class: 'fe-step-port' }, ` → ${s.error ? 'error: ' + s.error : s.port || '(end)'}`));
      if (!s.captured) {
        row.append(h('p', { class: 'fe-step-none' }, NOT_CAPTURED));
      } else {
        const box = h('div', { class: 'fe-step-msg' });
        showValue(box, s.preview);
        row.append(box);
        if (s.truncated) row.append(h('button', { type: 'button', 'data-full': `${r.id}/${i}` }, 'Full value'));
      }
      d.append(row);
    });
    li.append(d);
    return li;
  }

  async full(e) {
    const b = e.target.closest('[data-full]');
    if (!b) return;
    const [run, i] = b.dataset.full.split('/');
    try {
      const { data } = await this.api.get(`${API}/flows/${encodeURIComponent(this.flowID)}/runs/${encodeURIComponent(run)}/steps/${i}`);
      const box = b.previousElementSibling;
      if (data.captured) box.replaceChildren(jsonTree(data.msg)); else box.textContent = NOT_CAPTURED;
      box.classList.remove('fe-step-cut');
      b.remove();
    } catch (err) {
      b.textContent = err.message;
    }
  }

  // again runs the flow once more with a recorded run's input: an HTTP
  // run goes into the try-it form (sent at once unless a header was
  // redacted, which the person types again); any other trigger runs
  // through the admin API.
  async again(e) {
    const b = e.target.closest('[data-again]');
    if (!b) return;
    const note = (text) => { const out = this.root.querySelector('[data-testid="try-result"]'); out.textContent = text; };
    let msg;
    try {
      const { data } = await this.api.get(`${API}/flows/${encodeURIComponent(this.flowID)}/runs/${encodeURIComponent(b.dataset.again)}/steps/0`);
      if (!data.captured) throw new Error('the input of this run was not kept');
      msg = data.msg;
    } catch (err) {
      b.textContent = `Cannot run again: ${err.message}`;
      return;
    }
    if (b.dataset.triggerType === 'http.in' && msg && msg.req) {
      const req = msg.req;
      const form = this.root.querySelector('[data-testid="try-form"]');
      const qs = new URLSearchParams();
      for (const [k, vs] of Object.entries(req.query_all || {})) for (const v of [].concat(vs)) qs.append(k, v);
      form.method.value = req.method || 'GET';
      form.path.value = (req.path || '/') + (qs.toString() ? `?${qs}` : '');
      const lines = [], redacted = [];
      for (const [k, v] of Object.entries(req.headers || {})) {
        const name = k.toLowerCase();
        if (SKIP_HEADERS.has(name) || name.startsWith('sec-')) continue;
        for (const one of [].concat(v)) {
          if (one === REDACTED) redacted.push(k); else lines.push(`${k}: ${one}`);
        }
      }
      for (const k of redacted) lines.push(`${k}: `);
      form.headers.value = lines.join('\n');
      const body = msg.body;
      form.body.value = body === undefined || body === null ? '' : typeof body === 'string' ? body : JSON.stringify(body, null, 2);
      const box = this.root.querySelector('[data-testid="try"]');
      box.hidden = false;
      box.open = true;
      if (redacted.length) {
        note(`${redacted.join(', ')} ${redacted.length === 1 ? 'was' : 'were'} redacted in the trace: type ${redacted.length === 1 ? 'it' : 'them'} in Headers, then Send.`);
        form.headers.focus();
      } else {
        this.tryIt(form);
      }
      return;
    }
    try {
      const { data } = await this.api.post(`${API}/flows/${encodeURIComponent(this.flowID)}/run`, { body: { node: b.dataset.trigger, input: msg } });
      note(`Ran again: ${data.status || 'done'}${data.error ? ` (${data.error})` : ''}.`);
    } catch (err) {
      note(`Could not run again: ${err.message}`);
    }
    this.load();
  }

  // highlight marks the steps of the selected nodes in every run.
  highlight(ids) {
    this.hl = new Set(ids);
    for (const s of this.list.querySelectorAll('.fe-step')) s.classList.toggle('fe-step-hl', this.hl.has(s.dataset.node));
  }

  setBadges(nodes) {
    this.badges = nodes;
    this.canvas.setBadges(nodes);
  }

  // reload coalesces the loads a burst of run events asks for: one in
  // flight and at most one after it (on a cluster each load asks every node).
  reload() {
    if (this.loading) {
      this.reloadPending = true;
      return;
    }
    this.loading = this.load().finally(() => {
      this.loading = null;
      if (this.reloadPending) {
        this.reloadPending = false;
        this.reload();
      }
    });
  }

  listen() {
    const es = new EventSource(`${API}/flows/${encodeURIComponent(this.flowID)}/events`);
    es.addEventListener('run', (e) => {
      const ev = JSON.parse(e.data);
      this.setBadges({ ...this.badges, ...ev.nodes }); // each node keeps its latest outcome
      this.reload();
    });
    let opened = false;
    // A stream lasts a while, then reconnects: catch up on runs missed in between.
    es.addEventListener('open', () => { if (opened) this.reload(); opened = true; });
    this.es = es;
  }

  // prefill uses the flow's first http.in node for the try-it form.
  prefill(doc) {
    const n = doc.nodes.find((x) => x.type === 'http.in');
    const box = this.root.querySelector('[data-testid="try"]');
    box.hidden = !n;
    if (!n) return;
    const c = n.config || {};
    const form = this.root.querySelector('[data-testid="try-form"]');
    if (c.path && form.path.value === '/') form.path.value = c.path;
    if (c.method && c.method !== 'ANY') form.method.value = c.method;
  }

  async tryIt(form) {
    const out = this.root.querySelector('[data-testid="try-result"]');
    const path = form.path.value.trim();
    if (!path.startsWith('/') || path.startsWith('//')) {
      out.textContent = 'The path must start with a single "/": the request goes to this server.';
      return;
    }
    const headers = new Headers();
    for (const line of form.headers.value.split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) {
        try { headers.append(line.slice(0, i).trim(), line.slice(i + 1).trim()); } catch (err) { out.textContent = err.message; return; }
      }
    }
    const method = form.method.value;
    const body = method === 'GET' || method === 'HEAD' || form.body.value === '' ? undefined : form.body.value;
    out.textContent = '…';
    try {
      const resp = await fetch(path, { method, headers, body, credentials: 'omit', redirect: 'manual' });
      const text = await resp.text();
      const hs = [...resp.headers].map(([k, v]) => `${k}: ${v}`).join('\n');
      out.textContent = `${resp.status} ${resp.statusText}\n${hs}\n\n${text}`;
      out.dataset.status = String(resp.status);
    } catch (err) {
      out.textContent = `request failed: ${err.message}`;
    }
  }
}
