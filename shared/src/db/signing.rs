//! Signed requests to our SQL proxy: the caller proves it holds the
//! deployment's proxy key, which is not the database password.
//!
//! The header `Antevus-Proxy-Signature: v1,key=<kid>,ts=<unix seconds>,
//! nonce=<32 hex>,sig=<64 hex>` carries an HMAC-SHA256 over the request's
//! method, path, time, nonce, body digest and every header the proxy acts on
//! (the connection string and the `Neon-*` options), one per line:
//!
//! ```text
//! antevus-sql-proxy-v1\n<ts>\n<nonce hex>\nPOST\n/sql\n<sha256(body) hex>\n
//! neon-connection-string:<value>\n … neon-batch-deferrable:<value>\n
//! ``` The proxy takes a
//! request only within [`WINDOW_SECS`] of its own clock and each nonce once,
//! so a captured request cannot be replayed. Neon's endpoint ignores the
//! header, so the functions run unchanged against Neon.

use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::wire;
use crate::config::HmacKey;

/// The header that carries the signature.
pub const SIGNATURE: &str = "antevus-proxy-signature";

/// How far a request's time may be from the proxy's, either way.
pub const WINDOW_SECS: i64 = 30;

/// The headers a signature covers, in this order: the proxy acts on each.
pub const SIGNED_HEADERS: [&str; 6] = [
    wire::CONNECTION_STRING,
    wire::RAW_TEXT_OUTPUT,
    wire::ARRAY_MODE,
    wire::BATCH_ISOLATION_LEVEL,
    wire::BATCH_READ_ONLY,
    wire::BATCH_DEFERRABLE,
];

/// What a signature is over.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path and query, as sent (`/sql`).
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl Request<'_> {
    /// The signed text: one field per line, the body as its SHA-256, each
    /// header as `name:value` (empty when absent; a header value holds no
    /// line break).
    fn message(&self, ts: i64, nonce: &[u8; 16]) -> Vec<u8> {
        let mut text = format!(
            "antevus-sql-proxy-v1\n{ts}\n{}\n{}\n{}\n{}\n",
            hex::encode(nonce),
            self.method.to_ascii_uppercase(),
            self.path,
            hex::encode(Sha256::digest(self.body)),
        )
        .into_bytes();
        for name in SIGNED_HEADERS {
            let value = self
                .headers
                .get(name)
                .map_or(&b""[..], http::HeaderValue::as_bytes);
            text.extend_from_slice(name.as_bytes());
            text.push(b':');
            text.extend_from_slice(value);
            text.push(b'\n');
        }
        text
    }

    /// The header value that signs this request with `key` at `ts`.
    pub fn sign(&self, key: &HmacKey, ts: i64, nonce: &[u8; 16]) -> String {
        let sig = key.sign(&self.message(ts, nonce));
        format!(
            "v1,key={},ts={ts},nonce={},sig={}",
            key.kid,
            hex::encode(nonce),
            hex::encode(sig)
        )
    }

    /// Checks `header` signs this request with one of `keys` within the
    /// window around `now`; the nonce, for the caller's replay check.
    pub fn verify(&self, header: &str, keys: &[HmacKey], now: i64) -> Result<[u8; 16], Refusal> {
        let claimed = Claimed::parse(header).ok_or(Refusal::Malformed)?;
        let key = keys
            .iter()
            .find(|k| k.kid == claimed.kid)
            .ok_or(Refusal::UnknownKey)?;
        if (now - claimed.ts).abs() > WINDOW_SECS {
            return Err(Refusal::OutsideWindow {
                skew: claimed.ts - now,
            });
        }
        if key.verifies(&self.message(claimed.ts, &claimed.nonce), &claimed.sig) {
            Ok(claimed.nonce)
        } else {
            Err(Refusal::BadSignature)
        }
    }
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the request is not signed (header Antevus-Proxy-Signature)")]
    Missing,
    #[error("Antevus-Proxy-Signature is not v1,key=…,ts=…,nonce=…,sig=…")]
    Malformed,
    #[error("the request is signed with a key this proxy does not know")]
    UnknownKey,
    #[error("the request's time is {skew} s from the proxy's; clocks must agree within 30 s")]
    OutsideWindow { skew: i64 },
    #[error("the request's signature does not verify")]
    BadSignature,
    #[error("the request was already received (replayed)")]
    Replayed,
}

