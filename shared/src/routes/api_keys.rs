//! `/api/v1/api-keys`: `GET` lists the organization's keys (never a secret),
//! `POST` creates one and shows it once. Both need `keys:manage`; a key's
//! scopes can never be wider than its creator's permissions.

use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{self, EventType};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::page::Items;
use crate::model::{api_key, first_row};
use crate::platform::Platform;
use crate::ratelimit;
use crate::request::Rq;

/// Most CIDR blocks on one key.
pub const MAX_ALLOWLIST: usize = 32;

/// A new key: the key itself, shown this once, and how it is listed.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ApiKeyCreated))]
struct Created {
    /// The key itself (`ak_<12 hex>_<secret>`), shown this once: send it as
    /// `X-API-Key` or `Authorization: Bearer`.
    key: String,
    #[serde(flatten)]
    view: api_key::Key,
}

super::methods! {
    GET => list,
    POST => create,
}

/// List the organization's API keys
///
/// Requires `keys:manage`. Every key of the organization, newest first,
/// revoked ones too; never a key's secret.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/api-keys",
    responses((status = 200, description = "The keys", body = Items<api_key::Key>))))]
async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::KeysManage)?;
    let items = api_key::list(&ctx.db(), &principal.scope()).await?;
    Reply::ok(Items { items })
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ApiKeyInput))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateInput {
    /// 1 to 255 characters.
    name: String,
    /// The key's scopes: at least one, none beyond the creator's own.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Permission>))]
    permissions: Vec<String>,
    /// Addresses or CIDR blocks the key may be used from (at most 32);
    /// empty or left out: any.
    #[serde(default)]
    ip_allowlist: Vec<String>,
    /// When the key stops working (in the future); left out: never.
    #[serde(default)]
    expires_at: Option<Timestamp>,
    /// Requests per minute, from 1 to the limit of the creator's role (a
    /// key can only be slower); left out: that limit.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    rate_limit: Option<i64>,
}

/// Create an API key
///
/// Requires `keys:manage`. The key is answered this once (only its hash is
/// kept). Its scopes can never be wider than the creator's permissions
/// (nor, when created with a key, than that key's); requests made with it
/// act as its creator, from the allowed addresses only, until it expires
/// or is revoked. Audited (`API_KEY_CREATED`).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/api-keys",
    request_body = CreateInput,
    responses(
        (status = 201, description = "The key, shown once, and how it is listed", body = Created),
        (status = 400, description = "A malformed field, or a scope beyond the creator's (`VALIDATION_ERROR`)"),
    )))]
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
    // A key may only be slower than its holder: its limit is at most its
    // class's (the creator's role decides the class).
    let ceiling = ratelimit::per_minute(
        ctx.config
            .rate_limits()?
            .policy(ratelimit::Class::of(principal.role)),
    );
    if input
        .rate_limit
        .is_some_and(|r| !(1..=ceiling).contains(&r))
    {
        problems.push(FieldError::new(
            "rateLimit",
            format!("Requests per minute must be from 1 to {ceiling}, the limit of your role; a key can only be slower"),
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }

    let id = ctx.new_uuid();
    let (key, prefix, hash) =
        crate::auth::api_key::new_key(ctx.random_bytes::<6>(), ctx.random_bytes::<32>());
    let scope = principal.scope();
    let insert = api_key::insert(
        &scope,
        &api_key::NewKey {
            id,
            user_id: principal.user_id,
            prefix: &prefix,
            hash: &hash,
            name: &name,
            permissions: &scopes,
            ip_allowlist: &allowlist,
            expires_at: input.expires_at.map(Timestamp::get),
            rate_limit: input.rate_limit,
        },
    );
    let event = audit::Event {
        organization_id: Some(principal.organization_id),
        user_id: Some(principal.user_id),
        record_id: Some(id),
        new_values: Some(
            json!({ "name": name, "keyPrefix": prefix, "permissions": scopes, "ipAllowlist": allowlist }),
        ),
        ..audit::Event::new(ctx.new_uuid(), EventType::ApiKeyCreated)
    };
    let results = scope
        .batch(&ctx.db(), vec![insert, event.insert(rq)?])
        .await?;
    let view: api_key::Key = first_row(&results, 0)?
        .ok_or_else(|| ApiError::internal("INSERT ... RETURNING gave no row"))?;
    Reply::created(Created { key, view })
}
