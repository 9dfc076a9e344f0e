//! The password policy.
//!
//! We follow NIST SP 800-63B (§5.1.1.2, "memorized secrets"): **length over composition**.
//! A password must be
//!
//! 1. at least [`MIN_CHARS`] (12) and at most [`MAX_CHARS`] (128) characters long, counted as
//!    Unicode characters, not bytes — so spaces, passphrases and any script are welcome;
//! 2. not one of the most common / breached passwords in the list this crate ships
//!    (`data/common-passwords.txt`, ~1,300 entries, compared case-insensitively), and not a
//!    single character repeated (`aaaaaaaaaaaa`);
//! 3. free of context-specific words: the user's email local part, any part of their name
//!    (each only when 3 characters or longer), and the site's name (`lomashwood`), compared
//!    case-insensitively as substrings.
//!
//! Deliberately **not** required: mixes of upper/lower case, digits or symbols, and periodic
//! expiry — NIST advises against both because they push people towards predictable patterns.
//! Passwords are never trimmed or otherwise altered; what the user typed is what is hashed
//! (with argon2id, in the auth service).

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::ValidationError;

/// Fewest characters a password may have.
pub const MIN_CHARS: usize = 12;
/// Most characters a password may have (bounds the cost of hashing).
pub const MAX_CHARS: usize = 128;

/// Words that may not appear in any password on this site.
const SITE_WORDS: &[&str] = &["lomashwood", "lomash wood"];

/// The shipped list: lower-case, one per line, `#` comments.
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    })
}

/// Whether `password` (compared in lower case) is on the shipped common-password list.
#[must_use]
pub fn is_common_password(password: &str) -> bool {
    common_passwords().contains(password.to_lowercase().as_str())
}

/// What we know about the person choosing the password, for the context-specific checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct PasswordContext<'a> {
    /// The account's email address (its local part may not appear in the password).
    pub email: Option<&'a str>,
    /// The person's name, e.g. `"Jane Doe"` (no part of 3+ characters may appear).
    pub name: Option<&'a str>,
}

impl<'a> PasswordContext<'a> {
    /// A context with an email address only.
    #[must_use]
    pub fn with_email(email: &'a str) -> Self {
        Self {
            email: Some(email),
            name: None,
        }
    }
}

/// Checks `password` against the whole policy (see the [module docs](self)).
///
/// # Errors
/// The first rule that fails: [`ValidationError::PasswordTooShort`],
/// [`ValidationError::PasswordTooLong`], [`ValidationError::PasswordTooCommon`] or
/// [`ValidationError::PasswordContainsPersonalInfo`].
pub fn check_password(
    password: &str,
    context: &PasswordContext<'_>,
) -> Result<(), ValidationError> {
    let length = password.chars().count();
    if length < MIN_CHARS {
        return Err(ValidationError::PasswordTooShort { min: MIN_CHARS });
    }
    if length > MAX_CHARS {
        return Err(ValidationError::PasswordTooLong { max: MAX_CHARS });
    }
    let lower = password.to_lowercase();
    if common_passwords().contains(lower.as_str()) || is_one_repeated_char(&lower) {
        return Err(ValidationError::PasswordTooCommon);
    }
    if context_words(context)
        .chain(SITE_WORDS.iter().map(|w| (*w).to_owned()))
        .any(|word| lower.contains(&word))
    {
        return Err(ValidationError::PasswordContainsPersonalInfo);
    }
    Ok(())
}

fn is_one_repeated_char(password: &str) -> bool {
    let mut chars = password.chars();
    chars.next().is_some_and(|first| chars.all(|c| c == first))
}

/// Lower-cased words of 3+ characters from the email local part and the name.
fn context_words<'c>(context: &'c PasswordContext<'_>) -> impl Iterator<Item = String> + 'c {
    let local = context.email.map(|email| {
        email
            .trim()
            .split('@')
            .next()
            .unwrap_or_default()
            .to_lowercase()
    });
    let names = context
        .name
        .into_iter()
        .flat_map(|name| name.split(|c: char| !c.is_alphanumeric()))
        .map(str::to_lowercase);
    local
        .into_iter()
        .chain(names)
        .filter(|word| word.chars().count() >= 3)
}

/// A password that passed the policy. Parse, don't validate: a handler holding a `Password`
/// knows it is long enough and not a common one.
///
/// Deliberately *not* `Display` or `Serialize`, and its `Debug` prints `Password(********)`:
/// a password can never end up in a log line or a response by accident. Read it with
/// [`expose_secret`](Self::expose_secret) (or [`as_str`](Self::as_str)) only to hash or
/// verify it. It deserialises from a JSON string with the context-free checks; call
/// [`Password::parse_with`] (or [`check_password`]) when you know the user's email or name.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Password(String);

impl Password {
    /// Checks the context-free rules (length, common list, repetition, site name).
    ///
    /// # Errors
    /// See [`check_password`].
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        Self::parse_with(input, &PasswordContext::default())
    }

    /// Checks every rule, including the user's email and name.
    ///
    /// # Errors
    /// See [`check_password`].
    pub fn parse_with(input: &str, context: &PasswordContext<'_>) -> Result<Self, ValidationError> {
        check_password(input, context)?;
        Ok(Self(input.to_owned()))
    }

    /// The password itself, to hash it. The name is a reminder at every use site.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The same as [`expose_secret`](Self::expose_secret), for symmetry with the other types.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(********)")
    }
}

impl TryFrom<String> for Password {
    type Error = ValidationError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        check_password(&value, &PasswordContext::default())?;
        Ok(Self(value))
    }
}

