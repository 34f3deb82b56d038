// The hearing room: entry steps, waiting room, media with the SFU (peer.js), and the court's
// controls.
import { api } from "./api.js";
import { applyStrings, t, errorText } from "./i18n.js";
import { CourtPeer, localMedia } from "./peer.js";
import { SignalingClient } from "./signaling.js";

applyStrings();

const hearingId = location.pathname.split("/")[2];
const $ = (id) => document.getElementById(id);
const room = {
  me: null, // welcome
  state: "connecting",
  hearingState: null,
  recording: false,
  recordingPause: null, // the RecordingPause of an interruption by presiding staff
  roster: new Map(),
  tiles: new Map(), // participant id -> {figure, video, stream}
  peer: null, // CourtPeer
  pc: null, // its RTCPeerConnection (tests read its stats)
  sig: null,
  departures: [],
  spotlight: null,
  // When things happened (performance.now() ms), for support staff and tests.
  timings: { connected: null, firstFrame: new Map() },
};
window.courtRoom = room; // for tests and support staff (read-only use)

const STAFF = new Set(["judge", "clerk", "mediator"]);

function notice(text) {
  $("notice").textContent = text ?? "";
}

function show(section, visible) {
  $(section).hidden = !visible;
}

// -- media ------------------------------------------------------------------------------

async function ownMedia() {
  try {
    const stream = await localMedia();
    $("self-view").srcObject = stream;
    return stream;
  } catch (err) {
    notice(`${t("no_devices")} (${err.name})`);
    return null;
  }
}

function tileFor(participantId) {
  let tile = room.tiles.get(participantId);
  if (!tile) {
    const figure = document.createElement("figure");
    figure.className = "tile";
    figure.dataset.participantId = participantId;
    const video = document.createElement("video");
    video.autoplay = true;
    video.playsInline = true;
    const caption = document.createElement("figcaption");
    figure.append(video, caption);
    $("tiles").append(figure);
    const stream = new MediaStream();
    video.srcObject = stream;
    if (video.requestVideoFrameCallback) {
      video.requestVideoFrameCallback((now) => {
        if (!room.timings.firstFrame.has(participantId)) room.timings.firstFrame.set(participantId, now);
      });
    }
    tile = { figure, video, stream, caption };
    room.tiles.set(participantId, tile);
  }
  const info = room.roster.get(participantId);
  tile.caption.textContent = info ? info.display_name : "";
  tile.figure.classList.toggle("muted", Boolean(info?.muted));
  tile.figure.classList.toggle("spotlight", room.spotlight === participantId);
  return tile;
}

function onTrack(owner, track) {
  const tile = tileFor(owner);
  for (const old of tile.stream.getTracks().filter((x) => x.kind === track.kind)) {
    tile.stream.removeTrack(old);
  }
  tile.stream.addTrack(track);
  tile.video.play().catch(() => {});
}

function pruneTiles() {
  // Keep tiles only for people in my media room (the roster says where everyone is).
  for (const [pid, tile] of room.tiles) {
    const info = room.roster.get(pid);
    const here = info && info.connected && info.room_id && info.room_id === room.me?.room_id;
    if (!here) {
      tile.figure.remove();
      room.tiles.delete(pid);
    }
  }
}

async function startMedia(iceServers) {
  const stream = await ownMedia();
  // The server offers (and names tracks) only once this page's own offer has been answered.
  room.peer = new CourtPeer(room.sig, {
    onTrack,
    onConnectionState: (state) => {
      if (state === "connected" && room.timings.connected === null) {
        room.timings.connected = room.peer.connectedAt;
      }
    },
  });
  const started = room.peer.start(iceServers, stream);
  room.pc = room.peer.pc;
  await started;
}

// -- state and roster -----------------------------------------------------------------------

