//! URL slugs.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// A URL slug: 1–[`MAX_SLUG_LEN`] characters of lower-case ASCII letters, digits and single
/// hyphens, not starting or ending with a hyphen (`creme-brulee-kitchens`).
///
/// [`Slug::parse`] accepts only slugs already in that form (an admin typing a slug gets told
/// what is wrong rather than silently changed); [`slugify`] makes one from a title.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

/// Longest slug accepted.
pub const MAX_SLUG_LEN: usize = 120;

impl Slug {
    /// Accepts a string that already is a slug.
    ///
    /// # Errors
    /// [`ValidationError::InvalidSlug`] naming the rule that failed.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let invalid = |reason| ValidationError::InvalidSlug { reason };
        if input.is_empty() {
            return Err(invalid("empty"));
        }
        if input.len() > MAX_SLUG_LEN {
            return Err(invalid("longer than 120 characters"));
        }
        if !input
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                "only lower-case letters, digits and hyphens are allowed",
            ));
        }
        if input.starts_with('-') || input.ends_with('-') {
            return Err(invalid("must not start or end with a hyphen"));
        }
        if input.contains("--") {
            return Err(invalid("must not contain consecutive hyphens"));
        }
        Ok(Self(input.to_owned()))
    }

    /// The slug.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `text` has an ASCII letter or digit: what a text a slug is made from must have, so
/// that the slug never rests on transliteration alone (`"日本"`, `"×ø"` are refused; `"Crème"`
/// has `Cr`). The OpenAPI documents state it as the unanchored pattern [`SLUG_SOURCE_PATTERN`].
pub fn has_ascii_alphanumeric(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_alphanumeric())
}

/// [`has_ascii_alphanumeric`] as a JSON Schema pattern (unanchored: "contains").
pub const SLUG_SOURCE_PATTERN: &str = "[A-Za-z0-9]";

