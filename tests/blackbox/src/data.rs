//! Cases for run data (upload, resume, download, both storage backends)
//! and the QC report computed from parsed results.

use anyhow::{Context as _, ensure};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use shared::auth::Role;

use crate::client::{Raw, TestApp};
use crate::lab::{count, id_of};
use crate::runs::started_run;
use crate::stack::{INLINE_MAX_BYTES, S3_PART_BYTES};
use uuid::Uuid;

crate::cases![
    run_data_upload_parses_results_and_downloads_with_etag_and_ranges,
    run_data_resumes_chunked_uploads_and_refuses_bad_chunks,
    a_large_download_from_postgres_is_streamed_a_window_at_a_time,
    run_data_digests_formats_and_bad_input_change_nothing,
    run_data_permissions_and_organization_isolation,
    run_data_larger_than_the_inline_size_goes_to_object_storage,
    qc_report_checks_results_against_the_instruments_thresholds,
];

const PLATE_CSV: &[u8] = include_bytes!("../samples/plate_reader_elisa.csv");
const QPCR_CSV: &[u8] = include_bytes!("../samples/qpcr_gapdh_ct.csv");

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn digest_header(bytes: &[u8]) -> String {
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
    )
}

/// Bytes that do not compress or repeat.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

async fn upload(
    app: &TestApp,
    token: &str,
    run_id: &Uuid,
    query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<Raw> {
    app.as_user(token)
        .headers(headers)
        .raw(
            Method::POST,
            &format!("/api/v1/runs/{run_id}/data{query}"),
            Some(body.to_vec()),
        )
        .await
}

/// Sends `bytes[first..end]` as one chunk of a `total`-byte file.
async fn chunk(
    app: &TestApp,
    token: &str,
    run_id: &Uuid,
    file: &[u8],
    first: usize,
    end: usize,
) -> anyhow::Result<Raw> {
    let range = format!("bytes {first}-{}/{}", end - 1, file.len());
    upload(
        app,
        token,
        run_id,
        "?filename=trace.bin",
        &[("content-range", &range)],
        &file[first..end],
    )
    .await
}

async fn download(
    app: &TestApp,
    token: &str,
    run_id: &Uuid,
    headers: &[(&str, &str)],
) -> anyhow::Result<Raw> {
    app.as_user(token)
        .headers(headers)
        .raw(Method::GET, &format!("/api/v1/runs/{run_id}/data"), None)
        .await
}

async fn events(app: &TestApp, run_id: &Uuid, event_type: &str) -> anyhow::Result<i64> {
    let db = app.db().await?;
    Ok(db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE record_id = $1 AND event_type = $2",
            &[run_id, &event_type],
        )
        .await?
        .get(0))
}

