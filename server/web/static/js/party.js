// The party's page (issue 13): entry steps, waiting room and the hearing room on a phone.
//
// Phone first (360 px): the presiding judge or the spotlit speaker large, everyone else in a
// strip, one's own picture small; the controls at the bottom within thumb reach. The page
// keeps its place through dropped connections (StayingSession in signaling.js: "重新连接中…"
// meanwhile, never a blank page) and ends on a screen that says what happened and what to do
// next (left, removed, dismissed, replaced by another device, link withdrawn, hearing closed).
import { api } from "./api.js";
import { applyStrings, t, errorText, formatTime } from "./i18n.js";
import { CourtPeer, localMedia, newTile, showTrack } from "./peer.js";
import { StayingSession } from "./signaling.js";
import { acquire, browserFamily, browserSupported, measureNetwork, micMeter, playTone, score } from "./devicecheck.js";
import { recordChanged, showRecordSigning } from "./record-sign.js";
import { canCaptureScreen, isScreenKey, removeScreenTile, ScreenSharer, screenOwner, screenTile, showScreenTrack, trackOwner } from "./screenshare.js";

applyStrings();

const hearingId = location.pathname.split("/")[2];
const $ = (id) => document.getElementById(id);
const PRESIDING = ["judge", "mediator", "clerk"];
const room = {
  me: null, // the latest welcome
  state: "connecting", // the participant's state, or "ended"
  status: "connecting", // the connection: connecting | connected | reconnecting | ended
  ended: null, // why the visit ended: left | removed | dismissed | replaced | revoked | closed | refused
  hearing: null, // GET /api/hearings/{id}
  hearingState: null,
  recording: false,
  recordingPause: null,
  roster: new Map(),
  tiles: new Map(), // participant id -> {figure, video, stream, caption}
  screens: new Map(), // "<id>.screen" -> the tile of a shared screen (issue 13.4)
  spotlight: null,
  courtMuted: false,
  selfMuted: false,
  cameraOff: false,
  audioOnly: false,
  stream: null, // own camera and microphone, kept across reconnections
  peer: null,
  pc: null,
  session: null, // StayingSession
  rejoins: 0,
  recordingHash: null,
  check: null, // the device check: null (not needed) | "pending" | "done"
  checkResult: null, // what it found (camera, microphone, speaker, network, score, problems)
  mediaTried: false,
  // When things happened (performance.now() ms), for support staff and tests.
  timings: { connected: null, firstFrame: new Map(), reconnecting: null, rejoined: null },
};
window.courtRoom = room; // for tests and support staff (read-only use)

function notice(text) {
  $("notice").textContent = text ?? "";
}

function show(id, visible) {
  $(id).hidden = !visible;
}

// -- media ----------------------------------------------------------------------------------

async function ownMedia() {
  if (room.stream || room.mediaTried) return room.stream;
  room.mediaTried = true;
  try {
    room.stream = await localMedia();
  } catch {
    notice(t("no_devices")); // the hearing goes on: this phone receives only
    room.stream = null;
  }
  $("self-view").srcObject = room.stream;
  applyOwnTracks();
  return room.stream;
}

function applyOwnTracks() {
  for (const track of room.stream?.getAudioTracks() ?? []) track.enabled = !room.selfMuted;
  for (const track of room.stream?.getVideoTracks() ?? []) track.enabled = !room.cameraOff;
}

// Audio-only for a weak link: this phone stops sending video at all (not black frames).
async function applyVideoSending() {
  const sender = room.pc?.getSenders().find((s) => s.track?.kind === "video");
  if (!sender) return;
  const params = sender.getParameters();
  if (!params.encodings?.length) return;
  for (const encoding of params.encodings) encoding.active = !room.audioOnly;
  await sender.setParameters(params).catch(() => {});
}

function tileFor(participantId) {
  let tile = room.tiles.get(participantId);
  if (!tile) {
    tile = newTile(participantId, room.timings.firstFrame);
    $("tiles").append(tile.figure);
    room.tiles.set(participantId, tile);
  }
  const info = room.roster.get(participantId);
  tile.caption.textContent = info ? `${info.display_name} · ${t(`role_${info.role}`)}` : "";
  tile.figure.classList.toggle("muted", Boolean(info?.muted));
  tile.figure.dataset.role = info?.role ?? "";
  return tile;
}

