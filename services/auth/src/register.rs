//! `POST /v1/auth/register`: a new customer account, an email-verification code, and the
//! `user.created` and `auth.otp_requested` events, all in one transaction.
//!
//! A duplicate address gets the very same answer (201, same shape, a fresh random `userId`),
//! costs the same password hash, and creates nothing. If that existing account has not verified
//! its address yet, a new verification code is sent to it (within the usual resend limits): the
//! owner may simply have lost the first one. A verified owner is not notified (no template for
//! it yet).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::{FieldError, Role, ValidatedJson};
use shared_types::auth::{OtpPurpose, UserCreated, UserRole};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validation::{Email, PasswordContext, PhoneE164};
use validator::Validate;

use crate::account::{self, UserStatus};
use crate::error::{AuthError, AuthResult, collect};
use crate::{AppState, event, otp};

/// Longest first or last name.
const MAX_NAME_CHARS: usize = 100;

/// `POST /v1/auth/register`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    /// Email address (case is ignored).
    #[schema(example = "jane@example.com", format = Email, max_length = 254)]
    pub email: String,
    /// 12–128 characters, not one character repeated, not a common password, not containing
    /// the name or email.
    #[schema(min_length = 12, max_length = 128, pattern = r"^([\s\S])(?!\1*$)")]
    pub password: String,
    /// Given name: up to 100 characters once trimmed, not blank, no control characters.
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub first_name: String,
    /// Family name: up to 100 characters once trimmed, not blank, no control characters.
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub last_name: String,
    /// Phone number: international (`+44 7700 900123`) or UK national (`07700 900123`); blank
    /// means none.
    #[serde(default)]
    #[schema(
        max_length = 64,
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[ \t.-]*(?:(?:\+[ \t.-]*|0[ \t.-]*0[ \t.-]*)[1-9](?:[ \t.-]*[0-9]){7,14}|0[ \t.-]*[1-9](?:[ \t.-]*[0-9]){8,9})[ \t.-]*)?[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub phone: Option<String>,
}

/// A registration that passed every rule.
pub(crate) struct Registration {
    pub email: Email,
    pub password: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<PhoneE164>,
}

fn name(errors: &mut Vec<FieldError>, field: &str, value: &str) -> Option<String> {
    let trimmed = value.trim();
    let message = if trimmed.is_empty() {
        "is required"
    } else if trimmed.chars().count() > MAX_NAME_CHARS {
        "must be at most 100 characters long"
    } else if trimmed.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Some(trimmed.to_owned());
    };
    errors.push(FieldError::new(field, message));
    None
}

impl RegisterRequest {
    /// Checks every field at once, so the client hears of every problem in one answer.
    pub(crate) fn parse(self) -> Result<Registration, AuthError> {
        let mut errors = Vec::new();
        let email = collect(&mut errors, "email", Email::parse(&self.email));
        let first_name = name(&mut errors, "firstName", &self.first_name);
        let last_name = name(&mut errors, "lastName", &self.last_name);
        let phone = match self.phone.as_deref().map(str::trim) {
            None | Some("") => Some(None),
            Some(phone) => collect(&mut errors, "phone", PhoneE164::parse_uk(phone)).map(Some),
        };
        let full_name = format!(
            "{} {}",
            first_name.as_deref().unwrap_or_default(),
            last_name.as_deref().unwrap_or_default()
        );
        let context = PasswordContext {
            email: email.as_ref().map(Email::as_str),
            name: Some(&full_name),
        };
        collect(
            &mut errors,
            "password",
            validation::check_password(&self.password, &context),
        );
        match (email, first_name, last_name, phone) {
            (Some(email), Some(first_name), Some(last_name), Some(phone)) if errors.is_empty() => {
                Ok(Registration {
                    email,
                    password: self.password,
                    first_name,
                    last_name,
                    phone,
                })
            }
            _ => Err(AuthError::Validation(errors)),
        }
    }
}

/// The answer to a registration (identical for a new and an existing address).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    /// The new account's id.
    pub user_id: Uuid,
    /// The normalised address the code was sent to.
    pub email: String,
    /// What happens next.
    pub message: String,
}

const REGISTERED_MESSAGE: &str =
    "Check your email for a 6-digit code to verify your address. You can sign in meanwhile.";

