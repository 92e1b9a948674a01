// panel.js: the side panel. The form of the selected node is rendered on
// the server from its block spec (our own templ-escaped HTML, parsed with
// a <template>); edits go back into the model field by field.

export class Panel {
  constructor(root, model, api) {
    this.root = root;
    this.model = model;
    this.api = api;
    this.nodeID = null;
    this.seq = 0;
    this.warnings = []; // the document's lint warnings, from the last validation
    root.addEventListener('input', (e) => this.edited(e));
    root.addEventListener('change', (e) => this.edited(e));
    root.addEventListener('click', (e) => this.click(e));
  }

  // showNote edits a comment note's text (built here: a note has no spec).
  showNote(id) {
    const note = this.model.note(id);
    if (!note) return this.empty('Select a node to edit its settings.');
    this.seq++;
    this.nodeID = null;
    this.noteID = id;
    const form = document.createElement('form');
    form.className = 'fe-form';
    form.dataset.testid = 'note-form';
    const h2 = document.createElement('h2');
    h2.textContent = 'Note';
    const help = document.createElement('p');
    help.className = 'fe-help';
    help.textContent = 'A comment on the canvas, saved with the flow. It never runs.';
    const label = document.createElement('label');
    label.textContent = 'Text';
    const ta = document.createElement('textarea');
    ta.rows = 8;
    ta.value = note.text;
    ta.dataset.testid = 'note-text';
    ta.maxLength = 4096;
    ta.addEventListener('input', () => this.model.setNoteText(id, ta.value));
    label.append(ta);
    form.append(h2, help, label);
    form.addEventListener('submit', (e) => e.preventDefault());
    this.root.replaceChildren(form);
    ta.focus();
  }

  empty(text) {
    this.nodeID = null;
    this.noteID = null;
    const p = document.createElement('p');
    p.className = 'fe-help';
    p.textContent = text;
    this.root.replaceChildren(p);
  }

  // show loads the form of one node (null: clear the panel).
  async show(id) {
    if (!id) return this.empty('Select a node to edit its settings.');
    const seq = ++this.seq;
    let html;
    try {
      ({ data: html } = await this.api.post('/admin/editor/form', { body: { flow: this.model.doc, node: id }, text: true }));
    } catch (err) {
      if (seq === this.seq) this.empty(`Could not load the form: ${err.message}`);
      return;
    }
    if (seq !== this.seq) return; // a newer selection won
    const tpl = document.createElement('template');
    tpl.innerHTML = html; // trusted: same-origin, templ-escaped server output
    this.root.replaceChildren(tpl.content);
    this.nodeID = id;
    this.noteID = null;
    this.root.dataset.node = id;
    this.showWarnings(this.warnings);
  }

  // showWarnings lists the selected node's lint warnings under its
  // problems, each with its check id and a button that silences that check
  // for this node (lint_ignore); checks already silenced here are listed
  // with a button that brings them back. Warnings never block a deploy.
  showWarnings(warnings) {
    this.warnings = warnings || [];
    const form = this.root.querySelector('[data-testid="node-form"]');
    if (!form || !this.nodeID) return;
    const box = form.querySelector('[data-testid="node-warnings"]');
    const items = [];
    for (const w of this.warnings) {
      if (w.node !== this.nodeID) continue;
      const li = document.createElement('li');
      li.dataset.testid = `node-warning-${w.check}`;
      li.setAttribute('data-testid', `node-warning-${w.check}`);
      const code = document.createElement('code');
      code.textContent = w.check;
      const msg = document.createElement('span');
      msg.textContent = ` ${w.field ? w.field + ': ' : ''}${w.message}`;
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'fe-silence';
      b.dataset.silence = w.check;
      b.setAttribute('data-testid', `silence-${w.check}`);
      b.textContent = 'Silence here';
      b.title = `Stop warning about ${w.check} on this node (saved in the flow as lint_ignore)`;
      li.append(code, msg, b);
      items.push(li);
    }
    if (box) {
      box.querySelector('ul').replaceChildren(...items);
      box.querySelector('strong').textContent = items.length === 1 ? '1 warning (does not block deploy)' : `${items.length} warnings (do not block deploy)`;
      box.hidden = !items.length;
    }
    const quiet = form.querySelector('[data-testid="node-silenced"]');
    const n = this.model.node(this.nodeID);
    const ignored = (n && n.lint_ignore) || [];
    if (quiet) {
      const parts = [document.createTextNode('Silenced on this node: ')];
      for (const c of ignored) {
        const code = document.createElement('code');
        code.textContent = c;
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'fe-silence';
        b.dataset.unsilence = c;
        b.setAttribute('data-testid', `unsilence-${c}`);
        b.textContent = 'Warn again';
        parts.push(code, b, document.createTextNode(' '));
      }
      quiet.replaceChildren(...parts);
      quiet.hidden = !ignored.length;
    }
  }

