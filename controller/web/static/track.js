// The customer's tracking page: reads /v1/track/<token> (the token is the page's own path) and shows the
// state, the ETA in the station's zone, and a pin relative to the station on a plain SVG (no basemap).
const token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const REFRESH_MS = 30000;

function clock(iso, zone) {
  // "14:35 (America/Phoenix), Mon 7 Dec": the ETA in the station's zone, with the zone named.
  const at = new Date(iso);
  const time = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", timeZone: zone }).format(at);
  const day = new Intl.DateTimeFormat("en-GB", { weekday: "short", day: "numeric", month: "short", timeZone: zone })
    .format(at);
  return `${time} (${zone}), ${day}`;
}

function svg(name, attrs) {
  const el = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function drawPin(view) {
  // Metres east/north of the station (equirectangular: fine over a delivery radius), scaled so the pin
  // sits inside the frame with the station in the middle.
  const map = $("pin-map");
  map.replaceChildren();
  const { station, destination } = view;
  const r = 6371000;
  const east = ((destination.lon - station.lon) * Math.PI / 180) * r * Math.cos(station.lat * Math.PI / 180);
  const north = ((destination.lat - station.lat) * Math.PI / 180) * r;
  const reach = Math.max(Math.abs(east), Math.abs(north), 1);
  const scale = 60 / reach; // room for the pin's head above a point due north
  const x = 100 + east * scale;
  const y = 100 - north * scale;
  map.append(svg("line", { x1: 100, y1: 100, x2: x, y2: y, stroke: "#9aa8b5", "stroke-dasharray": "4 4" }));
  map.append(svg("rect", { x: 94, y: 94, width: 12, height: 12, fill: "#5d6b78", id: "station-mark" }));
  const pin = svg("g", { id: "pin", transform: `translate(${x.toFixed(1)} ${y.toFixed(1)})` });
  pin.append(svg("path", { d: "M0 0 C -7 -10 -9 -14 -9 -18 A 9 9 0 1 1 9 -18 C 9 -14 7 -10 0 0 Z", fill: "#1769c2" }));
  pin.append(svg("circle", { cx: 0, cy: -18, r: 3.5, fill: "#fff" }));
  map.append(pin);
  const km = Math.hypot(east, north) / 1000;
  const label = svg("text", { x: 100, y: 195, "text-anchor": "middle", "font-size": 11, fill: "#5d6b78" });
  label.textContent = `${km.toFixed(1)} km (${(km / 1.609344).toFixed(1)} mi) from the station`;
  map.append(label);
}

function show(view) {
  const state = $("state");
  state.textContent = view.state_text;
  state.dataset.state = view.state;
  const eta = $("eta");
  eta.hidden = !view.eta;
  if (view.eta) eta.textContent = `Expected at ${clock(view.eta, view.time_zone)}`;
  const by = $("by");
  by.hidden = !view.by;
  if (view.by) by.textContent = `Travelling by ${view.by}`;
  $("updated").textContent = `Last change ${clock(view.updated_at, view.time_zone)}`;
  drawPin(view);
}

async function load() {
  const error = $("error");
  try {
    const answer = await fetch(`/v1/track/${encodeURIComponent(token)}`, { cache: "no-store" });
    if (!answer.ok) {
      error.textContent = answer.status === 404 ? "This tracking link is not known." : "Cannot load your delivery now; retrying.";
      error.hidden = false;
      return;
    }
    error.hidden = true;
    show(await answer.json());
  } catch {
    error.textContent = "Cannot reach the delivery station now; retrying.";
    error.hidden = false;
  }
}

load();
setInterval(load, REFRESH_MS);