function render() {
  const state = room.state;
  $("room").dataset.state = state;
  // Once this connection has ended, the badge says so (UI.md: never "庭审中" after leaving),
  // and there is nothing left to leave.
  const gone = state === "closed" && room.hearingState !== "closed";
  show("leave", state !== "closed");
  $("hearing-state").textContent = gone
    ? t("pstate_left")
    : room.hearingState
    ? t(`state_${room.hearingState}`) +
      (room.recording ? ` · ● ${t("recording_on")}` : "") +
      (room.recordingPause ? ` · ${t(`pb_reason_${room.recordingPause}`)}` : "")
    : "";
  $("hearing-state").dataset.recording = String(Boolean(room.recording));
  // Why presiding staff interrupted the recording (null otherwise; a recess is its state).
  $("hearing-state").dataset.recordingPause = room.recordingPause ?? "";
  const inSession = room.hearingState === "in_session";
  show("pause-recording", inSession && Boolean(room.recording));
  show("pause-reason", inSession && Boolean(room.recording));
  show("resume-recording", inSession && !room.recording);
  const isStaff = STAFF.has(room.me?.role);
  $("room").classList.toggle("staff", isStaff);
  show("staff-panel", isStaff);
  show("entry", state === "invited" || state === "identity_confirmed");
  show("identity-form", state === "invited");
  show("waiting", state === "waiting");
  show("stage", state === "in_hearing" || state === "in_private_room" || state === "waiting");
  const me = room.roster.get(room.me?.participant_id);
  show("mute-notice", Boolean(me?.muted));
  show("ask-to-speak", Boolean(me?.muted) && !isStaff);
  if (isStaff) renderRoster();
  for (const pid of room.tiles.keys()) tileFor(pid);
  pruneTiles();
}

function controlButton(label, type, fields) {
  const button = document.createElement("button");
  button.textContent = t(label);
  button.dataset.action = type;
  button.onclick = () => request(type, fields);
  return button;
}

function renderRoster() {
  const body = $("roster");
  body.replaceChildren();
  for (const p of room.roster.values()) {
    if (p.participant_id === room.me.participant_id) continue;
    const row = body.insertRow();
    row.dataset.participantId = p.participant_id;
    row.dataset.state = p.state;
    row.insertCell().textContent = `${p.display_name} (${t(`role_${p.role}`)})`;
    row.insertCell().textContent = t(`pstate_${p.state}`) + (p.connected ? "" : " ⨯");
    const actions = row.insertCell();
    const pid = { participant_id: p.participant_id };
    if (p.state === "waiting" && p.role !== "witness" && p.role !== "expert") {
      actions.append(controlButton("admit", "admit", pid));
    }
    if (p.state === "waiting" && (p.role === "witness" || p.role === "expert")) {
      actions.append(controlButton("call_witness", "call_witness", pid));
    }
    if (p.state === "in_hearing" && (p.role === "witness" || p.role === "expert")) {
      actions.append(controlButton("dismiss_witness", "dismiss_witness", pid));
    }
    if (p.state === "in_hearing" || p.state === "in_private_room") {
      actions.append(controlButton("to_waiting", "send_to_waiting", pid));
    }
    if (p.connected) {
      actions.append(p.muted ? controlButton("unmute", "unmute", pid) : controlButton("mute", "mute", pid));
      actions.append(controlButton("spotlight", "spotlight", pid));
    }
    actions.append(controlButton("remove", "remove", { ...pid, reason: t("remove_reason") }));
  }
  const list = $("departures");
  list.replaceChildren();
  for (const d of room.departures) {
    const item = document.createElement("li");
    const who = room.roster.get(d.participant_id)?.display_name ?? d.participant_id;
    item.textContent = `${new Date(d.detected_at).toLocaleTimeString()} ${who}: ${t(`cause_${d.reason}`)}`;
    item.dataset.reason = d.reason;
    list.append(item);
  }
}

async function request(type, fields = {}) {
  try {
    notice("");
    return await room.sig.request(type, fields);
  } catch (err) {
    notice(errorText(err));
    return null;
  }
}

// -- the recording's integrity value (AVR 9) -----------------------------------------------------

function showRecordingHash(message) {
  const box = $("recording-hash");
  box.hidden = false;
  box.dataset.recordingId = message.recording_id;
  $("root-hash").textContent = message.root_hash;
  if (STAFF.has(room.me?.role)) {
    // Presiding staff can review the sealed recording at once.
    const link = $("play-recording");
    link.href = `/hearings/${hearingId}/recordings/${message.recording_id}`;
    link.hidden = false;
  }
  $("confirm-hash").onclick = async () => {
    const path = `/api/hearings/${hearingId}/recordings/${message.recording_id}/confirm`;
    try {
      const result = await api("POST", path, { root_hash: message.root_hash, confirmed: true });
      $("confirm-hash").disabled = true;
      box.dataset.confirmed = String(result.matches);
    } catch (err) {
      notice(errorText(err));
    }
  };
}

// -- signaling ------------------------------------------------------------------------------