  // refresh re-renders the form if nothing in it has focus (so typing is
  // never interrupted), otherwise only its error lists.
  refresh(problems) {
    if (!this.nodeID) return;
    if (!this.model.node(this.nodeID)) return this.show(null);
    if (!this.root.contains(document.activeElement)) return this.show(this.nodeID);
    this.showErrors(problems);
  }

  showErrors(problems) {
    const form = this.root.querySelector('[data-testid="node-form"]');
    if (!form) return;
    const lists = new Map();
    for (const ul of form.querySelectorAll('.fe-errors')) { ul.replaceChildren(); }
    for (const f of form.querySelectorAll('[data-field]')) { lists.set(f.dataset.field, f); f.classList.remove('fe-invalid'); }
    const nodeList = form.querySelector('[data-testid="node-errors"]');
    const top = form.querySelector('[data-testid="node-problems"]');
    const topItems = [];
    for (const p of problems) {
      if (p.node !== this.nodeID) continue;
      const label = p.field && lists.get(p.field) ? lists.get(p.field).querySelector('label').firstChild.textContent.trim() : p.field;
      const item = document.createElement('li');
      item.textContent = (label ? `${label}: ` : '') + (p.line ? `line ${p.line}, column ${p.column}: ` : '') + p.message;
      topItems.push(item);
      const li = document.createElement('li');
      li.textContent = (p.line ? `line ${p.line}, column ${p.column}: ` : '') + p.message;
      const f = lists.get(p.field);
      if (f) {
        f.classList.add('fe-invalid');
        f.querySelector('.fe-errors').append(li);
      } else if (nodeList) {
        if (p.field) li.textContent = `${p.field}: ${li.textContent}`;
        nodeList.append(li);
      }
    }
    if (top) {
      top.querySelector('ul').replaceChildren(...topItems);
      top.querySelector('strong').textContent = topItems.length === 1 ? '1 problem' : `${topItems.length} problems`;
      top.hidden = !topItems.length;
    }
    this.markRequired(form);
  }

  // markRequired shows the conditionally required fields ("source=keyset")
  // as required while their condition holds.
  markRequired(form) {
    for (const f of form.querySelectorAll('[data-required-if]:not([data-required-if=""])')) {
      const [other, want] = f.dataset.requiredIf.split('=');
      const dep = form.querySelector(`[data-field="${CSS.escape(other)}"]`);
      const o = dep && dep.querySelector('[data-input]');
      const on = !!o && (o.value || dep.dataset.default || '') === want;
      f.dataset.required = String(on);
    }
  }

