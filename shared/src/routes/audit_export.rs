//! `GET /api/audit/export` (`audit:view`): the organization's audit events
//! matching the filters of `/api/audit/events`, oldest first, up to the
//! chain's head when asked, with every field the hash chain covers, and a
//! signed manifest (range, count, the chain's head, the file's SHA-256,
//! the keys that signed) that `antevus-audit verify-export` checks offline.
//!
//! - JSON Lines (`format=jsonl`, the default) is streamed page by page: a
//!   function holds one page at a time, whatever the trail's size. The
//!   manifest is the file's last line (`{"manifest": {...}}`, covering the
//!   lines before it); an export that fails after it began ends with
//!   `{"error": {...}}` instead. At most [`MAX_STREAMED_EVENTS`] events.
//! - CSV (`format=csv`) is built whole, at most [`MAX_EVENTS`] events and
//!   about [`MAX_BYTES`]; its manifest is the `Antevus-Manifest` header
//!   (base64url JSON).
//!
//! A `truncated` manifest continues with `after=<lastSequence>`. Every
//! export is audited, before its first byte.

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, header};
use serde_json::json;
use sha2::Digest as _;
use time::format_description::well_known::Rfc3339;

use crate::audit::export::{self, ExportedEvent, Format, Manifest, Signers, Trailer, TrailerError};
use crate::audit::query::AuditQuery;
use crate::audit::{self, EventType, verify};
use crate::auth::{self, Permission};
use crate::body::{Body, StreamError};
use crate::config::SigningKey;
use crate::ctx::Ctx;
use crate::envelope::{Reply, header_value};
use crate::error::{ApiError, FieldError};
use crate::model::Scope;
use crate::model::audit_event::{self, Filters};
use crate::platform::Platform;
use crate::request::{Rq, log_error};

super::methods! {
    GET => export,
}

/// Most events in one CSV export (the file is built in memory).
pub const MAX_EVENTS: i64 = 20_000;
/// Most events in one streamed (JSON Lines) export: memory holds a page,
/// so this only bounds how long one request runs.
pub const MAX_STREAMED_EVENTS: i64 = 200_000;
/// Events fetched per query at most.
const PAGE: i64 = 1_000;
/// About the most bytes of events one CSV export holds (as [`weight`]
/// counts them), whatever they hold; past that it is `truncated` and
/// continues with `after`.
pub const MAX_BYTES: usize = 24 * 1024 * 1024;

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

