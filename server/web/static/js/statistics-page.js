// The court's quality-and-efficiency view (issue 15.4): the figures of a period, filtered by
// station and cause of action, as key figures, charts (Chart.js, vendored as a static file:
// server/web/static/vendor/chartjs) and tables with the same numbers, and the same figures as
// a CSV download. Definitions: server/hearings/statistics.py and docs/ui.md "Statistics".
import { api, t, tf, staffPage, el, option, errorText, formatTime, causes } from "./staff.js";

const form = document.getElementById("st-filters");
const inputs = {
  from: document.getElementById("st-from"),
  to: document.getElementById("st-to"),
  station: document.getElementById("st-station"),
  cause: document.getElementById("st-cause"),
};
const charts = new Map();
const COLORS = { hearings: "#1d4f91", mediations: "#00703c", drops: "#a4161a", causes: "#7a5b00" };
let me = null;
let figures = null;
let causeList = [];

function courtToday() {
  return new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10);
}

function daysBefore(iso, n) {
  return new Date(Date.parse(`${iso}T00:00:00Z`) - n * 86400000).toISOString().slice(0, 10);
}

function query() {
  const q = new URLSearchParams({ from: inputs.from.value, to: inputs.to.value });
  if (inputs.station.value) q.set("station_id", inputs.station.value);
  if (inputs.cause.value) q.set("cause", inputs.cause.value);
  return q.toString();
}

