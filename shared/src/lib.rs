//! The platform-free core of Antevus.
//!
//! Every API route is a plain async function over `http` types and a [`Ctx`]:
//!
//! ```text
//! pub async fn handle<P: Platform>(ctx: &Ctx<P>, req: http::Request<Bytes>) -> http::Response<Bytes>
//! ```
//!
//! Nothing in this crate names Spin, Workers or tokio. The three hosts
//! (`hosts/host-spin`, `hosts/host-workers`, `hosts/host-native`) implement
//! [`Platform`] — outbound HTTP, clock, randomness — and build the [`Config`]
//! from their environment; the function crates under `functions/` only adapt.
//!
//! Layout:
//! - [`error`] and [`envelope`]: the one `ApiError`, its stable codes, and the
//!   response envelope of the design document.
//! - [`platform`]: the seam (`Platform`), `Config`, `Secret`, `Ctx`.
//! - [`request`]: request ids, JSON body and query parsing, bearer tokens.
//! - [`db`]: the SQL-over-HTTP client (Neon wire format) and its codec.
//! - [`auth`]: argon2id passwords, HS256 access tokens, roles and permissions.
//! - [`domain`]: types that parse (emails, instrument kinds and statuses).
//! - [`routes`]: one module per route and the route table.

pub mod audit;
pub mod auth;
pub mod db;
pub mod domain;
pub mod envelope;
pub mod error;
pub mod live;
pub mod mail;
pub mod platform;
pub mod ratelimit;
pub mod request;
pub mod retention;
pub mod routes;
pub mod storage;

pub use envelope::Reply;
pub use error::{ApiError, ErrorCode, FieldError};
pub use platform::{Config, Ctx, FetchError, Platform, Secret};

/// The API version reported in every envelope's `metadata.version`.
pub const API_VERSION: &str = "1.0.0";
