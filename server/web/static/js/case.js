// A case: what it is, its hearings, and a form to schedule another.
import { api, t, staffPage, el, causes, courtDateTime, formatTime, errorText } from "./staff.js";
import { bookingBody, fillBookingSelects, FormErrors, BOOKING_MESSAGES } from "./booking_form.js";

const caseId = location.pathname.split("/")[2];
const form = document.getElementById("schedule-form");
const errors = new FormErrors(form);
let theCase = null;
let hearings = [];

function render() {
  if (!theCase) return;
  document.getElementById("case-number").textContent = theCase.number;
  document.getElementById("case-title").textContent = theCase.title;
  document.getElementById("case-mode").textContent = t(`sc_mode_${theCase.mode}`);
  causes().then((list) => {
    document.getElementById("case-cause").textContent =
      list.find((c) => c.code === theCase.cause)?.label ?? t("sc_nothing");
  });
  const body = document.getElementById("case-hearings");
  body.replaceChildren();
  if (!hearings.length) body.append(el("tr", {}, el("td", { colspan: 3 }, t("sc_no_hearings_of_case"))));
  for (const h of hearings) {
    const link = el("a", { href: `/hearings/${h.id}/booking` }, h.title);
    const state = h.cancel_reason ? t("sc_cancelled") : t(`state_${h.state}`);
    body.append(el("tr", { "data-hearing-id": h.id },
      el("td", {}, formatTime(h.scheduled_start)), el("td", {}, link), el("td", {}, state)));
  }
  fillBookingSelects(form);
}

async function load() {
  [theCase, hearings] = await Promise.all([
    api("GET", `/api/cases/${caseId}`), api("GET", `/api/cases/${caseId}/hearings`),
  ]);
  if (!form.elements.namedItem("title").value) {
    form.elements.namedItem("title").value = theCase.mode === "mediation" ? "调解" : "开庭";
    const next = courtDateTime(new Date(Date.now() + 24 * 3600 * 1000).toISOString());
    form.elements.namedItem("date").value = next.date;
    form.elements.namedItem("time").value = "09:00";
  }
  render();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = bookingBody(form, errors);
  if (!body) return;
  try {
    const h = await api("POST", `/api/cases/${caseId}/bookings`, body);
    location.assign(`/hearings/${h.id}/booking`);
  } catch (err) {
    errors.fromApi(err, BOOKING_MESSAGES);
  }
});

await staffPage(render);
load().catch((err) => { document.getElementById("error").textContent = errorText(err); });