async fn run_data_upload_parses_results_and_downloads_with_etag_and_ranges(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (admin, manager) = app.admin().await?;
    let (_, scientist) = app.member(admin.organization_id, Role::Scientist).await?;
    let (_, run) = started_run(app, &manager, &scientist, "plate_reader").await?;
    let run_id = id_of(&run)?;
    let sha = sha256_hex(PLATE_CSV);

    let created = upload(
        app,
        &scientist,
        &run_id,
        "?filename=elisa%20plate%201.csv&format=plate_reader_csv",
        &[("content-type", "text/csv")],
        PLATE_CSV,
    )
    .await?
    .envelope()?;
    let data = created.expect_ok(201)?;
    ensure!(data["sha256"] == sha.as_str(), "{data}");
    ensure!(data["sizeBytes"] == PLATE_CSV.len(), "{data}");
    ensure!(data["backend"] == "postgres", "{data}");
    ensure!(data["filename"] == "elisa plate 1.csv", "{data}");
    ensure!(data["format"] == "plate_reader_csv", "{data}");
    ensure!(
        data["results"]["metrics"]["zPrime"].as_f64().is_some(),
        "results parsed: {data}"
    );
    ensure!(
        created.headers.get("etag").and_then(|v| v.to_str().ok()) == Some(&format!("\"{sha}\"")),
        "ETag on upload"
    );
    // The run shows its results and its file.
    let shown = app
        .as_user(&scientist)
        .get(&format!("/api/v1/runs/{run_id}"))
        .await?;
    let shown = shown.expect_ok(200)?;
    ensure!(
        shown["results"]["wells"].as_array().map(Vec::len) == Some(15),
        "{shown}"
    );
    ensure!(shown["data"]["status"] == "complete", "{shown}");
    ensure!(shown["data"]["sha256"] == sha.as_str(), "{shown}");
    ensure!(events(app, &run_id, "RUN_DATA_UPLOADED").await? == 1);
    ensure!(events(app, &run_id, "RUN_RESULTS_RECORDED").await? == 1);

    // Whole download.
    let whole = download(app, &scientist, &run_id, &[]).await?;
    ensure!(whole.status == 200, "{}", whole.status);
    ensure!(whole.body == PLATE_CSV, "{}", whole.status);
    let etag = format!("\"{sha}\"");
    ensure!(whole.header("etag") == Some(etag.as_str()));
    ensure!(whole.header("content-type") == Some("text/csv"));
    ensure!(whole.header("accept-ranges") == Some("bytes"));
    ensure!(whole.header("repr-digest") == Some(digest_header(PLATE_CSV).as_str()));
    ensure!(
        whole
            .header("content-disposition")
            .is_some_and(|d| d.contains("filename*=UTF-8''elisa%20plate%201%2Ecsv")),
        "{:?}",
        whole.header("content-disposition")
    );

    // Ranges.
    let size = PLATE_CSV.len();
    let part = download(app, &scientist, &run_id, &[("range", "bytes=10-29")]).await?;
    ensure!(part.status == 206, "{}", part.status);
    ensure!(part.body == PLATE_CSV[10..30], "{}", part.status);
    ensure!(part.header("content-range") == Some(format!("bytes 10-29/{size}").as_str()));
    let tail = download(app, &scientist, &run_id, &[("range", "bytes=-7")]).await?;
    ensure!(tail.status == 206);
    ensure!(tail.body == PLATE_CSV[size - 7..]);
    let open = download(app, &scientist, &run_id, &[("range", "bytes=100-")]).await?;
    ensure!(open.status == 206);
    ensure!(open.body == PLATE_CSV[100..]);
    // If-Range with another representation's tag: the whole file.
    let stale = download(
        app,
        &scientist,
        &run_id,
        &[("range", "bytes=0-9"), ("if-range", "\"0000\"")],
    )
    .await?;
    ensure!(stale.status == 200);
    ensure!(stale.body == PLATE_CSV);
    let fresh = download(
        app,
        &scientist,
        &run_id,
        &[("range", "bytes=0-9"), ("if-range", &etag)],
    )
    .await?;
    ensure!(fresh.status == 206);
    ensure!(fresh.body == PLATE_CSV[..10]);
    let beyond = download(
        app,
        &scientist,
        &run_id,
        &[("range", &format!("bytes={size}-"))],
    )
    .await?;
    ensure!(beyond.header("content-range") == Some(format!("bytes */{size}").as_str()));
    beyond
        .envelope()?
        .expect_error(416, "RANGE_NOT_SATISFIABLE")?;
    let unchanged = download(app, &scientist, &run_id, &[("if-none-match", &etag)]).await?;
    ensure!(unchanged.status == 304);
    ensure!(unchanged.body.is_empty());

    // Recorded data is never replaced.
    upload(app, &scientist, &run_id, "", &[], b"other bytes")
        .await?
        .envelope()?
        .expect_error(409, "CONFLICT")?;
    let again = download(app, &scientist, &run_id, &[]).await?;
    ensure!(again.body == PLATE_CSV);
    ensure!(events(app, &run_id, "RUN_DATA_UPLOADED").await? == 1);
    Ok(())
}

