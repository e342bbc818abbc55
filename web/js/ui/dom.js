// DOM building without innerHTML: every string becomes a text node or an attribute, so a
// server-supplied name or title can never become markup.
let nextId = 0;

/** A fresh id for label/input pairs. */
export function uid(prefix = "f") {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** h("p", {class: "x"}, "text", child): an element; `on*` props are listeners. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "checked" || key === "disabled" || key === "value" || key === "hidden") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** A labelled input (or textarea/select via `tag`); returns {row, input}. */
export function field(label, props = {}, { tag = "input", hint = null } = {}) {
  const id = props.id || uid();
  const hintId = hint ? `${id}-hint` : null;
  const input = h(tag, { ...props, id, "aria-describedby": hintId });
  const row = h("div", { class: "field" }, h("label", { for: id }, label), input, hint && h("p", { class: "hint", id: hintId }, hint));
  return { row, input };
}

/** A labelled checkbox; returns {row, input}. */
export function checkbox(label, props = {}, hint = null) {
  const id = uid("c");
  const hintId = hint ? `${id}-hint` : null;
  const input = h("input", { ...props, type: "checkbox", id, "aria-describedby": hintId });
  const row = h("div", { class: "check" }, input, h("div", {}, h("label", { for: id }, label), hint && h("p", { class: "hint", id: hintId }, hint)));
  return { row, input };
}

/** A polite live region for a form's outcome; `.show(text, kind)` and `.clear()`. */
export function messageLine() {
  const el = h("p", { class: "message", role: "status", "aria-live": "polite" });
  el.show = (text, kind = "ok") => {
    el.className = `message ${kind}`;
    el.textContent = text;
  };
  el.clear = () => {
    el.className = "message";
    el.textContent = "";
  };
  return el;
}

/** A progress bar with a live text line: `.update({phase, done, total})`, `.finish(text)`. */
export function progressBar(label) {
  const id = uid("p");
  const bar = h("progress", { id, max: "1", value: "0" });
  const text = h("p", { class: "message", role: "status", "aria-live": "polite" });
  const wrap = h("div", { class: "progress-wrap field", hidden: true }, h("label", { for: id }, label), bar, text);
  wrap.update = ({ phase, done, total } = {}) => {
    wrap.hidden = false;
    if (Number.isFinite(total) && total > 0) {
      bar.max = total;
      bar.value = Math.min(done || 0, total);
      text.textContent = `${phaseName(phase)}: ${done || 0} of ${total}`;
    } else {
      bar.removeAttribute("value"); // indeterminate
      text.textContent = `${phaseName(phase)}…`;
    }
    text.className = "message";
  };
  wrap.finish = (message) => {
    wrap.hidden = false;
    bar.max = 1;
    bar.value = 1;
    text.className = "message ok";
    text.textContent = message;
  };
  wrap.reset = () => {
    wrap.hidden = true;
    text.textContent = "";
  };
  return wrap;
}

const PHASES = {
  authenticate: "Signing in with your Key DID",
  register: "Registering your vault",
  push: "Uploading items",
  pull: "Downloading items",
  decrypt: "Decrypting items",
  bootstrap: "Fetching the vault's public parameters",
  derive: "Deriving your vault key",
  verify: "Checking the kit and the server",
};

function phaseName(phase) {
  if (!phase) return "Working";
  return PHASES[phase] || String(phase).replace(/[^\w -]/g, "");
}

/** A date or time as the reader's locale writes it; "Never" for none. */
export function when(value, never = "Never") {
  if (value === null || value === undefined || value === "" || value === 0) return never;
  let date;
  if (typeof value === "number") date = new Date(value < 1e12 ? value * 1000 : value);
  else date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** A byte count a person reads. */
export function bytes(n) {
  if (!Number.isFinite(n)) return "—";
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** A status list: rows of [term, value]. */
export function statusList(rows, label) {
  return h("dl", { class: "status", "aria-label": label }, rows.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

/** A modal confirmation (native <dialog>: focus is trapped and Escape cancels). */
export function confirmDialog({ title, body, confirm, danger = false }) {
  return new Promise((resolve) => {
    const headingId = uid("d");
    const yes = h("button", { type: "button", class: danger ? "danger" : "" }, confirm);
    const no = h("button", { type: "button", class: "secondary" }, "Cancel");
    const dialog = h(
      "dialog",
      { "aria-labelledby": headingId },
      h("h2", { id: headingId }, title),
      (Array.isArray(body) ? body : [body]).map((p) => h("p", {}, p)),
      h("div", { class: "actions" }, yes, no),
    );
    const opener = document.activeElement;
    const done = (answer) => {
      dialog.close();
      dialog.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve(answer);
    };
    yes.addEventListener("click", () => done(true));
    no.addEventListener("click", () => done(false));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      done(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}

/** Save bytes or text as a file the browser downloads. */
export function download(name, data, type) {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = h("a", { href: url, download: name, class: "sr-only" }, name);
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Runs `work` with the button disabled and aria-busy set while it runs. */
export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}
