// layout.js: the editor's panes. The palette and the side panel can be
// hidden (toolbar, B and P keys) and resized by dragging their splitters;
// the runs panel's height too. Sizes live in CSS variables on the editor
// root (set through CSSOM, which the CSP allows) and in localStorage, so a
// reload keeps them.

const KEY = 'flowd-editor:layout';
const LIMITS = {
  palette: { v: '--pal-w', min: 140, max: 420, axis: 'x', sign: 1 },
  side: { v: '--side-w', min: 260, max: 900, axis: 'x', sign: -1 },
  runs: { v: '--runs-h', min: 60, max: 2000, axis: 'y', sign: -1 },
};

export function bindLayout(root, changed) {
  let state = { palette: true, side: true, sizes: {} };
  try { state = { ...state, ...JSON.parse(localStorage.getItem(KEY) || '{}') }; } catch { /* defaults */ }
  const save = () => { try { localStorage.setItem(KEY, JSON.stringify(state)); } catch { /* not kept */ } };
  const apply = () => {
    root.classList.toggle('fe-no-palette', !state.palette);
    root.classList.toggle('fe-no-side', !state.side);
    root.querySelector('[data-testid="toggle-palette"]').setAttribute('aria-pressed', String(state.palette));
    root.querySelector('[data-testid="toggle-side"]').setAttribute('aria-pressed', String(state.side));
    for (const [name, px] of Object.entries(state.sizes)) {
      if (LIMITS[name] && Number.isFinite(px)) root.style.setProperty(LIMITS[name].v, `${px}px`);
    }
  };
  apply();

  // Splitters: the one layout read is on pointerdown.
  let drag = null;
  root.addEventListener('pointerdown', (e) => {
    const sp = e.target.closest && e.target.closest('[data-split]');
    if (!sp || e.button !== 0) return;
    const name = sp.dataset.split;
    const lim = LIMITS[name];
    const pane = name === 'palette' ? root.querySelector('.fe-palette') : name === 'side' ? root.querySelector('.fe-side') : root.querySelector('.fe-debug');
    const r = pane.getBoundingClientRect();
    drag = { name, lim, sp, start: lim.axis === 'x' ? e.clientX : e.clientY, size0: lim.axis === 'x' ? r.width : r.height };
    sp.classList.add('fe-dragging');
    sp.setPointerCapture(e.pointerId);
    e.preventDefault();
  });
  root.addEventListener('pointermove', (e) => {
    if (!drag) return;
    const pos = drag.lim.axis === 'x' ? e.clientX : e.clientY;
    const px = Math.round(Math.max(drag.lim.min, Math.min(drag.lim.max, drag.size0 + drag.lim.sign * (pos - drag.start))));
    state.sizes[drag.name] = px;
    root.style.setProperty(drag.lim.v, `${px}px`);
  });
  const end = () => {
    if (!drag) return;
    drag.sp.classList.remove('fe-dragging');
    drag = null;
    save();
    changed();
  };
  root.addEventListener('pointerup', end);
  root.addEventListener('pointercancel', end);

  return {
    toggle(name) {
      state[name] = !state[name];
      apply();
      save();
      changed();
    },
    shown: (name) => state[name],
  };
}