function onEvent(message) {
  switch (message.type) {
    case "roster":
      room.roster = new Map(message.participants.map((p) => [p.participant_id, p]));
      room.spotlight = message.participants.find((p) => p.spotlighted)?.participant_id ?? null;
      break;
    case "moved":
      room.state = message.state;
      room.me.room_id = message.room_id;
      break;
    case "hearing_state":
      room.hearingState = message.state;
      room.recording = message.recording;
      room.recordingPause = message.recording_pause ?? null;
      break;
    case "track":
      room.peer?.setTrackOwner(message.mid, message.participant_id);
      break;
    case "muted":
      notice(message.muted ? t("muted_by_court") : t("unmuted"));
      break;
    case "unmute_requested": {
      const who = room.roster.get(message.participant_id)?.display_name ?? "";
      notice(`${who}: ${t("asks_to_speak")}`);
      break;
    }
    case "recording_hash":
      showRecordingHash(message);
      return;
    case "recording_alert":
      notice(`${t("recording_alert")}: ${message.code} ${message.message}`);
      return;
    case "station_reported": {
      const who = room.roster.get(message.participant_id)?.display_name ?? "";
      notice(`${t("station_reported")} ${who}: ${message.cause} ${message.detail ?? ""}`);
      return;
    }
    case "disconnect_evidence":
      room.departures.push(message);
      break;
    case "offer":
      room.peer?.handleOffer(message);
      return;
    case "closed":
      room.state = "closed";
      notice(t(`cause_${message.reason}`));
      room.peer?.close();
      break;
    default:
      return;
  }
  render();
}

async function main() {
  let me;
  try {
    me = await api("GET", "/api/auth/me");
  } catch {
    location.assign("/");
    return;
  }
  if (me.principal?.kind === "party") {
    location.replace(`/hearings/${hearingId}/attend`); // a party's own page (party.js)
    return;
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  room.sig = new SignalingClient(`${scheme}//${location.host}/ws`, { onEvent });
  await room.sig.connect();
  const welcome = await room.sig.join(hearingId);
  room.me = welcome;
  room.state = welcome.state;
  room.hearingState = welcome.hearing_state;
  room.recording = welcome.recording;
  room.recordingPause = welcome.recording_pause ?? null;
  room.roster = new Map(welcome.roster.map((p) => [p.participant_id, p]));
  render();
  await startMedia(welcome.ice_servers);
}

// -- the page's own controls -------------------------------------------------------------------

$("identity-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("entry-error").textContent = "";
  try {
    await room.sig.request("confirm_identity", {
      name: $("legal-name").value.trim(),
      id_digits: $("id-digits").value.trim(),
    });
  } catch (err) {
    $("entry-error").textContent = errorText(err);
  }
});

$("consent-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("entry-error").textContent = "";
  const accepted = [...ev.target.querySelectorAll("input:checked")].map((i) => i.name);
  try {
    await room.sig.request("consent", { accepted_rules: accepted });
  } catch (err) {
    $("entry-error").textContent = errorText(err);
  }
});

$("ask-to-speak").onclick = () => request("request_unmute");
$("leave").onclick = async () => {
  await room.sig.leave().catch(() => {});
  room.peer?.close();
  location.assign(STAFF.has(room.me?.role) ? "/dashboard" : "/");
};
for (const button of document.querySelectorAll("#staff-panel [data-action]")) {
  button.onclick = () => {
    const action = button.dataset.action;
    if (action === "admit_all") request("admit", { all: true });
    if (action === "mute_all") request("mute_all");
    if (action === "lock") {
      const locked = button.dataset.locked !== "true";
      button.dataset.locked = String(locked);
      request("lock_room", { locked });
    }
  };
}
// Interrupting the recording in session needs a lawful reason; the note goes on the record.
$("pause-recording").onclick = () => {
  const note = $("state-reason").value.trim();
  $("state-reason").value = "";
  request("set_recording", { recording: false, reason: $("pause-reason").value, note: note || null });
};
$("resume-recording").onclick = () => request("set_recording", { recording: true });
for (const button of document.querySelectorAll("#state-buttons [data-state]")) {
  button.onclick = () => {
    // Every state change needs a reason for the record; the usual one is offered.
    const field = $("state-reason");
    const reason = field.value.trim() || t(`reason_${button.dataset.state}`);
    field.value = "";
    request("set_hearing_state", { state: button.dataset.state, reason });
  };
}

main().catch((err) => notice(errorText(err)));
