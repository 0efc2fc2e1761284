//! The second factor: enrolment, the login's second step, replay, recovery
//! codes, the lockout, the organization's policy, an administrator's reset
//! and electronic signatures. The suite's authenticator is totp-rs reading
//! the `otpauth://` URI, as an app reading the QR code would.

use anyhow::{Context as _, ensure};
use reqwest::Method;
use serde_json::{Value, json};
use shared::auth::Role;

use crate::client::{Resp, TestApp, User};
use crate::lab::id_of;
use crate::runs::started_run;

crate::cases![
    totp_enrolment_login_and_replay,
    recovery_codes_are_single_use_and_wrong_codes_lock_the_account,
    policy_requires_a_factor_admins_reset_it_and_signatures_ask_for_it,
];

/// An authenticator app holding one key: each code it gives is of a later
/// 30-second step than the last (as a person waits for the next code).
pub struct Authenticator {
    totp: totp_rs::TOTP,
    last_step: i64,
}

impl Authenticator {
    pub fn from_uri(uri: &str) -> anyhow::Result<Self> {
        let totp = totp_rs::TOTP::from_url(uri)
            .map_err(|e| anyhow::anyhow!("otpauth URI {uri}: {e:?}"))?;
        Ok(Authenticator { totp, last_step: 0 })
    }