function onTrack(owner, track) {
  if (isScreenKey(owner)) showScreenTrack(screenTileFor(owner), track);
  else showTrack(tileFor(owner), track);
  layout();
}

function pruneTiles() {
  for (const key of [...room.screens.keys()]) {
    const info = room.roster.get(screenOwner(key));
    if (!info?.connected || info.room_id !== room.me?.room_id) removeScreenTile(room.screens, key);
  }
  for (const [pid, tile] of room.tiles) {
    const info = room.roster.get(pid);
    const here = info && info.connected && info.room_id && info.room_id === room.me?.room_id;
    if (!here) {
      tile.figure.remove();
      room.tiles.delete(pid);
    }
  }
}

// The one shown large: the spotlit speaker, else the presiding seat, else whoever is there.
function mainSpeaker() {
  if (room.spotlight && room.tiles.has(room.spotlight)) return room.spotlight;
  for (const role of PRESIDING) {
    for (const pid of room.tiles.keys()) {
      if (room.roster.get(pid)?.role === role) return pid;
    }
  }
  return room.tiles.keys().next().value ?? null;
}

function layout() {
  // A shared screen is shown large; the speaker then takes a place in the strip.
  const main = room.screens.size ? null : mainSpeaker();
  for (const [pid, tile] of room.tiles) {
    tile.figure.classList.toggle("main", pid === main);
    tile.figure.classList.toggle("spotlight", pid === room.spotlight);
  }
  $("tiles").dataset.count = String(room.tiles.size);
}

async function startMedia(iceServers) {
  const stream = await ownMedia();
  room.peer?.close();
  room.peer = new CourtPeer(room.session.client, {
    onTrack,
    onConnectionState: (state) => {
      if (state === "connected" && room.timings.connected === null) {
        room.timings.connected = room.peer.connectedAt;
      }
      // The media transport failed while signaling lives on: join again (a fresh peer).
      if (state === "failed" && room.status === "connected") room.session.reconnect("ICE_FAILED");
      renderStatus();
    },
  });
  const started = room.peer.start(iceServers, stream);
  room.pc = room.peer.pc;
  await started;
  await applyVideoSending();
}

// A speaking indicator from the receivers' audio levels (no extra audio processing).
async function pollLevels() {
  const pc = room.pc;
  if (!pc || pc.connectionState === "closed") return;
  const stats = await pc.getStats().catch(() => null);
  if (!stats) return;
  const speaking = new Set();
  let mine = false;
  stats.forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio" && (r.audioLevel ?? 0) > 0.03) {
      const owner = room.peer?.midOwner.get(r.mid);
      if (owner) speaking.add(owner);
    }
    if (r.type === "media-source" && r.kind === "audio" && (r.audioLevel ?? 0) > 0.03) mine = true;
  });
  for (const [pid, tile] of room.tiles) tile.figure.classList.toggle("speaking", speaking.has(pid));
  $("self-tile").classList.toggle("speaking", mine && !room.selfMuted && !room.courtMuted);
}

// -- what the page shows ----------------------------------------------------------------------

function badgeText() {
  if (room.ended) return t(`p_badge_${room.ended}`);
  if (!room.hearingState) return "";
  return t(`state_${room.hearingState}`) +
    (room.recording ? ` · ● ${t("recording_on")}` : "") +
    (room.recordingPause ? ` · ${t(`pb_reason_${room.recordingPause}`)}` : "");
}

function renderStatus() {
  const reconnecting = room.status === "reconnecting" ||
    (room.status === "connected" && room.pc?.connectionState === "disconnected");
  show("reconnecting", reconnecting && !room.ended);
  $("room").dataset.status = room.ended ? "ended" : room.status;
}

