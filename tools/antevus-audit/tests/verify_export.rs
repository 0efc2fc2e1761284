//! The offline verifier against exports made here with the same code the
//! export route uses: good files verify, every kind of damage is named.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use serde_json::json;
use sha2::Digest as _;
use shared::audit::chain::{self, Content};
use shared::audit::export::{self, ExportedEvent, Format, Manifest};
use shared::config::{AuditKeys, HmacKey, SigningKey};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn key() -> SigningKey {
    SigningKey::from_seed("e1", [7; 32])
}

/// The HMAC key events were signed with before Ed25519.
fn legacy() -> HmacKey {
    HmacKey {
        kid: "a1".into(),
        secret: vec![7; 32],
    }
}

fn audit_keys() -> AuditKeys {
    AuditKeys {
        public: shared::config::ed25519::parse_public_keys("K", &key().public_entry())
            .expect("public"),
        legacy: Vec::new(),
    }
}

fn legacy_arg(key: &HmacKey) -> String {
    format!(
        "{}:{}",
        key.kid,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&key.secret)
    )
}

/// How the events of a test chain are signed.
enum Signer {
    Ed25519(SigningKey),
    Hmac(HmacKey),
}

/// A chain of `n` events signed with Ed25519.
fn chain_of(n: i64) -> Vec<ExportedEvent> {
    chain_signed(n, &Signer::Ed25519(key()))
}

/// A chain of `n` events signed by `signer`.
fn chain_signed(n: i64, signer: &Signer) -> Vec<ExportedEvent> {
    let org = uuid::Uuid::from_u128(42);
    let mut previous = vec![0u8; 32];
    let mut out = Vec::new();
    for sequence in 1..=n {
        let at = OffsetDateTime::from_unix_timestamp(1_764_000_000 + sequence).expect("time")
            + time::Duration::microseconds(123_456);
        let metadata = json!({"n": sequence, "tags": ["b", "a"]});
        let new_values =
            json!({"name": format!("Freezer {sequence}"), "settings": {"z": 1, "a": -80.5}});
        let id = uuid::Uuid::from_u128(sequence as u128);
        let content = Content {
            id,
            organization_id: Some(org),
            user_id: None,
            event_type: "INSTRUMENT_CREATED",
            severity: "INFO",
            action: "Instrument registered, \"quoted\", with commas",
            outcome: "SUCCESS",
            record_type: Some("instrument"),
            record_id: Some(id),
            old_values: None,
            new_values: Some(&new_values),
            reason: None,
            metadata: &metadata,
            ip_address: Some("10.0.0.7"),
            user_agent: Some("curl/8"),
            request_id: Some("req_1"),
            session_id: None,
            created_at_micros: (at.unix_timestamp_nanos() / 1_000) as i64,
        };
        let content_hash = content.hash();
        let hash = chain::link(&previous, sequence, &content_hash);
        out.push(ExportedEvent {
            sequence,
            id,
            organization_id: Some(org),
            user_id: None,
            event_type: "INSTRUMENT_CREATED".into(),
            severity: "INFO".into(),
            action: content.action.into(),
            outcome: "SUCCESS".into(),
            record_type: Some("instrument".into()),
            record_id: Some(id),
            old_values: None,
            new_values: Some(new_values.clone()),
            reason: None,
            metadata: metadata.clone(),
            ip_address: Some("10.0.0.7".into()),
            user_agent: Some("curl/8".into()),
            request_id: Some("req_1".into()),
            session_id: None,
            created_at: at.format(&Rfc3339).expect("format"),
            previous_hash: hex::encode(&previous),
            hash: hex::encode(hash),
            content_hash: hex::encode(content_hash),
            signature: Some(match signer {
                Signer::Ed25519(key) => hex::encode(chain::sign(key, &content_hash)),
                Signer::Hmac(key) => hex::encode(key.sign(&content_hash)),
            }),
            key_id: match signer {
                Signer::Ed25519(key) => key.kid.clone(),
                Signer::Hmac(key) => key.kid.clone(),
            },
        });
        previous = hash.to_vec();
    }
    out
}

fn export_of(format: Format, events: &[ExportedEvent]) -> (Vec<u8>, Manifest) {
    let body = export::render(format, events).expect("render");
    let mut manifest = Manifest {
        version: export::MANIFEST_VERSION.into(),
        chain_id: uuid::Uuid::from_u128(42),
        format,
        filters: json!({}),
        count: events.len() as u64,
        first_sequence: events.first().map(|e| e.sequence),
        last_sequence: events.last().map(|e| e.sequence),
        truncated: false,
        head_sequence: events.last().map_or(0, |e| e.sequence),
        head_hash: events.last().map(|e| e.hash.clone()),
        exported_at: "2026-11-26T00:00:00Z".into(),
        sha256: hex::encode(sha2::Sha256::digest(&body)),
        keys: Vec::new(),
        key_id: String::new(),
        signature: String::new(),
    };
    manifest.sign(&key(), &audit_keys(), &export::signers(events));
    (body, manifest)
}

