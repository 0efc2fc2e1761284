//! `GET /api/audit/export` (`audit:view`): the organization's audit events
//! matching the filters of `/api/audit/events`, oldest first, as JSON Lines
//! (`format=jsonl`, default) or CSV (`format=csv`), with every field the
//! hash chain covers. The manifest (range, count, the chain's head, the
//! file's SHA-256, signed) comes in the `Antevus-Manifest` header (base64url
//! JSON); `antevus-audit verify-export` checks a file against it offline.
//! One export holds at most [`MAX_EVENTS`] events; a `truncated` manifest
//! continues with `after=<lastSequence>`. Every export is audited.

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, header};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::audit::export::{self, ExportedEvent, Format, Manifest};
use crate::audit::query::AuditQuery;
use crate::audit::{self, EventType, verify};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::{Reply, header_value};
use crate::error::{ApiError, FieldError};
use crate::model::audit_event;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => export,
}

/// Most events in one export (the file is built in memory).
pub const MAX_EVENTS: i64 = 20_000;
/// Events fetched per query at most.
const PAGE: i64 = 1_000;
/// About the most bytes of events one export holds (as [`weight`] counts
/// them), whatever they hold; past that it is `truncated` and continues
/// with `after`.
const MAX_BYTES: usize = 24 * 1024 * 1024;

/// About what an event weighs, as the page query counts it: its values,
/// metadata and action as text, and a kilobyte for the rest.
fn weight(event: &ExportedEvent) -> usize {
    let text = |v: &Option<serde_json::Value>| v.as_ref().map_or(0, |v| v.to_string().len());
    text(&event.old_values)
        + text(&event.new_values)
        + event.metadata.to_string().len()
        + event.action.len()
        + 1024
}

const MANIFEST_HEADER: HeaderName = HeaderName::from_static("antevus-manifest");

async fn export<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::AuditView)?;
    let query: AuditQuery = rq.query()?;
    let mut problems = Vec::new();
    let filters = query.filters(&mut problems);
    let format = match query.format.as_deref() {
        None => Format::Jsonl,
        Some(raw) => Format::parse(raw).unwrap_or_else(|| {
            problems.push(FieldError::new("format", "Must be one of: jsonl, csv"));
            Format::Jsonl
        }),
    };
    let after = match query.after.as_deref().map(str::parse::<i64>) {
        None => 0,
        Some(Ok(n)) if n >= 0 => n,
        Some(_) => {
            problems.push(FieldError::new("after", "Must be a sequence number"));
            0
        }
    };
    for (field, given) in [("limit", &query.limit), ("cursor", &query.cursor)] {
        if given.is_some() {
            problems.push(FieldError::new(
                field,
                "Only for /api/audit/events; exports continue with after",
            ));
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let key = rq.audit_key()?;
    let scope = principal.scope();
    let chain_id = scope.organization_id();
    let db = ctx.db();
    // The head first: every exported event is at or before it.
    let head = audit_event::head(&db, &scope).await?;
    let mut events: Vec<ExportedEvent> = Vec::new();
    let mut position = after;
    let mut truncated = false;
    let mut bytes = 0;
    loop {
        if bytes >= MAX_BYTES {
            // As much as one export holds: truncated if more is left.
            let more: Vec<ExportedEvent> =
                audit_event::export_page(&db, &scope, &filters, position, 1, 1).await?;
            truncated = !more.is_empty();
            break;
        }
        let take = PAGE.min(MAX_EVENTS + 1 - events.len() as i64);
        let rows: Vec<ExportedEvent> =
            audit_event::export_page(&db, &scope, &filters, position, take, verify::PAGE_BYTES)
                .await?;
        let fetched = rows.len();
        bytes += rows.iter().map(weight).sum::<usize>();
        events.extend(rows);
        if events.len() as i64 > MAX_EVENTS {
            events.truncate(MAX_EVENTS as usize);
            truncated = true;
            break;
        }
        match events.last() {
            Some(last) if fetched > 0 => position = last.sequence,
            _ => break,
        }
    }
    let body = export::render(format, &events).map_err(ApiError::internal)?;
    let now = ctx.now();
    let mut manifest = Manifest {
        version: export::MANIFEST_VERSION.to_owned(),
        chain_id,
        format,
        filters: filters.describe(),
        count: events.len() as u64,
        first_sequence: events.first().map(|e| e.sequence),
        last_sequence: events.last().map(|e| e.sequence),
        truncated,
        head_sequence: head.as_ref().map_or(0, |h| h.sequence),
        head_hash: head.map(|h| h.hash),
        exported_at: now.format(&Rfc3339).map_err(ApiError::internal)?,
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body)),
        keys: Vec::new(),
        key_id: String::new(),
        signature: String::new(),
    };
    manifest.sign(key, ctx.config.audit_keys()?, &export::signers(&events));
    let manifest_json = serde_json::to_vec(&manifest).map_err(ApiError::internal)?;

    // The export itself is on the record.
    let event = audit::Event {
        new_values: Some(json!({
            "format": format,
            "filters": manifest.filters,
            "count": manifest.count,
            "firstSequence": manifest.first_sequence,
            "lastSequence": manifest.last_sequence,
            "sha256": manifest.sha256,
        })),
        record_type: None,
        record_id: None,
        ..audit::Event::by(
            ctx.new_uuid(),
            &principal,
            EventType::AuditExported,
            chain_id,
        )
    };
    scope.batch(&db, vec![event.insert(rq)?]).await?;

    let filename = format!(
        "audit-{chain_id}-{}.{}",
        now.unix_timestamp(),
        format.extension()
    );
    Ok(Reply::raw(StatusCode::OK, Bytes::from(body))
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        )
        .header(
            header::CONTENT_DISPOSITION,
            header_value(&format!("attachment; filename=\"{filename}\""))?,
        )
        .header(
            MANIFEST_HEADER,
            header_value(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(manifest_json))?,
        ))
}
