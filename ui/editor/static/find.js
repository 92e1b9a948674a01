// find.js: the toolbar's "find node" box. Typing marks the nodes whose
// name, id or type contain every word; Enter selects the next match and
// centers the view on it; Esc clears.

export function matchNodes(nodes, query) {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return [];
  return nodes.filter((n) => {
    const text = `${n.name || ''} ${n.id} ${n.type}`.toLowerCase();
    return words.every((w) => text.includes(w));
  }).map((n) => n.id);
}

export function bindFind(root, ed, setStatus) {
  const input = root.querySelector('[data-testid="find-node"]');
  const count = root.querySelector('[data-testid="find-count"]');
  const options = root.querySelector('[data-testid="find-options"]');
  let matches = [];
  let at = -1;
  const refreshOptions = () => {
    options.replaceChildren(...ed.model.doc.nodes.map((n) => {
      const o = document.createElement('option');
      o.value = n.name || n.id;
      o.label = `${n.id} · ${n.type}`;
      return o;
    }));
  };
  const update = () => {
    matches = matchNodes(ed.model.doc.nodes, input.value);
    at = -1;
    ed.canvas.setMatches(new Set(matches));
    count.textContent = input.value.trim() ? `${matches.length} found` : '';
  };
  const next = () => {
    if (!matches.length) { setStatus(`No node matches "${input.value}".`, 'warn'); return; }
    at = (at + 1) % matches.length;
    const id = matches[at];
    ed.canvas.select([id]);
    ed.canvas.focusNode(id);
    count.textContent = `${at + 1} of ${matches.length}`;
  };
  input.addEventListener('focus', refreshOptions);
  input.addEventListener('input', update);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); next(); }
    else if (e.key === 'Escape') { input.value = ''; update(); input.blur(); ed.canvas.svg.focus(); }
  });
  ed.model.addEventListener('change', () => { if (input.value) update(); });
  return { focus: () => { input.focus(); input.select(); } };
}
