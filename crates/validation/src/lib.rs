//! Validation rules reused across the Lomash Wood services.
//!
//! Each rule is a **parse-don't-validate** newtype: the only way to get a [`UkPostcode`],
//! [`PhoneE164`], [`Email`], [`Password`] or [`Slug`] is its `parse` constructor, so a value of
//! that type is known to be valid and normalised wherever it travels. All of them
//! deserialise through `TryFrom<String>` (a bad value fails deserialisation, which
//! `service-kit`'s `ValidatedJson` turns into a 422) and, except `Password`, serialise as the
//! normalised string and implement `Display`, `FromStr` and `as_str`.
//!
//! For request types that keep plain `String` fields and use the `validator` derive, each rule
//! is also a function of the shape `validator` expects:
//!
//! ```
//! use validator::Validate;
//!
//! #[derive(Validate)]
//! struct BrochureRequest {
//!     #[validate(custom(function = "validation::validate_email"))]
//!     email: String,
//!     #[validate(custom(function = "validation::validate_uk_postcode"))]
//!     postcode: String,
//!     #[validate(custom(function = "validation::validate_uk_phone"))]
//!     phone: Option<String>,
//! }
//!
//! let request = BrochureRequest {
//!     email: "jane@example.com".into(),
//!     postcode: "not a postcode".into(),
//!     phone: Some("07700 900123".into()),
//! };
//! let errors = request.validate().unwrap_err();
//! assert_eq!(errors.field_errors()["postcode"][0].code, "invalid_postcode");
//! ```
//!
//! Every failure is a [`ValidationError`] with a stable [`code`](ValidationError::code) and a
//! human message written to follow a field name (`"is not a valid UK postcode"`); messages
//! never repeat the rejected value.
//!
//! ## The rules in brief
//! - [`UkPostcode`]: every UK format (`A9 9AA` … `AA9A 9AA`) plus `GIR 0AA` and `BFPO 123`;
//!   case and spaces ignored; normalised to `SW4 0AB`; [`UkPostcode::outward`] (`SW4`) and
//!   [`UkPostcode::area`] (`SW`) for consultant coverage.
//! - [`PhoneE164`]: `+` and 8–15 digits, first non-zero; [`normalise_uk_phone`] turns
//!   `07700 900123` into `+447700900123`.
//! - [`Email`]: pragmatic checks; the **whole address is lower-cased** (local part included),
//!   which is also what makes login emails unique; [`Email::redacted`] for logs.
//! - [`Password`] / [`check_password`]: the NIST SP 800-63B–style policy described in
//!   [`password`]: 12–128 characters, not on the shipped common-password list,
//!   not containing the user's email name, own name or the site's name. No composition rules.
//! - [`Slug`] / [`slugify`]: `creme-brulee-kitchens` from `Crème Brûlée Kitchens`.

mod email;
mod error;
pub mod password;
mod phone;
mod postcode;
mod slug;

pub use email::{Email, validate_email};
pub use error::ValidationError;
pub use password::{
    MAX_CHARS as PASSWORD_MAX_CHARS, MIN_CHARS as PASSWORD_MIN_CHARS, Password, PasswordContext,
    check_password, is_common_password, validate_password,
};
pub use phone::{PhoneE164, normalise_uk_phone, validate_phone_e164, validate_uk_phone};
pub use postcode::{UkPostcode, validate_uk_postcode};
pub use slug::{
    MAX_SLUG_LEN, SLUG_SOURCE_PATTERN, Slug, has_ascii_alphanumeric, slugify, validate_slug,
};
