//! API keys: `ak_<12 hex>_<256-bit secret>`, shown once. Stored as the
//! SHA-256 of the whole key with the `ak_<12 hex>` prefix for lookup; the
//! presented key's hash is compared in constant time. A key carries scopes
//! (never wider than its creator's role, checked again on every use), an
//! optional CIDR allowlist, an optional expiry and an optional per-key rate
//! limit (requests per minute); every use updates `last_used_at` and
//! `usage_count`. Accepted as `X-API-Key: ...` or `Authorization: Bearer ak_...`.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Principal, Role};
use crate::ctx::Ctx;
use crate::error::ApiError;
use crate::model::{Scope, api_key, first_row};
use crate::platform::Platform;
use crate::ratelimit::{self, Class};
use crate::request::Rq;

/// A fresh key: `(key, prefix, stored hash as a bytea literal)`.
pub fn new_key(prefix_bytes: [u8; 6], secret: [u8; 32]) -> (String, String, String) {
    let prefix = format!("ak_{}", hex::encode(prefix_bytes));
    let key = format!(
        "{prefix}_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let hash = format!("\\x{}", hex::encode(Sha256::digest(key.as_bytes())));
    (key, prefix, hash)
}

/// The prefix of a well-formed key.
fn prefix_of(key: &str) -> Option<&str> {
    let prefix = key.get(..15)?;
    let ok = key.len() == 59
        && prefix.starts_with("ak_")
        && prefix[3..].bytes().all(|b| b.is_ascii_hexdigit())
        && key.as_bytes()[15] == b'_'
        && key[16..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(prefix)
}

/// The API key a request presents, if any.
pub fn presented(headers: &http::HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim());
    }
    crate::request::bearer_token(headers).filter(|t| t.starts_with("ak_"))
}

/// Whether `ip` is inside any of the CIDR blocks (an empty list allows all).
pub fn allowed(allowlist: &[String], ip: Option<std::net::IpAddr>) -> bool {
    if allowlist.is_empty() {
        return true;
    }
    let Some(ip) = ip else { return false };
    allowlist
        .iter()
        .filter_map(|c| c.parse::<ipnet::IpNet>().ok())
        .any(|net| net.contains(&ip))
}

/// Authenticates an API key (see the module docs).
pub async fn authenticate<P: Platform>(
    ctx: &Ctx<P>,
    rq: &mut Rq,
    key: &str,
) -> Result<Principal, ApiError> {
    let rejected = || ApiError::TokenInvalid("API key rejected");
    let prefix = prefix_of(key).ok_or_else(rejected)?;
    let db = ctx.db();
    let row = api_key::by_prefix(&db, prefix)
        .await?
        .ok_or_else(rejected)?;
    let presented_hash = hex::encode(Sha256::digest(key.as_bytes()));
    let matches: bool = presented_hash
        .as_bytes()
        .ct_eq(row.key_hash.as_bytes())
        .into();
    if !matches {
        return Err(rejected());
    }
    admit(ctx, rq, row).await
}

/// An API key found when a long-lived connection opened, checked again by
/// its id (no secret is kept): still usable, from the connection's
/// address, within its limits.
pub async fn reauthenticate<P: Platform>(
    ctx: &Ctx<P>,
    rq: &mut Rq,
    organization_id: uuid::Uuid,
    key_id: uuid::Uuid,
) -> Result<Principal, ApiError> {
    let scope = Scope::authenticated(organization_id);
    let row = api_key::by_id(&ctx.db(), &scope, key_id)
        .await?
        .ok_or(ApiError::TokenInvalid("API key rejected"))?;
    admit(ctx, rq, row).await
}

/// A key whose secret checked out (or was checked when its connection
/// opened): usable, from an allowed address, counted, limited.
async fn admit<P: Platform>(
    ctx: &Ctx<P>,
    rq: &mut Rq,
    row: api_key::KeyRow,
) -> Result<Principal, ApiError> {
    if !row.usable || !allowed(&row.ip_allowlist, rq.client_ip()) {
        return Err(ApiError::TokenInvalid("API key rejected"));
    }
    let role =
        Role::parse(&row.role).ok_or_else(|| ApiError::internal("unknown role in database"))?;
    let class = Class::of(role);
    let policy = ratelimit::key_policy(
        ctx.config.rate_limits()?.policy(class),
        row.rate_limit.map(i64::from),
    );
    // The key is its organization's; from here on, queries are confined to it.
    let scope = Scope::authenticated(row.organization_id);
    let results = scope
        .batch(
            &ctx.db(),
            vec![
                api_key::record_use(&scope, row.id),
                ratelimit::check_statement(
                    policy,
                    &format!("{}:key:{}", class.name(), row.id),
                    Some(&scope),
                ),
            ],
        )
        .await?;
    let checked: ratelimit::Checked = first_row(&results, 1)?
        .ok_or_else(|| ApiError::internal("rate limit check returned no row"))?;
    let principal = Principal {
        user_id: row.user_id,
        organization_id: row.organization_id,
        role,
        session_id: None,
        api_key_id: Some(row.id),
        scopes: Some(row.permissions),
        expires_at: None,
        token_kid: None,
    };
    // Known before the limit applies, so a block is recorded against them.
    rq.identify(principal.caller());
    ratelimit::apply(rq, class, policy, &checked, Some(principal.caller()))?;
    Ok(principal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_a_prefix_and_a_checkable_shape() {
        let (key, prefix, hash) = new_key([0xab; 6], [7; 32]);
        assert_eq!(prefix_of(&key), Some(prefix.as_str()));
        assert!(key.starts_with("ak_abababababab_"));
        assert_eq!(hash.len(), 66);
        assert_eq!(prefix_of("ak_short"), None);
        assert_eq!(prefix_of(&key.replace("ak_", "xx_")), None);
    }

    #[test]
    fn allowlists() {
        let list = vec!["10.0.0.0/8".to_owned(), "2001:db8::/32".to_owned()];
        assert!(allowed(&[], None));
        assert!(allowed(&list, "10.1.2.3".parse().ok()));
        assert!(allowed(&list, "2001:db8::1".parse().ok()));
        assert!(!allowed(&list, "11.0.0.1".parse().ok()));
        assert!(!allowed(&list, None));
    }
}
