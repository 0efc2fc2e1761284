//! `POST /api/v1/jobs/watch` as one function, for Spin (`wasm32-wasip2`) and Cloudflare
//! Workers (`wasm32-unknown-unknown`). It only adapts: the host crates' `function!`
//! builds the context, calls the handler and converts the response.

#[cfg(target_os = "wasi")]
host_spin::function!("job-watch", shared::routes::job_watch::handle);

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
host_workers::job_function!(
    "job-watch",
    shared::routes::job_watch::handle,
    shared::routes::job_watch::run
);
