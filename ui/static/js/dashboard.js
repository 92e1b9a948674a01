// Keeps the dashboard current: every minute (the history takes one
// sample a minute) and at once when its tab is shown again, the page is
// fetched and its content swapped in. A hidden tab fetches nothing; a
// signed-out session (the fetch lands on the login page) stops it.
const every = 60_000;

export function liveDashboard(doc) {
  if (!doc.querySelector('[data-testid="dashboard"]')) {
    return;
  }
  let busy = false;
  let stopped = false;
  async function refresh() {
    if (busy || stopped || doc.hidden) {
      return;
    }
    busy = true;
    try {
      const res = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!res.ok || new URL(res.url).pathname !== location.pathname) {
        stopped = true;
        return;
      }
      const next = new DOMParser().parseFromString(await res.text(), "text/html").querySelector("main");
      const main = doc.querySelector("main");
      if (next && main) {
        main.replaceChildren(...next.childNodes);
      }
    } catch {
      // Offline or the server restarting: the next tick tries again.
    } finally {
      busy = false;
    }
  }
  setInterval(refresh, every);
  doc.addEventListener("visibilitychange", refresh);
}
