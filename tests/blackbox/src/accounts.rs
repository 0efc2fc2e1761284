//! Accounts: signup, invitations, user administration, and the mail that carries their links.

use std::sync::Arc;

use anyhow::{Context as _, ensure};
use reqwest::Method;
use serde_json::{Value, json};
use shared::auth::Role;

use crate::client::TestApp;

crate::cases![
    signup_opens_an_organization_once_its_address_is_confirmed,
    signup_tells_nobody_whether_an_address_has_an_account,
    invitation_signup_joins_with_the_invited_role,
    invitations_are_listed_and_revoked_until_accepted,
    admins_manage_users_within_limits,
    mail_goes_through_the_configured_provider,
];

/// The token in the newest queued e-mail to `to` after `marker=`.
async fn mailed_token(app: &TestApp, to: &str, marker: &str) -> anyhow::Result<String> {
    let (_, body) = app.mail_to(to).await?.context("a queued message")?;
    body.split(marker)
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .map(str::to_owned)
        .context("token in mail")
}

pub(crate) fn unique_email(tag: &str) -> String {
    format!(
        "{tag}-{}@example.org",
        uuid::Uuid::from_bytes(rand_bytes()).simple()
    )
}

fn rand_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap_or_else(|e| panic!("no randomness: {e}"));
    b
}

async fn signup_opens_an_organization_once_its_address_is_confirmed(
    app: &TestApp,
) -> anyhow::Result<()> {
    let _reading_mail = app.reading_mail().await;
    let email = unique_email("founder");
    let password = "a long good passphrase";
    let body = json!({ "organizationName": "Genomics Core", "email": email, "name": "Ada", "password": password });
    let login = json!({ "email": email, "password": password });
    let answer = app
        .anonymous()
        .post("/api/auth/signup", &body)
        .await?
        .expect_ok(202)?
        .clone();
    // Nothing exists until the address's owner follows the mailed link.
    app.anonymous()
        .post("/api/auth/login", &login)
        .await?
        .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    let link = mailed_token(app, &email, "token=").await?;
    ensure!(link.starts_with("sg_"), "{link}");
    // Whoever follows it must know the password given with the request.
    let stranger = app
        .anonymous()
        .post(
            "/api/auth/signup/confirm",
            &json!({ "token": link, "password": "not the one they chose" }),
        )
        .await?;
    stranger.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(
        stranger.detail_fields() == ["password"],
        "{}",
        stranger.json
    );
    let confirm = json!({ "token": link, "password": password });
    let confirmed = app
        .anonymous()
        .post("/api/auth/signup/confirm", &confirm)
        .await?;
    let data = confirmed.expect_ok(201)?.clone();
    ensure!(data["user"]["role"] == "ADMIN", "{data}");
    ensure!(data["user"]["email"] == email.as_str(), "{data}");
    // Once.
    let again = app
        .anonymous()
        .post("/api/auth/signup/confirm", &confirm)
        .await?;
    again.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(again.detail_fields() == ["token"], "{}", again.json);
    let token = app
        .anonymous()
        .post("/api/auth/login", &login)
        .await?
        .expect_ok(200)?["accessToken"]
        .as_str()
        .context("token")?
        .to_owned();
    let me = app.as_user(&token).get("/api/auth/me").await?;
    ensure!(me.expect_ok(200)?["organization"]["name"] == "Genomics Core");
    let db = app.db().await?;
    let created = db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE organization_id = $1 AND event_type = 'USER_SIGNED_UP' \
             AND new_values->>'organizationName' = 'Genomics Core'",
            &[&uuid::Uuid::parse_str(data["organizationId"].as_str().context("organizationId")?)?],
        )
        .await?;
    ensure!(
        created.get::<_, i64>(0) == 1,
        "the organization's first record"
    );

    let weak = app.anonymous().post("/api/auth/signup", &json!({ "organizationName": "X", "email": unique_email("w"), "name": "W", "password": "password1" }))
        .await?;
    weak.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(weak.detail_fields() == ["password"], "{}", weak.json);
    let both = app.anonymous().post("/api/auth/signup", &json!({ "invitationToken": "in_x", "organizationName": "X", "email": unique_email("b"), "name": "B", "password": "a long good passphrase" }))
        .await?;
    both.expect_error(400, "VALIDATION_ERROR")?;
    let forged = app
        .anonymous()
        .post(
            "/api/auth/signup/confirm",
            &json!({ "token": format!("sg_{}", "A".repeat(43)), "password": password }),
        )
        .await?;
    forged.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(forged.detail_fields() == ["token"], "{}", forged.json);
    ensure!(answer["message"].is_string(), "{answer}");
    Ok(())
}