/// Export the organization's audit trail
///
/// Requires `audit:view`. The events matching the filters of
/// `/api/audit/events`, oldest first, up to the chain's head when asked,
/// with every field the hash chain covers (each an `ExportedEvent`), and a
/// signed `Manifest` (range, count, the chain's head, the file's SHA-256,
/// the keys that signed) that `antevus-audit verify-export` checks offline.
///
/// - `format=jsonl` (the default), `application/x-ndjson`: streamed, one
///   event a line, at most 200000 events. The last line is the manifest,
///   `{"manifest": {...}}`, covering the lines before it; an export that
///   fails after it began ends with `{"error": {"code", "message",
///   "requestId"}}` instead (a `Trailer`).
/// - `format=csv`, `text/csv`: built whole, a header row then one event a
///   row (JSON fields as JSON text), at most 20000 events and about 24 MiB;
///   the manifest is the `Antevus-Manifest` header.
///
/// A `truncated` manifest continues with `after=<lastSequence>`. Every
/// export is audited (`AUDIT_EXPORTED`) before its first byte. (`limit`
/// and `cursor` belong to `/api/audit/events`.)
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/audit/export",
    params(
        AuditQuery,
        ("format" = Option<Format>, Query, description = "`jsonl` (the default) or `csv`"),
        ("after" = Option<i64>, Query, minimum = 0, description = "Only events after this sequence (a truncated export's `lastSequence`)"),
    ),
    responses((status = 200, description = "The export file, as an attachment",
        content(
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        ),
        headers(
            ("Content-Disposition" = String, description = "`attachment; filename=\"audit-<chain>-<unix time>.<jsonl|csv>\"`"),
            ("Antevus-Manifest" = String, description = "CSV only: the signed manifest, base64url JSON"),
        )))))]
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
    let scope = principal.scope();
    let chain_id = scope.organization_id();
    // The head first: an export holds the chain as it stood when asked.
    let head = audit_event::head(&ctx.db(), &scope).await?;
    let now = ctx.now();
    let mut pager = Pager {
        ctx: ctx.clone(),
        key: rq.audit_key()?.clone(),
        scope,
        filters,
        format,
        head_sequence: head.as_ref().map_or(0, |h| h.sequence),
        head_hash: head.map(|h| h.hash),
        exported_at: now.format(&Rfc3339).map_err(ApiError::internal)?,
        max_events: match format {
            Format::Jsonl => MAX_STREAMED_EVENTS,
            Format::Csv => MAX_EVENTS,
        },
        position: after,
        count: 0,
        first: None,
        last: None,
        digest: sha2::Sha256::new(),
        signers: Signers::default(),
        ended: None,
    };
    let filename = format!(
        "audit-{chain_id}-{}.{}",
        now.unix_timestamp(),
        format.extension()
    );
    let reply = match format {
        Format::Csv => {
            let (body, manifest) = pager.whole().await?;
            // On the record with its digest (the file is whole).
            let what = json!({
                "format": manifest.format,
                "filters": manifest.filters,
                "count": manifest.count,
                "firstSequence": manifest.first_sequence,
                "lastSequence": manifest.last_sequence,
                "sha256": manifest.sha256,
            });
            record(ctx, rq, &principal, &pager.scope, what).await?;
            let manifest_json = serde_json::to_vec(&manifest).map_err(ApiError::internal)?;
            Reply::raw(StatusCode::OK, Bytes::from(body)).header(
                MANIFEST_HEADER,
                header_value(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(manifest_json),
                )?,
            )
        }
        Format::Jsonl => {
            // On the record before the first byte: what was asked, cut at
            // which head (the manifest, at the end, says what came).
            let what = json!({
                "format": format,
                "filters": pager.filters.describe(),
                "after": after,
                "headSequence": pager.head_sequence,
                "streamed": true,
            });
            record(ctx, rq, &principal, &pager.scope, what).await?;
            Reply::raw(StatusCode::OK, pager.stream(rq.id().to_owned()))
        }
    };
    Ok(reply
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        )
        .header(
            header::CONTENT_DISPOSITION,
            header_value(&format!("attachment; filename=\"{filename}\""))?,
        ))
}

/// Puts an export on the record (`AUDIT_EXPORTED`) with `what` as its new
/// values.
async fn record<P: Platform>(
    ctx: &Ctx<P>,
    rq: &Rq,
    principal: &auth::Principal,
    scope: &Scope,
    what: serde_json::Value,
) -> Result<(), ApiError> {
    let event = audit::Event {
        new_values: Some(what),
        record_type: None,
        record_id: None,
        ..audit::Event::by(
            ctx.new_uuid(),
            principal,
            EventType::AuditExported,
            scope.organization_id(),
        )
    };
    scope.batch(&ctx.db(), vec![event.insert(rq)?]).await?;
    Ok(())
}

/// Why the pages ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Every matching event up to the head is out.
    Complete,
    /// As many as one export holds; more continue with `after`.
    Truncated,
}

/// Walks the matching events page by page, hashing what it hands out,
/// and signs the manifest when the pages end. Owns what it needs (a
/// clone of the context), so a streamed body can outlive the handler.
struct Pager<P> {
    ctx: Ctx<P>,
    key: SigningKey,
    scope: Scope,
    filters: Filters,
    format: Format,
    head_sequence: i64,
    head_hash: Option<String>,
    exported_at: String,
    max_events: i64,
    position: i64,
    count: u64,
    first: Option<i64>,
    last: Option<i64>,
    digest: sha2::Sha256,
    signers: Signers,
    ended: Option<End>,
}

