//! `/api/v1/runs/:id/signatures`: electronic signatures of a run.
//!
//! `POST` signs the run as it is now: `{meaning, password, email?,
//! comment?, code?}` (`code`: the authenticator's, when the signer has a
//! second factor) with `meaning` one of `review`, `approval` (`runs:create` or
//! `audit:view`), `responsibility`, `authorship` (`runs:create`). Signing
//! re-authenticates (21 CFR 11.200): the first signature of a login needs
//! both components (`email`, the user ID, and `password`), later ones in the
//! same continuous login the password. Only a person's login signs (not an
//! API key), only an ended run is signed, and a wrong password is refused
//! and audited (`ESIGNATURE_FAILED`). The signature records the printed
//! name, UTC time, meaning, the run version and a hash of the run's content,
//! and an Ed25519 seal over all of it and the run's id (seals made before
//! Ed25519 are HMACs, still checked with their key).
//!
//! `GET` (`runs:view`) lists them, each `valid`, `invalidated` (the run
//! changed after signing) or `tampered` (the record no longer matches its
//! seal, e.g. moved to another run).

use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::audit::{self, EventType, chain};
use crate::auth::{self, Permission, Principal, mfa, password};
use crate::config::AuditKeys;
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::page::Items;
use crate::model::run::{self, Run};
use crate::model::second_factor;
use crate::model::signature::{self, Stored};
use crate::platform::Platform;
use crate::ratelimit::Class;
use crate::request::Rq;

super::methods! {
    GET => list,
    POST => sign,
}

const MEANINGS: [&str; 4] = ["review", "approval", "responsibility", "authorship"];

/// SHA-256 of what a signature covers of the run: its identity, outcome,
/// results, data file digest and version (not its display fields).
pub fn run_hash(run: &Run) -> [u8; 32] {
    let content = json!([
        "antevus.run.v1",
        run.id,
        run.instrument_id,
        run.name,
        run.status,
        run.started_at
            .map(|t| t.unix_timestamp_nanos() / 1_000)
            .map(|m| m.to_string()),
        run.completed_at
            .map(|t| t.unix_timestamp_nanos() / 1_000)
            .map(|m| m.to_string()),
        run.operator_id,
        run.metadata,
        run.results,
        run.end_reason,
        run.version,
        run.data.as_ref().and_then(|d| d.sha256.clone()),
    ]);
    // serde_json's maps keep keys sorted: the encoding is stable.
    Sha256::digest(serde_json::to_vec(&content).unwrap_or_default()).into()
}

/// What a signature's HMAC covers.
#[allow(clippy::too_many_arguments)]
fn manifestation(
    id: uuid::Uuid,
    organization_id: uuid::Uuid,
    run_id: uuid::Uuid,
    signer_id: uuid::Uuid,
    printed_name: &str,
    meaning: &str,
    signed_at_micros: i64,
    run_version: i64,
    run_hash: &[u8],
) -> Vec<u8> {
    serde_json::to_vec(&json!([
        "antevus.esignature.v1",
        id,
        organization_id,
        run_id,
        signer_id,
        printed_name,
        meaning,
        signed_at_micros.to_string(),
        run_version,
        hex::encode(run_hash),
    ]))
    .unwrap_or_default()
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
struct SignatureView {
    id: uuid::Uuid,
    run_id: uuid::Uuid,
    signer_id: uuid::Uuid,
    /// The signer's name when they signed.
    printed_name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Meaning))]
    meaning: String,
    comment: Option<String>,
    signed_at: Timestamp,
    /// The run version signed.
    run_version: i64,
    /// Hex SHA-256 of the run's content as signed (identity, outcome,
    /// results, data file digest, version).
    run_hash: String,
    /// `valid`, `invalidated` or `tampered`.
    #[cfg_attr(feature = "openapi", schema(value_type = SignatureStatus))]
    status: &'static str,
    /// Why it is not `valid`.
    detail: Option<String>,
}

/// What a signature means (the document's name for `meaning`).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum Meaning {
    Review,
    Approval,
    Responsibility,
    Authorship,
}

/// Whether a signature still holds (the document's name for `status`).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum SignatureStatus {
    /// The seal checks and the run is as signed.
    Valid,
    /// The run changed after signing.
    Invalidated,
    /// The record no longer matches its seal (e.g. moved to another run).
    Tampered,
}

