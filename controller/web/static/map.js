// The station map as SVG in the station's local metric frame: x east, y north (drawn with y flipped).
// Static layers (radii, zones) are drawn once; vehicles are long-lived <g> elements whose transform is set
// each frame, so a frame costs one attribute write per moving vehicle and no layout of anything else.

const NS = "http://www.w3.org/2000/svg";
const el = (name, attrs = {}, parent) => {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
};
const pts = (list) => list.map(([x, y]) => `${x},${-y}`).join(" ");

export class StationMap {
  constructor(svg) {
    this.svg = svg;
    this.layers = Object.fromEntries(
      ["radii", "zones", "intents", "routes", "dests", "station", "vehicles"].map((n) => [n, svg.querySelector(`#layer-${n}`)]),
    );
    this.vehicles = new Map(); // id -> {g, body, batt, key}
    this.missions = new Map(); // mission id -> {route, track, points}
    this.view = { x: -5000, y: -5000, w: 10000, h: 10000 };
    this.k = 10; // metres per screen pixel
    this.filter = "";
    this.selected = null; // vehicle id
    this.onPick = null; // (vehicle id | null) => void: a click (not a drag) on a vehicle or on empty map
    this.installZoom();
    new ResizeObserver(() => this.applyView()).observe(svg);
  }

  // --- static layers ------------------------------------------------------------------------------------
  drawStatic(map) {
    const { radii, shapes } = map;
    this.layers.radii.replaceChildren();
    this.layers.zones.replaceChildren();
    for (const [kind, r] of [["drone", radii.drone_m], ["robot", radii.robot_m]]) {
      el("circle", { class: "radius", "data-radius": kind, cx: 0, cy: 0, r }, this.layers.radii);
      const t = el("text", { class: "radius-label scaled", x: 0, y: -r, "data-anchor": `0,${r}` }, this.layers.radii);
      t.textContent = `${kind} radius ${(r / 1000).toFixed(1)} km`;
    }
    for (const z of shapes) {
      const excl = z.kind !== "operating_area";
      const cls = `zone ${excl ? "excl" : "area"}`;
      const attrs = { class: cls, "data-zone": z.id, "data-kind": z.kind };
      let shape;
      if (z.r !== undefined) shape = el("circle", { ...attrs, cx: z.cx, cy: -z.cy, r: z.r }, this.layers.zones);
      else {
        const ring = (r) => `M${r.map(([x, y]) => `${x},${-y}`).join("L")}Z`;
        const d = z.polygons.flatMap((rings) => rings.map(ring)).join(" ");
        shape = el("path", { ...attrs, d }, this.layers.zones);
      }
      el("title", {}, shape).textContent = `${z.name || z.id} (${z.kind}, ${z.applies_to.join("/")})`;
    }
    this.layers.station.replaceChildren();
    const s = el("g", { class: "scaled", "data-anchor": "0,0", id: "station-mark" }, this.layers.station);
    el("rect", { class: "station", x: -6, y: -6, width: 12, height: 12 }, s);
    el("text", { class: "label", x: 9, y: 4 }, s).textContent = map.station.name;
    // Redrawn on every refresh: the new marks need their on-screen scale now, not at the next zoom.
    this.placeScaled(this.layers.radii);
    this.placeScaled(this.layers.station);
  }

  // --- missions and destinations ------------------------------------------------------------------------
  drawMissions(missions) {
    const keep = new Set();
    for (const m of missions) {
      keep.add(m.id);
      let e = this.missions.get(m.id);
      if (!e) {
        e = {
          route: el("polyline", { class: "route", "data-mission": m.id }, this.layers.routes),
          track: el("polyline", { class: "track", "data-mission": m.id }, this.layers.routes),
          points: [],
        };
        this.missions.set(m.id, e);
      }
      e.vehicle = m.vehicle_id;
      e.routePts = m.route;
      e.route.setAttribute("points", pts(m.route));
      // The server's track is the truth; positions seen since are appended by telemetry.
      if (m.track.length >= e.points.length) e.points = m.track.slice();
      e.track.setAttribute("points", pts(e.points));
    }
    for (const [id, e] of this.missions) {
      if (keep.has(id)) continue;
      e.route.remove();
      e.track.remove();
      this.missions.delete(id);
    }
  }

  drawDestinations(items) {
    const layer = this.layers.dests;
    layer.replaceChildren();
    for (const p of items) {
      const g = el("g", { class: `dest scaled ${p.state}`, "data-package": p.id, "data-anchor": `${p.x},${p.y}` }, layer);
      el("path", { d: "M0,-5 L5,0 L0,5 L-5,0 Z" }, g);
      el("title", {}, g).textContent = `${p.key} (${p.state})`;
      g.dataset.text = `${p.key} ${p.id} ${p.state} ${p.vehicle_id || ""}`.toLowerCase();
    }
    this.placeScaled(layer);
    this.applyFilter();
  }

