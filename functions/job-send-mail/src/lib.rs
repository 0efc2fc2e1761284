//! `POST /api/v1/jobs/send-mail`, the mail sender, as one function, for Spin
//! (`wasm32-wasip2`; a scheduler posts to it) and Cloudflare Workers
//! (`wasm32-unknown-unknown`; its cron trigger runs it too). It only adapts.

#[cfg(target_os = "wasi")]
host_spin::function!("job-send-mail", shared::routes::job_send_mail::handle);

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
host_workers::job_function!(
    "job-send-mail",
    shared::routes::job_send_mail::handle,
    shared::routes::job_send_mail::run
);
