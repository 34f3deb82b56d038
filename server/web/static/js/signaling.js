// The browser mirror of the signaling protocol (Python: signaling/, spec: docs/signaling.md).
//
// An ES module with no build step. The lists below must equal the Python ones; a test
// (tests/signaling/test_js_mirror.py) parses this file and fails if they drift.
//
//   const client = new SignalingClient("wss://host/ws/signaling");
//   await client.connect();                       // the session cookie goes with the request
//   const welcome = await client.join(hearingId);  // heartbeat starts at welcome's interval
//   client.addEventListener("roster", (e) => render(e.detail.participants));
//   try { await client.request("mute", { participant_id: id }); }
//   catch (err) { if (err.code === "FORBIDDEN") ... }  // RequestError | RequestTimeout | ConnectionClosed
//   client.addEventListener("closed", (e) => show(e.detail.reason));  // e.g. DUPLICATE_SESSION
//
// Events: one per server-pushed message type (CustomEvent named after the `type`, the message
// in `detail`): roster, hearing_state, muted, unmute_requested, moved,
// room_locked, track, video_paused, video_resumed, disconnect_evidence, recording_hash, offer (answer it
// with client.reply(offer, {type: "answer", sdp})), error (one that matches no pending
// request), closed (the server's `closed` message, or the connection ending: detail {reason}).
// Every pushed message is also dispatched as a generic "message" event, and passed to the
// `onEvent(message)` callback if one was given to the constructor.

export const PROTOCOL_VERSION = 1;
export const MAX_MESSAGE_BYTES = 65536;
export const HEARTBEAT_MISSES = 3;

export const CLIENT_TYPES = Object.freeze([
  "join", "offer", "answer", "leave", "heartbeat", "error",
  "confirm_identity", "consent", "attest_identity",
  "admit", "pre_admit", "send_to_waiting", "mute", "unmute", "mute_all", "request_unmute", "remove",
  "lock_room", "spotlight", "call_witness", "dismiss_witness", "move_to_room",
  "open_consultation", "set_hearing_state", "set_recording", "stats",
  "station_report", "confirm_recording_hash", "probe", "report_readiness",
  "set_audio_only",
  "screen_share_request", "screen_share_allow", "screen_share_deny", "screen_share_start",
  "screen_share_stop",
]);

export const SERVER_TYPES = Object.freeze([
  "result", "welcome", "answer", "error", "offer",
  "roster", "hearing_state", "muted", "unmute_requested", "moved",
  "room_locked", "track", "disconnect_evidence", "closed", "recording_hash",
  "recording_alert", "station_reported",
  "record_changed", // the hearing record (issue 15)
  "video_paused", "video_resumed",
  "screen_share",
]);

// Replies resolve requests; everything else the server sends is an event.
export const REPLY_TYPES = Object.freeze(["result", "welcome", "answer", "error"]);

export const ERROR_CODES = Object.freeze([
  "BAD_JSON", "BAD_REQUEST", "UNSUPPORTED_VERSION", "UNKNOWN_TYPE", "UNKNOWN_FIELD",
  "MISSING_FIELD", "BAD_FIELD", "TOO_LARGE",
  "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "WRONG_STATE", "CONFLICT", "RATE_LIMITED",
  "INTERNAL",
  // the REST API only, never on the wire
  "UNSUPPORTED_MEDIA_TYPE", "BAD_CREDENTIALS", "LOCKED_OUT", "CSRF_FAILED", "INVALID_INVITATION",
  "METHOD_NOT_ALLOWED",
  "TEXT_CHANGED", "CODE_INVALID", "CODE_USED", "NOT_YOUR_SIGNATURE", "RECORD_FINALISED",
  "TIMEOUT", "CLOSED", // local to a client, never on the wire
]);

export const CLOSE_REASONS = Object.freeze([
  "CLIENT_LEFT", "REMOVED", "DISMISSED", "JUDGE_ENDED", "DUPLICATE_SESSION", "ICE_FAILED",
  "NETWORK_LOST", "HEARTBEAT_LOST", "STATION_POWER", "STATION_NETWORK", "WORKER_DIED",
  "SERVER_SHUTDOWN", "PRODUCER_CLOSED", "ROOM_CHANGED", "PROTOCOL_VIOLATION", "SESSION_REVOKED",
  "JOIN_REFUSED",
]);