// The court frame on a phone (OLR 24): which court and case this is, and a private room
// named as such, so a party always knows where they are.
function renderCourtLine() {
  const me = room.me;
  show("court-line", Boolean(me) && !room.ended);
  if (!me) return;
  $("court-name").textContent = me.court_name ?? "";
  $("case-number").textContent = me.case_number ? `${t("case_number")} ${me.case_number}` : "";
  const roomId = me.room_id ?? "";
  const privateRoom = roomId.startsWith("caucus:") || roomId.startsWith("consult:");
  show("private-room", privateRoom);
  $("private-room").textContent = roomId.startsWith("caucus:")
    ? `${t("room_caucus")} ${roomId.slice(7)}`
    : privateRoom ? t("room_consult") : "";
}

function render() {
  renderCourtLine();
  const state = room.ended ? "closed" : room.state;
  $("room").dataset.state = state;
  $("room").dataset.ended = room.ended ?? "";
  const badge = $("hearing-state");
  badge.textContent = badgeText();
  badge.dataset.recording = String(Boolean(room.recording) && !room.ended);
  badge.dataset.recordingPause = room.recordingPause ?? "";
  renderStatus();
  const live = !room.ended;
  show("connecting", live && state === "connecting");
  const entering = state === "invited" || state === "identity_confirmed";
  show("check", live && entering && room.check === "pending");
  show("entry", live && entering && room.check !== "pending");
  show("consent-form", state === "identity_confirmed");
  if (state === "identity_confirmed") show("identity-form", false);
  show("waiting", live && state === "waiting");
  const scheduled = room.hearingState === "scheduled";
  show("not-open-yet", scheduled);
  if (scheduled && room.hearing) {
    $("not-open-yet").textContent = t("p_not_open_yet").replace("{time}", formatTime(room.hearing.scheduled_start));
  }
  show("stage", live && (state === "in_hearing" || state === "in_private_room" || state === "waiting"));
  $("stage").dataset.where = state;
  show("ended", Boolean(room.ended));
  show("mute-notice", live && room.courtMuted);
  renderScreenShare(live && state === "in_hearing");
  show("ask-to-speak", live && room.courtMuted);
  renderControls();
  for (const pid of room.tiles.keys()) tileFor(pid);
  pruneTiles();
  layout();
}

function setButton(id, pressed, labelKey, nameKey) {
  const button = $(id);
  button.setAttribute("aria-pressed", String(pressed));
  button.querySelector(".label").textContent = t(labelKey);
  button.setAttribute("aria-label", t(nameKey ?? labelKey));
}

function renderControls() {
  const micOff = room.selfMuted || room.courtMuted;
  setButton("mic", micOff, room.courtMuted ? "p_mic_court" : room.selfMuted ? "p_mic_off" : "p_mic_on",
    room.selfMuted ? "p_mic_unmute_me" : "p_mic_mute_me");
  $("mic").dataset.court = String(room.courtMuted);
  setButton("cam", room.cameraOff || room.audioOnly, room.cameraOff || room.audioOnly ? "p_cam_off" : "p_cam_on",
    room.cameraOff ? "p_cam_turn_on" : "p_cam_turn_off");
  $("cam").disabled = room.audioOnly;
  setButton("audio-only", room.audioOnly, "p_audio_only");
  $("stage").classList.toggle("audio-only", room.audioOnly);
  $("self-tile").classList.toggle("off", room.cameraOff || room.audioOnly);
}

// -- end states ---------------------------------------------------------------------------------

const END_BY_REASON = {
  CLIENT_LEFT: "left",
  REMOVED: "removed",
  DISMISSED: "dismissed",
  JUDGE_ENDED: "closed",
  DUPLICATE_SESSION: "replaced",
  SESSION_REVOKED: "revoked",
  PROTOCOL_VIOLATION: "error",
};

function endVisit(kind, detail = null) {
  if (room.ended && room.ended !== "error") return;
  room.ended = kind;
  room.status = "ended";
  notice("");
  room.peer?.close();
  for (const track of room.stream?.getTracks() ?? []) track.stop();
  $("leave-dialog").open && $("leave-dialog").close();
  room.endDetail = detail;
  paintEnded();
  if (kind === "closed" && room.recordingHash) showRecordingHash(room.recordingHash);
  render();
  $("ended-title").focus?.();
}

