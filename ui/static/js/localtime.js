// Shows each <time datetime data-local> also in the browser's time zone,
// in the sibling .local element (textContent only).
const fmt = new Intl.DateTimeFormat(undefined, {
  weekday: "short", year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", timeZoneName: "short",
});

export function localTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : fmt.format(d);
}

export function localizeTimes(root) {
  for (const el of root.querySelectorAll("time[data-local]")) {
    const out = el.nextElementSibling;
    if (out && out.classList.contains("local")) {
      out.textContent = "· " + localTime(el.getAttribute("datetime"));
    }
  }
}
