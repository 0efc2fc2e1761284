//! Retention periods: the design document's table, as configuration.
//!
//! | data | default | variable | floor |
//! |---|---|---|---|
//! | audit events | 7 years (2555 days) | `RETENTION_AUDIT_DAYS` | 2555 days (also enforced by the database) |
//! | run data (bytes; the record stays) | 5 years (1825 days) | `RETENTION_RUN_DATA_DAYS` | 1 day |
//! | user sessions (ended) | 30 days | `RETENTION_SESSIONS_DAYS` | 1 day |
//! | rate-limit state (idle) | 24 hours | `RETENTION_RATE_LIMITS_HOURS` | 1 hour |
//! | sent e-mail (its body went when it was sent) | 30 days | `RETENTION_MAIL_DAYS` | 1 day |
//! | published events and their webhook deliveries (the delivery log) | 90 days | `RETENTION_EVENTS_DAYS` | 30 days (a replay reaches 30 days back) |
//!
//! The job is `POST /api/v1/retention/run`.

use super::ConfigError;

/// The shortest audit retention anyone may configure: seven years.
pub const AUDIT_FLOOR_DAYS: i64 = 2555;

/// Retention periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = RetentionPolicy))]
#[serde(rename_all = "camelCase")]
pub struct RetentionConfig {
    pub audit_days: i64,
    pub run_data_days: i64,
    pub sessions_days: i64,
    pub rate_limits_hours: i64,
    pub mail_days: i64,
    pub events_days: i64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            audit_days: AUDIT_FLOOR_DAYS,
            run_data_days: 1825,
            sessions_days: 30,
            rate_limits_hours: 24,
            mail_days: 30,
            events_days: 90,
        }
    }
}

impl RetentionConfig {
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = RetentionConfig::default();
        let value = |name: &str, default: i64, floor: i64| -> Result<i64, ConfigError> {
            match lookup(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (floor..=36_500).contains(n))
                    .ok_or_else(|| {
                        ConfigError(format!("{name} must be a number from {floor} to 36500"))
                    }),
            }
        };
        Ok(RetentionConfig {
            audit_days: value(
                "RETENTION_AUDIT_DAYS",
                defaults.audit_days,
                AUDIT_FLOOR_DAYS,
            )?,
            run_data_days: value("RETENTION_RUN_DATA_DAYS", defaults.run_data_days, 1)?,
            sessions_days: value("RETENTION_SESSIONS_DAYS", defaults.sessions_days, 1)?,
            rate_limits_hours: value("RETENTION_RATE_LIMITS_HOURS", defaults.rate_limits_hours, 1)?,
            mail_days: value("RETENTION_MAIL_DAYS", defaults.mail_days, 1)?,
            events_days: value("RETENTION_EVENTS_DAYS", defaults.events_days, 30)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_retention_cannot_go_below_seven_years() {
        let config = |name: &'static str, value: &'static str| {
            RetentionConfig::from_lookup(&move |n: &str| (n == name).then(|| value.to_owned()))
        };
        assert_eq!(
            config("X", "1").expect("defaults"),
            RetentionConfig::default()
        );
        assert!(config("RETENTION_AUDIT_DAYS", "2554").is_err());
        assert_eq!(
            config("RETENTION_AUDIT_DAYS", "3650")
                .expect("longer is fine")
                .audit_days,
            3650
        );
        assert!(config("RETENTION_SESSIONS_DAYS", "0").is_err());
        assert!(config("RETENTION_RUN_DATA_DAYS", "soon").is_err());
    }
}
