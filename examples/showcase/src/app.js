// Six panels, one per technique, all following the topic "demo". Each panel counts what this
// page measures itself: events, HTTP requests, bytes received, publish-to-display latency (the
// publish time travels in the event as "t"), reconnections and gaps. `window.pushPanels` exposes
// the figures and the received events for automated tests.
"use strict";

const TOPIC = "demo";
const panels = {};
window.pushPanels = panels;

// With a server started with --jwt-secret, open this page as /?access_token=TOKEN. EventSource
// and WebSocket cannot set headers, so their URLs carry the token as ?access_token=; fetch()
// sends it as Authorization: Bearer, which keeps it out of access logs.
const TOKEN = new URLSearchParams(location.search).get("access_token");
const withToken = (url) =>
  TOKEN ? url + (url.includes("?") ? "&" : "?") + "access_token=" + encodeURIComponent(TOKEN) : url;
const authHeaders = TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {};
const authFetch = (url, init = {}) => fetch(url, { ...init, headers: { ...authHeaders, ...(init.headers || {}) } });

// Tells the reader, once, why a panel stopped: the server wants a token, or the token expired.
function authNote(status) {
  const note = document.getElementById("auth");
  note.hidden = false;
  note.textContent = status === 401 && TOKEN
    ? "The token was refused or expired (401). Make a new one and reload with ?access_token=."
    : "This server requires a token (401): start it with --jwt-secret SECRET, make a token with " +
      "`showcase token --jwt-secret SECRET`, and open this page as /?access_token=TOKEN.";
}

function panel(id, title, how) {
  const section = document.createElement("section");
  section.id = id;
  section.innerHTML = `<h2>${title}</h2><p class="how">${how}</p>
    <dl><dt>events</dt><dd data-k="events">0</dd>
    <dt>HTTP requests</dt><dd data-k="requests">0</dd>
    <dt>bytes received</dt><dd data-k="bytes">0</dd>
    <dt>latency (last)</dt><dd data-k="latency">–</dd>
    <dt>reconnections</dt><dd data-k="reconnects">0</dd>
    <dt>gaps</dt><dd data-k="gaps">0</dd></dl><ol class="log"></ol>`;
  document.getElementById("panels").append(section);
  // `values`: events whose payload arrived as a JSON value, not as text to parse again.
  const p = { events: 0, requests: 0, bytes: 0, latency: null, reconnects: 0, gaps: 0, values: 0, got: [], section };
  panels[id] = p;
  return p;
}

function show(p) {
  for (const dd of p.section.querySelectorAll("dd")) {
    const v = p[dd.dataset.k];
    dd.textContent = dd.dataset.k === "latency" ? (v === null ? "–" : `${v} ms`) : String(v);
  }
}

// An event's payload, decoded once: the JSON forms mark its kind by key ("json" holds the
// value itself, "data" text, "data_base64" bytes).
const payload = (e) => ("json" in e ? e.json : "data_base64" in e ? atob(e.data_base64) : e.data ?? "");

