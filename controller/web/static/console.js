// The operator console: login, the live map, the panels and the operator actions.
// Data flow: the live socket says *that* something changed (events) and *where* vehicles are (telemetry,
// 4 Hz); the page then re-reads the few small endpoints it draws from (map, queue), at most a few times a
// second. Actions are ordinary API calls, so the station's roles apply to the page like to any client.

import { IntentsView, localFrame } from "./airspace.js";
import { api, Live, token } from "./api.js";
import { StationMap } from "./map.js";
import { addEvent, renderFleet, renderMissions, renderQueue } from "./panels.js";
import { renderDelivered, showPackage } from "./proof.js";

const $ = (sel) => document.querySelector(sel);
const state = {
  role: null, canWrite: false, map: null, queue: [], packages: new Map(), vehicles: [], filter: "",
  grounded: null, fitted: false, frame: null, rafPending: false, lastPanels: -Infinity, selected: null,
};
const stats = { frames: 0, durations: [], lags: [], received: 0, lastFrameAt: 0 };
const map = new StationMap($("#map"));
map.onView = (k) => ($("#scale").textContent = `${Math.round(k * 100)} m per 100 px`);
map.onPick = (id) => select(id === state.selected ? null : id);
const intents = new IntentsView($("#layer-intents"), $("#intents"));

// --- live channel ---------------------------------------------------------------------------------------
const live = new Live({
  onState: (s) => {
    const pill = $("#conn");
    pill.dataset.state = s;
    pill.textContent = s;
  },
  onHello: (hello) => {
    $("#station").textContent = hello.station;
    refresh(true);
  },
  onEvent: (e) => {
    addEvent($("#events"), e, state.filter);
    if (e.type === "fleet") setGrounded(e.state === "grounded" ? e.reason || "grounded" : null);
    if (["package", "mission", "fleet", "service"].includes(e.type)) refresh();
    // A flight booked, re-booked (the drone holds, comes home late) or over: the selected one's volumes change.
    if (state.selected && (e.type === "mission" || (e.type === "vehicle" && e.event === "airspace")
      || e.type === "service") && (!e.vehicle_id || e.vehicle_id === state.selected)) loadIntents();
  },
  onTelemetry: (frame) => {
    stats.received += 1;
    state.frame = frame;
    if (!state.rafPending) {
      state.rafPending = true;
      requestAnimationFrame(render);
    }
  },
  onDenied: (code, reason) => {
    token.clear();
    showLogin(code === 4403 ? `this token may not view the fleet (${reason})` : `token refused: ${reason}`);
  },
});

function render() {
  state.rafPending = false;
  const frame = state.frame;
  if (!frame) return;
  const t0 = performance.now();
  map.updateVehicles(frame.vehicles);
  state.vehicles = frame.vehicles;
  if (t0 - state.lastPanels > 500) {
    // Tables are for reading, not animation: twice a second is plenty and keeps frames cheap.
    map.publishPositions();
    renderFleet($("#fleet tbody"), frame.vehicles, state);
    $("#n-fleet").textContent = `${frame.vehicles.filter((v) => v.online).length}/${frame.vehicles.length} online`;
    if (state.map) renderMissions($("#missions tbody"), state.map.missions, ctx());
    state.lastPanels = t0;
  }
  const dt = performance.now() - t0;
  stats.frames += 1;
  stats.durations.push(dt);
  stats.lags.push(Date.now() - frame.t * 1000); // sampled on the server -> drawn here (same machine: same clock)
  if (stats.durations.length > 1000) stats.durations.shift(), stats.lags.shift();
  stats.lastFrameAt = performance.now();
}

// --- reading the station ----------------------------------------------------------------------------------
let inflight = null;
let again = false;

