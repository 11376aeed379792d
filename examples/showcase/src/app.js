// The showcase page. Every technique panel follows the topic "demo" with the browser client
// (/client.js, push-http's push-client.js), one technique each, and shows what the client
// measured: events, HTTP requests, bytes read (response bodies and WebSocket messages; SSE
// blocks counted from their fields, since EventSource hides its framing), publish-to-display
// latency (the publish time travels in the event as "t"), reconnections and gaps. The cursors
// live in sessionStorage: reload the page and every panel resumes where it was.
// `window.pushPanels` exposes the figures and the received events for automated tests.
import { follow } from "/client.js";

const TOPIC = "demo";
const panels = {};
window.pushPanels = panels;
const info = fetch("/info.json").then((r) => r.json()).catch(() => ({ tls: false }));

// With a server started with --jwt-secret, open this page as /?access_token=TOKEN: the client
// sends it as Authorization: Bearer with fetch(), and in the URL for EventSource and WebSocket,
// which cannot set headers.
const TOKEN = new URLSearchParams(location.search).get("access_token");
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
    <dt>bytes read</dt><dd data-k="bytes">0</dd>
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
  if (p.sub) {
    const s = p.sub.stats;
    Object.assign(p, { requests: s.requests, bytes: s.bytes, reconnects: s.reconnects, gaps: s.gaps });
  }
  for (const dd of p.section.querySelectorAll("dd")) {
    const v = p[dd.dataset.k];
    dd.textContent = dd.dataset.k === "latency" ? (v === null ? "–" : `${v} ms`) : String(v);
  }
}

function log(p, text) {
  const li = document.createElement("li");
  li.textContent = text;
  const list = p.section.querySelector("ol");
  list.prepend(li);
  while (list.children.length > 6) list.lastChild.remove();
}

// An event's payload: a JSON value (published as application/json) or text. The publish time
// "t" of the ticker's events, and of JSON typed in the box, gives the latency.
function received(p, event, label = "") {
  p.events += 1;
  const value = event.data;
  if (event.kind === "json") p.values += 1;
  const text = event.kind === "json" ? JSON.stringify(value) : event.kind === "binary" ? `${value.length} bytes` : value;
  p.got.push(label + text);
  const t = value && typeof value === "object" ? value.t : null;
  if (typeof t === "number" && t > 0) p.latency = Math.max(0, Date.now() - t);
  log(p, label + text);
  show(p);
}

// One technique panel: the client, restricted to that technique, with its cursor kept in
// sessionStorage under the panel's own key.
function technique(id, title, how) {
  const p = panel(id, title, how);
  p.sub = follow(TOPIC, {
    transports: [id],
    storage: sessionStorage,
    storageKey: `push:panel:${id}`,
    token: TOKEN,
    onevent: (e) => received(p, e),
    onoutcome: (o) => { if (o.outcome !== "resumed") log(p, o.outcome === "gap" ? `gap: ${o.missed} missed` : "reset: starting over"); show(p); },
    onstatus: () => show(p),
    onerror: (e) => { if (e.status === 401 || e.status === 403) authNote(e.status); },
  });
  return p;
}

function h2() {
  const p = panel("h2", "HTTP/2 push and 103 Early Hints",
    "browsers dropped PUSH_PROMISE (Chrome 106, Firefox 132); they act on 103 Early Hints and Link preload");
  const nav = performance.getEntriesByType("navigation")[0];
  const protocol = nav ? nav.nextHopProtocol || "?" : "?";
  const assets = performance.getEntriesByType("resource").filter((r) => r.name.endsWith(".js") || r.name.endsWith(".css"));
  log(p, `page over ${protocol}; assets: ` +
    assets.map((a) => `${new URL(a.name).pathname} (${a.initiatorType}, ${a.nextHopProtocol || "?"})`).join(", "));
  if (protocol !== "h2") {
    const note = document.createElement("p");
    note.className = "note";
    const host = location.host;
    info.then(({ tls }) => {
      note.innerHTML = (tls
        ? `This page came over ${protocol}. Open <a href="https://${host}/">https://${host}/</a> (accept the self-signed certificate): `
        : `This page came over ${protocol}: browsers speak HTTP/2 only over TLS. Start the showcase with <code>--tls</code> and open <code>https://${host}/</code>: `) +
        `the page then arrives after a 103 Early Hints, with its assets pushed. Or see the PUSH_PROMISE frames over h2c: <code>nghttp -nv http://${host}/</code>.`;
    });
    p.section.querySelector("p.how").after(note);
  }
  p.requests = 1;
  show(p);
}