fn view(stored: Stored, run: &Run, keys: &AuditKeys) -> SignatureView {
    let message = manifestation(
        stored.id,
        stored.organization_id,
        stored.run_id,
        stored.signer_id,
        &stored.printed_name,
        &stored.meaning,
        (stored.signed_at.unix_timestamp_nanos() / 1_000) as i64,
        stored.run_version,
        &hex::decode(&stored.run_hash).unwrap_or_default(),
    );
    let authentic = stored.run_id == run.id
        && chain::verify_by(
            keys,
            &stored.key_id,
            &message,
            &hex::decode(&stored.signature).unwrap_or_default(),
            stored.signed_at.get(),
        );
    let (status, detail) = if !authentic {
        (
            "tampered",
            Some("The signature record does not match its seal".to_owned()),
        )
    } else if hex::encode(run_hash(run)) != stored.run_hash {
        (
            "invalidated",
            Some(format!(
                "The run changed after signing (signed version {}, now {})",
                stored.run_version, run.version
            )),
        )
    } else {
        ("valid", None)
    };
    SignatureView {
        id: stored.id,
        run_id: stored.run_id,
        signer_id: stored.signer_id,
        printed_name: stored.printed_name,
        meaning: stored.meaning,
        comment: stored.comment,
        signed_at: stored.signed_at,
        run_version: stored.run_version,
        run_hash: stored.run_hash,
        status,
        detail,
    }
}

/// List a run's electronic signatures
///
/// Requires `runs:view`. Oldest first, each checked now: `valid`,
/// `invalidated` (the run changed after signing) or `tampered` (the record
/// no longer matches its seal).
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/runs/{id}/signatures",
    params(("id" = uuid::Uuid, Path, description = "The run")),
    responses((status = 200, description = "The run's signatures", body = Items<SignatureView>))))]
async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::RunsView)?;
    let id = rq.uuid_param("id")?;
    let scope = principal.scope();
    let db = ctx.db();
    let run = run::get(&db, &scope, id).await?;
    let stored = signature::of_run(&db, &scope, id).await?;
    let keys = ctx.config.audit_keys()?;
    let items: Vec<SignatureView> = stored.into_iter().map(|s| view(s, &run, keys)).collect();
    Reply::ok(Items { items })
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct SignInput {
    #[cfg_attr(feature = "openapi", schema(value_type = Meaning))]
    meaning: String,
    /// The signer's password (every signature).
    #[cfg_attr(feature = "openapi", schema(format = Password))]
    password: String,
    /// The signer's user ID (e-mail): needed with the first signature of a
    /// login; when given, it must be the signer's.
    email: Option<String>,
    /// At most 1000 characters (trimmed).
    comment: Option<String>,
    /// The authenticator's current code, when the signer has a second
    /// factor.
    code: Option<String>,
}

fn may_sign(principal: &Principal, meaning: &str) -> bool {
    let role = principal.role;
    match meaning {
        "review" | "approval" => {
            role.can(Permission::RunsCreate) || role.can(Permission::AuditView)
        }
        _ => role.can(Permission::RunsCreate),
    }
}

/// The comment (trimmed, if any), or every problem with the request.
fn validate(input: &SignInput) -> Result<Option<&str>, ApiError> {
    let mut problems = Vec::new();
    if !MEANINGS.contains(&input.meaning.as_str()) {
        problems.push(FieldError::new(
            "meaning",
            format!("Must be one of: {}", MEANINGS.join(", ")),
        ));
    }
    let comment = input
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if comment.is_some_and(|c| c.chars().count() > 1000) {
        problems.push(FieldError::new(
            "comment",
            "Must be at most 1000 characters",
        ));
    }
    if input.password.is_empty() {
        problems.push(FieldError::new("password", "Signing needs your password"));
    }
    if problems.is_empty() {
        Ok(comment)
    } else {
        Err(ApiError::Validation(problems))
    }
}

/// The signer, once the signature's components identify them (21 CFR
/// 11.200): the password always, and the user ID (e-mail) with the first
/// signature of a login. A failed attempt is audited.
async fn confirm_identity<P: Platform>(
    ctx: &Ctx<P>,
    rq: &Rq,
    principal: &Principal,
    session_id: uuid::Uuid,
    run_id: uuid::Uuid,
    input: &SignInput,
) -> Result<signature::Signer, ApiError> {
    let scope = principal.scope();
    let db = ctx.db();
    let signer = signature::signer(&db, &scope, principal.user_id, session_id)
        .await?
        .ok_or(ApiError::TokenInvalid("user is not active"))?;
    let email_matches = input
        .email
        .as_deref()
        .is_some_and(|e| e.trim().eq_ignore_ascii_case(&signer.email));
    if !signer.signed_in_session && input.email.is_none() {
        return Err(ApiError::invalid(
            "email",
            "The first signature of a login needs your user ID (e-mail) and password",
        ));
    }
    let refuse = |reason: &'static str| {
        let failed = audit::Event {
            new_values: Some(json!({ "meaning": input.meaning })),
            metadata: json!({ "reason": reason }),
            ..audit::Event::by(
                ctx.new_uuid(),
                principal,
                EventType::EsignatureFailed,
                run_id,
            )
        };
        failed.insert(rq)
    };
    let password_ok = password::verify(&input.password, &signer.password_hash);
    if !password_ok || (input.email.is_some() && !email_matches) {
        scope
            .batch(&db, vec![refuse("identity not confirmed")?])
            .await?;
        return Err(ApiError::InvalidCredentials);
    }
    // A signer with a second factor gives its current code too; the code
    // is spent like a login's.
    if let Some(factor) = second_factor::load(&db, &scope, principal.user_id)
        .await?
        .filter(|f| f.confirmed)
    {
        let Some(code) = input
            .code
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        else {
            return Err(ApiError::invalid(
                "code",
                "Your account has a second factor: signing also needs the code your authenticator shows",
            ));
        };
        if !mfa::spend_code(ctx, &scope, principal.user_id, &factor, code).await? {
            scope
                .batch(&db, vec![refuse("second factor refused")?])
                .await?;
            return Err(ApiError::SecondFactorRefused);
        }
    }
    Ok(signer)
}