async function refresh(now = false) {
  if (inflight) {
    again = true;
    return inflight;
  }
  inflight = (async () => {
    if (!now) await new Promise((r) => setTimeout(r, 150)); // coalesce a burst of events into one read
    try {
      const [m, q, d] = await Promise.all([api("/v1/map"), api("/v1/console/queue"), api("/v1/console/delivered")]);
      state.map = m;
      state.queue = q.items;
      state.delivered = d.items;
      state.packages = new Map(q.items.map((p) => [p.id, p]));
      draw(q);
    } catch (err) {
      if (err.status === 401) return live.onDenied(4401, err.message);
      toast(`could not read the station: ${err.message}`, true);
    }
  })();
  await inflight;
  inflight = null;
  if (again) {
    again = false;
    refresh();
  }
}

function draw(q) {
  const m = state.map;
  map.drawStatic(m);
  map.drawMissions(m.missions);
  const waiting = state.queue.filter((p) => ["received", "assigned", "launching", "en_route"].includes(p.state));
  map.drawDestinations(waiting);
  if (!state.fitted) {
    // Fit what operators watch: exclusions, destinations, the robot radius (operating areas are often huge).
    const excl = m.shapes.filter((s) => s.kind !== "operating_area");
    const pts = [...excl.flatMap((s) => (s.r !== undefined ? [[s.cx + s.r, s.cy + s.r], [s.cx - s.r, s.cy - s.r]] : s.polygons.flat(2))),
      ...waiting.map((p) => [p.x, p.y]), [m.radii.robot_m, m.radii.robot_m]];
    map.fit(pts, m.radii.drone_m * 1.05);
    state.fitted = true;
  }
  if (m.basemap && !state.basemap) startBasemap();
  setGrounded(m.grounded);
  renderMissions($("#missions tbody"), m.missions, ctx());
  renderQueue($("#queue tbody"), state.queue, ctx());
  renderDelivered($("#delivered tbody"), state.delivered);
  $("#n-delivered").textContent = `${state.delivered.length}`;
  $("#n-missions").textContent = `${m.missions.length}`;
  $("#n-queue").textContent = `${q.total} unfinished, ${q.waiting} waiting`;
  updateFilterIndex();
  document.body.dataset.ready = "1";
}

// Tiles under the map, only when the station file names a tile server: Leaflet is not even loaded otherwise.
async function startBasemap() {
  state.basemap = "starting";
  try {
    const [{ Basemap }, config] = await Promise.all([import("./basemap.js"), api("/v1/console/basemap")]);
    if (!config.url) return;
    const basemap = new Basemap($("#map-pane"), config);
    await basemap.start();
    state.basemap = basemap;
    map.onViewBox = (view, k) => basemap.follow(view, k);
    basemap.follow(map.view, map.k);
  } catch (err) {
    toast(`no basemap: ${err.message}`, true); // the map works without it
  }
}

const ctx = () => ({ canWrite: state.canWrite, filter: state.filter, packages: state.packages, progress: (id) => map.progress(id) });

function setGrounded(reason) {
  if (reason === state.grounded && state.groundedDrawn) return; // keep the button under the pointer
  state.groundedDrawn = true;
  state.grounded = reason;
  const b = $("#grounded");
  b.hidden = !reason;
  b.textContent = reason ? `FLEET GROUNDED: ${reason}` : "";
  const slot = $("#actions-fleet");
  slot.replaceChildren();
  if (state.canWrite) {
    const btn = document.createElement("button");
    btn.type = "button";
    btn.dataset.action = reason ? "unground" : "ground";
    btn.className = reason ? "" : "danger";
    btn.textContent = reason ? "release fleet" : "ground fleet";
    slot.append(btn);
  }
}

// --- selection: the selected vehicle's reserved airspace ----------------------------------------------------
// A click on a vehicle (map marker, fleet or mission row) selects it; another click on it, a click on the
// empty map or Escape clears it. Its volumes are read from the public intents endpoint on selection, on its
// mission events, and every few seconds (a late drone's landing is booked as it flies).
const INTENTS_EVERY_MS = 5000;
let intentsTimer = null;
let intentsSeq = 0;
let intentsInflight = false;
let intentsAgain = false;