// The end screen's words (again when the language changes).
function paintEnded() {
  const kind = room.ended;
  if (!kind) return;
  $("ended-title").textContent = t(`p_end_${kind}_title`);
  $("ended-text").textContent = room.endDetail ?? t(`p_end_${kind}_text`);
  $("ended").dataset.kind = kind;
  const action = $("ended-action");
  // The next step: come back (left; or take the visit back to this device), or nothing to do.
  if (kind === "left" || kind === "replaced" || kind === "error") {
    action.textContent = t(`p_end_${kind}_action`);
    action.href = `/hearings/${hearingId}/attend`;
    action.hidden = false;
  } else {
    action.hidden = true;
  }
  document.title = `${t(`p_end_${kind}_title`)} · ${t("app")}`;
}

function showRecordingHash(message) {
  const box = $("recording-hash");
  box.hidden = false;
  box.dataset.recordingId = message.recording_id;
  $("root-hash").textContent = message.root_hash;
  $("confirm-hash").onclick = async () => {
    const path = `/api/hearings/${hearingId}/recordings/${message.recording_id}/confirm`;
    try {
      const result = await api("POST", path, { root_hash: message.root_hash, confirmed: true });
      $("confirm-hash").disabled = true;
      box.dataset.confirmed = String(result.matches);
      show("hash-confirmed", true);
    } catch (err) {
      notice(errorText(err));
    }
  };
}

async function onEnd({ reason, error }) {
  if (room.ended) return;
  if (reason === "JOIN_REFUSED") {
    // Why: a closed hearing, or one this person may not come back to (removed, dismissed).
    const hearing = await api("GET", `/api/hearings/${hearingId}`).catch(() => null);
    if (hearing?.state === "closed") endVisit("closed");
    else if (error?.code === "WRONG_STATE") endVisit("refused");
    else endVisit("error", errorText(error));
    return;
  }
  endVisit(END_BY_REASON[reason] ?? "error", END_BY_REASON[reason] ? null : t(`cause_${reason}`));
}

// -- signaling ------------------------------------------------------------------------------

function onEvent(message) {
  switch (message.type) {
    case "roster":
      room.roster = new Map(message.participants.map((p) => [p.participant_id, p]));
      room.spotlight = message.participants.find((p) => p.spotlighted)?.participant_id ?? null;
      room.courtMuted = Boolean(room.roster.get(room.me?.participant_id)?.muted);
      break;
    case "moved":
      room.state = message.state;
      room.me.room_id = message.room_id;
      showRecordSigning(hearingId, room.me.participant_id, message.state === "in_hearing"); // issue 15
      break;
    case "hearing_state":
      room.hearingState = message.state;
      room.recording = message.recording;
      room.recordingPause = message.recording_pause ?? null;
      // The hearing is over: its own screen at once (the root hash follows, then the socket
      // closes with JUDGE_ENDED).
      if (message.state === "closed") {
        endVisit("closed");
        return;
      }
      break;
    case "track":
      room.peer?.setTrackOwner(message.mid, trackOwner(message));
      return;
    case "video_paused": {
      const tile = tileFor(message.participant_id);
      tile.figure.dataset.videoPaused = message.reason;
      if (message.reason === "bandwidth") notice(t("p_video_paused_bandwidth"));
      return;
    }
    case "video_resumed":
      delete tileFor(message.participant_id).figure.dataset.videoPaused;
      return;
    case "screen_share":
      onScreenShare(message);
      break;
    case "muted":
      room.courtMuted = message.muted;
      notice(message.muted ? t("muted_by_court") : t("unmuted"));
      break;
    case "offer":
      room.peer?.handleOffer(message);
      return;
    case "record_changed":
      recordChanged(message); // the hearing record (issue 15)
      return;
    case "recording_hash":
      room.recordingHash = message;
      if (room.ended === "closed") showRecordingHash(message);
      return;
    default:
      return; // `closed` ends the visit through onEnd
  }
  render();
}

