import { api } from "./api.js";
import { applyStrings, t, errorText } from "./i18n.js";

const PRESIDING = new Set(["judge", "clerk", "mediator"]);

applyStrings();
document.getElementById("logout").onclick = async () => {
  await api("POST", "/api/auth/logout").catch(() => {});
  location.assign("/");
};

async function load() {
  let me;
  try {
    me = await api("GET", "/api/auth/me");
  } catch {
    location.assign("/");
    return;
  }
  document.getElementById("who").textContent =
    me.principal.display_name ?? me.principal.kind;
  const hearings = await api("GET", "/api/hearings");
  const body = document.getElementById("hearings");
  body.replaceChildren();
  if (hearings.length === 0) {
    const row = body.insertRow();
    row.insertCell().textContent = t("no_hearings");
    return;
  }
  for (const h of hearings) {
    const row = body.insertRow();
    row.dataset.hearingId = h.id;
    const link = document.createElement("a");
    link.href = `/hearings/${h.id}/room`;
    link.textContent = h.title;
    row.insertCell().append(link);
    row.insertCell().textContent = new Date(h.scheduled_start).toLocaleString();
    row.insertCell().textContent = t(`state_${h.state}`);
    if (PRESIDING.has(me.principal.role)) {
      const recordings = document.createElement("a");
      recordings.href = `/hearings/${h.id}/recordings`;
      recordings.textContent = t("recordings");
      row.insertCell().append(recordings);
    }
  }
}
load().catch((err) => { document.getElementById("error").textContent = errorText(err); });
