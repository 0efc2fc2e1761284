//! The web application's function. On Spin (`wasm32-wasip2`) it serves the
//! built app (`web/dist`, mounted at `/`) below every API route; on
//! Cloudflare Workers the static assets serve the app and this Worker only
//! answers the `/api/` paths no route claims. The rules are
//! `shared::web`'s; the host crates adapt.

#[cfg(target_os = "wasi")]
host_spin::web_function!();

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
host_workers::web_function!();
