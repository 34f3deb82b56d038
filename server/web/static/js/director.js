// The station director's console (issue 14): the station PC's status and self-test, the
// station's hearings of the day with the people expected, and the in-person identity check.
import { api } from "./api.js";
import { applyStrings, t, errorText, formatTime } from "./i18n.js";

const STAFF = new Set(["judge", "clerk", "mediator"]);
const REFRESH_MS = 10000;
const highlight = new URLSearchParams(location.search).get("hearing");
let formOpen = false;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function badge(kind, text) {
  return el("span", { className: `badge ${kind}` }, text);
}

function identityText(person) {
  const method = person.identity_method;
  return method ? t(`director_identity_${method}`) : t("director_identity_none");
}

function renderStation(status) {
  const box = el("div", {
    className: "station", dataset: { online: String(status.online), testid: `station-${status.station_id}` },
  });
  box.append(el("h3", {}, status.station_name));
  const seen = status.last_seen_at ? `${t("director_last_seen")} ${formatTime(status.last_seen_at)}` : t("director_never_seen");
  box.append(el("p", {},
    badge(status.online ? "online" : "offline", t(status.online ? "director_online" : "director_offline")),
    " ", seen));
  const test = status.self_test;
  const result = el("div", { dataset: { testid: "self-test" } });
  if (!test) {
    result.append(el("p", {}, t("director_no_self_test")));
  } else {
    result.append(el("p", {}, `${t("director_self_test")} `,
      badge(test.overall, t(`director_score_${test.overall}`)), ` ${formatTime(status.self_test_at)}`));
    const list = el("ul", { className: "selftest" });
    for (const item of test.items) {
      const line = el("li", { dataset: { testid: `self-test-${item.check}`, score: item.score } },
        `${t(`director_check_${item.check}`)}：`, badge(item.score, t(`director_score_${item.score}`)));
      if (item.failure) line.append(` ${t(`director_fail_${item.failure}`)}`);
      list.append(line);
    }
    result.append(list);
  }
  box.append(result);
  box.append(el("p", { dataset: { testid: "backups-waiting" } },
    `${t("director_backups_waiting")}：${status.pending_backups}`));
  box.append(el("p", { dataset: { testid: "backups-not-received" } },
    `${t("director_backups_not_received")}：${status.backups_not_received}`));
  return box;
}

function checkForm(hearing, person, item) {
  const form = el("form", { className: "check-form", dataset: { testid: `check-form-${person.participant_id}` } });
  const nameId = `name-${person.participant_id}`;
  const digitsId = `digits-${person.participant_id}`;
  const error = el("p", { className: "error", role: "alert", dataset: { testid: "check-error" } });
  form.append(
    el("p", {}, t("director_check_help")),
    el("div", { className: "row" },
      el("div", {}, el("label", { htmlFor: nameId }, t("director_check_name")),
        el("input", { id: nameId, name: "name", required: true, autocomplete: "off" })),
      el("div", {}, el("label", { htmlFor: digitsId }, t("director_check_digits")),
        el("input", { id: digitsId, name: "digits", required: true, inputMode: "text", autocomplete: "off" }))),
    error,
    el("button", { type: "submit" }, t("director_check_submit")), " ",
    el("button", { type: "button", onclick: () => { formOpen = false; form.remove(); } }, t("director_cancel")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    try {
      await api("POST", `/api/station/hearings/${hearing.id}/participants/${person.participant_id}/identity-check`, {
        name: form.elements.name.value, id_digits: form.elements.digits.value.trim(),
      });
      formOpen = false;
      await load();
    } catch (err) {
      error.textContent = err.code === "BAD_FIELD" ? t("director_check_mismatch") : errorText(err);
      form.elements.name.focus();
    }
  });
  item.append(form);
  formOpen = true;
  form.elements.name.focus();
}

function renderHearing(h) {
  const box = el("article", {
    className: "hearing" + (h.id === highlight ? " highlight" : ""),
    dataset: { testid: `hearing-${h.id}`, state: h.state },
  });
  box.append(el("h3", {}, `${t("director_case")} ${h.case_number} · ${h.title}`));
  box.append(el("p", {}, `${h.court_name} · ${h.station_name} · ${formatTime(h.scheduled_start)} · `,
    el("strong", { dataset: { testid: "hearing-state" } }, t(`state_${h.state}`))));
  const list = el("ul", { className: "people", "aria-label": t("director_people") });
  const people = h.people.filter((p) => !STAFF.has(p.role));
  for (const p of people) {
    const item = el("li", { dataset: { testid: `person-${p.participant_id}` } },
      el("span", { className: "name" }, p.display_name),
      el("span", {}, t(`role_${p.role}`)),
      el("span", { className: p.identity_method ? "done" : "", dataset: { testid: "identity" } }, identityText(p)));
    if (!p.identity_method && h.state !== "closed") {
      const button = el("button", {
        type: "button", dataset: { testid: `check-${p.participant_id}` },
        "aria-label": `${t("director_check")} ${p.display_name}`,
      }, t("director_check"));
      button.onclick = () => { if (!item.querySelector("form")) checkForm(h, p, item); };
      item.append(button);
    }
    list.append(item);
  }
  if (people.length === 0) list.append(el("li", {}, t("director_no_people")));
  box.append(list);
  return box;
}

async function load() {
  const error = document.getElementById("error");
  try {
    const me = await api("GET", "/api/auth/me");
    document.getElementById("who").textContent = me.principal.display_name ?? "";
    const [stations, hearings] = await Promise.all([api("GET", "/api/stations"), api("GET", "/api/station/hearings")]);
    const statuses = await Promise.all(stations.map((s) => api("GET", `/api/stations/${s.id}/status`)));
    document.getElementById("stations").replaceChildren(
      ...(statuses.length ? statuses.map(renderStation) : [el("p", {}, t("director_no_station"))]));
    document.getElementById("hearings").replaceChildren(
      ...(hearings.length ? hearings.map(renderHearing) : [el("p", {}, t("director_no_hearings"))]));
    error.textContent = "";
    if (highlight) document.querySelector(".hearing.highlight")?.scrollIntoView({ block: "center" });
  } catch (err) {
    if (err.status === 401) { location.assign("/"); return; }
    error.textContent = errorText(err);
  }
}

applyStrings();
// applyStrings() sets the picker's own handler (it stores the choice); the page's data is
// drawn again in the new language after it.
const picker = document.getElementById("lang");
const storeChoice = picker.onchange;
picker.onchange = (ev) => { storeChoice?.call(picker, ev); load(); };
document.getElementById("logout").onclick = async () => {
  await api("POST", "/api/auth/logout").catch(() => {});
  location.assign("/");
};
load();
setInterval(() => { if (!formOpen) load(); }, REFRESH_MS);
