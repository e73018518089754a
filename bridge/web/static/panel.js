// The control panel page: one WebSocket to the bridge (reconnecting while the bridge is away),
// the face and its 52 weights redrawn at most once per animation frame, inputs sent as the
// bridge's inputs (docs/panel.md lists the messages). Nothing is fetched from anywhere else.
import { drawFace, faceGeometry } from "./face.js";

const PLOT_SECONDS = 10;
const SEND_INTERVAL_MS = 33;  // the pad and the slider send at most 30 messages a second
const RECONNECT_MS = [250, 500, 1000, 2000];
const AXIS_COLOURS = ["#c0392b", "#2471a3", "#7d3c98"];

const $ = (id) => document.getElementById(id);
const state = {
  socket: null, attempts: 0, names: [], face: null, avatar: "default", settings: null,
  history: [], drawPending: false, bars: new Map(),
};
const token = new URLSearchParams(location.hash.slice(1)).get("token");

// --- the connection -----------------------------------------------------------------------------

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = token ? `?token=${encodeURIComponent(token)}` : "";
  const socket = new WebSocket(`${scheme}://${location.host}/ws${query}`);
  state.socket = socket;
  socket.onopen = () => { state.attempts = 0; setStatus(true); };
  socket.onmessage = (event) => receive(JSON.parse(event.data));
  socket.onclose = () => {
    state.socket = null;
    setStatus(false);
    const delay = RECONNECT_MS[Math.min(state.attempts, RECONNECT_MS.length - 1)];
    state.attempts += 1;
    setTimeout(connect, delay);
  };
}

function setStatus(online) {
  const status = $("status");
  status.textContent = online ? "connected" : "reconnecting…";
  status.title = online || !state.attempts ? "" :
    "waiting for the bridge; a panel on a LAN address needs the URL with #token=… it printed";
  status.className = `status ${online ? "online" : "offline"}`;
}

function send(message) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify(message));
  }
}

// A value sent at most every SEND_INTERVAL_MS; the newest wins (a drag makes hundreds).
function throttled(build) {
  let pending = null, timer = null;
  const flush = () => { timer = null; if (pending !== null) { send(build(pending)); pending = null; } };
  return (value) => {
    pending = value;
    if (timer === null) { flush(); timer = setTimeout(flush, SEND_INTERVAL_MS); }
  };
}

function receive(message) {
  switch (message.type) {
    case "hello": hello(message); break;
    case "face": state.face = message; scheduleDraw(); break;
    case "stats": showStats(message); break;
    case "settings": showSettings(message.settings, false); break;
    case "tuned": tuned(message); break;
    case "saved": saved(message); break;
    case "rejected": showMessage("rejection", `refused: ${message.reason}`, false); break;
  }
}

function hello(message) {
  state.names = message.names;
  buildBars(message.names);
  buildEmotionButtons(message.emotions);
  state.avatar = message.avatar;
  showAvatars(message.avatars, message.avatar_count);
  showSettings(message.settings, true);
  $("save").disabled = message.save_target === null;
  $("save").title = message.save_target === null ? "the bridge runs without a config file"
    : `writes ${message.save_target} beside the running config`;
  state.history = [];
}

// --- watch: face, bars, VAD plot ----------------------------------------------------------------

function buildBars(names) {
  if (state.bars.size) return;
  const bars = $("bars");
  for (const name of names) {
    const row = document.createElement("div");
    row.className = "bar";
    row.dataset.name = name;
    row.dataset.value = "0";
    const label = document.createElement("span");
    label.textContent = name;
    const track = document.createElement("span");
    track.className = "track";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.display = "block";
    track.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    row.append(label, track, value);
    bars.append(row);
    state.bars.set(name, { row, fill, value });
  }
}

function scheduleDraw() {
  if (!state.drawPending) {
    state.drawPending = true;
    requestAnimationFrame(draw);
  }
  const face = state.face;
  state.history.push({ t: performance.now() / 1000, vad: face.vad, target: face.target });
  const oldest = performance.now() / 1000 - PLOT_SECONDS;
  while (state.history.length && state.history[0].t < oldest) state.history.shift();
}

