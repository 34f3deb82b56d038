// The hearing room: entry steps, waiting room, media with the SFU (peer.js), the court frame
// (banner and seats by role, OLR 24) and, for presiding staff, the hearing console (issue 12):
// only the transitions allowed now, confirmation before remove and close, arrivals announced,
// private rooms, each participant's connection quality and who is speaking.
import { api } from "./api.js";
import { allowedTransitions, CALLED_ROLES, ROOM_MOVERS } from "./hearing-rules.js";
import { applyStrings, t, errorText, formatTime } from "./i18n.js";
import { CourtPeer, localMedia, newTile, showTrack } from "./peer.js";
import { ConnectionClosed, SignalingClient } from "./signaling.js";
import { recordConsoleChanged, startRecordConsole } from "./record-console.js";
import { canCaptureScreen, isScreenKey, removeScreenTile, ScreenSharer, screenOwner, screenTile, showScreenTrack, trackOwner } from "./screenshare.js";

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
  tiles: new Map(), // participant id -> {figure, video, stream, caption, seat, name}
  screens: new Map(), // "<id>.screen" -> the tile of a shared screen (issue 13.4)
  shares: new Map(), // participant id -> screen share state (requested | allowed | live), staff
  peer: null, // CourtPeer
  pc: null, // its RTCPeerConnection (tests read its stats)
  sig: null,
  departures: [],
  spotlight: null,
  // The console's own view of the hearing.
  waiting: new Set(), // participant ids in the waiting room (connected)
  arrived: new Set(), // ... of whom these arrived since the console was opened (highlighted)
  chimes: 0, // arrival sounds played (tests read it)
  caucusRooms: new Set(), // caucus room names (without "caucus:") created or seen here
  represents: new Map(), // agent's participant id -> the party they represent (REST, staff)
  quality: new Map(), // participant id -> ParticipantStats (the `stats` request)
  speaking: new Set(), // participant ids whose audio is above the speaking level now
  spoke: new Map(), // participant id -> when (performance.now()) their audio was last loud
  heading: { court: null, caseNumber: null, station: null },
  // When things happened (performance.now() ms), for support staff and tests.
  timings: { connected: null, firstFrame: new Map() },
};
window.courtRoom = room; // for tests and support staff (read-only use)

const STAFF = new Set(["judge", "clerk", "mediator"]);
const isStaff = () => STAFF.has(room.me?.role);
const canMove = () => ROOM_MOVERS.includes(room.me?.role);
const STATS_INTERVAL_MS = 3000;
const SPEAKING_LEVEL = 0.02; // RMS of the analyser's samples above which someone speaks
const SPEAKING_HOLD_MS = 700; // still "speaking" this long after the last loud sample

// The status line: what happened (kind "info") or what went wrong ("error", in the accent colour).
function notice(text, kind = "info") {
  $("notice").textContent = text ?? "";
  $("notice").dataset.kind = kind;
}

function show(section, visible) {
  $(section).hidden = !visible;
}

const nameOf = (pid) => room.roster.get(pid)?.display_name ?? "";

// -- sound: arrivals and speaking -------------------------------------------------------------

let audio = null; // one AudioContext for the page; resumed on the first click (autoplay rules)

function audioContext() {
  if (!audio && window.AudioContext) audio = new AudioContext();
  return audio;
}
document.addEventListener("click", () => audio?.resume().catch(() => {}), { capture: true });

function chime() {
  room.chimes += 1;
  const ctx = audioContext();
  if (!ctx) return;
  ctx.resume().catch(() => {});
  const now = ctx.currentTime;
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.frequency.setValueAtTime(660, now);
  osc.frequency.setValueAtTime(880, now + 0.15);
  gain.gain.setValueAtTime(0.2, now);
  gain.gain.exponentialRampToValueAtTime(0.001, now + 0.45);
  osc.connect(gain).connect(ctx.destination);
  osc.start(now);
  osc.stop(now + 0.5);
}

const meters = new Map(); // participant id -> {analyser, source, data}

