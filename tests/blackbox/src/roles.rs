//! The role matrix, walked: every role against every permission-checked route.

use anyhow::{Context as _, ensure};
use reqwest::Method;
use serde_json::{Value, json};
use shared::auth::Role;

use crate::client::TestApp;
use crate::instruments::instrument;

crate::cases![role_matrix_walk,];

/// Every role against every permission-guarded route: allowed exactly when
/// the matrix (`shared::auth::roles`) says so.
async fn role_matrix_walk(app: &TestApp) -> anyhow::Result<()> {
    use shared::auth::Permission;
    let (admin, _) = app.admin().await?;
    let missing = format!("/api/v1/api-keys/{}", uuid::Uuid::from_u128(42));
    let key_body = json!({ "name": "walk", "permissions": ["instruments:view"] });
    let missing_user = format!("/api/v1/users/{}", uuid::Uuid::from_u128(43));
    let routes: Vec<(Method, &str, Option<Value>, Option<Permission>)> = vec![
        (Method::GET, "/api/auth/me", None, None),
        (
            Method::GET,
            "/api/v1/instruments",
            None,
            Some(Permission::InstrumentsView),
        ),
        (
            Method::POST,
            "/api/v1/instruments",
            Some(instrument("walk", "hplc", "idle", "L")),
            Some(Permission::InstrumentsManage),
        ),
        (
            Method::GET,
            "/api/v1/api-keys",
            None,
            Some(Permission::KeysManage),
        ),
        (
            Method::POST,
            "/api/v1/api-keys",
            Some(key_body),
            Some(Permission::KeysManage),
        ),
        (
            Method::DELETE,
            missing.as_str(),
            None,
            Some(Permission::KeysManage),
        ),
        (
            Method::GET,
            "/api/v1/users",
            None,
            Some(Permission::UsersManage),
        ),
        (
            Method::POST,
            "/api/v1/users",
            Some(json!({ "email": "x@example.org", "role": "KING" })),
            Some(Permission::UsersManage),
        ),
        (
            Method::PUT,
            missing_user.as_str(),
            Some(json!({ "name": "x" })),
            Some(Permission::UsersManage),
        ),
    ];
    for role in Role::ALL {
        let user = app.new_user(admin.organization_id, role).await?;
        let token = app.login(&user).await?;
        for (method, path, body, permission) in &routes {
            let body = body.as_ref().map(|b| {
                (
                    "application/json",
                    serde_json::to_vec(b).unwrap_or_default(),
                )
            });
            let resp = app.as_user(&token).send(method.clone(), path, body).await?;
            let allowed = permission.is_none_or(|p| role.can(p));
            let what = format!("{role:?} {method} {path}: {} {}", resp.status, resp.json);
            if allowed {
                ensure!(resp.status != 403, "{what}");
                ensure!(resp.status != 401, "{what}");
                ensure!(resp.status < 500, "{what}");
            } else {
                resp.expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")
                    .with_context(|| what.clone())?;
            }
        }
    }
    Ok(())
}
