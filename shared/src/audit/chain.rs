//! Tamper evidence: each event's content hash and signature, the chain
//! hash, and checking a stored chain.
//!
//! The application computes `content_hash` = SHA-256 of the event's
//! canonical encoding ([`Content::canonical`]) and `signature` = the
//! Ed25519 signature of content_hash with `AUDIT_SIGNING_KEY` (events
//! recorded before Ed25519 carry HMAC-SHA256(key, content_hash) under an
//! `AUDIT_KEYS` key, and still verify with it); the
//! database puts the event on its organization's chain (`sequence`,
//! `previous_hash`, `hash` = SHA-256(previous_hash || sequence (8 bytes,
//! big-endian) || content_hash)) under a lock on the chain's head (migration
//! V8). Checkpoints sign a chain's head so that cutting or rewriting the
//! chain behind one is detected.

use ed25519_dalek::{Signer as _, Verifier as _};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::config::{AuditKeys, SigningKey};

/// The chain of events without an organization (refusals before anyone is
/// authenticated, failed logins, resets).
pub const SYSTEM_CHAIN: uuid::Uuid = uuid::Uuid::nil();

/// The chain of client reports made without credentials (`CLIENT_*` events
/// of no organization; migration V21), apart from [`SYSTEM_CHAIN`] so a
/// flood of them never holds up its events.
pub const CLIENT_REPORTS_CHAIN: uuid::Uuid = uuid::Uuid::from_u128(1);

/// Events recorded before signing existed: chained, not signed.
pub const LEGACY_KEY_ID: &str = "legacy";

/// Version tag at the head of every canonical encoding.
const ENCODING: &str = "antevus.audit.v1";

/// What an event's content hash covers.
#[derive(Debug, Clone)]
pub struct Content<'a> {
    pub id: uuid::Uuid,
    pub organization_id: Option<uuid::Uuid>,
    pub user_id: Option<uuid::Uuid>,
    pub event_type: &'a str,
    pub severity: &'a str,
    pub action: &'a str,
    pub outcome: &'a str,
    pub record_type: Option<&'a str>,
    pub record_id: Option<uuid::Uuid>,
    pub old_values: Option<&'a Value>,
    pub new_values: Option<&'a Value>,
    pub reason: Option<&'a str>,
    pub metadata: &'a Value,
    pub ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    /// Microseconds since the Unix epoch (the database's precision).
    pub created_at_micros: i64,
}

/// `value` with every object's keys in byte order (the JSON the database
/// hands back may order them differently from what was sent).
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let mut out = serde_json::Map::new();
            for (k, v) in entries {
                out.insert(k.clone(), sorted(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

impl Content<'_> {
    /// The canonical encoding: a JSON array of the fields in a fixed order,
    /// objects with sorted keys, no whitespace.
    pub fn canonical(&self) -> Vec<u8> {
        let json = Value::Array(vec![
            Value::from(ENCODING),
            Value::from(self.id.to_string()),
            self.organization_id.map(|u| u.to_string()).into(),
            self.user_id.map(|u| u.to_string()).into(),
            Value::from(self.event_type),
            Value::from(self.severity),
            Value::from(self.action),
            Value::from(self.outcome),
            self.record_type.into(),
            self.record_id.map(|u| u.to_string()).into(),
            self.old_values.map(sorted).into(),
            self.new_values.map(sorted).into(),
            self.reason.into(),
            sorted(self.metadata),
            self.ip_address.into(),
            self.user_agent.into(),
            self.request_id.into(),
            self.session_id.into(),
            Value::from(self.created_at_micros),
        ]);
        // Serializing a Value cannot fail.
        serde_json::to_vec(&json).unwrap_or_default()
    }

    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.canonical()).into()
    }
}

/// The Ed25519 signature of `message` under `key`.
pub fn sign(key: &SigningKey, message: &[u8]) -> [u8; 64] {
    key.key.sign(message).to_bytes()
}

/// Whether `keys` has a key named `kid` (of either kind).
pub fn knows(keys: &AuditKeys, kid: &str) -> bool {
    keys.public.iter().any(|k| k.kid == kid) || keys.legacy.iter().any(|k| k.kid == kid)
}