function meterAudio(owner, track) {
  const ctx = audioContext();
  if (!ctx) return;
  meters.get(owner)?.source.disconnect();
  const source = ctx.createMediaStreamSource(new MediaStream([track]));
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 2048;
  source.connect(analyser); // not to the speakers: the video element plays the sound
  meters.set(owner, { analyser, source, data: new Float32Array(analyser.fftSize) });
}

function sampleSpeaking() {
  let changed = false;
  const now = performance.now();
  for (const [pid, meter] of meters) {
    meter.analyser.getFloatTimeDomainData(meter.data);
    let sum = 0;
    for (const x of meter.data) sum += x * x;
    if (Math.sqrt(sum / meter.data.length) > SPEAKING_LEVEL) room.spoke.set(pid, now);
    const speaking = now - (room.spoke.get(pid) ?? -Infinity) < SPEAKING_HOLD_MS
      && !room.roster.get(pid)?.muted;
    if (speaking !== room.speaking.has(pid)) {
      changed = true;
      if (speaking) room.speaking.add(pid);
      else room.speaking.delete(pid);
    }
  }
  if (!changed) return;
  for (const [pid, tile] of room.tiles) tile.figure.classList.toggle("speaking", room.speaking.has(pid));
  for (const row of document.querySelectorAll("#roster [data-participant-id]")) {
    row.dataset.speaking = String(room.speaking.has(row.dataset.participantId));
  }
}
setInterval(sampleSpeaking, 100);

// -- media ------------------------------------------------------------------------------

async function ownMedia() {
  try {
    const stream = await localMedia();
    $("self-view").srcObject = stream;
    return stream;
  } catch (err) {
    notice(t("no_devices"), "error");
    return null;
  }
}

// The seat a role takes in the courtroom (OLR 24): the bench at the top, the parties on their
// sides (an agent beside the party they represent), witnesses and the station in the middle.
function seatOf(pid, role) {
  if (role === "judge" || role === "mediator" || role === "clerk") return "bench";
  if (role === "plaintiff" || role === "defendant") return role;
  if (role === "agent") {
    const party = room.roster.get(room.represents.get(pid));
    if (party?.role === "plaintiff" || party?.role === "defendant") return party.role;
  }
  if (role === "observer") return "gallery";
  return "centre";
}

function seatLabel(role) {
  if (role === "station") {
    return room.heading.station ? `${t("seat_station")} · ${room.heading.station}` : t("seat_station");
  }
  return t(`seat_${role}`);
}

function placeTile(figure, pid, role) {
  const seat = $(`seat-${seatOf(pid, role)}`);
  if (figure.parentElement !== seat) {
    // The presiding judge sits in the middle of the bench, the clerk beside.
    if (role === "clerk") seat.append(figure);
    else seat.prepend(figure);
  }
  figure.dataset.role = role;
  figure.querySelector(".seat").textContent = seatLabel(role);
}

function tileFor(participantId) {
  let tile = room.tiles.get(participantId);
  if (!tile) {
    tile = newTile(participantId, room.timings.firstFrame);
    const seat = document.createElement("span");
    seat.className = "seat";
    seat.dataset.testid = "seat-label";
    const name = document.createElement("span");
    name.className = "name";
    tile.caption.append(seat, " ", name);
    tile.name = name;
    room.tiles.set(participantId, tile);
  }
  const info = room.roster.get(participantId);
  placeTile(tile.figure, participantId, info?.role ?? "observer");
  tile.name.textContent = info ? info.display_name : "";
  tile.figure.classList.toggle("muted", Boolean(info?.muted));
  tile.figure.classList.toggle("spotlight", room.spotlight === participantId);
  tile.figure.classList.toggle("speaking", room.speaking.has(participantId));
  return tile;
}

function onTrack(owner, track) {
  if (isScreenKey(owner)) {
    showScreenTrack(screenTileFor(owner), track);
    show("screen-stage", true);
    return;
  }
  showTrack(tileFor(owner), track);
  if (track.kind === "audio") meterAudio(owner, track);
}