function percent(x) {
  return x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)}%`;
}

function num(x, digits = 0) {
  return x === null || x === undefined ? "—" : Number(x).toFixed(digits);
}

function causeLabel(code) {
  if (!code) return t("st_no_cause");
  return causeList.find((c) => c.code === code)?.label ?? code;
}

function departureLabel(cause) {
  const key = `st_cause_${cause}`;
  const text = t(key);
  return text === key ? cause : text;
}

function figure(id, label, value) {
  return el("div", { testid: `fig-${id}` }, el("dt", {}, label), el("dd", { testid: `fig-${id}-value` }, value));
}

function renderFigures(s) {
  document.getElementById("st-court").textContent =
    tf("st_scope", { court: s.court_name, from: s.start, to: s.end });
  document.getElementById("st-figures").replaceChildren(
    figure("scheduled", t("st_scheduled"), String(s.scheduled)),
    figure("held", t("st_held"), String(s.held)),
    figure("hearings", t("st_hearings"), String(s.hearings)),
    figure("mediations", t("st_mediations"), String(s.mediations)),
    figure("cancelled", t("st_cancelled"), String(s.cancelled)),
    figure("success", t("st_success_rate"), percent(s.mediation.success_rate)),
    figure("days-mean", t("st_days_mean"), num(s.resolution.mean_days, 1)),
    figure("days-median", t("st_days_median"), num(s.resolution.median_days, 1)),
    figure("resolved", t("st_resolved"), `${s.resolution.resolved} / ${s.resolution.cases}`),
    figure("recordings", t("st_recordings_ok"), percent(s.recordings.share)),
    figure("no-shows", t("st_no_shows"), String(s.attendance.no_shows)),
    figure("excused", t("st_excused"), String(s.attendance.excused_departures)),
    figure("unexcused", t("st_unexcused"), String(s.attendance.unexcused_departures)),
  );
}

function groupName(section, g) {
  if (section === "by_cause") return causeLabel(g.id);
  if (section === "by_station" && !g.id) return t("st_court_desk");
  return g.name;
}

function renderGroups(s) {
  const rows = [];
  for (const section of ["by_court", "by_station", "by_judge", "by_cause"]) {
    for (const g of s[section]) {
      rows.push(el("tr", { testid: "st-group-row", "data-section": section },
        el("td", {}, t(`st_${section}`)), el("td", {}, groupName(section, g)),
        el("td", {}, String(g.hearings)), el("td", {}, String(g.mediations))));
    }
  }
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 4 }, t("st_nothing"))));
  document.getElementById("st-groups").replaceChildren(...rows);
}

function renderStations(s) {
  const rows = s.stations.map((q) => el("tr", { testid: "st-station-row", "data-station-id": q.station_id },
    el("td", {}, q.name), el("td", {}, String(q.held)),
    el("td", {}, q.self_test_overall
      ? `${t(`ready_${q.self_test_overall}`)}（${formatTime(q.self_test_at)}）` : "—"),
    el("td", {}, q.rtt_ms === null ? "—" : `${num(q.rtt_ms)} ms`),
    el("td", {}, percent(q.loss)),
    el("td", {}, `${q.line_drops}${q.drops_per_hearing === null ? "" : tf("st_per_hearing", { n: num(q.drops_per_hearing, 2) })}`),
    el("td", {}, String(q.station_reports))));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7 }, t("st_nothing"))));
  document.getElementById("st-stations").replaceChildren(...rows);
}

// One bar chart; its canvas also says in words what it shows (for screen readers).
function bar(id, labels, datasets, stacked = false, whole = true) {
  const canvas = document.getElementById(id);
  const words = labels.map((label, i) =>
    `${label}: ${datasets.map((d) => `${d.label} ${d.data[i]}`).join("，")}`).join("；");
  canvas.setAttribute("aria-label", words || t("st_nothing"));
  canvas.dataset.values = JSON.stringify(datasets.map((d) => d.data));
  const old = charts.get(id);
  if (old) old.destroy();
  const chart = new window.Chart(canvas, {
    type: "bar",
    data: { labels, datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      plugins: { legend: { display: datasets.length > 1 } },
      scales: {
        x: { stacked },
        y: { stacked, beginAtZero: true, ticks: whole ? { precision: 0 } : {} },
      },
    },
  });
  charts.set(id, chart);
}

function renderCharts(s) {
  const stations = s.by_station;
  bar("chart-station", stations.map((g) => groupName("by_station", g)), [
    { label: t("st_hearings"), data: stations.map((g) => g.hearings), backgroundColor: COLORS.hearings },
    { label: t("st_mediations"), data: stations.map((g) => g.mediations), backgroundColor: COLORS.mediations },
  ], true);
  bar("chart-judge", s.by_judge.map((g) => g.name), [
    { label: t("st_hearings"), data: s.by_judge.map((g) => g.hearings), backgroundColor: COLORS.hearings },
    { label: t("st_mediations"), data: s.by_judge.map((g) => g.mediations), backgroundColor: COLORS.mediations },
  ], true);
  const causesOf = Object.entries(s.attendance.by_cause);
  bar("chart-causes", causesOf.map(([c]) => departureLabel(c)), [
    { label: t("st_departures"), data: causesOf.map(([, n]) => n), backgroundColor: COLORS.causes },
  ]);
  bar("chart-quality", s.stations.map((q) => q.name), [
    { label: t("st_drops_per_hearing"), data: s.stations.map((q) => q.drops_per_hearing ?? 0), backgroundColor: COLORS.drops },
  ], false, false);
}

function render() {
  if (!figures) return;
  renderFigures(figures);
  renderGroups(figures);
  renderStations(figures);
  renderCharts(figures);
}

// Only the answer to the latest request is shown: an earlier one that arrives late (the
// first load, a double click) must not overwrite the figures of the filters now chosen.
let latest = 0;

async function load() {
  const q = query();
  const mine = ++latest;
  document.getElementById("st-csv").href = `/api/courts/${me.court_id}/statistics.csv?${q}`;
  try {
    const answer = await api("GET", `/api/courts/${me.court_id}/statistics?${q}`);
    if (mine !== latest) return;
    figures = answer;
    showError(null);
    render();
    document.getElementById("st-status").textContent = t("st_updated");
  } catch (err) {
    if (mine === latest) showError(err);
  }
}

async function fillChoices() {
  const stations = await api("GET", `/api/courts/${me.court_id}/statistics?from=${inputs.from.value}&to=${inputs.to.value}`);
  inputs.station.replaceChildren(option("", t("sc_all")),
    ...stations.stations.map((q) => option(q.station_id, q.name)));
  causeList = await causes();
  inputs.cause.replaceChildren(option("", t("sc_all")), ...causeList.map((c) => option(c.code, c.label)));
}

// The error shown, kept so that a language change says it again in the new language.
let shownError = null;

function showError(err) {
  shownError = err;
  const text = err === null ? "" : typeof err === "string" ? t(err) : errorText(err);
  document.getElementById("error").textContent = text;
  inputs.to.setAttribute("aria-invalid", err === "st_bad_period" ? "true" : "false");
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (inputs.from.value && inputs.to.value && inputs.to.value < inputs.from.value) {
    showError("st_bad_period");
    inputs.to.focus();
    return;
  }
  load();
});
me = await staffPage(async () => {
  causeList = await causes().catch(() => causeList);
  const chosen = inputs.cause.value;
  inputs.cause.replaceChildren(option("", t("sc_all")), ...causeList.map((c) => option(c.code, c.label, c.code === chosen)));
  if (inputs.station.options.length) inputs.station.options[0].textContent = t("sc_all");
  if (shownError !== null) showError(shownError);
  render();
});
const today = courtToday();
if (!inputs.to.value) inputs.to.value = today;
if (!inputs.from.value) inputs.from.value = daysBefore(inputs.to.value, 29);
try {
  await fillChoices();
} catch (err) {
  showError(err);
}
await load();
