//! Email addresses.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// An email address, validated pragmatically and stored **entirely in lower case**.
///
/// Rules (what real sign-up forms need, not the whole of RFC 5322): surrounding whitespace is
/// trimmed; then exactly one `@`; a local part of 1–64 bytes with no whitespace, control
/// characters, quotes, angle brackets, commas or semicolons, and no leading, trailing or doubled
/// dot; a domain of at least two dot-separated labels, each 1–63 characters of letters, digits
/// and inner hyphens, with a top-level label of at least two characters that is not all digits
/// (so IP-literal and dotless domains are rejected); 254 bytes at most in total.
///
/// **Case**: the domain is case-insensitive by definition, and although RFC 5321 lets the
/// local part be case-sensitive, practically every mail provider ignores its case. We lower-case
/// the *whole* address, so one `Email` value is both what we send to and the key for login
/// uniqueness (`Jane.Doe@Example.COM` and `jane.doe@example.com` are the same account). Plus
/// tags and dots are kept as typed: `jane+kitchen@example.com` is a different address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

/// Longest address accepted (RFC 5321 path limit less the angle brackets).
const MAX_LEN: usize = 254;
/// Longest local part accepted (RFC 5321).
const MAX_LOCAL_LEN: usize = 64;
/// Longest domain label (RFC 1035).
const MAX_LABEL_LEN: usize = 63;

impl Email {
    /// Parses and normalises (lower-cases) an email address.
    ///
    /// # Errors
    /// [`ValidationError::InvalidEmail`] naming the rule that failed.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let invalid = |reason| ValidationError::InvalidEmail { reason };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(invalid("empty"));
        }
        if trimmed.len() > MAX_LEN {
            return Err(invalid("longer than 254 characters"));
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("contains spaces"));
        }
        let (local, domain) = match trimmed.split_once('@') {
            Some((_, domain)) if domain.contains('@') => return Err(invalid("more than one @")),
            Some(parts) => parts,
            None => return Err(invalid("missing @")),
        };
        if local.is_empty() {
            return Err(invalid("nothing before the @"));
        }
        if local.len() > MAX_LOCAL_LEN {
            return Err(invalid("part before the @ is longer than 64 characters"));
        }
        if local.chars().any(|c| {
            matches!(
                c,
                '"' | '<' | '>' | ',' | ';' | '(' | ')' | '[' | ']' | '\\'
            )
        }) {
            return Err(invalid(
                "part before the @ contains a character we do not accept",
            ));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(invalid("misplaced dot before the @"));
        }
        validate_domain(domain).map_err(invalid)?;
        Ok(Self(trimmed.to_lowercase()))
    }

    /// The normalised (lower-case) address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`.
    #[must_use]
    pub fn local_part(&self) -> &str {
        self.0
            .split_once('@')
            .map_or(self.0.as_str(), |(local, _)| local)
    }

    /// The part after the `@`.
    #[must_use]
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, domain)| domain)
    }

    /// A form safe for logs: the first character of the local part, `***`, then the domain
    /// (`jane.doe@example.com` → `j***@example.com`). Logs never carry full addresses.
    #[must_use]
    pub fn redacted(&self) -> String {
        let first = self.local_part().chars().next().unwrap_or('*');
        format!("{first}***@{}", self.domain())
    }
}

