// debug.js: the runs list (traces per node, values truncated by the
// server, the full value on demand), live node badges over SSE, and the
// "try it" form that calls an http.in endpoint of this flow.

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

export class Debug {
  constructor(root, flowID, api, canvas) {
    this.root = root;
    this.flowID = flowID;
    this.api = api;
    this.canvas = canvas;
    this.list = root.querySelector('[data-testid="runs"]');
    this.badges = {};
    this.hl = new Set();
    this.list.addEventListener('click', (e) => this.full(e));
    const form = root.querySelector('[data-testid="try-form"]');
    form.addEventListener('submit', (e) => { e.preventDefault(); this.tryIt(form); });
  }

  async load() {
    let runs;
    try {
      ({ data: { runs } } = await this.api.get(`/admin/editor/flows/${encodeURIComponent(this.flowID)}/runs`));
    } catch {
      return;
    }
    const items = runs.map((r) => this.renderRun(r));
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
    const sum = h('summary', {}, `${when} ${r.status} via ${r.trigger} (${(r.duration_ns / 1e6).toFixed(1)} ms)`);
    if (r.light) sum.append(' ', h('span', { class: 'fe-run-tag', title: 'Messages not kept for this run' }, 'light'));
    d.append(sum);
    if (r.error) d.append(h('p', { class: 'fe-run-error' }, `${r.error_node ? r.error_node + ': ' : ''}${r.error}`));
    if (r.light) d.append(h('p', { class: 'fe-run-note', 'data-testid': 'light-note' }, LIGHT_NOTE));
    r.steps.forEach((s, i) => {
      const row = h('div', { class: 'fe-step', 'data-testid': `step-${r.id}-${i}`, 'data-node': s.node, 'data-port': s.port || '', 'data-captured': String(s.captured) });
      row.append(h('strong', {}, s.node), h('span', { class: 'fe-step-port' }, ` → ${s.error ? 'error: ' + s.error : s.port || '(end)'}`));
      if (!s.captured) {
        row.append(h('p', { class: 'fe-step-none' }, NOT_CAPTURED));
      } else {
        row.append(h('pre', { class: 'fe-step-msg' }, s.preview));
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
      const { data } = await this.api.get(`/admin/editor/flows/${encodeURIComponent(this.flowID)}/runs/${encodeURIComponent(run)}/steps/${i}`);
      b.previousElementSibling.textContent = data.captured ? JSON.stringify(data.msg, null, 2) : NOT_CAPTURED;
      b.remove();
    } catch (err) {
      b.textContent = err.message;
    }
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

  listen() {
    const es = new EventSource(`/admin/editor/events?flow=${encodeURIComponent(this.flowID)}`);
    es.addEventListener('run', (e) => {
      const ev = JSON.parse(e.data);
      this.setBadges({ ...this.badges, ...ev.nodes }); // each node keeps its latest outcome
      this.load();
    });
    let opened = false;
    // A stream lasts a while, then reconnects: catch up on runs missed in between.
    es.addEventListener('open', () => { if (opened) this.load(); opened = true; });
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