/// Nobody learns from a signup whether an address has an account, and
/// nobody can take an address they cannot read mail at.
async fn signup_tells_nobody_whether_an_address_has_an_account(
    app: &TestApp,
) -> anyhow::Result<()> {
    let _reading_mail = app.reading_mail().await;
    let (holder, _) = app.admin().await?;
    let ask = |email: &str, password: &str| json!({ "organizationName": "Squatters Inc", "email": email, "name": "Sam", "password": password });
    // An address with an account and one without: the same answer.
    let taken = app
        .anonymous()
        .post(
            "/api/auth/signup",
            &ask(&holder.email, "the squatter's passphrase"),
        )
        .await?;
    let fresh_address = unique_email("nobody");
    let free = app
        .anonymous()
        .post(
            "/api/auth/signup",
            &ask(&fresh_address, "the squatter's passphrase"),
        )
        .await?;
    ensure!(taken.status == 202 && free.status == 202);
    ensure!(
        taken.json["data"] == free.json["data"],
        "{} / {}",
        taken.json,
        free.json
    );
    // The holder is told by mail; no link, no organization.
    let (subject, note) = app
        .mail_to(&holder.email)
        .await?
        .context("the holder's note")?;
    ensure!(
        subject == "You already have an Antevus account" && !note.contains("token="),
        "{subject}: {note}"
    );
    // Two requests for one address: the owner confirms theirs with their
    // own password; the other (someone else's) cannot be confirmed after.
    let owner_password = "the owner's own passphrase";
    let squatter_link = mailed_token(app, &fresh_address, "token=").await?;
    app.anonymous()
        .post("/api/auth/signup", &ask(&fresh_address, owner_password))
        .await?
        .expect_ok(202)?;
    let owner_link = mailed_token(app, &fresh_address, "token=").await?;
    ensure!(owner_link != squatter_link);
    app.anonymous()
        .post(
            "/api/auth/signup/confirm",
            &json!({ "token": owner_link, "password": owner_password }),
        )
        .await?
        .expect_ok(201)?;
    let late = app
        .anonymous()
        .post(
            "/api/auth/signup/confirm",
            &json!({ "token": squatter_link, "password": "the squatter's passphrase" }),
        )
        .await?;
    late.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(late.detail_fields() == ["token"], "{}", late.json);

    // An invitation to an address with an account in another organization
    // is answered as any other (the accepting owner learns it, nobody else).
    let (_, inviter) = app.admin().await?;
    let across = app
        .as_user(&inviter)
        .post(
            "/api/v1/users",
            &json!({ "email": holder.email, "role": "VIEWER", "name": "Holder" }),
        )
        .await?;
    ensure!(across.status == 201, "{}", across.json);
    let invitation = mailed_token(app, &holder.email, "invitation=").await?;
    let accepted = app
        .anonymous()
        .post(
            "/api/auth/signup",
            &json!({ "invitationToken": invitation, "name": "Holder", "password": "a long good passphrase" }),
        )
        .await?;
    accepted.expect_error(409, "CONFLICT")?;
    Ok(())
}

