//! Resumable [Model Context Protocol](https://modelcontextprotocol.io) streams on push: the
//! event store and session store of an [rmcp](https://docs.rs/rmcp) Streamable HTTP server,
//! over any push-core [`Hub`](push_core::Hub) (in memory, or push-redis for several servers).
//!
//! The Streamable HTTP transport (spec revision 2025-11-25, "Transports") resumes the way push
//! does: each SSE event has an id that acts as a per-stream cursor, and a client that lost its
//! connection sends `GET` with `Last-Event-ID` to get what followed. This crate stores each
//! MCP stream as one push topic:
//!
//! - **One topic per stream**, `mcp:s:{stream}`: rmcp names a request's stream by a UUID and a
//!   session's standalone stream `{session}:common`. The event id is `{stream}/{cursor}` (the
//!   push cursor in that topic), so a replay finds its topic from the id alone, and can never
//!   cross into another stream. Ids parse strictly; garbage is an error, never a panic.
//! - **Streams end**: the stored JSON-RPC response (or error) completes its topic, so a resume
//!   from any point gets the rest, then the stream ends, on whichever server it reaches.
//! - **Sessions**: [`PushSessionManager`] records each request stream under its session (rmcp's
//!   `EventStore` is never told the session) and refuses a `Last-Event-ID` of another session.
//!   [`McpStore`] is also rmcp's `SessionStore`: another server restores a session from it, and
//!   its `delete`, which rmcp calls on the client's `DELETE`, deletes the session's topics.
//! - **Retention** is the hub's [`HubConfig`](push_core::HubConfig). A resume older than
//!   retention (push's `Gap`) goes on from the oldest retained event; a history that is gone
//!   (push's `Reset`) or an unknown stream is an error, which rmcp answers with an empty `200`
//!   stream. See [`McpStore::replay`].
//!
//! # Example
//!
//! Wiring it into an rmcp server on axum; `Hub::memory()` becomes a push-redis hub when
//! several processes serve one endpoint.
//!
//! ```
//! use std::sync::Arc;
//!
//! use push_core::Hub;
//! use push_mcp::{McpStore, PushSessionManager};
//! use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
//! # use rmcp::{ServerHandler, model::ServerInfo};
//! # #[derive(Clone)] struct MyServer;
//! # impl ServerHandler for MyServer { fn get_info(&self) -> ServerInfo { ServerInfo::default() } }
//!
//! let store = McpStore::new(Hub::memory());
//! let mut config = StreamableHttpServerConfig::default();
//! config.session_store = Some(Arc::new(store.clone()));
//! let service = StreamableHttpService::new(
//!     || Ok(MyServer),
//!     Arc::new(PushSessionManager::new(store)),
//!     config,
//! );
//! // axum: Router::new().nest_service("/mcp", service)
//! # let _ = service;
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod id;
mod manager;
mod store;

pub use crate::error::Error;
pub use crate::manager::PushSessionManager;
pub use crate::store::McpStore;