const SERVER_TYPE_SET = new Set(SERVER_TYPES);
const CLIENT_TYPE_SET = new Set(CLIENT_TYPES);
const REPLY_TYPE_SET = new Set(REPLY_TYPES);
const CLOSE_REASON_SET = new Set(CLOSE_REASONS);

export class SignalingError extends Error {
  constructor(code, message, transaction = null) {
    super(`${code}: ${message}`);
    this.name = "SignalingError";
    this.code = code;
    this.detail = message;
    this.transaction = transaction;
  }
}

/** The server answered a request with `error`; `code` is the machine code. */
export class RequestError extends SignalingError {
  constructor(code, message, transaction) {
    super(code, message, transaction);
    this.name = "RequestError";
  }
}

/** No reply in time (the request may still take effect). */
export class RequestTimeout extends SignalingError {
  constructor(message, transaction) {
    super("TIMEOUT", message, transaction);
    this.name = "RequestTimeout";
  }
}

/** The connection ended; `reason` is a CLOSE_REASONS value. */
export class ConnectionClosed extends SignalingError {
  constructor(reason, message, transaction = null) {
    super("CLOSED", message, transaction);
    this.name = "ConnectionClosed";
    this.reason = reason;
  }
}

export function newTransaction() {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class SignalingClient extends EventTarget {
  /**
   * @param {string} url the signaling WebSocket URL (ws: or wss:)
   * @param {{requestTimeoutMs?: number, heartbeat?: boolean, onEvent?: (message: object) => void,
   *          WebSocketImpl?: typeof WebSocket}} options
   */
  constructor(url, {
    requestTimeoutMs = 10000, heartbeat = true, onEvent = null, WebSocketImpl,
    heartbeatIntervalMs = null, connectTimeoutMs = null,
  } = {}) {
    super();
    // A page that must notice a dead link quickly (a party's phone) beats more often than the
    // server asks (any message is a sign of life; HEARTBEAT_MISSES unanswered beats end it).
    this.heartbeatIntervalMs = heartbeatIntervalMs;
    this.connectTimeoutMs = connectTimeoutMs;
    this.finished = false;
    this.onEvent = onEvent;
    this.url = url;
    this.requestTimeoutMs = requestTimeoutMs;
    this.heartbeatEnabled = heartbeat;
    this.WebSocketImpl = WebSocketImpl ?? globalThis.WebSocket;
    this.ws = null;
    this.pending = new Map(); // transaction -> {resolve, reject, timer}
    this.closeReason = null;
    this.closingLocally = false;
    this.heartbeatTimer = null;
    this.welcome = null;
    this.badMessages = 0;
    this.lateReplies = 0;
    this.closedDispatched = false;
    this.closedPromise = new Promise((resolve) => { this._resolveClosed = resolve; });
  }

  /** Open the socket; rejects with ConnectionClosed(NETWORK_LOST) if it cannot. */
  connect() {
    return new Promise((resolve, reject) => {
      const ws = new this.WebSocketImpl(this.url);
      this.ws = ws;
      let opened = false;
      let timer = null;
      if (this.connectTimeoutMs !== null) {
        // A dropped link can hold a TCP handshake for minutes; give up and let the caller retry.
        timer = setTimeout(() => {
          if (opened) return;
          reject(new ConnectionClosed("NETWORK_LOST", "cannot connect in time"));
          this.abandon("NETWORK_LOST");
        }, this.connectTimeoutMs);
      }
      ws.addEventListener("open", () => { opened = true; clearTimeout(timer); resolve(); });
      ws.addEventListener("message", (ev) => { if (this.ws === ws) this._onMessage(ev.data); });
      ws.addEventListener("close", (ev) => {
        clearTimeout(timer);
        if (!opened) reject(new ConnectionClosed("NETWORK_LOST", "cannot connect"));
        this._finish(ev.reason, ev.code);
      });
    });
  }

  /**
   * Give this connection up at once without waiting for a closing handshake (the link is
   * dead, or about to be replaced): the socket is closed with code 4000 (not 1000, which the
   * server would record as the participant leaving) and `closed` fires now with `reason`.
   */
  abandon(reason = "NETWORK_LOST") {
    this._stopHeartbeat();
    this.closeReason = this.closeReason ?? reason;
    try {
      if (this.ws && this.ws.readyState <= 1) this.ws.close(4000, reason);
    } catch { /* already closing */ }
    this._finish(reason, 4000);
  }

  get closed() { return this.closeReason !== null; }

  /** Resolves with the CloseReason once the connection has ended. */
  waitClosed() { return this.closedPromise; }

  /** Send a request and resolve with its reply (welcome / answer / result). */
  request(type, fields = {}, { timeoutMs } = {}) {
    if (!CLIENT_TYPE_SET.has(type)) throw new TypeError(`unknown request type ${type}`);
    const transaction = fields.transaction ?? newTransaction();
    const message = { v: PROTOCOL_VERSION, type, ...fields, transaction };
    return new Promise((resolve, reject) => {
      if (this.pending.has(transaction)) {
        reject(new SignalingError("CONFLICT", `transaction ${transaction} is pending`, transaction));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(transaction);
        reject(new RequestTimeout(`no reply to ${type} in time`, transaction));
      }, timeoutMs ?? this.requestTimeoutMs);
      this.pending.set(transaction, { resolve, reject, timer });
      try {
        this.send(message);
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(transaction);
        reject(err);
      }
    });
  }

  /** Send one message as is (adds `v`), e.g. an answer to a server offer. */
  send(message) {
    if (!this.ws || this.ws.readyState !== 1 || this.closed) {
      throw new ConnectionClosed(this.closeReason, "the connection is closed");
    }
    const text = JSON.stringify({ v: PROTOCOL_VERSION, ...message });
    if (new TextEncoder().encode(text).length > MAX_MESSAGE_BYTES) {
      throw new SignalingError("TOO_LARGE", `message over ${MAX_MESSAGE_BYTES} bytes`,
        message.transaction ?? null);
    }
    this.ws.send(text);
  }

  /** Reply to a request the server sent (its `offer`): `answer` or `error`, same transaction. */
  reply(request, fields) {
    this.send({ ...fields, transaction: request.transaction });
  }

  async join(hearingId, { clientKind = "browser", userAgent = globalThis.navigator?.userAgent ?? null } = {}) {
    return this.request("join", {
      hearing_id: hearingId, client_kind: clientKind, user_agent: userAgent?.slice(0, 256) ?? null,
    });
  }

  /** Leave on purpose (CLIENT_LEFT), then close. */
  async leave() {
    try { await this.request("leave"); } catch (err) {
      if (!(err instanceof ConnectionClosed || err instanceof RequestTimeout)) throw err;
    }
    this.close();
    return this.waitClosed();
  }

  close() {
    this._stopHeartbeat();
    if (this.ws && this.ws.readyState <= 1) {
      this.closingLocally = true;
      this.ws.close(1000, "CLIENT_LEFT");
    }
  }

  _startHeartbeat(intervalS) {
    const intervalMs = this.heartbeatIntervalMs ?? intervalS * 1000;
    this.heartbeatTimer = setInterval(async () => {
      try {
        await this.request("heartbeat", {}, { timeoutMs: intervalMs * HEARTBEAT_MISSES });
      } catch (err) {
        if (err instanceof RequestTimeout) this.abandon("HEARTBEAT_LOST");
      }
    }, intervalMs);
  }

  _stopHeartbeat() {
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  _onMessage(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      this.badMessages += 1;
      return;
    }
    if (message === null || typeof message !== "object" || Array.isArray(message)
        || message.v !== PROTOCOL_VERSION || !SERVER_TYPE_SET.has(message.type)) {
      this.badMessages += 1;
      return;
    }
    const tx = message.transaction;
    if (REPLY_TYPE_SET.has(message.type) && typeof tx === "string" && this.pending.has(tx)) {
      const { resolve, reject, timer } = this.pending.get(tx);
      clearTimeout(timer);
      this.pending.delete(tx);
      if (message.type === "error") {
        reject(new RequestError(message.code, message.message, tx));
        return;
      }
      if (message.type === "welcome") {
        // However `join` was sent (join() or request("join")), the heartbeat starts here.
        this.welcome = message;
        if (this.heartbeatEnabled && this.heartbeatTimer === null) {
          this._startHeartbeat(message.heartbeat_interval_s);
        }
      }
      resolve(message);
      return;
    }
    if (message.type !== "error" && REPLY_TYPE_SET.has(message.type)) {
      this.lateReplies += 1; // its request timed out; not an event
      return;
    }
    if (message.type === "closed" && CLOSE_REASON_SET.has(message.reason)) {
      this.closeReason = message.reason;
      this.closedDispatched = true;
    }
    this._emit(message);
  }

  _emit(message) {
    if (this.onEvent) {
      try {
        this.onEvent(message);
      } catch (err) {
        console.error("signaling onEvent handler failed", err); // never break the reader
      }
    }
    this.dispatchEvent(new CustomEvent("message", { detail: message }));
    this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
  }

  _finish(frameReason, frameCode) {
    if (this.finished) return;
    this.finished = true;
    if (this.closeReason === null) {
      if (this.closingLocally) this.closeReason = "CLIENT_LEFT";
      else if (CLOSE_REASON_SET.has(frameReason)) this.closeReason = frameReason;
      // 1009: the server refused a frame over WS_MAX_FRAME_BYTES (docs/signaling.md, section 5).
      else if (frameCode === 1009) this.closeReason = "PROTOCOL_VIOLATION";
      else this.closeReason = "NETWORK_LOST";
    }
    this._stopHeartbeat();
    for (const [tx, { reject, timer }] of this.pending) {
      clearTimeout(timer);
      reject(new ConnectionClosed(this.closeReason, "connection closed before the reply", tx));
    }
    this.pending.clear();
    if (!this.closedDispatched) {
      this.closedDispatched = true;
      this._emit({ v: PROTOCOL_VERSION, type: "closed", reason: this.closeReason, message: null });
    }
    this._resolveClosed(this.closeReason);
  }
}

