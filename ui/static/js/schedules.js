// Previews the next runs of the spec and zone as they are typed, from
// GET /admin/schedules/preview (same origin, session cookie).
import { localTime } from "./localtime.js";

export function schedulePreview(root) {
  const form = root.querySelector("[data-testid=preview-form]");
  if (!form) return;
  const spec = form.querySelector("[name=spec]");
  const tz = form.querySelector("[name=tz]");
  const list = root.querySelector("[data-testid=preview-runs]");
  const errEl = root.querySelector("[data-testid=preview-error]");
  let timer = 0;
  let seq = 0;

  async function update() {
    const mine = ++seq;
    if (spec.value.trim() === "") {
      list.replaceChildren();
      errEl.hidden = true;
      return;
    }
    const q = new URLSearchParams({ spec: spec.value, tz: tz.value });
    let body;
    try {
      const res = await fetch("/admin/schedules/preview?" + q, { headers: { Accept: "application/json" } });
      body = await res.json();
    } catch (e) {
      body = { error: "preview failed: " + e.message, next: [] };
    }
    if (mine !== seq) return; // a newer keystroke won
    errEl.hidden = !body.error;
    errEl.textContent = body.error || "";
    const items = (body.next || []).map((t) => {
      const li = document.createElement("li");
      li.dataset.testid = "preview-run";
      const time = document.createElement("time");
      time.setAttribute("datetime", t.utc);
      time.textContent = t.label;
      const local = document.createElement("span");
      local.className = "local muted";
      local.dataset.testid = "local-time";
      local.textContent = "· " + localTime(t.utc);
      li.append(time);
      if (t.zoned) {
        const z = document.createElement("span");
        z.className = "zone";
        z.dataset.testid = "zone-time";
        z.textContent = "· " + t.zoned;
        li.append(z);
      }
      li.append(local);
      return li;
    });
    list.replaceChildren(...items);
  }

  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(update, 200);
  };
  spec.addEventListener("input", schedule);
  tz.addEventListener("input", schedule);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    update();
  });
}