  click(e) {
    const quiet = e.target.closest('[data-silence], [data-unsilence]');
    if (quiet && this.nodeID) {
      const on = quiet.hasAttribute('data-silence');
      this.model.silence(this.nodeID, on ? quiet.dataset.silence : quiet.dataset.unsilence, on);
      // Gone from the list at once; the next validation confirms it.
      this.showWarnings(on ? this.warnings.filter((w) => !(w.node === this.nodeID && w.check === quiet.dataset.silence)) : this.warnings);
      return;
    }
    const mode = e.target.closest('[data-toggle-mode]');
    if (mode) {
      const row = mode.closest('[data-pair]');
      const ta = row.querySelector('[data-pair-expr]');
      if (row.dataset.mode === 'text') {
        row.dataset.mode = 'expr';
        ta.value = ta.value === '' ? '' : JSON.stringify(ta.value);
        ta.classList.add('fe-code');
        ta.placeholder = 'expression';
        mode.textContent = '{ }';
      } else {
        let text = null;
        try { const v = JSON.parse(ta.value.trim()); if (typeof v === 'string') text = v; } catch { text = null; }
        if (text === null && ta.value.trim() !== '') { ta.focus(); return; } // not a plain string: stays an expression
        row.dataset.mode = 'text';
        ta.value = text || '';
        ta.classList.remove('fe-code');
        ta.placeholder = 'text';
        mode.textContent = 'abc';
      }
      return;
    }
    const add = e.target.closest('[data-add-pair]');
    const rm = e.target.closest('[data-remove-pair]');
    if (!add && !rm) return;
    const field = e.target.closest('[data-field]');
    if (add) {
      const tpl = field.querySelector('template[data-pair-template]');
      add.before(tpl.content.cloneNode(true));
      const rows = field.querySelectorAll('[data-pair]');
      rows[rows.length - 1].querySelector('[data-pair-name]').focus();
    } else {
      rm.closest('[data-pair]').remove();
      this.commit(field);
    }
  }

  edited(e) {
    if (!this.nodeID) return;
    if (e.target.matches('[data-meta="name"]')) {
      this.model.setName(this.nodeID, e.target.value.trim());
      return;
    }
    if (e.target.matches('[data-meta="disabled"]')) {
      if (e.type === 'change') this.model.setDisabled([this.nodeID], e.target.checked);
      return;
    }
    const field = e.target.closest('[data-field]');
    if (!field) return;
    const pick = e.target.closest('[data-ref-select]');
    if (pick) {
      const input = field.querySelector('[data-input]');
      const other = pick.selectedOptions[0] && pick.selectedOptions[0].hasAttribute('data-other');
      input.hidden = !other;
      if (other) { if (e.type === 'change') input.focus(); return; }
      input.value = pick.value;
    }
    this.commit(field);
    const form = field.closest('form');
    if (form) this.markRequired(form);
  }

  commit(field) {
    const name = field.dataset.field, kind = field.dataset.kind;
    const input = field.querySelector('[data-input]');
    const local = field.querySelector('.fe-errors');
    let value;
    try {
      value = readValue(kind, input, field);
    } catch (err) {
      local.replaceChildren();
      const li = document.createElement('li');
      li.textContent = err.message;
      local.append(li);
      return;
    }
    this.model.setConfig(this.nodeID, name, value);
  }
}

// readValue turns a widget into the config value (undefined: unset).
export function readValue(kind, input, field) {
  switch (kind) {
    case 'bool':
      return input.checked;
    case 'int': case 'number': {
      if (input.value.trim() === '') return undefined;
      const n = Number(input.value);
      if (!Number.isFinite(n) || (kind === 'int' && !Number.isInteger(n))) throw new Error(`not ${kind === 'int' ? 'a whole number' : 'a number'}`);
      return n;
    }
    case 'strings': {
      const l = input.value.split('\n').map((s) => s.trim()).filter(Boolean);
      return l.length ? l : undefined;
    }
    case 'json':
      if (input.value.trim() === '') return undefined;
      try { return JSON.parse(input.value); } catch (err) { throw new Error(`not valid JSON: ${err.message}`); }
    case 'exprmap': case 'rules': {
      // Text entries are stored as string literals: the engine compiles
      // every entry as an expression.
      const rows = [...field.querySelectorAll('.fe-pairs > [data-pair]')].map((r) => {
        const v = r.querySelector('[data-pair-expr]').value;
        return { name: r.querySelector('[data-pair-name]').value.trim(), expr: r.dataset.mode === 'text' ? JSON.stringify(v) : v };
      }).filter((r) => r.name !== '');
      if (!rows.length) return undefined;
      if (kind === 'rules') return rows;
      const m = {};
      for (const r of rows) m[r.name] = r.expr;
      return m;
    }
    default:
      return input.value === '' ? undefined : input.value;
  }
}