function pruneTiles() {
  for (const key of [...room.screens.keys()]) {
    const info = room.roster.get(screenOwner(key));
    if (!info?.connected || info.room_id !== room.me?.room_id) removeScreenTile(room.screens, key);
  }
  show("screen-stage", room.screens.size > 0);
  // Keep tiles only for people in my media room (the roster says where everyone is).
  for (const [pid, tile] of room.tiles) {
    const info = room.roster.get(pid);
    const here = info && info.connected && info.room_id && info.room_id === room.me?.room_id;
    if (!here) {
      tile.figure.remove();
      room.tiles.delete(pid);
      meters.get(pid)?.source.disconnect();
      meters.delete(pid);
      room.speaking.delete(pid);
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

// -- the court frame ---------------------------------------------------------------------------

function roomLabel(roomId) {
  if (!roomId || roomId === "main") return t("room_main");
  if (roomId.startsWith("caucus:")) return `${t("room_caucus")} ${roomId.slice(7)}`;
  if (roomId.startsWith("consult:")) return t("room_consult");
  return roomId;
}

function renderBanner(gone) {
  $("banner-court").textContent = room.heading.court ?? t("app");
  $("banner-case").textContent = room.heading.caseNumber
    ? `${t("case_number")} ${room.heading.caseNumber}` : "";
  $("banner-state").textContent = gone ? t("pstate_left")
    : room.hearingState ? t(`state_${room.hearingState}`) : "";
  $("banner-state").dataset.state = room.hearingState ?? "";
  const onRecord = room.recording && room.hearingState === "in_session"
    && room.me?.room_id === "main" && !gone;
  $("banner-record").textContent = onRecord ? `● ${t("on_record")}` : t("off_record");
  $("banner-record").dataset.onRecord = String(onRecord);
  const privateRoom = room.me?.room_id && room.me.room_id !== "main";
  show("banner-room", Boolean(privateRoom));
  $("banner-room").textContent = privateRoom ? roomLabel(room.me.room_id) : "";
  const selfRole = room.me?.role ?? "observer";
  placeTile($("self-tile"), room.me?.participant_id, selfRole);
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
  const staff = isStaff();
  const ended = state === "closed";
  const inSession = room.hearingState === "in_session" && !ended;
  show("pause-recording", inSession && Boolean(room.recording));
  show("pause-reason", inSession && Boolean(room.recording));
  show("resume-recording", inSession && !room.recording);
  $("room").classList.toggle("staff", staff);
  show("staff-panel", staff);
  show("staff-controls", staff && !ended);
  show("closed-panel", staff && ended);
  // After the close nobody is in the room any more: no roster that still says "在庭".
  show("roster", staff && !ended);
  show("caucus-form", canMove());
  show("entry", state === "invited" || state === "identity_confirmed");
  show("identity-form", state === "invited");
  show("waiting", state === "waiting");
  show("stage", state === "in_hearing" || state === "in_private_room" || state === "waiting");
  const me = room.roster.get(room.me?.participant_id);
  show("mute-notice", Boolean(me?.muted));
  show("ask-to-speak", Boolean(me?.muted) && !staff);
  renderBanner(gone);
  if (staff) {
    renderStateButtons();
    renderRoster();
    renderScreenShares();
  }
  for (const pid of room.tiles.keys()) tileFor(pid);
  pruneTiles();
}

// Only the transitions this person may take from the hearing's state now are offered.
function renderStateButtons() {
  const lock = document.querySelector('#staff-panel [data-action="lock"]');
  lock.textContent = t(lock.dataset.locked === "true" ? "unlock" : "lock");
  const allowed = new Map(
    allowedTransitions(room.hearingState, room.me.role).map((x) => [x.target, x.action]),
  );
  for (const button of document.querySelectorAll("#state-buttons [data-state]")) {
    const action = allowed.get(button.dataset.state);
    button.hidden = !action;
    if (action === "start" || action === "resume") {
      button.textContent = t(action === "resume" ? "do_resume" : "do_start");
    }
    if (action === "close" || action === "cancel") button.textContent = t(`do_${action}`);
    button.dataset.transition = action ?? "";
  }
}

// Where someone is, as the console groups them: the main room, a private room, the waiting
// room, or not here (not connected, or not yet through the entry steps).
function locationOf(p) {
  if (!p.connected) return "away";
  if (p.state === "waiting") return "waiting";
  if (p.state === "in_private_room" && p.room_id) return p.room_id;
  if (p.state === "in_hearing") return "main";
  return "away";
}

function trackArrivals(initial) {
  const now = new Set(
    [...room.roster.values()].filter((p) => p.connected && p.state === "waiting")
      .map((p) => p.participant_id),
  );
  const fresh = [...now].filter((pid) => !room.waiting.has(pid));
  room.waiting = now;
  for (const pid of [...room.arrived]) if (!now.has(pid)) room.arrived.delete(pid);
  if (initial || !isStaff() || fresh.length === 0) return;
  for (const pid of fresh) room.arrived.add(pid);
  chime();
  notice(`${fresh.map(nameOf).join("、")} ${t("arrived_waiting")}`);
}

function button(label, name, handler, testid) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = t(label);
  // The accessible name says whose control it is ("静音 张三"), not four identical "静音".
  if (name) b.setAttribute("aria-label", `${t(label)} ${name}`);
  b.dataset.action = label;
  if (testid) b.dataset.testid = testid;
  b.onclick = handler;
  return b;
}

function qualityText(q) {
  if (!q) return "";
  const parts = [];
  if (q.rtt_ms !== null && q.rtt_ms !== undefined) parts.push(`${t("q_rtt")} ${Math.round(q.rtt_ms)} ms`);
  if (q.loss !== null && q.loss !== undefined) parts.push(`${t("q_loss")} ${(q.loss * 100).toFixed(1)}%`);
  parts.push(`${Math.round((q.bitrate_in_kbps ?? 0) + (q.bitrate_out_kbps ?? 0))} kbps`);
  return parts.join(" · ");
}

function qualityLevel(q) {
  if (!q) return "unknown";
  if ((q.loss ?? 0) > 0.05 || (q.rtt_ms ?? 0) > 400) return "poor";
  if ((q.loss ?? 0) > 0.01 || (q.rtt_ms ?? 0) > 150) return "fair";
  return "good";
}

// A party's device check as staff need it (HMCTS's readiness column): the score, and the
// named problems in words.
function readinessLine(readiness) {
  const line = document.createElement("div");
  line.className = "readiness";
  line.dataset.testid = "readiness";
  line.dataset.score = readiness?.score ?? "none";
  const score = t(`ready_${readiness?.score ?? "none"}`);
  const problems = (readiness?.problems ?? []).map((code) => t(`p_problem_${code}`));
  line.textContent = `${t("ready_label")}: ${score}${problems.length ? ` · ${problems.join(" ")}` : ""}`;
  return line;
}

function rosterRow(p) {
  const pid = { participant_id: p.participant_id };
  const name = p.display_name;
  const self = p.participant_id === room.me.participant_id;
  const row = document.createElement("li");
  row.className = "person";
  row.dataset.participantId = p.participant_id;
  row.dataset.testid = "roster-row";
  row.dataset.state = p.state;
  row.dataset.location = locationOf(p);
  row.dataset.speaking = String(room.speaking.has(p.participant_id));
  const arrived = room.arrived.has(p.participant_id);
  row.classList.toggle("arrived", arrived);
  row.dataset.arrived = String(arrived);
  const who = document.createElement("div");
  who.className = "who";
  const dot = document.createElement("span");
  dot.className = "speaking-dot";
  dot.setAttribute("aria-hidden", "true");
  const label = document.createElement("span");
  label.textContent = `${name}${self ? ` (${t("you")})` : ""} · ${t(`role_${p.role}`)}`;
  const status = document.createElement("span");
  status.className = "status";
  status.textContent = t(`pstate_${p.state}`) + (p.muted ? ` · ${t("muted")}` : "");
  who.append(dot, label, " ", status);
  const q = room.quality.get(p.participant_id);
  const quality = document.createElement("div");
  quality.className = "quality";
  quality.dataset.testid = "quality";
  quality.dataset.level = qualityLevel(q);
  quality.textContent = p.connected ? qualityText(q) : "";
  row.append(who, quality);
  if (self) return row;
  if (!STAFF.has(p.role) && p.role !== "station") row.append(readinessLine(p.readiness));
  const actions = document.createElement("div");
  actions.className = "actions";
  const called = CALLED_ROLES.includes(p.role);
  const present = p.connected && (p.state === "in_hearing" || p.state === "in_private_room");
  const waiting = p.connected && p.state === "waiting";
  if (waiting && !called) actions.append(button("admit", name, () => request("admit", pid), "admit"));
  if (waiting && called && room.hearingState === "in_session") {
    actions.append(button("call_witness", name, () => request("call_witness", pid), "call-witness"));
  }
  if (present && called) {
    actions.append(button("dismiss_witness", name, () => request("dismiss_witness", pid), "dismiss-witness"));
  }
  if (present && !STAFF.has(p.role)) {
    actions.append(button("to_waiting", name, () => request("send_to_waiting", pid)));
  }
  if (present && canMove() && !STAFF.has(p.role) && !called && p.role !== "station") {
    for (const caucus of room.caucusRooms) {
      if (p.room_id === `caucus:${caucus}`) continue;
      const b = button("move_to", null, () => request("move_to_room", { ...pid, room_id: caucus }), "move");
      b.textContent = `${t("move_to")} ${caucus}`;
      b.setAttribute("aria-label", `${name} ${t("move_to")} ${t("room_caucus")} ${caucus}`);
      b.dataset.room = caucus;
      actions.append(b);
    }
    if (p.state === "in_private_room") {
      actions.append(button("back_to_main", name, () => request("move_to_room", { ...pid, room_id: "main" }), "back-to-main"));
    }
  }
  if (p.connected && !STAFF.has(p.role)) {
    actions.append(p.muted
      ? button("unmute", name, () => request("unmute", pid), "unmute")
      : button("mute", name, () => request("mute", pid), "mute"));
    actions.append(button("spotlight", name, () => request("spotlight", pid)));
  }
  // Removal is for someone who could still come back (a dismissed witness cannot).
  if (!STAFF.has(p.role) && p.state !== "removed" && !(called && p.state === "left")) {
    actions.append(button("remove", name, () => confirmRemove(p), "remove"));
  }
  row.append(actions);
  return row;
}

function rosterGroup(key, title, people) {
  const section = document.createElement("section");
  section.className = "room-group";
  section.dataset.testid = "room-group";
  section.dataset.room = key;
  const heading = document.createElement("h4");
  heading.textContent = `${title} (${people.length})`;
  section.append(heading);
  if (key.startsWith("caucus:") && canMove()) {
    const name = key.slice(7);
    const bar = document.createElement("div");
    bar.className = "row";
    if (room.me.room_id === key) {
      bar.append(button("leave_caucus", null, () => request("move_to_room", { participant_id: room.me.participant_id, room_id: "main" }), "return-self"));
    } else {
      const visit = button("visit", null, () => request("move_to_room", { participant_id: room.me.participant_id, room_id: name }), "visit");
      visit.setAttribute("aria-label", `${t("visit")} ${title}`);
      bar.append(visit);
    }
    const movable = people.filter((p) => !STAFF.has(p.role));
    if (movable.length) {
      const all = button("return_all", null, () => returnAll(movable), "return-all");
      all.setAttribute("aria-label", `${t("return_all")}: ${title}`);
      bar.append(all);
    }
    section.append(bar);
  }
  const list = document.createElement("ul");
  list.className = "people";
  for (const p of people) list.append(rosterRow(p));
  section.append(list);
  return section;
}

async function returnAll(people) {
  for (const p of people) {
    await request("move_to_room", { participant_id: p.participant_id, room_id: "main" });
  }
}

function renderRoster() {
  const groups = new Map([["main", []], ["waiting", []]]);
  for (const name of room.caucusRooms) groups.set(`caucus:${name}`, []);
  const away = [];
  for (const p of room.roster.values()) {
    const where = locationOf(p);
    if (where === "away") away.push(p);
    else {
      if (!groups.has(where)) groups.set(where, []);
      groups.get(where).push(p);
    }
  }
  const body = $("roster");
  body.replaceChildren();
  for (const [key, people] of groups) {
    const title = key === "waiting" ? t("room_waiting") : roomLabel(key);
    body.append(rosterGroup(key, title, people));
  }
  if (away.length) body.append(rosterGroup("away", t("room_away"), away));
  const count = room.waiting.size;
  const badge = $("waiting-count");
  badge.dataset.count = String(count);
  badge.textContent = `${t("room_waiting")} ${count}`;
  badge.classList.toggle("has-waiting", count > 0);
  const list = $("departures");
  list.replaceChildren();
  for (const d of room.departures) {
    const item = document.createElement("li");
    const who = nameOf(d.participant_id) || "?";
    item.textContent = `${formatTime(d.detected_at, { year: undefined, month: undefined, day: undefined, second: "2-digit" })} ${who}: ${t(`cause_${d.reason}`)}`;
    item.dataset.reason = d.reason;
    list.append(item);
  }
}

async function request(type, fields = {}) {
  try {
    notice("");
    return await room.sig.request(type, fields);
  } catch (err) {
    // The hearing closing ends this connection before the reply to `close` can come: the
    // `closed` notice already says what happened, so that is no error.
    if (err instanceof ConnectionClosed && (room.state === "closed" || err.reason === "JUDGE_ENDED")) {
      return null;
    }
    notice(errorText(err), "error");
    return null;
  }
}

// -- confirmation before what cannot be undone (UI.md 3) -------------------------------------

function confirmAction({ title, text, ok, reason }) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = ok;
  $("confirm-reason").value = reason ?? "";
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok" ? $("confirm-reason").value.trim() || reason : null);
    }, { once: true });
    dialog.showModal();
    $("confirm-reason").focus();
  });
}

