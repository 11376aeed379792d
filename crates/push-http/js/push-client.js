// push-client: follow topics of a push server from a browser, with any technique.
//
// One loop for every technique: it keeps each topic's cursor (optionally in sessionStorage, so
// a reload resumes), reconnects with backoff and jitter, reports every outcome (resumed, gap
// with its count, reset) and finished topics, decodes the payload kinds, and falls back from a
// technique that fails or is blocked to the next one, carrying the cursors across: a cursor
// means the same in every technique.
//
// It speaks the several-topics form every technique crate serves through `respond_topics`
// (`GET /sse?topic=a&topic=b`, and `/stream`, `/longpoll`, `/poll` alike), and push-ws's
// `push.v1` protocol on `/ws` (subscriptions by message). No dependencies; an ES module.
//
//   import { follow } from "/client.js";
//   const sub = follow(["chat:1"], {
//     transports: ["ws", "sse", "longpoll"],
//     storage: sessionStorage,
//     onevent: (e) => console.log(e.topic, e.id, e.data),
//     onoutcome: (o) => o.outcome === "gap" && console.warn(`missed ${o.missed}`),
//   });
//   // later: sub.close();

/** The techniques, in the order a browser prefers them. */
export const TECHNIQUES = Object.freeze(["ws", "sse", "stream", "longpoll", "poll"]);

const TOPIC = /^[A-Za-z0-9\-_.~:]{1,255}$/;
const MAX_TOPICS = 16;

const DEFAULTS = {
  base: "",
  transports: ["ws", "sse", "longpoll"],
  paths: {},
  types: [],
  storage: null,
  storageKey: null,
  cursors: null,
  token: null,
  backoff: { initial: 250, max: 10000 },
  fallbackAfter: 2,
  longpollTimeout: 25,
  pollInterval: null,
  idleTimeout: 45000,
};

/**
 * Follows `topics` (a name or up to 16 names). See `FollowOptions` in push-client.d.ts.
 * @param {string | string[]} topics
 * @param {import("./push-client").FollowOptions} [options]
 * @returns {Follower}
 */
export function follow(topics, options) {
  return new Follower(topics, options);
}

/** A cursor's parts: `EPOCH-SEQ`, compared within one epoch. */
function parseCursor(cursor) {
  const dash = typeof cursor === "string" ? cursor.lastIndexOf("-") : -1;
  if (dash < 1) return null;
  const seq = Number(cursor.slice(dash + 1));
  return Number.isSafeInteger(seq) ? { epoch: cursor.slice(0, dash), seq } : null;
}

/** UTF-8 length of a string, without encoding it. */
function utf8Length(s) {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) n += c >= 0x800 && (c < 0xd800 || c > 0xdfff) ? 2 : 1;
    if (c >= 0xd800 && c <= 0xdbff) i++;
  }
  return n;
}

/** JSON.parse, or null for text that is not JSON (a server's message must not throw here). */
function parse(text) {
  try {
    return JSON.parse(text);
  } catch (_) {
    return null;
  }
}