/// Sign a run electronically
///
/// Signs the run as it is now (21 CFR Part 11). Requires `runs:view`, and
/// for `review` or `approval` also `runs:create` or `audit:view`, for
/// `responsibility` or `authorship` `runs:create` (by role). Only a
/// person's login signs, not an API key (403), and only an ended run
/// (409). Signing re-authenticates: the first signature of a login needs
/// `email` and `password`, later ones in the same login the password; a
/// signer with a second factor also gives its current `code`. A wrong
/// password, e-mail or code is 401 and audited (`ESIGNATURE_FAILED`);
/// attempts are rate limited per user like logins. The signature records
/// the printed name, UTC time, meaning, run version and a hash of the
/// run's content, sealed with Ed25519; a run that changes meanwhile is
/// 409. Audited (`ESIGNATURE_APPLIED`).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/runs/{id}/signatures",
    params(("id" = uuid::Uuid, Path, description = "The run")),
    request_body = SignInput,
    responses(
        (status = 201, description = "The signature, `valid`", body = SignatureView),
        (status = 401, description = "The password, e-mail or second-factor code is wrong (audited)"),
        (status = 403, description = "An API key, or a role that may not sign with this meaning"),
        (status = 409, description = "The run has not ended, or changed while it was being signed"),
        (status = 429, description = "Too many signing attempts"))))]
async fn sign<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::RunsView)?;
    let Some(session_id) = principal
        .session_id
        .filter(|_| principal.api_key_id.is_none())
    else {
        return Err(ApiError::Forbidden {
            caller: Some(principal.caller()),
        });
    };
    let id = rq.uuid_param("id")?;
    let input: SignInput = rq.json(ctx)?;
    let comment = validate(&input)?;
    if !may_sign(&principal, &input.meaning) {
        return Err(ApiError::Forbidden {
            caller: Some(principal.caller()),
        });
    }
    // Throttle password guessing through signatures like logins.
    crate::ratelimit::check(
        ctx,
        rq,
        Class::Auth,
        &format!("esign:{}", principal.user_id),
        Some(&principal.scope()),
    )
    .await?;
    let scope = principal.scope();
    let db = ctx.db();
    let run = run::get(&db, &scope, id).await?;
    if run.status.is_active() {
        return Err(ApiError::conflict(format!(
            "A {} run is signed once it has ended",
            run.status.as_str()
        )));
    }
    let signer = confirm_identity(ctx, rq, &principal, session_id, id, &input).await?;

    let key = rq.audit_key()?;
    let signature_id = ctx.new_uuid();
    let signed_at = rq.started_at();
    let hash = run_hash(&run);
    let seal = chain::sign(
        key,
        &manifestation(
            signature_id,
            principal.organization_id,
            id,
            principal.user_id,
            &signer.name,
            &input.meaning,
            (signed_at.unix_timestamp_nanos() / 1_000) as i64,
            run.version,
            &hash,
        ),
    );
    let event = audit::Event {
        new_values: Some(json!({
            "signatureId": signature_id,
            "meaning": input.meaning,
            "printedName": signer.name,
            "runVersion": run.version,
            "runHash": hex::encode(hash),
            "comment": comment,
        })),
        ..audit::Event::by(ctx.new_uuid(), &principal, EventType::EsignatureApplied, id)
    };
    // Signed only while the run is still the version checked.
    let insert = signature::insert(
        &scope,
        &signature::NewSignature {
            id: signature_id,
            run_id: id,
            signer_id: principal.user_id,
            printed_name: &signer.name,
            meaning: &input.meaning,
            comment,
            run_version: run.version,
            run_hash: &hash,
            signed_at,
            session_id,
            key_id: &key.kid,
            seal: &seal,
        },
    );
    let results = scope
        .batch(&db, vec![event.record_change(rq, insert)?])
        .await?;
    if results.first().is_none_or(|r| r.rows.is_empty()) {
        return Err(ApiError::conflict(
            "The run changed while it was being signed; review it and sign again",
        ));
    }
    let stored = signature::load(&db, &scope, signature_id)
        .await?
        .ok_or_else(|| ApiError::internal("signature vanished"))?;
    Reply::created(view(stored, &run, ctx.config.audit_keys()?))
}