impl<P: Platform> Pager<P> {
    /// The next page of events (none once the pages ended).
    async fn page(&mut self) -> Result<Vec<ExportedEvent>, ApiError> {
        if self.ended.is_some() {
            return Ok(Vec::new());
        }
        let db = self.ctx.db();
        let left = self.max_events - self.count as i64;
        if left <= 0 {
            let more: Vec<ExportedEvent> =
                audit_event::export_page(&db, &self.scope, &self.filters, self.position, 1, 1)
                    .await?;
            self.ended = Some(match more.first() {
                Some(next) if next.sequence <= self.head_sequence => End::Truncated,
                _ => End::Complete,
            });
            return Ok(Vec::new());
        }
        let mut rows: Vec<ExportedEvent> = audit_event::export_page(
            &db,
            &self.scope,
            &self.filters,
            self.position,
            PAGE.min(left),
            verify::PAGE_BYTES,
        )
        .await?;
        let fetched = rows.len();
        // Nothing recorded after the head it named.
        rows.retain(|event| event.sequence <= self.head_sequence);
        if rows.is_empty() || rows.len() < fetched {
            self.ended = Some(End::Complete);
        }
        for event in &rows {
            self.signers.add(event);
        }
        if let Some(last) = rows.last() {
            self.first.get_or_insert(rows[0].sequence);
            self.last = Some(last.sequence);
            self.position = last.sequence;
            self.count += rows.len() as u64;
        }
        Ok(rows)
    }

    /// The events of `rows` as the file's bytes, hashed into the digest.
    fn render(&mut self, rows: &[ExportedEvent]) -> Result<Vec<u8>, ApiError> {
        let chunk = export::render(Format::Jsonl, rows).map_err(ApiError::internal)?;
        self.digest.update(&chunk);
        Ok(chunk)
    }

    /// The signed manifest of what was handed out, over `sha256`.
    fn manifest(&self, sha256: String) -> Result<Manifest, ApiError> {
        let mut manifest = Manifest {
            version: export::MANIFEST_VERSION.to_owned(),
            chain_id: self.scope.organization_id(),
            format: self.format,
            filters: self.filters.describe(),
            count: self.count,
            first_sequence: self.first,
            last_sequence: self.last,
            truncated: self.ended == Some(End::Truncated),
            head_sequence: self.head_sequence,
            head_hash: self.head_hash.clone(),
            exported_at: self.exported_at.clone(),
            sha256,
            keys: Vec::new(),
            key_id: String::new(),
            signature: String::new(),
        };
        manifest.sign(
            &self.key,
            self.ctx.config.audit_keys()?,
            self.signers.list(),
        );
        Ok(manifest)
    }

    /// Every page in memory, as CSV, within [`MAX_BYTES`].
    async fn whole(&mut self) -> Result<(Vec<u8>, Manifest), ApiError> {
        let mut events: Vec<ExportedEvent> = Vec::new();
        let mut bytes = 0;
        while self.ended.is_none() {
            if bytes >= MAX_BYTES {
                // As much as one export holds; the check below says
                // whether more is left.
                self.max_events = self.count as i64;
            }
            let rows = self.page().await?;
            bytes += rows.iter().map(weight).sum::<usize>();
            events.extend(rows);
        }
        let body = export::render(self.format, &events).map_err(ApiError::internal)?;
        let sha256 = hex::encode(sha2::Sha256::digest(&body));
        let manifest = self.manifest(sha256)?;
        Ok((body, manifest))
    }

    /// The pages as a JSON Lines stream, closed by the manifest's line (or,
    /// when a page fails, an error line naming the request).
    fn stream(self, request_id: String) -> Body {
        Body::stream(futures::stream::unfold(Some(self), move |pager| {
            let request_id = request_id.clone();
            async move {
                let mut pager = pager?;
                let next = match pager.page().await {
                    Ok(rows) if !rows.is_empty() => pager.render(&rows).map(|chunk| (chunk, true)),
                    Ok(_) => {
                        let sha256 = hex::encode(pager.digest.clone().finalize());
                        pager
                            .manifest(sha256)
                            .map(|manifest| (Trailer::Manifest(manifest).line(), false))
                    }
                    Err(err) => Err(err),
                };
                Some(match next {
                    Ok((chunk, more)) => (
                        Ok::<_, StreamError>(Bytes::from(chunk)),
                        more.then_some(pager),
                    ),
                    Err(err) => {
                        log_error(&request_id, &err);
                        let public = crate::envelope::ErrorBody::of(&err);
                        let line = Trailer::Error(TrailerError {
                            code: public.code.as_str().to_owned(),
                            message: public.message,
                            request_id,
                        })
                        .line();
                        (Ok(Bytes::from(line)), None)
                    }
                })
            }
        }))
    }
}
