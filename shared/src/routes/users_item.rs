//! `/api/v1/users/:id`: `GET` (`users:manage`, or yourself) and `PUT`
//! (`users:manage`): `{name?, department?, role?, isActive?}`. Nobody changes
//! their own role or deactivates themselves; only a super admin grants or
//! changes the super admin role; no one sets another user's password here
//! (a `password` field is refused). Deactivation ends the user's sessions at
//! once. Another organization's user is 404.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::audit::{self, EventType, Severity};
use crate::auth::{self, Permission, Role};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::{self, user};
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => show,
    PUT => update,
}

/// One user
///
/// Requires `users:manage`, except for the caller's own user. Another
/// organization's user is `404`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/users/{id}",
    params(("id" = uuid::Uuid, Path, description = "The user")),
    responses(
        (status = 200, description = "The user", body = user::User),
        (status = 404, description = "No such user in the organization"),
    )))]
async fn show<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    let id = rq.uuid_param("id")?;
    if id != principal.user_id {
        principal.require(Permission::UsersManage)?;
    }
    Reply::ok(user::get(&ctx.db(), &principal.scope(), id).await?)
}

/// The fields to change; those left out keep their values.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = UserUpdate))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateInput {
    /// 1 to 255 characters.
    name: Option<String>,
    /// An empty one keeps the current department.
    department: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Role>))]
    role: Option<String>,
    /// `false` deactivates the user: they cannot sign in, and their
    /// sessions end at once.
    is_active: Option<bool>,
    /// Why; required when the role changes (21 CFR Part 11 audit trail),
    /// at most 1000 characters.
    reason: Option<String>,
}

/// Change a user's profile, role or standing
///
/// Requires `users:manage`. A partial update: fields left out keep their
/// values, and no change answers the user as it is. Nobody changes their
/// own role or deactivates themselves; only a super admin grants, changes
/// or takes away the super admin role, or deactivates or reactivates a
/// super admin; a role change needs a `reason`. Unknown fields (a
/// `password`, say) are refused. Deactivation ends the user's sessions at
/// once. Another organization's user is `404`. Audited (`USER_UPDATED`,
/// with the old and new values; a warning for a role or activation change).
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/api/v1/users/{id}",
    params(("id" = uuid::Uuid, Path, description = "The user")),
    request_body = UpdateInput,
    responses(
        (status = 200, description = "The user as it is now", body = user::User),
        (status = 400, description = "A malformed field, or a change the caller may not make (`VALIDATION_ERROR`)"),
        (status = 404, description = "No such user in the organization"),
    )))]
async fn update<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::UsersManage)?;
    let id = rq.uuid_param("id")?;
    let input: UpdateInput = rq.json(ctx)?;
    let scope = principal.scope();
    let current = user::get(&ctx.db(), &scope, id).await?;
    let mut problems = Vec::new();
    let name = match input.name.as_deref().map(str::trim) {
        Some(n) if n.is_empty() || !crate::domain::printable_within(n, 255) => {
            problems.push(FieldError::new("name", "Must be 1 to 255 characters"));
            None
        }
        other => other.map(str::to_owned),
    };
    let role = match input.role.as_deref() {
        None => None,
        Some(raw) => match Role::parse(raw) {
            None => {
                problems.push(FieldError::new("role", "Not a role"));
                None
            }
            Some(role) => Some(role),
        },
    };
    if id == principal.user_id && role.is_some_and(|r| r != current.role) {
        problems.push(FieldError::new("role", "You cannot change your own role"));
    }
    if id == principal.user_id && input.is_active == Some(false) {
        problems.push(FieldError::new(
            "isActive",
            "You cannot deactivate yourself",
        ));
    }
    let touches_super =
        role == Some(Role::SuperAdmin) || (current.role == Role::SuperAdmin && role.is_some());
    if touches_super && principal.role != Role::SuperAdmin {
        problems.push(FieldError::new(
            "role",
            "Only a super admin may grant or change the super admin role",
        ));
    }
    let deactivates_super = current.role == Role::SuperAdmin
        && input
            .is_active
            .is_some_and(|active| active != current.is_active);
    if deactivates_super && principal.role != Role::SuperAdmin {
        problems.push(FieldError::new(
            "isActive",
            "Only a super admin may deactivate or reactivate a super admin",
        ));
    }
    let reason = input
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > 1000) {
        problems.push(FieldError::new("reason", "Must be at most 1000 characters"));
    }
    if problems.is_empty() && role.is_some_and(|r| r != current.role) && reason.is_none() {
        problems.push(FieldError::new(
            "reason",
            "Changing a role needs a reason (it is kept in the audit trail)",
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let new_role = role.unwrap_or(current.role);
    let new_active = input.is_active.unwrap_or(current.is_active);
    let new_name = name.unwrap_or_else(|| current.name.clone());
    let new_department = input
        .department
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty())
        .or(current.department.clone());
    let mut old_values = serde_json::Map::new();
    let mut new_values = serde_json::Map::new();
    let mut changed = |field: &str, old: Value, new: Value| {
        if old != new {
            old_values.insert(field.to_owned(), old);
            new_values.insert(field.to_owned(), new);
        }
    };
    changed("name", json!(current.name), json!(new_name));
    changed(
        "department",
        json!(current.department),
        json!(new_department),
    );
    changed("role", json!(current.role), json!(new_role));
    changed("isActive", json!(current.is_active), json!(new_active));
    if new_values.is_empty() {
        return Reply::ok(current);
    }
    let event = audit::Event {
        organization_id: Some(principal.organization_id),
        user_id: Some(principal.user_id),
        severity: if new_values.contains_key("role") || new_values.contains_key("isActive") {
            Severity::Warning
        } else {
            Severity::Info
        },
        record_id: Some(id),
        old_values: Some(Value::Object(old_values)),
        new_values: Some(Value::Object(new_values)),
        reason,
        ..audit::Event::new(ctx.new_uuid(), EventType::UserUpdated)
    };
    let profile = user::Profile {
        name: &new_name,
        department: new_department.as_deref(),
        role: new_role,
        is_active: new_active,
    };
    let mut statements = vec![user::update(&scope, id, &profile), event.insert(rq)?];
    if !new_active {
        statements.push(model::session::end_all_of(
            &scope,
            id,
            model::session::Ending::Deactivated,
        ));
    }
    scope.batch(&ctx.db(), statements).await?;
    Reply::ok(user::get(&ctx.db(), &scope, id).await?)
}