/// The fields of a signature header.
struct Claimed {
    kid: String,
    ts: i64,
    nonce: [u8; 16],
    sig: Vec<u8>,
}

impl Claimed {
    fn parse(header: &str) -> Option<Self> {
        let mut fields = header.split(',').map(str::trim);
        if fields.next()? != "v1" {
            return None;
        }
        let (mut kid, mut ts, mut nonce, mut sig) = (None, None, None, None);
        for field in fields {
            match field.split_once('=')? {
                ("key", v) if !v.is_empty() => kid = Some(v.to_owned()),
                ("ts", v) => ts = v.parse().ok(),
                ("nonce", v) => nonce = hex::decode(v).ok()?.try_into().ok(),
                ("sig", v) => sig = hex::decode(v).ok().filter(|s| s.len() == 32),
                _ => return None,
            }
        }
        Some(Claimed {
            kid: kid?,
            ts: ts?,
            nonce: nonce?,
            sig: sig?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, byte: u8) -> HmacKey {
        HmacKey {
            kid: kid.into(),
            secret: vec![byte; 32],
        }
    }

    fn headers(connection: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            wire::CONNECTION_STRING,
            connection.parse().expect("a header value"),
        );
        headers
    }

    const NONCE: [u8; 16] = [7; 16];

    #[test]
    fn a_signed_request_verifies_within_the_window() {
        let headers = headers("postgres://app:pw@db/antevus");
        let request = Request {
            method: "POST",
            path: "/sql",
            headers: &headers,
            body: br#"{"query":"SELECT 1"}"#,
        };
        let keys = [key("old", 1), key("k1", 2)];
        let header = request.sign(&keys[1], 1_000, &NONCE);
        assert!(header.starts_with("v1,key=k1,ts=1000,nonce=07070707"));
        assert_eq!(request.verify(&header, &keys, 1_000), Ok(NONCE));
        assert_eq!(request.verify(&header, &keys, 1_030), Ok(NONCE));
        assert_eq!(
            request.verify(&header, &keys, 1_031),
            Err(Refusal::OutsideWindow { skew: -31 })
        );
        assert_eq!(
            request.verify(&header, &keys[..1], 1_000),
            Err(Refusal::UnknownKey)
        );
    }

    #[test]
    fn every_signed_part_is_bound() {
        let headers = headers("postgres://app:pw@db/antevus");
        let base = Request {
            method: "POST",
            path: "/sql",
            headers: &headers,
            body: b"{}",
        };
        let keys = [key("k1", 2)];
        let header = base.sign(&keys[0], 1_000, &NONCE);
        let other_db = self::headers("postgres://app:pw@db/other");
        let mut read_only = headers.clone();
        read_only.insert(
            wire::BATCH_READ_ONLY,
            http::HeaderValue::from_static("true"),
        );
        for changed in [
            Request {
                method: "GET",
                ..base
            },
            Request {
                path: "/sql?x",
                ..base
            },
            Request {
                body: b"{ }",
                ..base
            },
            Request {
                headers: &other_db,
                ..base
            },
            Request {
                headers: &read_only,
                ..base
            },
        ] {
            assert_eq!(
                changed.verify(&header, &keys, 1_000),
                Err(Refusal::BadSignature)
            );
        }
        // Another time or nonce in the header breaks the signature too.
        let moved = header.replace("ts=1000", "ts=1001");
        assert_eq!(
            base.verify(&moved, &keys, 1_000),
            Err(Refusal::BadSignature)
        );
        let renonced = header.replace("nonce=07", "nonce=08");
        assert_eq!(
            base.verify(&renonced, &keys, 1_000),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let headers = HeaderMap::new();
        let request = Request {
            method: "POST",
            path: "/sql",
            headers: &headers,
            body: b"",
        };
        let keys = [key("k1", 2)];
        let good = request.sign(&keys[0], 5, &NONCE);
        for header in [
            "",
            "v2,key=k1,ts=5,nonce=00,sig=00",
            &good.replace("v1,", ""),
            &good.replace("ts=5", "ts=five"),
            &good.replace("key=k1", "key="),
            &format!("{good},extra=1"),
            &good[..good.len() - 2],
        ] {
            assert_eq!(
                request.verify(header, &keys, 5),
                Err(Refusal::Malformed),
                "{header}"
            );
        }
    }
}
