//! Phone numbers in E.164 form.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// A phone number in compact E.164 form: `+`, then 8–15 digits, the first not zero
/// (`+447700900123`).
///
/// [`parse`](Self::parse) accepts international format only, tolerating the visual separators
/// people type (spaces, `-`, `.`, and a `(0)` trunk hint after the country code as in
/// `+44 (0)7700 900123`). [`parse_uk`](Self::parse_uk) additionally accepts UK national
/// numbers (`07700 900123`) and `0044…`, converting them to `+44…`. Either way the stored form
/// has no separators, ready for an SMS provider.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneE164(String);

/// Fewest digits after the `+`.
const MIN_DIGITS: usize = 8;
/// Most digits after the `+` (E.164's limit).
const MAX_DIGITS: usize = 15;

impl PhoneE164 {
    /// Parses an international number (`+447700900123`, `+44 7700 900123`).
    ///
    /// # Errors
    /// [`ValidationError::InvalidPhoneNumber`] when the input is not `+` followed by 8–15 digits
    /// (first digit non-zero), once separators are removed.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let compact = strip_separators(input)?;
        let digits = compact
            .strip_prefix('+')
            .ok_or(ValidationError::InvalidPhoneNumber)?;
        let well_formed = (MIN_DIGITS..=MAX_DIGITS).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if well_formed {
            Ok(Self(compact))
        } else {
            Err(ValidationError::InvalidPhoneNumber)
        }
    }

    /// Parses an international number or a UK national one, normalising the latter:
    /// `07700 900123` → `+447700900123`, `0044 20 7946 0958` → `+442079460958`.
    ///
    /// A national number is `0` followed by 9 or 10 digits.
    ///
    /// # Errors
    /// [`ValidationError::InvalidPhoneNumber`] when it is neither.
    pub fn parse_uk(input: &str) -> Result<Self, ValidationError> {
        let compact = strip_separators(input)?;
        if compact.starts_with('+') {
            return Self::parse(&compact);
        }
        if let Some(rest) = compact.strip_prefix("00") {
            return Self::parse(&format!("+{rest}"));
        }
        if let Some(national) = compact.strip_prefix('0') {
            let well_formed = (9..=10).contains(&national.len())
                && national.bytes().all(|b| b.is_ascii_digit())
                && !national.starts_with('0');
            if well_formed {
                return Ok(Self(format!("+44{national}")));
            }
        }
        Err(ValidationError::InvalidPhoneNumber)
    }

    /// The compact E.164 form, e.g. `+447700900123`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A form safe for logs: the country code area and the last two digits, e.g. `+44*******23`.
    #[must_use]
    pub fn redacted(&self) -> String {
        let digits = &self.0[1..];
        let keep_start = 2.min(digits.len());
        let keep_end = 2.min(digits.len() - keep_start);
        let hidden = digits.len() - keep_start - keep_end;
        format!(
            "+{}{}{}",
            &digits[..keep_start],
            "*".repeat(hidden),
            &digits[digits.len() - keep_end..]
        )
    }
}

/// Removes spaces, `-`, `.`, and a `(0)` directly after a `+NN` country code; rejects anything
/// else that is not a digit or a leading `+`.
fn strip_separators(input: &str) -> Result<String, ValidationError> {
    if input.len() > 64 {
        return Err(ValidationError::InvalidPhoneNumber);
    }
    let mut compact: String = input
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '-' | '.'))
        .collect();
    if let Some(position) = compact.find("(0)") {
        // Only as a trunk hint after the country code: "+44(0)7700…".
        if compact.starts_with('+') && (2..=4).contains(&position) {
            compact.replace_range(position..position + 3, "");
        } else {
            return Err(ValidationError::InvalidPhoneNumber);
        }
    }
    let body = compact.strip_prefix('+').unwrap_or(&compact);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValidationError::InvalidPhoneNumber);
    }
    Ok(compact)
}

/// Normalises a UK national or international number to E.164:
/// `normalise_uk_phone("07700 900123")` → `+447700900123`. See [`PhoneE164::parse_uk`].
///
/// # Errors
/// [`ValidationError::InvalidPhoneNumber`] when the input is neither form.
pub fn normalise_uk_phone(input: &str) -> Result<PhoneE164, ValidationError> {
    PhoneE164::parse_uk(input)
}

impl fmt::Display for PhoneE164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for PhoneE164 {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for PhoneE164 {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for PhoneE164 {
    type Error = ValidationError;