function select(id) {
  state.selected = id || null;
  map.select(state.selected);
  for (const tr of document.querySelectorAll("#fleet tbody tr")) tr.classList.toggle("selected", tr.dataset.vehicle === state.selected);
  clearInterval(intentsTimer);
  intentsSeq += 1; // an answer still on its way for the previous selection is dropped
  intents.clear();
  if (!state.selected) return;
  loadIntents();
  let n = 0;
  intentsTimer = setInterval(() => {
    intents.tick();
    if (++n % (INTENTS_EVERY_MS / 1000) === 0 && !document.hidden) loadIntents();
  }, 1000);
}

async function loadIntents() {
  if (intentsInflight) {
    intentsAgain = true;
    return;
  }
  intentsInflight = true;
  const seq = intentsSeq;
  const id = state.selected;
  try {
    const geo = await api(`/v1/airspace/intents?vehicle_id=${encodeURIComponent(id)}`);
    if (seq === intentsSeq && state.selected === id) intents.show(id, geo, localFrame(geo.station.lat, geo.station.lon));
  } catch (err) {
    if (err.status === 401) return live.onDenied(4401, err.message);
    if (seq === intentsSeq) {
      intents.clear();
      toast(`could not read the airspace of ${id}: ${err.message}`, true);
    }
  } finally {
    intentsInflight = false;
    if (intentsAgain) {
      intentsAgain = false;
      if (state.selected) loadIntents();
    }
  }
}

document.addEventListener("click", (e) => {
  if (e.target.closest("button, a, input")) return;
  const row = e.target.closest("#fleet tbody tr[data-vehicle], #missions tbody tr[data-mission]");
  if (!row) return;
  const id = row.dataset.vehicle || missionOf(row.dataset.mission)?.vehicle_id;
  if (id) select(id === state.selected ? null : id);
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && state.selected && !$("#confirm").open) select(null);
});

// --- filter -------------------------------------------------------------------------------------------------
function updateFilterIndex() {
  const text = new Map();
  for (const v of state.vehicles) text.set(v.id, `${v.id} ${v.kind} ${v.mode || ""} ${v.mission || ""}`.toLowerCase());
  for (const p of state.queue) {
    if (p.vehicle_id && text.has(p.vehicle_id)) text.set(p.vehicle_id, `${text.get(p.vehicle_id)} ${p.key} ${p.id}`.toLowerCase());
  }
  map.setFilter(state.filter, text);
}

$("#filter").addEventListener("input", (e) => {
  state.filter = e.target.value.trim().toLowerCase();
  for (const row of document.querySelectorAll("#panels tbody tr, #events li")) {
    row.classList.toggle("hidden", !!state.filter && !row.textContent.toLowerCase().includes(state.filter));
  }
  updateFilterIndex();
});

// --- actions ------------------------------------------------------------------------------------------------
const ACTIONS = {
  launch: { title: "Launch mission", text: (id) => `Vehicle ${vehicleOf(id)} will take off now for package ${packageOf(id)}.`, path: (id) => `/v1/missions/${id}/launch` },
  abort: { title: "Abort mission", text: (id) => `A held mission is released (its package goes back to the queue); vehicle ${vehicleOf(id)}, if under way, flies or drives home now.`, path: (id) => `/v1/missions/${id}/abort` },
  van: { title: "Hand to vans", text: (id) => `Package ${state.packages.get(id)?.key || id} leaves the drone and robot queue for the vans.`, path: (id) => `/v1/packages/${id}/van`, reason: "handed to vans by an operator" },
  ground: { title: "Ground the fleet", text: () => "No vehicle launches until the fleet is released; vehicles under way carry on.", path: () => "/v1/fleet/ground", reason: "weather hold" },
  unground: { title: "Release the fleet", text: () => "Planning resumes at once: vehicles may launch right away.", path: () => "/v1/fleet/unground" },
};
const missionOf = (id) => state.map?.missions.find((m) => m.id === id);
const vehicleOf = (id) => missionOf(id)?.vehicle_id || "?";
const packageOf = (id) => state.packages.get(missionOf(id)?.package_id)?.key || missionOf(id)?.package_id || "?";

