// The console's only contact with the station: fetch() for reads and actions, one WebSocket for live data.
// The token lives in sessionStorage: it survives a reload but not closing the tab, and never goes into a URL
// the user could copy (the WebSocket is the exception, as browsers cannot set headers on it).

const KEY = "lastmile.token";

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.reason || `HTTP ${status}`);
    this.status = status;
    this.code = e.code;
  }
}

export async function api(path, { method = "GET", body, tokenValue } = {}) {
  const headers = { Authorization: `Bearer ${tokenValue ?? token.get()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

// Live channel with reconnection: jittered exponential backoff capped at 5 s, resuming with `since=`.
export class Live {
  constructor({ onHello, onEvent, onTelemetry, onState, onDenied }) {
    Object.assign(this, { onHello, onEvent, onTelemetry, onState, onDenied });
    this.lastSeq = 0;
    this.attempt = 0;
    this.ws = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
  }

  connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const q = new URLSearchParams({ token: token.get() || "", since: String(this.lastSeq) });
    const ws = new WebSocket(`${proto}://${location.host}/v1/console/live?${q}`);
    this.ws = ws;
    this.onState("connecting");
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === "telemetry") return this.onTelemetry(msg);
      if (msg.type === "hello") {
        this.attempt = 0;
        // `seq` only grows, also across the station's restarts, so `since=lastSeq` resumes without a gap or a
        // repeat. A station whose newest event is older than ours (a clock set back): start over rather than
        // wait for numbers it will not reach soon.
        if (msg.last_seq < this.lastSeq) this.lastSeq = 0;
        this.onState("live");
        return this.onHello(msg);
      }
      if (typeof msg.seq === "number") this.lastSeq = Math.max(this.lastSeq, msg.seq);
      this.onEvent(msg);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (e.code === 4401 || e.code === 4403) return this.onDenied(e.code, e.reason);
      if (this.stopped) return;
      this.onState("offline");
      const delay = Math.min(5000, 250 * 1.5 ** this.attempt) * (0.5 + Math.random() / 2);
      this.attempt += 1;
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }
}