async fn invitation_signup_joins_with_the_invited_role(app: &TestApp) -> anyhow::Result<()> {
    let _reading_mail = app.reading_mail().await;
    let (admin, token) = app.admin().await?;
    let email = unique_email("invitee");
    let invited = app
        .as_user(&token)
        .post(
            "/api/v1/users",
            &json!({ "email": email, "role": "TECHNICIAN", "name": "Tess" }),
        )
        .await?;
    let data = invited.expect_ok(201)?.clone();
    ensure!(
        data["role"] == "TECHNICIAN",
        "the token only travels by e-mail: {data}"
    );
    ensure!(
        data.get("token").is_none(),
        "the token only travels by e-mail: {data}"
    );
    let invitation = mailed_token(app, &email, "invitation=").await?;
    ensure!(invitation.starts_with("in_"));
    let body = json!({ "invitationToken": invitation, "name": "Tess", "password": "technician passphrase" });
    let joined = app.anonymous().post("/api/auth/signup", &body).await?;
    let user = joined.expect_ok(201)?.clone();
    ensure!(user["user"]["role"] == "TECHNICIAN", "{user}");
    ensure!(
        user["organizationId"] == admin.organization_id.to_string(),
        "{user}"
    );
    // Single use.
    let again = app.anonymous().post("/api/auth/signup", &body).await?;
    again.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(
        again.detail_fields() == ["invitationToken"],
        "{}",
        again.json
    );
    // Inviting an existing account is a conflict; bad roles are refused.
    app.as_user(&token)
        .post(
            "/api/v1/users",
            &json!({ "email": email, "role": "VIEWER" }),
        )
        .await?
        .expect_error(409, "CONFLICT")?;
    let bad = app
        .as_user(&token)
        .post(
            "/api/v1/users",
            &json!({ "email": unique_email("x"), "role": "KING" }),
        )
        .await?;
    ensure!(bad.detail_fields() == ["role"], "{}", bad.json);
    let sup = app
        .as_user(&token)
        .post(
            "/api/v1/users",
            &json!({ "email": unique_email("x"), "role": "SUPER_ADMIN" }),
        )
        .await?;
    sup.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(
        sup.detail_fields() == ["role"],
        "an admin cannot mint a super admin"
    );
    Ok(())
}

/// User managers list their organization's invitations (never the link)
/// with where each stands, and revoke a pending one: its link stops
/// working at once. An accepted or revoked invitation is 409, another
/// organization's 404, and only user managers see or revoke them.
async fn invitations_are_listed_and_revoked_until_accepted(app: &TestApp) -> anyhow::Result<()> {
    let _reading_mail = app.reading_mail().await;
    let (admin, token) = app.admin().await?;
    let invite = |email: String, role: &'static str| {
        let token = token.clone();
        async move {
            let made = app
                .as_user(&token)
                .post("/api/v1/users", &json!({ "email": email, "role": role }))
                .await?;
            anyhow::Ok(
                made.expect_ok(201)?["id"]
                    .as_str()
                    .context("id")?
                    .to_owned(),
            )
        }
    };
    let (accepted_email, pending_email) = (unique_email("accepts"), unique_email("pending"));
    let accepted_id = invite(accepted_email.clone(), "TECHNICIAN").await?;
    let accepted_link = mailed_token(app, &accepted_email, "invitation=").await?;
    let pending_id = invite(pending_email.clone(), "VIEWER").await?;
    let pending_link = mailed_token(app, &pending_email, "invitation=").await?;
    app.anonymous()
        .post(
            "/api/auth/signup",
            &json!({ "invitationToken": accepted_link, "name": "Ada", "password": "technician passphrase" }),
        )
        .await?
        .expect_ok(201)?;

    let listed = app.as_user(&token).get("/api/v1/invitations").await?;
    let items = listed.expect_ok(200)?["items"].clone();
    let text = items.to_string();
    ensure!(
        !text.contains(&accepted_link) && !text.contains(&pending_link),
        "{items}"
    );
    ensure!(items[0]["id"] == pending_id.as_str(), "{items}");
    ensure!(
        items[0]["status"] == "pending" && items[0]["role"] == "VIEWER",
        "{items}"
    );
    ensure!(items[0]["email"] == pending_email.as_str(), "{items}");
    ensure!(items[0]["invitedBy"] == admin.id.to_string(), "{items}");
    ensure!(items[0]["invitedByName"].is_string(), "{items}");
    ensure!(
        items[1]["status"] == "accepted" && items[1]["acceptedUserId"].is_string(),
        "{items}"
    );

    let (_, scientist) = app.member(admin.organization_id, Role::Scientist).await?;
    app.as_user(&scientist)
        .get("/api/v1/invitations")
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    let path = format!("/api/v1/invitations/{pending_id}");
    app.as_user(&scientist)
        .delete(&path)
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    let (_, stranger) = app.admin().await?;
    app.as_user(&stranger)
        .delete(&path)
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;

    let revoked = app.as_user(&token).delete(&path).await?;
    let revoked = revoked.expect_ok(200)?.clone();
    ensure!(
        revoked["status"] == "revoked" && revoked["revokedAt"].is_string(),
        "{revoked}"
    );
    // The link no longer works.
    let refused = app
        .anonymous()
        .post(
            "/api/auth/signup",
            &json!({ "invitationToken": pending_link, "name": "Vic", "password": "viewer passphrase" }),
        )
        .await?;
    refused.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(
        refused.detail_fields() == ["invitationToken"],
        "{}",
        refused.json
    );
    app.as_user(&token)
        .delete(&path)
        .await?
        .expect_error(409, "CONFLICT")?;
    app.as_user(&token)
        .delete(&format!("/api/v1/invitations/{accepted_id}"))
        .await?
        .expect_error(409, "CONFLICT")?;
    let events =
        crate::audit::event_types_of(&app.db().await?, &pending_id.parse::<uuid::Uuid>()?).await?;
    ensure!(
        events == ["USER_INVITED", "INVITATION_REVOKED"],
        "{events:?}"
    );
    Ok(())
}

