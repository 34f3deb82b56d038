// What the staff console's pages share: the signed-in header, choices loaded from the API,
// GOV.UK-style form errors (a summary at the top linking to each field, the message next to
// the field), and small formatting helpers. Times are shown with formatTime (Asia/Shanghai).
import { api } from "./api.js";
import { applyStrings, t, errorText, lang, formatTime } from "./i18n.js";

export { api, t, errorText, lang, formatTime };

export const PRESIDING = new Set(["judge", "clerk", "mediator"]);
export const COURT_OFFSET = "+08:00";  // Asia/Shanghai keeps UTC+8 all year

// `t` with {name} placeholders filled.
export function tf(key, values = {}) {
  return t(key).replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

// Sign-in check, header (name, language, logout). Resolves to the principal, or leaves.
export async function staffPage(onLanguage) {
  applyStrings();
  const picker = document.getElementById("lang");
  if (picker) {
    picker.addEventListener("change", () => { applyStrings(); onLanguage?.(); });
  }
  document.getElementById("logout")?.addEventListener("click", async () => {
    await api("POST", "/api/auth/logout").catch(() => {});
    location.assign("/");
  });
  let me;
  try {
    me = await api("GET", "/api/auth/me");
  } catch {
    location.assign("/");
    return new Promise(() => {});
  }
  const who = document.getElementById("who");
  if (who) who.textContent = me.principal.display_name ?? me.principal.kind;
  return me.principal;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "testid") node.dataset.testid = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children);
  return node;
}

export function option(value, label, selected = false) {
  const o = el("option", { value }, label);
  o.selected = selected;
  return o;
}

// The causes list in the page's language.
export async function causes() {
  const list = await api("GET", "/api/causes");
  return list.map((c) => ({ code: c.code, label: lang() === "en" ? c.en : c.zh }));
}

// "2026-12-04T01:30:00Z" -> {date: "2026-12-04", time: "09:30"} in the court's zone.
export function courtDateTime(iso) {
  const shifted = new Date(Date.parse(iso) + 8 * 3600 * 1000).toISOString();
  return { date: shifted.slice(0, 10), time: shifted.slice(11, 16) };
}

export function courtIso(date, time) {
  return `${date}T${time}:00${COURT_OFFSET}`;
}

export function minutesBetween(startIso, endIso) {
  return Math.round((Date.parse(endIso) - Date.parse(startIso)) / 60000);
}

// GOV.UK error pattern for one form. The form holds a `.error-summary` with a list; each
// field's input has an id, and a `<p class="field-error" id="{id}-error">` next to it.
export class FormErrors {
  constructor(form) {
    this.form = form;
    this.summary = form.querySelector(".error-summary");
    this.list = this.summary.querySelector("ul");
    this.count = 0;
  }

  clear() {
    this.count = 0;
    this.summary.hidden = true;
    this.list.replaceChildren();
    for (const p of this.form.querySelectorAll(".field-error")) { p.textContent = ""; p.hidden = true; }
    for (const f of this.form.querySelectorAll("[aria-invalid]")) f.removeAttribute("aria-invalid");
    for (const g of this.form.querySelectorAll(".field.invalid")) g.classList.remove("invalid");
  }

  // `name` is the input's name (the API's field name); `message` a sentence.
  add(name, message) {
    const input = this.form.querySelector(`[name="${name}"]`);
    if (input) {
      const note = this.form.querySelector(`#${input.id}-error`);
      if (note) { note.textContent = message; note.hidden = false; }
      input.setAttribute("aria-invalid", "true");
      input.closest(".field")?.classList.add("invalid");
    }
    const link = el("a", { href: input ? `#${input.id}` : "#" }, message);
    link.addEventListener("click", (e) => { e.preventDefault(); input?.focus(); });
    this.list.append(el("li", {}, link));
    this.count += 1;
  }

  // A message with no field of its own (a network failure, a rule refused).
  general(message) {
    this.list.append(el("li", {}, message));
    this.count += 1;
  }

  show() {
    if (!this.count) return false;
    this.summary.hidden = false;
    this.summary.focus();
    return true;
  }

  // An API error: next to its field when the server named one we know, else in the summary.
  fromApi(err, messages) {
    const field = err?.details?.field;
    const key = messages[`${field}:${err?.code}`] ?? messages[field];
    if (field && key && this.form.querySelector(`[name="${field}"]`)) this.add(field, t(key));
    else this.general(errorText(err));
    this.show();
  }
}

export function value(form, name) {
  const input = form.elements.namedItem(name);
  return input ? String(input.value).trim() : "";
}
