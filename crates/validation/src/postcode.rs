//! UK postcodes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// A UK postcode in its canonical form: upper case, one space before the inward code
/// (`SW4 0AB`, `EC1A 1BB`, `M1 1AE`).
///
/// Parsing ignores case and all whitespace (`sw40ab`, ` ec1a  1bb `), then checks the format
/// published in the UK government data standard: an outward code in one of the shapes `A9`,
/// `A99`, `AA9`, `AA99`, `A9A`, `AA9A` and an inward code `9AA`, with the letters each position
/// may hold (no Q/V/X first; no I/J/Z second; a restricted set as the trailing district letter;
/// no C/I/K/M/O/V in the inward code). Also accepted: the special `GIR 0AA` and British Forces
/// addresses written `BFPO 123` (1–4 digits).
///
/// This is a format check: whether a postcode is actually allocated needs an address lookup
/// (PAF/ONS data), which no service does at this layer. Overseas-territory codes that break the
/// UK shapes (`ASCN 1ZZ`, `STHL 1ZZ`) are rejected; Gibraltar's `GX11 1AA` fits them and passes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UkPostcode(String);

/// Letters allowed in the first position.
const FIRST: &str = "ABCDEFGHIJKLMNOPRSTUWYZ";
/// Letters allowed in the second position (when it is a letter).
const SECOND: &str = "ABCDEFGHKLMNOPQRSTUVWXY";
/// Letters allowed as the trailing letter of an `A9A` outward code.
const THIRD_A9A: &str = "ABCDEFGHJKPSTUW";
/// Letters allowed as the trailing letter of an `AA9A` outward code.
const FOURTH_AA9A: &str = "ABEHMNPRVWXY";
/// Letters allowed in the inward code.
const INWARD: &str = "ABDEFGHJLNPQRSTUWXYZ";

impl UkPostcode {
    /// Parses and normalises a postcode.
    ///
    /// # Errors
    /// [`ValidationError::InvalidPostcode`] when the input is not a UK postcode.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        // Anything longer than this cannot be a postcode, however much whitespace it holds.
        if input.len() > 32 {
            return Err(ValidationError::InvalidPostcode);
        }
        let compact: String = input
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if !compact.is_ascii() {
            return Err(ValidationError::InvalidPostcode);
        }
        if compact == "GIR0AA" {
            return Ok(Self("GIR 0AA".to_owned()));
        }
        if let Some(number) = compact.strip_prefix("BFPO") {
            let digits_ok = (1..=4).contains(&number.len())
                && number.bytes().all(|b| b.is_ascii_digit())
                && !number.starts_with('0');
            return if digits_ok {
                Ok(Self(format!("BFPO {number}")))
            } else {
                Err(ValidationError::InvalidPostcode)
            };
        }
        if !(5..=7).contains(&compact.len()) {
            return Err(ValidationError::InvalidPostcode);
        }
        let (outward, inward) = compact.split_at(compact.len() - 3);
        if valid_outward(outward) && valid_inward(inward) {
            Ok(Self(format!("{outward} {inward}")))
        } else {
            Err(ValidationError::InvalidPostcode)
        }
    }

    /// The canonical form, e.g. `SW4 0AB`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The outward code (area and district), e.g. `SW4` for `SW4 0AB`, `EC1A` for `EC1A 1BB`,
    /// `BFPO` for a BFPO number. Consultant coverage is configured by outward code.
    #[must_use]
    pub fn outward(&self) -> &str {
        self.0.split(' ').next().unwrap_or(&self.0)
    }

    /// The inward code, e.g. `0AB` for `SW4 0AB` (the number for `BFPO 123`).
    #[must_use]
    pub fn inward(&self) -> &str {
        self.0.rsplit(' ').next().unwrap_or(&self.0)
    }

    /// The postcode area: the leading letters of the outward code, e.g. `SW` for `SW4 0AB`,
    /// `M` for `M1 1AE` (`GIR` and `BFPO` for those special forms).
    #[must_use]
    pub fn area(&self) -> &str {
        let outward = self.outward();
        let letters = outward
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(outward.len());
        &outward[..letters]
    }
}

fn is_in(set: &str, byte: u8) -> bool {
    set.as_bytes().contains(&byte)
}

fn valid_outward(outward: &str) -> bool {
    let b = outward.as_bytes();
    let letter = |i: usize, set: &str| b.get(i).is_some_and(|&c| is_in(set, c));
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    match b.len() {
        // A9
        2 => letter(0, FIRST) && digit(1),
        // A99, AA9, A9A
        3 => {
            letter(0, FIRST)
                && ((digit(1) && digit(2))
                    || (letter(1, SECOND) && digit(2))
                    || (digit(1) && letter(2, THIRD_A9A)))
        }
        // AA99, AA9A
        4 => {
            letter(0, FIRST)
                && letter(1, SECOND)
                && digit(2)
                && (digit(3) || letter(3, FOURTH_AA9A))
        }
        _ => false,
    }
}

fn valid_inward(inward: &str) -> bool {
    let b = inward.as_bytes();
    b.len() == 3 && b[0].is_ascii_digit() && is_in(INWARD, b[1]) && is_in(INWARD, b[2])
}