function draw() {
  state.drawPending = false;
  const face = state.face;
  if (!face || face.w.length !== state.names.length) return;
  const canvas = $("face");
  drawFace(canvas.getContext("2d"), faceGeometry(face.w, state.names), canvas.width, canvas.height);
  face.w.forEach((weight, i) => {
    const bar = state.bars.get(state.names[i]);
    bar.row.dataset.value = weight.toFixed(4);
    bar.fill.style.width = `${(100 * weight).toFixed(1)}%`;
    bar.value.textContent = weight.toFixed(2);
  });
  const fmt = (values) => values.map((v) => v.toFixed(2)).join("  ");
  $("vad-now").textContent = `VAD ${fmt(face.vad)}   target ${fmt(face.target)}`;
  drawPad();
  drawPlot();
}

// A cleared canvas, its context set for the grey guide lines, and its size.
function blank(id) {
  const canvas = $(id);
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  context.strokeStyle = "#d9d9d9";
  context.lineWidth = 1;
  return { context, width: canvas.width, height: canvas.height };
}

function drawPlot() {
  const { context, width, height } = blank("vad-plot");
  context.beginPath();
  context.moveTo(0, height / 2);
  context.lineTo(width, height / 2);
  context.stroke();
  const now = performance.now() / 1000;
  const x = (t) => width * (1 - (now - t) / PLOT_SECONDS);
  const y = (value) => height / 2 - value * (height / 2 - 4);
  for (const [key, dash] of [["target", [4, 3]], ["vad", []]]) {
    for (let axis = 0; axis < 3; axis += 1) {
      context.beginPath();
      context.setLineDash(dash);
      context.strokeStyle = AXIS_COLOURS[axis];
      context.lineWidth = key === "vad" ? 2 : 1;
      state.history.forEach((point, i) => {
        const px = x(point.t), py = y(point[key][axis]);
        if (i === 0) context.moveTo(px, py); else context.lineTo(px, py);
      });
      context.stroke();
    }
  }
  context.setLineDash([]);
}

// --- drive: pad, dominance, emotions, mixes -----------------------------------------------------

const sendPad = throttled(([valence, arousal]) => ({ type: "vad", avatar: state.avatar, valence, arousal }));
const sendDominance = throttled((dominance) => ({ type: "vad", avatar: state.avatar, dominance }));

function padValue(event) {
  const box = $("pad").getBoundingClientRect();
  const clamp = (value) => Math.max(-1, Math.min(1, value));
  const valence = clamp(((event.clientX - box.left) / box.width) * 2 - 1);
  const arousal = clamp(1 - ((event.clientY - box.top) / box.height) * 2);
  return [Number(valence.toFixed(3)), Number(arousal.toFixed(3))];
}

function drawPad() {
  const { context, width, height } = blank("pad");
  context.beginPath();
  context.moveTo(width / 2, 0); context.lineTo(width / 2, height);
  context.moveTo(0, height / 2); context.lineTo(width, height / 2);
  context.stroke();
  context.fillStyle = "#6b6b6b";
  context.font = "11px system-ui, sans-serif";
  context.fillText("valence →", width - 62, height / 2 - 5);
  context.fillText("arousal ↑", width / 2 + 5, 12);
  const face = state.face;
  if (!face) return;
  const dot = ([v, a], colour, radius) => {
    context.beginPath();
    context.arc((v + 1) / 2 * width, (1 - a) / 2 * height, radius, 0, 2 * Math.PI);
    context.fillStyle = colour;
    context.fill();
  };
  dot(face.target, "rgba(79, 124, 172, 0.35)", 9);
  dot(face.vad, "#4f7cac", 5);
}