// A finished topic: an answer generated word by word, then completed. The client gets the
// push-complete event and stops; a bare EventSource would reconnect once and get 204.
function finished() {
  const p = panel("finished", "A topic that finishes",
    "SSE: a push-complete event, and 204 to any reconnect: the client stops");
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
    const sub = follow(topic, {
      transports: ["sse"],
      cursors: { [topic]: from },
      token: TOKEN,
      onevent: (e) => { text.textContent += e.data; p.events += 1; show(p); },
      onstatus: (s) => {
        show(p);
        if (s.state === "complete") {
          p.completed += 1;
          state.textContent = "complete: the server said so, and the client stopped";
        }
      },
    });
    p.sub = sub;
  });
}

// Several topics on one EventSource: `demo` and `side`, one Last-Event-ID for both.
function several() {
  const p = panel("several", "Several topics, one stream",
    "GET /sse?topic=demo&topic=side: one combined cursor resumes both");
  const button = document.createElement("button");
  button.textContent = "Publish to side";
  p.section.querySelector("p.how").after(button);
  button.addEventListener("click", () =>
    authFetch("/topics/side", { method: "POST", body: `side ${new Date().toLocaleTimeString()}` }));
  p.sub = follow([TOPIC, "side"], {
    transports: ["sse"],
    storage: sessionStorage,
    storageKey: "push:panel:several",
    token: TOKEN,
    onevent: (e) => received(p, e, `${e.topic}: `),
    onstatus: () => show(p),
  });
}

// The browser's connection limit: N event streams to one origin. Over HTTP/1.1 a browser opens
// at most six connections per origin (host, port and scheme), so streams seven and eight wait;
// this page's own panels already hold some of 127.0.0.1's, so the left frame uses the other
// name of this machine (localhost, or 127.0.0.1 when the page is on localhost). Over HTTP/2
// all of them share one connection.
function limits() {
  const section = document.createElement("section");
  section.id = "limits";
  section.className = "wide";
  section.innerHTML = `<h2>Six connections per origin</h2>
    <p class="how">Each frame opens 8 event streams to one origin. Over HTTP/1.1 the browser opens
    at most 6 connections per origin: two streams wait, and so would a seventh long-poll or a
    fetch of the page's own assets. Over HTTP/2 every stream shares one connection.</p>
    <button>Open 8 streams over HTTP/1.1 and over HTTP/2</button>
    <div class="frames"><div><p data-k="h1">HTTP/1.1: –</p></div><div><p data-k="h2">HTTP/2: –</p></div></div>`;
  document.getElementById("panels").append(section);
  const figures = {};
  window.pushLimits = figures;
  window.addEventListener("message", (e) => {
    const d = e.data;
    if (!d || d.kind !== "push-limits") return;
    const key = d.protocol === "HTTP/2" ? "h2" : d.protocol === "HTTP/1.1" ? "h1" : null;
    if (!key) return;
    figures[key] = d;
    section.querySelector(`[data-k=${key}]`).textContent =
      `${d.protocol}: ${d.open} open on ${d.connections} connection${d.connections === 1 ? "" : "s"}, ${d.waiting} waiting`;
  });
  const port = location.port ? `:${location.port}` : "";
  const other = location.hostname === "localhost" ? "127.0.0.1" : "localhost";
  section.querySelector("button").addEventListener("click", async () => {
    const { tls } = await info;
    const [left, right] = section.querySelectorAll(".frames > div");
    const frame = (src) => {
      const f = document.createElement("iframe");
      f.src = src;
      return f;
    };
    left.append(frame(`http://${other}${port}/limits?n=8`));
    if (tls) right.append(frame(`https://${location.hostname}${port}/limits?n=8`));
    else right.querySelector("p").textContent =
      "HTTP/2: start the showcase with --tls to see the same 8 streams on one connection";
  });
}

