// The media half of a court page: one RTCPeerConnection to the SFU.
//
// The page offers its camera and microphone as sendonly m-lines; the server then offers one
// m-line per person this participant may see and hear, and says with a `track` event which
// m-line (mid) carries whom. What a participant receives is decided by the server's rules
// only; this module hands each arriving track to the page with its owner's participant id.
// Offers and answers are applied one at a time: a server offer that arrives while this
// page's own offer is still being answered waits its turn (no glare, no rollback).

export async function localMedia(constraints = {
  audio: true,
  video: { width: 640, height: 480, frameRate: 30 },
}) {
  return navigator.mediaDevices.getUserMedia(constraints);
}

function waitForGathering(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", check);
  });
}

export class CourtPeer {
  // sig: a connected SignalingClient. onTrack(participantId, track) for each arriving track;
  // onConnectionState(state) for the RTCPeerConnection's connectionState.
  constructor(sig, { onTrack = () => {}, onConnectionState = () => {} } = {}) {
    this.sig = sig;
    this.onTrack = onTrack;
    this.onConnectionState = onConnectionState;
    this.pc = null;
    this.midOwner = new Map(); // mid -> participant id ("<id>.screen" for a shared screen)
    this.screen = null; // the transceiver of this page's shared screen, once it shared one
    this.negotiation = Promise.resolve();
    this.connectedAt = null; // performance.now() when first connected
    // When the first offer was sent (ICE gathered) and answered, for support staff and tests.
    this.offeredAt = null;
    this.answeredAt = null;
  }

  // Open the connection and send `stream`'s tracks (receive only if there is no stream).
  // `?relay=1` in the page address forces media through the TURN relay: support staff use
  // it to check the relay path for a locked-down network.
  start(iceServers, stream) {
    const relayOnly = new URLSearchParams(location.search).get("relay") === "1";
    const pc = new RTCPeerConnection({
      iceServers,
      bundlePolicy: "max-bundle",
      iceTransportPolicy: relayOnly ? "relay" : "all",
    });
    this.pc = pc;
    pc.addEventListener("track", (event) => {
      const owner = this.midOwner.get(event.transceiver.mid);
      if (owner) this.onTrack(owner, event.track);
    });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "connected" && this.connectedAt === null) {
        this.connectedAt = performance.now();
      }
      this.onConnectionState(pc.connectionState);
    });
    if (stream) {
      for (const track of stream.getTracks()) {
        pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
      }
    } else {
      pc.addTransceiver("audio", { direction: "recvonly" });
    }
    this.negotiation = this.negotiation.then(() => this.#offer());
    return this.negotiation;
  }

  async #offer() {
    const pc = this.pc;
    await pc.setLocalDescription(await pc.createOffer());
    await waitForGathering(pc);
    this.offeredAt = this.offeredAt ?? performance.now();
    const answer = await this.sig.request("offer", { sdp: pc.localDescription.sdp });
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    this.answeredAt = this.answeredAt ?? performance.now();
  }

  // Screen sharing (issue 13.4; docs/signaling.md 8.1): send `track` on a sendonly video
  // m-line of its own (the same m-line again for a later share), offered after the queued
  // negotiations; resolves with that m-line's mid once the server answered. On glare
  // (WRONG_STATE) the offer is rolled back, the server's offer answered, and tried again.
  addScreen(track) {
    return new Promise((resolve, reject) => {
      const attempt = (tries) => {
        this.negotiation = this.negotiation.then(async () => {
          const pc = this.pc;
          try {
            if (this.screen) {
              await this.screen.sender.replaceTrack(track);
            } else {
              this.screen = pc.addTransceiver(track, {
                direction: "sendonly", streams: [new MediaStream([track])],
              });
            }
            await this.#offer();
            resolve(this.screen.mid);
          } catch (err) {
            if (err.code === "WRONG_STATE" && tries > 0 && pc.signalingState === "have-local-offer") {
              await pc.setLocalDescription({ type: "rollback" });
              setTimeout(() => attempt(tries - 1), 200); // after the server's offer, queued
            } else {
              reject(err);
            }
          }
        });
      };
      attempt(5);
    });
  }

  // The share ended: nothing more is sent on the screen's m-line (kept for a later share).
  stopScreen() {
    this.screen?.sender.replaceTrack(null).catch(() => {});
  }

  // The server's `track` event: which m-line carries whom.
  setTrackOwner(mid, participantId) {
    this.midOwner.set(mid, participantId);
  }

  // The server's `offer` event: answered in turn.
  handleOffer(message) {
    this.negotiation = this.negotiation.then(() => this.#answer(message));
    return this.negotiation;
  }

  async #answer(message) {
    const pc = this.pc;
    try {
      await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await waitForGathering(pc);
      this.sig.reply(message, { type: "answer", sdp: pc.localDescription.sdp });
    } catch (err) {
      this.sig.reply(message, { type: "error", code: "BAD_FIELD", message: String(err) });
    }
  }

  close() {
    this.pc?.close();
  }
}

// A picture for one participant: a <figure> with its <video> fed by a MediaStream that the
// tracks arriving for that participant are put into. `firstFrame` (a Map participant id ->
// performance.now() ms) records when the first frame was shown, for support staff and tests.
export function newTile(participantId, firstFrame) {
  const figure = document.createElement("figure");
  figure.className = "tile";
  figure.dataset.participantId = participantId;
  figure.dataset.testid = "tile";
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  const caption = document.createElement("figcaption");
  figure.append(video, caption);
  const stream = new MediaStream();
  video.srcObject = stream;
  if (video.requestVideoFrameCallback) {
    video.requestVideoFrameCallback((now) => {
      if (!firstFrame.has(participantId)) firstFrame.set(participantId, now);
    });
  }
  return { figure, video, stream, caption };
}

// Put an arriving track into its tile, in place of the one of its kind it had.
export function showTrack(tile, track) {
  for (const old of tile.stream.getTracks().filter((x) => x.kind === track.kind)) {
    tile.stream.removeTrack(old);
  }
  tile.stream.addTrack(track);
  tile.video.play().catch(() => {});
}
