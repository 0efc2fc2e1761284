//! `GET /api/v1/live` as one function, for Spin (`wasm32-wasip2`) and Cloudflare
//! Workers (`wasm32-unknown-unknown`). It only adapts. On Workers,
//! `hub_function!` also defines the live hub's Durable Object (`LiveHub`, one
//! per organization) and hands it every WebSocket upgrade; Spin has no
//! WebSockets, so there the handler answers an upgrade with 501 and the
//! HTTP alternatives.

#[cfg(target_os = "wasi")]
host_spin::function!("live", shared::routes::live::handle);

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
host_workers::hub_function!("live", shared::routes::live::handle);