function base64Bytes(text) {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

/**
 * An event object of any JSON form (`{"topic","id","type","time", "data"|"json"|"data_base64"}`)
 * as the application gets it: `data` is a string, the JSON value, or a Uint8Array.
 */
export function decodeEvent(object) {
  let kind = "text";
  let data = object.data ?? "";
  if ("json" in object) {
    kind = "json";
    data = object.json;
  } else if ("data_base64" in object) {
    kind = "binary";
    data = base64Bytes(object.data_base64);
  }
  return { topic: object.topic, id: object.id, type: object.type ?? null, time: object.time ?? null, kind, data };
}

/** One subscription to a set of topics, over whichever technique works. */
export class Follower {
  constructor(topics, options = {}) {
    const list = typeof topics === "string" ? [topics] : [...topics];
    if (list.length === 0 || list.length > MAX_TOPICS) {
      throw new RangeError(`follow 1 to ${MAX_TOPICS} topics, not ${list.length}`);
    }
    for (const t of list) {
      if (!TOPIC.test(t)) throw new TypeError(`not a topic name: ${JSON.stringify(t)}`);
    }
    if (new Set(list).size !== list.length) throw new TypeError("a topic is named twice");
    this.options = { ...DEFAULTS, ...options, backoff: { ...DEFAULTS.backoff, ...(options.backoff || {}) } };
    for (const t of this.options.transports) {
      if (!TECHNIQUES.includes(t)) throw new TypeError(`unknown technique ${JSON.stringify(t)}`);
    }
    if (this.options.transports.length === 0) throw new TypeError("name at least one technique");
    /** The topics, in request order. */
    this.topics = Object.freeze(list);
    /** Each topic's cursor: where the next event of it follows. */
    this.cursors = {};
    /** Figures for the application: what this client read and did. */
    this.stats = { events: 0, bytes: 0, requests: 0, reconnects: 0, gaps: 0, missed: 0, resets: 0, fallbacks: 0, duplicates: 0 };
    /** `connecting`, `open`, `waiting` (backing off), `complete`, `refused` or `closed`. */
    this.state = "connecting";
    /** The technique in use. */
    this.transport = null;
    this.completed = new Set();
    this._key = this.options.storageKey || `push:${list.join(",")}`;
    this._restore();
    this._index = 0;
    this._failures = 0;
    this._down = 0;
    this._opened = false;
    this._everOpened = false;
    this._announce = new Set(list);
    this._current = null;
    this._timer = null;
    this._start();
  }

  /** Stops following: closes the connection and cancels every timer. The cursors stay stored. */
  close() {
    this._finish("closed");
  }

  /** The combined cursor of the topics, in order (`C1,C2`; an empty part for a topic not yet seen). */
  position() {
    const parts = this.topics.map((t) => this.cursors[t] ?? "");
    return parts.every((p) => p === "") ? null : parts.join(",");
  }

  // ---- bookkeeping shared by every technique ----

  _restore() {
    const given = this.options.cursors;
    let stored = null;
    try {
      const text = this.options.storage && this.options.storage.getItem(this._key);
      stored = text ? JSON.parse(text) : null;
    } catch (_) {
      stored = null;
    }
    for (const t of this.topics) {
      // Storage is newer than what the page was built with: it wins.
      const c = (stored && stored[t]) ?? (given && given[t]);
      if (typeof c === "string" && c !== "") this.cursors[t] = c;
    }
  }

  _save() {
    if (!this.options.storage) return;
    try {
      this.options.storage.setItem(this._key, JSON.stringify(this.cursors));
    } catch (_) {
      // Storage full or denied: the cursors still live in memory.
    }
  }

  _call(name, value) {
    const f = this.options[name];
    if (typeof f === "function") {
      try {
        f(value, this);
      } catch (e) {
        setTimeout(() => { throw e; });
      }
    }
  }

  _status(state, detail) {
    this.state = state;
    this._call("onstatus", { state, transport: this.transport, ...detail });
  }

  _setPosition(combined) {
    if (typeof combined !== "string" || combined === "") return;
    const parts = combined.split(",");
    if (parts.length !== this.topics.length) return;
    this.topics.forEach((t, i) => {
      if (parts[i] !== "") this.cursors[t] = parts[i];
    });
    this._save();
  }

  _bytes(n) {
    this.stats.bytes += n;
  }

  _open() {
    this._opened = true;
    if (this._everOpened) this.stats.reconnects += 1;
    this._everOpened = true;
    this._failures = 0;
    this._down = 0;
    this._status("open", {});
  }

  _event(object) {
    const topic = object.topic;
    if (!this.topics.includes(topic) || typeof object.id !== "string") return;
    const had = parseCursor(this.cursors[topic]);
    const got = parseCursor(object.id);
    if (had && got && had.epoch === got.epoch && got.seq <= had.seq) {
      this.stats.duplicates += 1;
      return;
    }
    // SSE resumes silently (only gaps and resets are events): its resume is said here.
    if (this._announce.has(topic)) this._outcome(topic, "resumed", 0, null);
    this.cursors[topic] = object.id;
    this._save();
    this.stats.events += 1;
    this._call("onevent", decodeEvent(object));
  }

  _outcome(topic, outcome, missed, cursor) {
    if (!this.topics.includes(topic)) return;
    if (typeof cursor === "string" && cursor !== "") {
      this.cursors[topic] = cursor;
      this._save();
    }
    if (outcome === "resumed") {
      // Said once per (re)start, not on every poll.
      if (!this._announce.delete(topic)) return;
    } else {
      this._announce.delete(topic);
    }
    if (outcome === "gap") {
      this.stats.gaps += 1;
      this.stats.missed += missed || 0;
    }
    if (outcome === "reset") this.stats.resets += 1;
    this._call("onoutcome", { topic, outcome, missed: outcome === "gap" ? missed || 0 : 0, cursor: this.cursors[topic] ?? null });
  }

  _complete(topic, cursor) {
    if (!this.topics.includes(topic) || this.completed.has(topic)) return;
    if (typeof cursor === "string" && cursor !== "") {
      this.cursors[topic] = cursor;
      this._save();
    }
    this.completed.add(topic);
    this._call("oncomplete", topic);
    if (this.completed.size === this.topics.length) this._finish("complete");
  }

  _allComplete() {
    for (const t of this.topics) this._complete(t);
  }

  _finish(state) {
    if (this.state === "closed" || this.state === "complete" || this.state === "refused") return;
    clearTimeout(this._timer);
    const current = this._current;
    this._current = null;
    if (current) current.stop();
    this._status(state, {});
  }

  _live() {
    return this.state !== "closed" && this.state !== "complete" && this.state !== "refused";
  }

  /** The URL of `technique`'s several-topics route, with the cursors. */
  _url(technique, extra = {}) {
    const path = this.options.paths[technique] ?? `/${technique}`;
    const url = new URL(this.options.base + path, globalThis.location ? location.href : undefined);
    const query = url.searchParams;
    if (technique !== "ws") {
      for (const t of this.topics) query.append("topic", t);
      const position = this.position();
      if (position) query.set(technique === "sse" ? "lastEventId" : "since", position);
    }
    for (const [k, v] of Object.entries(extra)) query.set(k, String(v));
    if (technique === "ws") url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url;
  }

  _token() {
    const t = this.options.token;
    return typeof t === "function" ? t() : t;
  }

  /** Starts the technique at `_index` (the connection to it). */
  _start() {
    if (!this._live()) return;
    const technique = this.options.transports[this._index];
    if (this.transport !== technique) {
      this.transport = technique;
      this._everOpened = false;
    }
    this._opened = false;
    this._announce = new Set(this.topics.filter((t) => !this.completed.has(t)));
    this._status("connecting", {});
    // fetch()-based techniques count their requests as they make them.
    if (technique === "ws" || technique === "sse") this.stats.requests += 1;
    this._current = RUNNERS[technique](this);
  }

  /**
   * The connection ended. `failed`: it broke or was turned away before opening; `refused`: a
   * 401 or 403, which ends the subscription (with a `token` function, a 401 first retries with
   * a fresh token). Backs off with jitter, and after `fallbackAfter` attempts in a row that
   * did not open, moves on to the next technique (after the last, back to the first: the
   * server may be down rather than the technique blocked), with the same cursors.
   */
  _ended({ failed = false, refused = false, status = null, reason = "" } = {}) {
    if (!this._live()) return;
    this._current = null;
    if (refused && status === 401 && typeof this.options.token === "function" && this._down < 3) {
      refused = false;
      failed = true;
    }
    if (refused) {
      this._call("onerror", { transport: this.transport, status, reason });
      this._finish("refused");
      return;
    }
    if (failed || !this._opened) {
      this._failures += 1;
      this._down += 1;
    }
    const techniques = this.options.transports;
    if (!this._opened && this._failures >= this.options.fallbackAfter && techniques.length > 1) {
      this._call("onerror", { transport: this.transport, status, reason: reason || "failed to connect" });
      this._index = (this._index + 1) % techniques.length;
      this._failures = 0;
      this.stats.fallbacks += 1;
    }
    const { initial, max } = this.options.backoff;
    const ceiling = Math.min(max, initial * 2 ** Math.min(this._down, 16));
    // "Equal jitter": half the ceiling plus a random part of the other half; a connection that
    // had opened comes back within `initial`, spread so that a dropped crowd does not return
    // at once.
    const delay = this._down === 0 ? Math.random() * initial : ceiling / 2 + Math.random() * (ceiling / 2);
    this._status("waiting", { delay: Math.round(delay), reason });
    this._timer = setTimeout(() => this._start(), delay);
  }
}

/** fetch() with the token as `Authorization: Bearer`, counting the request. */
function request(f, url, signal, extra = {}) {
  const token = f._token();
  const headers = token ? { Authorization: `Bearer ${token}`, ...extra } : extra;
  f.stats.requests += 1;
  return fetch(url, { headers, signal, cache: "no-store" });
}

/** 401 and 403 end the subscription (the application decides what to do); others retry. */
function refusedBy(status) {
  return status === 401 || status === 403;
}

/** A batch answer of `/poll` or `/longpoll`: `{"topics":[…],"next","more","complete","events"}`. */
function takeBatch(f, answer) {
  // Each topic's `cursor` there is where it stands after this answer: taken with `next`, once
  // the events are delivered.
  for (const o of answer.topics || []) f._outcome(o.topic, o.outcome, o.missed, null);
  for (const e of answer.events || []) f._event(e);
  f._setPosition(answer.next);
  if (answer.complete) f._allComplete();
}

const RUNNERS = {
  ws(f) {
    const token = f._token();
    const url = f._url("ws", token ? { access_token: token } : {});
    let socket;
    try {
      socket = new WebSocket(url, "push.v1");
    } catch (e) {
      queueMicrotask(() => f._ended({ failed: true, reason: String(e) }));
      return { stop() {} };
    }
    let stopped = false;
    socket.onopen = () => {
      f._open();
      for (const t of f.topics) {
        if (f.completed.has(t)) continue;
        const op = { op: "subscribe", topic: t };
        if (f.cursors[t]) op.since = f.cursors[t];
        socket.send(JSON.stringify(op));
      }
    };
    socket.onmessage = (m) => {
      if (typeof m.data !== "string") return;
      f._bytes(utf8Length(m.data));
      const msg = parse(m.data);
      if (!msg || typeof msg !== "object") return;
      if ("outcome" in msg) f._outcome(msg.topic, msg.outcome, msg.missed, msg.cursor);
      else if (msg.complete === true) f._complete(msg.topic, msg.cursor);
      else if ("id" in msg && "topic" in msg) f._event(msg);
      else if ("error" in msg) f._call("onerror", { transport: "ws", status: null, reason: msg.error, topic: msg.topic ?? null });
    };
    socket.onclose = (e) => {
      if (stopped) return;
      // 4401: the token expired. A refused handshake closes 1006 before any open: the browser
      // does not say why, so it counts as a failure (and, repeated, a reason to fall back).
      if (e.code === 4401) f._ended({ refused: true, status: 401, reason: "token expired" });
      else f._ended({ failed: !f._opened, reason: `closed ${e.code}` });
    };
    return {
      stop() {
        stopped = true;
        socket.close(1000);
      },
    };
  },

  sse(f) {
    const token = f._token();
    const source = new EventSource(f._url("sse", token ? { access_token: token } : {}));
    let stopped = false;
    let errors = 0;
    // EventSource hides the framing: the bytes of each block are counted from its fields.
    const block = (e) => {
      const type = e.type === "message" ? "" : `event: ${e.type}\n`;
      return utf8Length(`id: ${e.lastEventId}\n${type}data: ${e.data}\n\n`);
    };
    const onEvent = (e) => {
      f._bytes(block(e));
      const object = parse(e.data);
      if (!object || typeof object !== "object") return;
      f._event(object);
      f._setPosition(e.lastEventId);
    };
    source.onopen = () => {
      errors = 0;
      if (f._opened) f.stats.reconnects += 1;
      else f._open();
    };
    source.onmessage = onEvent;
    for (const type of f.options.types) source.addEventListener(type, onEvent);
    const onOutcome = (outcome) => (e) => {
      f._bytes(block(e));
      const data = parse(e.data) || {};
      f._setPosition(e.lastEventId);
      f._outcome(data.topic, outcome, data.missed, f.cursors[data.topic]);
    };
    source.addEventListener("push-gap", onOutcome("gap"));
    source.addEventListener("push-reset", onOutcome("reset"));
    source.addEventListener("push-complete", (e) => {
      f._bytes(block(e));
      const data = parse(e.data) || {};
      f._setPosition(e.lastEventId);
      f._complete(data.topic);
    });
    source.addEventListener("push-expired", (e) => {
      f._bytes(block(e));
      stopped = true;
      source.close();
      f._ended({ refused: true, status: 401, reason: "token expired" });
    });
    source.onerror = () => {
      if (stopped) return;
      // CONNECTING: the browser reconnects by itself with Last-Event-ID (the stream's own
      // cursor, set even before the first event); it counts as a reconnect when it opens.
      // CLOSED: a refusal (any status but 200, or 204 at the end) or too many failures.
      errors += 1;
      if (source.readyState === EventSource.CLOSED || errors > f.options.fallbackAfter) {
        stopped = true;
        source.close();
        f._ended({ failed: !f._opened || errors > 1, reason: "event stream failed" });
      } else if (f._opened) {
        f.stats.requests += 1;
      }
    };
    return {
      stop() {
        stopped = true;
        source.close();
      },
    };
  },

  stream(f) {
    const abort = new AbortController();
    let stopped = false;
    let watchdog = null;
    const idle = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => abort.abort(), f.options.idleTimeout);
    };
    (async () => {
      let res;
      try {
        res = await request(f, f._url("stream"), abort.signal);
      } catch (e) {
        if (!stopped) f._ended({ failed: true, reason: String(e) });
        return;
      }
      if (res.status === 204) return f._allComplete();
      if (refusedBy(res.status)) return f._ended({ refused: true, status: res.status, reason: await res.text() });
      if (!res.ok || !res.body) return f._ended({ failed: true, status: res.status, reason: `status ${res.status}` });
      f._open();
      idle();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      let end = null;
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          idle();
          f._bytes(utf8Length(value));
          buffer += value;
          let nl;
          while ((nl = buffer.indexOf("\n")) >= 0) {
            const line = buffer.slice(0, nl);
            buffer = buffer.slice(nl + 1);
            if (line === "") continue;
            const msg = JSON.parse(line);
            if ("outcome" in msg) f._outcome(msg.topic, msg.outcome, msg.missed, msg.cursor);
            else if (msg.complete === true) f._complete(msg.topic, msg.cursor);
            else if ("end" in msg) end = msg;
            else if ("id" in msg) f._event(msg);
          }
        }
      } catch (_) {
        // Cut, or the watchdog saw no heartbeat: resume below.
      } finally {
        clearTimeout(watchdog);
      }
      if (stopped) return;
      if (end && end.end === "expired") {
        return f._ended({ refused: true, status: 401, reason: "token expired" });
      }
      if (end) f._setPosition(end.cursor);
      if (end && end.end === "complete") return f._allComplete();
      f._ended({ reason: end ? end.end : "stream ended" });
    })();
    return {
      stop() {
        stopped = true;
        clearTimeout(watchdog);
        abort.abort();
      },
    };
  },

  longpoll(f) {
    return batches(f, "longpoll");
  },

  poll(f) {
    return batches(f, "poll");
  },
};

