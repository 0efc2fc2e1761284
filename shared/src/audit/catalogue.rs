//! The catalogue of audit event types: each type's stored name, default
//! severity, outcome and action, and the kind of record it is about. The
//! one list in code; `docs/AUDIT_EVENTS.md` is rendered from it by `cargo
//! xtask routes` (and `cargo xtask routes --check` fails when it drifts).
//! Events reported by clients (`POST /api/audit`) are not catalogued: they
//! are stored as `CLIENT_<name>` ([`Kind::Client`]).

pub use crate::domain::audit::{Outcome, Severity};

/// The kind of record an event is about (`audit_events.record_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    ApiKey,
    Bridge,
    BridgeJoinToken,
    Instrument,
    InstrumentCommand,
    Invitation,
    Maintenance,
    Retention,
    Run,
    Session,
    User,
    Webhook,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::ApiKey => "api_key",
            RecordType::Bridge => "bridge",
            RecordType::BridgeJoinToken => "bridge_join_token",
            RecordType::Instrument => "instrument",
            RecordType::InstrumentCommand => "instrument_command",
            RecordType::Invitation => "invitation",
            RecordType::Maintenance => "maintenance",
            RecordType::Retention => "retention",
            RecordType::Run => "run",
            RecordType::Session => "session",
            RecordType::User => "user",
            RecordType::Webhook => "webhook",
        }
    }
}

macro_rules! catalogue {
    ($(
        $(#[doc = $about:literal])+
        $variant:ident = $name:literal, $severity:ident, $outcome:ident, $record:expr, $action:literal;
    )+) => {
        /// A catalogued audit event type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum EventType {
            $($(#[doc = $about])+ $variant,)+
        }

        impl EventType {
            /// Every type, in catalogue order.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),+];

            /// The name stored in `audit_events.event_type`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)+
                }
            }

            /// The severity an event of this type has unless it says otherwise.
            pub fn severity(self) -> Severity {
                match self {
                    $(EventType::$variant => Severity::$severity,)+
                }
            }

            /// The outcome an event of this type has unless it says otherwise.
            pub fn outcome(self) -> Outcome {
                match self {
                    $(EventType::$variant => Outcome::$outcome,)+
                }
            }

            /// The kind of record an event of this type is about.
            pub fn record_type(self) -> Option<RecordType> {
                match self {
                    $(EventType::$variant => $record,)+
                }
            }

            /// The action it records, in words.
            pub fn action(self) -> &'static str {
                match self {
                    $(EventType::$variant => $action,)+
                }
            }

            /// When the system writes it.
            pub fn about(self) -> &'static str {
                match self {
                    $(EventType::$variant => concat!($($about),+).trim_ascii(),)+
                }
            }
        }
    };
}

use RecordType as R;

