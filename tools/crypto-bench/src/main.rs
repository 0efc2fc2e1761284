//! `crypto-bench [label]`: microseconds per signature operation, as Markdown
//! rows `| label | operation | µs |`. `cargo xtask bench` runs it natively
//! and as `wasm32-wasip2` under `wasmtime run`, so the cost of issue 16's
//! choice (Ed25519 instead of HMAC for tokens and the audit trail), and of
//! issue 17's second factor and sealed mail, is seen in the runtime the
//! functions use, in the same run. Timings are printed,
//! never asserted.

use std::hint::black_box;
use std::time::Instant;

use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt as _, Claims, Header, TimeOptions, UntrustedToken};
use shared::audit::chain;
use shared::auth::jwt::{self, AccessClaims};
use shared::config::{AuditKeys, HmacKey, SigningKey, ed25519};
use time::OffsetDateTime;

/// Operations timed per row (after a tenth as many to warm up).
const N: u32 = 2_000;

/// Microseconds per call of `op`.
fn per_op(mut op: impl FnMut() -> bool) -> anyhow::Result<f64> {
    for _ in 0..N / 10 {
        anyhow::ensure!(op(), "the operation failed");
    }
    let started = Instant::now();
    for _ in 0..N {
        anyhow::ensure!(black_box(op()), "the operation failed");
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / f64::from(N))
}

/// Microseconds per item of `op`, which handles `items` at once, run `runs`
/// times.
fn per_op_of(runs: u32, items: usize, mut op: impl FnMut() -> bool) -> anyhow::Result<f64> {
    anyhow::ensure!(op(), "the operation failed");
    let started = Instant::now();
    for _ in 0..runs {
        anyhow::ensure!(black_box(op()), "the operation failed");
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / f64::from(runs) / items as f64)
}

fn main() -> anyhow::Result<()> {
    let label = std::env::args().nth(1).unwrap_or_else(|| "native".into());
    let claims = AccessClaims {
        iss: "antevus".into(),
        aud: "antevus-api".into(),
        sub: uuid::Uuid::from_u128(1),
        org: uuid::Uuid::from_u128(2),
        role: "ADMIN".into(),
        sid: uuid::Uuid::from_u128(3),
        jti: uuid::Uuid::from_u128(4),
    };
    let now = OffsetDateTime::now_utc();
    let signing = SigningKey::from_seed("k1", [7; 32]);
    let public = ed25519::parse_public_keys("JWT_PUBLIC_KEYS", &signing.public_entry())?;
    let eddsa = jwt::sign(&signing, &claims, now, 900)?;

    // An access token as issued before issue 16: HS256 over the same claims.
    let hs_key = Hs256Key::new([7u8; 32]);
    let chrono_now = chrono::DateTime::<chrono::Utc>::from_timestamp(now.unix_timestamp(), 0)
        .ok_or_else(|| anyhow::anyhow!("the clock is out of range"))?;
    let options = TimeOptions::new(chrono::Duration::seconds(30), move || chrono_now);
    let header = Header::empty()
        .with_key_id("k1")
        .with_token_type(jwt::ACCESS_TOKEN_TYPE);
    let hs_claims = Claims::new(claims.clone())
        .set_duration_and_issuance(&options, chrono::Duration::seconds(900))
        .set_not_before(chrono_now);
    let hs256 = Hs256.token(&header, &hs_claims, &hs_key)?;

    let hash = [9u8; 32];
    let legacy = HmacKey {
        kid: "a1".into(),
        secret: vec![3; 32],
    };
    let audit_keys = AuditKeys {
        public: ed25519::parse_public_keys("AUDIT_PUBLIC_KEYS", &signing.public_entry())?,
        legacy: vec![legacy.clone()],
    };
    let ed_signature = chain::sign(&signing, &hash);
    let hmac_signature = legacy.sign(&hash);
    // A page of the verify route: 1,000 events' signatures, checked as one
    // batch.
    let page: Vec<chain::Pending> = (0..1_000u32)
        .map(|i| {
            let mut message = hash.to_vec();
            message[..4].copy_from_slice(&i.to_be_bytes());
            chain::Pending {
                kid: "k1".into(),
                signature: chain::sign(&signing, &message).to_vec(),
                message,
                signed_at: now,
            }
        })
        .collect();

    // Issue 17: a login's second factor (open the sealed TOTP key, check a
    // code against three steps) and sealing a mail body.
    let sealing = shared::config::SealingKeys::parse(
        "ENCRYPTION_KEYS",
        "d1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
    )?;
    let totp_key = [5u8; 20];
    let user = uuid::Uuid::from_u128(1);
    let factor = shared::model::second_factor::Factor {
        secret_sealed: sealing.seal(
            &totp_key,
            &shared::auth::second_factor::sealing_context(user),
            [1; 12],
        ),
        confirmed: true,
        last_used_step: 0,
    };
    let unix = now.unix_timestamp();
    let code = shared::auth::second_factor::code_at(&totp_key, unix)
        .ok_or_else(|| anyhow::anyhow!("no TOTP code"))?;
    let mail_body = "x".repeat(1024);

    let rows: [(&str, f64); 11] = [
        (
            "access token verify, HS256 (before)",
            per_op(|| {
                UntrustedToken::new(&hs256)
                    .ok()
                    .and_then(|t| Hs256.validator::<AccessClaims>(&hs_key).validate(&t).ok())
                    .is_some()
            })?,
        ),
        (
            "access token verify, EdDSA (now)",
            per_op(|| jwt::verify(&public, &eddsa, now, "antevus", "antevus-api").is_ok())?,
        ),
        (
            "access token sign, HS256 (before)",
            per_op(|| Hs256.token(&header, &hs_claims, &hs_key).is_ok())?,
        ),
        (
            "access token sign, EdDSA (now)",
            per_op(|| jwt::sign(&signing, &claims, now, 900).is_ok())?,
        ),
        (
            "audit signature, HMAC-SHA256 (before)",
            per_op(|| legacy.sign(black_box(&hash)) != [0; 32])?,
        ),
        (
            "audit signature, Ed25519 (now)",
            per_op(|| chain::sign(&signing, black_box(&hash)) != [0; 64])?,
        ),
        (
            "audit verify, HMAC-SHA256 (before)",
            per_op(|| chain::verify_by(&audit_keys, "a1", &hash, &hmac_signature, now))?,
        ),
        (
            "audit verify, Ed25519 (now)",
            per_op(|| chain::verify_by(&audit_keys, "k1", &hash, &ed_signature, now))?,
        ),
        (
            "second factor: open the sealed TOTP key (AES-256-GCM) and check a code",
            per_op(|| {
                sealing
                    .open(
                        &factor.secret_sealed,
                        &shared::auth::second_factor::sealing_context(user),
                    )
                    .ok()
                    .and_then(|key| {
                        shared::auth::second_factor::matching_step(&key, &code, unix, 0)
                    })
                    .is_some()
            })?,
        ),
        (
            "mail body seal, 1 KiB (AES-256-GCM)",
            per_op(|| {
                sealing
                    .seal(mail_body.as_bytes(), b"antevus:mail:x", [2; 12])
                    .len()
                    > 1024
            })?,
        ),
        (
            "audit verify, Ed25519 in a batch of 1,000 (the verify route), per signature",
            per_op_of(N / 100, page.len(), || {
                chain::first_unverified(&audit_keys, &page).is_none()
            })?,
        ),
    ];
    for (operation, micros) in rows {
        println!("| {label} | {operation} | {micros:.1} |");
    }
    Ok(())
}
