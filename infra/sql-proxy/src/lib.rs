//! `sql-proxy`: serves Neon's SQL-over-HTTP wire format (see
//! `shared::db::wire`) over bounded tokio-postgres pools.
//!
//! - [`auth`]: callers sign requests with a proxy key; replays and
//!   repeated failures refused.
//! - [`config`]: flags and environment, validated at start-up.
//! - [`pools`]: a pool per credential set, host allowlist, eviction.
//! - [`convert`]: JSON parameters in (as text), rows out as wire values.
//! - [`render`]: PostgreSQL's text output from the binary form.
//! - [`tls`]: TLS on the listener (reloaded on SIGHUP) and upstream.
//! - [`guard`]: statements refused (transaction control, session changes).
//! - [`metrics`]: Prometheus text at `/metrics`.
//! - [`run`]: the server, with a concurrency limit and graceful shutdown.
//!
//! Routes: `POST /sql`, `GET /healthz`, `GET /metrics`.

pub mod auth;
pub mod config;
pub mod convert;
pub mod error;
pub mod guard;
pub mod metrics;
pub mod pools;
pub mod render;
pub mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use shared::db::wire::{
    self, BatchResult, Field, IsolationLevel, QueryResult, SqlRequest, Statement,
};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use config::ProxyConfig;
use error::{ProxyError, json_response};
use metrics::Metrics;
use pools::Pools;

/// Shared state of the server.
pub struct AppState {
    config: ProxyConfig,
    auth: auth::Authenticator,
    pools: Pools,
    metrics: Metrics,
    permits: Semaphore,
}

/// Serves until `shutdown` resolves, then drains in-flight requests and
/// closes every pool.
pub async fn run(
    listener: TcpListener,
    config: ProxyConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let address = listener.local_addr()?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            Some((cert.clone(), key.clone(), tls::server_config(cert, key)?))
        }
        _ => {
            anyhow::ensure!(
                address.ip().is_loopback(),
                "listening on {address} needs TLS: set SQL_PROXY_TLS_CERT and SQL_PROXY_TLS_KEY"
            );
            None
        }
    };
    let state = Arc::new(AppState {
        auth: auth::Authenticator::new(config.keys().to_vec()),
        pools: Pools::new(config.clone())?,
        metrics: Metrics::default(),
        permits: Semaphore::new(config.max_concurrency),
        config,
    });
    let app = Router::new()
        .route("/sql", post(sql))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .with_state(state.clone())
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    match tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await?;
        }
        Some((cert, key, server)) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(server));
            let reload = tokio::spawn(reload_on_sighup(rustls.clone(), cert, key));
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                stopper.graceful_shutdown(None);
            });
            axum_server::from_tcp_rustls(listener.into_std()?, rustls)?
                .handle(handle)
                .serve(app)
                .await?;
            reload.abort();
        }
    }
    state.pools.close();
    Ok(())
}

/// Reads the listener's certificate and key again on each SIGHUP; a
/// failed reload keeps the ones in use.
async fn reload_on_sighup(
    rustls: axum_server::tls_rustls::RustlsConfig,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot listen for SIGHUP; the TLS certificate will not be reloaded");
        return;
    };
    while hangups.recv().await.is_some() {
        match tls::server_config(&cert, &key) {
            Ok(server) => {
                rustls.reload_from_config(Arc::new(server));
                tracing::info!(cert = %cert.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS certificate not reloaded; the one in use stays");
            }
        }
    }
}

async fn healthz() -> Response {
    json_response(200, &serde_json::json!({ "status": "ok" }))
}

async fn not_found() -> Response {
    json_response(
        404,
        &serde_json::json!({ "message": "not found; the SQL endpoint is POST /sql" }),
    )
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    let (pools, size, available) = state.pools.stats();
    state.metrics.pools.set(pools as i64);
    state.metrics.connections.set(size as i64);
    state.metrics.idle_connections.set(available as i64);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn sql(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let caller = Caller {
        peer: peer.ip(),
        path: uri.path_and_query().map_or("/sql", |p| p.as_str()),
        headers: &headers,
    };
    let result = match state.permits.acquire().await {
        Ok(_permit) => serve_sql(&state, caller, body).await,
        Err(_) => Err(ProxyError::Unavailable("shutting down".into())),
    };
    state
        .metrics
        .duration
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(response) => {
            state.metrics.count("ok");
            response
        }
        Err(err) => {
            state.metrics.count(err.outcome());
            if matches!(err, ProxyError::Unavailable(_)) {
                tracing::warn!(error = %err, "sql request failed");
            }
            err.into_response()
        }
    }
}