    /// A code the server accepts now (its step within one of the current)
    /// and has not seen; waits for the next step when all are spent.
    pub async fn next_code(&mut self) -> String {
        loop {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let current = now / 30;
            let step = (self.last_step + 1).max(current - 1);
            if step <= current + 1 {
                self.last_step = step;
                return self.totp.generate((step * 30) as u64);
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    /// A code no step near now has.
    pub fn wrong_code(&self) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp() / 30;
        let near: Vec<String> = (now - 2..=now + 2)
            .map(|s| self.totp.generate((s * 30) as u64))
            .collect();
        (0..1_000_000)
            .map(|n| format!("{n:06}"))
            .find(|c| !near.contains(c))
            .unwrap_or_default()
    }
}

/// `user` (signed in with `token`) sets up a factor: the authenticator and
/// the recovery codes.
pub async fn enrol(
    app: &TestApp,
    user: &User,
    token: &str,
) -> anyhow::Result<(Authenticator, Vec<String>)> {
    let enrolled = app
        .as_user(token)
        .post("/api/auth/mfa/enroll", &json!({"password": user.password}))
        .await?;
    let uri = enrolled.expect_ok(200)?["otpauthUri"]
        .as_str()
        .context("otpauthUri")?
        .to_owned();
    let mut authenticator = Authenticator::from_uri(&uri)?;
    let code = authenticator.next_code().await;
    let confirmed = app
        .as_user(token)
        .post("/api/auth/mfa/confirm", &json!({"code": code}))
        .await?;
    let codes = confirmed.expect_ok(200)?["recoveryCodes"]
        .as_array()
        .context("recoveryCodes")?
        .iter()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    Ok((authenticator, codes))
}

/// The password step of `user`'s login: its challenge (`purpose` checked).
pub async fn challenge(app: &TestApp, user: &User, purpose: &str) -> anyhow::Result<String> {
    let login = app
        .anonymous()
        .post(
            "/api/auth/login",
            &json!({"email": user.email, "password": user.password}),
        )
        .await?;
    let data = login.expect_ok(200)?;
    ensure!(
        data["mfaRequired"] == true && data["purpose"] == purpose,
        "{data}"
    );
    ensure!(
        data.get("accessToken").is_none() && data.get("refreshToken").is_none(),
        "{data}"
    );
    ensure!(
        login.headers.get("set-cookie").is_none(),
        "no session cookie before the second factor"
    );
    Ok(data["challengeToken"]
        .as_str()
        .context("challengeToken")?
        .to_owned())
}

async fn verify(app: &TestApp, challenge: &str, field: &str, code: &str) -> anyhow::Result<Resp> {
    app.anonymous()
        .post(
            "/api/auth/mfa/verify",
            &json!({"challengeToken": challenge, field: code}),
        )
        .await
}

async fn events(app: &TestApp, user: uuid::Uuid) -> anyhow::Result<Vec<(String, Value)>> {
    let db = app.db().await?;
    Ok(db
        .query(
            "SELECT event_type, metadata FROM audit_events WHERE user_id = $1 ORDER BY sequence",
            &[&user],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

async fn totp_enrolment_login_and_replay(app: &TestApp) -> anyhow::Result<()> {
    let (user, token) = app
        .member(
            app.new_org_user(Role::Admin).await?.organization_id,
            Role::Scientist,
        )
        .await?;
    let enroll = |body: Value| {
        let token = token.clone();
        async move {
            app.as_user(&token)
                .post("/api/auth/mfa/enroll", &body)
                .await
        }
    };
    // Before anything: no factor, none pending.
    let none = app.as_user(&token).get("/api/auth/mfa").await?;
    let none = none.expect_ok(200)?.clone();
    ensure!(
        none["enabled"] == false && none["pending"] == false && none["recoveryCodesLeft"] == 0,
        "{none}"
    );
    // Setting one up asks for the password again.
    let bare = enroll(json!({})).await?;
    bare.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(bare.detail_fields() == ["password"], "{}", bare.json);
    enroll(json!({"password": "not it"}))
        .await?
        .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    let started = enroll(json!({"password": user.password})).await?;
    let data = started.expect_ok(200)?.clone();
    let uri = data["otpauthUri"].as_str().context("otpauthUri")?;
    ensure!(uri.starts_with("otpauth://totp/Antevus:"), "{uri}");
    ensure!(
        data["digits"] == 6 && data["period"] == 30 && data["algorithm"] == "SHA1",
        "{data}"
    );
    let mut app_on_phone = Authenticator::from_uri(uri)?;
    ensure!(
        app_on_phone.totp.issuer.as_deref() == Some("Antevus"),
        "issuer"
    );
    ensure!(
        app_on_phone.totp.account_name == user.email,
        "{}",
        app_on_phone.totp.account_name
    );
    // The key is sealed at rest.
    let secret = data["secret"].as_str().context("secret")?;
    let db = app.db().await?;
    let stored: String = db
        .query_one(
            "SELECT secret_sealed FROM user_second_factors WHERE user_id = $1",
            &[&user.id],
        )
        .await?
        .get(0);
    ensure!(
        !stored.contains(secret) && stored.starts_with("d1."),
        "{stored}"
    );
    // Pending: not in force until confirmed; the password alone still signs in.
    let status = app.as_user(&token).get("/api/auth/mfa").await?;
    ensure!(
        status.expect_ok(200)?["pending"] == true && status.json["data"]["enabled"] == false,
        "{}",
        status.json
    );
    app.login(&user).await?;
    let wrong = app
        .as_user(&token)
        .post(
            "/api/auth/mfa/confirm",
            &json!({"code": app_on_phone.wrong_code()}),
        )
        .await?;
    wrong.expect_error(400, "VALIDATION_ERROR")?;
    let code = app_on_phone.next_code().await;
    let confirmed = app
        .as_user(&token)
        .post("/api/auth/mfa/confirm", &json!({"code": code}))
        .await?;
    let codes = confirmed.expect_ok(200)?["recoveryCodes"]
        .as_array()
        .context("codes")?
        .len();
    ensure!(codes == 10, "{}", confirmed.json);
    let status = app.as_user(&token).get("/api/auth/mfa").await?;
    ensure!(
        status.expect_ok(200)?["enabled"] == true && status.json["data"]["recoveryCodesLeft"] == 10
    );
    enroll(json!({"password": user.password}))
        .await?
        .expect_error(409, "CONFLICT")?;

    // The password now yields a challenge, not a session; the challenge is
    // no access token.
    let challenge_token = challenge(app, &user, "verify").await?;
    app.as_user(&challenge_token)
        .get("/api/auth/me")
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    verify(app, &challenge_token, "code", &app_on_phone.wrong_code())
        .await?
        .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    // The confirming code does not count twice.
    verify(app, &challenge_token, "code", &code)
        .await?
        .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    let code = app_on_phone.next_code().await;
    let signed_in = verify(app, &challenge_token, "code", &code).await?;
    let access = signed_in.expect_ok(200)?["accessToken"]
        .as_str()
        .context("accessToken")?
        .to_owned();
    app.as_user(&access)
        .get("/api/auth/me")
        .await?
        .expect_ok(200)?;
    // Replayed, even with a fresh challenge: refused.
    let again = challenge(app, &user, "verify").await?;
    verify(app, &again, "code", &code)
        .await?
        .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    // A forged or mangled challenge is refused before anything is looked at.
    verify(app, &format!("{challenge_token}x"), "code", "123456")
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    verify(app, &access, "code", "123456")
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;

    let trail = events(app, user.id).await?;
    let kinds: Vec<&str> = trail.iter().map(|(k, _)| k.as_str()).collect();
    for wanted in [
        "MFA_ENROLMENT_STARTED",
        "MFA_ENABLED",
        "AUTH_MFA_REQUIRED",
        "AUTH_MFA_FAILURE",
    ] {
        ensure!(kinds.contains(&wanted), "{wanted} missing from {kinds:?}");
    }
    ensure!(
        trail
            .iter()
            .any(|(k, m)| k == "AUTH_LOGIN_SUCCESS" && m["secondFactor"] == "totp"),
        "{trail:?}"
    );
    Ok(())
}

async fn recovery_codes_are_single_use_and_wrong_codes_lock_the_account(
    app: &TestApp,
) -> anyhow::Result<()> {
    let admin = app.new_org_user(Role::Admin).await?;
    let (user, token) = app.member(admin.organization_id, Role::Technician).await?;
    let (mut phone, codes) = enrol(app, &user, &token).await?;
    let first = challenge(app, &user, "verify").await?;
    let recovered = verify(app, &first, "recoveryCode", &codes[0].to_uppercase()).await?;
    recovered.expect_ok(200)?;
    let left = app
        .as_user(
            recovered.json["data"]["accessToken"]
                .as_str()
                .context("token")?,
        )
        .get("/api/auth/mfa")
        .await?;
    ensure!(
        left.expect_ok(200)?["recoveryCodesLeft"] == 9,
        "{}",
        left.json
    );
    let trail = events(app, user.id).await?;
    ensure!(
        trail.iter().any(|(k, _)| k == "MFA_RECOVERY_CODE_USED"),
        "{trail:?}"
    );
    ensure!(
        trail
            .iter()
            .any(|(k, m)| k == "AUTH_LOGIN_SUCCESS" && m["secondFactor"] == "recovery_code")
    );
    // Used once, never again; each refusal counts toward the lockout.
    let second = challenge(app, &user, "verify").await?;
    verify(app, &second, "recoveryCode", &codes[0])
        .await?
        .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    for _ in 0..4 {
        verify(app, &second, "code", &phone.wrong_code())
            .await?
            .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    }
    // Five failures in a row: locked, even for the right code.
    let code = phone.next_code().await;
    verify(app, &second, "code", &code)
        .await?
        .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    let trail = events(app, user.id).await?;
    ensure!(
        trail.iter().any(|(k, _)| k == "AUTH_ACCOUNT_LOCKED"),
        "{trail:?}"
    );
    let locked: bool = app
        .db()
        .await?
        .query_one(
            "SELECT account_locked_until > now() FROM users WHERE id = $1",
            &[&user.id],
        )
        .await?
        .get(0);
    ensure!(locked, "the account is locked");
    // Malformed input is a clear error and counts for nothing.
    let neither = app
        .anonymous()
        .post("/api/auth/mfa/verify", &json!({"challengeToken": second}))
        .await?;
    neither.expect_error(400, "VALIDATION_ERROR")?;
    Ok(())
}

async fn policy_requires_a_factor_admins_reset_it_and_signatures_ask_for_it(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (admin, admin_token) = app.admin().await?;
    let org = admin.organization_id;
    let (scientist, token) = app.member(org, Role::Scientist).await?;
    let (_, run) = started_run(app, &admin_token, &token, "plate_reader").await?;
    let run_id = id_of(&run)?;
    app.as_user(&token)
        .json(
            Method::PUT,
            &format!("/api/v1/runs/{run_id}/stop"),
            &json!({"outcome": "aborted", "reason": "Plate dropped"}),
        )
        .await?
        .expect_ok(200)?;
    // Only administrators set the policy; roles are checked.
    let policy = |tok: &str, roles: Value| {
        let tok = tok.to_owned();
        async move {
            app.as_user(&tok)
                .json(
                    Method::PUT,
                    "/api/v1/organization/mfa-policy",
                    &json!({"requiredRoles": roles}),
                )
                .await
        }
    };
    policy(&token, json!(["SCIENTIST"]))
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    let bad = policy(&admin_token, json!(["SCIENTIST", "WIZARD"])).await?;
    bad.expect_error(400, "VALIDATION_ERROR")?;
    policy(&admin_token, json!(["SCIENTIST"]))
        .await?
        .expect_ok(200)?;
    let read = app
        .as_user(&admin_token)
        .get("/api/v1/organization/mfa-policy")
        .await?;
    ensure!(
        read.expect_ok(200)?["requiredRoles"] == json!(["SCIENTIST"]),
        "{}",
        read.json
    );

    // A scientist without a factor must set one up to sign in: the
    // challenge enrols, and confirming opens the session.
    let enrolment = challenge(app, &scientist, "enroll").await?;
    let started = app
        .anonymous()
        .post(
            "/api/auth/mfa/enroll",
            &json!({"challengeToken": enrolment}),
        )
        .await?;
    let mut phone = Authenticator::from_uri(
        started.expect_ok(200)?["otpauthUri"]
            .as_str()
            .context("uri")?,
    )?;
    let code = phone.next_code().await;
    let confirmed = app
        .anonymous()
        .post(
            "/api/auth/mfa/confirm",
            &json!({"challengeToken": enrolment, "code": code}),
        )
        .await?;
    let data = confirmed.expect_ok(200)?;
    ensure!(
        data["accessToken"].is_string()
            && data["recoveryCodes"].as_array().map(Vec::len) == Some(10),
        "{data}"
    );
    let token = data["accessToken"].as_str().context("token")?.to_owned();
    // Required for the role: the scientist cannot remove it.
    let removal = app
        .as_user(&token)
        .json(
            Method::DELETE,
            "/api/auth/mfa",
            &json!({"password": scientist.password, "code": "000000"}),
        )
        .await?;
    removal.expect_error(409, "CONFLICT")?;

    // Signing re-authenticates with the second factor too.
    let path = format!("/api/v1/runs/{run_id}/signatures");
    let sign = |body: Value| {
        let (path, token) = (path.clone(), token.clone());
        async move { app.as_user(&token).post(&path, &body).await }
    };
    let base =
        json!({"meaning": "authorship", "email": scientist.email, "password": scientist.password});
    let no_code = sign(base.clone()).await?;
    no_code.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(no_code.detail_fields() == ["code"], "{}", no_code.json);
    let mut wrong = base.clone();
    wrong["code"] = json!(phone.wrong_code());
    sign(wrong)
        .await?
        .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    let mut right = base.clone();
    right["code"] = json!(phone.next_code().await);
    sign(right).await?.expect_ok(201)?;

    // An administrator resets it, with a reason; the next login enrols again.
    let reset_path = format!("/api/v1/users/{}/mfa", scientist.id);
    let unexplained = app
        .as_user(&admin_token)
        .json(Method::DELETE, &reset_path, &json!({"reason": " "}))
        .await?;
    unexplained.expect_error(400, "VALIDATION_ERROR")?;
    app.as_user(&admin_token)
        .json(
            Method::DELETE,
            &reset_path,
            &json!({"reason": "Lost phone, identity checked in person"}),
        )
        .await?
        .expect_ok(200)?;
    let reason: Option<String> = app
        .db()
        .await?
        .query_one(
            "SELECT reason FROM audit_events WHERE event_type = 'MFA_RESET' AND record_id = $1",
            &[&scientist.id],
        )
        .await?
        .get(0);
    ensure!(
        reason.as_deref() == Some("Lost phone, identity checked in person"),
        "{reason:?}"
    );
    challenge(app, &scientist, "enroll").await?;
    app.as_user(&admin_token)
        .json(Method::DELETE, &reset_path, &json!({"reason": "again"}))
        .await?
        .expect_error(409, "CONFLICT")?;
    // Another organization's admin sees no such user; an admin cannot
    // reset a super admin's factor.
    let (_, stranger) = app.admin().await?;
    app.as_user(&stranger)
        .json(Method::DELETE, &reset_path, &json!({"reason": "x"}))
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    let (owner, _) = app.member(org, Role::SuperAdmin).await?;
    app.as_user(&admin_token)
        .json(
            Method::DELETE,
            &format!("/api/v1/users/{}/mfa", owner.id),
            &json!({"reason": "x"}),
        )
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    policy(&admin_token, json!([])).await?.expect_ok(200)?;
    Ok(())
}