document.addEventListener("click", async (e) => {
  const btn = e.target.closest("button[data-action]");
  if (!btn) return;
  const spec = ACTIONS[btn.dataset.action];
  const id = btn.dataset.id;
  const answer = await confirmDialog(spec.title, spec.text(id), spec.reason);
  if (answer === null) return;
  try {
    await api(spec.path(id), { method: "POST", body: spec.reason ? { reason: answer || spec.reason } : undefined });
    toast(`${spec.title}: done`);
    refresh(true);
  } catch (err) {
    toast(`${spec.title} refused: ${err.message}`, true);
  }
});

function confirmDialog(title, text, reason) {
  const dlg = $("#confirm");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  $("#confirm-reason-label").hidden = !reason;
  $("#confirm-reason").value = reason || "";
  dlg.returnValue = "";
  dlg.showModal();
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok" ? $("#confirm-reason").value.trim() : null), { once: true });
  });
}

let toastTimer;
function toast(text, bad = false) {
  const t = $("#toast");
  t.textContent = text;
  t.className = bad ? "bad" : "";
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), 5000);
}

// --- login --------------------------------------------------------------------------------------------------
function showLogin(message = "") {
  live.stop();
  if (state.selected) select(null);
  $("#app").hidden = $("#filter").hidden = $("#logout").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message;
  $("#token").focus();
}

async function open(tokenValue) {
  const who = await api("/v1/console/session", { tokenValue });
  if (!who.permissions.includes("fleet:read")) throw new Error(`a ${who.role} token cannot view the fleet; use an operator or viewer token`);
  token.set(tokenValue);
  state.role = who.role;
  state.canWrite = who.permissions.includes("fleet:write");
  $("#role").textContent = who.role;
  $("#station").textContent = who.station;
  $("#login").hidden = true;
  $("#app").hidden = $("#filter").hidden = $("#logout").hidden = false;
  live.start();
}

$("#login").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    await open($("#token").value.trim());
  } catch (err) {
    $("#login-error").textContent = err.status === 401 ? "unknown token" : err.message;
  }
});
$("#logout").addEventListener("click", () => {
  token.clear();
  location.reload();
});
// A package's detail, with its proof of delivery: a row of the Delivered panel opens it.
async function openPackage(id) {
  try {
    showPackage($("#package"), await api(`/v1/packages/${encodeURIComponent(id)}`));
  } catch (err) {
    toast(`could not read package: ${err.message}`, true);
  }
}
$("#delivered").addEventListener("click", (e) => {
  const row = e.target.closest("tr[data-package]");
  if (row) openPackage(row.dataset.package);
});
$("#map-tools").addEventListener("click", (e) => {
  const z = e.target.dataset.zoom;
  if (z === "in") map.zoom(1 / 1.5);
  else if (z === "out") map.zoom(1.5);
  else if (z === "fit") (state.fitted = false), refresh(true);
});

// --- hooks for tests and debugging (read-only figures, and a way to feed synthetic telemetry) --------------
window.lastmileConsole = {
  stats() {
    const d = [...stats.durations].sort((a, b) => a - b);
    const lags = [...stats.lags].sort((a, b) => a - b);
    const q = (arr, f) => (arr.length ? arr[Math.min(arr.length - 1, Math.floor(f * arr.length))] : null);
    return {
      frames: stats.frames, received: stats.received, vehicles: state.vehicles.length,
      mean_ms: d.length ? d.reduce((a, b) => a + b, 0) / d.length : null,
      p50_ms: q(d, 0.5), p95_ms: q(d, 0.95), max_ms: q(d, 1), lag_p50_ms: q(lags, 0.5), lag_p95_ms: q(lags, 0.95),
    };
  },
  resetStats() {
    stats.frames = stats.received = 0;
    stats.durations = [];
    stats.lags = [];
  },
  injectTelemetry(vehicles) {
    live.onTelemetry({ type: "telemetry", t: Date.now() / 1000, vehicles });
  },
  get lastSeq() {
    return live.lastSeq;
  },
  get selected() {
    return state.selected;
  },
};

// --- start --------------------------------------------------------------------------------------------------
const saved = token.get();
if (saved) open(saved).catch((err) => showLogin(err.status === 401 ? "token refused" : err.message));
else showLogin();