// `value` is a JSON value (from "json") or text. The publish time "t" of the ticker's events,
// and of JSON text typed in the box, gives the latency.
function received(p, value) {
  p.events += 1;
  if (typeof value !== "string") p.values += 1;
  const text = typeof value === "string" ? value : JSON.stringify(value);
  p.got.push(text);
  let object = value;
  if (typeof value === "string") {
    try { object = JSON.parse(value); } catch (_) { object = null; }
  }
  const t = object && object.t;
  if (typeof t === "number" && t > 0) p.latency = Math.max(0, Date.now() - t);
  const li = document.createElement("li");
  li.textContent = text;
  const log = p.section.querySelector("ol");
  log.prepend(li);
  while (log.children.length > 6) log.lastChild.remove();
  show(p);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Short polling: every second, `If-None-Match` handled by the browser's cache.
async function poll() {
  const p = panel("poll", "Short polling", "asks every second; 304 when nothing is new");
  let since = null;
  for (;;) {
    try {
      const res = await authFetch(`/poll/${TOPIC}` + (since ? `?since=${encodeURIComponent(since)}` : ""));
      p.requests += 1;
      if (res.status === 401 || res.status === 403) { authNote(res.status); return; }
      const body = await res.text();
      p.bytes += body.length;
      const answer = JSON.parse(body);
      if (answer.outcome === "gap") p.gaps += 1;
      since = answer.next;
      for (const e of answer.events) received(p, payload(e));
      show(p);
      if (answer.more) continue;
    } catch (_) { p.reconnects += 1; }
    await sleep(1000);
  }
}

// Long polling: one held request after another.
async function longpoll() {
  const p = panel("longpoll", "Long polling", "asks; the server holds the request until news");
  let since = null;
  for (;;) {
    try {
      const url = `/longpoll/${TOPIC}?timeout=25` + (since ? `&since=${encodeURIComponent(since)}` : "");
      const res = await authFetch(url);
      p.requests += 1;
      if (res.status === 401 || res.status === 403) { authNote(res.status); return; }
      const body = await res.text();
      p.bytes += body.length;
      const answer = JSON.parse(body);
      if (answer.outcome === "gap") p.gaps += 1;
      since = answer.next;
      for (const e of answer.events) received(p, payload(e));
      show(p);
    } catch (_) { p.reconnects += 1; show(p); await sleep(1000); }
  }
}

// Server-Sent Events: the browser reconnects by itself with Last-Event-ID.
function sse() {
  const p = panel("sse", "Server-Sent Events", "one response that never ends; EventSource resumes");
  let opens = 0;
  // A token's end arrives as a push-expired event; the reconnect then gets 401 and the
  // EventSource stops (readyState CLOSED).
  const source = new EventSource(withToken(`/sse/${TOPIC}`));
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) authNote(401); };
  source.onopen = () => { opens += 1; p.requests = opens; p.reconnects = opens - 1; show(p); };
  source.onmessage = (e) => { p.bytes += e.data.length; received(p, e.data); };
  source.addEventListener("push-gap", () => { p.gaps += 1; show(p); });
}

// WebSocket: one connection; after a close, reconnect and resubscribe from the cursor.
function ws() {
  const p = panel("ws", "WebSocket", "one full-duplex connection; resubscribes from its cursor");
  let cursor = null, opens = 0, failures = 0;
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const since = cursor ? `?since=${encodeURIComponent(cursor)}` : "";
    const socket = new WebSocket(withToken(`${scheme}://${location.host}/ws/${TOPIC}${since}`), "push.v1");
    socket.onopen = () => { opens += 1; p.requests = opens; p.reconnects = opens - 1; show(p); };
    socket.onmessage = (m) => {
      p.bytes += m.data.length;
      const msg = JSON.parse(m.data);
      if (msg.topic !== TOPIC) return;
      if ("outcome" in msg) { cursor = msg.cursor; if (msg.outcome === "gap") p.gaps += 1; show(p); return; }
      if ("id" in msg) { cursor = msg.id; received(p, payload(msg)); }
    };
    let opened = false;
    socket.addEventListener("open", () => { opened = true; failures = 0; });
    // 4401: the token expired. A refused handshake (401, 403) closes with 1006 before any open:
    // back off, up to 10 s between tries.
    socket.onclose = (e) => {
      if (e.code === 4401) { authNote(401); return; }
      if (!opened) failures += 1;
      setTimeout(connect, Math.min(300 * 2 ** failures, 10000));
    };
  };
  connect();
}

// HTTP streaming: fetch() reads NDJSON as it arrives; resume with ?since= after a cut.
async function stream() {
  const p = panel("stream", "HTTP streaming", "one chunked response of JSON lines; resumes with ?since=");
  let since = null;
  for (;;) {
    try {
      const res = await authFetch(`/stream/${TOPIC}` + (since ? `?since=${encodeURIComponent(since)}` : ""));
      p.requests += 1;
      if (res.status === 401 || res.status === 403) { authNote(res.status); return; }
      if (p.requests > 1) p.reconnects += 1;
      show(p);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        p.bytes += value.length;
        buffer += value;
        let nl;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = JSON.parse(buffer.slice(0, nl));
          buffer = buffer.slice(nl + 1);
          if ("cursor" in line) since = line.cursor;
          if (line.outcome === "gap") p.gaps += 1;
          if ("id" in line) { since = line.id; received(p, payload(line)); }
        }
      }
    } catch (_) { /* cut: resume below */ }
    await sleep(300);
  }
}