async fn run_data_resumes_chunked_uploads_and_refuses_bad_chunks(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (admin, manager) = app.admin().await?;
    let (_, technician) = app.member(admin.organization_id, Role::Technician).await?;
    let (_, run) = started_run(app, &manager, &technician, "mass_spectrometer").await?;
    let run_id = id_of(&run)?;
    let file = noise(300_000, 7);

    // Nothing to resume yet.
    let early = chunk(app, &technician, &run_id, &file, 100_000, 200_000).await?;
    ensure!(early.header("upload-offset") == Some("0"));
    early.envelope()?.expect_error(409, "CONFLICT")?;

    let first = chunk(app, &technician, &run_id, &file, 0, 100_000).await?;
    ensure!(first.header("upload-offset") == Some("100000"));
    let progress = first.envelope()?;
    let progress = progress.expect_ok(202)?;
    ensure!(progress["receivedBytes"] == 100_000, "{progress}");
    ensure!(progress["totalBytes"] == 300_000, "{progress}");
    ensure!(
        progress["chunkBytes"]
            .as_u64()
            .is_some_and(|c| c >= 1 << 20),
        "{progress}"
    );
    // A gap is refused with the offset to continue from.
    let gap = chunk(app, &technician, &run_id, &file, 200_000, 300_000).await?;
    ensure!(gap.header("upload-offset") == Some("100000"));
    gap.envelope()?.expect_error(409, "CONFLICT")?;
    // Not downloadable while incomplete; the run shows the progress.
    let pending = download(app, &manager, &run_id, &[]).await?;
    ensure!(pending.header("upload-offset") == Some("100000"));
    pending.envelope()?.expect_error(409, "CONFLICT")?;
    let shown = app
        .as_user(&technician)
        .get(&format!("/api/v1/runs/{run_id}"))
        .await?;
    ensure!(shown.expect_ok(200)?["data"]["receivedBytes"] == 100_000);

    // Starting over at byte 0 drops what was sent.
    chunk(app, &technician, &run_id, &file, 0, 150_000)
        .await?
        .envelope()?
        .expect_ok(202)?;
    // A chunk whose Content-Digest does not match its body changes nothing.
    let range = format!("bytes 150000-199999/{}", file.len());
    let corrupt = upload(
        app,
        &technician,
        &run_id,
        "",
        &[
            ("content-range", &range),
            ("content-digest", &digest_header(b"something else")),
        ],
        &file[150_000..200_000],
    )
    .await?
    .envelope()?;
    corrupt.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(corrupt.detail_fields() == ["Content-Digest"]);
    let with_digest = upload(
        app,
        &technician,
        &run_id,
        "",
        &[
            ("content-range", &range),
            ("content-digest", &digest_header(&file[150_000..200_000])),
        ],
        &file[150_000..200_000],
    )
    .await?;
    with_digest.envelope()?.expect_ok(202)?;
    // The last chunk completes it, with the digest of the whole file.
    let last = chunk(app, &technician, &run_id, &file, 200_000, 300_000).await?;
    let done = last.envelope()?;
    let done = done.expect_ok(201)?;
    ensure!(done["sha256"] == sha256_hex(&file).as_str(), "{done}");
    ensure!(done["sizeBytes"] == 300_000, "{done}");
    let stored = count(
        app,
        "SELECT count(*) FROM run_data_chunks WHERE run_id = $1",
        &run_id,
    )
    .await?;
    ensure!(
        stored == 3,
        "three chunks kept, the dropped one gone: {stored}"
    );
    let whole = download(app, &manager, &run_id, &[]).await?;
    ensure!(whole.status == 200);
    ensure!(whole.body == file);
    // A range across chunk boundaries.
    let across = download(app, &manager, &run_id, &[("range", "bytes=149990-200009")]).await?;
    ensure!(across.status == 206);
    ensure!(across.body == file[149_990..200_010]);
    Ok(())
}

