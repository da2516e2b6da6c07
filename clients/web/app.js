// Seminote Edge browser client: microphone -> WebRTC (Opus) -> edge node; results come back on
// the "results" DataChannel as compact JSON. No build step. window.seminote exposes the state
// for tests and for the console.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { onsets: [], strengths: [], streamTime: 0, latencies: [], sessionId: null,
                connection: "idle", error: null, pc: null, stream: null, rms: null,
                // fast-tier notes by id: {pitch, on (s), off (s, 0 while sounding), vel}
                notes: {}, noteCount: 0, noteOns: [] };  // noteOns: [onset_s, pitch] of every note
window.seminote = state;

function setState(s, cls) {
  state.connection = s;
  const el = $("state");
  el.textContent = s;
  el.className = "state " + (cls || s);
}
function say(text, isError) {
  const el = $("message");
  el.textContent = text || "";
  el.className = isError ? "error" : "";
  if (isError) state.error = text;
}

// latency: the page stamps when each 20 ms of audio left the microphone pipeline (its own
// clock, from the capture start) and compares with when the result for that stream position
// arrives. Includes capture, Opus encoding, the network, analysis and the DataChannel.
let captureT0 = null;
function onResult(msg) {
  state.streamTime = msg.pos;
  if (captureT0 !== null) {
    const lat = performance.now() - (captureT0 + msg.pos * 1000);
    if (lat > 0 && lat < 5000) state.latencies.push(lat);
  }
  if (msg.on) for (const [t, s] of msg.on) { state.onsets.push(t); state.strengths.push(s); addOnset(t); }
  if (msg.xon) for (const t of msg.xon) retractOnset(t);  // withdrawn: no key was struck there
  if (msg.n) for (const [id, action, pitch, on, off, vel] of msg.n) addNote(id, action, pitch, on, off, vel);
  if (msg.rms !== undefined) state.rms = msg.rms;
  if (msg.srv_ms !== undefined) $("server-ms").textContent = msg.srv_ms.toFixed(2) + " ms";
}
// the lists are updated at most every 250 ms, in one go: a DOM change per event made the
// page re-lay out its multi-column lists ~15 times a second
const pendingItems = { "onset-list": [], "note-list": [] };
let listsFlushedAt = 0;
function addOnset(t) { pendingItems["onset-list"].push(t.toFixed(3) + " s"); }
function retractOnset(t) {
  const i = state.onsets.lastIndexOf(t);
  if (i >= 0) { state.onsets.splice(i, 1); state.strengths.splice(i, 1); }
  const items = pendingItems["onset-list"], j = items.lastIndexOf(t.toFixed(3) + " s");
  if (j >= 0) items.splice(j, 1); else items.push("(" + t.toFixed(3) + " s withdrawn)");
}
function flushLists(nowMs) {
  if (nowMs - listsFlushedAt < 250) return;
  listsFlushedAt = nowMs;
  for (const [id, items] of Object.entries(pendingItems)) {
    if (!items.length) continue;
    const list = $(id), frag = document.createDocumentFragment();
    for (const text of items.splice(0).slice(-40).reverse()) {
      const li = document.createElement("li");
      li.textContent = text;
      frag.append(li);
    }
    list.prepend(frag);
    while (list.children.length > 40) list.lastChild.remove();
  }
}
const NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
function noteName(p) { return NAMES[p % 12] + (Math.floor(p / 12) - 1); }
function addNote(id, action, pitch, on, off, vel) {
  if (action === "ON") {
    state.notes[id] = { pitch, on, off: 0, vel };
    state.noteCount++;
    state.noteOns.push([on, pitch]);
    pendingItems["note-list"].push(noteName(pitch) + " at " + on.toFixed(3) + " s");
  } else if (action === "OFF" && state.notes[id]) state.notes[id].off = off;
}
function pct(a, q) { if (!a.length) return null; const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; }