/** Long polling (one held request after another) and short polling (one every interval). */
function batches(f, technique) {
  const abort = new AbortController();
  let stopped = false;
  let timer = null;
  const held = technique === "longpoll";
  // A poll of an unchanged URL sends the last ETag: `304` says nothing is new, without a body.
  let etag = null;
  let etagUrl = null;
  (async () => {
    for (;;) {
      const extra = held ? { timeout: f.options.longpollTimeout } : {};
      const url = String(f._url(technique, extra));
      // A held request is answered within its timeout; a little more means the path is dead.
      const limit = setTimeout(() => abort.abort(), (held ? f.options.longpollTimeout * 1000 : 0) + 15000);
      let res, text;
      try {
        const conditional = !held && etag && etagUrl === url ? { "If-None-Match": etag } : {};
        res = await request(f, url, abort.signal, conditional);
        text = await res.text();
      } catch (e) {
        clearTimeout(limit);
        if (!stopped) f._ended({ failed: !f._opened, reason: String(e) });
        return;
      }
      clearTimeout(limit);
      if (stopped) return;
      f._bytes(utf8Length(text));
      if (refusedBy(res.status)) return f._ended({ refused: true, status: res.status, reason: text });
      if (res.status === 204) return f._allComplete();
      const unchanged = res.status === 304;
      if (!res.ok && !unchanged) return f._ended({ failed: true, status: res.status, reason: `status ${res.status}` });
      if (!f._opened) f._open();
      let answer = { more: false };
      if (!unchanged) {
        try {
          answer = JSON.parse(text);
        } catch (_) {
          return f._ended({ failed: true, reason: "not a JSON answer" });
        }
        etag = res.headers.get("etag");
        etagUrl = url;
        takeBatch(f, answer);
      }
      if (!f._live()) return;
      if (!held && !answer.more) {
        // The server's advice (X-Poll-Interval, seconds) unless the application set one.
        const advised = Number(res.headers.get("x-poll-interval"));
        const seconds = f.options.pollInterval ?? (advised > 0 ? advised : 5);
        await new Promise((resolve) => {
          timer = setTimeout(resolve, seconds * 1000);
        });
        if (stopped) return;
      }
    }
  })();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      abort.abort();
    },
  };
}