/// A file kept in PostgreSQL and larger than one read window (4 MiB)
/// streams (chunked, no length), whole and in ranges; one window's worth
/// goes whole, with its length.
async fn a_large_download_from_postgres_is_streamed_a_window_at_a_time(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (admin, manager) = app.admin().await?;
    let (_, technician) = app.member(admin.organization_id, Role::Technician).await?;
    let (_, run) = started_run(app, &manager, &technician, "mass_spectrometer").await?;
    let run_id = id_of(&run)?;
    // Files up to 8 MiB stay in PostgreSQL on this host.
    let host = app
        .host_with(&[("RUN_DATA_INLINE_MAX_BYTES", &(8 << 20).to_string())])
        .await?;
    let base = host.base_url.clone();
    let url = format!("{base}/api/v1/runs/{run_id}/data");
    let result = async {
        let file = noise(6 << 20, 11);
        let mut done = Value::Null;
        for first in (0..file.len()).step_by(2 << 20) {
            let end = file.len().min(first + (2 << 20));
            let answer = app
                .http
                .post(format!("{url}?filename=trace.bin"))
                .bearer_auth(&technician)
                .header(
                    "content-range",
                    format!("bytes {first}-{}/{}", end - 1, file.len()),
                )
                .body(file[first..end].to_vec())
                .send()
                .await?;
            done = answer.json().await?;
        }
        ensure!(done["data"]["backend"] == "postgres", "{done}");
        let get = |range: Option<String>| {
            let mut request = app.http.get(&url).bearer_auth(&manager);
            if let Some(range) = range {
                request = request.header("range", range);
            }
            async move {
                let answer = request.send().await?;
                let length = answer
                    .headers()
                    .get("content-length")
                    .map(|v| v.to_str().unwrap_or("?").to_owned());
                anyhow::Ok((
                    answer.status().as_u16(),
                    length,
                    answer.bytes().await?.to_vec(),
                ))
            }
        };
        let (status, length, body) = get(None).await?;
        ensure!(
            status == 200 && length.is_none(),
            "{status}, length {length:?}: not streamed"
        );
        ensure!(body == file, "{} bytes", body.len());
        // A range over two windows streams; a small one comes whole.
        // 4.5 MiB: more than one window.
        let (from, to) = (1 << 20, (11 << 19) + 17);
        let (status, length, body) = get(Some(format!("bytes={from}-{to}"))).await?;
        ensure!(
            status == 206 && length.is_none(),
            "{status}, length {length:?}"
        );
        ensure!(body == file[from..=to]);
        let (status, length, body) = get(Some("bytes=4194000-4195000".to_owned())).await?;
        ensure!(
            status == 206 && length.as_deref() == Some("1001"),
            "{status}, length {length:?}"
        );
        ensure!(body == file[4_194_000..=4_195_000]);
        anyhow::Ok(())
    }
    .await;
    tokio::task::spawn_blocking(move || host.stop()).await?;
    result
}

/// A refused upload: query, headers, body, and the status, error code and
/// detail field expected.
type BadUpload<'a> = (
    &'a str,
    Vec<(&'a str, String)>,
    Vec<u8>,
    u16,
    &'a str,
    &'a str,
);