// HTTP/2 server push: what a browser can see of it.
function h2() {
  const p = panel("h2", "HTTP/2 push and 103 Early Hints",
    "browsers dropped PUSH_PROMISE (Chrome 106, Firefox 132); they act on 103 Early Hints and Link preload");
  const nav = performance.getEntriesByType("navigation")[0];
  const assets = performance.getEntriesByType("resource").filter((r) => r.name.endsWith(".js") || r.name.endsWith(".css"));
  const li = document.createElement("li");
  li.textContent = `page over ${nav ? nav.nextHopProtocol || "?" : "?"}; assets: ` +
    assets.map((a) => `${new URL(a.name).pathname} (${a.initiatorType}, ${a.nextHopProtocol || "?"})`).join(", ");
  p.section.querySelector("ol").append(li);
  p.requests = 1;
  show(p);
}

// A finished topic: an answer generated word by word, then completed. The EventSource gets a
// push-complete event; its reconnect is answered 204, so it stops by itself.
function finished() {
  const p = panel("finished", "A topic that finishes",
    "SSE: a push-complete event, then 204 on the reconnect: the EventSource stops");
  const text = document.createElement("p");
  const state = document.createElement("p");
  const button = document.createElement("button");
  button.textContent = "Generate an answer";
  p.section.querySelector("p.how").after(button, text, state);
  p.completed = 0;
  button.addEventListener("click", async () => {
    const res = await authFetch("/admin/answer", { method: "POST" });
    if (!res.ok) { state.textContent = `refused: ${res.status}`; return; }
    const { topic, from } = await res.json();
    text.textContent = "";
    state.textContent = `following ${topic}…`;
    const source = new EventSource(withToken(`/sse/${topic}?lastEventId=${encodeURIComponent(from)}`));
    source.onopen = () => { p.requests += 1; show(p); };
    source.onmessage = (e) => { p.bytes += e.data.length; text.textContent += e.data; p.events += 1; show(p); };
    source.addEventListener("push-complete", () => { state.textContent = "complete: the server said so"; });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        p.completed += 1;
        state.textContent = "complete, and the EventSource is closed (204): it will not reconnect";
      }
    };
  });
}

// Several topics on one EventSource: `demo` and `side`, one Last-Event-ID for both. Each
// event's data is its JSON object with its topic.
function several() {
  const p = panel("several", "Several topics, one stream",
    "GET /sse?topic=demo&topic=side: one combined cursor resumes both");
  const button = document.createElement("button");
  button.textContent = "Publish to side";
  p.section.querySelector("p.how").after(button);
  button.addEventListener("click", () =>
    authFetch("/topics/side", { method: "POST", body: `side ${new Date().toLocaleTimeString()}` }));
  let opens = 0;
  const source = new EventSource(withToken("/sse?topic=demo&topic=side"));
  source.onopen = () => { opens += 1; p.requests = opens; p.reconnects = opens - 1; show(p); };
  source.onmessage = (e) => {
    p.bytes += e.data.length;
    const event = JSON.parse(e.data);
    const value = payload(event);
    received(p, `${event.topic}: ${typeof value === "string" ? value : JSON.stringify(value)}`);
  };
  source.addEventListener("push-gap", () => { p.gaps += 1; show(p); });
}

document.getElementById("publish").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = e.target.elements.text;
  await authFetch(`/topics/${TOPIC}`, { method: "POST", body: JSON.stringify({ text: input.value, t: Date.now() }) });
  input.value = "";
});
document.getElementById("drop").addEventListener("click", () => fetch("/admin/drop", { method: "POST" }));
const rate = document.getElementById("rate");
rate.addEventListener("change", () => {
  document.getElementById("rate-value").textContent = rate.value;
  fetch(`/admin/ticker?rate=${rate.value}`, { method: "POST" });
});

poll();
longpoll();
sse();
ws();
stream();
h2();
finished();
several();
