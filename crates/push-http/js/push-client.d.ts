// Types of push-client.js.

/** A technique the browser client speaks. */
export type Technique = "ws" | "sse" | "stream" | "longpoll" | "poll";

/** The techniques, in the order a browser prefers them. */
export const TECHNIQUES: readonly Technique[];

/** An event as the application gets it. */
export interface PushEvent {
  topic: string;
  /** The event's cursor. */
  id: string;
  /** The event type the publisher gave, or null. */
  type: string | null;
  /** Publish time, Unix milliseconds, when the server sent it. */
  time: number | null;
  kind: "text" | "json" | "binary";
  /** A string for text, the value for JSON, the bytes for binary. */
  data: string | unknown | Uint8Array;
}

/** How a topic's events relate to what the client asked for, said at each (re)start. */
export interface PushOutcome {
  topic: string;
  /** resumed: nothing lost; gap: `missed` events are gone; reset: the cursor is unknown, start over. */
  outcome: "resumed" | "gap" | "reset";
  missed: number;
  cursor: string | null;
}

export interface PushStatus {
  state: "connecting" | "open" | "waiting" | "complete" | "refused" | "closed";
  transport: Technique | null;
  /** While waiting: milliseconds until the next attempt. */
  delay?: number;
  reason?: string;
}

export interface PushError {
  transport: Technique | null;
  status: number | null;
  reason: string;
  topic?: string | null;
}

export interface FollowOptions {
  /** Prefix of the technique routes ("" for the page's origin, or "https://host/push"). */
  base?: string;
  /** Techniques to try, in order; default ["ws", "sse", "longpoll"]. */
  transports?: Technique[];
  /** Route of each technique under `base`; default `/${technique}`. */
  paths?: Partial<Record<Technique, string>>;
  /** SSE event types to receive besides untyped events (EventSource delivers only named types). */
  types?: string[];
  /** Where to keep the cursors across reloads (sessionStorage, say); default none. */
  storage?: Pick<Storage, "getItem" | "setItem"> | null;
  /** The storage key; default `push:` and the topics joined by commas. */
  storageKey?: string;
  /** Cursors to start from, by topic, where storage holds none. */
  cursors?: Record<string, string>;
  /** A bearer token, or a function giving a fresh one at each connection. */
  token?: string | (() => string | null) | null;
  /** Reconnect delays in milliseconds: doubling from `initial` to `max`, with jitter. */
  backoff?: { initial?: number; max?: number };
  /** Attempts in a row that do not open before moving to the next technique; default 2. */
  fallbackAfter?: number;
  /** Seconds a long-poll is held; default 25. */
  longpollTimeout?: number;
  /** Seconds between short polls; default the server's X-Poll-Interval (else 5). */
  pollInterval?: number | null;
  /** Milliseconds of silence after which a stream counts as dead; default 45000. */
  idleTimeout?: number;
  onevent?: (event: PushEvent, follower: Follower) => void;
  onoutcome?: (outcome: PushOutcome, follower: Follower) => void;
  oncomplete?: (topic: string, follower: Follower) => void;
  onstatus?: (status: PushStatus, follower: Follower) => void;
  onerror?: (error: PushError, follower: Follower) => void;
}

export interface PushStats {
  events: number;
  /** Bytes read: response bodies and WebSocket messages; SSE blocks counted from their fields. */
  bytes: number;
  /** HTTP requests, WebSocket handshakes included. */
  requests: number;
  reconnects: number;
  gaps: number;
  missed: number;
  resets: number;
  fallbacks: number;
  /** Events dropped because their cursor was not past the topic's (should stay 0). */
  duplicates: number;
}

export class Follower {
  constructor(topics: string | string[], options?: FollowOptions);
  readonly topics: readonly string[];
  readonly cursors: Record<string, string>;
  readonly stats: PushStats;
  readonly state: PushStatus["state"];
  readonly transport: Technique | null;
  readonly completed: Set<string>;
  /** The combined cursor (`C1,C2`), or null before any. */
  position(): string | null;
  /** Stops following; the cursors stay stored. */
  close(): void;
}

/** Follows 1 to 16 topics. */
export function follow(topics: string | string[], options?: FollowOptions): Follower;

/** An event object of any JSON form, decoded. */
export function decodeEvent(object: object): PushEvent;