// -- staying connected (docs/signaling.md, section 10) ------------------------------------------

// Close reasons after which a client joins again by itself; any other ends the page's visit.
export const RESUMABLE_REASONS = Object.freeze([
  "NETWORK_LOST", "HEARTBEAT_LOST", "ICE_FAILED", "WORKER_DIED", "SERVER_SHUTDOWN",
]);
const RESUMABLE_SET = new Set(RESUMABLE_REASONS);
// A refused join worth trying again (the join limit, the media server starting up).
const RETRY_JOIN_CODES = new Set(["RATE_LIMITED", "INTERNAL", "TIMEOUT", "CLOSED"]);

/**
 * The wait before reconnection attempt `attempt` (0, 1, ...): exponential from `baseMs`,
 * capped at `capMs`, with jitter (a random half to whole of it) so that phones cut off
 * together do not all come back in the same instant.
 */
export function backoffDelay(attempt, { baseMs = 500, capMs = 4000, random = Math.random } = {}) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * One participant's presence in one hearing, kept across dropped connections.
 *
 * Opens a SignalingClient, joins, and when the connection ends for a resumable reason
 * (RESUMABLE_REASONS) joins again with a fresh connection after backoffDelay(), at once when
 * the browser says it is back online. The server returns a participant who dropped to the
 * same place; a join that arrives before the server noticed the drop replaces the dead
 * connection (DUPLICATE_SESSION goes to the old one, the new one keeps the place).
 *
 * Callbacks: onWelcome(welcome, client) after every successful join (first and rejoins);
 * onEvent(message) for every pushed message; onStatus(status) with "connecting",
 * "connected", "reconnecting"; onEnd({reason, error}) once, when it gives up for good: a
 * non-resumable close reason (CLIENT_LEFT, REMOVED, DISMISSED, JUDGE_ENDED,
 * DUPLICATE_SESSION, SESSION_REVOKED, ...) or a join refused for good (`error`).
 * stillAuthorized(): asked after every `checkEvery` connections in a row that could not be
 * opened; false (the session ended while the page was away: the upgrade is refused with 401,
 * which a browser cannot tell from a dead network) ends with SESSION_REVOKED.
 */