async fn run_data_digests_formats_and_bad_input_change_nothing(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (_, manager) = app.admin().await?;
    let (_, run) = started_run(app, &manager, &manager, "qpcr").await?;
    let run_id = id_of(&run)?;
    let nothing_stored = || async {
        count(
            app,
            "SELECT count(*) FROM run_data WHERE run_id = $1",
            &run_id,
        )
        .await
    };

    let bad: Vec<BadUpload> = vec![
        ("", vec![], Vec::new(), 400, "VALIDATION_ERROR", "body"),
        (
            "",
            vec![("content-range", "bytes 0-3/2".into())],
            b"abcd".to_vec(),
            400,
            "VALIDATION_ERROR",
            "Content-Range",
        ),
        (
            "",
            vec![("content-range", "bytes 0-9/20".into())],
            b"abcd".to_vec(),
            400,
            "VALIDATION_ERROR",
            "Content-Range",
        ),
        (
            "?format=plate_reader_csv",
            vec![],
            PLATE_CSV.to_vec(),
            400,
            "VALIDATION_ERROR",
            "format",
        ),
        (
            "?format=fastq",
            vec![],
            QPCR_CSV.to_vec(),
            400,
            "VALIDATION_ERROR",
            "format",
        ),
        (
            "?filename=..%2Fetc%2Fpasswd",
            vec![],
            QPCR_CSV.to_vec(),
            400,
            "VALIDATION_ERROR",
            "filename",
        ),
        (
            "?colour=blue",
            vec![],
            QPCR_CSV.to_vec(),
            400,
            "VALIDATION_ERROR",
            "colour",
        ),
        (
            "",
            vec![("repr-digest", "sha-256=:bm90IGEgZGlnZXN0:".into())],
            QPCR_CSV.to_vec(),
            400,
            "VALIDATION_ERROR",
            "Repr-Digest",
        ),
        (
            "",
            vec![("repr-digest", digest_header(b"another file"))],
            QPCR_CSV.to_vec(),
            400,
            "VALIDATION_ERROR",
            "Repr-Digest",
        ),
        (
            "?format=qpcr_ct_csv",
            vec![],
            b"Well,Sample,Target,Content,Ct\nA1,S,G,Unkn,twenty\n".to_vec(),
            400,
            "VALIDATION_ERROR",
            "body",
        ),
        // Over one request's cap (the S3 part size here, the largest chunk).
        (
            "",
            vec![],
            vec![b'x'; S3_PART_BYTES + 1],
            413,
            "PAYLOAD_TOO_LARGE",
            "",
        ),
    ];
    for (query, headers, body, status, code, field) in bad {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = upload(app, &manager, &run_id, query, &headers, &body)
            .await?
            .envelope()?;
        resp.expect_error(status, code)
            .with_context(|| format!("{query} {headers:?}"))?;
        if !field.is_empty() {
            ensure!(
                resp.detail_fields().iter().any(|f| f == field),
                "{query}: {}",
                resp.json
            );
        }
        ensure!(nothing_stored().await? == 0, "{query} stored something");
    }
    // The parse error names the line.
    let unparsable = upload(
        app,
        &manager,
        &run_id,
        "?format=qpcr_ct_csv",
        &[],
        b"Well,Sample,Target,Content,Ct\nA1,S,G,Unkn,20.1\nA2,S,G,Unkn,twenty\n",
    )
    .await?
    .envelope()?;
    ensure!(
        unparsable.json["error"]["details"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("line 3")),
        "{}",
        unparsable.json
    );
    // A chunked upload whose whole-file digest proves wrong is discarded.
    let file = noise(50_000, 11);
    let range = format!("bytes 0-24999/{}", file.len());
    upload(
        app,
        &manager,
        &run_id,
        "",
        &[
            ("content-range", &range),
            ("repr-digest", &digest_header(b"not this file")),
        ],
        &file[..25_000],
    )
    .await?
    .envelope()?
    .expect_ok(202)?;
    let range = format!("bytes 25000-49999/{}", file.len());
    let mut tampered = file[25_000..].to_vec();
    tampered[0] ^= 1;
    upload(
        app,
        &manager,
        &run_id,
        "",
        &[("content-range", &range)],
        &tampered,
    )
    .await?
    .envelope()?
    .expect_error(400, "VALIDATION_ERROR")?;
    ensure!(nothing_stored().await? == 0, "a wrong file was kept");
    // The right file with its digest is kept, parsed.
    let good = upload(
        app,
        &manager,
        &run_id,
        "?format=qpcr_ct_csv&filename=gapdh.csv",
        &[("repr-digest", &digest_header(QPCR_CSV))],
        QPCR_CSV,
    )
    .await?
    .envelope()?;
    let good = good.expect_ok(201)?;
    ensure!(
        good["results"]["metrics"]["replicateCtSd"]
            .as_f64()
            .is_some(),
        "{good}"
    );
    // Unknown runs are 404.
    let missing = upload(
        app,
        &manager,
        &Uuid::parse_str("00000000-0000-4000-8000-000000000000")?,
        "",
        &[],
        QPCR_CSV,
    )
    .await?
    .envelope()?;
    missing.expect_error(404, "RESOURCE_NOT_FOUND")?;
    Ok(())
}

