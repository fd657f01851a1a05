// RHMNet studio page: plain JavaScript and canvas, no build step.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const canvas = $("frame-canvas");
const ctx = canvas.getContext("2d");
const strokeLayer = document.createElement("canvas");  // this frame's strokes (the eraser clears them)
const slider = $("frame-slider");
const select = $("object-select");
const statusEl = $("status");

const BACKGROUND = 11;
let info = null;
let strokes = [];
let current = null;       // the stroke being drawn
let eraser = false;
let frame = 0;
let frameImage = null;    // the shown frame's <img>
let maskImage = null;     // its overlay (objects coloured, background transparent), or null
let maskRevision = -1;
let revisions = [];
let wantedJob = 0;        // the job our last Propagate click started
let busyExport = false;
let lastSeen = "";        // the propagation status last shown
let playing = null;
let opacity = 0.5;
let lastOpacity = 0.5;
const frameCache = new Map();

function url(path) {
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
}

async function api(path, body) {
  const options = { headers: { "X-Studio-Token": token } };
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(url(path), options);
  let data = {};
  try { data = await response.json(); } catch (e) { data = {}; }
  if (!response.ok) {
    const error = new Error(data.error || response.statusText);
    error.status = response.status;
    error.data = data;
    throw error;
  }
  return data;
}

function setStatus(state, text) {
  statusEl.dataset.state = state;
  statusEl.textContent = text;
}

function colour(label) {
  if (label === BACKGROUND) return "rgb(255,255,255)";
  const c = info.colours[label - 1];
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function brushLabel() {
  if (eraser) return 0;
  return select.value === "bg" ? BACKGROUND : parseInt(select.value, 10);
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = reject;
    img.src = src;
  });
}

function frameSrc(index) { return url(`/api/frame/${index}`); }

async function getFrame(index) {
  if (!frameCache.has(index)) {
    frameCache.set(index, loadImage(frameSrc(index)));
    if (frameCache.size > 64) frameCache.delete(frameCache.keys().next().value);  // bounded
  }
  return frameCache.get(index);
}

async function loadMask(index) {
  const revision = revisions[index] || 0;
  if (revision === 0) { maskImage = null; maskRevision = 0; return; }
  const response = await fetch(url(`/api/mask/${index}?r=${revision}`), { headers: { "X-Studio-Token": token } });
  if (index !== frame) return;
  if (response.status !== 200) { maskImage = null; maskRevision = revision; return; }
  const blob = await response.blob();
  const img = await loadImage(URL.createObjectURL(blob));
  if (index !== frame) return;
  maskImage = img;
  maskRevision = revision;
}

function drawStroke(g, stroke) {
  g.save();
  g.lineCap = "round";
  g.lineJoin = "round";
  g.lineWidth = stroke.size;
  if (stroke.label === 0) {
    g.globalCompositeOperation = "destination-out";
    g.strokeStyle = g.fillStyle = "rgba(0,0,0,1)";
  } else {
    g.strokeStyle = g.fillStyle = colour(stroke.label);
  }
  const p = stroke.points;
  if (p.length === 1) {
    g.beginPath();
    g.arc(p[0][0], p[0][1], Math.max(stroke.size / 2, 0.5), 0, 2 * Math.PI);
    g.fill();
  } else {
    g.beginPath();
    g.moveTo(p[0][0], p[0][1]);
    for (let i = 1; i < p.length; i++) g.lineTo(p[i][0], p[i][1]);
    g.stroke();
  }
  g.restore();
}

function render() {
  if (!info) return;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (frameImage) ctx.drawImage(frameImage, 0, 0, canvas.width, canvas.height);
  if (maskImage && opacity > 0) {
    ctx.globalAlpha = opacity;
    ctx.drawImage(maskImage, 0, 0, canvas.width, canvas.height);
    ctx.globalAlpha = 1;
  }
  const g = strokeLayer.getContext("2d");
  g.clearRect(0, 0, strokeLayer.width, strokeLayer.height);
  for (const s of strokes) if (s.frame === frame) drawStroke(g, s);
  if (current) drawStroke(g, current);
  ctx.drawImage(strokeLayer, 0, 0);
}

