//! The one error type of the API, its stable codes and HTTP statuses.
//!
//! Internal variants ([`ApiError::Internal`], [`ApiError::Unavailable`]) carry
//! a cause for the log; the client only ever sees the generic public message
//! and the request id.

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal, $status:ident;)+) => {
        /// Stable, documented error codes (appendix B of the design document,
        /// plus the few the API needs beyond it), each spelled once here.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)+
        }

        impl ErrorCode {
            /// Every code, in documentation order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The code as clients see it, e.g. `VALIDATION_ERROR`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)+
                }
            }

            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)+
                }
            }
        }
    };
}

error_codes! {
    AuthInvalidCredentials = "AUTH_INVALID_CREDENTIALS", UNAUTHORIZED;
    AuthTokenExpired = "AUTH_TOKEN_EXPIRED", UNAUTHORIZED;
    AuthTokenInvalid = "AUTH_TOKEN_INVALID", UNAUTHORIZED;
    AuthInsufficientPermissions = "AUTH_INSUFFICIENT_PERMISSIONS", FORBIDDEN;
    RateLimitExceeded = "RATE_LIMIT_EXCEEDED", TOO_MANY_REQUESTS;
    ValidationError = "VALIDATION_ERROR", BAD_REQUEST;
    ResourceNotFound = "RESOURCE_NOT_FOUND", NOT_FOUND;
    MethodNotAllowed = "METHOD_NOT_ALLOWED", METHOD_NOT_ALLOWED;
    Conflict = "CONFLICT", CONFLICT;
    PreconditionFailed = "PRECONDITION_FAILED", PRECONDITION_FAILED;
    PreconditionRequired = "PRECONDITION_REQUIRED", PRECONDITION_REQUIRED;
    RangeNotSatisfiable = "RANGE_NOT_SATISFIABLE", RANGE_NOT_SATISFIABLE;
    PayloadTooLarge = "PAYLOAD_TOO_LARGE", PAYLOAD_TOO_LARGE;
    UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE", UNSUPPORTED_MEDIA_TYPE;
    InternalError = "INTERNAL_ERROR", INTERNAL_SERVER_ERROR;
    NotImplemented = "NOT_IMPLEMENTED", NOT_IMPLEMENTED;
    ServiceUnavailable = "SERVICE_UNAVAILABLE", SERVICE_UNAVAILABLE;
}

impl ErrorCode {
    /// The code named `text` (as clients read it from an envelope).
    pub fn parse(text: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == text)
    }
}

/// Clients see the code's name.
impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let codes = ErrorCode::ALL
            .iter()
            .map(|c| format!("`{}` ({})", c.as_str(), c.status().as_u16()))
            .collect::<Vec<_>>()
            .join(", ");
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
            .description(Some(format!(
                "A stable error code; each comes with one HTTP status: {codes}."
            )))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ErrorCode {}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ErrorCode::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown error code {text}")))
    }
}

