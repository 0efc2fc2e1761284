//! The second factor: TOTP (RFC 6238) as every authenticator app speaks it
//! (HMAC-SHA-1, six digits, 30-second steps, a 160-bit key), one step of
//! clock skew either way, each step usable once; and single-use recovery
//! codes, stored as their SHA-256 (they carry 50 bits of randomness each,
//! and are tried only within the login lockout).

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use totp_rs::{Algorithm, TOTP};

/// Seconds per TOTP step.
pub const STEP_SECS: i64 = 30;
/// Steps of clock skew accepted either way.
const SKEW_STEPS: i64 = 1;
/// Recovery codes issued when a factor is confirmed.
pub const RECOVERY_CODES: usize = 10;
/// The issuer authenticator apps show.
pub const ISSUER: &str = "Antevus";

/// A TOTP key for `account` (the user's e-mail), from 20 random bytes.
fn totp(secret: &[u8], account: &str) -> Option<TOTP> {
    // The account name may not hold ':' (the label's separator).
    let account = account.replace(':', "_");
    TOTP::new(
        Algorithm::SHA1,
        6,
        0,
        STEP_SECS as u64,
        secret.to_vec(),
        Some(ISSUER.to_owned()),
        account,
    )
    .ok()
}

/// What enrolment shows: the key in base32 (to type in) and the
/// `otpauth://` URI (for a QR code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub secret_base32: String,
    pub otpauth_uri: String,
}

/// The enrolment of a new key.
pub fn enrolment(secret: &[u8; 20], account: &str) -> Option<Enrolment> {
    let totp = totp(secret, account)?;
    Some(Enrolment {
        secret_base32: totp.get_secret_base32(),
        otpauth_uri: totp.get_url(),
    })
}

/// Whether `code` has the shape of a TOTP code (six digits).
pub fn looks_like_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// The step `code` belongs to at `now` (unix seconds), within the skew,
/// when it is later than `last_used` (a used step never counts again).
pub fn matching_step(secret: &[u8], code: &str, now: i64, last_used: i64) -> Option<i64> {
    if !looks_like_code(code) {
        return None;
    }
    let totp = totp(secret, "x")?;
    let current = now.div_euclid(STEP_SECS);
    (current - SKEW_STEPS..=current + SKEW_STEPS)
        .filter(|step| *step > last_used && *step >= 0)
        .find(|step| {
            let expected = totp.generate((*step * STEP_SECS) as u64);
            bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
        })
}

/// The code of `step` (for tests and the suite's authenticator).
pub fn code_at(secret: &[u8], unix_secs: i64) -> Option<String> {
    Some(totp(secret, "x")?.generate(u64::try_from(unix_secs).ok()?))
}

/// A recovery code from 8 random bytes: ten base32 letters and digits in
/// two groups (`k7q2m-x9d4a`), easy to read off paper.
pub fn recovery_code(random: [u8; 8]) -> String {
    // No i, l, o, 0 or 1: nothing to misread.
    const ALPHABET: &[u8; 31] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut bits = u64::from_be_bytes(random);
    let mut code = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            code.push('-');
        }
        code.push(ALPHABET[(bits % 31) as usize] as char);
        bits /= 31;
    }
    code
}

/// The stored form of a recovery code: SHA-256 of its normalized text,
/// base64url. Case, spaces and dashes do not matter.
pub fn recovery_code_hash(code: &str) -> String {
    let normalized: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(normalized.as_bytes()))
}

/// The associated data that binds a sealed TOTP key to its user's row.
pub fn sealing_context(user_id: uuid::Uuid) -> Vec<u8> {
    format!("antevus:totp:{user_id}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 key, "12345678901234567890".
    const RFC_KEY: &[u8] = b"12345678901234567890";

    #[test]
    fn codes_match_rfc_6238_and_each_step_counts_once() {
        // RFC 6238 B: at 59 s the 8-digit code is 94287082; six digits 287082.
        assert_eq!(code_at(RFC_KEY, 59).as_deref(), Some("287082"));
        assert_eq!(code_at(RFC_KEY, 1_111_111_109).as_deref(), Some("081804"));
        let now = 1_111_111_109;
        let step = now / STEP_SECS;
        assert_eq!(matching_step(RFC_KEY, "081804", now, 0), Some(step));
        assert_eq!(
            matching_step(RFC_KEY, "081804", now, step),
            None,
            "replayed"
        );
        // One step of skew either way, not two.
        assert_eq!(
            matching_step(RFC_KEY, "081804", now + STEP_SECS, 0),
            Some(step)
        );
        assert_eq!(
            matching_step(RFC_KEY, "081804", now + 2 * STEP_SECS, 0),
            None
        );
        assert_eq!(matching_step(RFC_KEY, "81804", now, 0), None);
        assert_eq!(matching_step(RFC_KEY, "08180a", now, 0), None);
    }

    #[test]
    fn enrolment_names_the_issuer_and_account() {
        let e = enrolment(&[7; 20], "ana@lab.example").unwrap_or_else(|| panic!("enrolment"));
        assert!(
            e.otpauth_uri.starts_with("otpauth://totp/Antevus:ana"),
            "{}",
            e.otpauth_uri
        );
        assert!(
            e.otpauth_uri
                .contains(&format!("secret={}", e.secret_base32))
        );
        assert!(e.otpauth_uri.contains("issuer=Antevus"));
        assert_eq!(e.secret_base32.len(), 32);
    }

    #[test]
    fn recovery_codes_read_well_and_hash_forgivingly() {
        let code = recovery_code([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(code.len(), 11);
        assert_eq!(code.as_bytes()[5], b'-');
        assert_ne!(code, recovery_code([8, 7, 6, 5, 4, 3, 2, 1]));
        let spaced = code.to_uppercase().replace('-', " ");
        assert_eq!(recovery_code_hash(&code), recovery_code_hash(&spaced));
        assert_ne!(recovery_code_hash(&code), recovery_code_hash("aaaaa-aaaaa"));
    }
}
