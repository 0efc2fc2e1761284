//! Authentication and authorization.
//!
//! - [`password`]: argon2id hashing (and the dummy verification for
//!   unknown accounts); [`policy`]: the password policy.
//! - [`jwt`]: Ed25519 (EdDSA) access tokens; [`tokens`]: the login / refresh answer.
//! - [`session`]: refresh tokens, the refresh cookie, lockout constants.
//! - [`api_key`]: key format, lookup and checks.
//! - [`second_factor`]: TOTP and recovery codes; [`mfa`]: the login's
//!   second step (challenges, the sealed key).
//! - [`roles`] (re-exported from `domain`): the 12 roles and the
//!   permission matrix.
//!
//! [`authenticate`] turns a request's bearer token into a [`Principal`];
//! [`Principal::require`] is the one place a permission is checked.

pub mod api_key;
pub mod jwt;
pub mod mfa;
pub mod password;
pub mod policy;
pub mod scheduler;
pub mod second_factor;
pub mod session;
pub mod tokens;

use crate::ctx::Ctx;
pub use crate::domain::roles::{self, Permission, Role};
use crate::error::{ApiError, Caller};
use crate::model::{self, Scope, first_row};
use crate::platform::Platform;
use crate::ratelimit::{self, Class};
use crate::request::Rq;

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Principal {
    pub user_id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    /// The role in force now (read from the database, not the token).
    pub role: Role,
    /// The session family (login) of an access token; `None` for an API key.
    pub session_id: Option<uuid::Uuid>,
    /// The API key used, if any.
    pub api_key_id: Option<uuid::Uuid>,
    /// An API key's scopes; `None` means the role's permissions.
    pub scopes: Option<Vec<Permission>>,
    /// When the access token expires (unix seconds); `None` for an API key.
    /// A long-lived connection keeps this, not the token
    /// ([`reauthenticate`]).
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// The key id that signed the access token: a connection opened with it
    /// closes once that key is withdrawn from `JWT_PUBLIC_KEYS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_kid: Option<String>,
}

impl Principal {
    /// The organization this caller's queries are confined to.
    pub fn scope(&self) -> Scope {
        Scope::authenticated(self.organization_id)
    }

    /// The caller as the audit trail names it.
    pub fn caller(&self) -> Caller {
        Caller {
            user_id: self.user_id,
            organization_id: self.organization_id,
            session_id: self.session_id,
        }
    }

    /// Fails with `403 AUTH_INSUFFICIENT_PERMISSIONS` unless the role has
    /// `permission` and, for an API key, the key's scopes include it (a key
    /// never exceeds its owner's current role).
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        let scoped = self
            .scopes
            .as_ref()
            .is_none_or(|scopes| scopes.contains(&permission));
        if self.role.can(permission) && scoped {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                caller: Some(self.caller()),
            })
        }
    }
}

/// Authenticates an API key (`X-API-Key` or `Bearer ak_...`, see
/// [`api_key`]), or verifies the request's `Authorization: Bearer` access
/// token, then checks
/// in the database that its session is live and its user active, and takes
/// the user's current role from there.
///
/// The request is told who is calling ([`Rq::identify`]) and gets the
/// rate-limit headers; a refusal names the caller.
pub async fn authenticate<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Principal, ApiError> {
    if let Some(key) = api_key::presented(rq.req.headers()).map(str::to_owned) {
        return api_key::authenticate(ctx, rq, &key).await;
    }
    let token = crate::request::bearer_token(rq.req.headers())
        .ok_or(ApiError::TokenInvalid("no bearer token"))?;
    let tokens = ctx.config.tokens()?;
    let (claims, validity) = jwt::verify_until(
        &tokens.public_keys,
        token,
        ctx.now(),
        &tokens.issuer,
        &tokens.audience,
    )
    .map_err(|e| match e {
        jwt::TokenError::Expired => ApiError::TokenExpired,
        _ => ApiError::TokenInvalid("token rejected"),
    })?;
    let login = Login {
        user_id: claims.sub,
        organization_id: claims.org,
        session_id: claims.sid,
        role: Role::parse(&claims.role),
        validity,
    };
    in_session(ctx, rq, &login).await
}

