// The device check before the waiting room (issue 13): camera, microphone, speaker and the
// network to the court, scored good / okay / bad with the named problems (docs/signaling.md:
// `probe`, `report_readiness`, `Readiness`).

export function browserSupported() {
  return Boolean(globalThis.RTCPeerConnection && navigator.mediaDevices?.getUserMedia &&
    (globalThis.AudioContext || globalThis.webkitAudioContext));
}

// Which browser's words to use when telling someone how to allow the camera.
export function browserFamily() {
  const ua = navigator.userAgent;
  if (/MicroMessenger/i.test(ua)) return "wechat";
  if (/Firefox\//.test(ua)) return "firefox";
  if (/Safari\//.test(ua) && !/Chrome\/|Chromium\/|Edg\//.test(ua)) return "safari";
  return "chrome";
}

function deviceStatus(err) {
  if (!err) return "ok";
  if (err.name === "NotAllowedError" || err.name === "SecurityError") return "denied";
  if (err.name === "NotFoundError" || err.name === "OverconstrainedError") return "missing";
  return "failed";
}

/** Camera and microphone: {stream, camera, microphone} (each status ok/denied/missing/failed). */
export async function acquire(getMedia) {
  try {
    const stream = await getMedia({ audio: true, video: { width: 640, height: 480, frameRate: 30 } });
    return { stream, camera: "ok", microphone: "ok" };
  } catch (both) {
    // Tell which one failed: each alone.
    let stream = null;
    let camera;
    let microphone;
    try {
      stream = await getMedia({ audio: true });
      microphone = "ok";
    } catch (err) {
      microphone = deviceStatus(err);
    }
    try {
      const video = await getMedia({ video: true });
      if (stream) for (const track of video.getVideoTracks()) stream.addTrack(track);
      else stream = video;
      camera = "ok";
    } catch (err) {
      camera = deviceStatus(err);
    }
    if (camera === "ok" && microphone === "ok") camera = microphone = deviceStatus(both);
    return { stream, camera, microphone };
  }
}

/** A level meter on the microphone: updates `meter` (0..1); `heard()` once it rose. */
export function micMeter(stream, meter) {
  const Context = globalThis.AudioContext || globalThis.webkitAudioContext;
  if (!stream?.getAudioTracks().length || !Context) return { heard: () => false, stop() {} };
  const context = new Context();
  const source = context.createMediaStreamSource(stream);
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let peak = 0;
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const x of samples) sum += x * x;
    const level = Math.min(1, Math.sqrt(sum / samples.length) * 4);
    peak = Math.max(peak, level);
    meter.value = level;
  }, 100);
  context.resume?.().catch(() => {});
  return {
    heard: () => peak > 0.02,
    stop() { clearInterval(timer); context.close().catch(() => {}); },
  };
}

/** One second of a soft 440 Hz tone through the speaker. */
export async function playTone() {
  const Context = globalThis.AudioContext || globalThis.webkitAudioContext;
  const context = new Context();
  await context.resume?.();
  const tone = context.createOscillator();
  const gain = context.createGain();
  gain.gain.value = 0.2;
  tone.frequency.value = 440;
  tone.connect(gain).connect(context.destination);
  tone.start();
  tone.stop(context.currentTime + 1);
  tone.onended = () => context.close().catch(() => {});
}

/**
 * The network to the court over the signaling connection (`probe`): the round trip (median
 * of 10 small probes; one unanswered in 3 s is lost) and the throughput each way (4 probes of
 * 16 KiB up, then 4 with 16 KiB down).
 */
export async function measureNetwork(client) {
  const rtts = [];
  let lost = 0;
  for (let i = 0; i < 10; i += 1) {
    const start = performance.now();
    try {
      await client.request("probe", {}, { timeoutMs: 3000 });
      rtts.push(performance.now() - start);
    } catch (err) {
      if (err.code !== "TIMEOUT") throw err;
      lost += 1;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const size = 16384;
  const payload = "x".repeat(size);
  const timed = async (fields) => {
    const start = performance.now();
    for (let i = 0; i < 4; i += 1) await client.request("probe", fields, { timeoutMs: 10000 });
    return performance.now() - start;
  };
  const rtt = rtts.length ? rtts.sort((a, b) => a - b)[Math.floor(rtts.length / 2)] : null;
  // Each probe waits for its reply: what the round trips do not explain is the transfer.
  const kbps = (ms) => Math.min(10_000_000, Math.round((4 * size * 8) / Math.max(1, ms - 4 * (rtt ?? 0))));
  const upMs = await timed({ payload });
  const downMs = await timed({ reply_bytes: size });
  return {
    rtt_ms: rtt === null ? null : Math.round(rtt),
    loss_percent: Math.round((lost / 10) * 100),
    up_kbps: kbps(upMs),
    down_kbps: kbps(downMs),
  };
}

/** The score and the named problems, worst first. */
export function score(result) {
  const problems = [];
  let worst = "good";
  const bad = (code) => { problems.push(code); worst = "bad"; };
  const okay = (code) => { problems.push(code); if (worst === "good") worst = "okay"; };
  if (!result.supported) bad("unsupported_browser");
  if (result.camera === "denied") bad("camera_denied");
  if (result.microphone === "denied") bad("microphone_denied");
  if (result.camera === "missing") bad("no_camera");
  if (result.microphone === "missing") bad("no_microphone");
  if (result.camera === "failed" || result.microphone === "failed") bad("device_failed");
  if (result.speaker === "not_heard") okay("speaker_not_heard");
  const net = result.network;
  if (!net) bad("slow_network");
  else {
    if (net.rtt_ms === null || net.loss_percent >= 20 || net.up_kbps < 150 || net.rtt_ms > 1000) {
      bad(net.loss_percent >= 20 ? "lossy_network" : "slow_network");
    } else if (net.loss_percent > 0) okay("lossy_network");
    else if (net.rtt_ms > 300 || net.up_kbps < 500 || net.down_kbps < 500) okay("slow_network");
  }
  return { score: worst, problems: [...new Set(problems)].slice(0, 8) };
}