catalogue! {
    /// A login succeeded; a session family opens.
    AuthLoginSuccess = "AUTH_LOGIN_SUCCESS", Info, Success, Some(R::Session), "User logged in";
    /// A login failed: unknown e-mail, wrong password, locked or inactive account (`metadata.reason`).
    AuthLoginFailure = "AUTH_LOGIN_FAILURE", Warning, Failure, Some(R::User), "Failed login attempt";
    /// Repeated wrong passwords locked the account for a while.
    AuthAccountLocked = "AUTH_ACCOUNT_LOCKED", Warning, Denied, Some(R::User), "Account locked after repeated failed logins";
    /// The password was right and the account has (or must set up) a second factor: a challenge was issued, no session (`metadata.purpose`).
    AuthMfaRequired = "AUTH_MFA_REQUIRED", Info, Success, Some(R::User), "Password accepted; second factor required";
    /// A second-factor code was wrong, already used or the factor is gone; counts toward the lockout like a wrong password.
    AuthMfaFailure = "AUTH_MFA_FAILURE", Warning, Failure, Some(R::User), "Second factor refused";
    /// A user started setting up a TOTP second factor (not in force until confirmed).
    MfaEnrolmentStarted = "MFA_ENROLMENT_STARTED", Info, Success, Some(R::User), "Second factor enrolment started";
    /// A user confirmed a TOTP second factor with a first code; recovery codes were issued.
    MfaEnabled = "MFA_ENABLED", Warning, Success, Some(R::User), "Second factor enabled";
    /// A user removed their second factor (password and a code given).
    MfaDisabled = "MFA_DISABLED", Warning, Success, Some(R::User), "Second factor removed by its user";
    /// An administrator removed a user's second factor, with a reason.
    MfaReset = "MFA_RESET", Warning, Success, Some(R::User), "Second factor reset by an administrator";
    /// A single-use recovery code stood in for the second factor.
    MfaRecoveryCodeUsed = "MFA_RECOVERY_CODE_USED", Warning, Success, Some(R::User), "Recovery code used";
    /// The organization's policy of which roles must have a second factor changed (old and new roles).
    MfaPolicyChanged = "MFA_POLICY_CHANGED", Warning, Success, None, "Second-factor policy changed";
    /// A login was ended by its user.
    AuthLogout = "AUTH_LOGOUT", Info, Success, Some(R::Session), "User logged out";
    /// A user ended another of their logins (from the profile's list of logins).
    AuthSessionRevoked = "AUTH_SESSION_REVOKED", Info, Success, Some(R::Session), "User ended one of their logins";
    /// A user changed their password (the current one given); their other logins ended.
    AuthPasswordChanged = "AUTH_PASSWORD_CHANGED", Warning, Success, Some(R::User), "Password changed by its user; other logins ended";
    /// A spent refresh token was presented again: its whole session family is revoked.
    AuthRefreshReuse = "AUTH_REFRESH_REUSE", Critical, Denied, Some(R::Session), "Spent refresh token presented again; session family revoked";
    /// Someone asked for a password reset link (`metadata.accountFound`).
    AuthPasswordResetRequested = "AUTH_PASSWORD_RESET_REQUESTED", Info, Success, Some(R::User), "Password reset requested";
    /// A password was reset with an e-mailed token; every session of the user ended.
    AuthPasswordReset = "AUTH_PASSWORD_RESET", Warning, Success, Some(R::User), "Password reset with an e-mailed token; all sessions ended";
    /// A request was refused for lack of a permission.
    AccessDenied = "ACCESS_DENIED", Warning, Denied, None, "Access denied";
    /// A client went over a rate limit and is blocked for a while (once per block).
    RateLimitBlocked = "RATE_LIMIT_BLOCKED", Warning, Denied, None, "Client blocked by rate limit";
    /// Someone was invited to the organization.
    UserInvited = "USER_INVITED", Info, Success, Some(R::Invitation), "User invited";
    /// A pending invitation was revoked: its link no longer works.
    InvitationRevoked = "INVITATION_REVOKED", Info, Success, Some(R::Invitation), "Invitation revoked";
    /// An account was created: a new organization's admin, or an accepted invitation.
    UserSignedUp = "USER_SIGNED_UP", Info, Success, Some(R::User), "Organization created";
    /// A user's name, department, role or active state changed (a role or activation change is a warning).
    UserUpdated = "USER_UPDATED", Info, Success, Some(R::User), "User updated";
    /// An API key was created.
    ApiKeyCreated = "API_KEY_CREATED", Info, Success, Some(R::ApiKey), "API key created";
    /// An API key was revoked.
    ApiKeyRevoked = "API_KEY_REVOKED", Info, Success, Some(R::ApiKey), "API key revoked";
    /// An instrument was registered.
    InstrumentCreated = "INSTRUMENT_CREATED", Info, Success, Some(R::Instrument), "Instrument registered";
    /// An instrument's fields changed (old and new values of each).
    InstrumentUpdated = "INSTRUMENT_UPDATED", Info, Success, Some(R::Instrument), "Instrument updated";
    /// An instrument was removed from service, with a reason.
    InstrumentDeleted = "INSTRUMENT_DELETED", Warning, Success, Some(R::Instrument), "Instrument removed";
    /// The first bridge to report an unbound instrument now serves it: only
    /// that bridge reports its readings and status and takes its commands.
    InstrumentBoundToBridge = "INSTRUMENT_BOUND_TO_BRIDGE", Info, Success, Some(R::Instrument), "Instrument bound to the bridge that reported it";
    /// An instrument's bridge reported a new status.
    InstrumentStatusChanged = "INSTRUMENT_STATUS_CHANGED", Info, Success, Some(R::Instrument), "Instrument status reported by its bridge";
    /// Completing a calibration wrote the instrument's calibration and due date.
    InstrumentCalibrated = "INSTRUMENT_CALIBRATED", Info, Success, Some(R::Instrument), "Instrument calibration recorded";
    /// A control command was queued for an instrument.
    InstrumentCommandQueued = "INSTRUMENT_COMMAND_QUEUED", Info, Success, Some(R::InstrumentCommand), "Control command queued";
    /// A command was handed to the instrument's bridge.
    InstrumentCommandSent = "INSTRUMENT_COMMAND_SENT", Info, Success, Some(R::InstrumentCommand), "Command handed to the instrument's bridge";
    /// The instrument acknowledged a command.
    InstrumentCommandAcknowledged = "INSTRUMENT_COMMAND_ACKNOWLEDGED", Info, Success, Some(R::InstrumentCommand), "Command acknowledged by the instrument";
    /// A command completed on the instrument.
    InstrumentCommandCompleted = "INSTRUMENT_COMMAND_COMPLETED", Info, Success, Some(R::InstrumentCommand), "Command completed on the instrument";
    /// A command failed on the instrument.
    InstrumentCommandFailed = "INSTRUMENT_COMMAND_FAILED", Warning, Success, Some(R::InstrumentCommand), "Command failed on the instrument";
    /// Maintenance was scheduled.
    MaintenanceScheduled = "MAINTENANCE_SCHEDULED", Info, Success, Some(R::Maintenance), "Maintenance scheduled";
    /// A scheduled maintenance item was rescheduled or its notes changed.
    MaintenanceUpdated = "MAINTENANCE_UPDATED", Info, Success, Some(R::Maintenance), "Maintenance updated";
    /// A maintenance item was completed.
    MaintenanceCompleted = "MAINTENANCE_COMPLETED", Info, Success, Some(R::Maintenance), "Maintenance updated";
    /// A calibration was completed (its results recorded).
    CalibrationCompleted = "CALIBRATION_COMPLETED", Info, Success, Some(R::Maintenance), "Maintenance updated";
    /// A maintenance item was cancelled.
    MaintenanceCancelled = "MAINTENANCE_CANCELLED", Info, Success, Some(R::Maintenance), "Maintenance updated";
    /// A run was started (its start command queued).
    RunStarted = "RUN_STARTED", Info, Success, Some(R::Run), "Run started";
    /// A run's instrument acknowledged its start: the run is running.
    RunRunning = "RUN_RUNNING", Info, Success, Some(R::Run), "Run running: its instrument took the start";
    /// A run ended as its instrument reported: completed when it went back
    /// to idle, failed when it reported an error or refused the start.
    RunFinished = "RUN_FINISHED", Info, Success, Some(R::Run), "Run ended as its instrument reported";
    /// A run ended: aborted, completed or failed, with a reason.
    RunStopped = "RUN_STOPPED", Info, Success, Some(R::Run), "Run stopped";
    /// A run's data file was recorded, with its SHA-256.
    RunDataUploaded = "RUN_DATA_UPLOADED", Info, Success, Some(R::Run), "Run data uploaded";
    /// A run's results were parsed from its data file.
    RunResultsRecorded = "RUN_RESULTS_RECORDED", Info, Success, Some(R::Run), "Run results recorded";
    /// A run was electronically signed (meaning, printed name, version, hash).
    EsignatureApplied = "ESIGNATURE_APPLIED", Info, Success, Some(R::Run), "Run electronically signed";
    /// A signature was refused: re-authentication failed.
    EsignatureFailed = "ESIGNATURE_FAILED", Warning, Failure, Some(R::Run), "Electronic signature refused: re-authentication failed";
    /// A single-use token to enrol a bridge was created.
    BridgeJoinTokenCreated = "BRIDGE_JOIN_TOKEN_CREATED", Info, Success, Some(R::BridgeJoinToken), "Bridge join token created";
    /// An unused bridge join token was revoked.
    BridgeJoinTokenRevoked = "BRIDGE_JOIN_TOKEN_REVOKED", Info, Success, Some(R::BridgeJoinToken), "Bridge join token revoked";
    /// An edge bridge enrolled with a join token and got its own key.
    BridgeEnrolled = "BRIDGE_ENROLLED", Info, Success, Some(R::Bridge), "Edge bridge enrolled";
    /// A webhook endpoint was registered (its URL and event types; never its secret).
    WebhookCreated = "WEBHOOK_CREATED", Info, Success, Some(R::Webhook), "Webhook created";
    /// A webhook endpoint's URL, event types, description or enabled state changed.
    WebhookUpdated = "WEBHOOK_UPDATED", Info, Success, Some(R::Webhook), "Webhook updated";
    /// A webhook endpoint was deleted with its deliveries.
    WebhookDeleted = "WEBHOOK_DELETED", Warning, Success, Some(R::Webhook), "Webhook deleted";
    /// A webhook endpoint's signing secret was rotated (the previous one signs too for 24 hours).
    WebhookSecretRotated = "WEBHOOK_SECRET_ROTATED", Warning, Success, Some(R::Webhook), "Webhook secret rotated";
    /// A test event was sent to a webhook endpoint.
    WebhookTested = "WEBHOOK_TESTED", Info, Success, Some(R::Webhook), "Webhook test sent";
    /// Someone sent a webhook delivery again (`metadata.deliveryId`).
    WebhookDeliveryRetried = "WEBHOOK_DELIVERY_RETRIED", Info, Success, Some(R::Webhook), "Webhook delivery sent again";
    /// Someone replayed an endpoint's failed and cancelled deliveries since a time (`metadata.since`).
    WebhookRecovered = "WEBHOOK_RECOVERED", Info, Success, Some(R::Webhook), "Webhook deliveries replayed";
    /// The watch found a bridge silent: no heartbeat for two minutes (`metadata.lastHeartbeatAt`); published once per silence.
    BridgeDisconnected = "BRIDGE_DISCONNECTED", Warning, Success, Some(R::Bridge), "Bridge stopped reporting";
    /// The watch found scheduled maintenance fallen due (`metadata.scheduledFor`); published once per scheduled time.
    MaintenanceDue = "MAINTENANCE_DUE", Info, Success, Some(R::Maintenance), "Maintenance fell due";
    /// The watch found an instrument's calibration past due (`metadata.calibrationDueAt`); published once per due date.
    CalibrationOverdue = "CALIBRATION_OVERDUE", Warning, Success, Some(R::Instrument), "Instrument calibration overdue";
    /// The delivery job disabled an endpoint: it answered 410 Gone, or every delivery failed for five days (`newValues.disabledReason`).
    WebhookDisabled = "WEBHOOK_DISABLED", Warning, Success, Some(R::Webhook), "Webhook disabled by the delivery job";
    /// The audit trail was exported (filters, range, the file's SHA-256).
    AuditExported = "AUDIT_EXPORTED", Info, Success, None, "Audit trail exported";
    /// The retention job ran, with what it removed.
    RetentionRun = "RETENTION_RUN", Info, Success, Some(R::Retention), "Retention job ran";
}

