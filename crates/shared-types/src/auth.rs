//! Events published by the auth service.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{envelope::event_payload, topics};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserRole {
    /// Full control, including other admins.
    SuperAdmin,
    /// Runs the catalogue, diary, CMS and orders.
    Admin,
    /// A design consultant with a diary.
    Consultant,
    /// A shopper.
    Customer,
}

/// `user.created`: a user registered (or was created by an admin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserCreated {
    /// The new user's id.
    pub user_id: Uuid,
    /// Their email address (not yet verified).
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// E.164 phone number, if given.
    #[serde(default)]
    pub phone: Option<String>,
    /// The role they were created with.
    pub role: UserRole,
    /// Whether they agreed to marketing email.
    #[serde(default)]
    pub marketing_opt_in: bool,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}
event_payload!(UserCreated, topics::USER_CREATED, 1);

/// `user.email_verified`: a user proved they own their email address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserEmailVerified {
    /// The user.
    pub user_id: Uuid,
    /// The verified address.
    pub email: String,
    /// When it was verified.
    pub verified_at: DateTime<Utc>,
}
event_payload!(UserEmailVerified, topics::USER_EMAIL_VERIFIED, 1);

/// What a one-time password is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OtpPurpose {
    /// Confirming a new account's email address.
    EmailVerification,
    /// Resetting a forgotten password.
    PasswordReset,
    /// The second factor of a login.
    TwoFactorAuth,
    /// A passwordless login.
    Login,
}

/// A plaintext one-time password.
///
/// It travels in the event only so that the notification service can deliver it. **It must never
/// be logged or stored in plaintext**: its `Debug` output is redacted, and consumers must read it
/// with [`OtpCode::expose`] only to render the message.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OtpCode(String);

impl OtpCode {
    /// Wraps a plaintext code.
    #[must_use]
    pub fn new(code: impl Into<String>) -> Self {
        Self(code.into())
    }

    /// The plaintext code, for rendering the message that delivers it. Never log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(<redacted>)")
    }
}

/// `auth.otp_requested`: a one-time password was issued; the notification service emails it.
///
/// The event carries the plaintext [`code`](Self::code) (auth itself stores only its hash). Never
/// log this payload's code; its `Debug` output redacts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OtpRequested {
    /// The user, when the address belongs to an account.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// Where to send the code.
    pub email: String,
    /// What the code is for (chooses the email template).
    pub purpose: OtpPurpose,
    /// The plaintext code. Never log it.
    pub code: OtpCode,
    /// When the code stops working.
    pub expires_at: DateTime<Utc>,
}
event_payload!(OtpRequested, topics::AUTH_OTP_REQUESTED, 1);

/// `user.erasure_requested`: every service must erase or anonymise this user's personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserErasureRequested {
    /// The user to erase.
    pub user_id: Uuid,
    /// The admin who requested it, if not the user themselves.
    #[serde(default)]
    pub requested_by: Option<Uuid>,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
}
event_payload!(UserErasureRequested, topics::USER_ERASURE_REQUESTED, 1);
