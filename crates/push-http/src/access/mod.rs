//! Who may use an endpoint, and how much of it: the access hook and its grants, JSON Web
//! Tokens, the origins browsers may call from (CORS, WebSocket `Origin`), and the limits on
//! what one client and all clients hold.
//!
//! Layered without cycles: `grant` and `cors` at the bottom, `limit` and `jwt` on `grant`,
//! `jwt_hmac` (jsonwebtoken's HMAC-only provider under feature `jwt-hs256` alone) under `jwt`.

mod cors;
mod grant;
#[cfg(feature = "jwt-hs256")]
pub mod jwt;
#[cfg(all(feature = "jwt-hs256", not(feature = "jwt")))]
mod jwt_hmac;
mod limit;

pub(crate) use cors::CorsRules;
pub use cors::{Cors, Origins};
pub(crate) use grant::check_read_all;
pub use grant::{Allow, Authorizer, Grant, Refusal};
pub(crate) use limit::Limiter;
pub use limit::{Permit, Quota};
