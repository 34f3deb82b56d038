// Playback of a sealed recording for presiding staff: the verification badge, the signed
// timeline, and one video per participant stream, all driven by one recording clock.
//
// Sync: the recording clock runs from the `recording_started` event. Each stream's media time
// 0 is its `origin` (a signed `media_started` event), so a stream plays at
// currentTime = clock - origin; a video drifting more than MAX_DRIFT_S from that is re-seeked.
// The overlay on each picture shows the wall time of the frame being shown (origin + the
// frame's media time, from requestVideoFrameCallback).
import { api, ApiError } from "./api.js";
import { applyStrings, t, errorText } from "./i18n.js";

const MAX_DRIFT_S = 0.25;
const POLL_MS = 500;
const [, , hearingId, , recordingIdInPath] = location.pathname.split("/");
const $ = (id) => document.getElementById(id);
const base = `/api/hearings/${hearingId}/recordings`;

applyStrings();

// -- time formatting -----------------------------------------------------------------------

function pad(n, w = 2) { return String(n).padStart(w, "0"); }

// Local wall time with milliseconds and the UTC offset, e.g. "2026-11-23 19:08:38.250 +08:00".
export function wallText(ms) {
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)} ` +
    `${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
}

function elapsedText(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

// -- the recording clock -------------------------------------------------------------------

const clock = {
  start: 0, end: 0, pos: 0, playing: false, anchorPerf: 0, anchorPos: 0,
  now() {
    return this.playing ? this.anchorPos + (performance.now() - this.anchorPerf) : this.pos;
  },
  play() {
    if (this.pos >= this.end - this.start) this.pos = 0;
    this.anchorPos = this.pos; this.anchorPerf = performance.now(); this.playing = true;
  },
  pause() { this.pos = this.now(); this.playing = false; },
  seek(pos) {
    this.pos = Math.min(Math.max(pos, 0), this.end - this.start);
    this.anchorPos = this.pos; this.anchorPerf = performance.now();
  },
};

const tiles = [];

function syncTile(tile, pos) {
  const video = tile.video;
  const local = (clock.start + pos - tile.origin) / 1000;
  const duration = Number.isFinite(video.duration) ? video.duration : 0;
  const present = local >= 0 && local <= duration;
  tile.figure.dataset.present = String(present);
  if (!present) {
    if (!video.paused) video.pause();
    return;
  }
  if (Math.abs(video.currentTime - local) > MAX_DRIFT_S && !video.seeking) {
    video.currentTime = local;
  }
  if (clock.playing && video.paused) video.play().catch(() => {});
  if (!clock.playing && !video.paused) video.pause();
}

function tick() {
  let pos = clock.now();
  if (clock.playing && pos >= clock.end - clock.start) {
    clock.seek(clock.end - clock.start);
    clock.pause();
    pos = clock.pos;
    $("play").textContent = t("pb_play");
  }
  $("seek").value = String(pos / 1000);
  $("clock").textContent = `${wallText(clock.start + pos)} · ${elapsedText(pos)}`;
  $("player").dataset.position = String(Math.round(pos));
  for (const tile of tiles) syncTile(tile, pos);
  requestAnimationFrame(tick);
}

function showFrameTime(tile) {
  // The wall time of the frame on screen: origin + its media time.
  const video = tile.video;
  const update = (mediaTime) => {
    const wall = tile.origin + mediaTime * 1000;
    tile.overlay.dataset.wallMs = String(Math.round(wall));
    tile.overlay.textContent = wallText(wall);
  };
  if ("requestVideoFrameCallback" in video) {
    const onFrame = (_now, meta) => { update(meta.mediaTime); video.requestVideoFrameCallback(onFrame); };
    video.requestVideoFrameCallback(onFrame);
  } else {
    video.addEventListener("timeupdate", () => update(video.currentTime));
  }
  update(0);
}

// -- rendering -----------------------------------------------------------------------------

function verdictKey(code) {
  return { 0: "intact", 2: "gaps", 1: "tampered" }[code] ?? "error";
}

function renderVerification(v) {
  $("verification").hidden = false;
  const badge = $("badge");
  const key = verdictKey(v.exit_code);
  badge.dataset.verdict = key;
  badge.textContent = t(`pb_verdict_${key}`);
  $("root-hash").textContent = v.root_hash ?? "—";
  $("signing-key").textContent = v.signing_key_id ?? "—";
  $("seal-status").textContent = v.status ? t(`pb_sealed_${v.status}`) : "—";
  $("problems").replaceChildren(...v.problems.map((p) => {
    const li = document.createElement("li");
    const where = [p.file, p.segment != null ? `segment ${p.segment}` : null,
      p.record != null ? `record ${p.record}` : null].filter(Boolean).join(", ");
    li.textContent = where ? `${p.message} (${where})` : p.message;
    return li;
  }));
}

function eventText(ev, names) {
  const who = (id) => names.get(id) ?? id;
  switch (ev.type) {
    case "participant_joined": return `${t("pb_ev_joined")}: ${who(ev.participant)}`;
    case "participant_left": return `${t("pb_ev_left")}: ${who(ev.participant)} (${ev.reason})`;
    case "media_started": return `${t("pb_ev_media")}: ${who(ev.participant)}`;
    case "paused": return `${t("pb_ev_paused")}: ${t(`pb_reason_${ev.reason}`)}${ev.note ? ` — ${ev.note}` : ""}`;
    case "network_gap": return `${t("pb_ev_gap")}: ${who(ev.participant)} ${ev.track}, ${ev.seconds} s`;
    case "incident": return `${t("pb_ev_incident")}: ${ev.cause} (${ev.from} → ${ev.to})`;
    case "note": return `${t("pb_ev_note")}: ${ev.text}`;
    default: return t(`pb_ev_${ev.type}`);
  }
}

function renderTimeline(events, names) {
  $("timeline-card").hidden = false;
  $("timeline").replaceChildren(...events.map((ev) => {
    const li = document.createElement("li");
    li.dataset.type = ev.type;
    const at = Date.parse(ev.type === "network_gap" || ev.type === "incident" ? ev.from : ev.time);
    li.dataset.at = String(at);
    const time = document.createElement("time");
    time.dateTime = ev.time;
    time.textContent = wallText(at);
    const what = document.createElement("span");
    what.textContent = eventText(ev, names);
    li.append(time, what);
    li.onclick = () => { if (clock.end) { clock.seek(at - clock.start); tick(); } };
    return li;
  }));
}

function renderBar(events) {
  const span = clock.end - clock.start;
  if (span <= 0) return;
  const bar = $("bar");
  const add = (cls, from, to) => {
    const el = document.createElement("span");
    el.className = cls;
    el.style.left = `${(100 * (from - clock.start)) / span}%`;
    el.style.width = `${Math.max(0.3, (100 * (to - from)) / span)}%`;
    bar.append(el);
  };
  let pausedAt = null;
  for (const ev of events) {
    if (ev.type === "paused") pausedAt = Date.parse(ev.time);
    if (ev.type === "resumed" && pausedAt !== null) { add("pause", pausedAt, Date.parse(ev.time)); pausedAt = null; }
    if (ev.type === "network_gap" || ev.type === "incident") add("gap", Date.parse(ev.from), Date.parse(ev.to));
  }
  if (pausedAt !== null) add("pause", pausedAt, clock.end);
}

function buildPlayer(pb, names) {
  const events = pb.timeline;
  const started = events.find((e) => e.type === "recording_started");
  clock.start = Date.parse(started?.time ?? events[0]?.time);
  clock.end = Math.max(...events.map((e) => Date.parse(e.to ?? e.time)));
  for (const s of pb.streams) {
    const figure = document.createElement("figure");
    figure.className = "tile";
    figure.dataset.streamId = String(s.stream_id);
    figure.dataset.participantId = s.participant_id;
    const video = document.createElement("video");
    video.preload = "auto";
    video.playsInline = true;
    video.src = s.url;
    const overlay = document.createElement("div");
    overlay.className = "overlay";
    const caption = document.createElement("figcaption");
    const role = s.role ? ` · ${t(`role_${s.role}`)}` : "";
    caption.textContent = `${s.display_name ?? s.participant_id}${role}${s.part ? ` (${s.part + 1})` : ""}`;
    figure.append(video, overlay, caption);
    $("tiles").append(figure);
    // A stream without a signed origin (older packages) starts with the participant's join.
    const joined = events.find((e) => e.type === "participant_joined" && e.stream_id === s.stream_id);
    const origin = Date.parse(s.origin ?? joined?.time ?? started?.time);
    figure.dataset.origin = String(origin);
    const tile = { figure, video, overlay, origin };
    video.addEventListener("loadedmetadata", () => {
      clock.end = Math.max(clock.end, origin + video.duration * 1000);
      $("seek").max = String((clock.end - clock.start) / 1000);
    });
    tiles.push(tile);
    showFrameTime(tile);
  }
  $("player").dataset.start = String(clock.start);
  $("seek").max = String((clock.end - clock.start) / 1000);
  $("seek").oninput = () => { clock.seek(Number($("seek").value) * 1000); };
  $("play").onclick = () => {
    if (clock.playing) { clock.pause(); $("play").textContent = t("pb_play"); }
    else { clock.play(); $("play").textContent = t("pb_pause"); }
  };
  renderBar(events);
  $("player").hidden = false;
  requestAnimationFrame(tick);
}

// -- loading -------------------------------------------------------------------------------

async function poll(recordingId) {
  let pb = await api("POST", `${base}/${recordingId}/playback`);
  $("preparing").hidden = false;
  while (pb.status === "preparing") {
    $("prepare-progress").value = pb.progress;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    pb = await api("GET", `${base}/${recordingId}/playback`);
  }
  $("preparing").hidden = true;
  return pb;
}

async function load() {
  const list = await api("GET", base);
  // By default the court's latest sealed recording; a station's backup when it is all there is.
  const sealed = list.filter((r) => r.state !== "recording");
  const recordingId = recordingIdInPath
    || (sealed.filter((r) => r.source === "court").at(-1) ?? sealed.at(-1))?.id;
  if (list.length > 1 || !recordingIdInPath) {
    $("recordings").hidden = false;
    $("recording-list").replaceChildren(...list.map((r) => {
      const row = document.createElement("tr");
      const link = document.createElement("a");
      link.href = `/hearings/${hearingId}/recordings/${r.id}`;
      link.textContent = wallText(Date.parse(r.created_at));
      row.insertCell().append(link);
      row.insertCell().textContent = t(`pb_state_${r.state}`);
      row.insertCell().textContent = t(`pb_source_${r.source.replace("-", "_")}`);
      row.dataset.source = r.source;
      return row;
    }));
  }
  if (!recordingId) { $("notice").textContent = t("pb_none"); return; }
  const pb = await poll(recordingId);
  $("playback").dataset.status = pb.status;
  if (pb.status === "failed") { $("notice").textContent = `${t("pb_failed")}: ${pb.error}`; return; }
  const names = new Map(pb.participants.map((p) => [p.participant_id, p.display_name]));
  renderVerification(pb.verification);
  renderTimeline(pb.timeline, names);
  if (pb.media_unavailable) {
    $("notice").textContent = t(`pb_media_${pb.media_unavailable}`);
    return;
  }
  buildPlayer(pb, names);
}

load().catch((err) => {
  if (err instanceof ApiError && err.status === 401) { location.assign("/"); return; }
  $("playback").dataset.status = "error";
  $("notice").textContent = errorText(err);
});
