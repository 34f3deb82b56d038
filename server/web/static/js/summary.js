// A hearing's summary, from its hash-chained event log: the recordings with their root hash
// and who confirmed or disputed it, departures with their causes, the station's backups, and
// the whole timeline. What a closed hearing opens instead of a dead room.
import { api, t, tf, staffPage, el, formatTime, errorText } from "./staff.js";

const hearingId = location.pathname.split("/")[2];
let summary = null;
const SECONDS = { second: "2-digit" };

function nameOf(id) {
  const p = summary.participants.find((x) => x.id === id);
  return p ? `${p.display_name}（${t(`role_${p.role}`)}）` : t("sc_unknown_person");
}

// "participant:<id>", "user:<id>", "station:<id>", "server" -> a name.
function actorName(actor) {
  const [kind, id] = actor.split(":");
  if (kind === "participant") return nameOf(id);
  if (kind === "user") {
    const p = summary.participants.find((x) => x.user_id === id);
    return p ? nameOf(p.id) : t("sc_server");
  }
  if (kind === "station") return t("role_station");
  return t("sc_server");
}

function eventText(e) {
  const key = `sc_ev_${e.kind.replace(".", "_")}`;
  let text = t(key);
  if (e.kind === "hearing.state" && e.data.action) text = `${text}：${t(`sc_action_${e.data.action}`)}`;
  if (e.data.participant_id && e.kind !== "participant.departed") text += ` · ${nameOf(e.data.participant_id)}`;
  if (e.kind === "participant.departed") text += ` · ${nameOf(e.data.participant_id)} · ${t(`cause_${e.data.cause}`)}`;
  if (e.data.reason && typeof e.data.reason === "string" && e.kind === "hearing.state") text += `（${e.data.reason}）`;
  return text;
}

function render() {
  if (!summary) return;
  const h = summary.hearing;
  document.getElementById("hearing-title").textContent = h.title;
  document.getElementById("hearing-time").textContent = formatTime(h.scheduled_start);
  document.getElementById("hearing-state").textContent = h.cancel_reason
    ? `${t("sc_cancelled")}（${tf("sc_cancelled_because", { r: h.cancel_reason })}）` : t(`state_${h.state}`);
  if (summary.case) {
    const link = document.getElementById("case-link");
    link.textContent = `${t("sc_case_page")} ${summary.case.number} · ${summary.case.title}`;
    link.href = `/cases/${summary.case.id}`;
  }
  document.getElementById("booking-link").href = `/hearings/${hearingId}/booking`;
  document.getElementById("recordings-link").href = `/hearings/${hearingId}/recordings`;

  const recordings = document.getElementById("recordings");
  recordings.replaceChildren();
  if (!summary.recordings.length) recordings.append(el("p", { class: "muted" }, t("sc_nothing")));
  for (const r of summary.recordings) {
    const who = el("ul", { testid: "confirmations" });
    for (const c of r.confirmations) {
      who.append(el("li", { class: c.confirmed && c.matches ? "ok" : "attention" },
        `${nameOf(c.participant_id)} ${t(c.confirmed && c.matches ? "sc_confirmed" : "sc_disputed")} · ${formatTime(c.at, SECONDS)}`));
    }
    if (!r.confirmations.length) who.append(el("li", { class: "muted" }, t("sc_no_confirmations")));
    recordings.append(el("div", { class: "recording", testid: "recording" },
      el("p", {}, `${formatTime(r.at, SECONDS)} · ${t(`pb_state_${r.status}`)}`),
      el("p", {}, `${t("sc_root_hash")}：`, el("code", { testid: "root-hash" }, r.root_hash ?? "")),
      who));
  }

  const departures = document.getElementById("departures");
  departures.replaceChildren();
  if (!summary.departures.length) departures.append(el("tr", {}, el("td", { colspan: 3 }, t("sc_nothing"))));
  for (const d of summary.departures) {
    departures.append(el("tr", { testid: "departure" }, el("td", {}, formatTime(d.at, SECONDS)),
      el("td", {}, nameOf(d.participant_id)),
      el("td", {}, t(`cause_${d.cause}`) + (d.excused ? `（${t("sc_excused")}）` : ""))));
  }

  const backups = document.getElementById("backups");
  backups.replaceChildren();
  if (!summary.station_backups.length) backups.append(el("p", { class: "muted" }, t("sc_nothing")));
  for (const b of summary.station_backups) {
    backups.append(el("p", { testid: "backup" }, `${formatTime(b.at, SECONDS)} · `,
      t(b.received ? "sc_backup_received" : "sc_backup_pending"),
      b.root_hash ? el("span", {}, ` · ${t("sc_root_hash")}：`, el("code", {}, b.root_hash)) : ""));
  }

  const timeline = document.getElementById("timeline");
  timeline.replaceChildren();
  for (const e of summary.events) {
    timeline.append(el("tr", { testid: "event", "data-kind": e.kind }, el("td", {}, formatTime(e.at, SECONDS)),
      el("td", {}, actorName(e.actor)), el("td", {}, eventText(e))));
  }
}

await staffPage(render);
try {
  summary = await api("GET", `/api/hearings/${hearingId}/summary`);
  render();
} catch (err) {
  document.getElementById("error").textContent = errorText(err);
}
