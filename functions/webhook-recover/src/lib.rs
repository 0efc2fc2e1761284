//! `POST /api/v1/webhooks/:id/recover` as one function, for Spin (`wasm32-wasip2`) and Cloudflare
//! Workers (`wasm32-unknown-unknown`). It only adapts: the host crates' `function!`
//! builds the context, calls the handler and converts the response.

#[cfg(target_os = "wasi")]
host_spin::function!("webhook-recover", shared::routes::webhook_recover::handle);

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
host_workers::function!("webhook-recover", shared::routes::webhook_recover::handle);
