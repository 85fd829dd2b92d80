// The API reference: reads the station's OpenAPI document with a token and draws it as plain HTML.
// No third-party code and nothing from another origin (the page's Content-Security-Policy allows neither);
// everything is set through textContent, so nothing in the document can become markup.
// The token is the console's (same sessionStorage key), so a signed-in console user sees the reference at once.

const KEY = "lastmile.token";
const $ = (sel) => document.querySelector(sel);
const METHODS = ["get", "post", "put", "patch", "delete"];

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

const refName = (ref) => ref.split("/").pop();

// A schema in one line: `string`, `PackageIn`, `array of Vehicle`, `integer | null`, `"kg" | "lb"`.
function typeOf(s) {
  if (!s) return "any";
  if (s.$ref) return refName(s.$ref);
  for (const k of ["anyOf", "oneOf", "allOf"]) if (s[k]) return s[k].map(typeOf).join(k === "allOf" ? " & " : " | ");
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.type === "array") return `array of ${typeOf(s.items)}`;
  if (s.type === "object" && s.additionalProperties && typeof s.additionalProperties === "object") {
    return `map of ${typeOf(s.additionalProperties)}`;
  }
  return [s.type || "object", s.format ? `(${s.format})` : ""].join(" ").trim();
}

// A type with links to the schemas it names.
function typeNode(s) {
  const node = el("span", { class: "type" });
  const text = typeOf(s);
  for (const part of text.split(/(\b[A-Z][A-Za-z0-9_]*\b)/)) {
    if (/^[A-Z][A-Za-z0-9_]*$/.test(part) && schemas[part]) node.append(el("a", { href: `#schema-${part}`, text: part }));
    else node.append(part);
  }
  return node;
}

const LIMITS = ["minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "minLength", "maxLength", "minItems",
  "maxItems", "pattern", "default"];
function limitsOf(s) {
  const out = [];
  const subs = [s, ...(s.anyOf || []), ...(s.oneOf || [])];
  for (const sub of subs) for (const k of LIMITS) if (sub && sub[k] !== undefined) out.push(`${k} ${JSON.stringify(sub[k])}`);
  return out.join(", ");
}

function table(head, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c))))));
}

let schemas = {};

function operation(path, method, op) {
  const box = el("article", { class: "op", id: `op-${method}-${path}` });
  box.append(el("h3", {}, el("span", { class: `method ${method}`, text: method.toUpperCase() }), path));
  if (op.summary) box.append(el("div", { class: "summary", text: op.summary }));
  if (op.description) box.append(el("div", { class: "text", text: op.description }));
  const params = op.parameters || [];
  if (params.length) {
    box.append(el("h4", { text: "Parameters" }), table(["name", "in", "required", "type", "limits", "description"],
      params.map((p) => [el("code", { text: p.name }), p.in, p.required ? "yes" : "", typeNode(p.schema),
        limitsOf(p.schema || {}), p.description || (p.schema && p.schema.description) || ""])));
  }
  const body = op.requestBody && op.requestBody.content;
  if (body) {
    box.append(el("h4", { text: "Body" }), table(["content type", "schema"],
      Object.entries(body).map(([type, c]) => [type, typeNode(c.schema)])));
  }
  const responses = Object.entries(op.responses || {});
  if (responses.length) {
    box.append(el("h4", { text: "Answers" }), table(["status", "meaning", "schema"], responses.map(([code, r]) => {
      const json = r.content && r.content["application/json"];
      return [code, r.description || "", json ? typeNode(json.schema) : ""];
    })));
  }
  return box;
}

function schemaBox(name, s) {
  const box = el("article", { class: "schema", id: `schema-${name}` }, el("h3", { text: name }));
  if (s.description) box.append(el("div", { class: "text", text: s.description }));
  const props = Object.entries(s.properties || {});
  const required = new Set(s.required || []);
  if (props.length) {
    box.append(table(["field", "type", "required", "limits", "description"], props.map(([k, p]) => [
      el("code", { text: k }), typeNode(p), required.has(k) ? "yes" : "", limitsOf(p), p.description || p.title || ""])));
  } else {
    box.append(el("div", {}, typeNode(s)));
  }
  return box;
}

function render(doc) {
  schemas = (doc.components && doc.components.schemas) || {};
  $("#title").textContent = doc.info.title;
  $("#version").textContent = `v${doc.info.version} · OpenAPI ${doc.openapi}`;
  $("#description").textContent = doc.info.description || "";
  const ops = $("#operations");
  const toc = $("#toc");
  ops.replaceChildren();
  toc.replaceChildren();
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      if (!item[method]) continue;
      ops.append(operation(path, method, item[method]));
      toc.append(el("a", { href: `#op-${method}-${path}`, text: `${method.toUpperCase()} ${path}` }));
    }
  }
  $("#schemas").replaceChildren(...Object.entries(schemas).map(([name, s]) => schemaBox(name, s)));
  $("#login").hidden = true;
  $("#doc").hidden = false;
  $("#raw").hidden = false;
  $("#logout").hidden = false;
  document.body.dataset.ready = "1";
}

async function load(value) {
  const r = await fetch("/openapi.json", { headers: { Authorization: `Bearer ${value}` } });
  const data = await r.json().catch(() => null);
  if (!r.ok) throw new Error((data && data.error && data.error.reason) || `HTTP ${r.status}`);
  return data;
}

function showLogin(message = "") {
  $("#doc").hidden = true;
  $("#login").hidden = false;
  $("#logout").hidden = true;
  $("#login-error").textContent = message;
  $("#token").focus();
}

async function start(value) {
  try {
    render(await load(value));
    sessionStorage.setItem(KEY, value);
  } catch (err) {
    sessionStorage.removeItem(KEY);
    showLogin(`token refused: ${err.message}`);
  }
}

$("#login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  start($("#token").value.trim());
});
$("#logout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  showLogin();
});
// The raw document needs the token too: fetch it and show it as a file rather than navigating to it.
$("#raw").addEventListener("click", async (ev) => {
  ev.preventDefault();
  const doc = await load(sessionStorage.getItem(KEY));
  const url = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 2)], { type: "application/json" }));
  const a = el("a", { href: url, download: "openapi.json" });
  a.click();
  URL.revokeObjectURL(url);
});

const saved = sessionStorage.getItem(KEY);
if (saved) start(saved);
else showLogin();
