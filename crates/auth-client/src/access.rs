//! The claims of the access tokens auth issues and the gateway verifies (RS256, `kid` header,
//! keys published at auth's `/.well-known/jwks.json`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Role;

/// Issuer of access tokens.
pub const ACCESS_ISSUER: &str = "lomash-auth";
/// Audience of access tokens.
pub const ACCESS_AUDIENCE: &str = "lomash-api";
/// Lifetime of an access token, in seconds (15 minutes).
pub const ACCESS_TTL_SECS: i64 = 15 * 60;

/// `amr` value of a password sign-in (RFC 8176).
pub const AMR_PASSWORD: &str = "pwd";
/// `amr` value of a sign-in completed with a one-time code (TOTP or a recovery code).
pub const AMR_OTP: &str = "otp";

/// Whether a caller of `role` who signed in with `amr` still owes the second factor: an
/// ADMIN or SUPER_ADMIN whose sign-in did not include [`AMR_OTP`]. The gateway and the
/// services' identity extractors refuse such callers everywhere but enrolment.
pub fn second_factor_missing(role: Role, amr: &[String]) -> bool {
    role.requires_second_factor() && !amr.iter().any(|m| m == AMR_OTP)
}

/// Claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Always [`ACCESS_ISSUER`].
    pub iss: String,
    /// Always [`ACCESS_AUDIENCE`].
    pub aud: String,
    /// The user id.
    pub sub: Uuid,
    /// The user's role when the token was issued.
    pub role: Role,
    /// The session this token belongs to (checked against the live-session allow-list).
    pub sid: Uuid,
    /// Authentication methods used at sign-in (`pwd`, and `otp` after a second factor).
    #[serde(default)]
    pub amr: Vec<String>,
    /// Token id.
    pub jti: Uuid,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
}

/// The Redis key under which auth mirrors a live session (the allow-list the gateway checks):
/// `<prefix>:session:<sid>`, where the prefix is auth's Redis key prefix (`auth` by default).
/// The key exists exactly while the session is live; its value is the user id.
pub fn session_key(prefix: &str, session_id: Uuid) -> String {
    format!("{prefix}:session:{session_id}")
}
