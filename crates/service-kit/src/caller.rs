//! Who is calling, as the gateway (or a peer service) vouched for it in the internal token.
//!
//! [`require_internal_token`] guards every service route: a request without a valid internal
//! token is refused with 401 before any handler runs, so nothing a client sends straight to a
//! service can claim an identity. Handlers then name the identity they need in their signature:
//! [`Caller`] (a signed-in user), [`AdminCaller`], [`StaffCaller`], [`MaybeCaller`] (public routes
//! that use the identity when present) or [`ServiceCaller`] (`/internal` routes).
//!
//! **Second factor.** An ADMIN or SUPER_ADMIN whose sign-in lacks `otp` in its `amr` (not enrolled
//! in two-factor sign-in yet, or a password-only token) is refused with 403
//! `second-factor-required` by every user extractor here, so no handler can serve an
//! administrator who skipped it, whichever way it checks the role (`AdminCaller`, or
//! `caller.role.is_admin()` on a plain [`Caller`]). Only [`FirstFactorCaller`] lets them through:
//! auth uses it for enrolment and the caller's own session, nothing else should.

use auth_client::{CallerKind, INTERNAL_TOKEN_HEADER, InternalClaims, InternalKeys, Role};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use crate::problem::Problem;

/// Middleware: verifies the internal token and stores its claims for the extractors.
pub async fn require_internal_token(
    State(keys): State<InternalKeys>,
    mut request: Request,
    next: Next,
) -> Response {
    if crate::http::COMMON_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let Some(token) = request
        .headers()
        .get(INTERNAL_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
    else {
        return Problem::unauthorized("Requests must come through the gateway.").into_response();
    };
    match keys.verify(token) {
        Ok(claims) => {
            request.extensions_mut().insert(claims);
            next.run(request).await
        }
        Err(error) => {
            tracing::warn!(%error, "refused an invalid internal token");
            Problem::unauthorized("The internal token is invalid.").into_response()
        }
    }
}

fn claims(parts: &Parts) -> Result<&InternalClaims, Problem> {
    parts
        .extensions
        .get::<InternalClaims>()
        .ok_or_else(|| Problem::unauthorized("Requests must come through the gateway."))
}

/// The 403 answered to an ADMIN or SUPER_ADMIN who has not signed in with a second factor
/// (type `…/problems/second-factor-required`); the gateway answers the same.
pub fn second_factor_required() -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "second-factor-required",
        "Second factor required",
    )
    .with_detail(
        "Administrators must sign in with a second factor: enrol at POST /v1/auth/2fa/setup, \
         then sign in again and complete POST /v1/auth/2fa/verify.",
    )
}

/// A signed-in user. Anonymous callers get 401; an ADMIN or SUPER_ADMIN without the second
/// factor gets 403 `second-factor-required`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user's id.
    pub user_id: Uuid,
    /// The user's role.
    pub role: Role,
    /// The session the request belongs to.
    pub session_id: Uuid,
    /// How the user signed in (`pwd`, `otp`).
    pub amr: Vec<String>,
    /// The originating request id.
    pub request_id: Option<String>,
}

impl Caller {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Problem> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(Problem::forbidden("Your role does not allow this."))
        }
    }

    fn from_claims(claims: &InternalClaims) -> Option<Self> {
        Some(Self {
            user_id: claims.user_id()?,
            role: claims.role?,
            session_id: claims.sid?,
            amr: claims.amr.clone(),
            // The gateway reuses a caller's token across requests, so the request id travels in
            // `X-Request-Id` rather than in the token.
            request_id: claims.rid.clone().or_else(crate::request_id::current),
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let FirstFactorCaller(caller) = FirstFactorCaller::from_request_parts(parts, state).await?;
        caller.with_second_factor()
    }
}

impl Caller {
    /// Whether this caller's sign-in included a one-time code.
    pub fn used_second_factor(&self) -> bool {
        self.amr.iter().any(|m| m == auth_client::AMR_OTP)
    }

    fn with_second_factor(self) -> Result<Self, Problem> {
        if auth_client::second_factor_missing(self.role, &self.amr) {
            Err(second_factor_required())
        } else {
            Ok(self)
        }
    }
}

/// A signed-in user whose second factor is **not** checked: for auth's enrolment routes and the
/// caller's own session (sign out, `me`), which an administrator must reach before enrolling.
/// Nothing else should take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstFactorCaller(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for FirstFactorCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        Caller::from_claims(claims(parts)?)
            .map(Self)
            .ok_or_else(|| Problem::unauthorized("Sign in to do this."))
    }
}

/// The signed-in user when there is one (public routes that personalise). An ADMIN or
/// SUPER_ADMIN without the second factor gets 403 rather than an anonymous answer, so the
/// missing step is visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaybeCaller(pub Option<Caller>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        Caller::from_claims(claims(parts)?)
            .map(Caller::with_second_factor)
            .transpose()
            .map(Self)
    }
}

/// A signed-in ADMIN or SUPER_ADMIN who used the second factor; others get 403, anonymous
/// callers 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCaller(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for AdminCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.role.is_admin() {
            Ok(Self(caller))
        } else {
            Err(Problem::forbidden("Administrators only."))
        }
    }
}

/// A signed-in member of staff (SUPER_ADMIN, ADMIN or CONSULTANT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffCaller(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for StaffCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.role.is_staff() {
            Ok(Self(caller))
        } else {
            Err(Problem::forbidden("Staff only."))
        }
    }
}

/// Another service calling an `/internal` route for itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCaller {
    /// The calling service's name.
    pub service: String,
}

impl<S: Send + Sync> FromRequestParts<S> for ServiceCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let claims = claims(parts)?;
        match (claims.kind, claims.service_name()) {
            (CallerKind::Service, Some(name)) => Ok(Self {
                service: name.to_owned(),
            }),
            _ => Err(Problem::forbidden("Internal routes are for services only.")),
        }
    }
}