async fn run_data_permissions_and_organization_isolation(app: &TestApp) -> anyhow::Result<()> {
    let (admin, manager) = app.admin().await?;
    let (_, run) = started_run(app, &manager, &manager, "hplc").await?;
    let run_id = id_of(&run)?;
    let org = admin.organization_id;
    let (_, viewer) = app.member(org, Role::Viewer).await?;
    let (_, collaborator) = app.member(org, Role::Collaborator).await?;
    // Uploading needs runs:create.
    for token in [&viewer, &collaborator] {
        upload(app, token, &run_id, "", &[], b"trace")
            .await?
            .envelope()?
            .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    }
    upload(
        app,
        &manager,
        &run_id,
        "?filename=trace.txt",
        &[("content-type", "text/plain")],
        b"trace",
    )
    .await?
    .envelope()?
    .expect_ok(201)?;
    // Downloading needs data:export.
    download(app, &viewer, &run_id, &[])
        .await?
        .envelope()?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    let got = download(app, &collaborator, &run_id, &[]).await?;
    ensure!(got.status == 200);
    ensure!(got.body == b"trace");
    download(app, "not-a-token", &run_id, &[])
        .await?
        .envelope()?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    // Another organization sees nothing and changes nothing.
    let outsider = app.new_org_user(Role::Admin).await?;
    let outsider = app.login(&outsider).await?;
    download(app, &outsider, &run_id, &[])
        .await?
        .envelope()?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    upload(app, &outsider, &run_id, "", &[], b"intruder")
        .await?
        .envelope()?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    app.as_user(&outsider)
        .get(&format!("/api/v1/runs/{run_id}/qc"))
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    let again = download(app, &manager, &run_id, &[]).await?;
    ensure!(again.body == b"trace");
    Ok(())
}