  // Progress of a mission: track flown over the planned out-and-back length (0..1).
  progress(missionId) {
    const e = this.missions.get(missionId);
    if (!e || !e.routePts || e.routePts.length < 2) return null;
    const len = (p) => p.slice(1).reduce((s, q, i) => s + Math.hypot(q[0] - p[i][0], q[1] - p[i][1]), 0);
    const plan = 2 * len(e.routePts);
    return plan > 0 ? Math.min(1, len(e.points) / plan) : null;
  }

  // --- vehicles (every telemetry frame) -----------------------------------------------------------------
  updateVehicles(vehicles) {
    const k = this.k;
    for (const v of vehicles) {
      let e = this.vehicles.get(v.id);
      if (!e) e = this.addVehicle(v);
      if (v.x === null) {
        if (!e.hidden) e.g.setAttribute("display", "none");
        e.hidden = true;
        continue;
      }
      if (e.hidden) e.g.removeAttribute("display");
      e.hidden = false;
      const low = v.c !== null && v.c < 0.3;
      const state = !v.online ? "off" : v.err.length ? "err" : v.mission ? "busy" : "idle";
      const cls = `vehicle ${v.kind} ${state}${low ? " low" : ""}${e.dim ? " dim" : ""}${e.sel ? " selected" : ""}`;
      if (cls !== e.cls) {
        e.g.setAttribute("class", cls);
        e.g.dataset.state = state;
        e.cls = cls;
      }
      if (v.x !== e.x || v.y !== e.y || k !== e.k) {
        // The transform items are set as numbers: no transform string to build and parse per vehicle.
        e.move.setTranslate(v.x, -v.y);
        if (k !== e.k) e.scale.setScale(k, k);
        e.x = v.x;
        e.y = v.y;
        e.k = k;
        e.placed = false;
      }
      if (v.h !== e.h) {
        e.turn.setRotate(v.h ?? 0, 0, 0);
        e.h = v.h;
      }
      const batt = v.c === null ? 0 : Math.round(v.c * 16);
      if (batt !== e.batt) {
        e.battEl.setAttribute("width", batt);
        e.batt = batt;
      }
      if (v.mission && v.online) {
        const m = this.missions.get(v.mission);
        if (m) {
          const last = m.points[m.points.length - 1];
          if (!last || Math.hypot(last[0] - v.x, last[1] - v.y) >= 3) {
            m.points.push([v.x, v.y]);
            const p = this.svg.createSVGPoint(); // appended, not the whole track re-serialised each frame
            p.x = v.x;
            p.y = -v.y;
            m.track.points.appendItem(p);
          }
        }
      }
    }
  }

  // Positions as data attributes (for tests and tools), refreshed by the caller at a lower rate.
  publishPositions() {
    for (const e of this.vehicles.values()) {
      if (e.placed || e.x === null) continue;
      e.g.dataset.x = e.x;
      e.g.dataset.y = e.y;
      e.placed = true;
    }
  }

  addVehicle(v) {
    const g = el("g", { class: `vehicle ${v.kind}`, "data-vehicle": v.id, "data-kind": v.kind }, this.layers.vehicles);
    const body = el("g", {}, g);
    if (v.kind === "drone") el("path", { class: "body", d: "M0,-9 L6,7 L0,3 L-6,7 Z" }, body);
    else el("path", { class: "body", d: "M-6,-6 L0,-10 L6,-6 L6,7 L-6,7 Z" }, body);
    el("rect", { class: "batt-bg", x: -8, y: 10, width: 16, height: 3 }, g);
    const battEl = el("rect", { class: "batt", x: -8, y: 10, width: 0, height: 3 }, g);
    el("text", { x: 9, y: -4 }, g).textContent = v.id;
    el("title", {}, g).textContent = v.id;
    g.setAttribute("transform", "translate(0,0) scale(1)");
    body.setAttribute("transform", "rotate(0)");
    const [move, scale] = [g.transform.baseVal.getItem(0), g.transform.baseVal.getItem(1)];
    const turn = body.transform.baseVal.getItem(0);
    const e = { g, body, battEl, move, scale, turn, x: null, y: null, h: null, k: null, cls: "", batt: -1,
      hidden: false, dim: false, sel: v.id === this.selected, placed: false, text: v.id.toLowerCase() };
    if (e.sel) g.classList.add("selected");
    this.vehicles.set(v.id, e);
    this.applyFilterTo(e);
    return e;
  }

