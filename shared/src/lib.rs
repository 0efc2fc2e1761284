//! The platform-free core of Antevus.
//!
//! Every API route is a plain async function over `http` types and a [`Ctx`]:
//!
//! ```text
//! pub async fn handle<P: Platform>(ctx: &Ctx<P>, req: http::Request<Bytes>) -> http::Response<Body>
//! ```
//!
//! Nothing in this crate names Spin, Workers or tokio. The three hosts
//! (`hosts/host-spin`, `hosts/host-workers`, `hosts/host-native`) implement
//! [`Platform`] — outbound HTTP, clock, randomness — and build the [`Config`]
//! from their environment; the function crates under `functions/` only adapt.
//!
//! Modules, bottom up; each depends only on those before it (a test in
//! `xtask` reads every `crate::` path and fails on an edge upwards):
//! - [`error`] and [`body`]: the one `ApiError` and its stable codes; a
//!   response body, whole or streamed.
//! - [`envelope`]: the response envelope of the design document and the
//!   request id; [`web`]: the web application's files, served from the
//!   API's origin.
//! - [`config`] (typed sections, parsed on first use), [`platform`] (the
//!   seam: outbound HTTP, clock, randomness) and [`domain`] (types that
//!   parse: e-mails, instrument kinds and statuses, schemas, QC, commands).
//! - [`ctx`]: `Ctx`, the platform and the configuration a handler receives.
//! - [`db`]: the SQL-over-HTTP client (Neon wire format) and its codec.
//! - [`request`]: `Rq`, a request in flight (its id, parameters, caller and
//!   audit context), and the parsing of bodies and query strings.
//! - [`model`]: every table's rows and queries; tenant queries take a
//!   `Scope`. The only module that writes SQL.
//! - [`ratelimit`], [`mail`], [`storage`]: rate limits, outgoing mail, run
//!   data's backends.
//! - [`auth`]: passwords, tokens, sessions, API keys, the `Principal`.
//! - [`audit`]: the event catalogue, the signed chain, exports, refusals.
//! - [`live`]: the bridges' protocol, what they send stored, the live hub.
//! - [`routes`]: one module per route and the route table.
//! - `openapi` (feature `openapi`, native only): the OpenAPI document,
//!   generated from the handlers' descriptions and the route table.

pub mod audit;
pub mod auth;
pub mod body;
pub mod config;
pub mod ctx;
pub mod db;
pub mod domain;
pub mod envelope;
pub mod error;
pub mod live;
pub mod mail;
pub mod model;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod platform;
pub mod ratelimit;
pub mod request;
pub mod retention;
pub mod routes;
pub mod storage;
pub mod watch;
pub mod web;
pub mod webhook;

pub use body::Body;
pub use config::{Config, Secret};
pub use ctx::Ctx;
pub use envelope::{API_VERSION, Reply};
pub use error::{ApiError, ErrorCode, FieldError};
pub use platform::{FetchError, Platform};
