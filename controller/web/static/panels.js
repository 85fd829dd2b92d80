// Side panels: plain tables rebuilt from the console's state. Text goes in with textContent only: package
// keys, notes and reasons come from outside the station and must never be read as HTML.

export const h = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
};

// Event times are the station's wall clock, shown in this browser's zone and named ("22:32 UTC").
const time = (iso) =>
  iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", timeZoneName: "short" }) : "";
const short = (id) => (id ? id.slice(0, 8) : "");

function bar(fraction, lowIsBad = true) {
  const low = lowIsBad && fraction !== null && fraction < 0.3;
  const b = h("span", { className: `bar${low ? " low" : ""}` }, h("i"));
  b.firstChild.style.width = `${Math.round((fraction ?? 0) * 100)}%`;
  return b;
}

function action(canWrite, name, id, label, extra = {}) {
  if (!canWrite) return null;
  return h("button", { type: "button", className: name === "launch" ? "" : "danger", "data-action": name, "data-id": id, text: label, ...extra });
}

function rowFilter(tr, filter) {
  if (!filter && !tr.classList.contains("hidden")) return; // the common case costs no text read
  tr.classList.toggle("hidden", !!filter && !tr.textContent.toLowerCase().includes(filter));
}

// Rows are rebuilt only when what they say changes: a button replaced under the pointer between press and
// release would swallow the operator's click.
const built = new WeakMap(); // tbody -> signature of the rows it shows

function unchanged(tbody, signature) {
  if (built.get(tbody) === signature) return true;
  built.set(tbody, signature);
  return false;
}

function setProgress(td, p) {
  const text = ` ${p === null ? "" : Math.round(p * 100) + " %"}`;
  if (td.dataset.v === text) return;
  td.replaceChildren(bar(p, false), text);
  td.dataset.v = text;
}

export function renderMissions(tbody, missions, ctx) {
  const signature = JSON.stringify([ctx.canWrite, ctx.filter, missions.map((m) => [m.id, m.state, ctx.packages.get(m.package_id)?.key])]);
  if (unchanged(tbody, signature)) {
    for (const tr of tbody.children) setProgress(tr.children[3], ctx.progress(tr.dataset.mission));
    return;
  }
  const rows = missions.map((m) => {
    const pkg = ctx.packages.get(m.package_id);
    const acts = h("td", {},
      m.state === "held" ? action(ctx.canWrite, "launch", m.id, "launch") : null,
      ["held", "planned", "launching", "en_route", "resuming"].includes(m.state) ? action(ctx.canWrite, "abort", m.id, "abort") : null);
    const tr = h("tr", { "data-mission": m.id, "data-state": m.state },
      h("td", { text: m.vehicle_id }), h("td", { text: pkg ? pkg.key : m.package_key || short(m.package_id) }),
      h("td", { text: m.state }), h("td", { className: "num" }), acts);
    setProgress(tr.children[3], ctx.progress(m.id));
    rowFilter(tr, ctx.filter);
    return tr;
  });
  tbody.replaceChildren(...rows);
}

export function renderQueue(tbody, items, ctx) {
  if (unchanged(tbody, JSON.stringify([ctx.canWrite, ctx.filter, items]))) return;
  const rows = items.map((p) => {
    const d = p.decision || {};
    const what = d.decision === "queued"
      ? `queued${d.mode ? " for " + d.mode : ""}${d.reason ? ": " + d.reason : ""}`
      : `${d.decision}${d.vehicle_id ? " " + d.vehicle_id : ""}`;
    const codes = [...(d.reasons || []), ...(p.reasons || [])];
    const tr = h("tr", { "data-package": p.id, "data-state": p.state },
      h("td", { text: p.key, title: `${p.id}\n${p.weight_kg.toFixed(2)} kg, ${(p.distance_m / 1000).toFixed(1)} km` }),
      h("td", { text: p.state }),
      h("td", {}, what, codes.length ? h("div", { className: "codes", text: [...new Set(codes)].join(", ") }) : null),
      h("td", { text: time(d.eta || p.eta) }),
      h("td", {}, ["received", "failed"].includes(p.state) ? action(ctx.canWrite, "van", p.id, "to van") : null));
    rowFilter(tr, ctx.filter);
    return tr;
  });
  tbody.replaceChildren(...rows);
}

// The fleet table is updated in place (it changes with every telemetry frame).
const fleetRows = new WeakMap(); // tbody -> Map(vehicle id -> row): no selector query per vehicle and frame

