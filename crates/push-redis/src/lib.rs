//! A [`push_core::Backend`] on **Redis Streams**: several push servers share topics, and a cursor
//! that one server handed out resumes on any other.
//!
//! ```no_run
//! use push_core::Hub;
//! use push_redis::{RedisConfig, RedisHub};
//!
//! # async fn run() -> Result<(), push_redis::RedisError> {
//! let hub = Hub::new(RedisHub::connect("redis://127.0.0.1:6379", RedisConfig::default()).await?);
//! // Hand `hub` to push-sse, push-ws, push-poll … exactly as an in-memory hub.
//! # Ok(()) }
//! ```
//!
//! # How topics map to streams
//!
//! Topic `t` is the stream `{key_prefix}t` (`push:t` by default). Each entry has the fields
//! `data` (the payload, binary-safe), `time` (publish time in milliseconds since the Unix
//! epoch) and, when set, `type`, and `kind` (`json` or `binary`) when the payload is not text;
//! a JSON payload read back is checked again.
//!
//! A topic's end ([`Hub::complete`](push_core::Hub::complete)) is an entry of its own with the
//! field `end` = `complete`, taking the end's sequence number (as push-core's end does): the
//! publish script refuses to append after it ([`Error::Complete`]), and every server's reader
//! completes its replica when it reads it. [`Hub::delete`](push_core::Hub::delete) trims the
//! stream and leaves one `end` = `deleted` entry, so every server's readers end; the next
//! publish or subscribe replaces the stream with a new epoch.
//!
//! A cursor **is** the entry's stream id: every entry of a stream has the same milliseconds part,
//! which is the topic's [`Epoch`](push_core::Epoch), and sequence numbers 1, 2, 3 … so that the
//! distance between two cursors is the number of events between them and a gap can be counted
//! exactly. A publish runs a small Lua script that appends with `XADD key MAXLEN ~ N E-*`
//! (atomic, so two servers publishing at once never interleave ids); a stream that does not
//! exist gets a new epoch from the Redis server's clock. So:
//!
//! - the same event has the same cursor on every server;
//! - a stream that was deleted (or emptied and written again) has a new, larger epoch, and a
//!   client holding a cursor of the old one gets [`Outcome::Reset`](push_core::Outcome::Reset);
//! - a cursor whose events were trimmed from the stream gets an exact
//!   [`Outcome::Gap`](push_core::Outcome::Gap).
//!
//! The cursor's text form is push-core's (`{epoch:x}-{seq}`, the epoch in hex); the stream id
//! has the epoch in decimal. Client cursors are parsed strictly by push-core.
//!
//! # Reading: a few shared readers per process
//!
//! Subscriptions never talk to Redis. The first subscription to a topic in a process creates a
//! [`ReplicaLog`] at the stream's head and hands the topic to one of the process's readers
//! ([`RedisConfig::readers`], 4 by default), chosen by a hash of its name. A reader is one
//! connection looping on one `XREAD BLOCK` over the streams of all its topics, each from the
//! last id it saw, and appends what it reads to their replicas; a topic joining a reader
//! interrupts its blocking read with `CLIENT UNBLOCK`, so the next read includes it at once.
//! So a process holds at most `readers` reading connections, whatever its number of topics, plus
//! one for commands. Every subscriber of the process reads the replica at its own position, as
//! with the in-memory hub. A resume from a cursor older than the replica holds is served by one
//! `XREVRANGE` that puts the missing events in front of the replica (up to retention by count),
//! so later resumes from that range cost nothing. A topic leaves its reader once it has had no
//! subscriber for [`HubConfig::idle_timeout`]; a reader with no topic closes its connection and
//! starts again with the next.
//!
//! Publishes share one multiplexed connection, so concurrent publishes are pipelined.
//!
//! # Redis Cluster (feature `cluster`)
//!
//! `RedisHub::connect_cluster` takes seeds of a cluster; the redis crate's cluster client
//! routes every command by key and follows `MOVED` and `ASK`. One `XREAD` may only name keys
//! of one slot, so a topic's stream is `{key_prefix}{TAG}{topic}`, `TAG` being the hash tag of
//! one of [`RedisConfig::readers`] groups (set the same on every process): the groups' slots
//! are spread evenly over the slot space, so over the masters, and one reader per group follows
//! all its topics on one connection, found with `CLUSTER SLOTS` whenever it connects.
//!
//! A failover must not take back what a client saw: Redis replicates asynchronously, and the
//! replica promoted when a master dies may lack its last writes and reuse their ids. So readers
//! read a replica of their slot's master (the master only while it has none), new
//! subscriptions take the head from that replica, and resumes read history from replicas; a
//! client is only ever handed what the next master will hold. With
//! [`RedisConfig::wait_replicas`] at 1, a publish is acknowledged only once a replica holds it
//! (`WAIT` in the same pipeline as the write, so on the node that took it), so an acknowledged
//! publish survives the failover too; one that was not acknowledged may still be stored
//! ([`Error::OutcomeUnknown`]), and retrying it with its idempotency key stores it once. While
//! a slot's master has no replica (after a failover, until the old master comes back as a
//! replica), its publishes are then not acknowledged. A failure of the new master within a
//! moment of the old one (before the readers moved to the new replica) is not covered.
//!
//! # Failures
//!
//! A failed publish says what happened to its event (its message starts with `redis`):
//!
//! - [`Error::Backend`], push-http's `503`: it was **not** stored.
//!   The connection could not be made (refused, a missing socket, authentication failed), or
//!   Redis refused the script before running it (`NOSCRIPT` once reloading failed, `READONLY`,
//!   `LOADING`, `BUSY`, `OOM`, `NOREPLICAS`, `MISCONF`, cluster redirections left over, …).
//! - [`Error::OutcomeUnknown`], push-http's `202` with
//!   `"outcome":"unknown"`: the script was sent and its answer did not come, so it may be
//!   stored, now or later. A response timeout ([`RedisConfig::response_timeout`]: a Redis
//!   that is paused runs what it received when it resumes), the connection lost while the
//!   request was in flight, an answer that is not an entry id, and with
//!   [`RedisConfig::wait_replicas`] a `WAIT` that counted too few replicas (the master holds
//!   it). When the `redis` crate's error cannot tell whether the request was written (a
//!   connect timeout looks like a response timeout), the outcome is unknown. Repeat the publish
//!   with the same idempotency key: the retry answers the stored event's cursor, or stores it
//!   once. Without a key, a retry may store it twice.
//!
//! `complete` and `delete` fail the same two ways; both are safe to repeat as they are.
//!
//! - Readers reconnect with exponential backoff ([`RedisConfig::backoff_min`] to
//!   [`RedisConfig::backoff_max`]) and resume with `XREAD` from the last id they saw, so
//!   subscribers stay attached and receive every event once, in order. If Redis lost the stream
//!   meanwhile (no persistence), the next events carry a new epoch: subscriptions of the old
//!   epoch end and resuming clients get a reset.
//! - While a reader has lost its connection and not read since, or the latest command went
//!   unanswered and Redis has answered nothing since, the hub is not available
//!   ([`Hub::is_available`](push_core::Hub::is_available), one atomic load): push-http's
//!   streams write an away notice instead of their heartbeats (push-sse: a comment; push-stream:
//!   `{"heartbeat":MS,"away":"backend unavailable"}`), stay open, and go on from their cursors
//!   when Redis is back. A paused Redis is noticed within [`RedisConfig::block`] plus
//!   [`RedisConfig::response_timeout`] (a reader's read times out), or at the first unanswered
//!   command.
//! - [`RedisHub::health`] reports it: readers running and connected, reconnects, errors, the
//!   last error's text, and whether the hub is available.
//! - With the `tracing` feature, an outage is logged once, with the target `push_redis`: a
//!   `warn` event `redis unreachable` (with the error) when the first reader or command cannot
//!   reach Redis, and an `info` event `redis reachable again` once every reader and the
//!   commands are answered again; never one event per retry.
//!
//! # Idempotency keys
//!
//! A publish's idempotency key ([`NewEvent::with_idempotency_key`]) is checked and recorded by
//! the publish script, atomically with the append, so two servers retrying one publish at once
//! store it once. A topic's keys are a hash (`{stream}#idem`: key to entry id) and a sorted set
//! (`{stream}#idem-at`: key by arrival, on the Redis clock), bounded by count as in memory:
//! keys older than [`HubConfig::idempotency_window`] are forgotten, and past
//! [`HubConfig::max_idempotency_keys`] the oldest go first, so a flood of keyed publishes holds
//! at most that many keys per topic (each step O(log n)). Both expire a window after the
//! latest keyed publish and go with the topic when it is deleted.
//! ([`HubConfig::max_idempotency_bytes`] bounds a process's memory; Redis holds at most
//! `max_idempotency_keys` per topic.)
//!
//! # Retention
//!
//! [`Retention::max_events`](push_core::Retention::max_events) is both the stream's
//! `MAXLEN ~` and the replica's bound; age and byte bounds apply to the replica (stream ids carry
//! the epoch, not the time, so `MINID` cannot express an age).
//!
//! # Limits and defaults
//!
//! | setting | default |
//! |---|---|
//! | [`RedisConfig::hub`] | [`HubConfig::default`] (1,000 events per topic, 10,000 topics, 1 MiB per event, 60 s idle) |
//! | [`RedisConfig::key_prefix`] | `push:` |
//! | [`RedisConfig::block`] | 5 s |
//! | [`RedisConfig::read_count`] | 1,000 entries per read |
//! | [`RedisConfig::connect_timeout`] | 1 s |
//! | [`RedisConfig::response_timeout`] | 2 s |
//! | [`RedisConfig::backoff_min`] / [`backoff_max`](RedisConfig::backoff_max) | 50 ms / 2 s |
//! | [`RedisConfig::readers`] | 4 reader connections per process (in a cluster, also the hash-tag groups) |
//! | [`RedisConfig::wait_replicas`] / [`wait_timeout`](RedisConfig::wait_timeout) | 0 (acknowledged once the master has it) / 1 s |
//! | idempotency keys per topic | [`HubConfig::max_idempotency_keys`] (256), each for [`HubConfig::idempotency_window`] (5 min) |
//!
//! [`Error::Backend`]: push_core::Error::Backend
//! [`Error::Complete`]: push_core::Error::Complete
//! [`Error::OutcomeUnknown`]: push_core::Error::OutcomeUnknown
//! [`HubConfig::default`]: push_core::HubConfig::default
//! [`HubConfig::idempotency_window`]: push_core::HubConfig::idempotency_window
//! [`HubConfig::idle_timeout`]: push_core::HubConfig::idle_timeout
//! [`HubConfig::max_idempotency_bytes`]: push_core::HubConfig::max_idempotency_bytes
//! [`HubConfig::max_idempotency_keys`]: push_core::HubConfig::max_idempotency_keys
//! [`NewEvent::with_idempotency_key`]: push_core::NewEvent::with_idempotency_key
//! [`ReplicaLog`]: push_core::ReplicaLog

#![cfg_attr(docsrs, feature(doc_cfg))]

// Modules by concern, in layers: each uses only modules of the layers before it, so no two
// modules use each other.
//
// 1. `config`, `error`, `stream`, `cluster`: leaves.
// 2. `scripts` (uses `stream`), `health` (uses `error`).
// 3. `hub`: the `RedisHub` handle and the state it shares.
// 4. `commands`, `reader`: the commands to Redis, and the shared readers (on `hub`'s state).
// 5. `subscribe`: replicas and history (uses `commands` and `reader`).
// 6. `backend`: the `Backend` impl (uses `commands` and `subscribe`).
mod backend;
#[cfg(feature = "cluster")]
mod cluster;
mod commands;
mod config;
mod error;
mod health;
mod hub;
mod reader;
mod scripts;
mod stream;
mod subscribe;

pub use crate::config::RedisConfig;
pub use crate::error::RedisError;
pub use crate::health::{ReaderHealth, RedisHealth};
pub use crate::hub::RedisHub;