impl fmt::Display for UkPostcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for UkPostcode {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for UkPostcode {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for UkPostcode {
    type Error = ValidationError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<UkPostcode> for String {
    fn from(value: UkPostcode) -> Self {
        value.0
    }
}

/// For `#[validate(custom(function = "validation::validate_uk_postcode"))]` on a `String` field.
///
/// # Errors
/// `invalid_postcode` when the value is not a UK postcode.
pub fn validate_uk_postcode(value: &str) -> Result<(), validator::ValidationError> {
    UkPostcode::parse(value).map(drop).map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_postcodes_are_normalised() {
        let cases = [
            // (input, canonical, outward, area)
            ("sw40ab", "SW4 0AB", "SW4", "SW"),
            ("SW4 0AB", "SW4 0AB", "SW4", "SW"),
            ("ec1a1bb", "EC1A 1BB", "EC1A", "EC"),
            (" ec1a  1bb ", "EC1A 1BB", "EC1A", "EC"),
            ("M1 1AE", "M1 1AE", "M1", "M"),
            ("m11ae", "M1 1AE", "M1", "M"),
            ("B33 8TH", "B33 8TH", "B33", "B"),
            ("CR2 6XH", "CR2 6XH", "CR2", "CR"),
            ("DN55 1PT", "DN55 1PT", "DN55", "DN"),
            ("W1A 0AX", "W1A 0AX", "W1A", "W"),
            ("w1a0ax", "W1A 0AX", "W1A", "W"),
            ("SW1A 2AA", "SW1A 2AA", "SW1A", "SW"),
            ("N1C 4AG", "N1C 4AG", "N1C", "N"),
            ("E1W 1AA", "E1W 1AA", "E1W", "E"),
            ("NW1W 8JN", "NW1W 8JN", "NW1W", "NW"),
            ("SE1P 5LX", "SE1P 5LX", "SE1P", "SE"),
            ("BT1 5GS", "BT1 5GS", "BT1", "BT"),
            ("ZE1 0AA", "ZE1 0AA", "ZE1", "ZE"),
            ("LS1 4AP", "LS1 4AP", "LS1", "LS"),
            ("BS0 1AA", "BS0 1AA", "BS0", "BS"),
            ("GY1 1AA", "GY1 1AA", "GY1", "GY"),
            ("JE2 3QA", "JE2 3QA", "JE2", "JE"),
            ("IM1 1AA", "IM1 1AA", "IM1", "IM"),
            ("BF1 2AA", "BF1 2AA", "BF1", "BF"),
            ("gir0aa", "GIR 0AA", "GIR", "GIR"),
            ("GIR 0AA", "GIR 0AA", "GIR", "GIR"),
            ("bfpo 123", "BFPO 123", "BFPO", "BFPO"),
            ("BFPO1", "BFPO 1", "BFPO", "BFPO"),
            ("BFPO 2001", "BFPO 2001", "BFPO", "BFPO"),
            ("sw4\t0ab", "SW4 0AB", "SW4", "SW"),
        ];
        for (input, canonical, outward, area) in cases {
            let postcode =
                UkPostcode::parse(input).unwrap_or_else(|e| panic!("{input:?} rejected: {e}"));
            assert_eq!(postcode.as_str(), canonical, "{input:?}");
            assert_eq!(postcode.to_string(), canonical, "{input:?}");
            assert_eq!(postcode.outward(), outward, "{input:?}");
            assert_eq!(postcode.area(), area, "{input:?}");
        }
    }

    #[test]
    fn inward_code_is_the_last_three_characters() {
        let postcode = UkPostcode::parse("ec1a1bb").expect("valid");
        assert_eq!(postcode.inward(), "1BB");
    }

    #[test]
    fn invalid_postcodes_are_rejected() {
        let cases = [
            "",
            "   ",
            "SW4",
            "0AB",
            "SW40A",
            "SW4 0A",
            "SW4 0ABC",
            "SW44 0ABC",
            "ABCD 1AA",
            "SW123 0AB",
            "1W4 0AB",
            "Q1 1AA",   // Q never first
            "V1 1AA",   // V never first
            "X1 1AA",   // X never first
            "AI1 1AA",  // I never second
            "AJ1 1AA",  // J never second
            "AZ1 1AA",  // Z never second
            "W1I 0AX",  // I not a district suffix
            "W1L 0AX",  // L not an A9A suffix
            "EC1C 1BB", // C not an AA9A suffix
            "SW4 0CB",  // C not in the inward code
            "SW4 0AI",
            "SW4 0AK",
            "SW4 0MO",
            "SW4 0VA",
            "SW4 AAB", // inward must start with a digit
            "SW-4 0AB",
            "SW4-0AB",
            "SW4 0AB!",
            "SW4 ÖAB",
            "GIR 0AB",
            "BFPO",
            "BFPO 12345",
            "BFPO 0",
            "BFPO 12A",
            "ASCN 1ZZ",
            "SW4 0AB SW4 0AB",
            "S W 4 0 A B 0 A B 0 A B 0 A B 0 A B 0 A B",
        ];
        for input in cases {
            assert_eq!(
                UkPostcode::parse(input),
                Err(ValidationError::InvalidPostcode),
                "{input:?} was accepted"
            );
        }
    }

    #[test]
    fn serde_round_trips_and_rejects_bad_input() {
        let postcode: UkPostcode = serde_json::from_str("\"sw40ab\"").expect("valid");
        assert_eq!(
            serde_json::to_string(&postcode).expect("ser"),
            "\"SW4 0AB\""
        );
        let error = serde_json::from_str::<UkPostcode>("\"not a postcode\"")
            .expect_err("invalid postcode deserialised");
        assert!(error.to_string().contains("UK postcode"), "{error}");
    }

    #[test]
    fn validator_function_reports_code_and_message() {
        assert!(validate_uk_postcode("SW4 0AB").is_ok());
        let error = validate_uk_postcode("nope").expect_err("invalid");
        assert_eq!(error.code, "invalid_postcode");
        assert_eq!(error.message.as_deref(), Some("is not a valid UK postcode"));
    }
}
