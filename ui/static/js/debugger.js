// The token debugger's token stays in this tab: the server never writes it
// into the page, so it is kept in sessionStorage on submit and put back
// into the form on the answer page. "Clear the token" forgets it.
const KEY = "flowd-debugger-token";

export function keepToken(root) {
  const form = root.querySelector("[data-testid=debugger-form]");
  if (!form) return;
  const token = form.querySelector("[name=token]");
  form.addEventListener("submit", () => {
    try { sessionStorage.setItem(KEY, token.value); } catch { /* storage off: not kept */ }
  });
  const clear = form.querySelector("[data-debugger-clear]");
  clear.addEventListener("click", () => {
    token.value = "";
    try { sessionStorage.removeItem(KEY); } catch { /* nothing kept */ }
    token.focus();
  });
  // Only on the answer to a submit (a result or an error is shown).
  const answered = root.querySelector("[data-testid=debugger-result], [data-testid=debugger-error]");
  if (answered && token.value === "") {
    try { token.value = sessionStorage.getItem(KEY) || ""; } catch { /* not kept */ }
  }
}
