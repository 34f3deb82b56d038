// The hearing record in the staff console (issue 15): the clerk (or judge, mediator) writes
// the transcript live, one statement per speaker marked by role and name; the judge or mediator
// drafts the mediation agreement (terms, payments, deadlines). Every save is a version on the
// server (autosave while typing, at most one save in flight and one every AUTOSAVE_MS); the
// main room sees each version live. Then: ask the parties to sign, watch each signature (a
// later edit makes it stale), finalise the transcript (the court seals it), download the seal.
import { api } from "./api.js";
import { errorText, formatTime, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const AUTOSAVE_MS = 3000;
const RUNNING = new Set(["judge", "mediator"]);
const KINDS = ["transcript", "agreement"];

const rec = {
  hearingId: null,
  role: null,
  roster: () => new Map(),
  kind: "transcript",
  docs: {}, // kind -> DocumentOut from the server
  drafts: { transcript: { entries: [] }, agreement: { terms: [], amounts: [], deadlines: [] } },
  base: { transcript: 0, agreement: 0 }, // the version each draft was based on
  dirty: { transcript: false, agreement: false },
  loaded: { transcript: false, agreement: false },
  edits: 0, // edits made here (a save clears `dirty` only if none came while it was in flight)
  saving: false,
  timer: null,
  saves: 0, // saves sent (tests read it)
};
window.courtRecord = rec; // for tests and support staff (read-only use)

export function startRecordConsole(hearingId, role, roster) {
  rec.hearingId = hearingId;
  rec.role = role;
  rec.roster = roster;
  $("record-panel").hidden = false;
  $("rec-tab-agreement").hidden = !RUNNING.has(role);
  wire();
  for (const kind of KINDS) load(kind).catch((err) => showError(errorText(err)));
}

// `record_changed`: someone saved, signed, refused or finalised; reload that document.
export function recordConsoleChanged(message) {
  if (rec.hearingId === null) return;
  load(message.kind).catch(() => {});
}

async function load(kind) {
  apply(await api("GET", `/api/hearings/${rec.hearingId}/record/${kind}`));
}

// A document from the server. The draft follows it when it is someone else's newer version
// and nobody is typing here (a stale draft is refused at its save as CONFLICT, then reloaded).
function apply(doc) {
  const kind = doc.kind;
  const known = rec.docs[kind];
  if (known && known.version > doc.version) return; // an older answer arriving late
  rec.docs[kind] = doc;
  const first = !rec.loaded[kind];
  rec.loaded[kind] = true;
  if (first || (!rec.dirty[kind] && doc.version !== rec.base[kind])) {
    if (doc.version > 0) rec.drafts[kind] = structuredClone(doc.content);
    rec.base[kind] = doc.version;
    if (kind === rec.kind) renderEditor();
  }
  if (kind === rec.kind) renderStatus();
}

function showError(text) {
  $("rec-error").textContent = text;
  $("rec-error").hidden = !text;
}

// -- rendering -----------------------------------------------------------------------------------

function renderStatus() {
  const doc = rec.docs[rec.kind];
  if (!doc) return;
  const parts = [t(`rec_status_${doc.state}`)];
  if (doc.version > 0) parts.push(t("rec_version").replace("{v}", doc.version));
  if (doc.saved_at) parts.push(`${t("rec_saved_at")} ${formatTime(doc.saved_at)} ${doc.saved_by_name ?? ""}`);
  else parts.push(t("rec_not_saved"));
  if (rec.saving) parts.push(t("rec_saving"));
  $("rec-status").textContent = parts.join(" · ");
  $("record-panel").dataset.state = doc.state;
  $("record-panel").dataset.version = String(doc.version);
  const final = ["finalised", "effective", "failed"].includes(doc.state);
  for (const id of ["rec-save", "rec-add-entry", "rec-add-term", "rec-add-amount", "rec-add-deadline"]) $(id).disabled = final;
  $("rec-request").disabled = final || doc.version === 0 || doc.state === "signing";
  $("rec-finalise").hidden = rec.kind !== "transcript";
  $("rec-finalise").disabled = doc.state !== "signing";
  $("rec-download").hidden = !doc.sealed;
  $("rec-download").href = `/api/hearings/${rec.hearingId}/record/${rec.kind}/sealed`;
  $("rec-text").textContent = doc.text;
  // A failed mediation may be sent on to a hearing (judge or mediator).
  $("rec-send-on").hidden = !(rec.kind === "agreement" && doc.state === "failed" && RUNNING.has(rec.role));
  if (!$("rec-send-on").hidden) loadJudges();
  const list = $("rec-signers");
  list.replaceChildren();
  for (const s of doc.signers) {
    const li = document.createElement("li");
    li.className = "signer";
    li.dataset.status = s.status;
    li.dataset.testid = `rec-signer-${s.participant_id}`;
    li.setAttribute("data-testid", `rec-signer-${s.participant_id}`);
    let text = `${s.name}（${t(`role_${s.role}`)}）：${t(`rec_signer_${s.status}`)}`;
    if (s.status === "refused" && s.reason) text += `${t("rec_reason_sep")}${s.reason}`;
    if (s.at && s.status !== "pending") text += ` ${formatTime(s.at)}`;
    li.textContent = text;
    list.append(li);
  }
  for (const el of document.querySelectorAll("#record-panel input, #record-panel textarea, #record-panel select, #record-panel .entry button, #record-panel .item button")) el.disabled = final;
  for (const el of $("rec-send-on").querySelectorAll("input, select, button")) el.disabled = false;
}

function field(tag, label, value, onInput, attrs = {}) {
  const el = document.createElement(tag);
  el.value = value ?? "";
  el.setAttribute("aria-label", label);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.addEventListener("input", () => { onInput(el.value); edited(); });
  return el;
}

function removeButton(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = t("rec_remove");
  b.setAttribute("aria-label", `${t("rec_remove")} ${label}`);
  b.addEventListener("click", () => { onClick(); edited(); renderEditor(); });
  return b;
}

// The people who may speak: everyone on the roster, by role and name (a value "role|name").
function speakers() {
  const list = [...rec.roster().values()].filter((p) => p.role !== "station")
    .map((p) => ({ role: p.role, name: p.display_name }));
  return list.length ? list : [{ role: rec.role, name: "" }];
}

function renderTranscript() {
  const box = $("rec-entries");
  box.replaceChildren();
  rec.drafts.transcript.entries.forEach((entry, i) => {
    const n = i + 1;
    const row = document.createElement("div");
    row.className = "entry";
    row.setAttribute("data-testid", "rec-entry");
    const select = document.createElement("select");
    select.setAttribute("aria-label", `${t("rec_speaker")} ${n}`);
    select.setAttribute("data-testid", "rec-entry-speaker");
    const options = speakers();
    if (!options.some((s) => s.role === entry.role && s.name === entry.name)) options.unshift({ role: entry.role, name: entry.name });
    for (const s of options) {
      const o = document.createElement("option");
      o.value = `${s.role}|${s.name}`;
      o.textContent = `${t(`role_${s.role}`)} ${s.name}`;
      select.append(o);
    }
    select.value = `${entry.role}|${entry.name}`;
    select.addEventListener("change", () => {
      const [role, ...name] = select.value.split("|");
      Object.assign(entry, { role, name: name.join("|") });
      edited();
    });
    const text = field("textarea", `${t("rec_entry_text")} ${n}`, entry.text, (v) => { entry.text = v; },
      { "data-testid": "rec-entry-text", maxlength: "2000" });
    row.append(select, text, removeButton(`${t("rec_entry_text")} ${n}`, () => rec.drafts.transcript.entries.splice(i, 1)));
    box.append(row);
  });
}

function renderAgreement() {
  const d = rec.drafts.agreement;
  const list = (id, items, build) => {
    const box = $(id);
    box.replaceChildren();
    items.forEach((item, i) => {
      const row = document.createElement("div");
      row.className = "item";
      row.append(...build(item, i + 1), removeButton(`${i + 1}`, () => items.splice(i, 1)));
      box.append(row);
    });
  };
  list("rec-terms", d.terms, (_term, n) => [
    field("textarea", `${t("rec_terms")} ${n}`, d.terms[n - 1], (v) => { d.terms[n - 1] = v; }, { "data-testid": "rec-term" }),
  ]);
  list("rec-amounts", d.amounts, (a, n) => [
    field("input", `${t("rec_payer")} ${n}`, a.payer, (v) => { a.payer = v; }, { placeholder: t("rec_payer"), "data-testid": "rec-payer" }),
    field("input", `${t("rec_payee")} ${n}`, a.payee, (v) => { a.payee = v; }, { placeholder: t("rec_payee"), "data-testid": "rec-payee" }),
    field("input", `${t("rec_amount")} ${n}`, a.amount, (v) => { a.amount = v; }, { inputmode: "decimal", placeholder: t("rec_amount"), "data-testid": "rec-amount" }),
    field("input", `${t("rec_due")} ${n}`, a.due, (v) => { a.due = v; }, { type: "date", "data-testid": "rec-due" }),
  ]);
  list("rec-deadlines", d.deadlines, (x, n) => [
    field("input", `${t("rec_what")} ${n}`, x.what, (v) => { x.what = v; }, { placeholder: t("rec_what"), "data-testid": "rec-what" }),
    field("input", `${t("rec_by")} ${n}`, x.by, (v) => { x.by = v; }, { type: "date", "data-testid": "rec-by" }),
  ]);
}

function renderEditor() {
  $("rec-editor-transcript").hidden = rec.kind !== "transcript";
  $("rec-editor-agreement").hidden = rec.kind !== "agreement";
  for (const kind of KINDS) $(`rec-tab-${kind}`).setAttribute("aria-pressed", String(kind === rec.kind));
  if (rec.kind === "transcript") renderTranscript();
  else renderAgreement();
  renderStatus();
}

// -- saving --------------------------------------------------------------------------------------

function edited() {
  rec.edits += 1;
  rec.dirty[rec.kind] = true;
  clearTimeout(rec.timer);
  rec.timer = setTimeout(() => save(rec.kind, true), AUTOSAVE_MS);
}

// What the server takes: empty statements and items are not sent (they are still being typed).
function payload(kind) {
  const d = rec.drafts[kind];
  if (kind === "transcript") return { entries: d.entries.filter((e) => e.text.trim()) };
  return {
    terms: d.terms.filter((x) => x.trim()),
    amounts: d.amounts.filter((a) => a.payer && a.payee && a.amount && a.due),
    deadlines: d.deadlines.filter((x) => x.what && x.by),
  };
}

async function save(kind, auto = false) {
  clearTimeout(rec.timer);
  if (rec.saving) { // one save in flight: try again after it
    rec.timer = setTimeout(() => save(kind, auto), AUTOSAVE_MS);
    return;
  }
  if (auto && !rec.dirty[kind]) return;
  rec.saving = true;
  renderStatus();
  rec.saves += 1;
  const edits = rec.edits;
  try {
    const doc = await api("PUT", `/api/hearings/${rec.hearingId}/record/${kind}`, { ...payload(kind), base_version: rec.base[kind] });
    rec.dirty[kind] = rec.edits !== edits;
    rec.saving = false;
    rec.base[kind] = doc.version;
    apply(doc);
    showError("");
  } catch (err) {
    rec.saving = false;
    showError(errorText(err));
    if (err.code === "CONFLICT") { // someone else saved: their version is shown
      rec.dirty[kind] = false;
      await load(kind).catch(() => {});
    }
  }
  renderStatus();
}

async function act(tail) {
  showError("");
  try {
    if (rec.dirty[rec.kind]) await save(rec.kind);
    apply(await api("POST", `/api/hearings/${rec.hearingId}/record/${rec.kind}/${tail}`));
  } catch (err) {
    showError(errorText(err));
  }
}

let judges = null;

async function loadJudges() {
  judges ??= api("GET", "/api/staff").then((staff) => {
    const select = $("rec-send-on-judge");
    for (const u of staff.filter((x) => x.role === "judge")) {
      const o = document.createElement("option");
      o.value = u.id;
      o.textContent = u.display_name;
      select.append(o);
    }
  }).catch((err) => showError(errorText(err)));
  return judges;
}

async function sendOn(ev) {
  ev.preventDefault();
  const start = $("rec-send-on-start").value;
  if (!start) return showError(t("rec_err_start"));
  try {
    const sent = await api("POST", `/api/hearings/${rec.hearingId}/record/send-on`, {
      title: t("rec_send_on_title"),
      scheduled_start: `${start.length === 16 ? `${start}:00` : start}+08:00`, // the court's zone
      duration_minutes: 60,
      presiding_user_id: $("rec-send-on-judge").value,
    });
    showError("");
    $("rec-sent-on-link").href = `/hearings/${sent.hearing_id}/summary`;
    $("rec-sent-on-link").textContent = formatTime(`${start}:00+08:00`);
    $("rec-sent-on").hidden = false;
    $("rec-send-on").querySelector("button").hidden = true; // once: a second time is refused
  } catch (err) {
    showError(errorText(err));
  }
}

function wire() {
  if ($("record-panel").dataset.wired) return;
  $("record-panel").dataset.wired = "true";
  for (const kind of KINDS) {
    $(`rec-tab-${kind}`).addEventListener("click", () => { rec.kind = kind; renderEditor(); });
  }
  $("rec-add-entry").addEventListener("click", () => {
    const last = rec.drafts.transcript.entries.at(-1);
    const first = speakers()[0];
    rec.drafts.transcript.entries.push({ role: last?.role ?? first.role, name: last?.name ?? first.name, text: "" });
    renderEditor();
    [...document.querySelectorAll('[data-testid="rec-entry-text"]')].at(-1)?.focus();
  });
  $("rec-add-term").addEventListener("click", () => { rec.drafts.agreement.terms.push(""); renderEditor(); });
  $("rec-add-amount").addEventListener("click", () => { rec.drafts.agreement.amounts.push({ payer: "", payee: "", amount: "", due: "" }); renderEditor(); });
  $("rec-add-deadline").addEventListener("click", () => { rec.drafts.agreement.deadlines.push({ what: "", by: "" }); renderEditor(); });
  $("rec-save").addEventListener("click", () => save(rec.kind));
  $("rec-send-on").addEventListener("submit", sendOn);
  $("rec-request").addEventListener("click", () => act("signing-request"));
  $("rec-finalise").addEventListener("click", () => { $("rec-finalise-row").hidden = false; $("rec-finalise-yes").focus(); });
  $("rec-finalise-yes").addEventListener("click", async () => { $("rec-finalise-row").hidden = true; await act("finalise"); });
}
