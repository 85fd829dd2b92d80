// Reserved airspace (operational intents) of the selected vehicle, drawn on the station map.
// The API publishes the volumes as WGS84 GeoJSON (`GET /v1/airspace/intents`), for any USS to read; the map
// is in the station's local frame (azimuthal equidistant on WGS84, x east and y north in metres). That
// frame is a geodesic's length and initial bearing from the station, so a point is placed with Vincenty's
// inverse formula on the WGS84 ellipsoid: the same place pyproj's aeqd gives the planner, to millimetres.

const NS = "http://www.w3.org/2000/svg";
const RAD = Math.PI / 180;
const A = 6378137.0;
const F = 1 / 298.257223563;
const B = A * (1 - F);

// Geodesic (length m, initial azimuth rad) from (lat1, lon1) to (lat2, lon2), degrees; Vincenty 1975.
export function inverse(lat1, lon1, lat2, lon2) {
  const L = (lon2 - lon1) * RAD;
  const U1 = Math.atan((1 - F) * Math.tan(lat1 * RAD));
  const U2 = Math.atan((1 - F) * Math.tan(lat2 * RAD));
  const [sinU1, cosU1, sinU2, cosU2] = [Math.sin(U1), Math.cos(U1), Math.sin(U2), Math.cos(U2)];
  let lambda = L;
  let sinL, cosL, sinS, cosS, sigma, cos2Alpha, cos2Sm;
  for (let i = 0; i < 200; i++) {
    sinL = Math.sin(lambda);
    cosL = Math.cos(lambda);
    sinS = Math.hypot(cosU2 * sinL, cosU1 * sinU2 - sinU1 * cosU2 * cosL);
    if (sinS === 0) return [0, 0]; // the same point
    cosS = sinU1 * sinU2 + cosU1 * cosU2 * cosL;
    sigma = Math.atan2(sinS, cosS);
    const sinAlpha = (cosU1 * cosU2 * sinL) / sinS;
    cos2Alpha = 1 - sinAlpha * sinAlpha;
    cos2Sm = cos2Alpha !== 0 ? cosS - (2 * sinU1 * sinU2) / cos2Alpha : 0; // on the equator
    const C = (F / 16) * cos2Alpha * (4 + F * (4 - 3 * cos2Alpha));
    const prev = lambda;
    lambda = L + (1 - C) * F * sinAlpha * (sigma + C * sinS * (cos2Sm + C * cosS * (-1 + 2 * cos2Sm * cos2Sm)));
    if (Math.abs(lambda - prev) < 1e-12) break; // about 0.06 mm; stations are never near antipodes
  }
  const u2 = (cos2Alpha * (A * A - B * B)) / (B * B);
  const a = 1 + (u2 / 16384) * (4096 + u2 * (-768 + u2 * (320 - 175 * u2)));
  const b = (u2 / 1024) * (256 + u2 * (-128 + u2 * (74 - 47 * u2)));
  const dSigma = b * sinS * (cos2Sm + (b / 4) * (cosS * (-1 + 2 * cos2Sm * cos2Sm)
    - (b / 6) * cos2Sm * (-3 + 4 * sinS * sinS) * (-3 + 4 * cos2Sm * cos2Sm)));
  return [B * a * (sigma - dSigma), Math.atan2(cosU2 * sinL, cosU1 * sinU2 - sinU1 * cosU2 * cosL)];
}

// (lon, lat) -> [x, y] metres in the frame of a station at (lat0, lon0).
export function localFrame(lat0, lon0) {
  return (lon, lat) => {
    const [s, az] = inverse(lat0, lon0, lat, lon);
    return [s * Math.sin(az), s * Math.cos(az)];
  };
}

const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const metres = (v) => `${Math.round(v)}`;

// What a volume is, in words (the tooltip and the list): phase, altitude band, time window.
export function describeVolume(p) {
  const pad = p.pad && !p.phase.includes(p.pad) ? ` (${p.pad})` : "";
  return `${p.phase}${pad}: ${metres(p.alt_lo_m)}–${metres(p.alt_hi_m)} m, ${clock(p.t0)}–${clock(p.t1)}`;
}

// The volumes of one vehicle: polygons in their own map layer, and a small list beside the map.
export class IntentsView {
  constructor(layer, box) {
    this.layer = layer;
    this.box = box;
    this.features = [];
    this.vehicle = null;
    box.addEventListener("pointerover", (e) => this.highlight(e.target.closest("li")?.dataset.index));
    box.addEventListener("pointerleave", () => this.highlight(null));
  }

  // Draw `geo` (the intents FeatureCollection) for `vehicle`; `project(lon, lat)` gives map metres.
  show(vehicle, geo, project) {
    this.vehicle = vehicle;
    this.features = geo.features;
    this.layer.replaceChildren();
    this.features.forEach((f, i) => {
      const p = f.properties;
      const polygons = f.geometry.type === "Polygon" ? [f.geometry.coordinates] : f.geometry.coordinates;
      const ring = (r) => `M${r.map(([lon, lat]) => project(lon, lat)).map(([x, y]) => `${x.toFixed(2)},${(-y).toFixed(2)}`).join("L")}Z`;
      const path = document.createElementNS(NS, "path");
      path.setAttribute("d", polygons.flatMap((rings) => rings.map(ring)).join(" "));
      path.setAttribute("class", `intent ${p.kind}`);
      Object.assign(path.dataset, { index: i, flight: p.flight_id, kind: p.kind, phase: p.phase,
        altLo: p.alt_lo_m, altHi: p.alt_hi_m, t0: p.t0, t1: p.t1 });
      const title = document.createElementNS(NS, "title");
      title.textContent = `${p.vehicle_id} ${describeVolume(p)}`;
      path.append(title);
      this.layer.append(path);
    });
    this.renderBox();
    this.tick();
  }

  clear() {
    this.vehicle = null;
    this.features = [];
    this.layer.replaceChildren();
    this.box.hidden = true;
    this.box.replaceChildren();
  }

  renderBox() {
    const box = this.box;
    const head = document.createElement("b");
    const n = this.features.length;
    if (!n) head.textContent = `${this.vehicle}: no reserved airspace`;
    else {
      const t0 = Math.min(...this.features.map((f) => Date.parse(f.properties.t0)));
      const t1 = Math.max(...this.features.map((f) => Date.parse(f.properties.t1)));
      head.textContent = `${this.vehicle}: ${n} reserved volume${n === 1 ? "" : "s"}, ${clock(t0)}–${clock(t1)}`;
    }
    const list = document.createElement("ol");
    this.features.forEach((f, i) => {
      const li = document.createElement("li");
      li.dataset.index = i;
      li.dataset.kind = f.properties.kind;
      li.textContent = describeVolume(f.properties);
      list.append(li);
    });
    box.replaceChildren(head, list);
    box.dataset.vehicle = this.vehicle;
    box.dataset.count = n;
    box.hidden = false;
  }

  // Past windows fade, the ones in force now stand out (called every second while a vehicle is selected).
  tick(now = Date.now()) {
    for (const path of this.layer.children) {
      const past = Date.parse(path.dataset.t1) < now;
      const active = !past && Date.parse(path.dataset.t0) <= now;
      path.classList.toggle("past", past);
      path.classList.toggle("now", active);
      const li = this.box.querySelector(`li[data-index="${path.dataset.index}"]`);
      li?.classList.toggle("past", past);
      li?.classList.toggle("now", active);
    }
  }

  highlight(index) {
    for (const path of this.layer.children) path.classList.toggle("hl", path.dataset.index === index);
  }
}
