//! `/api/v1/organization/mfa-policy` (`users:manage`): which roles must
//! sign in with a second factor. `GET` reads it; `PUT {requiredRoles}`
//! replaces it, audited with the old and new roles
//! (`MFA_POLICY_CHANGED`). A member of a required role without a factor is
//! asked to set one up at their next login (the password step's `enroll`
//! challenge); sessions already open stay open.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, EventType};
use crate::auth::{self, Permission, Role};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::second_factor;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => read,
    PUT => replace,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicyView {
    required_roles: Vec<String>,
}

async fn read<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::UsersManage)?;
    let policy = second_factor::policy(&ctx.db(), &principal.scope()).await?;
    Reply::ok(PolicyView {
        required_roles: policy.required_roles,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Input {
    required_roles: Vec<String>,
}

async fn replace<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::UsersManage)?;
    let input: Input = rq.json(ctx)?;
    let mut roles = Vec::new();
    let mut problems = Vec::new();
    for raw in &input.required_roles {
        match Role::parse(raw) {
            Some(role) if !roles.contains(&role.as_str().to_owned()) => {
                roles.push(role.as_str().to_owned());
            }
            Some(_) => {}
            None => problems.push(FieldError::new(
                "requiredRoles",
                format!("{raw} is not a role"),
            )),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    roles.sort();
    let scope = principal.scope();
    let db = ctx.db();
    let old = second_factor::policy(&db, &scope).await?;
    let event = audit::Event {
        old_values: Some(json!({ "requiredRoles": old.required_roles })),
        new_values: Some(json!({ "requiredRoles": roles })),
        ..audit::Event::by(
            ctx.new_uuid(),
            &principal,
            EventType::MfaPolicyChanged,
            principal.organization_id,
        )
    };
    // Only over the policy just read: a change made meanwhile is not
    // overwritten unseen, and the event's old roles are the true ones.
    let changed: Option<second_factor::Policy> = scope
        .fetch_optional(
            &db,
            event.record_change(
                rq,
                second_factor::set_policy(&scope, &old.required_roles, &roles),
            )?,
        )
        .await?;
    changed.ok_or_else(|| {
        ApiError::conflict(
            "The policy was changed meanwhile; read it again and reapply your change",
        )
    })?;
    Reply::ok(PolicyView {
        required_roles: roles,
    })
}