async fn admins_manage_users_within_limits(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let user = app.new_user(admin.organization_id, Role::Scientist).await?;
    let user_token = app.login(&user).await?;
    let path = format!("/api/v1/users/{}", user.id);
    let list = app.as_user(&token).get("/api/v1/users").await?;
    ensure!(list.expect_ok(200)?["items"].as_array().map(Vec::len) == Some(2));
    let text = list.json.to_string();
    ensure!(!text.contains("passwordHash"), "no hashes in listings");
    ensure!(!text.contains("argon2"), "no hashes in listings");
    // A user may read themselves, not others, and may not manage users.
    app.as_user(&user_token).get(&path).await?.expect_ok(200)?;
    app.as_user(&user_token)
        .get(&format!("/api/v1/users/{}", admin.id))
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    let put = |body: Value, tok: String, p: String| async move {
        app.as_user(&tok)
            .send(
                Method::PUT,
                &p,
                Some(("application/json", serde_json::to_vec(&body)?)),
            )
            .await
    };
    put(json!({ "role": "ADMIN" }), user_token.clone(), path.clone())
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    // A role change needs a reason.
    let unexplained = put(
        json!({ "role": "LAB_MANAGER" }),
        token.clone(),
        path.clone(),
    )
    .await?;
    unexplained.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(
        unexplained.detail_fields() == ["reason"],
        "{}",
        unexplained.json
    );
    // Role change by the admin takes effect and is audited with old and new values.
    let promoted = put(
        json!({ "role": "LAB_MANAGER", "department": "Genomics", "reason": "Leads the genomics group" }),
        token.clone(),
        path.clone(),
    )
    .await?;
    ensure!(promoted.expect_ok(200)?["role"] == "LAB_MANAGER");
    let db = app.db().await?;
    let audit = db
        .query_one(
            "SELECT old_values->>'role', new_values->>'role', reason FROM audit_events WHERE record_id = $1 AND event_type = 'USER_UPDATED'",
            &[&user.id],
        )
        .await?;
    ensure!(audit.get::<_, String>(0) == "SCIENTIST" && audit.get::<_, String>(1) == "LAB_MANAGER");
    ensure!(audit.get::<_, Option<String>>(2).as_deref() == Some("Leads the genomics group"));
    // No one changes their own role or deactivates themselves; no passwords set here.
    let own = format!("/api/v1/users/{}", admin.id);
    let self_demote = put(json!({ "role": "VIEWER" }), token.clone(), own.clone()).await?;
    ensure!(
        self_demote.detail_fields() == ["role"],
        "{}",
        self_demote.json
    );
    let self_off = put(json!({ "isActive": false }), token.clone(), own.clone()).await?;
    ensure!(
        self_off.detail_fields() == ["isActive"],
        "{}",
        self_off.json
    );
    let pw = put(
        json!({ "password": "known to the admin" }),
        token.clone(),
        path.clone(),
    )
    .await?;
    pw.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(pw.detail_fields() == ["password"], "{}", pw.json);
    let sup = put(
        json!({ "role": "SUPER_ADMIN" }),
        token.clone(),
        path.clone(),
    )
    .await?;
    ensure!(sup.detail_fields() == ["role"], "{}", sup.json);
    // Nor does an admin deactivate a super admin: the lab's owner stays in.
    let owner = app
        .new_user(admin.organization_id, Role::SuperAdmin)
        .await?;
    let owner_path = format!("/api/v1/users/{}", owner.id);
    let ousted = put(
        json!({ "isActive": false, "reason": "taking over" }),
        token.clone(),
        owner_path.clone(),
    )
    .await?;
    ousted.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(ousted.detail_fields() == ["isActive"], "{}", ousted.json);
    let owner_token = app.login(&owner).await?;
    app.as_user(&owner_token)
        .get("/api/auth/me")
        .await?
        .expect_ok(200)?;
    // Deactivation ends the user's sessions at once.
    put(json!({ "isActive": false }), token.clone(), path.clone())
        .await?
        .expect_ok(200)?;
    app.as_user(&user_token)
        .get("/api/auth/me")
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    // Other organizations' users are 404.
    let (_, stranger) = app.admin().await?;
    app.as_user(&stranger)
        .get(&path)
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    put(json!({ "name": "x" }), stranger, path.clone())
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    app.as_user(&token)
        .get("/api/v1/users/nope")
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    Ok(())
}