/// Makes a slug from a title: transliterates to ASCII (`Crème Brûlée` → `Creme Brulee`),
/// lower-cases, writes `&` as `and`, drops apostrophes, turns every other run of
/// non-alphanumerics into one hyphen, and trims hyphens from both ends. A result longer than
/// [`MAX_SLUG_LEN`] is cut at the last hyphen that fits (or hard at the limit).
///
/// `slugify("Crème Brûlée Kitchens")` → `creme-brulee-kitchens`.
///
/// # Errors
/// [`ValidationError::InvalidSlug`] (`"empty"`) when nothing alphanumeric is left.
pub fn slugify(title: &str) -> Result<Slug, ValidationError> {
    let ascii = deunicode::deunicode(title);
    let mut slug = String::with_capacity(ascii.len());
    let mut pending_hyphen = false;
    for c in ascii.chars() {
        match c {
            'a'..='z' | '0'..='9' | 'A'..='Z' => {
                if pending_hyphen && !slug.is_empty() {
                    slug.push('-');
                }
                pending_hyphen = false;
                slug.push(c.to_ascii_lowercase());
            }
            '\'' | '`' => {}
            '&' => {
                if !slug.is_empty() {
                    slug.push('-');
                }
                slug.push_str("and");
                pending_hyphen = true;
            }
            _ => pending_hyphen = true,
        }
    }
    if slug.len() > MAX_SLUG_LEN {
        let cut = slug[..=MAX_SLUG_LEN]
            .rfind('-')
            .filter(|&i| i > 0)
            .unwrap_or(MAX_SLUG_LEN);
        slug.truncate(cut);
    }
    let trimmed = slug.trim_matches('-');
    Slug::parse(trimmed)
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Slug {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Slug {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Slug {
    type Error = ValidationError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Slug> for String {
    fn from(value: Slug) -> Self {
        value.0
    }
}

/// For `#[validate(custom(function = "validation::validate_slug"))]` on a `String` field.
///
/// # Errors
/// `invalid_slug` when the value is not a slug.
pub fn validate_slug(value: &str) -> Result<(), validator::ValidationError> {
    Slug::parse(value).map(drop).map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_slugs_are_accepted_unchanged() {
        let long = "a".repeat(MAX_SLUG_LEN);
        let cases = [
            "a",
            "7",
            "kitchens",
            "shaker-kitchen",
            "creme-brulee-kitchens",
            "2026-spring-sale",
            "a-b-c-d",
            "x1-y2",
            long.as_str(),
        ];
        for input in cases {
            let slug = Slug::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(slug.as_str(), input);
        }
    }

    #[test]
    fn invalid_slugs_are_rejected_with_a_reason() {
        let too_long = "a".repeat(MAX_SLUG_LEN + 1);
        let charset = "only lower-case letters, digits and hyphens are allowed";
        let cases = [
            ("", "empty"),
            (too_long.as_str(), "longer than 120 characters"),
            ("Kitchens", charset),
            ("shaker kitchen", charset),
            ("shaker_kitchen", charset),
            ("crème", charset),
            ("a/b", charset),
            ("-kitchens", "must not start or end with a hyphen"),
            ("kitchens-", "must not start or end with a hyphen"),
            ("-", "must not start or end with a hyphen"),
            ("shaker--kitchen", "must not contain consecutive hyphens"),
        ];
        for (input, reason) in cases {
            assert_eq!(
                Slug::parse(input),
                Err(ValidationError::InvalidSlug { reason }),
                "{input:?}"
            );
        }
    }

    #[test]
    fn slugify_makes_readable_ascii_slugs() {
        let cases = [
            ("Crème Brûlée Kitchens", "creme-brulee-kitchens"),
            ("Shaker Kitchen", "shaker-kitchen"),
            ("  Shaker   Kitchen  ", "shaker-kitchen"),
            ("Kitchens & Bedrooms", "kitchens-and-bedrooms"),
            ("Kitchens&Bedrooms", "kitchens-and-bedrooms"),
            ("Lomash's Guide to Oak", "lomashs-guide-to-oak"),
            ("Lomash’s Guide", "lomashs-guide"),
            ("10 Ideas for 2026!", "10-ideas-for-2026"),
            (
                "Über-modern (handleless) kitchens",
                "uber-modern-handleless-kitchens",
            ),
            ("--already-a-slug--", "already-a-slug"),
            (
                "Smörgåsbord Façade Æsthetics",
                "smorgasbord-facade-aesthetics",
            ),
            ("Ça va? Très bien.", "ca-va-tres-bien"),
            ("Łódź kitchens", "lodz-kitchens"),
            ("a_b.c/d", "a-b-c-d"),
        ];
        for (title, expected) in cases {
            let slug = slugify(title).unwrap_or_else(|e| panic!("{title:?}: {e}"));
            assert_eq!(slug.as_str(), expected, "{title:?}");
        }
    }

    #[test]
    fn slugify_rejects_titles_with_nothing_to_keep() {
        for title in ["", "   ", "!!!", "---", "''"] {
            assert_eq!(
                slugify(title),
                Err(ValidationError::InvalidSlug { reason: "empty" }),
                "{title:?}"
            );
        }
    }

    #[test]
    fn slugify_cuts_long_titles_at_a_word_boundary() {
        let title = "handmade oak kitchen ".repeat(10);
        let slug = slugify(&title).expect("valid");
        assert!(
            slug.as_str().len() <= MAX_SLUG_LEN,
            "{}",
            slug.as_str().len()
        );
        assert!(slug.as_str().ends_with("kitchen") || slug.as_str().ends_with("oak"));
        assert!(!slug.as_str().ends_with('-'));

        let unbroken = "a".repeat(300);
        let slug = slugify(&unbroken).expect("valid");
        assert_eq!(slug.as_str().len(), MAX_SLUG_LEN);
    }

    #[test]
    fn serde_and_validator_agree_with_parse() {
        let slug: Slug = serde_json::from_str("\"shaker-kitchen\"").expect("valid");
        assert_eq!(
            serde_json::to_string(&slug).expect("ser"),
            "\"shaker-kitchen\""
        );
        assert!(serde_json::from_str::<Slug>("\"Shaker Kitchen\"").is_err());
        assert!(validate_slug("shaker-kitchen").is_ok());
        assert_eq!(
            validate_slug("Shaker").expect_err("invalid").code,
            "invalid_slug"
        );
    }
}
