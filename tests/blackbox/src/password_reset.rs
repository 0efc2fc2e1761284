//! Password reset by an e-mailed link, and what it refuses.

use anyhow::{Context as _, ensure};
use serde_json::json;
use shared::auth::Role;

use crate::client::TestApp;

crate::cases![
    password_reset_by_email_link,
    password_reset_refuses_bad_tokens_and_weak_passwords,
];

/// The newest queued e-mail to `to`, and the reset token in its link.
pub(crate) async fn reset_mail(
    app: &TestApp,
    to: &str,
) -> anyhow::Result<Option<(String, String)>> {
    Ok(app.mail_to(to).await?.map(|(subject, body)| {
        let token = body
            .split("token=")
            .nth(1)
            .map(|t| t.split_whitespace().next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        (subject, token)
    }))
}

async fn password_reset_by_email_link(app: &TestApp) -> anyhow::Result<()> {
    let _reading_mail = app.reading_mail().await;
    let user = app.new_org_user(Role::Scientist).await?;
    let old_session = app.login(&user).await?;
    let known = app
        .anonymous()
        .post("/api/auth/forgot-password", &json!({ "email": user.email }))
        .await?;
    let unknown = app
        .anonymous()
        .post(
            "/api/auth/forgot-password",
            &json!({ "email": "nobody-at-all@example.org" }),
        )
        .await?;
    ensure!(
        known.expect_ok(202)? == unknown.expect_ok(202)?,
        "the same answer either way"
    );
    ensure!(
        reset_mail(app, "nobody-at-all@example.org")
            .await?
            .is_none(),
        "no mail for an unknown account"
    );
    let (subject, token) = reset_mail(app, &user.email)
        .await?
        .context("a reset e-mail is queued")?;
    ensure!(subject.contains("Reset"), "{subject} {token}");
    ensure!(token.starts_with("pr_"), "{subject} {token}");
    let db = app.db().await?;
    let stored: i64 = db
        .query_one(
            "SELECT count(*) FROM password_resets WHERE user_id = $1 \
             AND expires_at BETWEEN now() + interval '29 minutes' AND now() + interval '31 minutes' \
             AND token_hash = sha256(convert_to($2, 'UTF8'))",
            &[&user.id, &token],
        )
        .await?
        .get(0);
    ensure!(
        stored == 1,
        "the token is stored as its SHA-256, valid for 30 minutes"
    );
    let new_password = "a brand new lab password";
    let reset = app
        .anonymous()
        .post(
            "/api/auth/reset-password",
            &json!({ "token": token, "password": new_password }),
        )
        .await?;
    ensure!(reset.expect_ok(200)?["passwordReset"] == true);
    // Every session ended; the old password is gone; the new one works.
    app.as_user(&old_session)
        .get("/api/auth/me")
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    app.anonymous()
        .post(
            "/api/auth/login",
            &json!({ "email": user.email, "password": user.password }),
        )
        .await?
        .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    app.anonymous()
        .post(
            "/api/auth/login",
            &json!({ "email": user.email, "password": new_password }),
        )
        .await?
        .expect_ok(200)?;
    // Single use.
    let again = app
        .anonymous()
        .post(
            "/api/auth/reset-password",
            &json!({ "token": token, "password": "another one, longer" }),
        )
        .await?;
    again.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(again.detail_fields() == ["token"], "{}", again.json);
    let audited: i64 = db
        .query_one("SELECT count(*) FROM audit_events WHERE user_id = $1 AND event_type = 'AUTH_PASSWORD_RESET'", &[&user.id])
        .await?
        .get(0);
    ensure!(audited == 1);
    Ok(())
}

async fn password_reset_refuses_bad_tokens_and_weak_passwords(app: &TestApp) -> anyhow::Result<()> {
    let _reading_mail = app.reading_mail().await;
    let user = app.new_org_user(Role::Viewer).await?;
    app.anonymous()
        .post("/api/auth/forgot-password", &json!({ "email": user.email }))
        .await?
        .expect_ok(202)?;
    let (_, token) = reset_mail(app, &user.email).await?.context("mail")?;
    let weak = app
        .anonymous()
        .post(
            "/api/auth/reset-password",
            &json!({ "token": token, "password": "password123" }),
        )
        .await?;
    weak.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(weak.detail_fields() == ["password"], "{}", weak.json);
    let short = app
        .anonymous()
        .post(
            "/api/auth/reset-password",
            &json!({ "token": token, "password": "short" }),
        )
        .await?;
    ensure!(short.detail_fields() == ["password"], "{}", short.json);
    let forged = format!("pr_{}", "B".repeat(43));
    let bad = app
        .anonymous()
        .post(
            "/api/auth/reset-password",
            &json!({ "token": forged, "password": "perfectly fine password" }),
        )
        .await?;
    bad.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(bad.detail_fields() == ["token"]);
    // Expired: the token stops working after 30 minutes.
    let db = app.db().await?;
    db.execute(
        "UPDATE password_resets SET expires_at = now() - interval '1 second' WHERE user_id = $1",
        &[&user.id],
    )
    .await?;
    let expired = app
        .anonymous()
        .post(
            "/api/auth/reset-password",
            &json!({ "token": token, "password": "perfectly fine password" }),
        )
        .await?;
    expired.expect_error(400, "VALIDATION_ERROR")?;
    // Nothing changed: the original password still works.
    app.login(&user).await?;
    app.anonymous()
        .post(
            "/api/auth/forgot-password",
            &json!({ "email": "not an email" }),
        )
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    Ok(())
}
