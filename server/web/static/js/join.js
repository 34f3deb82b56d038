// The invitation token arrives in the URL fragment, which browsers never send to a server.
// Exchange it at once for a session cookie, then drop it from the address bar and history.
import { api } from "./api.js";
import { applyStrings, t, errorText, formatTime } from "./i18n.js";

applyStrings();
const status = document.getElementById("status");
const token = location.hash.slice(1);
history.replaceState(null, "", location.pathname);

// Why a link does not work, and what to do: not valid yet (from when), expired, withdrawn.
function invitationProblem(err) {
  const reason = err.details?.reason;
  if (reason === "not_yet_valid" && err.details.valid_from) {
    return t("p_join_not_yet_valid").replace("{time}", formatTime(err.details.valid_from));
  }
  if (reason === "expired") return t("p_join_expired");
  if (reason === "revoked") return t("p_join_revoked");
  return errorText(err);
}

async function redeem() {
  if (!token) {
    status.textContent = t("join_missing");
    status.className = "error";
    return;
  }
  status.textContent = t("join_checking");
  try {
    const session = await api("POST", "/api/invitations/redeem", { token });
    status.textContent = t("join_ok");
    status.dataset.participantId = session.principal.participant_id;
    const hearing = await api("GET", `/api/hearings/${session.principal.hearing_id}`);
    document.getElementById("hearing-title").textContent = hearing.title;
    const enter = document.getElementById("enter");
    enter.href = `/hearings/${hearing.id}/attend`;
    enter.hidden = false;
  } catch (err) {
    status.textContent = err.code === "INVALID_INVITATION" ? invitationProblem(err) : errorText(err);
    status.className = "error";
    status.dataset.code = err.code;
    status.dataset.reason = err.details?.reason ?? "";
  }
}
redeem();
