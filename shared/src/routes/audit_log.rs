//! `POST /api/audit`: a security event reported by a client (a web app that
//! saw repeated failed unlocks, a bridge that saw its configuration
//! tampered with). Allowed without authentication, as the design document
//! says; with credentials the event is attributed to the caller and their
//! organization (bad credentials are refused, not ignored). The body is
//! capped at [`MAX_BODY_BYTES`] and each client address at the public rate
//! limit; reports without credentials go on a chain of their own (V21: a
//! flood of them never holds up the system chain's security events) and
//! are capped all together per day (`RATE_LIMIT_CLIENT_REPORTS`, 5,000),
//! so what nobody signed for grows by a bounded amount. `{eventType, action, severity?, outcome?, metadata?}`; the event
//! is stored as `CLIENT_<eventType>` with `metadata.clientReported = true`,
//! so a client can never pose as the server, and its metadata is redacted
//! like every event's.

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::audit::{self, Kind, Outcome, Severity};
use crate::auth;
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::platform::Platform;
use crate::ratelimit::Class;
use crate::request::Rq;

super::methods! {
    POST => log,
}

/// Largest body accepted.
pub const MAX_BODY_BYTES: usize = 4 * 1024;
/// Largest `metadata`, serialized.
const MAX_METADATA_BYTES: usize = 2 * 1024;

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClientEvent {
    /// 3 to 64 characters of A-Z, 0-9 and _, starting with a letter; stored
    /// as `CLIENT_<eventType>` (unless it already starts so).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Z][A-Z0-9_]{2,63}$"))]
    event_type: String,
    /// What happened, 1 to 500 characters (trimmed).
    action: String,
    /// Default `INFO`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Severity>))]
    severity: Option<String>,
    /// Default `SUCCESS`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Outcome>))]
    outcome: Option<String>,
    /// Free-form, at most 2048 bytes as JSON; redacted like every event's,
    /// stored under `metadata.reported`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    metadata: Option<Map<String, Value>>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
struct Recorded {
    /// The event's id.
    id: uuid::Uuid,
    /// As stored: `CLIENT_<name>`.
    event_type: String,
    /// Whether it was attributed to the caller (credentials were given).
    attributed: bool,
}

fn valid_type(name: &str) -> bool {
    (3..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Report a security event from a client
///
/// For clients that saw something the trail should show (repeated failed
/// unlocks, a tampered configuration). Allowed without credentials; with
/// them (bad ones are refused, not ignored) the event is attributed to the
/// caller and their organization, else it goes on a chain of its own. The
/// body is at most 4096 bytes (413). Rate limited per client address, and
/// reports without credentials also all together per day
/// (`RATE_LIMIT_CLIENT_REPORTS`, default 5000). Stored as
/// `CLIENT_<eventType>` with `metadata.clientReported = true`, so a client
/// can never pose as the server.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/audit",
    security((), ("bearerAuth" = []), ("apiKey" = [])),
    request_body = ClientEvent,
    responses(
        (status = 201, description = "The event is recorded", body = Recorded),
        (status = 413, description = "The body is over 4096 bytes"),
        (status = 429, description = "Over the rate limit of this address, or of all reports without credentials"))))]
async fn log<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    if rq.req.body().len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    crate::ratelimit::check(
        ctx,
        rq,
        Class::Public,
        &format!("client-audit:{}", rq.client_key()),
        None,
    )
    .await?;
    let presented = rq.req.headers().contains_key(http::header::AUTHORIZATION)
        || rq.req.headers().contains_key("x-api-key");
    let principal = if presented {
        Some(auth::authenticate(ctx, rq).await?)
    } else {
        None
    };
    let input: ClientEvent = crate::request::parse_json(&rq.req, MAX_BODY_BYTES)?;
    let mut problems = Vec::new();
    let name = input.event_type.trim();
    if !valid_type(name) {
        problems.push(FieldError::new(
            "eventType",
            "Must be 3 to 64 characters of A-Z, 0-9 and _, starting with a letter",
        ));
    }
    let action = input.action.trim();
    if action.is_empty() || action.chars().count() > 500 {
        problems.push(FieldError::new("action", "Must be 1 to 500 characters"));
    }
    let severity = match input.severity.as_deref() {
        None => Severity::Info,
        Some(raw) => Severity::parse(raw).unwrap_or_else(|| {
            problems.push(FieldError::new(
                "severity",
                "Must be one of: INFO, WARNING, ERROR, CRITICAL",
            ));
            Severity::Info
        }),
    };
    let outcome = match input.outcome.as_deref() {
        None => Outcome::Success,
        Some(raw) => Outcome::parse(raw).unwrap_or_else(|| {
            problems.push(FieldError::new(
                "outcome",
                "Must be one of: SUCCESS, FAILURE, DENIED",
            ));
            Outcome::Success
        }),
    };
    let reported = Value::Object(input.metadata.unwrap_or_default());
    if reported.to_string().len() > MAX_METADATA_BYTES {
        problems.push(FieldError::new(
            "metadata",
            format!("Must be at most {MAX_METADATA_BYTES} bytes as JSON"),
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    if principal.is_none() {
        // All anonymous reports together. The key names the policy: a
        // changed policy starts its own count.
        let cap = ctx.config.rate_limits()?.client_reports;
        crate::ratelimit::check(
            ctx,
            rq,
            Class::ClientReports,
            &format!("anonymous:{}/{}", cap.limit, cap.window_secs),
            None,
        )
        .await?;
    }
    let event_type = if name.starts_with("CLIENT_") {
        name.to_owned()
    } else {
        format!("CLIENT_{name}")
    };
    let event = audit::Event {
        id: ctx.new_uuid(),
        organization_id: principal.as_ref().map(|p| p.organization_id),
        user_id: principal.as_ref().map(|p| p.user_id),
        event_type: Kind::Client(&event_type),
        severity,
        action,
        outcome,
        record_type: None,
        record_id: None,
        old_values: None,
        new_values: None,
        metadata: json!({ "clientReported": true, "reported": reported }),
        reason: None,
    };
    audit::store(ctx, rq, &event).await?;
    Reply::with_status(
        StatusCode::CREATED,
        Recorded {
            id: event.id,
            event_type,
            attributed: principal.is_some(),
        },
    )
}