function setupDrive() {
  const pad = $("pad");
  pad.addEventListener("pointerdown", (event) => {
    pad.setPointerCapture(event.pointerId);
    sendPad(padValue(event));
  });
  pad.addEventListener("pointermove", (event) => {
    if (pad.hasPointerCapture(event.pointerId)) sendPad(padValue(event));
  });
  $("dominance").addEventListener("input", (event) => {
    const value = Number(event.target.value);
    $("dominance-value").textContent = value.toFixed(2);
    sendDominance(value);
  });
  $("intensity").addEventListener("input", (event) => {
    $("intensity-value").textContent = Number(event.target.value).toFixed(2);
  });
  $("mix-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sendEmotion($("mix").value);
  });
  $("avatar").addEventListener("change", (event) => {
    state.avatar = event.target.value;
    state.history = [];
    send({ type: "watch", avatar: state.avatar });
  });
}

function sendEmotion(spec) {
  showMessage("rejection", "", true);
  send({ type: "emotion", avatar: state.avatar, emotion: spec, intensity: Number($("intensity").value) });
}

function buildEmotionButtons(emotions) {
  const box = $("emotions");
  if (box.childElementCount) return;
  for (const name of emotions) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = name;
    button.dataset.emotion = name;
    button.addEventListener("click", () => sendEmotion(name));
    box.append(button);
  }
}

function showAvatars(avatars, count) {
  const select = $("avatar");
  const current = state.avatar;
  select.replaceChildren(...avatars.map((id) => new Option(id, id, false, id === current)));
  $("avatar-picker").hidden = avatars.length < 2;
  $("avatar-count").textContent = count > avatars.length ? `(${count} avatars, first ${avatars.length} listed)` : "";
}

// --- tune: smoothing and liveliness through the bridge's reload path ----------------------------

const FIELDS = ["attack_ms", "release_ms", "tau_ms", "idle_timeout_s"];
const REGION_FIELDS = ["upper_attack_ms", "upper_release_ms", "lower_attack_ms", "lower_release_ms"];

function shown(value) { return value === undefined || value === null ? "" : String(value); }

function showSettings(settings, force) {
  state.settings = settings;
  const smoothing = settings.smoothing;
  const set = (id, value) => {
    const input = $(id);
    if (force || document.activeElement !== input) input.value = shown(value);
  };
  for (const key of FIELDS) set(key, smoothing[key]);
  for (const id of REGION_FIELDS) {
    const [region, ...rest] = id.split("_");
    set(id, (smoothing[region] || {})[rest.join("_")]);
  }
  set("space", smoothing.space);
  $("blink").checked = settings.liveliness.blink;
  $("breathing").checked = settings.liveliness.breathing;
}

// The text of a field as the page sends it: a number when it reads as one, empty = null (the
// key's default), anything else as typed: the bridge's config loader says what is wrong with it.
function fieldValue(id) {
  const text = $(id).value.trim();
  if (text === "") return null;
  const number = Number(text);
  return Number.isFinite(number) ? number : text;
}

function smoothingPatch() {
  const smoothing = state.settings.smoothing;
  const patch = {};
  for (const key of [...FIELDS, "space"]) {
    if ($(key).value.trim() !== shown(smoothing[key])) patch[key] = fieldValue(key);
  }
  for (const id of REGION_FIELDS) {
    const [region, ...rest] = id.split("_");
    const key = rest.join("_");
    if ($(id).value.trim() !== shown((smoothing[region] || {})[key])) {
      patch[region] = { ...(patch[region] || {}), [key]: fieldValue(id) };
    }
  }
  // One time constant replaces the pair, and back: send the side that is not typed over.
  if (patch.tau_ms !== undefined && patch.tau_ms !== null) {
    for (const key of ["attack_ms", "release_ms"]) if (!(key in patch)) patch[key] = null;
  } else if (patch.tau_ms === null) {
    for (const key of ["attack_ms", "release_ms"]) if (!(key in patch)) patch[key] = fieldValue(key);
  }
  return patch;
}

function setupTune() {
  $("tune-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const patch = smoothingPatch();
    if (Object.keys(patch).length === 0) {
      showMessage("tune-message", "nothing changed", true);
      return;
    }
    showMessage("tune-message", "applying…", true);
    send({ type: "tune", smoothing: patch });
  });
  for (const key of ["blink", "breathing"]) {
    $(key).addEventListener("change", (event) => {
      showMessage("tune-message", "applying…", true);
      send({ type: "tune", liveliness: { [key]: event.target.checked } });
    });
  }
  $("save").addEventListener("click", () => {
    showMessage("save-message", "saving…", true);
    send({ type: "save" });
  });
}