/// An export as made before Ed25519: HMAC-signed events and a v1 manifest
/// signed with the same HMAC key, naming no keys.
fn legacy_export_of(events: &[ExportedEvent]) -> (Vec<u8>, Manifest) {
    let (body, mut manifest) = export_of(Format::Jsonl, events);
    manifest.version = export::MANIFEST_VERSION_V1.into();
    manifest.keys = Vec::new();
    manifest.key_id = "a1".into();
    manifest.signature = hex::encode(legacy().sign(&manifest.message()));
    (body, manifest)
}

/// The keys given to the verifier.
#[derive(Clone, Copy, Default)]
struct Keys<'a> {
    public: Option<&'a str>,
    legacy: Option<&'a str>,
}

/// The deployment's public key, pinned.
fn pinned(public: &str) -> Keys<'_> {
    Keys {
        public: Some(public),
        legacy: None,
    }
}

/// Runs the verifier; returns its exit code and output.
fn verify(
    dir: &Path,
    body: &[u8],
    manifest: &Manifest,
    keys: Keys<'_>,
    as_header: bool,
) -> (i32, String) {
    let file = dir.join("export");
    let manifest_path = dir.join("manifest");
    std::fs::write(&file, body).expect("write");
    let json = serde_json::to_vec(manifest).expect("json");
    let text = if as_header {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(&json)
            .into_bytes()
    } else {
        json
    };
    std::fs::write(&manifest_path, text).expect("write");
    let mut command = Command::new(env!("CARGO_BIN_EXE_antevus-audit"));
    command
        .arg("verify-export")
        .arg("--file")
        .arg(&file)
        .arg("--manifest")
        .arg(&manifest_path)
        .env_remove("AUDIT_KEYS")
        .env_remove("AUDIT_PUBLIC_KEYS");
    if let Some(keys) = keys.public {
        command.arg("--public-keys").arg(keys);
    }
    if let Some(keys) = keys.legacy {
        command.arg("--legacy-keys").arg(keys);
    }
    let output = command.output().expect("run antevus-audit");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn good_exports_verify_in_both_formats_with_public_keys_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let public = key().public_entry();
    for format in [Format::Jsonl, Format::Csv] {
        let (body, manifest) = export_of(format, &chain_of(5));
        assert_eq!(manifest.version, export::MANIFEST_VERSION);
        assert_eq!(manifest.keys.len(), 1, "the manifest names its key");
        assert_eq!(manifest.keys[0].algorithm, "Ed25519");
        let (code, out) = verify(dir.path(), &body, &manifest, pinned(&public), true);
        assert_eq!(code, 0, "{format:?}: {out}");
        assert!(
            out.contains("verified: 5 events")
                && out.contains("signatures checked with the keys given"),
            "{out}"
        );
        let (code, out) = verify(dir.path(), &body, &manifest, Keys::default(), false);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("the keys the manifest names (not pinned"),
            "{out}"
        );
    }
}

#[test]
fn exports_signed_with_hmac_before_ed25519_still_verify_with_their_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = chain_signed(4, &Signer::Hmac(legacy()));
    let (body, manifest) = legacy_export_of(&events);
    let old = legacy_arg(&legacy());
    let with_key = Keys {
        public: None,
        legacy: Some(&old),
    };
    let (code, out) = verify(dir.path(), &body, &manifest, with_key, true);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("verified: 4 events") && out.contains("signatures checked"),
        "{out}"
    );
    // Without the HMAC key nothing can check those signatures, and it says so.
    let (code, out) = verify(dir.path(), &body, &manifest, Keys::default(), true);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("signatures not checked"), "{out}");
    // The wrong HMAC key: every signature fails.
    let wrong = legacy_arg(&HmacKey {
        kid: "a1".into(),
        secret: vec![8; 32],
    });
    let (code, out) = verify(
        dir.path(),
        &body,
        &manifest,
        Keys {
            public: None,
            legacy: Some(&wrong),
        },
        true,
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("manifest's signature does not verify")
            && out.contains("event 1: its signature"),
        "{out}"
    );
}

