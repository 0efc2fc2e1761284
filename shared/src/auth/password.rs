//! Password hashing: argon2id (m = 19 MiB, t = 2, p = 1), PHC string format,
//! 16-byte random salt from the platform (OWASP ASVS 5.0 V6).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Memory cost in KiB (19 MiB).
pub const M_COST_KIB: u32 = 19 * 1024;
/// Iterations.
pub const T_COST: u32 = 2;
/// Lanes.
pub const P_COST: u32 = 1;

/// A valid argon2id hash (of a random, discarded password) with the current
/// parameters. Verifying against it when the e-mail is unknown makes unknown
/// and known users cost the same time.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$YW50ZXZ1cy1kdW1teS1zYWx0$8J1XbnrgZKcd6iJYFTT9m7lmo9emvmUvs1rc+oc9xW0";

fn hasher() -> Argon2<'static> {
    // These constants are valid parameters; `Params::new` only rejects
    // out-of-range values.
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashing failed (only with invalid parameters or salt).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes `password` with the given 16 random bytes as salt.
pub fn hash(password: &str, salt: [u8; 16]) -> Result<String, HashError> {
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Verifies `password` against a PHC string. A malformed hash never verifies.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Burns the same work as a real verification, for unknown users.
pub fn verify_dummy(password: &str) {
    let _ = verify(password, DUMMY_HASH);
}

/// Whether a stored hash uses weaker parameters than the current policy.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    parsed.algorithm.as_str() != "argon2id"
        || params.m_cost() < M_COST_KIB
        || params.t_cost() < T_COST
        || params.p_cost() < P_COST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let phc = hash("correct horse battery staple", [7; 16]).expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse battery staple", &phc));
        assert!(!verify("correct horse battery stapler", &phc));
        assert!(!needs_rehash(&phc));
    }

    #[test]
    fn dummy_hash_parses_with_current_parameters() {
        assert!(
            !needs_rehash(DUMMY_HASH),
            "DUMMY_HASH must use the current parameters"
        );
        assert!(!verify("", DUMMY_HASH));
    }

    #[test]
    fn malformed_hash_never_verifies() {
        assert!(!verify("x", "not a hash"));
        assert!(!verify("x", ""));
        assert!(needs_rehash(
            "$argon2i$v=19$m=4096,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
        ));
    }

    #[test]
    fn long_passwords_are_not_truncated() {
        let long = "a".repeat(200);
        let phc = hash(&long, [1; 16]).expect("hash");
        assert!(verify(&long, &phc));
        assert!(!verify(&"a".repeat(199), &phc));
    }
}