async function showFrame(index) {
  index = Math.max(0, Math.min(info.frames - 1, index));
  frame = index;
  slider.value = String(index);
  $("frame-label").textContent = `${index + 1} / ${info.frames}  (${info.names[index]})`;
  try {
    const img = await getFrame(index);
    if (index !== frame) return;
    frameImage = img;
    getFrame(Math.min(info.frames - 1, index + 1));  // preload the next frame
    await loadMask(index);
  } catch (e) {
    setStatus("error", `cannot load frame ${index}`);
  }
  if (index === frame) render();
}

function eventPoint(event) {
  const rect = canvas.getBoundingClientRect();
  const x = (event.clientX - rect.left) * (canvas.width / rect.width);
  const y = (event.clientY - rect.top) * (canvas.height / rect.height);
  return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
}

canvas.addEventListener("pointerdown", (event) => {
  if (!info || event.button !== 0) return;
  canvas.setPointerCapture(event.pointerId);
  current = { frame, label: brushLabel(), size: parseInt($("brush-size").value, 10), points: [eventPoint(event)] };
  render();
});

canvas.addEventListener("pointermove", (event) => {
  if (!current) return;
  current.points.push(eventPoint(event));
  render();
});

async function endStroke() {
  if (!current) return;
  const stroke = current;
  current = null;
  strokes.push(stroke);
  render();
  try {
    applyStrokes(await api("/api/strokes", stroke));
  } catch (e) {
    strokes = strokes.filter((s) => s !== stroke);
    render();
    setStatus("error", `stroke not saved: ${e.message}`);
  }
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

function applyStrokes(state) {
  strokes = state.strokes;
  $("undo").disabled = !state.can_undo;
  $("redo").disabled = !state.can_redo;
  render();
}

async function undo() { applyStrokes(await api("/api/undo", {})); }
async function redo() { applyStrokes(await api("/api/redo", {})); }

async function propagate() {
  try {
    wantedJob = Infinity;  // ignore the status of earlier jobs until the server names the new one
    setStatus("working", "starting propagation");
    const result = await api("/api/propagate", {});
    wantedJob = result.job;
  } catch (e) {
    wantedJob = 0;
    setStatus("error", e.message);
  }
}

async function exportResults(overwrite) {
  if (busyExport) return;
  busyExport = true;
  setStatus("working", "exporting");
  try {
    const result = await api("/api/export", { overwrite });
    setStatus("done", `exported ${info.frames} masks` + (result.overlay ? " and the overlay" : "") + ` to ${info.out}`);
  } catch (e) {
    if (e.status === 409 && e.data.confirm && window.confirm(`${e.message}?`)) {
      busyExport = false;
      return exportResults(true);
    }
    setStatus(e.status === 409 ? "idle" : "error", e.status === 409 ? "export cancelled" : e.message);
  } finally {
    busyExport = false;
  }
}

async function poll() {
  if (!busyExport) {
    try {
      const s = await api("/api/status");
      revisions = s.revisions;
      const ours = s.job >= wantedJob && !busyExport;
      const seen = `${s.job}/${s.state}/${s.done}`;  // show a propagation's progress only when it changes,
      if (ours && s.job > 0 && seen !== lastSeen) {   // so that e.g. an export's message stays
        lastSeen = seen;
        const bar = s.total ? (100 * s.done) / s.total : 0;
        $("progress-bar").style.width = `${bar}%`;
        if (s.state === "working") setStatus("working", `propagating: ${s.done} / ${s.total} frames`);
        else if (s.state === "done") setStatus("done", `propagated ${s.total} frames in ${s.seconds} s`);
        else if (s.state === "error") setStatus("error", s.message);
      }
      if ((revisions[frame] || 0) !== maskRevision) { await loadMask(frame); render(); }
    } catch (e) {
      setStatus("error", `server not reachable: ${e.message}`);
    }
  }
  setTimeout(poll, 250);
}

function togglePlay() {
  if (playing) {
    clearInterval(playing);
    playing = null;
    $("play").textContent = "Play";
    return;
  }
  $("play").textContent = "Pause";
  playing = setInterval(() => showFrame(frame + 1 >= info.frames ? 0 : frame + 1), 1000 / (info.fps || 12));
}

function setEraser(on) {
  eraser = on;
  $("eraser").classList.toggle("active", on);
  updateLegend();
}

function updateLegend() {
  for (const el of document.querySelectorAll(".swatch")) {
    el.classList.toggle("active", !eraser && el.dataset.value === select.value);
  }
}

function buildLegend() {
  const legend = $("legend");
  const values = [...Array(10).keys()].map((i) => String(i + 1)).concat(["bg"]);
  for (const value of values) {
    const el = document.createElement("span");
    el.className = "swatch";
    el.dataset.value = value;
    const label = value === "bg" ? BACKGROUND : parseInt(value, 10);
    el.innerHTML = `<i style="background:${colour(label)}"></i>${value === "bg" ? "background" : value}`;
    el.addEventListener("click", () => { select.value = value; setEraser(false); });
    legend.appendChild(el);
  }
  updateLegend();
}

document.addEventListener("keydown", (event) => {
  if (event.target.tagName === "SELECT" || event.target.tagName === "INPUT" && event.target.type !== "range") return;
  const key = event.key;
  if ((event.ctrlKey || event.metaKey) && key.toLowerCase() === "z") {
    event.preventDefault();
    if (event.shiftKey) redo(); else undo();
  } else if ((event.ctrlKey || event.metaKey) && key.toLowerCase() === "y") {
    event.preventDefault(); redo();
  } else if ((event.ctrlKey || event.metaKey) && key.toLowerCase() === "s") {
    event.preventDefault(); exportResults(false);
  } else if (event.ctrlKey || event.metaKey || event.altKey) {
    return;
  } else if (/^[0-9]$/.test(key)) {
    select.value = key === "0" ? "10" : key; setEraser(false);
  } else if (key === "b") {
    select.value = "bg"; setEraser(false);
  } else if (key === "e") {
    setEraser(!eraser);
  } else if (key === "[" || key === "]") {
    const size = $("brush-size");
    size.value = String(parseInt(size.value, 10) + (key === "]" ? 2 : -2));
  } else if (key === "ArrowLeft" || key === "ArrowRight") {
    event.preventDefault(); showFrame(frame + (key === "ArrowRight" ? 1 : -1));
  } else if (key === " ") {
    event.preventDefault(); togglePlay();
  } else if (key === "p") {
    propagate();
  } else if (key === "o") {
    if (opacity > 0) { lastOpacity = opacity; opacity = 0; } else { opacity = lastOpacity || 0.5; }
    $("opacity").value = String(Math.round(opacity * 100)); render();
  }
});

function fitCanvas() {
  // the frame as large as the window allows (strokes stay in frame pixels: see eventPoint)
  const room = Math.max(200, window.innerHeight - canvas.getBoundingClientRect().top - 110);
  const scale = Math.min((window.innerWidth - 24) / info.width, room / info.height);
  canvas.style.width = `${Math.round(info.width * scale)}px`;
  canvas.style.height = `${Math.round(info.height * scale)}px`;
}

async function start() {
  info = await api("/api/info");
  $("source").textContent = `${info.source}: ${info.frames} frames, ${info.width}x${info.height}; results in ${info.out}`;
  canvas.width = strokeLayer.width = info.width;
  canvas.height = strokeLayer.height = info.height;
  fitCanvas();
  window.addEventListener("resize", fitCanvas);
  slider.max = String(info.frames - 1);
  slider.addEventListener("input", () => showFrame(parseInt(slider.value, 10)));
  select.addEventListener("change", () => { setEraser(false); });
  $("eraser").addEventListener("click", () => setEraser(!eraser));
  $("undo").addEventListener("click", undo);
  $("redo").addEventListener("click", redo);
  $("propagate").addEventListener("click", propagate);
  $("export").addEventListener("click", () => exportResults(false));
  $("play").addEventListener("click", togglePlay);
  $("opacity").addEventListener("input", () => { opacity = parseInt($("opacity").value, 10) / 100; render(); });
  buildLegend();
  applyStrokes(await api("/api/strokes"));
  const s = await api("/api/status");
  revisions = s.revisions;
  wantedJob = s.job;
  if (s.state === "done" || s.state === "working") setStatus(s.state, s.state);
  await showFrame(0);
  poll();
}

start().catch((e) => setStatus("error", e.message));
