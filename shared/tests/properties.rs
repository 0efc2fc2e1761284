//! Property tests of the codecs and crypto round trips.

use proptest::prelude::*;
use serde_json::{Value, json};
use shared::auth::jwt::{self, AccessClaims, TokenError};
use shared::config::{PublicKey, SigningKey};
use shared::db::codec::{format_pg_timestamp, normalize, oid, parse_pg_timestamp};
use shared::db::wire::{QueryResult, SqlRequest, Statement};
use shared::domain::Timestamp;
use shared::envelope::{self, Envelope, Metadata};
use shared::{ApiError, FieldError};
use time::OffsetDateTime;

fn key() -> SigningKey {
    SigningKey::from_seed("k1", [42; 32])
}

fn public() -> Vec<PublicKey> {
    shared::config::ed25519::parse_public_keys("JWT_PUBLIC_KEYS", &key().public_entry())
        .expect("the public key")
}

fn claims(sub: u128, role: &str) -> AccessClaims {
    AccessClaims {
        iss: "antevus".into(),
        aud: "antevus-api".into(),
        sub: uuid::Uuid::from_u128(sub),
        org: uuid::Uuid::from_u128(sub ^ 1),
        role: role.into(),
        sid: uuid::Uuid::from_u128(sub ^ 2),
        jti: uuid::Uuid::from_u128(7),
    }
}

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).expect("valid time")
}

proptest! {
    #[test]
    fn pg_timestamps_round_trip(secs in 0i64..4_102_444_800, micros in 0u32..1_000_000) {
        let ts = at(secs).replace_microsecond(micros).expect("micros");
        let text = format_pg_timestamp(ts);
        prop_assert_eq!(parse_pg_timestamp(&text), Some(ts));
        // The codec turns the text into RFC 3339 that `time` reads back.
        let normalized = normalize(Value::String(text), oid::TIMESTAMPTZ);
        let back = OffsetDateTime::parse(normalized.as_str().expect("string"), &time::format_description::well_known::Rfc3339);
        prop_assert_eq!(back.ok(), Some(ts));
    }

    #[test]
    fn int8_text_decodes_exactly(n in any::<i64>()) {
        prop_assert_eq!(normalize(Value::String(n.to_string()), oid::INT8), json!(n));
    }

    #[test]
    fn wire_requests_round_trip(query in ".{0,40}", params in proptest::collection::vec(proptest::option::of(".{0,10}"), 0..5)) {
        let statement = Statement {
            query,
            params: params.into_iter().map(|p| p.map_or(Value::Null, Value::String)).collect(),
        };
        let single = SqlRequest::Single(statement.clone());
        let text = serde_json::to_string(&single).expect("serialize");
        prop_assert_eq!(serde_json::from_str::<SqlRequest>(&text).expect("parse"), single);
        let batch = SqlRequest::Batch(shared::db::wire::Batch { queries: vec![statement.clone(), statement] });
        let text = serde_json::to_string(&batch).expect("serialize");
        prop_assert_eq!(serde_json::from_str::<SqlRequest>(&text).expect("parse"), batch);
    }

    #[test]
    fn error_envelopes_round_trip(field in "[a-z]{1,12}", message in ".{0,40}", id in "[a-z0-9_]{1,20}") {
        let err = ApiError::Validation(vec![FieldError::new(field.clone(), message.clone())]);
        let response = envelope::failure(&err, Metadata::new(at(1_700_000_000), &id));
        prop_assert_eq!(response.status().as_u16(), 400);
        let parsed: Envelope = serde_json::from_slice(response.body().as_bytes().expect("a whole body")).expect("envelope");
        prop_assert!(!parsed.success);
        let error = parsed.error.expect("error");
        prop_assert_eq!(error.code, shared::ErrorCode::ValidationError);
        prop_assert_eq!(&error.details[0].field, &field);
        prop_assert_eq!(&error.details[0].message, &message);
        prop_assert_eq!(parsed.metadata.request_id, id);
        prop_assert_eq!(parsed.metadata.timestamp, "2023-11-14T22:13:20Z");
    }

    #[test]
    fn internal_errors_never_leak(cause in ".{0,60}") {
        for err in [ApiError::Internal(cause.clone()), ApiError::Unavailable(cause.clone())] {
            let response = envelope::failure(&err, Metadata::new(at(0), "r"));
            let parsed: Envelope = serde_json::from_slice(response.body().as_bytes().expect("a whole body")).expect("envelope");
            let error = parsed.error.expect("error");
            prop_assert!(cause.len() < 8 || !error.message.contains(&cause));
            prop_assert!(error.details.is_empty());
        }
    }

    #[test]
    fn tokens_verify_and_any_change_is_refused(sub in any::<u128>(), flip in any::<prop::sample::Index>(), now in 1_000_000i64..2_000_000_000) {
        let token = jwt::sign(&key(), &claims(sub, "ADMIN"), at(now), 600).expect("sign");
        let verified = jwt::verify(&public(), &token, at(now + 1), "antevus", "antevus-api").expect("verify");
        prop_assert_eq!(verified, claims(sub, "ADMIN"));
        // Flip one character anywhere: never accepted.
        let mut bytes = token.clone().into_bytes();
        let i = flip.index(bytes.len());
        if bytes[i] != b'.' {
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).expect("ascii");
            if tampered != token {
                prop_assert!(jwt::verify(&public(), &tampered, at(now + 1), "antevus", "antevus-api").is_err());
            }
        }
        prop_assert_eq!(jwt::verify(&public(), &token, at(now + 700), "antevus", "antevus-api"), Err(TokenError::Expired));
        prop_assert_eq!(jwt::verify(&public(), &token, at(now - 100), "antevus", "antevus-api"), Err(TokenError::NotYetValid));
    }
}

#[test]
fn rows_decode_into_structs_by_column_type() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Row {
        id: i64,
        ok: bool,
        doc: Value,
        seen: Timestamp,
    }
    let result: QueryResult = serde_json::from_value(json!({
        "command": "SELECT", "rowCount": 1, "rowAsArray": false,
        "rows": [{ "id": "9007199254740993", "ok": "t", "doc": "{\"a\":1}", "seen": "2026-01-02 03:04:05.5+00" }],
        "fields": [
            { "name": "id", "dataTypeID": 20 }, { "name": "ok", "dataTypeID": 16 },
            { "name": "doc", "dataTypeID": 3802 }, { "name": "seen", "dataTypeID": 1184 }
        ]
    }))
    .expect("wire result");
    let rows: Vec<Row> = result.decode().expect("decode");
    assert_eq!(rows[0].id, 9_007_199_254_740_993);
    assert!(rows[0].ok);
    assert_eq!(rows[0].doc, json!({ "a": 1 }));
    assert_eq!(
        rows[0].seen,
        at(1_767_323_045).replace_millisecond(500).expect("ms")
    );
}