// Which technique, and what each costs: the guide's fixed columns, and the live columns
// measured from the panels above (requests and bytes per event received).
function guide() {
  const section = document.createElement("section");
  section.id = "guide";
  section.className = "wide";
  const rows = [
    ["poll", "Short polling", "yes", "no", "one request per poll, even with nothing new"],
    ["longpoll", "Long polling", "yes (needs long read timeouts)", "no", "holds one of the six HTTP/1.1 connections"],
    ["sse", "Server-Sent Events", "yes, if the proxy does not buffer", "no", "holds one of the six; built-in resume"],
    ["ws", "WebSocket", "only where Upgrade passes", "yes", "its own limit, not the six"],
    ["stream", "HTTP streaming", "yes, if the proxy does not buffer", "no", "holds one of the six"],
  ];
  section.innerHTML = `<h2>Choosing a technique</h2>
    <table><thead><tr><th>technique</th><th>through proxies</th><th>client to server</th>
    <th>browser connections</th><th>requests / event</th><th>bytes / event</th><th>latency</th></tr></thead>
    <tbody>${rows.map(([id, name, proxies, twoWay, limit]) =>
      `<tr data-t="${id}"><td>${name}</td><td>${proxies}</td><td>${twoWay}</td><td>${limit}</td>
       <td data-k="rpe">–</td><td data-k="bpe">–</td><td data-k="lat">–</td></tr>`).join("")}</tbody></table>
    <p class="how">Measured live on this page. Over HTTP/2 the six-connection limit goes away for
    every technique; WebSocket is the one choice when the client also sends a lot.
    <a href="/client.js">/client.js</a> speaks all five, and falls back from WebSocket to SSE to
    long polling when one is blocked.</p>`;
  document.getElementById("panels").append(section);
  setInterval(() => {
    for (const [id] of rows) {
      const p = panels[id];
      const tr = section.querySelector(`tr[data-t=${id}]`);
      if (!p || !tr || p.events === 0) continue;
      tr.querySelector("[data-k=rpe]").textContent = (p.requests / p.events).toFixed(2);
      tr.querySelector("[data-k=bpe]").textContent = Math.round(p.bytes / p.events);
      tr.querySelector("[data-k=lat]").textContent = p.latency === null ? "–" : `${p.latency} ms`;
    }
  }, 1000);
}

document.getElementById("publish").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = e.target.elements.text;
  await authFetch(`/topics/${TOPIC}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ text: input.value, t: Date.now() }),
  });
  input.value = "";
});
document.getElementById("drop").addEventListener("click", () => fetch("/admin/drop", { method: "POST" }));
const rate = document.getElementById("rate");
rate.addEventListener("change", () => {
  document.getElementById("rate-value").textContent = rate.value;
  fetch(`/admin/ticker?rate=${rate.value}`, { method: "POST" });
});

technique("poll", "Short polling", "asks every second (the server's X-Poll-Interval); 304 when nothing is new");
technique("longpoll", "Long polling", "asks; the server holds the request until news");
technique("sse", "Server-Sent Events", "one response that never ends; resumes with Last-Event-ID");
technique("ws", "WebSocket", "one full-duplex connection; resubscribes from its cursor");
technique("stream", "HTTP streaming", "one chunked response of JSON lines; resumes with ?since=");
h2();
finished();
several();
limits();
guide();
