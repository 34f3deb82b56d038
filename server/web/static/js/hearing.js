// A hearing's booking page: what is booked (and a form to change or cancel it while it is
// still scheduled), its people with their invitation links (issue, copy, QR code, re-issue,
// revoke), and a form to add people. A link exists only in the issue response (the server
// keeps its digest), so it is shown from that response until the page is left.
import {
  api, t, tf, staffPage, el, option, courtDateTime, minutesBetween, formatTime, errorText,
  FormErrors, value,
} from "./staff.js";
import { bookingBody, bookingChoices, fillBookingSelects, BOOKING_MESSAGES } from "./booking_form.js";

const hearingId = location.pathname.split("/")[2];
const PARTY_ROLES = ["plaintiff", "defendant", "agent", "witness", "expert", "interpreter", "observer"];
const NEEDS_SIDE = new Set(["agent"]);
const STAFF_ROLES = new Set(["judge", "clerk", "mediator", "station"]);
const MAX_LINK_HOURS = 24 * 90;
const pageError = document.getElementById("error");
const personForm = document.getElementById("person-form");
const personErrors = new FormErrors(personForm);
const editForm = document.getElementById("edit-form");
const editErrors = new FormErrors(editForm);
const cancelForm = document.getElementById("cancel-form");
const cancelErrors = new FormErrors(cancelForm);

let booking = null;
let theCase = null;
let people = [];
let links = new Map();  // participant id -> link state
const issued = new Map();  // participant id -> {url, qr_svg}: this page's fresh links

// -- a confirmation that says what will happen (destructive actions ask once) ------------
function confirmAction(message, yesLabel) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-text").textContent = message;
  const yes = document.getElementById("confirm-yes");
  yes.textContent = yesLabel;
  return new Promise((resolve) => {
    const done = (answer) => { dialog.close(); yes.onclick = null; resolve(answer); };
    yes.onclick = () => done(true);
    document.getElementById("confirm-no").onclick = () => done(false);
    dialog.oncancel = () => done(false);
    dialog.showModal();
  });
}

