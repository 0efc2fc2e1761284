//! `GET, POST /api/v1/users` as one function, for Spin (`wasm32-wasip2`) and Cloudflare
//! Workers (`wasm32-unknown-unknown`). It only adapts: build the context,
//! call `shared::routes::users::handle`, convert the response.

#[cfg(target_os = "wasi")]
#[spin_sdk::http_service]
async fn handle(request: spin_sdk::http::Request) -> impl spin_sdk::http::IntoResponse {
    match host_spin::prepare(request, "users").await {
        Ok((ctx, request)) => {
            host_spin::respond(shared::routes::users::handle(&ctx, request).await)
        }
        Err(early) => host_spin::respond(early),
    }
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[worker::event(fetch)]
async fn fetch(
    request: worker::Request,
    env: worker::Env,
    _ctx: worker::Context,
) -> worker::Result<worker::Response> {
    match host_workers::prepare(request, &env, "users").await {
        Ok((ctx, request)) => {
            host_workers::respond(shared::routes::users::handle(&ctx, request).await)
        }
        Err(early) => early.into_response(),
    }
}
