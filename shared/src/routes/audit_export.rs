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
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Rq;
use super::audit_events::{AuditQuery, FILTER_SQL, Filters};
use crate::audit;
use crate::audit::export::{self, ExportedEvent, Format, Manifest};
use crate::auth::{self, Permission};
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::params;
use crate::platform::{Ctx, Platform};

super::methods! {
    GET => export,
}

/// Most events in one export (the file is built in memory).
pub const MAX_EVENTS: i64 = 20_000;
/// Events fetched per query.
const PAGE: i64 = 1_000;

const MANIFEST_HEADER: HeaderName = HeaderName::from_static("antevus-manifest");

#[derive(Deserialize)]
struct Row {
    sequence: i64,
    id: uuid::Uuid,
    organization_id: Option<uuid::Uuid>,
    user_id: Option<uuid::Uuid>,
    event_type: String,
    severity: String,
    action: String,
    outcome: String,
    record_type: Option<String>,
    record_id: Option<uuid::Uuid>,
    old_values: Option<Value>,
    new_values: Option<Value>,
    reason: Option<String>,
    metadata: Value,
    ip_address: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    session_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    previous_hash: String,
    hash: String,
    content_hash: String,
    signature: Option<String>,
    key_id: String,
}

impl Row {
    fn exported(self) -> ExportedEvent {
        ExportedEvent {
            sequence: self.sequence,
            id: self.id,
            organization_id: self.organization_id,
            user_id: self.user_id,
            event_type: self.event_type,
            severity: self.severity,
            action: self.action,
            outcome: self.outcome,
            record_type: self.record_type,
            record_id: self.record_id,
            old_values: self.old_values,
            new_values: self.new_values,
            reason: self.reason,
            metadata: self.metadata,
            ip_address: self.ip_address,
            user_agent: self.user_agent,
            request_id: self.request_id,
            session_id: self.session_id,
            created_at: self.created_at.format(&Rfc3339).unwrap_or_default(),
            previous_hash: self.previous_hash,
            hash: self.hash,
            content_hash: self.content_hash,
            signature: self.signature,
            key_id: self.key_id,
        }
    }
}

#[derive(Deserialize)]
struct Head {
    sequence: i64,
    hash: String,
}

async fn export<P: Platform>(ctx: &Ctx<P>, rq: &Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::AuditView)?;
    let query: AuditQuery = rq.query()?;
    let mut problems = Vec::new();
    let filters = Filters::parse(&query, &mut problems);
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
    let key = ctx
        .config
        .audit_keys
        .first()
        .ok_or_else(|| ApiError::internal("no audit key"))?;
    let chain_id = principal.organization_id;
    let db = ctx.db();
    // The head first: every exported event is at or before it.
    let head: Option<Head> = db
        .fetch_optional(
            "SELECT sequence, encode(hash, 'hex') AS hash FROM audit_chain_heads WHERE chain_id = $1",
            params![chain_id],
        )
        .await?;
    let mut events: Vec<ExportedEvent> = Vec::new();
    let mut position = after;
    let mut truncated = false;
    loop {
        let mut values = filters.params(chain_id);
        let take = PAGE.min(MAX_EVENTS + 1 - events.len() as i64);
        values.extend(params![position, take]);
        let rows: Vec<Row> = db
            .fetch_all(
                &format!(
                    "SELECT sequence, id, organization_id, user_id, event_type, severity, action, outcome, record_type, \
                       record_id, old_values, new_values, reason, metadata, host(ip_address) AS ip_address, user_agent, \
                       request_id, session_id, created_at, encode(previous_hash, 'hex') AS previous_hash, \
                       encode(hash, 'hex') AS hash, encode(content_hash, 'hex') AS content_hash, \
                       encode(signature, 'hex') AS signature, key_id \
                     FROM audit_events WHERE {FILTER_SQL} AND sequence > $11 \
                     ORDER BY sequence LIMIT $12"
                ),
                values,
            )
            .await?;
        let fetched = rows.len() as i64;
        events.extend(rows.into_iter().map(Row::exported));
        if events.len() as i64 > MAX_EVENTS {
            events.truncate(MAX_EVENTS as usize);
            truncated = true;
            break;
        }
        match events.last() {
            Some(last) if fetched == take => position = last.sequence,
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
        key_id: String::new(),
        signature: String::new(),
    };
    manifest.sign(key);
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
            "AUDIT_EXPORTED",
            "Audit trail exported",
            ("audit", chain_id),
        )
    };
    db.batch(vec![event.insert(rq)], Default::default()).await?;

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
            HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
                .map_err(ApiError::internal)?,
        )
        .header(
            MANIFEST_HEADER,
            HeaderValue::from_str(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(manifest_json),
            )
            .map_err(ApiError::internal)?,
        ))
}