/// The caller of a long-lived connection (a dashboard's or a bridge's
/// socket), checked again from what was found when it opened: the login
/// must still be live and its token unexpired, or the API key still usable
/// from the connection's address; the role is read again and the rate
/// limit applies. The connection keeps no credential, so neither does
/// anything that stores it.
pub async fn reauthenticate<P: Platform>(
    ctx: &Ctx<P>,
    rq: &mut Rq,
    principal: &Principal,
) -> Result<Principal, ApiError> {
    match (principal.session_id, principal.api_key_id) {
        (Some(session_id), _) => {
            let (Some(expires_at), Some(kid)) = (principal.expires_at, &principal.token_kid) else {
                return Err(ApiError::TokenInvalid("no token validity known"));
            };
            if ctx.now().unix_timestamp() >= expires_at {
                return Err(ApiError::TokenExpired);
            }
            if !ctx
                .config
                .tokens()?
                .public_keys
                .iter()
                .any(|k| &k.kid == kid)
            {
                return Err(ApiError::TokenInvalid(
                    "the token's signing key was withdrawn",
                ));
            }
            let login = Login {
                user_id: principal.user_id,
                organization_id: principal.organization_id,
                session_id,
                role: Some(principal.role),
                validity: jwt::Validity {
                    expires_at,
                    kid: kid.clone(),
                },
            };
            in_session(ctx, rq, &login).await
        }
        (None, Some(key)) => api_key::reauthenticate(ctx, rq, principal.organization_id, key).await,
        (None, None) => Err(ApiError::TokenInvalid("no credential to check")),
    }
}

/// What an access token says about its login.
struct Login {
    user_id: uuid::Uuid,
    organization_id: uuid::Uuid,
    session_id: uuid::Uuid,
    /// The role it was issued with: the rate-limit class until the
    /// database says otherwise.
    role: Option<Role>,
    validity: jwt::Validity,
}

/// The caller of a live login: one round trip for the session check and
/// the caller's rate limit.
async fn in_session<P: Platform>(
    ctx: &Ctx<P>,
    rq: &mut Rq,
    login: &Login,
) -> Result<Principal, ApiError> {
    let class = login.role.map_or(Class::Authenticated, Class::of);
    let policy = ctx.config.rate_limits()?.policy(class);
    let scope = Scope::authenticated(login.organization_id);
    let results = scope
        .batch(
            &ctx.db(),
            vec![
                model::session::live_role(&scope, login.user_id, login.session_id),
                ratelimit::check_statement(
                    policy,
                    &format!("{}:user:{}", class.name(), login.user_id),
                    Some(&scope),
                ),
            ],
        )
        .await?;
    let live: Option<model::session::LiveRole> = first_row(&results, 0)?;
    let checked: Option<ratelimit::Checked> = first_row(&results, 1)?;
    let live = live.ok_or(ApiError::TokenInvalid("session ended"))?;
    let checked = checked.ok_or_else(|| ApiError::internal("rate limit check returned no row"))?;
    let role =
        Role::parse(&live.role).ok_or_else(|| ApiError::internal("unknown role in database"))?;
    let principal = Principal {
        user_id: login.user_id,
        organization_id: login.organization_id,
        role,
        session_id: Some(login.session_id),
        api_key_id: None,
        scopes: None,
        expires_at: Some(login.validity.expires_at),
        token_kid: Some(login.validity.kid.clone()),
    };
    // Known before the limit applies, so a block is recorded against them.
    rq.identify(principal.caller());
    ratelimit::apply(rq, class, policy, &checked, Some(principal.caller()))?;
    Ok(principal)
}