/// One problem with one input field, as shown in `error.details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Who made a request, once identified: a refusal the audit trail records
/// (`ACCESS_DENIED`, `RATE_LIMIT_BLOCKED`) carries it, so the trail names
/// the caller without the request remembering anything on the side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    /// The login (session family); `None` for an API key.
    pub session_id: Option<uuid::Uuid>,
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("validation failed: {0:?}")]
    Validation(Vec<FieldError>),
    #[error("invalid credentials")]
    InvalidCredentials,
    /// A second-factor code that is wrong, expired or already used.
    #[error("second factor refused")]
    SecondFactorRefused,
    #[error("access token expired")]
    TokenExpired,
    #[error("missing or invalid access token: {0}")]
    TokenInvalid(&'static str),
    /// A permission the caller lacks; recorded as `ACCESS_DENIED`.
    #[error("insufficient permissions")]
    Forbidden { caller: Option<Caller> },
    /// A CORS preflight from an origin the deployment does not allow.
    #[error("origin not allowed")]
    OriginNotAllowed,
    #[error("resource not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static [Method] },
    #[error("conflict: {message}")]
    Conflict {
        message: String,
        details: Vec<FieldError>,
    },
    /// The client's version (`If-Match`) is not the current one.
    #[error("stale version {given}, current {current}")]
    PreconditionFailed { given: String, current: i64 },
    /// An update without `If-Match` (or `version`).
    #[error("precondition required")]
    PreconditionRequired,
    /// A `Range` outside the representation.
    #[error("range not satisfiable (size {size})")]
    RangeNotSatisfiable { size: u64 },
    #[error("payload larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// Over a rate limit. `started_block`: this refusal began a block,
    /// which the trail records once (`RATE_LIMIT_BLOCKED`) with the caller
    /// when known.
    #[error("rate limit exceeded")]
    RateLimited {
        retry_after_secs: u64,
        started_block: bool,
        caller: Option<Caller>,
    },
    /// A dependency (database, proxy) is unreachable or overloaded. The text
    /// is for the log only.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A named dependency is down (e.g. `database`); shown as a detail.
    #[error("{component} unavailable: {cause}")]
    DependencyDown {
        component: &'static str,
        cause: String,
    },
    /// This deployment cannot serve the request (a WebSocket on Spin); the
    /// text, for the client, says what to use instead.
    #[error("not implemented here: {0}")]
    NotImplemented(&'static str),
    /// A bug or misconfiguration. The text is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A single-field validation error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    /// A `409 CONFLICT` with a message for the client and no field details.
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::Conflict {
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Validation(_) => ErrorCode::ValidationError,
            ApiError::InvalidCredentials | ApiError::SecondFactorRefused => {
                ErrorCode::AuthInvalidCredentials
            }
            ApiError::TokenExpired => ErrorCode::AuthTokenExpired,
            ApiError::TokenInvalid(_) => ErrorCode::AuthTokenInvalid,
            ApiError::Forbidden { .. } | ApiError::OriginNotAllowed => {
                ErrorCode::AuthInsufficientPermissions
            }
            ApiError::NotFound => ErrorCode::ResourceNotFound,
            ApiError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            ApiError::Conflict { .. } => ErrorCode::Conflict,
            ApiError::PreconditionFailed { .. } => ErrorCode::PreconditionFailed,
            ApiError::PreconditionRequired => ErrorCode::PreconditionRequired,
            ApiError::RangeNotSatisfiable { .. } => ErrorCode::RangeNotSatisfiable,
            ApiError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            ApiError::RateLimited { .. } => ErrorCode::RateLimitExceeded,
            ApiError::Unavailable(_) | ApiError::DependencyDown { .. } => {
                ErrorCode::ServiceUnavailable
            }
            ApiError::NotImplemented(_) => ErrorCode::NotImplemented,
            ApiError::Internal(_) => ErrorCode::InternalError,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.code().status()
    }

    /// The message a client sees. Never contains internal text.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Validation(_) => "Invalid input parameters".into(),
            ApiError::InvalidCredentials => "Invalid email or password".into(),
            ApiError::SecondFactorRefused => {
                "The code is wrong, expired or already used; enter the current code of your authenticator or a recovery code".into()
            }
            ApiError::TokenExpired => "Access token has expired".into(),
            ApiError::TokenInvalid(why) => format!("Missing or invalid access token: {why}"),
            ApiError::Forbidden { .. } => "You do not have permission to perform this action".into(),
            ApiError::OriginNotAllowed => {
                "Pages of this origin may not call the API (it is not in the deployment's CORS_ORIGIN)".into()
            }
            ApiError::NotFound => "Resource not found".into(),
            ApiError::MethodNotAllowed { .. } => "Method not allowed on this resource".into(),
            ApiError::Conflict { message, .. } => message.clone(),
            ApiError::PreconditionFailed { current, .. } => format!(
                "The resource was changed by someone else; its current version is {current}. Reload it and apply your change again"
            ),
            ApiError::PreconditionRequired => {
                "This update needs the version you are changing: send If-Match with the ETag you read".into()
            }
            ApiError::RangeNotSatisfiable { size } => {
                format!("The requested range is outside the data ({size} bytes)")
            }
            ApiError::PayloadTooLarge { limit } => {
                format!("Request body is larger than the limit of {limit} bytes")
            }
            ApiError::UnsupportedMediaType => "Request body must be application/json".into(),
            ApiError::RateLimited { .. } => "Too many requests".into(),
            ApiError::Unavailable(_) | ApiError::DependencyDown { .. } => {
                "Service temporarily unavailable".into()
            }
            ApiError::NotImplemented(what) => (*what).to_owned(),
            ApiError::Internal(_) => "An internal error occurred".into(),
        }
    }

    pub fn details(&self) -> Vec<FieldError> {
        match self {
            ApiError::Validation(details) | ApiError::Conflict { details, .. } => details.clone(),
            ApiError::DependencyDown { component, .. } => {
                vec![FieldError::new(
                    *component,
                    format!("The {component} is unreachable"),
                )]
            }
            _ => Vec::new(),
        }
    }

    /// Whether the cause must be logged (the client sees nothing of it).
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            ApiError::Internal(_) | ApiError::Unavailable(_) | ApiError::DependencyDown { .. }
        )
    }
}
