//! The web application's benchmark, on workerd: what a first visit
//! downloads (the initial JavaScript and CSS, gzipped as a CDN would send
//! them), how long Chromium takes from "Sign in" (and from opening the URL
//! in a cold browser) to the dashboard showing a live instrument, and the
//! delay from a reading leaving the simulator to the dashboard showing it,
//! over 200 readings (the same browser path as the `web` test cases);
//! and the pages' own costs (`web/tests/measure.mjs`): the run history's
//! time to interactive with 10,000 runs, an instrument's week of readings
//! (one every 10 s), and a 100 MB file uploaded through the page.

use std::process::Command;

use anyhow::{Context as _, ensure};
use blackbox::TestApp;

const READINGS: usize = 200;
const HISTORY_RUNS: i64 = 10_000;
/// A reading every 10 s for 7 days.
const WEEK_READINGS: i64 = 7 * 24 * 360;
const UPLOAD_MB: u64 = 100;

fn gzipped(path: &std::path::Path) -> anyhow::Result<u64> {
    let out = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .context("gzip")?;
    ensure!(out.status.success(), "gzip {}", path.display());
    Ok(out.stdout.len() as u64)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

pub async fn run(app: &TestApp) -> anyhow::Result<()> {
    let dist = blackbox::stack::root().join("web/dist");
    let index = std::fs::read_to_string(dist.join("index.html"))
        .context("web/dist is not built: run `npm run build` in web/")?;
    let (mut js, mut css) = (0u64, 0u64);
    for part in index.split('"') {
        if let Some(asset) = part.strip_prefix("/assets/") {
            let size = gzipped(&dist.join("assets").join(asset))?;
            if asset.ends_with(".js") {
                js += size;
            } else if asset.ends_with(".css") {
                css += size;
            }
        }
    }
    let lines = blackbox::web::browse(app, READINGS).await?;
    let timings = blackbox::web::timings(&lines);
    let mut delays = timings.reading_delays_ms.clone();
    delays.sort_unstable();
    println!("\n## The web application (workerd, Chromium {READINGS} readings)\n");
    println!("| what | figure |\n|---|---:|");
    println!(
        "| initial JavaScript, gzipped | {:.1} KiB |",
        js as f64 / 1024.0
    );
    println!("| initial CSS, gzipped | {:.1} KiB |", css as f64 / 1024.0);
    println!(
        "| \"Sign in\" to the dashboard showing a live instrument | {} ms |",
        timings.dashboard_ms
    );
    println!(
        "| opening the URL in a cold browser to the same | {} ms |",
        timings.first_load_ms
    );
    println!(
        "| a reading from the simulator to the dashboard, p50 / p99 ({} readings) | {} / {} ms |",
        delays.len(),
        percentile(&delays, 0.5),
        percentile(&delays, 0.99)
    );
    pages(app).await
}

/// Seeds an organization with 10,000 runs and a freezer with a week of
/// readings, and measures the pages over them in Chromium.
async fn pages(app: &TestApp) -> anyhow::Result<()> {
    let admin = app.new_org_user(shared::auth::Role::Admin).await?;
    let token = app.login(&admin).await?;
    let freezer =
        blackbox::lab::new_instrument(app, &token, "Freezer B-12", "freezer", "online").await?;
    let sequencer =
        blackbox::lab::new_instrument(app, &token, "Sequencer S-1", "dna_sequencer", "online")
            .await?;
    let db = app.db().await?;
    let org = admin.organization_id;
    db.execute(
        "INSERT INTO runs (organization_id, instrument_id, name, status, started_at, completed_at, operator_id, created_at)
         SELECT $1, CASE WHEN g % 2 = 0 THEN $2::uuid ELSE $3::uuid END, 'Run ' || g,
                (ARRAY['completed','completed','completed','failed','aborted'])[1 + g % 5],
                now() - make_interval(secs => g * 600), now() - make_interval(secs => g * 600 - 3000),
                $4, now() - make_interval(secs => g * 600)
         FROM generate_series(1, $5::int8) AS g",
        &[&org, &freezer, &sequencer, &admin.id, &HISTORY_RUNS],
    )
    .await?;
    db.execute(
        "INSERT INTO readings (organization_id, instrument_id, metric, value, unit, recorded_at)
         SELECT $1, $2, 'temperature', -80 + 2 * sin(g / 360.0) + random(), 'C', now() - make_interval(secs => g * 10)
         FROM generate_series(0, $3::int8 - 1) AS g",
        &[&org, &freezer, &WEEK_READINGS],
    )
    .await?;
    db.batch_execute("ANALYZE runs; ANALYZE readings").await?;
    let run: uuid::Uuid = db
        .query_one(
            "SELECT id FROM runs WHERE organization_id = $1 AND instrument_id = $2 AND status = 'completed' \
             ORDER BY created_at DESC LIMIT 1",
            &[&org, &sequencer],
        )
        .await?
        .get(0);
    let lines = blackbox::web::run_script(
        app,
        "measure.mjs",
        &[
            ("EMAIL", admin.email.clone()),
            ("PASSWORD", admin.password.clone()),
            ("INSTRUMENT_ID", freezer.to_string()),
            ("RUN_ID", run.to_string()),
            ("UPLOAD_MB", UPLOAD_MB.to_string()),
        ],
        std::time::Duration::from_secs(900),
    )
    .await?;
    let timing = |name: &str| {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix("timing "))
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| "?".to_owned())
    };
    println!("\n## The pages over a lab's history (workerd, Chromium)\n");
    println!("| what | figure |\n|---|---:|");
    println!(
        "| the run history with {HISTORY_RUNS} runs: a fresh load to its first page, interactive | {} ms |",
        timing("runs-history-ms")
    );
    println!("| its next page | {} ms |", timing("runs-next-page-ms"));
    println!(
        "| an instrument's page, fresh load to its chart | {} ms |",
        timing("instrument-page-ms")
    );
    println!(
        "| \"Last 7 days\" to the chart of {WEEK_READINGS} readings | {} ms |",
        timing("instrument-week-ms")
    );
    println!(
        "| a {UPLOAD_MB} MB data file uploaded through the page (SHA-256 in the browser, 5 MiB chunks into object storage) | {} ms, {} MB/s |",
        timing("upload-ms"),
        timing("upload-mb-per-s")
    );
    Ok(())
}