async fn run_data_larger_than_the_inline_size_goes_to_object_storage(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (_, manager) = app.admin().await?;
    let (_, run) = started_run(app, &manager, &manager, "dna_sequencer").await?;
    let run_id = id_of(&run)?;
    let file = noise(S3_PART_BYTES + 300_000, 23);
    ensure!(file.len() > INLINE_MAX_BYTES);

    // Every chunk but the last must be at least S3's minimum part.
    let small = chunk(app, &manager, &run_id, &file, 0, 1 << 20).await?;
    // It says which sizes would do, for a client that does not know the
    // backend (the web app starts with 2 MiB and adjusts).
    let limit = small.header("upload-limit").map(str::to_owned);
    small.envelope()?.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(
        limit
            == Some(format!(
                "min-append-size={}, max-append-size={S3_PART_BYTES}",
                5 << 20
            )),
        "{limit:?}"
    );

    let first = chunk(app, &manager, &run_id, &file, 0, S3_PART_BYTES).await?;
    let first = first.envelope()?;
    let progress = first.expect_ok(202)?;
    ensure!(progress["backend"] == "s3", "{progress}");
    ensure!(progress["chunkBytes"] == S3_PART_BYTES, "{progress}");
    let last = chunk(app, &manager, &run_id, &file, S3_PART_BYTES, file.len()).await?;
    let last = last.envelope()?;
    let done = last.expect_ok(201)?;
    ensure!(done["backend"] == "s3", "{done}");
    ensure!(done["sha256"] == sha256_hex(&file).as_str(), "{done}");
    // No bytes in PostgreSQL: parts only.
    let in_db = count(
        app,
        "SELECT count(*) FROM run_data_chunks WHERE run_id = $1 AND data IS NOT NULL",
        &run_id,
    )
    .await?;
    ensure!(in_db == 0, "{in_db} chunks with bytes in PostgreSQL");

    // Download: a redirect to a presigned URL that serves the exact bytes.
    let redirect = download(app, &manager, &run_id, &[]).await?;
    ensure!(redirect.status == 302, "{}", redirect.status);
    let location = redirect.header("location").context("Location")?.to_owned();
    ensure!(location.contains("X-Amz-Signature="), "{location}");
    ensure!(location.contains("X-Amz-Expires=300"), "{location}");
    let fetched = reqwest::get(&location).await?;
    ensure!(fetched.status() == 200);
    ensure!(
        fetched.bytes().await?.as_ref() == file.as_slice(),
        "object bytes differ"
    );
    // Ranges are served by the store itself.
    let ranged = reqwest::Client::new()
        .get(&location)
        .header("range", "bytes=5242870-5242889")
        .send()
        .await?;
    ensure!(ranged.status() == 206);
    ensure!(ranged.bytes().await?.as_ref() == &file[5_242_870..5_242_890]);
    // Or the URL itself, for web clients.
    let as_json = app
        .as_user(&manager)
        .get(&format!("/api/v1/runs/{run_id}/data?redirect=false"))
        .await?;
    let as_json = as_json.expect_ok(200)?;
    ensure!(
        as_json["url"]
            .as_str()
            .is_some_and(|u| u.contains("X-Amz-Signature=")),
        "{as_json}"
    );
    ensure!(as_json["sha256"] == sha256_hex(&file).as_str(), "{as_json}");
    // Or its bytes through the API, streamed from the store as they come
    // (for a client that cannot reach the store), whole or a range.
    let through = app
        .as_user(&manager)
        .raw(
            Method::GET,
            &format!("/api/v1/runs/{run_id}/data?via=api"),
            None,
        )
        .await?;
    ensure!(through.status == 200, "{}", through.status);
    ensure!(through.header("content-length").is_none(), "streamed");
    ensure!(through.header("repr-digest").is_some());
    ensure!(
        through.body == file,
        "{} bytes through the API",
        through.body.len()
    );
    let part = app
        .as_user(&manager)
        .headers(&[("range", "bytes=5242870-5242889")])
        .raw(
            Method::GET,
            &format!("/api/v1/runs/{run_id}/data?via=api"),
            None,
        )
        .await?;
    ensure!(part.status == 206, "{}", part.status);
    ensure!(
        part.header("content-range")
            == Some(format!("bytes 5242870-5242889/{}", file.len()).as_str())
    );
    ensure!(part.body == file[5_242_870..5_242_890]);
    app.as_user(&manager)
        .get(&format!("/api/v1/runs/{run_id}/data?via=cdn"))
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    Ok(())
}