/// What an event is: a catalogued type, or one a client reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'a> {
    Catalogued(EventType),
    /// `CLIENT_<name>`, as stored.
    Client(&'a str),
}

impl Kind<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            Kind::Catalogued(event_type) => event_type.as_str(),
            Kind::Client(name) => name,
        }
    }
}

impl From<EventType> for Kind<'_> {
    fn from(event_type: EventType) -> Self {
        Kind::Catalogued(event_type)
    }
}

/// `docs/AUDIT_EVENTS.md`'s table: every type with its severity, outcome,
/// record and when it is written.
pub fn catalogue_markdown() -> String {
    let mut out = String::from(
        "| event type | severity | outcome | record | action | written when |\n|---|---|---|---|---|---|\n",
    );
    for event_type in EventType::ALL {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            event_type.as_str(),
            event_type.severity().as_str(),
            event_type.outcome().as_str(),
            event_type
                .record_type()
                .map_or("—".to_owned(), |r| format!("`{}`", r.as_str())),
            event_type.action(),
            event_type.about(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_never_look_like_client_events() {
        let mut names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a name is catalogued twice");
        assert!(names.iter().all(|n| !n.starts_with("CLIENT_")));
        assert!(EventType::ALL.iter().all(|t| !t.about().is_empty()));
    }

    #[test]
    fn severities_and_outcomes_round_trip() {
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
        }
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(Severity::parse("info"), None);
    }
}