/// Whether `signature` is `message` signed at `signed_at` by the key named
/// `kid` among `keys`: an Ed25519 key whose period covers `signed_at`
/// (RFC 8032 verification, as for access tokens: `s` must be canonical;
/// the stricter small-order checks of `verify_strict` guard against weak
/// keys, and these are the deployment's own, at about half again the cost
/// in wasm), or an HMAC key of what was signed before Ed25519 (constant
/// time). False for an unknown key.
pub fn verify_by(
    keys: &AuditKeys,
    kid: &str,
    message: &[u8],
    signature: &[u8],
    signed_at: OffsetDateTime,
) -> bool {
    if let Some(key) = keys.public.iter().find(|k| k.kid == kid) {
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        return key.covers(signed_at) && key.key.verify(message, &signature).is_ok();
    }
    keys.legacy
        .iter()
        .find(|k| k.kid == kid)
        .is_some_and(|key| key.verifies(message, signature))
}

/// A signature to check together with others ([`first_unverified`]).
#[derive(Debug, Clone)]
pub struct Pending {
    pub kid: String,
    pub message: Vec<u8>,
    pub signature: Vec<u8>,
    pub signed_at: OffsetDateTime,
}

/// The index of the first of `pending` that [`verify_by`] refuses, if any.
/// The Ed25519 signatures are checked as one batch first (about three
/// times faster per signature in wasm), each on its own only when the batch
/// fails, to find the first that does not verify.
pub fn first_unverified(keys: &AuditKeys, pending: &[Pending]) -> Option<usize> {
    // The batch: which of `pending`, their messages, signatures and keys.
    let (mut at, mut messages, mut signatures, mut verifying) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut first_other = None;
    for (i, item) in pending.iter().enumerate() {
        let key = keys.public.iter().find(|k| k.kid == item.kid);
        let signature = ed25519_dalek::Signature::from_slice(&item.signature).ok();
        match (key, signature) {
            (Some(key), Some(signature)) if key.covers(item.signed_at) => {
                at.push(i);
                messages.push(item.message.as_slice());
                signatures.push(signature);
                verifying.push(key.key);
            }
            _ => {
                // Not an Ed25519 signature of a key in force: checked alone
                // (an HMAC of before, or refused).
                if first_other.is_none()
                    && !verify_by(
                        keys,
                        &item.kid,
                        &item.message,
                        &item.signature,
                        item.signed_at,
                    )
                {
                    first_other = Some(i);
                }
            }
        }
    }
    let first_batched = if ed25519_dalek::verify_batch(&messages, &signatures, &verifying).is_ok() {
        None
    } else {
        (0..at.len())
            .find(|&n| verifying[n].verify(messages[n], &signatures[n]).is_err())
            .map(|n| at[n])
    };
    match (first_other, first_batched) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The chain hash of an event.
pub fn link(previous_hash: &[u8], sequence: i64, content_hash: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous_hash);
    hasher.update(sequence.to_be_bytes());
    hasher.update(content_hash);
    hasher.finalize().into()
}

