// Proof of delivery in the console: the Delivered panel (the latest deliveries, from /v1/console/delivered)
// and a package's detail (GET /v1/packages/{id}, the API's own answer). Text goes in with textContent only,
// and a photo URL becomes a link only when it is http(s) (the API refuses anything else, the page checks
// again): keys, events and URLs come from outside the station.

import { h } from "./panels.js"; // the console's one element builder (textContent, never HTML)

const FT_PER_M = 1 / 0.3048;
// Every time is labelled with its clock and zone: these are the vehicle's release times, wall clock, UTC.
export const utc = (iso) => (iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC` : "-");
const utcTime = (iso) => (iso ? iso.slice(11, 19) : "");
const metres = (m) => (m === null || m === undefined ? "-" : `${m.toFixed(1)} m (${(m * FT_PER_M).toFixed(0)} ft)`);
const how = (p) => (p.confirmed_by === "vehicle" ? "the vehicle" : "inferred");

function photoLink(url) {
  let ok = false;
  try {
    ok = ["http:", "https:"].includes(new URL(url).protocol);
  } catch {
    ok = false;
  }
  if (!ok) return h("span", { text: url });
  return h("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: "photo", className: "photo" });
}

export function renderDelivered(tbody, items) {
  tbody.replaceChildren(...items.map((p) => h("tr", { "data-package": p.package_id, className: "pick", title: "show the proof of delivery" },
    h("td", { text: p.key }),
    h("td", { text: p.vehicle_id }),
    h("td", { text: utcTime(p.at) }),
    h("td", { text: `${how(p)}${p.photo_url ? " + photo" : ""}` }))));
}

export function showPackage(dialog, pkg) {
  dialog.querySelector("#package-title").textContent = `Package ${pkg.key}`;
  dialog.querySelector("#package-state").textContent = `${pkg.state}${pkg.vehicle_id ? ` by ${pkg.vehicle_id}` : ""} · ${pkg.id}`;
  const p = pkg.proof;
  dialog.querySelector("#package-no-proof").hidden = !!p;
  const dl = dialog.querySelector("#package-proof");
  dl.replaceChildren();
  if (p) {
    const row = (name, key, value) => dl.append(h("dt", { text: name }), h("dd", { "data-proof": key }, value));
    row("released", "at", utc(p.at));
    row("position", "position", p.lat === null ? "not reported" : `${p.lat.toFixed(6)}, ${p.lon.toFixed(6)}`);
    row("off the destination", "distance", metres(p.distance_to_destination_m));
    if (p.alt_amsl_m !== null) row("altitude", "altitude", `${metres(p.alt_amsl_m)} above sea level${p.alt_agl_m !== null ? `, ${metres(p.alt_agl_m)} above the station` : ""}`);
    row("confirmed by", "confirmed_by", `${how(p)}: ${p.event}`);
    row("vehicle", "vehicle", `${p.vehicle_id} (${p.kind}, ${p.method})`);
    row("photo", "photo", p.photo_url ? photoLink(p.photo_url) : "none attached");
  }
  if (!dialog.open) dialog.showModal();
}
