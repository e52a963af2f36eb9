//! The errors the emulated API answers with, and how each protocol puts them on the wire.

use std::fmt;

/// A modeled Personalize error code (docs/personalize.md#error-matrix-essentials), plus the
/// framework-level ones the emulator needs (unknown operation, throttling, a change it could not save).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidInput,
    ResourceNotFound,
    ResourceAlreadyExists,
    ResourceInUse,
    LimitExceeded,
    TooManyTags,
    TooManyTagKeys,
    InvalidNextToken,
    Throttling,
    UnknownOperation,
    /// A change was made in memory but could not be saved, so it is not acknowledged: HTTP 503 on
    /// every protocol, which clients retry (a retried create then finds the resource and adopts it).
    ServiceUnavailable,
}

impl ErrorCode {
    /// The short name sent in `x-amzn-ErrorType` and `__type`; the SDKs pick the error variant by it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "InvalidInputException",
            Self::ResourceNotFound => "ResourceNotFoundException",
            Self::ResourceAlreadyExists => "ResourceAlreadyExistsException",
            Self::ResourceInUse => "ResourceInUseException",
            Self::LimitExceeded => "LimitExceededException",
            Self::TooManyTags => "TooManyTagsException",
            Self::TooManyTagKeys => "TooManyTagKeysException",
            Self::InvalidNextToken => "InvalidNextTokenException",
            Self::Throttling => "ThrottlingException",
            Self::UnknownOperation => "UnknownOperationException",
            Self::ServiceUnavailable => "ServiceUnavailable",
        }
    }

    /// The HTTP status on the runtime and events APIs (restJson1 models give NF 404 and IU 409); the
    /// control plane answers 400 for every modeled error.
    pub fn rest_status(self) -> u16 {
        match self {
            Self::ResourceNotFound => 404,
            Self::ResourceInUse => 409,
            Self::ServiceUnavailable => 503,
            _ => 400,
        }
    }

    /// Whether the answer is a server fault (5xx) on every protocol, not a modeled client error.
    pub fn is_server_fault(self) -> bool {
        self == Self::ServiceUnavailable
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer of the emulated API: a code and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    /// A well-formed ARN that names nothing (or something already deleted).
    pub fn not_found(label: &str, arn: &str) -> Self {
        Self::new(
            ErrorCode::ResourceNotFound,
            format!("Could not find {label} with ARN {arn}"),
        )
    }

    pub fn already_exists(label: &str, arn: &str) -> Self {
        Self::new(
            ErrorCode::ResourceAlreadyExists,
            format!("Another {label} with ARN {arn} already exists"),
        )
    }

    pub fn in_use(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceInUse, message)
    }

    pub fn limit(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::LimitExceeded, message)
    }
}

/// The validation message style of AWS JSON services, so callers see a familiar text.
pub fn constraint(member: &str, value: &str, rule: &str) -> ApiError {
    let shown: String = value.chars().take(100).collect();
    ApiError::invalid(format!(
        "1 validation error detected: Value '{shown}' at '{member}' failed to satisfy constraint: {rule}"
    ))
}

/// A required member that is absent or null.
pub fn missing(member: &str) -> ApiError {
    ApiError::invalid(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_follow_the_models() {
        assert_eq!(ErrorCode::ResourceNotFound.as_str(), "ResourceNotFoundException");
        assert_eq!(ErrorCode::ResourceNotFound.rest_status(), 404);
        assert_eq!(ErrorCode::ResourceInUse.rest_status(), 409);
        assert_eq!(ErrorCode::InvalidInput.rest_status(), 400);
        assert_eq!(ErrorCode::Throttling.rest_status(), 400);
    }

    #[test]
    fn constraint_messages_truncate_long_values() {
        let e = constraint(
            "name",
            &"x".repeat(500),
            "Member must have length less than or equal to 63",
        );
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("at 'name'"));
        assert!(e.message.len() < 300);
    }
}