/// What a checkpoint signs: the chain, the sequence and the head hash.
pub fn checkpoint_message(chain_id: uuid::Uuid, sequence: i64, hash: &[u8]) -> Vec<u8> {
    let mut message = b"antevus.audit.checkpoint.v1".to_vec();
    message.extend_from_slice(chain_id.as_bytes());
    message.extend_from_slice(&sequence.to_be_bytes());
    message.extend_from_slice(hash);
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HmacKey;
    use serde_json::json;

    fn keys(signing: &SigningKey, period: &str, legacy: &[HmacKey]) -> AuditKeys {
        AuditKeys {
            public: crate::config::ed25519::parse_public_keys(
                "AUDIT_PUBLIC_KEYS",
                &format!("{}{period}", signing.public_entry()),
            )
            .expect("public key"),
            legacy: legacy.to_vec(),
        }
    }

    fn content<'a>(old: &'a Value, metadata: &'a Value) -> Content<'a> {
        Content {
            id: uuid::Uuid::from_u128(1),
            organization_id: Some(uuid::Uuid::from_u128(2)),
            user_id: None,
            event_type: crate::audit::EventType::InstrumentUpdated.as_str(),
            severity: "INFO",
            action: "Instrument updated",
            outcome: "SUCCESS",
            record_type: Some("instrument"),
            record_id: Some(uuid::Uuid::from_u128(3)),
            old_values: Some(old),
            new_values: None,
            reason: None,
            metadata,
            ip_address: Some("127.0.0.1"),
            user_agent: None,
            request_id: Some("req_1"),
            session_id: None,
            created_at_micros: 1_764_000_000_000_001,
        }
    }

    #[test]
    fn the_encoding_ignores_key_order_but_not_values() {
        let metadata = json!({});
        let a = json!({"name": "HPLC", "config": {"b": 1.5, "a": [1, {"y": 2, "x": 1}]}});
        let b: Value =
            serde_json::from_str(r#"{"config":{"a":[1,{"x":1,"y":2}],"b":1.5},"name":"HPLC"}"#)
                .expect("json");
        assert_eq!(content(&a, &metadata).hash(), content(&b, &metadata).hash());
        let c = json!({"name": "HPLC", "config": {"b": 1.6, "a": [1, {"y": 2, "x": 1}]}});
        assert_ne!(content(&a, &metadata).hash(), content(&c, &metadata).hash());
        let mut later = content(&a, &metadata);
        later.created_at_micros += 1;
        assert_ne!(later.hash(), content(&a, &metadata).hash());
    }

    #[test]
    fn signatures_verify_only_with_their_key_and_in_its_period() {
        let signing = SigningKey::from_seed("e1", [1; 32]);
        let other = SigningKey::from_seed("e1", [2; 32]);
        let now = OffsetDateTime::now_utc();
        let hash = [9u8; 32];
        let signature = sign(&signing, &hash);
        let mine = keys(&signing, "", &[]);
        assert!(verify_by(&mine, "e1", &hash, &signature, now));
        assert!(!verify_by(
            &keys(&other, "", &[]),
            "e1",
            &hash,
            &signature,
            now
        ));
        assert!(!verify_by(&mine, "e1", &[8u8; 32], &signature, now));
        assert!(!verify_by(&mine, "e1", &hash, &signature[..63], now));
        assert!(!verify_by(&mine, "e2", &hash, &signature, now));
        assert!(knows(&mine, "e1") && !knows(&mine, "e2"));
        // Signed after the key was retired: refused.
        let retired = keys(&signing, ":..2026-01-01T00:00:00Z", &[]);
        let after = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        let before = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
        assert!(!verify_by(&retired, "e1", &hash, &signature, after));
        assert!(verify_by(&retired, "e1", &hash, &signature, before));
    }

    #[test]
    fn a_batch_names_its_first_bad_signature() {
        let signing = SigningKey::from_seed("e1", [1; 32]);
        let legacy = HmacKey {
            kid: "a1".into(),
            secret: vec![3; 32],
        };
        let keys = keys(&signing, "", std::slice::from_ref(&legacy));
        let now = OffsetDateTime::now_utc();
        let mut pending: Vec<Pending> = (0..40u8)
            .map(|i| {
                let message = vec![i; 32];
                let (kid, signature) = if i % 7 == 3 {
                    ("a1", legacy.sign(&message).to_vec())
                } else {
                    ("e1", sign(&signing, &message).to_vec())
                };
                Pending {
                    kid: kid.into(),
                    message,
                    signature,
                    signed_at: now,
                }
            })
            .collect();
        assert_eq!(first_unverified(&keys, &pending), None);
        assert_eq!(first_unverified(&keys, &[]), None);
        pending[30].message[0] ^= 1;
        assert_eq!(first_unverified(&keys, &pending), Some(30));
        pending[17].message[0] ^= 1; // an HMAC one
        assert_eq!(first_unverified(&keys, &pending), Some(17));
        pending[5].kid = "e9".into();
        assert_eq!(first_unverified(&keys, &pending), Some(5));
    }

    #[test]
    fn hmac_signatures_from_before_ed25519_still_verify() {
        let legacy = HmacKey {
            kid: "a1".into(),
            secret: vec![3; 32],
        };
        let hash = [9u8; 32];
        let old = legacy.sign(&hash);
        let now = OffsetDateTime::now_utc();
        let with = keys(
            &SigningKey::from_seed("e1", [1; 32]),
            "",
            std::slice::from_ref(&legacy),
        );
        assert!(verify_by(&with, "a1", &hash, &old, now));
        assert!(!verify_by(&with, "a1", &[8u8; 32], &old, now));
        let without = keys(&SigningKey::from_seed("e1", [1; 32]), "", &[]);
        assert!(!verify_by(&without, "a1", &hash, &old, now) && !knows(&without, "a1"));
    }

    #[test]
    fn links_depend_on_position_and_predecessor() {
        let content = [5u8; 32];
        let first = link(&[0u8; 32], 1, &content);
        assert_ne!(first, link(&[0u8; 32], 2, &content));
        assert_ne!(link(&first, 2, &content), link(&[1u8; 32], 2, &content));
        // The database computes sha256(previous || int8send(sequence) || content).
        let mut bytes = vec![0u8; 32];
        bytes.extend_from_slice(&1i64.to_be_bytes());
        bytes.extend_from_slice(&content);
        assert_eq!(first, <[u8; 32]>::from(Sha256::digest(&bytes)));
    }
}