export function renderFleet(tbody, vehicles, ctx) {
  if (!fleetRows.has(tbody)) fleetRows.set(tbody, new Map());
  const rows = fleetRows.get(tbody);
  for (const v of vehicles) {
    let tr = rows.get(v.id);
    if (!tr) {
      tr = h("tr", { "data-vehicle": v.id }, h("td", { text: `${v.id} (${v.kind})` }), h("td"), h("td", { className: "num" }), h("td", { className: "num" }), h("td"));
      tbody.append(tr);
      rows.set(v.id, tr);
    }
    const [, mode, batt, link, mission] = tr.children;
    const modeText = v.online ? (v.mode || "-") + (v.err.length ? ` ⚠ ${v.err.join("; ")}` : "") : "offline";
    if (mode.textContent !== modeText) mode.textContent = modeText;
    const pct = v.c === null ? "-" : `${Math.round(v.c * 100)} %`;
    if (batt.dataset.v !== pct) {
      batt.replaceChildren(bar(v.c), ` ${pct}`);
      batt.dataset.v = pct;
    }
    const age = v.age === null ? "-" : `${v.age.toFixed(1)} s`;
    if (link.textContent !== age) link.textContent = age;
    const m = v.mission ? short(v.mission) : "";
    if (mission.textContent !== m) mission.textContent = m;
    const selected = v.id === ctx.selected;
    if (selected !== tr.classList.contains("selected")) tr.classList.toggle("selected", selected);
    rowFilter(tr, ctx.filter);
  }
}

// A vehicle's trip in plain words, as `lastmile watch` says them (controller/watch.py): phases named for what
// the vehicle does, positions to 5 decimals (about a metre), no robot order or node ids, no protocol flags.
// The event's every field stays in the line's tooltip.
const DRONE_PHASES = {
  safety_params: "setting its safety parameters", fence_upload: "loading its geofence",
  rally_upload: "loading its rally points", mission_upload: "loading its mission",
  waiting_ready: "waiting for the autopilot to be ready", waiting_launch: "waiting for its launch time",
  arming: "arming", flying: "took off for the customer", resumed: "followed again after a controller change",
};
const DROP_OFF = {
  WAITING: "will drop the package off at the door", INITIALIZING: "dropping the package off",
  RUNNING: "dropping the package off", PAUSED: "drop-off paused", FINISHED: "dropped the package off",
};
const ROBOT_NOTES = {
  return_released: "driving back to the station", return_home: "turned back to the station (trip aborted)",
  order_adopted: "followed again after a controller change",
};
const INTERNAL = new Set(["seq", "at", "type", "t", "order_id", "node_id", "action_id", "update_id", "resend", "full"]);
const isPosition = (p) => Array.isArray(p) && p.length === 2 && p.every((v) => typeof v === "number");
const latlon = (p) => `${p[0].toFixed(5)}, ${p[1].toFixed(5)}`;
const where = (e) => (isPosition(e.position) ? ` at ${latlon(e.position)}` : "");

function vehicleWords(e) {
  const who = e.vehicle_id || e.vehicle || "?";
  if (e.event === "phase" && e.phase === "done") {
    return `${who} landed: package ${e.delivered ? "delivered" : "not delivered"}, ${e.returned ? "back at" : "away from"} the station`;
  }
  if (e.event === "phase") return `${who} ${DRONE_PHASES[e.phase] || String(e.phase).replaceAll("_", " ")}`;
  if (e.event === "released") return `${who} released the package${where(e)}`;
  if (e.kind === "order_sent") {
    if (e.resend) return `${who} sent its order again (no answer yet)`;
    if ((e.update_id ?? 0) >= 1) return `${who} was sent the way back`;
    return `${who} ${"update_id" in e ? "order sent to the robot" : "was given its trip to the customer"}`;
  }
  if (e.kind === "node_reached") {
    const node = String(e.node_id || "");
    if (node.endsWith("-out0")) return `${who} set off from the station`;
    const leg = /-(back|home)\d+$/.test(node) ? "on the way back" : /-out\d+$/.test(node) ? "on the way to the customer" : "passed a point";
    return `${who} ${leg}${where(e)}`;
  }
  if (e.kind === "drop_off") {
    const status = String(e.status || "").toUpperCase();
    if (status === "FAILED") return `${who} drop-off failed: ${e.result || "no reason given"}`;
    return `${who} ${DROP_OFF[status] || `drop-off ${status.toLowerCase()}`}`;
  }
  if (e.kind === "returned") return `${who} back at the station`;
  if (ROBOT_NOTES[e.kind]) return `${who} ${ROBOT_NOTES[e.kind]}`;
  return null;
}

export function describe(e) {
  const words = e.type === "vehicle" ? vehicleWords(e) : null;
  if (words) return words;
  const parts = Object.entries(e).filter(([k, v]) => !INTERNAL.has(k) && v !== null && v !== undefined && !(Array.isArray(v) && !v.length));
  const value = (k, v) => {
    if (isPosition(v)) return latlon(v);
    if (k.endsWith("_id") && typeof v === "string" && v.length > 12) return short(v);
    if (Array.isArray(v)) return v.join(",");
    return typeof v === "object" ? JSON.stringify(v) : v;
  };
  return parts.map(([k, v]) => `${k}=${value(k, v)}`).join(" ");
}

export function addEvent(list, e, filter, max = 200) {
  // `seq` is the bus's (time-based, not a count: kept as data, not as the list's number)
  const li = h("li", { "data-seq": e.seq, "data-type": e.type, title: JSON.stringify(e) }, h("b", { text: `${time(e.at)} ${e.type} ` }), describe(e));
  list.prepend(li);
  rowFilter(li, filter);
  while (list.children.length > max) list.lastChild.remove();
}