export class StayingSession {
  constructor(url, hearingId, {
    onWelcome = () => {}, onEvent = () => {}, onStatus = () => {}, onEnd = () => {},
    heartbeatIntervalMs = 2000, connectTimeoutMs = 4000, backoff = {}, clientOptions = {},
    stillAuthorized = async () => true, checkEvery = 5,
  } = {}) {
    Object.assign(this, { url, hearingId, onWelcome, onEvent, onStatus, onEnd, stillAuthorized, checkEvery });
    this.failedConnects = 0;
    this.options = { heartbeatIntervalMs, connectTimeoutMs, ...clientOptions };
    this.backoff = backoff;
    this.client = null;
    this.attempt = 0;
    this.rejoins = 0; // successful joins after the first
    this.ended = false;
    this.joinedOnce = false;
    this.firstJoin = null;
    this.status = null; // connecting | connected | reconnecting
    this.wake = null;
    this._online = () => this.wake?.();
    globalThis.addEventListener?.("online", this._online);
  }

  /** Join; resolves with the first welcome, rejects with the error of a refused first join. */
  start() {
    return new Promise((resolve, reject) => {
      this.firstJoin = { resolve, reject };
      this._loop();
    });
  }

  /** Drop the current connection and join again (e.g. the media transport failed). */
  reconnect(reason = "ICE_FAILED") {
    this.client?.abandon(reason);
  }