async function confirmRemove(p) {
  const reason = await confirmAction({
    title: `${t("remove")} ${p.display_name}`,
    text: t("confirm_remove_text").replace("{name}", p.display_name),
    ok: t("confirm_remove_ok"),
    reason: t("remove_reason"),
  });
  if (reason) await request("remove", { participant_id: p.participant_id, reason });
}

async function confirmClose(reasonGiven) {
  const reason = await confirmAction({
    title: t("confirm_close_title"),
    text: t("confirm_close_text"),
    ok: t("confirm_close_ok"),
    reason: reasonGiven || t("reason_closed"),
  });
  if (reason) await request("set_hearing_state", { state: "closed", reason });
}

// -- connection quality (staff) ------------------------------------------------------------------

async function pollStats() {
  if (!isStaff() || room.state === "closed" || room.sig?.closed) return;
  try {
    const result = await room.sig.request("stats");
    room.quality = new Map((result.data.participants ?? []).map((q) => [q.participant_id, q]));
    renderRoster();
    for (const [pid, tile] of room.tiles) {
      tile.figure.dataset.quality = qualityLevel(room.quality.get(pid));
    }
  } catch {
    // Figures are a help, not the hearing: a missed poll is tried again.
  }
}

// -- the recording's integrity value (AVR 9) -----------------------------------------------------

