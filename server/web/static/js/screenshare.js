// Screen sharing to present evidence (issue 13.4), the browser half of docs/signaling.md 8.1.
//
// The sharer: ask (`screen_share_request`), wait for the judge (`screen_share` allowed or
// denied), then on a tap capture the screen (getDisplayMedia needs the person's gesture in
// most browsers), publish it on a video m-line of its own (CourtPeer.addScreen) and name that
// m-line (`screen_share_start`). It stops when the judge says so, when the person stops it,
// when the browser's own "stop sharing" ends the track, or when the server ends it (left the
// main room, connection lost). The server enforces every rule; this only follows it.
//
// Everyone else: a `track` with source "screen" names the m-line of "<id>.screen"; the page
// shows it in a tile of its own, large, captioned "<name> 的共享屏幕".
import { errorText, t } from "./i18n.js";
import { newTile, showTrack } from "./peer.js";

const SUFFIX = ".screen";
export const screenKey = (participantId) => `${participantId}${SUFFIX}`;
export const isScreenKey = (key) => typeof key === "string" && key.endsWith(SUFFIX);
export const screenOwner = (key) => key.slice(0, -SUFFIX.length);

// The owner a `track` event names: the participant, or their screen.
export function trackOwner(message) {
  return message.source === "screen" ? screenKey(message.participant_id) : message.participant_id;
}

export function canCaptureScreen() {
  return Boolean(navigator.mediaDevices?.getDisplayMedia);
}

// A tile for a shared screen: `screens` (Map key -> tile) keeps it; `container` holds it.
export function screenTile(screens, key, container, firstFrame, nameOf) {
  let tile = screens.get(key);
  if (!tile) {
    tile = newTile(key, firstFrame);
    tile.figure.classList.add("screen", "main");
    tile.figure.dataset.testid = "screen-tile";
    tile.video.muted = true; // a screen has no sound here
    container.prepend(tile.figure);
    screens.set(key, tile);
  }
  const text = t("ss_tile").replace("{name}", nameOf(screenOwner(key)) || "");
  tile.caption.textContent = text;
  tile.figure.setAttribute("aria-label", text);
  return tile;
}

export function showScreenTrack(tile, track) {
  showTrack(tile, track);
}

export function removeScreenTile(screens, key) {
  const tile = screens.get(key);
  if (!tile) return;
  tile.figure.remove();
  for (const track of tile.stream.getTracks()) tile.stream.removeTrack(track);
  screens.delete(key);
}

// The sharer's side. `client()` and `peer()` give the current SignalingClient and CourtPeer
// (both change when the page rejoins); `onChange()` repaints.
export class ScreenSharer {
  constructor({ client, peer, onChange }) {
    this.client = client;
    this.peer = peer;
    this.onChange = onChange;
    this.state = "idle"; // idle | requested | allowed | starting | live
    this.message = ""; // the status line for the person (what happened, what to do)
    this.track = null;
  }

  #set(state, message) {
    this.state = state;
    this.message = message;
    this.onChange();
  }

  async request() {
    await this.client().request("screen_share_request");
  }

  // Stop sharing, or withdraw the request (`ended`: the browser's own "stop sharing").
  async stop(ended = false) {
    this.#release();
    await this.client().request("screen_share_stop", { ended });
  }

  // The judge allowed it and the person tapped "choose a screen": capture and publish.
  async start() {
    if (!canCaptureScreen()) {
      this.#set("allowed", t("ss_unsupported"));
      return;
    }
    this.#set("starting", t("ss_allowed"));
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({
        video: { frameRate: { ideal: 15, max: 30 } }, audio: false,
      });
      const track = stream.getVideoTracks()[0];
      track.contentHint = "detail"; // text and documents stay sharp rather than smooth
      this.track = track;
      track.addEventListener("ended", () => {
        if (this.track === track) this.stop(true).catch(() => {});
      });
      const mid = await this.peer().addScreen(track);
      await this.client().request("screen_share_start", { mid });
    } catch (err) {
      this.#release();
      if (this.state === "starting") {
        this.#set("allowed", t("ss_failed").replace("{error}", errorText(err)));
      }
    }
  }

  // The server's `screen_share` about this participant.
  onEvent(message) {
    switch (message.state) {
      case "requested":
        this.#set("requested", t("ss_requested"));
        break;
      case "allowed":
        this.#set("allowed", t("ss_allowed"));
        break;
      case "live":
        this.#set("live", t("ss_live"));
        break;
      case "denied":
        this.#set("idle", message.reason
          ? t("ss_denied_reason").replace("{reason}", message.reason) : t("ss_denied"));
        break;
      case "stopped":
        this.#release();
        this.#set("idle", t(`ss_stopped_${message.reason ?? "sharer"}`));
        break;
      default:
    }
  }

  // A new connection (the server ended any share of the old one): start afresh.
  reset() {
    this.#release();
    if (this.state !== "idle") this.#set("idle", t("ss_stopped_disconnected"));
  }

  #release() {
    const track = this.track;
    this.track = null;
    track?.stop();
    this.peer()?.stopScreen();
  }
}