function onWelcome(welcome) {
  const rejoin = room.me !== null;
  if (!rejoin && (welcome.state === "invited" || welcome.state === "identity_confirmed")) {
    room.check = "pending"; // before the waiting room: once per visit
    show("check-skip", welcome.device_check_skippable);
  }
  room.me = welcome;
  // The hearing record (issue 15): followed and signed in the main room only.
  showRecordSigning(hearingId, welcome.participant_id, welcome.state === "in_hearing");
  if (rejoin) sharer.reset();
  room.state = welcome.state;
  room.hearingState = welcome.hearing_state;
  room.recording = welcome.recording;
  room.recordingPause = welcome.recording_pause ?? null;
  onEvent({ type: "roster", participants: welcome.roster });
  if (rejoin) {
    room.rejoins += 1;
    room.timings.rejoined = performance.now();
  }
  render();
  const media = room.check === "pending" && !rejoin ? checkDevices() : Promise.resolve();
  media.then(() => startMedia(welcome.ice_servers)).catch((err) => {
    if (!room.ended && room.status === "connected") notice(errorText(err));
  });
}

function onStatus(status) {
  if (room.ended) return;
  if (status === "reconnecting" && room.status !== "reconnecting") room.timings.reconnecting = performance.now();
  room.status = status;
  renderStatus();
}

async function main() {
  let me;
  try {
    me = await api("GET", "/api/auth/me");
  } catch {
    // Never the staff login page: a party without a session needs their link again.
    endVisit("nosession");
    return;
  }
  if (me.principal?.kind !== "party") {
    location.replace(`/hearings/${hearingId}/room`);
    return;
  }
  room.hearing = await api("GET", `/api/hearings/${hearingId}`).catch(() => null);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  room.session = new StayingSession(`${scheme}//${location.host}/ws`, hearingId, {
    onWelcome, onEvent, onStatus, onEnd,
    // Back within seconds of the network returning: tries at most 2 s apart (a try costs
    // nothing while the link is down; only a join that gets through counts against the limit).
    backoff: { baseMs: 500, capMs: 2000 },
    // A link withdrawn while the phone was offline: the socket is refused, the session is gone.
    stillAuthorized: async () => {
      try {
        await api("GET", "/api/auth/me");
        return true;
      } catch (err) {
        return err.status !== 401; // a network error: keep trying
      }
    },
  });
  // A refused first join ends the visit through onEnd (its own screen), not here.
  await room.session.start().catch(() => {});
  setInterval(pollLevels, 400);
}

// -- the device check ---------------------------------------------------------------------------

let meter = null;

function checkLine(id, status, text) {
  $(id).dataset.status = status;
  $(id).querySelector(".value").textContent = text;
}

// Camera and microphone first (the media of the hearing reuses what the check opened).
async function checkDevices() {
  const result = { supported: browserSupported(), camera: "untested", microphone: "untested",
    speaker: room.checkResult?.speaker ?? "untested", network: null };
  room.checkResult = result;
  $("check-continue").disabled = true;
  for (const line of ["check-camera", "check-microphone", "check-network"]) checkLine(line, "checking", t("p_check_checking"));
  if (result.supported) {
    meter?.stop();
    for (const track of room.stream?.getTracks() ?? []) track.stop();
    const got = await acquire((c) => navigator.mediaDevices.getUserMedia(c));
    Object.assign(result, { camera: got.camera, microphone: got.microphone });
    room.stream = got.stream;
    room.mediaTried = true;
    $("check-video").srcObject = got.stream;
    $("self-view").srcObject = got.stream;
    applyOwnTracks();
    // A second check after the media started: the same senders carry the new tracks.
    for (const sender of room.pc?.getSenders() ?? []) {
      const track = got.stream?.getTracks().find((x) => x.kind === sender.track?.kind);
      if (track) sender.replaceTrack(track).catch(() => {});
    }
    meter = micMeter(got.stream, $("check-mic-level"));
  }
  checkLine("check-camera", result.camera, t(`p_dev_${result.camera}`));
  checkLine("check-microphone", result.microphone, t(`p_dev_${result.microphone}`));
  checkLine("check-speaker", result.speaker, t(`p_spk_${result.speaker}`));
  checkNetwork(); // in the background: the page goes on joining media
}