fn header_flag(headers: &HeaderMap, name: &str) -> Result<bool, ProxyError> {
    match headers
        .get(name)
        .map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase())
    {
        None => Ok(false),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(_) => Err(ProxyError::BadRequest(format!(
            "header {name} must be true or false"
        ))),
    }
}

/// Who sent a request, and the parts of it a signature covers besides the
/// body.
#[derive(Clone, Copy)]
struct Caller<'a> {
    peer: std::net::IpAddr,
    path: &'a str,
    headers: &'a HeaderMap,
}

/// Output options of a request.
#[derive(Clone, Copy)]
struct Output {
    raw: bool,
    array_mode: bool,
    max_bytes: usize,
}

async fn serve_sql(
    state: &AppState,
    caller: Caller<'_>,
    body: Body,
) -> Result<Response, ProxyError> {
    let headers = caller.headers;
    let max = state.config.max_request_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(ProxyError::RequestTooLarge(max));
    }
    let bytes = http_body_util::Limited::new(body, max)
        .collect()
        .await
        .map_err(|_| ProxyError::RequestTooLarge(max))?
        .to_bytes();
    state.auth.check(
        caller.peer,
        &shared::db::signing::Request {
            method: "POST",
            path: caller.path,
            headers,
            body: &bytes,
        },
    )?;
    let connection_string = headers
        .get(wire::CONNECTION_STRING)
        .ok_or_else(|| ProxyError::BadRequest("missing Neon-Connection-String header".into()))?
        .to_str()
        .map_err(|_| ProxyError::BadRequest("Neon-Connection-String is not valid text".into()))?;
    let request: SqlRequest = serde_json::from_slice(&bytes).map_err(|e| {
        ProxyError::BadRequest(format!("request body is not a valid SQL request: {e}"))
    })?;
    let output = Output {
        raw: header_flag(headers, wire::RAW_TEXT_OUTPUT)?,
        array_mode: header_flag(headers, wire::ARRAY_MODE)?,
        max_bytes: state.config.max_response_bytes,
    };
    // Before any connection is taken: a batch with one refused statement
    // runs none of them.
    let statements = match &request {
        SqlRequest::Single(statement) => std::slice::from_ref(statement),
        SqlRequest::Batch(batch) => batch.queries.as_slice(),
    };
    for (index, statement) in statements.iter().enumerate() {
        if let Some(why) = guard::refusal(&statement.query) {
            let at = match request {
                SqlRequest::Single(_) => String::new(),
                SqlRequest::Batch(_) => format!(" (query {index} of the batch)"),
            };
            return Err(ProxyError::Postgres(Box::new(wire::ErrorReply {
                message: format!("{why}{at}"),
                code: Some("0A000".into()),
                severity: Some("ERROR".into()),
                ..Default::default()
            })));
        }
    }
    let pool = state.pools.pool_for(connection_string)?;
    let mut client = pool.get().await.map_err(|e| match e {
        deadpool_postgres::PoolError::Timeout(_) => {
            ProxyError::Unavailable("timed out waiting for a free database connection".into())
        }
        deadpool_postgres::PoolError::PostCreateHook(deadpool_postgres::HookError::Message(
            why,
        )) => ProxyError::Forbidden(why.into_owned()),
        deadpool_postgres::PoolError::Backend(pg) => match pg.as_db_error() {
            Some(_) => ProxyError::from_pg(&pg),
            None => ProxyError::Unavailable(format!(
                "cannot connect to the database: {}",
                error::chain(&pg)
            )),
        },
        other => ProxyError::Unavailable(format!("cannot get a database connection: {other}")),
    })?;

    let mut budget = output.max_bytes;
    let reply = match request {
        SqlRequest::Single(statement) => {
            let result = execute(&client, &statement, output, &mut budget).await?;
            state.metrics.statements.inc();
            serde_json::to_vec(&result)
        }
        SqlRequest::Batch(batch) => {
            if batch.queries.is_empty() {
                return Err(ProxyError::BadRequest("a batch needs at least one query".into()));
            }
            let isolation = match headers.get(wire::BATCH_ISOLATION_LEVEL) {
                None => IsolationLevel::default(),
                Some(v) => v.to_str().ok().and_then(IsolationLevel::parse).ok_or_else(|| {
                    ProxyError::BadRequest(
                        "Neon-Batch-Isolation-Level must be ReadUncommitted, ReadCommitted, RepeatableRead or Serializable"
                            .into(),
                    )
                })?,
            };
            let read_only = header_flag(headers, wire::BATCH_READ_ONLY)?;
            let deferrable = header_flag(headers, wire::BATCH_DEFERRABLE)?;
            let isolation = match isolation {
                IsolationLevel::ReadUncommitted => tokio_postgres::IsolationLevel::ReadUncommitted,
                IsolationLevel::ReadCommitted => tokio_postgres::IsolationLevel::ReadCommitted,
                IsolationLevel::RepeatableRead => tokio_postgres::IsolationLevel::RepeatableRead,
                IsolationLevel::Serializable => tokio_postgres::IsolationLevel::Serializable,
            };
            let transaction = client
                .build_transaction()
                .isolation_level(isolation)
                .read_only(read_only)
                .deferrable(deferrable)
                .start()
                .await
                .map_err(|e| ProxyError::from_pg(&e))?;
            let mut results = Vec::with_capacity(batch.queries.len());
            for statement in &batch.queries {
                // An error drops the transaction, which rolls it back.
                results.push(execute(&transaction, statement, output, &mut budget).await?);
                state.metrics.statements.inc();
            }
            transaction.commit().await.map_err(|e| ProxyError::from_pg(&e))?;
            serde_json::to_vec(&BatchResult { results })
        }
    }
    .map_err(|e| ProxyError::Unavailable(format!("cannot encode reply: {e}")))?;
    let mut response = Response::new(Body::from(reply));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