async fn qc_report_checks_results_against_the_instruments_thresholds(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (admin, manager) = app.admin().await?;
    let (_, viewer) = app.member(admin.organization_id, Role::Viewer).await?;
    let (_, run) = started_run(app, &manager, &manager, "plate_reader").await?;
    let run_id = id_of(&run)?;
    let path = format!("/api/v1/runs/{run_id}/qc");

    // Before results: every check is not available.
    let empty = app.as_user(&viewer).get(&path).await?;
    let empty = empty.expect_ok(200)?;
    ensure!(empty["dataQuality"] == "not_available", "{empty}");
    ensure!(
        empty["checks"]
            .as_array()
            .is_some_and(|c| c.len() == 3 && c.iter().all(|c| c["result"] == "not_available")),
        "{empty}"
    );

    upload(
        app,
        &manager,
        &run_id,
        "?format=plate_reader_csv",
        &[],
        PLATE_CSV,
    )
    .await?
    .envelope()?
    .expect_ok(201)?;
    let report = app.as_user(&viewer).get(&path).await?;
    let report = report.expect_ok(200)?.clone();
    let check = |metric: &str| -> Value {
        report["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["metric"] == metric))
            .cloned()
            .unwrap_or(Value::Null)
    };
    ensure!(report["dataQuality"] == "excellent", "{report}");
    let z = check("zPrime");
    ensure!(z["result"] == "pass", "{z}");
    ensure!(z["value"].as_f64().is_some_and(|v| v > 0.8), "{z}");

    // Stricter thresholds in the instrument's configuration change the verdict.
    let instrument_id = run["instrumentId"].as_str().context("instrumentId")?;
    let resp = app.as_user(&manager).put(&format!("/api/v1/instruments/{instrument_id}"), &json!({"version": 1, "configuration": {"qcThresholds": {"zPrime": {"warn": 0.995, "fail": 0.99}}}}))
        .await?;
    resp.expect_ok(200)?;
    let strict = app.as_user(&viewer).get(&path).await?;
    let strict = strict.expect_ok(200)?;
    ensure!(strict["dataQuality"] == "poor", "{strict}");

    // Results that fail a check publish qc.failed, with the delivery to a
    // subscribed endpoint queued in the same transaction; results that
    // pass publish nothing.
    let hook = app
        .as_user(&manager)
        .post(
            "/api/v1/webhooks",
            &json!({"url": "https://hooks.example.com/qc", "events": ["qc.failed"]}),
        )
        .await?;
    let hook_id = id_of(hook.expect_ok(201)?)?;
    let db = app.db().await?;
    let published = |run: uuid::Uuid| {
        let db = &db;
        async move {
            let rows = db
                .query(
                    "SELECT e.data, d.webhook_id, d.payload FROM events e \
                       LEFT JOIN webhook_deliveries d ON d.event_id = e.id \
                      WHERE e.event_type = 'qc.failed' AND e.data ->> 'runId' = $1",
                    &[&run.to_string()],
                )
                .await?;
            anyhow::Ok(
                rows.iter()
                    .map(|r| {
                        (
                            r.get::<_, Value>(0),
                            r.get::<_, Option<uuid::Uuid>>(1),
                            r.get::<_, Option<Value>>(2),
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        }
    };
    ensure!(
        published(run_id).await?.is_empty(),
        "a run that passed published qc.failed"
    );
    let (_, failing) = started_run(app, &manager, &manager, "plate_reader").await?;
    let failing_id = id_of(&failing)?;
    let failing_instrument = failing["instrumentId"].as_str().context("instrumentId")?;
    app.as_user(&manager)
        .put(
            &format!("/api/v1/instruments/{failing_instrument}"),
            &json!({"version": 1, "configuration": {"qcThresholds": {"zPrime": {"warn": 0.995, "fail": 0.99}}}}),
        )
        .await?
        .expect_ok(200)?;
    upload(
        app,
        &manager,
        &failing_id,
        "?format=plate_reader_csv",
        &[],
        PLATE_CSV,
    )
    .await?
    .envelope()?
    .expect_ok(201)?;
    let events = published(failing_id).await?;
    ensure!(events.len() == 1, "{events:?}");
    let (data, webhook, payload) = &events[0];
    ensure!(
        data["dataQuality"] == "poor"
            && data["failedChecks"] == json!(["zPrime"])
            && data["instrumentId"] == failing_instrument,
        "{data}"
    );
    ensure!(
        *webhook == Some(hook_id)
            && payload
                .as_ref()
                .is_some_and(|p| p["type"] == "qc.failed" && p["data"] == *data),
        "no delivery queued: {events:?}"
    );

    // A qPCR run's report uses its own metrics.
    let (_, qpcr) = started_run(app, &manager, &manager, "qpcr").await?;
    let qpcr_id = id_of(&qpcr)?;
    upload(
        app,
        &manager,
        &qpcr_id,
        "?format=qpcr_ct_csv",
        &[],
        QPCR_CSV,
    )
    .await?
    .envelope()?
    .expect_ok(201)?;
    let q = app
        .as_user(&viewer)
        .get(&format!("/api/v1/runs/{qpcr_id}/qc"))
        .await?;
    let q = q.expect_ok(200)?;
    let names: Vec<&str> = q["checks"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["metric"].as_str()).collect())
        .unwrap_or_default();
    ensure!(
        names == ["ntcMinCt", "replicateCtSd", "efficiencyDeviationPercent"],
        "{q}"
    );
    ensure!(q["dataQuality"] == "excellent", "{q}");
    // Guests may not read runs.
    let (_, guest) = app.member(admin.organization_id, Role::Guest).await?;
    app.as_user(&guest)
        .get(&path)
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    Ok(())
}
