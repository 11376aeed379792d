//! The shared model of **push**: topics, events with resumable cursors, bounded retention, and
//! the [`Backend`] trait that every technique crate (`push-sse`, `push-ws`, `push-poll`, …)
//! builds on. No HTTP here.
//!
//! # The model
//!
//! - A [`Topic`] is a named, totally ordered, bounded log of [`Event`]s.
//! - Every event has a [`Cursor`]: an [`Epoch`] (one unbroken history of the topic) and a
//!   sequence number. Its text form is opaque to clients, strict to parse, and stable.
//! - A [`Subscription`] starts from the newest point, the oldest retained event, or after a
//!   cursor ([`StartFrom`]); the [`Outcome`] of that start is always explicit:
//!   [`Resumed`](Outcome::Resumed), [`Gap`](Outcome::Gap) with the number of events missed, or
//!   [`Reset`](Outcome::Reset).
//! - Subscribers read the shared log at their own position: a publish is O(1) plus waking the
//!   subscribers that wait, there is no per-subscriber queue, and a subscriber that falls behind
//!   retention receives [`Delivery::Gap`] rather than a silent skip.
//! - An event's payload has a [`PayloadKind`] (text, JSON or binary), chosen and checked once
//!   at publish ([`NewEvent::text`], [`NewEvent::json`], [`NewEvent::binary`]), so that every
//!   JSON form carries a JSON payload as a value and a client never guesses.
//! - A topic can finish ([`Hub::complete`]): readers get every event, then
//!   [`Delivery::Complete`]; the end has a cursor of its own. [`Hub::delete`] ends a topic's
//!   readers and starts its name over.
//! - [`Retention`] bounds every topic by count, age and bytes; [`HubConfig`] caps the number of
//!   topics and the event size, and reclaims idle topics.
//!
//! # Example
//!
//! ```
//! use push_core::{Delivery, Hub, NewEvent, Outcome, StartFrom, Topic};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), push_core::Error> {
//! let hub = Hub::memory();
//! let topic = Topic::new("prices").expect("valid name");
//!
//! // A streaming subscriber waits for events as they are published.
//! let mut live = hub.subscribe(&topic, StartFrom::Newest).await?;
//! let first = hub.publish(&topic, NewEvent::new("42.1")).await?;
//! match live.recv().await {
//!     Some(Delivery::Event(event)) => assert_eq!(event.id(), first.id()),
//!     other => panic!("unexpected {other:?}"),
//! }
//!
//! // A polling client asks for what followed its cursor, in one batch.
//! hub.publish(&topic, NewEvent::new("42.3")).await?;
//! let batch = hub.read(&topic, StartFrom::After(first.id()), 100).await?;
//! assert_eq!(batch.outcome, Outcome::Resumed);
//! assert_eq!(batch.events.len(), 1);
//!
//! // A cursor of another epoch (say, from before a restart) is reported, never ignored.
//! let stale = StartFrom::from_client(Some("abc-7"), StartFrom::Newest);
//! assert_eq!(hub.subscribe(&topic, stale).await?.outcome(), Outcome::Reset);
//! # Ok(()) }
//! ```
//!
//! # For technique crates
//!
//! A technique crate reads [`Subscription`]s one delivery at a time or in [`Batch`]es, and
//! caches its wire encoding of each event once ([`Event::encoded`]). What the technique crates
//! share on the HTTP side (a streaming body, the common answers, CORS, the JSON forms) is in
//! `push-http`, so this crate stays the model alone.
//!
//! # Features
//!
//! - `serde`: [`Topic`] and [`Cursor`] as `serde` types, each as its text form and read back
//!   through [`Topic::new`] / [`Cursor::parse`] (an invalid one is a deserialization error, so
//!   an axum `Path<Topic>` answers it with `400`). Without it push-core does not depend on
//!   `serde` itself.
//!
//! # Backends
//!
//! [`Hub`] is a cheap handle over any [`Backend`]; [`MemoryHub`] is the embedded default. A
//! backend that shares topics between processes keeps cursors meaningful across them and feeds
//! the same in-process logs ([`ReplicaLog`]), so technique crates work unchanged over it.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
mod config;
mod cursor;
mod error;
mod event;
mod log;
mod memory;
mod replica;
mod topic;

pub use crate::backend::{Backend, BoxFuture, Hub, HubStats, TopicStats};
pub use crate::config::{HubConfig, ResetPolicy, Retention};
pub use crate::cursor::{Cursor, Epoch, MAX_CURSOR_LEN};
pub use crate::error::Error;
pub use crate::event::{
    EncodingSlot, Event, EventType, NewEvent, PayloadKind, EVENT_OVERHEAD, MAX_EVENT_TYPE_LEN,
    MAX_IDEMPOTENCY_KEY_LEN, MAX_JSON_DEPTH,
};
pub use crate::log::{Batch, BatchLimit, Delivery, Outcome, StartFrom, Subscription};
pub use crate::memory::MemoryHub;
pub use crate::replica::{Appended, ReplicaLog, ReplicaStats};
pub use crate::topic::{Topic, MAX_TOPIC_LEN};

pub use bytes::Bytes;