async fn execute<C: deadpool_postgres::GenericClient>(
    client: &C,
    statement: &Statement,
    output: Output,
    budget: &mut usize,
) -> Result<QueryResult, ProxyError> {
    use futures::TryStreamExt;

    let prepared = client
        .prepare_cached(&statement.query)
        .await
        .map_err(|e| ProxyError::from_pg(&e))?;
    if prepared.params().len() != statement.params.len() {
        return Err(ProxyError::Postgres(Box::new(wire::ErrorReply {
            message: format!(
                "bind message supplies {} parameters, but prepared statement requires {}",
                statement.params.len(),
                prepared.params().len()
            ),
            code: Some("08P01".into()),
            severity: Some("ERROR".into()),
            ..Default::default()
        })));
    }
    let params = statement.params.iter().map(convert::JsonParam);
    let stream = client
        .query_raw(&prepared, params)
        .await
        .map_err(|e| ProxyError::from_pg(&e))?;
    futures::pin_mut!(stream);
    let fields: Vec<Field> = prepared
        .columns()
        .iter()
        .map(|c| Field {
            name: c.name().to_owned(),
            data_type_id: c.type_().oid(),
            table_id: c.table_oid().unwrap_or(0),
            column_id: c.column_id().unwrap_or(0),
            data_type_size: -1,
            data_type_modifier: -1,
            format: "text".into(),
        })
        .collect();
    let mut rows = Vec::new();
    while let Some(row) = stream
        .try_next()
        .await
        .map_err(|e| ProxyError::from_pg(&e))?
    {
        let mut values = Vec::with_capacity(fields.len());
        for (i, field) in fields.iter().enumerate() {
            let value = convert::column_value(&row, i, output.raw).map_err(|e| {
                ProxyError::Postgres(Box::new(wire::ErrorReply {
                    message: e.to_string(),
                    code: Some("0A000".into()),
                    severity: Some("ERROR".into()),
                    ..Default::default()
                }))
            })?;
            let size = approximate_size(&value) + field.name.len() + 4;
            *budget = budget
                .checked_sub(size)
                .ok_or(ProxyError::ResponseTooLarge(output.max_bytes))?;
            values.push(value);
        }
        rows.push(if output.array_mode {
            Value::Array(values)
        } else {
            Value::Object(
                fields
                    .iter()
                    .map(|f| f.name.clone())
                    .zip(values)
                    .collect::<Map<_, _>>(),
            )
        });
    }
    let row_count = stream.rows_affected();
    Ok(QueryResult {
        command: guard::command_of(&statement.query),
        row_count,
        rows,
        fields,
        row_as_array: output.array_mode,
    })
}

fn approximate_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 24,
        Value::String(s) => s.len() + 2,
        Value::Array(items) => 2 + items.iter().map(approximate_size).sum::<usize>(),
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| k.len() + 4 + approximate_size(v))
                .sum::<usize>()
        }
    }
}