/// For `#[validate(custom(function = "validation::validate_password"))]`: the context-free rules.
///
/// Note that `validator`'s derive copies a failing field's value into the error's `params`
/// (`"value"`), so a rejected password then sits inside the `ValidationErrors`; never log those
/// errors with `{:?}`. Prefer a `Password` field (rejected during deserialisation, nothing
/// copied), then [`check_password`] with the email once the whole request is parsed.
///
/// # Errors
/// One of the `password_*` codes.
pub fn validate_password(value: &str) -> Result<(), validator::ValidationError> {
    check_password(value, &PasswordContext::default()).map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_list_is_large_and_normalised() {
        let list = common_passwords();
        assert!(list.len() >= 1_000, "only {} entries", list.len());
        for entry in list {
            assert_eq!(
                *entry,
                entry.to_lowercase(),
                "entry {entry:?} is not lower case"
            );
        }
        for common in [
            "123456",
            "password",
            "qwerty",
            "letmein",
            "iloveyou",
            "1qaz2wsx3edc",
        ] {
            assert!(is_common_password(common), "{common} missing");
        }
        assert!(is_common_password("PassWord"));
    }

    #[test]
    fn good_passwords_pass() {
        let context = PasswordContext {
            email: Some("jane.doe@example.com"),
            name: Some("Jane Doe"),
        };
        let cases = [
            "correct horse battery",
            "Tr0ub4dor&3xyz",
            "kitchen island with oak worktops",
            "zzzzzzzzzzzy",
            "áéíóúáéíóúáé", // 12 characters, 24 bytes
            "日本語のパスワードです長い",
            "my-shaker-kitchen-2026",
            &"x1".repeat(64), // exactly 128 characters
        ];
        for password in cases {
            assert_eq!(check_password(password, &context), Ok(()), "{password:?}");
            assert!(
                Password::parse_with(password, &context).is_ok(),
                "{password:?}"
            );
        }
    }

    #[test]
    fn bad_passwords_fail_with_the_right_rule() {
        let context = PasswordContext {
            email: Some("Jane.Doe@example.com"),
            name: Some("Priya Sharma-Jones"),
        };
        let too_long = "a1".repeat(64) + "b";
        let cases: Vec<(&str, ValidationError)> = vec![
            ("", ValidationError::PasswordTooShort { min: 12 }),
            ("short", ValidationError::PasswordTooShort { min: 12 }),
            ("elevenchars", ValidationError::PasswordTooShort { min: 12 }),
            ("áéíóúáéíóú", ValidationError::PasswordTooShort { min: 12 }), // 20 bytes, 10 chars
            (&too_long, ValidationError::PasswordTooLong { max: 128 }),
            ("passwordpassword", ValidationError::PasswordTooCommon),
            ("PASSWORD1234", ValidationError::PasswordTooCommon),
            ("qwertyuiop123", ValidationError::PasswordTooCommon),
            ("1qaz2wsx3edc", ValidationError::PasswordTooCommon),
            ("123456789012", ValidationError::PasswordTooCommon),
            ("aaaaaaaaaaaaaaaa", ValidationError::PasswordTooCommon),
            ("!!!!!!!!!!!!", ValidationError::PasswordTooCommon),
            (
                "jane.doe-rocks-2026",
                ValidationError::PasswordContainsPersonalInfo,
            ),
            (
                "JANE.DOE.kitchen!",
                ValidationError::PasswordContainsPersonalInfo,
            ),
            (
                "my name is priya ok",
                ValidationError::PasswordContainsPersonalInfo,
            ),
            (
                "sharma family kitchen",
                ValidationError::PasswordContainsPersonalInfo,
            ),
            (
                "i love my jones kitchen",
                ValidationError::PasswordContainsPersonalInfo,
            ),
            (
                "LomashWood kitchens",
                ValidationError::PasswordContainsPersonalInfo,
            ),
        ];
        for (password, expected) in cases {
            assert_eq!(
                check_password(password, &context),
                Err(expected),
                "{password:?}"
            );
        }
    }

    #[test]
    fn short_name_parts_and_missing_context_are_ignored() {
        // "Al" and "Li" are too short to be checked; "jo" as an email local part too.
        let context = PasswordContext {
            email: Some("jo@example.com"),
            name: Some("Al Li"),
        };
        assert_eq!(check_password("jo al li kitchens", &context), Ok(()));
        assert_eq!(
            check_password("jane.doe-rocks-2026", &PasswordContext::default()),
            Ok(())
        );
        assert_eq!(
            check_password(
                "jane.doe-rocks-2026",
                &PasswordContext::with_email("jane.doe@example.com")
            ),
            Err(ValidationError::PasswordContainsPersonalInfo)
        );
    }

    #[test]
    fn password_never_prints_itself() {
        let password = Password::parse("correct horse battery").expect("valid");
        assert_eq!(format!("{password:?}"), "Password(********)");
        assert_eq!(password.expose_secret(), "correct horse battery");
    }

    #[test]
    fn deserialising_applies_the_policy() {
        let ok: Password = serde_json::from_str("\"correct horse battery\"").expect("valid");
        assert_eq!(ok.as_str(), "correct horse battery");
        let error = serde_json::from_str::<Password>("\"password\"").expect_err("too short");
        assert!(error.to_string().contains("at least 12"), "{error}");
        assert!(!error.to_string().contains("\"password\""), "{error}");
    }

    #[test]
    fn codes_are_stable() {
        let cases = [
            ("short", "password_too_short"),
            ("passwordpassword", "password_too_common"),
            ("lomashwood-forever", "password_contains_personal_info"),
        ];
        for (password, code) in cases {
            let error = validate_password(password).expect_err("invalid");
            assert_eq!(error.code, code, "{password:?}");
        }
        let too_long = "ab".repeat(65);
        assert_eq!(
            validate_password(&too_long).expect_err("too long").code,
            "password_too_long"
        );
    }
}