    /// Strict E.164 (what clients must send in JSON); use [`PhoneE164::parse_uk`] explicitly
    /// where a form accepts national numbers.
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PhoneE164> for String {
    fn from(value: PhoneE164) -> Self {
        value.0
    }
}

/// For `#[validate(custom(function = "validation::validate_phone_e164"))]`: strict E.164.
///
/// # Errors
/// `invalid_phone_number` when the value is not an E.164 number.
pub fn validate_phone_e164(value: &str) -> Result<(), validator::ValidationError> {
    PhoneE164::parse(value).map(drop).map_err(Into::into)
}

/// For `#[validate(custom(function = "validation::validate_uk_phone"))]`: E.164 or a UK national
/// number (normalise it with [`normalise_uk_phone`] before storing).
///
/// # Errors
/// `invalid_phone_number` when the value is neither form.
pub fn validate_uk_phone(value: &str) -> Result<(), validator::ValidationError> {
    PhoneE164::parse_uk(value).map(drop).map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_international_numbers_are_compacted() {
        let cases = [
            ("+447700900123", "+447700900123"),
            ("+44 7700 900123", "+447700900123"),
            ("+44 (0)7700 900123", "+447700900123"),
            ("+44(0)20 7946 0958", "+442079460958"),
            ("+44-20-7946-0958", "+442079460958"),
            ("+1 202.555.0143", "+12025550143"),
            ("+33612345678", "+33612345678"),
            ("+12345678", "+12345678"), // 8 digits, the minimum
            ("+123456789012345", "+123456789012345"), // 15 digits, the maximum
            ("+353 1 234 5678", "+35312345678"),
        ];
        for (input, expected) in cases {
            let phone = PhoneE164::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(phone.as_str(), expected, "{input:?}");
        }
    }

    #[test]
    fn invalid_international_numbers_are_rejected() {
        let cases = [
            "",
            "+",
            "447700900123",      // no plus
            "07700900123",       // national, strict parse
            "+1234567",          // 7 digits
            "+1234567890123456", // 16 digits
            "+047700900123",     // leading zero
            "+44 7700 9001a3",
            "+44 7700 900123 ext 4",
            "++447700900123",
            "+44+7700900123",
            "+4477(0)00900123", // (0) not after the country code
            "(0)7700900123",
            "+44 7700 900123\n",
            "+٤٤٧٧٠٠٩٠٠١٢٣", // non-ASCII digits
        ];
        for input in cases {
            assert_eq!(
                PhoneE164::parse(input),
                Err(ValidationError::InvalidPhoneNumber),
                "{input:?} was accepted"
            );
        }
    }

    #[test]
    fn uk_national_numbers_are_normalised() {
        let cases = [
            ("07700 900123", "+447700900123"),
            ("07700900123", "+447700900123"),
            ("020 7946 0958", "+442079460958"),
            ("0161 496 0000", "+441614960000"),
            ("016977 3456", "+44169773456"), // 10-digit national number
            ("0044 7700 900123", "+447700900123"),
            ("+44 7700 900123", "+447700900123"),
            ("+33 6 12 34 56 78", "+33612345678"),
        ];
        for (input, expected) in cases {
            let phone = normalise_uk_phone(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(phone.as_str(), expected, "{input:?}");
        }
    }

    #[test]
    fn bad_uk_national_numbers_are_rejected() {
        let cases = [
            "7700 900123",      // no trunk 0
            "00070090012",      // "00" then a zero: not a country code
            "0 7700 9001234 5", // 11 digits after the 0
            "077009001234",     // 11 digits after the 0
            "07700 9001",       // 8 digits after the 0
            "0700",
            "00",
            "abc",
            "0207946095x",
        ];
        for input in cases {
            assert_eq!(
                normalise_uk_phone(input),
                Err(ValidationError::InvalidPhoneNumber),
                "{input:?} was accepted"
            );
        }
    }

    #[test]
    fn redaction_keeps_only_the_edges() {
        let phone = PhoneE164::parse("+447700900123").expect("valid");
        assert_eq!(phone.redacted(), "+44********23");
        assert!(!phone.redacted().contains("900"));
    }

    #[test]
    fn serde_is_strict_e164() {
        let phone: PhoneE164 = serde_json::from_str("\"+447700900123\"").expect("valid");
        assert_eq!(
            serde_json::to_string(&phone).expect("ser"),
            "\"+447700900123\""
        );
        assert!(serde_json::from_str::<PhoneE164>("\"07700900123\"").is_err());
    }

    #[test]
    fn validator_functions_report_the_code() {
        assert!(validate_phone_e164("+447700900123").is_ok());
        assert!(validate_uk_phone("07700 900123").is_ok());
        let error = validate_phone_e164("07700 900123").expect_err("not E.164");
        assert_eq!(error.code, "invalid_phone_number");
    }
}
