//! The one classification of personal and health data in audit metadata.
//!
//! Audit events keep who did what to which record; `metadata` is free-form
//! context (client-reported events, request details) and must not carry
//! personal data (PII) or protected health information (PHI). Every event's
//! `metadata` passes through [`redact`] before it is hashed and stored: a
//! value under a classified key, at any depth, becomes `"[REDACTED]"`. Keys
//! match case-insensitively, ignoring `_`, `-` and spaces
//! (`patient_name`, `patientName` and `Patient-Name` are one key); the
//! unambiguous ones ([`CLASSIFIED_SUFFIXES`]) also match as a suffix
//! (`user_email`, `adminPassword`).
//!
//! | class | keys |
//! |---|---|
//! | contact (PII) | email, emailaddress, phone, phonenumber, mobile, address, streetaddress, postalcode, zipcode |
//! | identity (PII) | name, firstname, lastname, fullname, displayname, dateofbirth, dob, birthdate, ssn, socialsecuritynumber, nationalid, passportnumber |
//! | health (PHI) | patient, patientid, patientname, mrn, medicalrecordnumber, diagnosis, healthplanid |
//! | credentials | password, secret, token, accesstoken, refreshtoken, apikey, authorization, cookie |

use serde_json::Value;

/// Classified keys, normalized (lowercase, no `_`, `-` or spaces).
pub const CLASSIFIED: &[&str] = &[
    // contact
    "email",
    "emailaddress",
    "phone",
    "phonenumber",
    "mobile",
    "address",
    "streetaddress",
    "postalcode",
    "zipcode",
    // identity
    "name",
    "firstname",
    "lastname",
    "fullname",
    "displayname",
    "dateofbirth",
    "dob",
    "birthdate",
    "ssn",
    "socialsecuritynumber",
    "nationalid",
    "passportnumber",
    // health
    "patient",
    "patientid",
    "patientname",
    "mrn",
    "medicalrecordnumber",
    "diagnosis",
    "healthplanid",
    // credentials
    "password",
    "secret",
    "token",
    "accesstoken",
    "refreshtoken",
    "apikey",
    "authorization",
    "cookie",
];

/// Classified keys that also match at the end of a longer key.
pub const CLASSIFIED_SUFFIXES: &[&str] = &[
    "email",
    "emailaddress",
    "phone",
    "phonenumber",
    "ssn",
    "dateofbirth",
    "mrn",
    "patientid",
    "patientname",
    "password",
    "secret",
    "token",
    "apikey",
];

/// What a classified value becomes.
pub const REDACTED: &str = "[REDACTED]";

fn classified(key: &str) -> bool {
    let normalized: String = key
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    CLASSIFIED.contains(&normalized.as_str())
        || CLASSIFIED_SUFFIXES
            .iter()
            .any(|suffix| normalized.ends_with(suffix))
}

/// `value` with every classified key's value replaced by [`REDACTED`].
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if classified(k) {
                        Value::String(REDACTED.to_owned())
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classified_keys_are_redacted_at_any_depth() {
        let before = json!({
            "Patient-Name": "Jane Doe",
            "instrument": "HPLC 1",
            "context": {"user_email": "jane@lab.example", "steps": [{"MRN": 12345, "ok": true}]},
            "password": {"nested": "x"},
        });
        let after = redact(&before);
        assert_eq!(
            after,
            json!({
                "Patient-Name": REDACTED,
                "instrument": "HPLC 1",
                "context": {"user_email": REDACTED, "steps": [{"MRN": REDACTED, "ok": true}]},
                "password": REDACTED,
            })
        );
    }

    #[test]
    fn keys_normalize() {
        for key in [
            "email",
            "E-Mail",
            "e_mail",
            "Email Address",
            "DOB",
            "api_key",
            "AccessToken",
            "user_email",
            "adminPassword",
        ] {
            assert!(classified(key), "{key}");
        }
        for key in [
            "instrument",
            "instrumentName",
            "nameplate",
            "serialNumber",
            "tokens_used",
        ] {
            assert!(!classified(key), "{key}");
        }
    }
}
