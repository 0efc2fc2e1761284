//! `/api/v1/api-keys`: `GET` lists the organization's keys (never a secret),
//! `POST` creates one and shows it once. Both need `keys:manage`; a key's
//! scopes can never be wider than its creator's permissions.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::audit::{self, Outcome};
use crate::auth::{self, Permission, api_key};
use crate::ctx::Ctx;
use crate::db::{BatchOptions, statement};
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;

/// Most CIDR blocks on one key.
pub const MAX_ALLOWLIST: usize = 32;

const COLUMNS: &str = "id, name, key_prefix, permissions, ip_allowlist::text[] AS ip_allowlist, rate_limit, \
                       created_at, expires_at, last_used_at, usage_count, is_active, user_id";

/// A key as listed (no secret, no hash).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct KeyView {
    pub id: uuid::Uuid,
    pub name: String,
    pub key_prefix: String,
    pub permissions: Vec<Permission>,
    pub ip_allowlist: Vec<String>,
    pub rate_limit: Option<i32>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    pub usage_count: i64,
    pub is_active: bool,
    pub user_id: uuid::Uuid,
}

super::methods! {
    GET => list,
    POST => create,
}

async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::KeysManage)?;
    let keys: Vec<KeyView> = ctx
        .db()
        .fetch_all(
            &format!("SELECT {COLUMNS} FROM api_keys WHERE organization_id = $1 ORDER BY created_at DESC, id DESC"),
            params![principal.organization_id],
        )
        .await?;
    Reply::ok(json!({ "items": keys }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateInput {
    name: String,
    permissions: Vec<String>,
    #[serde(default)]
    ip_allowlist: Vec<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
    rate_limit: Option<i64>,
}

async fn create<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::KeysManage)?;
    let input: CreateInput = rq.json(ctx)?;
    let mut problems = Vec::new();
    let name = input.name.trim().to_owned();
    if name.is_empty() || !crate::domain::printable_within(&name, 255) {
        problems.push(FieldError::new(
            "name",
            "Must be 1 to 255 characters without control characters",
        ));
    }
    let mut scopes = Vec::new();
    for raw in &input.permissions {
        match serde_json::from_value::<Permission>(Value::String(raw.clone())) {
            // Never wider than the creator (and, for a key, than its scopes).
            Ok(p) if principal.require(p).is_ok() => {
                if !scopes.contains(&p) {
                    scopes.push(p);
                }
            }
            Ok(_) => problems.push(FieldError::new(
                "permissions",
                format!("{raw} exceeds your own permissions"),
            )),
            Err(_) => problems.push(FieldError::new(
                "permissions",
                format!("{raw} is not a permission"),
            )),
        }
    }
    if input.permissions.is_empty() {
        problems.push(FieldError::new(
            "permissions",
            "At least one permission is required",
        ));
    }
    if input.ip_allowlist.len() > MAX_ALLOWLIST {
        problems.push(FieldError::new(
            "ipAllowlist",
            format!("At most {MAX_ALLOWLIST} entries"),
        ));
    }
    let mut allowlist = Vec::new();
    for entry in &input.ip_allowlist {
        match entry.trim().parse::<ipnet::IpNet>() {
            Ok(net) => allowlist.push(net.trunc().to_string()),
            Err(_) => match entry.trim().parse::<std::net::IpAddr>() {
                Ok(ip) => allowlist.push(ipnet::IpNet::from(ip).to_string()),
                Err(_) => problems.push(FieldError::new(
                    "ipAllowlist",
                    format!("{entry} is not an address or CIDR block"),
                )),
            },
        }
    }
    if input.expires_at.is_some_and(|at| at <= ctx.now()) {
        problems.push(FieldError::new("expiresAt", "Must be in the future"));
    }
    if input
        .rate_limit
        .is_some_and(|r| !(1..=100_000).contains(&r))
    {
        problems.push(FieldError::new(
            "rateLimit",
            "Requests per minute must be from 1 to 100000",
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }

    let id = ctx.new_uuid();
    let (key, prefix, hash) = api_key::new_key(ctx.random_bytes::<6>(), ctx.random_bytes::<32>());
    let scopes_json = serde_json::to_value(&scopes).map_err(ApiError::internal)?;
    let allowlist_json = Value::from(allowlist.clone());
    let insert = statement(
        format!(
            "INSERT INTO api_keys (id, organization_id, user_id, key_prefix, key_hash, name, permissions, ip_allowlist, \
             expires_at, rate_limit) \
             VALUES ($1, $2, $3, $4, $5::text::bytea, $6, $7::jsonb, \
                     ARRAY(SELECT jsonb_array_elements_text($8::jsonb))::cidr[], $9, $10) RETURNING {COLUMNS}"
        ),
        params![
            id,
            principal.organization_id,
            principal.user_id,
            prefix,
            hash,
            name,
            scopes_json,
            allowlist_json,
            input.expires_at,
            input.rate_limit,
        ],
    );
    let event = audit::Event {
        id: ctx.new_uuid(),
        organization_id: Some(principal.organization_id),
        user_id: Some(principal.user_id),
        event_type: "API_KEY_CREATED",
        severity: "INFO",
        action: "API key created",
        outcome: Outcome::Success,
        record_type: Some("api_key"),
        record_id: Some(id),
        old_values: None,
        new_values: Some(
            json!({ "name": name, "keyPrefix": prefix, "permissions": scopes, "ipAllowlist": allowlist }),
        ),
        metadata: json!({}),
        reason: None,
    };
    let results = ctx
        .db()
        .batch(vec![insert, event.insert(rq)], BatchOptions::default())
        .await?;
    let view: KeyView = results
        .first()
        .and_then(|r| r.decode::<KeyView>().ok())
        .and_then(|rows| rows.into_iter().next())
        .ok_or_else(|| ApiError::internal("INSERT ... RETURNING gave no row"))?;
    let mut data = serde_json::to_value(view).map_err(ApiError::internal)?;
    data["key"] = Value::String(key);
    Reply::created(data)
}