async function checkNetwork() {
  const result = room.checkResult;
  try {
    result.network = await measureNetwork(room.session.client);
    const n = result.network;
    checkLine("check-network", "ok", t("p_net_value").replace("{rtt}", n.rtt_ms ?? "-")
      .replace("{up}", n.up_kbps).replace("{down}", n.down_kbps).replace("{loss}", n.loss_percent));
  } catch {
    result.network = null;
    checkLine("check-network", "bad", t("p_net_failed"));
  }
  showScore();
}

function showScore() {
  const result = room.checkResult;
  Object.assign(result, score(result));
  const line = $("check-score");
  line.dataset.score = result.score;
  line.textContent = t(`p_score_${result.score}`);
  const list = $("check-problems");
  list.replaceChildren();
  const family = browserFamily();
  for (const problem of result.problems) {
    const item = document.createElement("li");
    item.dataset.problem = problem;
    const what = document.createElement("strong");
    what.textContent = `${t(`p_problem_${problem}`)} `;
    const fix = t(`p_fix_${problem}_${family}`);
    item.append(what, fix === `p_fix_${problem}_${family}` ? t(`p_fix_${problem}`) : fix);
    list.append(item);
  }
  $("check-continue").disabled = false;
}

async function finishCheck(skipped) {
  const result = room.checkResult ?? {};
  meter?.stop();
  const network = result.network ?? {};
  const readiness = skipped
    ? { score: "unknown", skipped: true }
    : {
      score: result.score, skipped: false, camera: result.camera, microphone: result.microphone,
      speaker: result.speaker, rtt_ms: network.rtt_ms ?? null, loss_percent: network.loss_percent ?? null,
      up_kbps: network.up_kbps ?? null, down_kbps: network.down_kbps ?? null, problems: result.problems,
    };
  room.check = "done";
  render();
  try {
    await room.session.client.request("report_readiness", { readiness });
  } catch (err) {
    notice(errorText(err));
  }
}

$("check-play").onclick = async () => {
  await playTone().catch(() => {});
  show("check-heard", true);
  show("check-not-heard", true);
};
for (const [id, heard] of [["check-heard", "ok"], ["check-not-heard", "not_heard"]]) {
  $(id).onclick = () => {
    room.checkResult.speaker = heard;
    checkLine("check-speaker", heard, t(`p_spk_${heard}`));
    if (room.checkResult.network !== null || $("check-network").dataset.status === "bad") showScore();
  };
}
$("check-retry").onclick = () => checkDevices().catch((err) => notice(errorText(err)));
$("check-continue").onclick = () => finishCheck(false);
$("check-skip").onclick = () => finishCheck(true);

// -- the page's own controls -------------------------------------------------------------------

function fieldError(field, text) {
  const box = $(`${field}-error`);
  box.textContent = text ?? "";
  box.hidden = !text;
  $(field).setAttribute("aria-invalid", String(Boolean(text)));
}

function errorSummary(items) {
  const list = $("error-list");
  list.replaceChildren();
  for (const [field, text] of items) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `#${field}`;
    link.textContent = text;
    item.append(link);
    list.append(item);
  }
  show("error-summary", items.length > 0);
  if (items.length) $("error-summary").focus();
}

$("identity-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const name = $("legal-name").value.trim();
  const digits = $("id-digits").value.trim();
  const problems = [];
  if (!name) problems.push(["legal-name", t("p_err_name_missing")]);
  if (!/^[0-9]{3,17}[0-9Xx]$/.test(digits)) problems.push(["id-digits", t("p_err_digits_format")]);
  fieldError("legal-name", problems.find(([f]) => f === "legal-name")?.[1]);
  fieldError("id-digits", problems.find(([f]) => f === "id-digits")?.[1]);
  if (problems.length) {
    errorSummary(problems);
    return;
  }
  show("error-summary", false); // the answer says again what is wrong, if anything
  try {
    await room.session.client.request("confirm_identity", { name, id_digits: digits });
  } catch (err) {
    if (err.code === "BAD_FIELD") {
      fieldError("id-digits", t("p_err_identity_mismatch"));
      errorSummary([["id-digits", t("p_err_identity_mismatch")]]);
    } else if (err.code === "WRONG_STATE") {
      errorSummary([]);
      show("identity-form", false);
      show("identity-locked", true);
    } else {
      errorSummary([["legal-name", errorText(err)]]);
    }
  }
});

