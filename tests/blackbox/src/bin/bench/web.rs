//! The web application's benchmark, on workerd: what a first visit
//! downloads (the initial JavaScript and CSS, gzipped as a CDN would send
//! them), how long Chromium takes from "Sign in" (and from opening the URL
//! in a cold browser) to the dashboard showing a live instrument, and the
//! delay from a reading leaving the simulator to the dashboard showing it,
//! over 200 readings (the same browser path as the `web` test cases).

use std::process::Command;

use anyhow::{Context as _, ensure};
use blackbox::TestApp;

const READINGS: usize = 200;

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
    Ok(())
}
