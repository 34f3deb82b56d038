// Signing the hearing record (issue 15) on a party's own page (phone or desk): the exact text
// to review, a one-time code shown only here (over this party's own session), the name, and a
// handwritten signature drawn on a canvas, all bound to the SHA-256 of the text shown. A later
// edit by the court makes the signature stale: the page says so and asks again. Refusing is
// recorded with a reason. Errors are sentences from i18n.js (errorText), never server text.
import { api } from "./api.js";
import { errorText, formatTime, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const state = {
  hearingId: null,
  me: null, // participant id
  where: "phone",
  doc: null, // the document being signed (REST DocumentOut)
  shownSha: null, // text_sha256 of the text on screen: what a signature is bound to
  drawn: false,
  codeShown: false,
};
window.courtRecordSign = state; // for tests and support staff (read-only use)



// In the main room the card shows (and reloads); anywhere else (waiting, a caucus) it hides:
// the record follows the main room only (OMR 18).
export function showRecordSigning(hearingId, participantId, inMainRoom) {
  try { // never in the way of the room page's own rendering
    if (inMainRoom) {
      startRecordSigning(hearingId, participantId);
    } else if ($("record-sign")) {
      $("record-sign").hidden = true;
      state.hearingId = null;
    }
  } catch (err) {
    console.error("hearing record", err);
  }
}

function startRecordSigning(hearingId, participantId) {
  state.hearingId = hearingId;
  state.me = participantId;
  state.where = window.matchMedia("(pointer: coarse)").matches || window.innerWidth < 600 ? "phone" : "desk";
  if (!$("record-sign").dataset.wired) wire();
  refresh().catch(() => {});
}

// A `record_changed` event (only in the main room): reload the document it names.
export function recordChanged(message) {
  if (state.hearingId === null) return;
  if (state.doc && state.doc.kind !== message.kind && state.doc.state === "signing" && mine(state.doc)?.status !== "signed") return;
  load(message.kind).catch(() => {});
}

async function refresh() {
  const docs = await api("GET", `/api/hearings/${state.hearingId}/record`);
  // The first document that needs this party (signing, not yet signed), else the last final one.
  const needs = docs.find((d) => d.state === "signing" && ["pending", "stale"].includes(mine(d)?.status));
  const shown = needs ?? docs.find((d) => mine(d) && d.version > 0);
  if (shown) render(shown);
}

async function load(kind) {
  render(await api("GET", `/api/hearings/${state.hearingId}/record/${kind}`));
}

const mine = (doc) => doc.signers.find((s) => s.participant_id === state.me);

function render(doc) {
  const me = mine(doc);
  if (!me || doc.version === 0) return;
  const changed = state.doc && state.doc.kind === doc.kind && state.shownSha && state.shownSha !== doc.text_sha256;
  state.doc = doc;
  const section = $("record-sign");
  section.hidden = false;
  section.dataset.kind = doc.kind;
  section.dataset.state = doc.state;
  section.dataset.status = me.status;
  // A draft is shown as it is written (the main room follows it live); signing comes later.
  const draft = doc.state === "draft";
  $("sign-title").textContent = t(draft ? `rec_live_title_${doc.kind}` : `rec_sign_title_${doc.kind}`);
  $("sign-text").textContent = doc.text;
  state.shownSha = doc.text_sha256;
  $("sign-sha").textContent = doc.text_sha256;
  const final = ["finalised", "effective", "failed"].includes(doc.state);
  let status = t(`rec_you_${me.status}`);
  if (me.status === "refused" && me.reason) status += `${t("rec_reason_sep")}${me.reason}`;
  if (me.at && me.status !== "pending") status += `（${formatTime(me.at)}）`;
  if (final) status = `${t(`rec_final_${doc.state}`)} ${status}`;
  if (draft) status = t(`rec_draft_${doc.kind}`);
  $("sign-status").textContent = status;
  $("sign-status").dataset.kind = me.status === "stale" ? "error" : "info";
  const canSign = doc.state === "signing" && me.status !== "signed" && me.status !== "refused";
  $("sign-form").hidden = !canSign;
  $("sign-download").hidden = !final;
  $("sign-download").href = `/api/hearings/${state.hearingId}/record/${doc.kind}/sealed`;
  if (changed && canSign) {
    // The text changed while it was on screen: a code and a drawing made for the old text go.
    showError(t("rec_text_updated"));
    resetForm();
  }
  if (canSign && me.status === "stale" && !changed) showError("");
  if (!canSign) resetForm();
}

function resetForm() {
  state.codeShown = false;
  $("sign-code-shown").hidden = true;
  $("sign-code-value").textContent = "";
  $("sign-code").value = "";
  clearCanvas();
  $("sign-refuse-row").hidden = true;
}

function showError(text) {
  $("sign-error").textContent = text;
  $("sign-error").hidden = !text;
}

// -- the canvas: mouse, pen and finger alike (pointer events) ---------------------------------

function clearCanvas() {
  const canvas = $("sign-canvas");
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  state.drawn = false;
  canvas.dataset.drawn = "false";
}

function wireCanvas() {
  const canvas = $("sign-canvas");
  const ctx = canvas.getContext("2d");
  let last = null;
  const at = (ev) => {
    const box = canvas.getBoundingClientRect();
    return [(ev.clientX - box.left) * (canvas.width / box.width), (ev.clientY - box.top) * (canvas.height / box.height)];
  };
  canvas.addEventListener("pointerdown", (ev) => {
    canvas.setPointerCapture?.(ev.pointerId);
    last = at(ev);
    ev.preventDefault();
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (!last) return;
    const next = at(ev);
    ctx.strokeStyle = "#111111";
    ctx.lineWidth = 4;
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(...last);
    ctx.lineTo(...next);
    ctx.stroke();
    last = next;
    state.drawn = true;
    canvas.dataset.drawn = "true";
    ev.preventDefault();
  });
  for (const end of ["pointerup", "pointercancel", "pointerleave"]) canvas.addEventListener(end, () => { last = null; });
  clearCanvas();
}

function canvasPng() {
  return new Promise((resolve) => {
    $("sign-canvas").toBlob(async (blob) => {
      const bytes = new Uint8Array(await blob.arrayBuffer());
      let binary = "";
      for (const b of bytes) binary += String.fromCharCode(b);
      resolve(btoa(binary));
    }, "image/png");
  });
}

// -- the actions --------------------------------------------------------------------------------

const path = (tail) => `/api/hearings/${state.hearingId}/record/${state.doc.kind}/${tail}`;

async function getCode() {
  showError("");
  try {
    const got = await api("POST", path("code"), { participant_id: state.me });
    render(got.document); // the code is for exactly this text
    $("sign-code-value").textContent = got.code;
    $("sign-code-shown").hidden = false;
    state.codeShown = true;
  } catch (err) {
    showError(errorText(err));
  }
}

async function answered(request) {
  showError("");
  try {
    render(await request());
  } catch (err) {
    showError(errorText(err));
    if (err.code === "TEXT_CHANGED" || err.code === "CODE_USED") {
      await load(state.doc.kind).catch(() => {});
      resetForm();
      showError(errorText(err));
    }
  }
}

async function submit(ev) {
  ev.preventDefault();
  const name = $("sign-name").value.trim();
  const code = $("sign-code").value.trim();
  if (!$("sign-read").checked) return showError(t("rec_err_read"));
  if (!name) return showError(t("rec_err_name"));
  if (!/^[0-9]{6}$/.test(code)) return showError(t("rec_err_code"));
  if (!state.drawn) return showError(t("rec_err_draw"));
  const image = await canvasPng();
  await answered(() => api("POST", path("signatures"), {
    participant_id: state.me, name, code, text_sha256: state.shownSha, where: state.where, image_png_b64: image,
  }));
}

async function refuse() {
  const reason = $("sign-refuse-reason").value.trim();
  const code = $("sign-code").value.trim();
  if (!reason) return showError(t("rec_err_reason"));
  if (!/^[0-9]{6}$/.test(code)) return showError(t("rec_err_code"));
  await answered(() => api("POST", path("refusals"), {
    participant_id: state.me, code, text_sha256: state.shownSha, reason, where: state.where,
  }));
}

function wire() {
  $("record-sign").dataset.wired = "true";
  wireCanvas();
  $("sign-get-code").addEventListener("click", getCode);
  $("sign-clear").addEventListener("click", clearCanvas);
  $("sign-form").addEventListener("submit", submit);
  $("sign-refuse").addEventListener("click", () => { $("sign-refuse-row").hidden = false; });
  $("sign-refuse-submit").addEventListener("click", refuse);
}