$("consent-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const accepted = [...ev.target.querySelectorAll("input:checked")].map((i) => i.name);
  const box = $("consent-error");
  if (accepted.length < 3) {
    box.textContent = t("p_err_consent");
    box.hidden = false;
    return;
  }
  box.hidden = true;
  try {
    await room.session.client.request("consent", { accepted_rules: accepted });
  } catch (err) {
    box.textContent = errorText(err);
    box.hidden = false;
  }
});

$("mic").onclick = () => {
  if (room.courtMuted) {
    notice(t("p_mic_court_hint"));
    return;
  }
  room.selfMuted = !room.selfMuted;
  applyOwnTracks();
  renderControls();
};
$("cam").onclick = () => {
  room.cameraOff = !room.cameraOff;
  applyOwnTracks();
  renderControls();
};
$("audio-only").onclick = async () => {
  room.audioOnly = !room.audioOnly;
  renderControls();
  await applyVideoSending();
  notice(room.audioOnly ? t("p_audio_only_on") : "");
  // ... and the court's server stops sending this phone any video (line adaptation): the
  // weak line then carries sound only; turned off, pictures come back at the next keyframe.
  try {
    await room.session.client.request("set_audio_only", { enabled: room.audioOnly });
  } catch (err) {
    notice(errorText(err));
  }
};
$("ask-to-speak").onclick = async () => {
  try {
    await room.session.client.request("request_unmute");
    notice(t("p_asked"));
  } catch (err) {
    notice(errorText(err));
  }
};
$("leave").onclick = () => $("leave-dialog").showModal();
$("leave-cancel").onclick = () => $("leave-dialog").close();
$("leave-confirm").onclick = async () => {
  $("leave-dialog").close();
  await room.session?.leave();
  endVisit("left");
};

// -- screen sharing (issue 13.4) --------------------------------------------------------------

const sharer = new ScreenSharer({
  client: () => room.session.client,
  peer: () => room.peer,
  onChange: () => render(),
});
window.courtScreenShare = sharer; // for tests and support staff (read-only use)

function screenTileFor(key) {
  return screenTile(room.screens, key, $("tiles"), room.timings.firstFrame,
    (pid) => room.roster.get(pid)?.display_name);
}

function onScreenShare(message) {
  const key = `${message.participant_id}.screen`;
  if (message.state === "stopped") removeScreenTile(room.screens, key);
  if (message.participant_id === room.me?.participant_id) sharer.onEvent(message);
}

// The button follows the share: ask, withdraw, choose the screen, stop. Only in the main room.
function renderScreenShare(inMainRoom) {
  const button = $("share-screen");
  const state = sharer.state;
  button.hidden = !inMainRoom || (!canCaptureScreen() && state === "idle");
  const label = { idle: "ss_request", requested: "ss_withdraw", allowed: "ss_start",
    starting: "ss_start", live: "ss_stop" }[state];
  button.querySelector(".label").textContent = t(label);
  button.setAttribute("aria-label", t(state === "idle" ? "ss_request_name" : label));
  button.setAttribute("aria-pressed", String(state === "live"));
  button.dataset.state = state;
  button.disabled = state === "starting";
  const status = $("share-status");
  status.textContent = sharer.message;
  status.hidden = !sharer.message || !inMainRoom;
  status.dataset.state = state;
}

$("share-screen").onclick = async () => {
  try {
    if (sharer.state === "idle") await sharer.request();
    else if (sharer.state === "allowed") await sharer.start();
    else await sharer.stop();
  } catch (err) {
    notice(errorText(err));
  }
};

// applyStrings() redoes the fixed words; the page redoes what it wrote itself.
$("lang").addEventListener("change", () => {
  paintEnded();
  render();
  if (room.checkResult?.score) showScore();
});

main().catch((err) => {
  if (!room.ended) endVisit("error", errorText(err));
});