  // --- selection ------------------------------------------------------------------------------------------
  select(id) {
    this.selected = id;
    for (const [vid, e] of this.vehicles) {
      const sel = vid === id;
      if (sel === e.sel) continue;
      e.sel = sel;
      e.g.classList.toggle("selected", sel);
      e.cls = e.g.getAttribute("class");
    }
  }

  // --- filter ---------------------------------------------------------------------------------------------
  setFilter(text, vehicleText) {
    this.filter = text.trim().toLowerCase();
    this.vehicleText = vehicleText; // id -> searchable text (mode, mission, package keys)
    this.applyFilter();
  }

  applyFilter() {
    for (const e of this.vehicles.values()) this.applyFilterTo(e);
    for (const d of this.layers.dests.children) d.classList.toggle("dim", !!this.filter && !d.dataset.text.includes(this.filter));
  }

  applyFilterTo(e) {
    const id = e.g.dataset.vehicle;
    const text = (this.vehicleText && this.vehicleText.get(id)) || e.text;
    const dim = !!this.filter && !text.includes(this.filter);
    if (dim !== e.dim) {
      e.dim = dim;
      e.g.classList.toggle("dim", dim);
      e.cls = e.g.getAttribute("class");
    }
  }

  // --- view: fit, zoom and pan ----------------------------------------------------------------------------
  fit(points, maxHalf) {
    let half = 1500;
    for (const [x, y] of points) half = Math.max(half, Math.abs(x) * 1.15, Math.abs(y) * 1.15);
    half = Math.min(half, maxHalf);
    this.view = { x: -half, y: -half, w: 2 * half, h: 2 * half };
    this.applyView();
  }

  applyView() {
    const r = this.svg.getBoundingClientRect();
    if (!r.width || !r.height) return;
    // Keep the view's centre and scale, fill the element's aspect ratio.
    const cx = this.view.x + this.view.w / 2;
    const cy = this.view.y + this.view.h / 2;
    const k = Math.max(this.view.w / r.width, this.view.h / r.height);
    this.view = { x: cx - (k * r.width) / 2, y: cy - (k * r.height) / 2, w: k * r.width, h: k * r.height };
    this.k = k;
    for (const e of this.vehicles.values()) {
      e.scale.setScale(k, k); // markers keep their size on screen at any zoom
      e.k = k;
    }
    this.svg.setAttribute("viewBox", `${this.view.x} ${this.view.y} ${this.view.w} ${this.view.h}`);
    this.placeScaled(this.svg);
    this.onView?.(k);
    this.onViewBox?.(this.view, k); // the basemap under the map, when there is one (basemap.js)
  }

  placeScaled(root) {
    for (const s of root.querySelectorAll(".scaled")) {
      const [x, y] = s.dataset.anchor.split(",").map(Number);
      s.setAttribute("transform", `translate(${x},${-y}) scale(${this.k})`);
      if (s.tagName === "text") s.setAttribute("x", 0), s.setAttribute("y", 0);
    }
  }

  zoom(factor, px, py) {
    const r = this.svg.getBoundingClientRect();
    const fx = px === undefined ? 0.5 : (px - r.left) / r.width;
    const fy = py === undefined ? 0.5 : (py - r.top) / r.height;
    const w = this.view.w * factor;
    const h = this.view.h * factor;
    this.view = { x: this.view.x + (this.view.w - w) * fx, y: this.view.y + (this.view.h - h) * fy, w, h };
    this.applyView();
  }

  installZoom() {
    this.svg.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.zoom(e.deltaY > 0 ? 1.2 : 1 / 1.2, e.clientX, e.clientY);
    }, { passive: false });
    let drag = null;
    this.svg.addEventListener("pointerdown", (e) => {
      // The pointer is captured for panning, so the click's own target is the map: remember what was hit.
      // A reserved volume under a click is not "empty map": the selection stays (its tooltip is the point).
      const hit = e.target.closest?.("#layer-intents") ? undefined : (e.target.closest?.("[data-vehicle]")?.dataset.vehicle ?? null);
      drag = { x: e.clientX, y: e.clientY, view: { ...this.view }, hit };
      this.svg.setPointerCapture(e.pointerId);
    });
    this.svg.addEventListener("pointermove", (e) => {
      if (!drag) return;
      this.view = { ...drag.view, x: drag.view.x - (e.clientX - drag.x) * this.k, y: drag.view.y - (e.clientY - drag.y) * this.k };
      this.svg.setAttribute("viewBox", `${this.view.x} ${this.view.y} ${this.view.w} ${this.view.h}`);
      this.onViewBox?.(this.view, this.k);
    });
    this.svg.addEventListener("pointerup", (e) => {
      const picked = drag && drag.hit !== undefined && Math.hypot(e.clientX - drag.x, e.clientY - drag.y) < 5;
      const hit = drag?.hit;
      drag = null;
      if (picked) this.onPick?.(hit);
    });
  }
}