function draw(nowMs) {
  flushLists(nowMs || 0);
  const c = $("strip"), g = c.getContext("2d"), w = c.width, h = c.height;
  g.clearRect(0, 0, w, h);
  const now = state.streamTime, span = 10;
  g.strokeStyle = "#222a33";
  for (let s = Math.ceil(now - span); s <= now; s++) { const x = w - (now - s) / span * w; g.beginPath(); g.moveTo(x, 0); g.lineTo(x, h); g.stroke(); }
  for (let i = state.onsets.length - 1; i >= 0; i--) {
    const t = state.onsets[i]; if (t < now - span) break;
    const x = w - (now - t) / span * w, hh = Math.min(h - 10, 20 + 8 * state.strengths[i]);
    g.fillStyle = "#5ad1ff"; g.fillRect(x - 1, h - hh, 3, hh);
  }
  // piano roll: one row per key (A0 at the bottom), bars from onset to note-off (or now)
  g.fillStyle = "#ffb347";
  for (const n of Object.values(state.notes)) {
    const end = n.off || now;
    if (end < now - span) continue;
    const x0 = w - (now - n.on) / span * w, x1 = w - (now - end) / span * w;
    const y = h - 4 - (n.pitch - 21) / 88 * (h - 8);
    g.fillRect(x0, y - 1, Math.max(2, x1 - x0), 3);
  }
  for (const [id, n] of Object.entries(state.notes)) if (n.off && n.off < now - 2 * span) delete state.notes[id];
  $("onset-count").textContent = state.onsets.length;
  $("note-count").textContent = state.noteCount;
  $("stream-time").textContent = state.streamTime.toFixed(1) + " s";
  $("level").textContent = state.rms === null ? "–" : state.rms.toFixed(1) + " dBFS";
  const p50 = pct(state.latencies, 0.5), p95 = pct(state.latencies, 0.95);
  $("latency").textContent = p50 === null ? "–" : p50.toFixed(0) + " / " + p95.toFixed(0) + " ms";
  requestAnimationFrame(draw);
}

async function start() {
  $("start").disabled = true;
  say("");
  setState("requesting microphone", "connecting");
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ audio: {
      echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 } });
  } catch (e) {
    setState("error");
    say("Microphone refused or unavailable (" + e.name + "): allow the microphone for this page and try again.", true);
    $("start").disabled = false;
    return;
  }
  const pc = new RTCPeerConnection();
  state.pc = pc;
  const channel = pc.createDataChannel("results");
  channel.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.t === "r") onResult(msg);
    else if (msg.t === "started") { state.sessionId = msg.session_id; $("session").textContent = msg.session_id.slice(0, 12) + "… on " + msg.node_id; }
    else if (msg.t === "error") say("Server: " + msg.msg, true);
    else if (msg.t === "end") say("Session ended: " + msg.summary.onsets + " onsets, " + state.noteCount + " notes.");
  };
  pc.onconnectionstatechange = () => {
    const s = pc.connectionState;
    setState(s);
    if (s === "connected" && captureT0 === null) captureT0 = performance.now();
    if (s === "failed") say("Connection to the edge node failed. Check the network and try again.", true);
  };
  for (const track of state.stream.getAudioTracks()) pc.addTrack(track, state.stream);
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {  // gather host candidates (loopback / LAN) before sending
      if (pc.iceGatheringState === "complete") return resolve();
      pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve();
      setTimeout(resolve, 2000);
    });
    const r = await fetch("/api/v1/webrtc/offer", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type,
                             options: { analyses: ["ONSETS", "FEATURES", "NOTES"] } }) });
    const answer = await r.json();
    if (!r.ok) throw new Error(answer.message || r.statusText);
    await pc.setRemoteDescription(answer);
    $("stop").disabled = false;
  } catch (e) {
    setState("failed");
    say("Could not connect to the edge node: " + e.message, true);
    stop();
  }
}

function stop() {
  if (state.pc) state.pc.close();
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  state.pc = null; state.stream = null; captureT0 = null;
  if (state.connection !== "failed" && state.connection !== "error") setState("closed", "idle");
  $("start").disabled = false; $("stop").disabled = true;
}

$("start").onclick = start;
$("stop").onclick = stop;
requestAnimationFrame(draw);