  /** Leave on purpose: no reconnection after this. */
  async leave() {
    this._stop();
    await this.client?.leave().catch(() => {});
  }

  _stop() {
    this.ended = true;
    globalThis.removeEventListener?.("online", this._online);
    this.wake?.();
  }

  _end(detail) {
    if (this.ended) return;
    this._stop();
    this.onEnd(detail);
  }

  async _loop() {
    while (!this.ended) {
      this._status(this.joinedOnce ? "reconnecting" : "connecting");
      const client = new SignalingClient(this.url, { ...this.options, onEvent: (m) => {
        if (client === this.client && !(m.type === "closed" && this._resumable(m.reason))) {
          this.onEvent(m);
        }
      } });
      this.client = client;
      let reason;
      let opened = false;
      try {
        await client.connect();
        opened = true;
        this.failedConnects = 0;
        const welcome = await client.join(this.hearingId);
        if (this.ended) { client.close(); return; }
        const first = this.firstJoin !== null;
        this.joinedOnce = true;
        this.attempt = 0;
        this._status("connected");
        if (first) { this.firstJoin.resolve(welcome); this.firstJoin = null; } else this.rejoins += 1;
        this.onWelcome(welcome, client);
        reason = await client.waitClosed();
      } catch (err) {
        if (err instanceof RequestError && !RETRY_JOIN_CODES.has(err.code)) {
          client.close();
          if (this.firstJoin) { this.firstJoin.reject(err); this.firstJoin = null; }
          this._end({ reason: "JOIN_REFUSED", error: err });
          return;
        }
        client.abandon("NETWORK_LOST");
        reason = "NETWORK_LOST";
        if (!opened) this.failedConnects += 1;
        if (this.failedConnects > 0 && this.failedConnects % this.checkEvery === 0 &&
            !(await this.stillAuthorized().catch(() => true))) {
          reason = "SESSION_REVOKED";
        }
      }
      if (this.ended) return;
      if (!this._resumable(reason)) {
        if (this.firstJoin) {
          this.firstJoin.reject(new ConnectionClosed(reason, "closed"));
          this.firstJoin = null;
        }
        this._end({ reason, error: null });
        return;
      }
      this._status(this.joinedOnce ? "reconnecting" : "connecting");
      await this._wait(backoffDelay(this.attempt, this.backoff));
      this.attempt += 1;
    }
  }

  _status(status) {
    if (status === this.status) return;
    this.status = status;
    this.onStatus(status);
  }

  _resumable(reason) {
    return RESUMABLE_SET.has(reason) && !this.ended;
  }

  _wait(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() { clearTimeout(timer); resolve(); }
      this.wake = done;
    });
  }
}
