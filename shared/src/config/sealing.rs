//! Secrets kept at rest (a second factor's TOTP key, later mail bodies and
//! assistant threads): AES-256-GCM under `ENCRYPTION_KEYS`
//! (`kid:base64url,...`, 32-byte keys; the first seals, every one opens),
//! a random 96-bit nonce per message, the key id stored with the
//! ciphertext (keys rotate without re-encrypting everything) and
//! associated data binding the ciphertext to its row. The database holds
//! ciphertext only; the keys live with the functions that declare them.
//!
//! Sealed text: `<kid>.<base64url(nonce || ciphertext || tag)>`.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;

use super::ConfigError;

/// One key of `ENCRYPTION_KEYS`.
#[derive(Clone)]
struct Key {
    kid: String,
    cipher: Aes256Gcm,
}

/// The keys that seal and open secrets at rest.
#[derive(Clone)]
pub struct SealingKeys {
    keys: Vec<Key>,
}

impl std::fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("SealingKeys").field("kids", &kids).finish()
    }
}

/// Why sealed text did not open. Nothing more is told: a wrong key, a
/// changed ciphertext and a ciphertext moved to another row look the same.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sealed data does not open: {0}")]
pub struct Unsealable(&'static str);

impl SealingKeys {
    /// Parses `kid:base64url,...` (unique ids, 32-byte keys).
    pub fn parse(name: &str, raw: &str) -> Result<SealingKeys, ConfigError> {
        let keys = super::parse_keys(name, raw)?
            .into_iter()
            .map(|key| {
                if key.secret.len() != 32 {
                    return Err(ConfigError(format!(
                        "{name}: key {} must be 32 bytes (AES-256)",
                        key.kid
                    )));
                }
                if key.kid.contains('.') {
                    return Err(ConfigError(format!(
                        "{name}: key id {} may not contain '.'",
                        key.kid
                    )));
                }
                let cipher = Aes256Gcm::new_from_slice(&key.secret).map_err(|_| {
                    ConfigError(format!("{name}: key {} is not an AES-256 key", key.kid))
                })?;
                Ok(Key {
                    kid: key.kid,
                    cipher,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(ConfigError(format!("{name} names no key")));
        }
        Ok(SealingKeys { keys })
    }

    /// Seals `plaintext` for the row `aad` names, under the first key, with
    /// `nonce` (random, never reused with a key).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8], nonce: [u8; 12]) -> String {
        let key = &self.keys[0];
        // Encryption fails only for inputs beyond GCM's limit (64 GiB).
        let sealed = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!(
            "{}.{}",
            key.kid,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        )
    }

    /// Opens text [`SealingKeys::seal`] made for the row `aad` names.
    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, Unsealable> {
        let (kid, body) = sealed
            .split_once('.')
            .ok_or(Unsealable("not sealed text"))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(Unsealable("unknown key"))?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| Unsealable("not base64url"))?;
        if bytes.len() < 12 + 16 {
            return Err(Unsealable("too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        key.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| Unsealable("authentication failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(raw: &str) -> SealingKeys {
        SealingKeys::parse("ENCRYPTION_KEYS", raw).unwrap_or_else(|e| panic!("{e}"))
    }

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";

    #[test]
    fn sealed_text_opens_only_for_its_row_and_under_its_key() {
        let one = keys(K1);
        let sealed = one.seal(b"JBSWY3DPEHPK3PXP", b"totp:user-1", [7; 12]);
        assert!(sealed.starts_with("k1."));
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(
            one.open(&sealed, b"totp:user-1").ok().as_deref(),
            Some(&b"JBSWY3DPEHPK3PXP"[..])
        );
        assert!(
            one.open(&sealed, b"totp:user-2").is_err(),
            "moved to another row"
        );
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert!(
            one.open(&String::from_utf8_lossy(&flipped), b"totp:user-1")
                .is_err()
        );
        // Rotation: a new first key seals, the old one still opens.
        let rotated = keys(&format!("{K2},{K1}"));
        assert!(rotated.seal(b"x", b"a", [1; 12]).starts_with("k2."));
        assert!(rotated.open(&sealed, b"totp:user-1").is_ok());
        assert!(
            keys(K2).open(&sealed, b"totp:user-1").is_err(),
            "retired key"
        );
    }

    #[test]
    fn keys_must_be_aes_256() {
        assert!(
            SealingKeys::parse(
                "ENCRYPTION_KEYS",
                "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ"
            )
            .is_err()
        );
        assert!(SealingKeys::parse("ENCRYPTION_KEYS", "").is_err());
    }
}