function showRecordingHash(message) {
  const box = $("recording-hash");
  box.hidden = false;
  box.dataset.recordingId = message.recording_id;
  $("root-hash").textContent = message.root_hash;
  if (isStaff()) {
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
      notice(errorText(err), "error");
    }
  };
}

// -- signaling ------------------------------------------------------------------------------

function learnRooms() {
  for (const p of room.roster.values()) {
    if (p.room_id?.startsWith("caucus:")) room.caucusRooms.add(p.room_id.slice(7));
  }
}

function onEvent(message) {
  switch (message.type) {
    case "roster":
      room.roster = new Map(message.participants.map((p) => [p.participant_id, p]));
      room.spotlight = message.participants.find((p) => p.spotlighted)?.participant_id ?? null;
      learnRooms();
      learnAgents();
      trackArrivals(false);
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
      room.peer?.setTrackOwner(message.mid, trackOwner(message));
      return;
    case "screen_share":
      onScreenShare(message);
      break;
    case "muted":
      notice(message.muted ? t("muted_by_court") : t("unmuted"));
      break;
    case "room_locked":
      document.querySelector('#staff-panel [data-action="lock"]').dataset.locked = String(message.locked);
      break;
    case "unmute_requested":
      notice(`${nameOf(message.participant_id)}: ${t("asks_to_speak")}`);
      break;
    case "recording_hash":
      showRecordingHash(message);
      return;
    case "recording_alert":
      notice(`${t("recording_alert")}: ${t(`rec_alert_${message.code}`)}`, "error");
      return;
    case "station_reported":
      notice(`${t("station_reported")} ${nameOf(message.participant_id)}: ${t(`station_cause_${message.cause}`)}`, "error");
      return;
    case "record_changed":
      recordConsoleChanged(message); // the hearing record (issue 15)
      return;
    case "disconnect_evidence":
      room.departures.push(message);
      break;
    case "offer":
      room.peer?.handleOffer(message);
      return;
    case "closed":
      room.state = "closed";
      if (message.reason === "JUDGE_ENDED") notice(t("hearing_closed_notice"));
      else notice(t(`cause_${message.reason}`), "error");
      room.peer?.close();
      break;
    default:
      return;
  }
  render();
}

