//! Sign-in, the session, users, invitations, API keys and the organization's policies: `auth_*`, `users*`, `api_keys*`, `organization_mfa_policy`.

use crate::routes;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    routes::auth_login::login,
    routes::auth_logout::logout,
    routes::auth_password::change,
    routes::auth_sessions::list,
    routes::auth_sessions_item::end,
    routes::auth_refresh::refresh,
    routes::auth_me::me,
    routes::auth_mfa::status,
    routes::auth_mfa::remove,
    routes::auth_mfa_enroll::enroll,
    routes::auth_mfa_confirm::confirm,
    routes::auth_mfa_verify::verify,
    routes::auth_forgot_password::forgot,
    routes::auth_reset_password::reset,
    routes::auth_signup::signup,
    routes::auth_signup_confirm::confirm,
    routes::users::list,
    routes::users::invite,
    routes::users_item::show,
    routes::users_item::update,
    routes::users_mfa::reset,
    routes::invitations::list,
    routes::invitations_item::revoke,
    routes::api_keys::list,
    routes::api_keys::create,
    routes::api_keys_item::revoke,
    routes::organization_mfa_policy::read,
    routes::organization_mfa_policy::replace,
))]
pub(super) struct Paths;
