// The dashboard: today's and upcoming hearings (and those closed this week), by court,
// station and presiding judge, each with its readiness: who is waiting, who is in, who is
// not here yet, and whether the station is connected. Refreshed every 15 s. A closed
// hearing links to its summary, not to a dead room.
import { api, t, tf, staffPage, el, option, formatTime, errorText, PRESIDING } from "./staff.js";

const REFRESH_MS = 15000;
const body = document.getElementById("hearings");
const filters = {
  court: document.getElementById("filter-court"),
  station: document.getElementById("filter-station"),
  judge: document.getElementById("filter-judge"),
};
let me = null;
let board = null;

function fillFilter(select, pairs) {
  const chosen = select.value;
  select.replaceChildren(option("", t("sc_all")));
  for (const [value, label] of pairs) select.append(option(value, label, value === chosen));
}

function readiness(h) {
  const parties = h.people.filter((p) => !PRESIDING.has(p.role) && p.role !== "station");
  const waiting = parties.filter((p) => p.connected && p.state === "waiting").length;
  const inside = h.people.filter((p) => p.connected && (p.state === "in_hearing" || p.state === "in_private_room")).length;
  const absent = parties.filter((p) => !p.connected).length;
  const cell = el("td", { testid: "readiness" });
  if (h.state === "closed") return cell;
  const line = el("div", {},
    el("span", { class: waiting ? "badge attention" : "badge" }, tf("sc_waiting_n", { n: waiting })), " ",
    el("span", { class: "badge" }, tf("sc_in_n", { n: inside })), " ",
    el("span", { class: "badge muted" }, tf("sc_expected_n", { n: absent })));
  cell.append(line);
  if (h.station_id) {
    cell.append(el("div", { class: h.station_online ? "online" : "offline", testid: "station-status" },
      t(h.station_online ? "sc_station_online" : "sc_station_offline")));
    if (h.station_self_test) {
      cell.append(el("div", { class: `self-test ${h.station_self_test}`, testid: "station-self-test" },
        `${t("sc_station_self_test")}: ${t(`ready_${h.station_self_test}`)}`));
    }
  }
  const here = h.people.filter((p) => p.connected && !PRESIDING.has(p.role) && p.role !== "station");
  if (here.length) {
    cell.append(el("div", { class: "muted small" },
      here.map((p) => `${p.display_name}（${t(`pstate_${p.state}`)}）`).join("、")));
  }
  return cell;
}

function row(h) {
  const presiding = PRESIDING.has(me.role);
  const time = `${formatTime(h.scheduled_start, { year: undefined })} – ${formatTime(h.scheduled_end, { year: undefined, month: undefined, day: undefined })}`;
  const title = el("div", {}, h.title);
  const caseCell = el("td", {}, el("div", { class: "muted small" }, h.case_number ?? ""), title);
  const actions = el("td", { class: "actions" });
  if (h.state === "closed") {
    if (presiding) actions.append(el("a", { href: `/hearings/${h.id}/summary`, testid: "summary-link" }, t("sc_summary")));
  } else {
    actions.append(el("a", { href: `/hearings/${h.id}/room`, testid: "room-link" }, t("sc_enter_room")));
  }
  if (presiding) {
    actions.append(" ", el("a", { href: `/hearings/${h.id}/booking`, testid: "booking-link" }, t("sc_manage")));
    actions.append(" ", el("a", { href: `/hearings/${h.id}/recordings` }, t("recordings")));
  }
  const state = h.cancel_reason ? t("sc_cancelled") : t(`state_${h.state}`);
  return el("tr", { "data-hearing-id": h.id, testid: "hearing-row" },
    el("td", {}, time), caseCell, el("td", {}, h.station_name ?? t("sc_no_station")),
    el("td", {}, h.presiding_name ?? ""), readiness(h), el("td", { testid: "hearing-state" }, state), actions);
}

function render() {
  if (!board) return;
  const hs = board.hearings;
  fillFilter(filters.court, [...new Set(hs.map((h) => h.court_name))].map((n) => [n, n]));
  fillFilter(filters.station, [...new Map(hs.filter((h) => h.station_id).map((h) => [h.station_id, h.station_name]))]);
  fillFilter(filters.judge, [...new Map(hs.map((h) => [h.presiding_user_id, h.presiding_name ?? ""]))]);
  const shown = hs.filter((h) =>
    (!filters.court.value || h.court_name === filters.court.value)
    && (!filters.station.value || h.station_id === filters.station.value)
    && (!filters.judge.value || h.presiding_user_id === filters.judge.value));
  const today = Date.parse(board.today);
  const tomorrow = today + 24 * 3600 * 1000;
  const groups = [
    ["sc_today", shown.filter((h) => h.state !== "closed" && Date.parse(h.scheduled_start) < tomorrow)],
    ["sc_upcoming", shown.filter((h) => h.state !== "closed" && Date.parse(h.scheduled_start) >= tomorrow)],
    ["sc_recent_closed", shown.filter((h) => h.state === "closed")],
  ];
  body.replaceChildren();
  if (!hs.length) { body.append(el("tr", {}, el("td", { colspan: 7 }, t("no_hearings")))); return; }
  if (!shown.length) { body.append(el("tr", {}, el("td", { colspan: 7 }, t("sc_no_match")))); return; }
  for (const [key, list] of groups) {
    if (!list.length) continue;
    body.append(el("tr", { class: "group" }, el("th", { colspan: 7, scope: "rowgroup", testid: "group" }, t(key))));
    for (const h of list) body.append(row(h));
  }
}

async function refresh() {
  try {
    board = await api("GET", "/api/dashboard");
    document.getElementById("error").textContent = "";
    render();
  } catch (err) {
    document.getElementById("error").textContent = errorText(err);
  }
}

// The court's cases, newest first: where to schedule another hearing of a case.
async function loadCases() {
  const cases = await api("GET", "/api/cases");
  const list = document.getElementById("cases");
  list.replaceChildren(...cases.reverse().slice(0, 50).map((c) =>
    el("li", {}, el("a", { href: `/cases/${c.id}`, testid: "case-link" }, `${c.number} · ${c.title}`))));
  document.getElementById("cases-card").hidden = cases.length === 0;
}

for (const select of Object.values(filters)) select.addEventListener("change", render);
me = await staffPage(render);
document.getElementById("new-case").hidden = !PRESIDING.has(me.role);
// The court's statistics (issue 15.4): for court readers (presiding staff and administrators).
document.getElementById("statistics-link").hidden = !(PRESIDING.has(me.role) || me.role === "admin");
if (PRESIDING.has(me.role)) loadCases().catch(() => {});
await refresh();
setInterval(refresh, REFRESH_MS);
