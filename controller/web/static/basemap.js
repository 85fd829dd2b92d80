// The optional basemap: slippy-map tiles (Leaflet, vendored) under the station's metric SVG map.
//
// The SVG stays the map: it keeps drawing in the station's local frame (metres east and north), and Leaflet
// only paints tiles behind it, following the SVG's view. Leaflet is loaded only when the station file names
// a tile server (`[console] basemap_url`); without one this module is never imported.
//
// Laying lon/lat tiles under a metric view: the server sends a grid of the frame's points in lon/lat (1 km
// apart); the view's centre is interpolated in it (bilinear: centimetres off), and its metres per degree
// there give Leaflet's zoom (fractional, zoomSnap 0) so that one screen pixel covers the same ground east-west
// as in the SVG. Web Mercator treats the ellipsoid's latitude as a sphere's, so north-south its tiles are
// stretched by N/M (the radii of curvature, about 0.5 %) against the ground: the tile pane is scaled back by
// M/N, so the two agree across the view, not only at its centre.

export const LEAFLET_VERSION = "1.9.4";
const VENDOR = "/console/vendor/leaflet";

function load(tag, attrs) {
  return new Promise((resolve, reject) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e[k] = v;
    e.onload = () => resolve(e);
    e.onerror = () => reject(new Error(`could not load ${attrs.src || attrs.href}`));
    document.head.appendChild(e);
  });
}

// Leaflet's attribution is HTML; the station file's text is shown as text.
const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export class Basemap {
  constructor(pane, config) {
    this.pane = pane;
    this.config = config; // {url, attribution, max_zoom, grid}
    this.map = null;
    this.layer = null;
  }

  async start() {
    await load("link", { rel: "stylesheet", href: `${VENDOR}/leaflet.css` });
    if (!window.L) await load("script", { src: `${VENDOR}/leaflet.js` });
    const L = window.L;
    const div = document.createElement("div");
    div.id = "basemap";
    this.pane.prepend(div);
    this.pane.classList.add("has-basemap");
    this.div = div;
    // A passive picture: every interaction stays with the SVG above it, which tells us its view.
    this.map = L.map(div, {
      zoomControl: false, attributionControl: false, dragging: false, touchZoom: false, scrollWheelZoom: false,
      doubleClickZoom: false, boxZoom: false, keyboard: false, tap: false, zoomSnap: 0, zoomDelta: 0,
      fadeAnimation: false, zoomAnimation: false, markerZoomAnimation: false, inertia: false,
      minZoom: 0, maxZoom: 24,
    });
    // Top right: the legend holds the bottom left, and the tiles' licence must stay readable.
    L.control.attribution({ position: "topright", prefix: "Leaflet" }).addTo(this.map);
    const c = this.config;
    this.layer = L.tileLayer(c.url, {
      attribution: c.attribution ? escapeHtml(c.attribution) : "",
      maxNativeZoom: c.max_zoom, maxZoom: 24, crossOrigin: false,
    }).addTo(this.map);
    this.layer.on("tileload", () => {
      this.pane.dataset.tiles = String(Number(this.pane.dataset.tiles || 0) + 1);
    });
  }

  // lon/lat and metres per degree at a local point (x east, y north, metres): bilinear in the server's grid.
  locate(x, y) {
    const g = this.config.grid;
    const fi = Math.min(Math.max((x - g.x0) / g.step, 0), g.n - 1.000001);
    const fj = Math.min(Math.max((y - g.y0) / g.step, 0), g.n - 1.000001);
    const i = Math.floor(fi), j = Math.floor(fj);
    const u = fi - i, v = fj - j;
    const at = (a) => (1 - u) * (1 - v) * a[j][i] + u * (1 - v) * a[j][i + 1] + (1 - u) * v * a[j + 1][i] + u * v * a[j + 1][i + 1];
    // Outside the grid the nearest cell's gradient carries on (the view is then far beyond any zone).
    const dLonDx = ((1 - v) * (g.lon[j][i + 1] - g.lon[j][i]) + v * (g.lon[j + 1][i + 1] - g.lon[j + 1][i])) / g.step;
    const dLatDy = ((1 - u) * (g.lat[j + 1][i] - g.lat[j][i]) + u * (g.lat[j + 1][i + 1] - g.lat[j][i + 1])) / g.step;
    const ex = x - (g.x0 + fi * g.step), ey = y - (g.y0 + fj * g.step);
    return { lat: at(g.lat) + ey * dLatDy, lon: at(g.lon) + ex * dLonDx, mPerDegLon: 1 / dLonDx, mPerDegLat: 1 / dLatDy };
  }

  // Follow the SVG's view: `view` in SVG units (x east, y = -north), `k` metres per screen pixel.
  follow(view, k) {
    if (!this.map) return;
    const p = this.locate(view.x + view.w / 2, -(view.y + view.h / 2));
    const zoom = Math.log2((p.mPerDegLon * 360) / (256 * k));
    const rad = (p.lat * Math.PI) / 180;
    // Mercator's north-south pixels per metre over its east-west ones is N/M; scaled back to the ground's 1.
    const sy = (p.mPerDegLat * Math.cos(rad)) / p.mPerDegLon;
    this.div.style.transform = `scaleY(${sy})`;
    this.map.invalidateSize({ pan: false });
    this.map.setView([p.lat, p.lon], zoom, { animate: false });
    this.pane.dataset.basemapCenter = `${p.lat.toFixed(7)},${p.lon.toFixed(7)}`;
    this.pane.dataset.basemapZoom = zoom.toFixed(3);
  }
}