function showQr(person) {
  const link = issued.get(person.id);
  if (!link) return;
  const dialog = document.getElementById("qr-dialog");
  const img = document.getElementById("qr-image");
  img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(link.qr_svg)}`;
  img.alt = tf("sc_qr_for", { name: person.display_name });
  document.getElementById("qr-name").textContent = `${person.display_name}（${t(`role_${person.role}`)}）`;
  document.getElementById("qr-url").textContent = link.url;
  document.getElementById("qr-close").onclick = () => dialog.close();
  dialog.showModal();
}

async function copyLink(person, note) {
  const url = issued.get(person.id)?.url;
  try {
    await navigator.clipboard.writeText(url);
    note.textContent = t("sc_copied");
  } catch {
    note.textContent = t("sc_copy_failed");
  }
}

// -- the people and their links ----------------------------------------------------------
function linkText(state, person) {
  if (!state) return t(person.role === "station" ? "sc_station_logs_in" : "sc_logs_in");
  const until = state.invitation ? formatTime(state.invitation.not_after) : "";
  const from = state.invitation ? formatTime(state.invitation.not_before) : "";
  let text = tf(`sc_ls_${state.state}`, { t: state.state === "not_yet_valid" ? from : until });
  if (state.superseded) text += `（${tf("sc_ls_superseded", { n: state.superseded })}）`;
  return text;
}

function hiddenName(name) {
  return el("span", { class: "vh" }, ` ${name}`);
}

function personRow(p) {
  const state = links.get(p.id);
  const sideOf = people.find((x) => x.id === p.represents_id);
  const role = t(`role_${p.role}`) + (sideOf ? ` · ${sideOf.display_name}` : "");
  const stateCell = el("td", { testid: "link-state" }, linkText(state, p));
  const actions = el("td", { class: "actions" });
  const row = el("tr", { testid: "person-row", "data-participant-id": p.id },
    el("td", {}, p.display_name), el("td", {}, role), stateCell, actions);
  if (!state || booking.state === "closed") return [row];
  const live = state.state === "valid" || state.state === "used" || state.state === "not_yet_valid";
  const issue = el("button", { type: "button", testid: live ? "reissue-link" : "issue-link" },
    t(live ? "sc_reissue" : "sc_issue"), hiddenName(p.display_name));
  issue.addEventListener("click", () => issueLink(p, live));
  actions.append(issue);
  if (live) {
    const revoke = el("button", { type: "button", class: "danger", testid: "revoke-link" },
      t("sc_revoke"), hiddenName(p.display_name));
    revoke.addEventListener("click", () => revokeLink(p, state));
    actions.append(revoke);
  }
  const fresh = issued.get(p.id);
  if (!fresh || !live) return [row];
  const note = el("span", { class: "notice", role: "status", testid: "copy-note" });
  const url = el("input", { readonly: true, value: fresh.url, testid: "link-url",
    "aria-label": `${t("sc_link")} ${p.display_name}` });
  url.addEventListener("focus", () => url.select());
  const copy = el("button", { type: "button", testid: "copy-link" }, t("sc_copy"), hiddenName(p.display_name));
  copy.addEventListener("click", () => copyLink(p, note));
  const qr = el("button", { type: "button", testid: "show-qr" }, t("sc_show_qr"), hiddenName(p.display_name));
  qr.addEventListener("click", () => showQr(p));
  const linkRow = el("tr", { class: "link-row", testid: "link-row", "data-participant-id": p.id },
    el("td", { colspan: 4 }, el("div", { class: "link-box" }, url, copy, qr, note)));
  return [row, linkRow];
}

async function issueLink(p, live) {
  if (live && !(await confirmAction(t("sc_reissue_confirm"), t("sc_reissue")))) return;
  pageError.textContent = "";
  try {
    // Valid from now until a day after the hearing's booked end (at least a day).
    const hours = Math.ceil((Date.parse(booking.scheduled_end) - Date.now()) / 3600000) + 24;
    const body = { valid_for_hours: Math.min(Math.max(hours, 24), MAX_LINK_HOURS) };
    const out = await api("POST", `/api/hearings/${hearingId}/participants/${p.id}/invitations`, body);
    issued.set(p.id, { url: out.url, qr_svg: out.qr_svg });
    await loadPeople();
  } catch (err) {
    pageError.textContent = errorText(err);
  }
}

async function revokeLink(p, state) {
  if (!(await confirmAction(t("sc_revoke_confirm"), t("sc_revoke")))) return;
  pageError.textContent = "";
  try {
    await api("POST", `/api/invitations/${state.invitation.id}/revoke`);
    issued.delete(p.id);
    await loadPeople();
  } catch (err) {
    pageError.textContent = errorText(err);
  }
}

function renderPeople() {
  const body = document.getElementById("people");
  body.replaceChildren();
  // The people who need links first; staff and the station (who sign in) after them.
  const ordered = [...people.filter((p) => !STAFF_ROLES.has(p.role)), ...people.filter((p) => STAFF_ROLES.has(p.role))];
  for (const p of ordered) body.append(...personRow(p));
  const represents = personForm.elements.namedItem("represents_id");
  const chosen = represents.value;
  represents.replaceChildren(option("", t("sc_none")));
  for (const p of people.filter((x) => x.role === "plaintiff" || x.role === "defendant")) {
    represents.append(option(p.id, `${p.display_name}（${t(`role_${p.role}`)}）`, p.id === chosen));
  }
  const role = personForm.elements.namedItem("role");
  const r0 = role.value;
  role.replaceChildren(option("", t("sc_choose")));
  for (const r of PARTY_ROLES) role.append(option(r, t(`role_${r}`), r === r0));
  personForm.hidden = booking.state === "closed";
  document.getElementById("link-once").hidden = booking.state === "closed";
}

async function loadPeople() {
  const [all, states] = await Promise.all([
    api("GET", `/api/hearings/${hearingId}/participants`),
    api("GET", `/api/hearings/${hearingId}/links`),
  ]);
  people = all;
  links = new Map(states.map((s) => [s.participant.id, s]));
  renderPeople();
}

personForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  personErrors.clear();
  const role = value(personForm, "role");
  const name = value(personForm, "legal_name");
  const digits = value(personForm, "id_number_tail");
  const phone = value(personForm, "phone");
  const side = value(personForm, "represents_id");
  if (!role) personErrors.add("role", t("sc_err_role_missing"));
  if (!name) personErrors.add("legal_name", t("sc_err_name_missing"));
  if (!/^[0-9]{3,7}[0-9Xx]$/.test(digits)) personErrors.add("id_number_tail", t("sc_err_id_digits"));
  if (phone && !/^\+?[0-9][0-9 -]{4,19}$/.test(phone)) personErrors.add("phone", t("sc_err_phone"));
  if (NEEDS_SIDE.has(role) && !side) personErrors.add("represents_id", t("sc_err_represents_missing"));
  if (personErrors.show()) return;
  try {
    await api("POST", `/api/hearings/${hearingId}/participants`, {
      display_name: name, legal_name: name, role, id_number_tail: digits,
      phone: phone || null, represents_id: side || null,
    });
    personForm.reset();
    await loadPeople();
    personForm.elements.namedItem("role").focus();
  } catch (err) {
    personErrors.fromApi(err, {
      legal_name: "sc_err_name_missing", display_name: "sc_err_name_missing",
      id_number_tail: "sc_err_id_digits", phone: "sc_err_phone",
      represents_id: "sc_err_represents_missing", role: "sc_err_role_missing",
    });
  }
});

// -- the booking -------------------------------------------------------------------------
async function renderBooking() {
  const { stations, staff } = await bookingChoices();
  const name = (id) => staff.find((u) => u.id === id)?.display_name ?? t("sc_nothing");
  document.getElementById("case-link").textContent = `${t("sc_case_page")} ${theCase.number} · ${theCase.title}`;
  document.getElementById("case-link").href = `/cases/${theCase.id}`;
  document.getElementById("hearing-title").textContent = booking.title;
  document.getElementById("hearing-time").textContent =
    `${formatTime(booking.scheduled_start)} – ${formatTime(booking.scheduled_end, { year: undefined, month: undefined, day: undefined })}`;
  const state = booking.cancel_reason
    ? `${t("sc_cancelled")}（${tf("sc_cancelled_because", { r: booking.cancel_reason })}）`
    : t(`state_${booking.state}`);
  document.getElementById("hearing-state").textContent = state;
  document.getElementById("hearing-station").textContent =
    stations.find((s) => s.id === booking.station_id)?.name ?? t("sc_no_station");
  document.getElementById("hearing-presiding").textContent = name(booking.presiding_user_id);
  document.getElementById("hearing-clerk").textContent = booking.clerk_user_id ? name(booking.clerk_user_id) : t("sc_no_clerk");
  const room = document.getElementById("room-link");
  room.href = `/hearings/${hearingId}/room`;
  room.hidden = booking.state === "closed";
  const summary = document.getElementById("summary-link");
  summary.href = `/hearings/${hearingId}/summary`;
  summary.hidden = booking.state !== "closed";
  const editable = booking.state === "scheduled";
  document.getElementById("edit-card").hidden = !editable;
  if (editable) {
    await fillBookingSelects(editForm, {
      station_id: booking.station_id ?? "", presiding_user_id: booking.presiding_user_id,
      clerk_user_id: booking.clerk_user_id ?? "",
    });
  }
}

function fillEditForm() {
  const start = courtDateTime(booking.scheduled_start);
  editForm.elements.namedItem("title").value = booking.title;
  editForm.elements.namedItem("date").value = start.date;
  editForm.elements.namedItem("time").value = start.time;
  editForm.elements.namedItem("duration_minutes").value = minutesBetween(booking.scheduled_start, booking.scheduled_end);
}

editForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  document.getElementById("edit-saved").textContent = "";
  const body = bookingBody(editForm, editErrors);
  if (!body) return;
  try {
    booking = await api("PUT", `/api/hearings/${hearingId}/booking`, body);
    await renderBooking();
    await loadPeople();
    document.getElementById("edit-saved").textContent = t("sc_saved");
  } catch (err) {
    editErrors.fromApi(err, BOOKING_MESSAGES);
  }
});

cancelForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  cancelErrors.clear();
  const reason = value(cancelForm, "reason");
  if (!reason) { cancelErrors.add("reason", t("sc_err_reason_missing")); cancelErrors.show(); return; }
  if (!(await confirmAction(t("sc_cancel_confirm"), t("sc_cancel_hearing")))) return;
  try {
    booking = await api("POST", `/api/hearings/${hearingId}/cancel`, { reason });
    await renderBooking();
    await loadPeople();
  } catch (err) {
    cancelErrors.fromApi(err, { reason: "sc_err_reason_missing" });
  }
});

async function load() {
  booking = await api("GET", `/api/hearings/${hearingId}/booking`);
  theCase = await api("GET", `/api/cases/${booking.case_id}`);
  await renderBooking();
  fillEditForm();
  await loadPeople();
}

await staffPage(() => { if (booking) { renderBooking(); renderPeople(); } });
load().catch((err) => { pageError.textContent = errorText(err); });