// -- screen sharing (issue 13.4) --------------------------------------------------------------

function screenTileFor(key) {
  return screenTile(room.screens, key, $("screen-stage"), room.timings.firstFrame, nameOf);
}

function onScreenShare(message) {
  const pid = message.participant_id;
  if (message.state === "stopped" || message.state === "denied") {
    room.shares.delete(pid);
    removeScreenTile(room.screens, `${pid}.screen`);
  } else {
    room.shares.set(pid, message.state);
  }
  if (pid === room.me?.participant_id) staffSharer.onEvent(message);
  if (isStaff()) renderScreenShares();
  if (message.state === "requested" && isStaff()) {
    notice(t("ss_staff_requested").replace("{name}", nameOf(pid)));
    chime();
  }
}

// Requests with allow / refuse, the allowed or live share with stop (the server decides).
function renderScreenShares() {
  const list = $("screen-share-list");
  list.replaceChildren();
  for (const [pid, state] of room.shares) {
    const name = nameOf(pid);
    const item = document.createElement("li");
    item.dataset.participantId = pid;
    item.dataset.state = state;
    item.dataset.testid = "screen-share-item";
    const text = document.createElement("span");
    text.textContent = t(`ss_staff_${state}`).replace("{name}", name);
    item.append(text, " ");
    const act = (type, fields) => async () => {
      await request(type, { participant_id: pid, ...fields });
    };
    if (state === "requested") {
      const allow = button("ss_allow", null, act("screen_share_allow"), "screen-share-allow");
      allow.setAttribute("aria-label", t("ss_allow_name").replace("{name}", name));
      const deny = button("ss_deny", null, act("screen_share_deny"), "screen-share-deny");
      deny.setAttribute("aria-label", t("ss_deny_name").replace("{name}", name));
      item.append(allow, " ", deny);
    } else {
      const stop = button("ss_stop", null, act("screen_share_stop"), "screen-share-stop");
      stop.setAttribute("aria-label", t("ss_stop_name").replace("{name}", name));
      item.append(stop);
    }
    list.append(item);
  }
  show("screen-share-none", room.shares.size === 0);
  // Presiding staff share their own screen the same way (their request is allowed at once).
  const mine = $("staff-share");
  const state = staffSharer.state;
  mine.hidden = !canCaptureScreen() || room.me?.room_id !== "main";
  mine.textContent = t({ idle: "ss_staff_share", requested: "ss_withdraw", allowed: "ss_start",
    starting: "ss_start", live: "ss_stop" }[state]);
  mine.dataset.state = state;
  mine.disabled = state === "starting";
  $("staff-share-status").textContent = staffSharer.message;
}

