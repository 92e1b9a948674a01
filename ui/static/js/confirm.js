// Forms with data-confirm ask before they submit (delete, revoke, rotate).
export function confirmForms(root) {
  for (const form of root.querySelectorAll("form[data-confirm]:not([data-confirm=\"\"])")) {
    form.addEventListener("submit", (ev) => {
      if (!window.confirm(form.dataset.confirm)) {
        ev.preventDefault();
      }
    });
  }
}