/// What the mail provider stand-in received: (authorization, JSON body).
type Received = Arc<std::sync::Mutex<Vec<(Option<String>, Value)>>>;

/// A stand-in for a third-party HTTP mail provider (the network boundary):
/// records what it receives and answers with `status` (0: never answers).
async fn mail_provider(
    status: u16,
) -> anyhow::Result<(String, Received, tokio::sync::oneshot::Sender<()>)> {
    let received: Received = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/send",
        axum::routing::post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if let Ok(mut s) = sink.lock() {
                    s.push((auth, json));
                }
                if status == 0 {
                    std::future::pending::<()>().await;
                }
                http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK)
            }
        }),
    );
    let (address, stop) = crate::lab::serve_local(app).await?;
    Ok((format!("http://{address}/send"), received, stop))
}

async fn mail_goes_through_the_configured_provider(app: &TestApp) -> anyhow::Result<()> {
    // The sender claims every organization's due mail: no other case may
    // be between queueing a message and reading it meanwhile.
    let _sending_mail = app.sending_mail().await;
    let db = app.db().await?;
    let key = app.scheduler_key()?;
    for (status, delivered) in [(200u16, true), (503, false)] {
        let (url, received, stop) = mail_provider(status).await?;
        let host = app
            .host_with(&[
                ("MAIL_PROVIDER_URL", url.as_str()),
                ("MAIL_PROVIDER_TOKEN", "provider-secret"),
            ])
            .await?;
        let base = host.base_url.clone();
        let result = async {
            let user = app.new_org_user(Role::Viewer).await?;
            let resp = app.http.post(format!("{base}/api/auth/forgot-password")).json(&json!({ "email": user.email })).send().await?;
            ensure!(resp.status().as_u16() == 202, "the request succeeds whatever the provider says");
            // Nothing is sent on the request's path; the link is sealed at rest.
            ensure!(received.lock().map(|r| r.len()).unwrap_or_default() == 0, "sent on the request's path");
            let stored: String = db
                .query_one("SELECT coalesce(body_sealed, '') FROM email_outbox WHERE to_address = $1", &[&user.email])
                .await?
                .get(0);
            ensure!(!stored.is_empty() && !stored.contains("token="), "{stored}");
            // The scheduler's tick sends it; without its key, nothing.
            let tick = |auth: &str| {
                app.http
                    .post(format!("{base}/api/v1/jobs/send-mail"))
                    .header("authorization", format!("Bearer {auth}"))
                    .send()
            };
            ensure!(tick("not the key").await?.status().as_u16() == 401, "a tick without the scheduler's key");
            ensure!(received.lock().map(|r| r.len()).unwrap_or_default() == 0, "sent without the key");
            let ran = tick(&key).await?;
            ensure!(ran.status().as_u16() == 200, "tick {}", ran.status());
            let ran: Value = ran.json().await?;
            // Other organizations' due mail goes in the same run.
            let (sent, failed) = (ran["data"]["sent"].as_u64().unwrap_or(0), ran["data"]["failed"].as_u64().unwrap_or(0));
            ensure!(if delivered { sent >= 1 } else { sent == 0 && failed >= 1 }, "{ran}");
            let got = received.lock().map(|r| r.clone()).unwrap_or_default();
            let mine: Vec<_> = got.iter().filter(|(_, m)| m["to"] == user.email.as_str()).collect();
            ensure!(mine.len() == 1, "one message posted, got {}", mine.len());
            let (auth, message) = mine[0];
            ensure!(auth.as_deref() == Some("Bearer provider-secret"), "{auth:?}");
            ensure!(message["text"].as_str().unwrap_or_default().contains("reset-password?token=pr_"), "{message}");
            let row = db
                .query_one(
                    "SELECT sent_at IS NOT NULL, attempts, coalesce(last_error, ''), body_sealed IS NULL, \
                            next_attempt_at > now() + interval '30 seconds' \
                     FROM email_outbox WHERE to_address = $1",
                    &[&user.email],
                )
                .await?;
            ensure!(row.get::<_, bool>(0) == delivered, "sent_at recorded only on success");
            ensure!(row.get::<_, i32>(1) == 1);
            ensure!(delivered || row.get::<_, String>(2).contains("503"), "the failure is recorded");
            ensure!(row.get::<_, bool>(3) == delivered, "a sent message keeps no body; an unsent one keeps it");
            ensure!(delivered || row.get::<_, bool>(4), "a failure is retried after a backoff");
            // Not due again at once: a second tick does not post it again.
            ensure!(tick(&key).await?.status().as_u16() == 200);
            let posted = received.lock().map(|r| r.iter().filter(|(_, m)| m["to"] == user.email.as_str()).count()).unwrap_or_default();
            ensure!(posted == 1, "posted {posted} times");
            anyhow::Ok(())
        }
        .await;
        let _ = stop.send(());
        tokio::task::spawn_blocking(move || host.stop()).await?;
        result?;
    }

    // A provider that never answers: the first message waits out the
    // deadline (10 s), is recorded as failed, and the run stops there.
    let (url, received, _hanging) = mail_provider(0).await?;
    let host = app
        .host_with(&[("MAIL_PROVIDER_URL", url.as_str())])
        .await?;
    let base = host.base_url.clone();
    let result = async {
        let user = app.new_org_user(Role::Viewer).await?;
        app.http
            .post(format!("{base}/api/auth/forgot-password"))
            .json(&json!({ "email": user.email }))
            .send()
            .await?;
        let started = std::time::Instant::now();
        let ran = app
            .http
            .post(format!("{base}/api/v1/jobs/send-mail"))
            .bearer_auth(&key)
            .send()
            .await?;
        let waited = started.elapsed();
        ensure!(ran.status().as_u16() == 200, "tick {}", ran.status());
        let ran: Value = ran.json().await?;
        let data = &ran["data"];
        ensure!(data["sent"] == 0 && data["failed"] == 1, "{ran}");
        ensure!(
            data["deferred"].as_u64().map(|d| d + 1) == data["claimed"].as_u64(),
            "{ran}"
        );
        ensure!(
            waited >= std::time::Duration::from_secs(9),
            "answered after {waited:?}"
        );
        let tried = received
            .lock()
            .map(|r| {
                r.iter()
                    .filter_map(|(_, m)| m["to"].as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        ensure!(tried.len() == 1, "{tried:?}");
        let error: String = db
            .query_one(
                "SELECT coalesce(last_error, '') FROM email_outbox WHERE to_address = $1 \
                 ORDER BY created_at DESC LIMIT 1",
                &[&tried[0]],
            )
            .await?
            .get(0);
        ensure!(error.contains("no answer within 10000 ms"), "{error}");
        anyhow::Ok(())
    }
    .await;
    tokio::task::spawn_blocking(move || host.stop()).await?;
    result
}