#[test]
fn damage_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let public = key().public_entry();
    let events = chain_of(5);

    // A field changed after export (digest recomputed by the forger).
    let mut changed = events.clone();
    changed[2].action = "Nothing happened".into();
    let (body, mut manifest) = export_of(Format::Jsonl, &changed);
    manifest.sign(&key(), &audit_keys(), &export::signers(&changed));
    let (code, out) = verify(dir.path(), &body, &manifest, pinned(&public), true);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("event 3: its fields differ from what was signed"),
        "{out}"
    );

    // An event dropped from the file.
    let mut dropped = events.clone();
    dropped.remove(1);
    let (body, _) = export_of(Format::Jsonl, &dropped);
    let (_, manifest) = export_of(Format::Jsonl, &events);
    let (code, out) = verify(dir.path(), &body, &manifest, Keys::default(), true);
    assert_eq!(code, 1);
    assert!(
        out.contains("SHA-256 differs") && out.contains("holds 4 events"),
        "{out}"
    );

    // Bytes changed in the file itself.
    let (mut body, manifest) = export_of(Format::Csv, &events);
    let at = body.len() - 10;
    body[at] ^= 1;
    let (code, out) = verify(dir.path(), &body, &manifest, Keys::default(), true);
    assert_eq!(code, 1);
    assert!(out.contains("SHA-256 differs"), "{out}");

    // Another public key pinned under the same id: nothing verifies, and
    // the manifest is seen to name a different key.
    let (body, manifest) = export_of(Format::Jsonl, &events);
    let other = SigningKey::from_seed("e1", [8; 32]).public_entry();
    let (code, out) = verify(dir.path(), &body, &manifest, pinned(&other), true);
    assert_eq!(code, 1);
    assert!(
        out.contains("manifest's signature does not verify")
            && out.contains("event 1: its signature")
            && out.contains("names key e1 with another public key"),
        "{out}"
    );

    // A forger who re-signs everything with a key of their own and names it
    // in the manifest: consistent on its own, refused against the pinned key.
    let forger = SigningKey::from_seed("e1", [9; 32]);
    let forged: Vec<ExportedEvent> = chain_signed(5, &Signer::Ed25519(forger.clone()));
    let (body, mut manifest) = export_of(Format::Jsonl, &forged);
    let forger_keys = AuditKeys {
        public: shared::config::ed25519::parse_public_keys("K", &forger.public_entry())
            .expect("public"),
        legacy: Vec::new(),
    };
    manifest.sign(&forger, &forger_keys, &export::signers(&forged));
    let (code, out) = verify(dir.path(), &body, &manifest, Keys::default(), true);
    assert_eq!(code, 0, "unpinned, a consistent forgery passes: {out}");
    assert!(
        out.contains("not pinned"),
        "and says its keys were not pinned: {out}"
    );
    let (code, out) = verify(dir.path(), &body, &manifest, pinned(&public), true);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("event 1: its signature does not verify"),
        "{out}"
    );

    // Not a manifest at all.
    let file = dir.path().join("bad-manifest");
    std::fs::write(&file, "hello").expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_antevus-audit"))
        .args(["verify-export", "--file"])
        .arg(&file)
        .arg("--manifest")
        .arg(&file)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
}

/// Runs the verifier on a streamed file alone (its manifest is its last
/// line).
fn verify_streamed(dir: &Path, file: &[u8], public: &str) -> (i32, String) {
    let path = dir.join("streamed.jsonl");
    std::fs::write(&path, file).expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_antevus-audit"))
        .args(["verify-export", "--file"])
        .arg(&path)
        .args(["--public-keys", public])
        .env_remove("AUDIT_KEYS")
        .output()
        .expect("run");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn a_streamed_export_carries_its_manifest_as_its_last_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let public = key().public_entry();
    let (body, manifest) = export_of(Format::Jsonl, &chain_of(4));
    let mut file = body.clone();
    file.extend(export::Trailer::Manifest(manifest.clone()).line());
    let (code, out) = verify_streamed(dir.path(), &file, &public);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verified: 4 events"), "{out}");

    // An event changed: the digest and its hash say so.
    let mut damaged = file.clone();
    damaged[body.len() / 2] ^= 0x20;
    let (code, out) = verify_streamed(dir.path(), &damaged, &public);
    assert_eq!(code, 1, "{out}");

    // Cut short (the connection dropped before the manifest came).
    let (code, out) = verify_streamed(dir.path(), &file[..body.len() - 3], &public);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not end with its manifest line"), "{out}");

    // Stopped by the server: its reason is shown.
    let mut failed = body.clone();
    failed.extend(
        export::Trailer::Error(export::TrailerError {
            code: "SERVICE_UNAVAILABLE".into(),
            message: "The database did not answer".into(),
            request_id: "req_1".into(),
        })
        .line(),
    );
    let (code, out) = verify_streamed(dir.path(), &failed, &public);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("stopped short: The database did not answer") && out.contains("req_1"),
        "{out}"
    );

    // A manifest line with one event dropped before it: the count and
    // the digest disagree.
    let first_line = body.iter().position(|b| *b == b'\n').expect("a line") + 1;
    let mut dropped = body[first_line..].to_vec();
    dropped.extend(export::Trailer::Manifest(manifest).line());
    let (code, out) = verify_streamed(dir.path(), &dropped, &public);
    assert_eq!(code, 1, "{out}");
}