/// Creates a customer account and sends an email-verification code.
#[utoipa::path(
    post,
    path = "/v1/auth/register",
    tag = "registration",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered (the same answer when the address is taken)", body = Registered),
        (status = 422, description = "Invalid fields, one entry each", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Code storage unavailable", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn register(
    State(state): State<AppState>,
    ValidatedJson(request): ValidatedJson<RegisterRequest>,
) -> AuthResult<(StatusCode, Json<Registered>)> {
    let registration = request.parse()?;
    // Hash first, whatever happens next, so a taken address answers as slowly as a free one.
    let password_hash = state.hasher.hash(&registration.password).await?;
    let user_id = Uuid::now_v7();
    let email = registration.email.as_str().to_owned();

    let mut tx = state.db.begin().await?;
    let created_at: Option<DateTime<Utc>> = sqlx::query_scalar!(
        r#"INSERT INTO users (id, email, password_hash, first_name, last_name, phone, role)
           VALUES ($1, $2, $3, $4, $5, $6, 'CUSTOMER')
           ON CONFLICT ((lower(email))) DO NOTHING
           RETURNING created_at"#,
        user_id,
        email,
        password_hash,
        registration.first_name,
        registration.last_name,
        registration.phone.as_ref().map(PhoneE164::as_str),
    )
    .fetch_optional(&mut *tx)
    .await?;

    let answer = |user_id| {
        (
            StatusCode::CREATED,
            Json(Registered {
                user_id,
                email: email.clone(),
                message: REGISTERED_MESSAGE.to_owned(),
            }),
        )
    };

    let Some(created_at) = created_at else {
        // Taken. Help an owner who never verified; tell the caller nothing.
        if let Some(existing) = account::find_by_email(&mut tx, &email).await?
            && existing.status == UserStatus::Active
            && existing.email_verified_at.is_none()
        {
            otp::issue(
                &state,
                &mut tx,
                existing.id,
                &existing.email,
                OtpPurpose::EmailVerification,
            )
            .await?;
        }
        tx.commit().await?;
        return Ok(answer(Uuid::now_v7()));
    };

    event_bus::outbox::publish(
        &mut tx,
        &event(UserCreated {
            user_id,
            email: email.clone(),
            first_name: registration.first_name.clone(),
            last_name: registration.last_name.clone(),
            phone: registration.phone.as_ref().map(|p| p.as_str().to_owned()),
            role: user_role(Role::Customer),
            marketing_opt_in: false,
            created_at,
        }),
    )
    .await?;
    otp::issue(
        &state,
        &mut tx,
        user_id,
        &email,
        OtpPurpose::EmailVerification,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(%user_id, "registered");
    Ok(answer(user_id))
}

/// The event's role for an auth role.
pub(crate) fn user_role(role: Role) -> UserRole {
    match role {
        Role::SuperAdmin => UserRole::SuperAdmin,
        Role::Admin => UserRole::Admin,
        Role::Consultant => UserRole::Consultant,
        Role::Customer => UserRole::Customer,
    }
}

/// The registration routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(register))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(email: &str, password: &str) -> RegisterRequest {
        RegisterRequest {
            email: email.to_owned(),
            password: password.to_owned(),
            first_name: "Jane".to_owned(),
            last_name: "Doe".to_owned(),
            phone: Some("07700 900123".to_owned()),
        }
    }

    #[test]
    fn a_good_request_is_normalised() {
        let parsed = match request(" Jane@Example.COM ", "correct horse battery staple").parse() {
            Ok(parsed) => parsed,
            Err(error) => panic!("valid request refused: {error:?}"),
        };
        assert_eq!(parsed.email.as_str(), "jane@example.com");
        assert_eq!(
            parsed.phone.as_ref().map(PhoneE164::as_str),
            Some("+447700900123")
        );
    }

    #[test]
    fn every_bad_field_is_reported() {
        let mut bad = request("not-an-email", "password");
        bad.first_name = "  ".to_owned();
        bad.phone = Some("12".to_owned());
        let Err(AuthError::Validation(errors)) = bad.parse() else {
            panic!("bad request accepted");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "firstName", "phone", "password"]);
    }

    #[test]
    fn a_password_containing_the_name_is_refused() {
        let Err(AuthError::Validation(errors)) =
            request("jane@example.com", "janedoe-kitchens-2026").parse()
        else {
            panic!("personal password accepted");
        };
        assert_eq!(errors[0].field, "password");
    }
}
