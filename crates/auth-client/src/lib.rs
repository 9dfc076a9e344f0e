//! Who is calling: the internal token every request carries from the gateway to a service.
//!
//! The gateway verifies the client's access token, then mints a short-lived **internal token**
//! (EdDSA/Ed25519, signed with the internal private key) naming the user, role, session and
//! request. Every service verifies it with the internal public key and refuses requests without
//! one, so no header a client sends can claim an identity. Services that call other services
//! mint tokens too: forwarding the caller's context while serving a request, or naming
//! themselves (`service:<name>`) for background work.
//!
//! Ed25519 is chosen over RSA because the gateway signs tokens on the request path: it signs in
//! microseconds where RSA-2048 takes about a millisecond. The gateway reuses a caller's token
//! until it is half-way to expiry, and [`InternalKeys::verify`] remembers tokens it has verified,
//! so a service checks each token's signature once.

pub mod access;
pub mod jwks;
mod keys;
mod role;
mod verified;

pub use access::{AMR_OTP, AMR_PASSWORD, AccessClaims, second_factor_missing, session_key};
pub use jwks::{JwksConfig, JwksError, JwksVerifier};
pub use keys::{InternalKeys, KeyError};
pub use role::Role;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Header carrying the internal token from the gateway (or a peer service) to a service.
pub const INTERNAL_TOKEN_HEADER: &str = "x-internal-token";

/// Audience of every internal token.
pub const INTERNAL_AUDIENCE: &str = "lomash-internal";

/// Development key pair used when the environment names none (never in production).
pub const DEV_PRIVATE_KEY_PEM: &str = include_str!("../dev-keys/internal_ed25519.pem");
/// Public half of [`DEV_PRIVATE_KEY_PEM`].
pub const DEV_PUBLIC_KEY_PEM: &str = include_str!("../dev-keys/internal_ed25519.pub.pem");

/// Who an internal token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CallerKind {
    /// A signed-in user, through the gateway.
    User,
    /// A client without a token, through the gateway (public routes).
    Anonymous,
    /// A service acting for itself (background work, `/internal` calls).
    Service,
}

/// The claims of an internal token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternalClaims {
    /// Issuer: `gateway` or the minting service's name.
    pub iss: String,
    /// Always [`INTERNAL_AUDIENCE`].
    pub aud: String,
    /// Who the token speaks for.
    pub kind: CallerKind,
    /// The user id (users), or `service:<name>` (services); absent for anonymous callers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The user's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The user's session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    /// Authentication methods of the user's sign-in (`pwd`, `otp`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The originating request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
}

impl InternalClaims {
    /// Claims for a signed-in user.
    pub fn user(issuer: &str, user_id: Uuid, role: Role, session_id: Uuid) -> Self {
        Self::base(issuer, CallerKind::User, Some(user_id.to_string()))
            .with_role(role)
            .with_session(session_id)
    }

    /// Claims for a caller without a token.
    pub fn anonymous(issuer: &str) -> Self {
        Self::base(issuer, CallerKind::Anonymous, None)
    }

    /// Claims for a service acting for itself.
    pub fn service(name: &str) -> Self {
        Self::base(name, CallerKind::Service, Some(format!("service:{name}")))
    }

    fn base(issuer: &str, kind: CallerKind, sub: Option<String>) -> Self {
        Self {
            iss: issuer.to_owned(),
            aud: INTERNAL_AUDIENCE.to_owned(),
            kind,
            sub,
            role: None,
            sid: None,
            amr: Vec::new(),
            rid: None,
            iat: 0,
            exp: 0,
        }
    }

    /// Sets the role.
    #[must_use]
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = Some(role);
        self
    }

    /// Sets the session id.
    #[must_use]
    pub fn with_session(mut self, session_id: Uuid) -> Self {
        self.sid = Some(session_id);
        self
    }

    /// Sets the request id.
    #[must_use]
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.rid = Some(request_id.into());
        self
    }

    /// Sets the authentication methods.
    #[must_use]
    pub fn with_amr(mut self, amr: Vec<String>) -> Self {
        self.amr = amr;
        self
    }

    /// The user id, for user tokens.
    pub fn user_id(&self) -> Option<Uuid> {
        match self.kind {
            CallerKind::User => self.sub.as_deref().and_then(|s| Uuid::parse_str(s).ok()),
            _ => None,
        }
    }

    /// The service name, for service tokens.
    pub fn service_name(&self) -> Option<&str> {
        match self.kind {
            CallerKind::Service => self.sub.as_deref().and_then(|s| s.strip_prefix("service:")),
            _ => None,
        }
    }
}