fn validate_domain(domain: &str) -> Result<(), &'static str> {
    if domain.is_empty() {
        return Err("nothing after the @");
    }
    if !domain.contains('.') {
        return Err("domain has no dot");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err("misplaced dot in the domain");
        }
        if label.chars().count() > MAX_LABEL_LEN {
            return Err("domain label longer than 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("domain label starts or ends with a hyphen");
        }
        if !label.chars().all(|c| c.is_alphanumeric() || c == '-') {
            return Err("domain contains a character we do not accept");
        }
    }
    let tld = labels.last().copied().unwrap_or_default();
    if tld.chars().count() < 2 || tld.chars().all(|c| c.is_ascii_digit()) {
        return Err("domain has no valid top-level part");
    }
    Ok(())
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Email {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Email {
    type Error = ValidationError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

/// For `#[validate(custom(function = "validation::validate_email"))]` on a `String` field
/// (the same rules as [`Email::parse`], stricter than `validator`'s built-in `email`).
///
/// # Errors
/// `invalid_email` when the value is not an email address.
pub fn validate_email(value: &str) -> Result<(), validator::ValidationError> {
    Email::parse(value).map(drop).map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_addresses_are_lower_cased() {
        let cases = [
            ("jane@example.com", "jane@example.com"),
            ("Jane.Doe@Example.COM", "jane.doe@example.com"),
            ("  jane@example.com\n", "jane@example.com"),
            ("jane+kitchen@example.co.uk", "jane+kitchen@example.co.uk"),
            ("j@e.io", "j@e.io"),
            ("o'connor@example.ie", "o'connor@example.ie"),
            (
                "first_last-1@mail.example-domain.com",
                "first_last-1@mail.example-domain.com",
            ),
            ("x@xn--bcher-kva.de", "x@xn--bcher-kva.de"),
            ("Zoë@Bücher.de", "zoë@bücher.de"),
            (
                "user@sub.domain.lomashwood.co.uk",
                "user@sub.domain.lomashwood.co.uk",
            ),
            ("123@example.com", "123@example.com"),
        ];
        for (input, expected) in cases {
            let email = Email::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(email.as_str(), expected, "{input:?}");
        }
    }

    #[test]
    fn invalid_addresses_are_rejected_with_a_reason() {
        let local64 = "a".repeat(64);
        let local65 = "a".repeat(65);
        let long_domain = format!("{}.com", ["abcdefghij"; 25].join("."));
        let ok_64 = format!("{local64}@example.com");
        assert!(Email::parse(&ok_64).is_ok());
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("jane", "missing @"),
            ("jane.example.com", "missing @"),
            ("@example.com", "nothing before the @"),
            ("jane@", "nothing after the @"),
            ("jane@@example.com", "more than one @"),
            ("jane@doe@example.com", "more than one @"),
            ("jane doe@example.com", "contains spaces"),
            ("jane@exa mple.com", "contains spaces"),
            ("jane@localhost", "domain has no dot"),
            ("jane@example.", "misplaced dot in the domain"),
            ("jane@.example.com", "misplaced dot in the domain"),
            ("jane@example..com", "misplaced dot in the domain"),
            (
                "jane@-example.com",
                "domain label starts or ends with a hyphen",
            ),
            (
                "jane@example-.com",
                "domain label starts or ends with a hyphen",
            ),
            (
                "jane@exam_ple.com",
                "domain contains a character we do not accept",
            ),
            (
                "jane@[127.0.0.1]",
                "domain contains a character we do not accept",
            ),
            ("jane@127.0.0.1", "domain has no valid top-level part"),
            ("jane@example.c", "domain has no valid top-level part"),
            (".jane@example.com", "misplaced dot before the @"),
            ("jane.@example.com", "misplaced dot before the @"),
            ("ja..ne@example.com", "misplaced dot before the @"),
            (
                "\"jane\"@example.com",
                "part before the @ contains a character we do not accept",
            ),
            (
                "jane<x>@example.com",
                "part before the @ contains a character we do not accept",
            ),
            (
                "a,b@example.com",
                "part before the @ contains a character we do not accept",
            ),
        ];
        for (input, reason) in cases {
            assert_eq!(
                Email::parse(input),
                Err(ValidationError::InvalidEmail { reason }),
                "{input:?}"
            );
        }
        assert_eq!(
            Email::parse(&format!("{local65}@example.com")),
            Err(ValidationError::InvalidEmail {
                reason: "part before the @ is longer than 64 characters"
            })
        );
        assert_eq!(
            Email::parse(&format!("jane@{long_domain}")),
            Err(ValidationError::InvalidEmail {
                reason: "longer than 254 characters"
            })
        );
        let long_label = format!("jane@{}.com", "a".repeat(64));
        assert_eq!(
            Email::parse(&long_label),
            Err(ValidationError::InvalidEmail {
                reason: "domain label longer than 63 characters"
            })
        );
    }

    #[test]
    fn parts_and_redaction() {
        let email = Email::parse("Jane.Doe@Example.com").expect("valid");
        assert_eq!(email.local_part(), "jane.doe");
        assert_eq!(email.domain(), "example.com");
        assert_eq!(email.redacted(), "j***@example.com");
        let short = Email::parse("j@example.com").expect("valid");
        assert_eq!(short.redacted(), "j***@example.com");
        let unicode = Email::parse("ørjan@example.no").expect("valid");
        assert_eq!(unicode.redacted(), "ø***@example.no");
    }

    #[test]
    fn same_address_in_any_case_is_equal() {
        let a = Email::parse("JANE@EXAMPLE.COM").expect("valid");
        let b = Email::parse("jane@example.com").expect("valid");
        assert_eq!(a, b);
    }

    #[test]
    fn serde_round_trips_and_rejects_bad_input() {
        let email: Email = serde_json::from_str("\"Jane@Example.com\"").expect("valid");
        assert_eq!(
            serde_json::to_string(&email).expect("ser"),
            "\"jane@example.com\""
        );
        let error = serde_json::from_str::<Email>("\"jane\"").expect_err("invalid");
        assert!(error.to_string().contains("missing @"), "{error}");
    }

    #[test]
    fn error_has_a_stable_code() {
        let error = Email::parse("nope").expect_err("invalid");
        assert_eq!(error.code(), "invalid_email");
        assert_eq!(error.message(), "is not a valid email address (missing @)");
        let v = validate_email("nope").expect_err("invalid");
        assert_eq!(v.code, "invalid_email");
    }
}