const staffSharer = new ScreenSharer({
  client: () => room.sig,
  peer: () => room.peer,
  onChange: () => isStaff() && renderScreenShares(),
});

$("staff-share").onclick = async () => {
  try {
    if (staffSharer.state === "idle") await staffSharer.request();
    else if (staffSharer.state === "allowed") await staffSharer.start();
    else await staffSharer.stop();
  } catch (err) {
    notice(errorText(err), "error");
  }
};

// What a court frame needs that the welcome may not carry: the court, the case number and the
// station's name (staff read them over REST; the welcome's, when it has them, come first).
async function loadRepresented() {
  const participants = await api("GET", `/api/hearings/${hearingId}/participants`);
  for (const p of participants) if (p.represents_id) room.represents.set(p.id, p.represents_id);
}

// An agent added to the hearing after the page loaded: whom they represent is asked once.
const askedAbout = new Set();
function learnAgents() {
  if (!isStaff()) return;
  const unknown = [...room.roster.values()].filter((p) => p.role === "agent"
    && !room.represents.has(p.participant_id) && !askedAbout.has(p.participant_id));
  if (unknown.length === 0) return;
  for (const p of unknown) askedAbout.add(p.participant_id);
  loadRepresented().then(render).catch(() => {});
}

async function loadHeading(welcome) {
  room.heading = {
    court: welcome.court_name ?? null,
    caseNumber: welcome.case_number ?? null,
    station: welcome.station_name ?? null,
  };
  if (!isStaff()) return;
  try {
    await loadRepresented();
    if (room.heading.court && room.heading.caseNumber) return;
    const hearing = await api("GET", `/api/hearings/${hearingId}`);
    const [court, kase, stations] = await Promise.all([
      api("GET", `/api/courts/${hearing.court_id}`),
      api("GET", `/api/cases/${hearing.case_id}`),
      api("GET", "/api/stations"),
    ]);
    const station = stations.find((s) => s.id === hearing.station_id);
    room.heading = {
      court: court.name,
      caseNumber: kase.number,
      station: station ? station.name : room.heading.station,
    };
  } catch (err) {
    notice(errorText(err), "error");
  }
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
  learnRooms();
  trackArrivals(true);
  render();
  await loadHeading(welcome);
  render();
  if (isStaff()) setInterval(pollStats, STATS_INTERVAL_MS);
  if (isStaff()) startRecordConsole(hearingId, welcome.role, () => room.roster); // issue 15
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

// The language picker (i18n.js) relabels the static strings; the page draws the rest again.
$("lang").addEventListener("change", () => { if (room.me) render(); });
$("ask-to-speak").onclick = () => request("request_unmute");
$("leave").onclick = async () => {
  await room.sig.leave().catch(() => {});
  room.peer?.close();
  location.assign(isStaff() ? "/dashboard" : "/");
};
for (const b of document.querySelectorAll("#staff-panel [data-action]")) {
  b.onclick = () => {
    const action = b.dataset.action;
    if (action === "admit_all") request("admit", { all: true });
    if (action === "mute_all") request("mute_all");
    if (action === "lock") request("lock_room", { locked: b.dataset.locked !== "true" }); // room_locked relabels
  };
}
$("caucus-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const field = $("caucus-name");
  const name = field.value.trim() || `${t("room_caucus")}${room.caucusRooms.size + 1}`;
  field.value = "";
  room.caucusRooms.add(name);
  render();
});
// Interrupting the recording in session needs a lawful reason; the note goes on the record.
$("pause-recording").onclick = () => {
  const note = $("state-reason").value.trim();
  $("state-reason").value = "";
  request("set_recording", { recording: false, reason: $("pause-reason").value, note: note || null });
};
$("resume-recording").onclick = () => request("set_recording", { recording: true });
for (const b of document.querySelectorAll("#state-buttons [data-state]")) {
  b.onclick = () => {
    // Every state change needs a reason for the record; the usual one is offered.
    const field = $("state-reason");
    const given = field.value.trim();
    field.value = "";
    if (b.dataset.state === "closed") {
      confirmClose(given);
      return;
    }
    request("set_hearing_state", { state: b.dataset.state, reason: given || t(`reason_${b.dataset.state}`) });
  };
}

main().catch((err) => notice(errorText(err), "error"));
