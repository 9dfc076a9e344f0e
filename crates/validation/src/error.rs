//! The one error type every rule in this crate returns.

use std::borrow::Cow;

/// Why a value was rejected.
///
/// Each variant has a stable machine [`code`](ValidationError::code) (snake_case, safe to match
/// on in clients and tests) and a human message phrased to follow a field name, as in
/// `"postcode: is not a valid UK postcode"` — the shape of service-kit's problem+json `errors`.
/// Messages never echo the rejected value, so they are safe to log and to send to clients
/// (a password must never appear in either).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// Not a UK postcode.
    #[error("is not a valid UK postcode")]
    InvalidPostcode,
    /// Not an E.164 phone number (or a UK national number, where those are accepted).
    #[error("is not a valid phone number; use international format, e.g. +447700900123")]
    InvalidPhoneNumber,
    /// Not an email address; `reason` says which part is wrong.
    #[error("is not a valid email address ({reason})")]
    InvalidEmail {
        /// Which rule failed, e.g. `"missing @"`.
        reason: &'static str,
    },
    /// Fewer characters than the password policy requires.
    #[error("must be at least {min} characters long")]
    PasswordTooShort {
        /// The minimum length, in characters.
        min: usize,
    },
    /// More characters than the password policy allows.
    #[error("must be at most {max} characters long")]
    PasswordTooLong {
        /// The maximum length, in characters.
        max: usize,
    },
    /// The password is on the breached/common list or is trivially repetitive.
    #[error("is too common and easy to guess; choose a longer, less predictable password")]
    PasswordTooCommon,
    /// The password contains the user's email name, own name or the service's name.
    #[error("must not contain your name, your email address or the site's name")]
    PasswordContainsPersonalInfo,
    /// Not a slug; `reason` says which rule failed.
    #[error("is not a valid slug ({reason})")]
    InvalidSlug {
        /// Which rule failed, e.g. `"must not start or end with a hyphen"`.
        reason: &'static str,
    },
}

impl ValidationError {
    /// A stable machine code for this kind of failure (snake_case, never changes once shipped).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidPostcode => "invalid_postcode",
            Self::InvalidPhoneNumber => "invalid_phone_number",
            Self::InvalidEmail { .. } => "invalid_email",
            Self::PasswordTooShort { .. } => "password_too_short",
            Self::PasswordTooLong { .. } => "password_too_long",
            Self::PasswordTooCommon => "password_too_common",
            Self::PasswordContainsPersonalInfo => "password_contains_personal_info",
            Self::InvalidSlug { .. } => "invalid_slug",
        }
    }

    /// The human-readable message (the same text as `Display`).
    #[must_use]
    pub fn message(&self) -> String {
        self.to_string()
    }
}

impl From<ValidationError> for validator::ValidationError {
    /// Carries the stable code and the human message into `validator`'s error, so
    /// `#[validate(custom(function = ...))]` failures render the same text as `parse` failures.
    fn from(error: ValidationError) -> Self {
        validator::ValidationError::new(error.code()).with_message(Cow::Owned(error.message()))
    }
}