function tuned(message) {
  if (message.error) {
    showMessage("tune-message", `refused: ${message.error}`, false);
    state.settings = message.settings;  // the running values; the typed ones stay to be fixed
    $("blink").checked = message.settings.liveliness.blink;
    $("breathing").checked = message.settings.liveliness.breathing;
  } else {
    showMessage("tune-message", "applied", true);
    showSettings(message.settings, true);
  }
}

function saved(message) {
  if (message.error) {
    showMessage("save-message", `not saved: ${message.error}`, false);
  } else {
    const kept = message.backup ? ` (previous one kept as ${message.backup})` : "";
    showMessage("save-message", `saved ${message.written}${kept}`, true);
  }
}

function showMessage(id, text, good) {
  const element = $(id);
  element.textContent = text;
  element.className = `message ${text ? (good ? "good" : "bad") : ""}`;
}

// --- stats --------------------------------------------------------------------------------------

function cells(row, values) {
  row.replaceChildren(...values.map((value, i) => {
    const cell = document.createElement(i === 0 ? "th" : "td");
    cell.textContent = value;
    return cell;
  }));
  return row;
}

function table(id, rows) {
  $(id).replaceChildren(...rows.map((values) => cells(document.createElement("tr"), values)));
}

function perSecond(count, seconds) { return seconds > 0 ? `${(count / seconds).toFixed(1)}/s` : "–"; }

function showStats(stats) {
  const seconds = stats.interval_s;
  $("fps").textContent = stats.fps === null ? "–" : stats.fps.toFixed(1);
  $("late").textContent = `${stats.late}, ${stats.skipped}`;
  $("lateness").textContent = `mean ${stats.lateness_ms.mean.toFixed(3)} ms, max ${stats.lateness_ms.max.toFixed(3)} ms`;
  // Rejections are counted by kind and by source: a kind such as rate_limit is every source's.
  const totals = stats.totals, interval = stats.inputs;
  const sources = new Set(["osc", "mqtt", "web", ...Object.keys(totals.accepted),
    ...Object.keys(totals.rejected_by_source)]);
  const rateAndTotal = (counts, since, source) =>
    `${perSecond(counts[source] || 0, seconds)} · ${since[source] || 0}`;
  table("inputs", [...sources].sort().map((source) => [
    source, rateAndTotal(interval.accepted, totals.accepted, source),
    rateAndTotal(interval.rejected_by_source, totals.rejected_by_source, source),
    String(totals.clipped[source] || 0),
  ]));
  const kinds = Object.keys(stats.totals.rejected).sort();
  table("rejected", kinds.length ? kinds.map((kind) => [
    kind, perSecond(stats.inputs.rejected[kind] || 0, seconds), String(stats.totals.rejected[kind]),
  ]) : [["none", "", ""]]);
  const outputs = stats.outputs.map((output) => [
    output.name, output.state || "", `${output.send_errors} send errors`,
    stats.receivers[output.name] !== undefined ? `${stats.receivers[output.name]} receivers` : "",
  ]);
  // Inputs that hold a connection (an MQTT broker) say whether it is up.
  table("connections", stats.sources.filter((source) => source.state)
    .map((source) => [`input ${source.name}`, source.state]));
  if (stats.output_count > stats.outputs.length) {
    outputs.push([`… ${stats.output_count - stats.outputs.length} more outputs`, "", "", ""]);
  }
  table("outputs", outputs);
  $("panel-counts").textContent =
    `panel: ${stats.panel.clients} page(s), ${stats.panel.dropped_updates} updates skipped for slow pages`;
  if (stats.avatars.join() !== [...$("avatar").options].map((o) => o.value).join()) {
    showAvatars(stats.avatars, stats.avatar_count);
  }
}

// For tests and the curious: the geometry function the face is drawn with.
window.vadbridgePanel = { faceGeometry, state };

setupDrive();
setupTune();
drawPad();
connect();
