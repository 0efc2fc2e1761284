//! Signing per the Standard Webhooks specification: a secret is `whsec_`
//! and the base64 of its key (32 random bytes here); each request carries
//! `webhook-id` (the event's id, the same on every attempt),
//! `webhook-timestamp` (Unix seconds, of this attempt) and
//! `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of
//! `<id>.<timestamp>.<body>`, one per secret that signs (space-separated:
//! during a rotation the new secret and the one before it).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The bytes of a secret's key.
pub const KEY_BYTES: usize = 32;

/// A new secret from `key` (random).
pub fn new_secret(key: [u8; KEY_BYTES]) -> String {
    format!("whsec_{}", STANDARD.encode(key))
}

/// The key of secret `secret` (`whsec_<base64>`).
pub fn key_of(secret: &str) -> Option<Vec<u8>> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    (24..=64).contains(&key.len()).then_some(key)
}

/// One signature: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The three headers of a delivery signed by each of `keys`.
pub fn headers(
    keys: &[Vec<u8>],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    let signatures: Vec<String> = keys
        .iter()
        .map(|key| signature(key, id, timestamp, body))
        .collect();
    [
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signatures.join(" ")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_specifications_example() {
        // The example of the Standard Webhooks specification.
        let key = key_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("the example secret");
        assert_eq!(
            signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_round_trip_and_bad_ones_are_refused() {
        let secret = new_secret([7; KEY_BYTES]);
        assert!(secret.starts_with("whsec_"));
        assert_eq!(key_of(&secret), Some(vec![7; KEY_BYTES]));
        assert_eq!(key_of("whsec_not base64"), None);
        assert_eq!(key_of(&STANDARD.encode([1; 32])), None);
        assert_eq!(key_of(&format!("whsec_{}", STANDARD.encode([1; 8]))), None);
    }

    #[test]
    fn a_rotation_signs_twice() {
        let [_, _, (_, signature)] = headers(&[vec![1; 32], vec![2; 32]], "e", 1, b"{}");
        let parts: Vec<&str> = signature.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")));
        assert_ne!(parts[0], parts[1]);
    }
}
