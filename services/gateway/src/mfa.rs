//! Second-factor enforcement at the gateway: a route with `requireAmr` (the back-office
//! `/v1/admin/**` paths, auth's user administration and key rotation) refuses an ADMIN or
//! SUPER_ADMIN whose access token lacks that `amr` value with 403 `second-factor-required`,
//! before the service is asked. The services' identity extractors apply the same rule to every
//! route (`service_kit::caller`), so this is the early, cheap half of the check, not the only
//! one. Tokens of other roles, and anonymous requests, pass: the service decides.

use auth_client::AccessClaims;
use axum::response::{IntoResponse, Response};

use crate::routes::Route;

/// `Err(403)` when `route` needs an `amr` value the administrator's token does not carry.
pub fn check(route: &Route, identity: Option<&AccessClaims>) -> Result<(), Response> {
    let (Some(required), Some(claims)) = (route.require_amr.as_deref(), identity) else {
        return Ok(());
    };
    if claims.role.requires_second_factor() && !claims.amr.iter().any(|m| m == required) {
        tracing::debug!(user_id = %claims.sub, route = %route.pattern, "administrator without the second factor refused");
        return Err(service_kit::caller::second_factor_required().into_response());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use auth_client::Role;
    use axum::http::StatusCode;

    fn claims(role: Role, amr: &[&str]) -> AccessClaims {
        AccessClaims {
            iss: auth_client::access::ACCESS_ISSUER.to_owned(),
            aud: auth_client::access::ACCESS_AUDIENCE.to_owned(),
            sub: uuid::Uuid::now_v7(),
            role,
            sid: uuid::Uuid::now_v7(),
            amr: amr.iter().map(|m| (*m).to_owned()).collect(),
            jti: uuid::Uuid::now_v7(),
            iat: 0,
            exp: 0,
        }
    }

    #[test]
    fn administrators_need_the_value_on_marked_routes_only() {
        let table = crate::routes::RouteTable::builtin().unwrap();
        let admin_route = table.find("/v1/admin/orders/1").unwrap();
        let open_route = table.find("/v1/auth/2fa/setup").unwrap();
        for role in [Role::Admin, Role::SuperAdmin] {
            let refused = check(admin_route, Some(&claims(role, &["pwd"]))).unwrap_err();
            assert_eq!(refused.status(), StatusCode::FORBIDDEN);
            assert!(check(admin_route, Some(&claims(role, &["pwd", "otp"]))).is_ok());
            assert!(check(open_route, Some(&claims(role, &["pwd"]))).is_ok());
        }
        for role in [Role::Consultant, Role::Customer] {
            assert!(check(admin_route, Some(&claims(role, &["pwd"]))).is_ok());
        }
        assert!(check(admin_route, None).is_ok());
    }
}
