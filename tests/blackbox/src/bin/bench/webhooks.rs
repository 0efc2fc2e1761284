//! Webhook delivery on workerd (`ANTEVUS_BENCH_ONLY=webhooks cargo xtask
//! bench`), to a local receiver that answers 200 at once:
//!
//! 1. deliveries per second from one run of the delivery job with 1,000
//!    events pending (queued through the API's own statements: a run
//!    started and aborted publishes `run.aborted`), timed at the receiver
//!    from its first hit to its last;
//! 2. time from commit (the `PUT .../stop` answered) to the receiver's hit,
//!    p50/p99/max of 100 events at random times (each 0-2 s after the
//!    previous hit), while the job runs as a deployment's cron starts it: a
//!    run of 50 s (claiming each second) at the start of every minute, so
//!    events in the 10 s between runs wait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use blackbox::TestApp;
use serde_json::{Value, json};
use shared::auth::Role;

use super::{ms, stats};

const PENDING: usize = 1_000;
const LATENCY_EVENTS: usize = 100;

/// When each run's event reached the receiver, by run id.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// A receiver answering 200 at once, until its sender is dropped.
async fn receiver() -> anyhow::Result<(String, Arrivals, tokio::sync::oneshot::Sender<()>)> {
    let arrivals: Arrivals = Arc::default();
    let sink = arrivals.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let sink = sink.clone();
        async move {
            let at = Instant::now();
            let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if let (Some(run), Ok(mut map)) = (event["data"]["runId"].as_str(), sink.lock()) {
                map.entry(run.to_owned()).or_insert(at);
            }
            "ok"
        }
    });
    let (address, stop) = blackbox::lab::serve_local(app).await?;
    Ok((format!("http://{address}/hook"), arrivals, stop))
}

/// Starts and aborts a run on `instrument`; its id and when the abort
/// was answered.
async fn abort_a_run(
    app: &TestApp,
    token: &str,
    instrument: &str,
) -> anyhow::Result<(String, Instant)> {
    let run = app
        .as_user(token)
        .post("/api/v1/runs", &json!({"instrumentId": instrument}))
        .await?;
    let id = run.expect_ok(201)?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    app.as_user(token)
        .put(
            &format!("/api/v1/runs/{id}/stop"),
            &json!({"outcome": "aborted"}),
        )
        .await?
        .expect_ok(200)?;
    Ok((id, Instant::now()))
}

pub async fn run(app: &Arc<TestApp>) -> anyhow::Result<()> {
    let host = app.host_with(&[("WEBHOOK_ALLOW_LOOPBACK", "true")]).await?;
    let base = host.base_url.clone();
    let scheduler = app.scheduler_key()?;
    let admin = app.new_org_user(Role::Admin).await?;
    let token = app.login(&admin).await?;
    let (url, arrivals, _receiving) = receiver().await?;
    let created: Value = app
        .http
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(&token)
        .json(&json!({"url": url, "events": ["run.aborted"]}))
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(created["success"] == true, "{created}");
    let instrument = app
        .as_user(&token)
        .post(
            "/api/v1/instruments",
            &json!({"name": "Webhook bench", "type": "plate_reader", "status": "idle"}),
        )
        .await?;
    let instrument = instrument.expect_ok(201)?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let drain = |seconds: u64| {
        let request = app
            .http
            .post(format!("{base}/api/v1/jobs/deliver-webhooks"))
            .bearer_auth(&scheduler)
            .json(&json!({ "seconds": seconds }));
        async move {
            let ran: Value = request.send().await?.json().await?;
            anyhow::ensure!(ran["success"] == true, "{ran}");
            anyhow::Ok(ran["data"].clone())
        }
    };

    // 1. Throughput of one run with 1,000 pending.
    for _ in 0..PENDING {
        abort_a_run(app, &token, &instrument).await?;
    }
    let ran = drain(10).await?;
    let times: Vec<Instant> = arrivals
        .lock()
        .map(|m| m.values().copied().collect())
        .unwrap_or_default();
    anyhow::ensure!(
        times.len() == PENDING,
        "{} of {PENDING} arrived: {ran}",
        times.len()
    );
    let first = times.iter().min().copied().unwrap_or_else(Instant::now);
    let last = times.iter().max().copied().unwrap_or_else(Instant::now);
    let span = last.duration_since(first);
    println!(
        "| webhook delivery on workerd (to a local receiver) | value |\n|---|---:|\n\
         | {PENDING} pending, one run of the job: first to last hit | {} ms |\n\
         | deliveries per second | {:.0} |",
        ms(span),
        PENDING as f64 / span.as_secs_f64().max(1e-9),
    );

    // 2. Commit to hit, the job running as its cron would.
    // A run of 50 s at the start of every minute, as Workers' cron and
    // `cargo xtask dev` start it: events in the 10 s between runs wait.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let running = tokio::spawn({
        let (http, base, scheduler, stop) = (
            app.http.clone(),
            base.clone(),
            scheduler.clone(),
            stop.clone(),
        );
        async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let ran: Value = http
                    .post(format!("{base}/api/v1/jobs/deliver-webhooks"))
                    .bearer_auth(&scheduler)
                    .json(&json!({ "seconds": 50 }))
                    .send()
                    .await?
                    .json()
                    .await?;
                anyhow::ensure!(ran["success"] == true, "{ran}");
                let next = started + Duration::from_secs(60);
                while Instant::now() < next && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            anyhow::Ok(())
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut latencies = Vec::with_capacity(LATENCY_EVENTS);
    for _ in 0..LATENCY_EVENTS {
        // A random pause, so commits fall anywhere in the claiming second
        // and some between two runs.
        let mut pause = [0u8; 2];
        getrandom::fill(&mut pause)?;
        let pause = u64::from(u16::from_le_bytes(pause)) * 2_000 / u64::from(u16::MAX);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let (run, committed) = abort_a_run(app, &token, &instrument).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let hit = arrivals.lock().ok().and_then(|m| m.get(&run).copied());
            if let Some(hit) = hit {
                latencies.push(hit.saturating_duration_since(committed));
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "run {run} was not delivered in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let longest = latencies.iter().max().copied().unwrap_or_default();
    let between_runs = latencies
        .iter()
        .filter(|l| **l > Duration::from_millis(1_500))
        .count();
    let latency = stats(latencies, 0, Duration::ZERO);
    println!(
        "| commit to the receiver's hit, {LATENCY_EVENTS} events at random times: p50 | {} ms |\n\
         | the same: p99 | {} ms |\n\
         | the same: max | {} ms |\n\
         | events that waited more than 1.5 s (committed between two runs) | {between_runs} |",
        ms(latency.p50),
        ms(latency.p99),
        ms(longest),
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    running.await??;
    tokio::task::spawn_blocking(move || host.stop()).await?;
    Ok(())
}
