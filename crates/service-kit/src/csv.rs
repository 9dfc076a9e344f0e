//! CSV for admin exports: one quoting rule for every service, so a file opened from any of them
//! behaves the same in a spreadsheet.
//!
//! # The rule
//! * **RFC 4180.** A cell containing `,`, `"`, CR or LF is wrapped in double quotes and its
//!   quotes are doubled; rows end with CRLF ([`ROW_END`]). Everything else is written as is.
//! * **Formula injection (CWE-1236).** Exports carry text that customers typed (names, messages,
//!   addresses). Excel, LibreOffice and Google Sheets run a cell starting with `=`, `+`, `-`, `@`,
//!   tab or CR as a formula, so a "name" of `=HYPERLINK("http://evil","click")` would run on the
//!   admin's machine. Such a cell gets a leading `'` (the spreadsheet convention for "this is
//!   text") **and is always quoted**, as OWASP recommends: the quotes keep the `'` and the value
//!   one text cell whatever follows, and make the defusing visible to anyone reading the raw file.
//!
//! The rule is for text. A number the export computed itself (a count, an amount in minor units)
//! is written with `write!` and never passes through [`write_cell`], so a negative amount stays a
//! number instead of becoming the text `'-5`.
//!
//! ```
//! let mut out = String::new();
//! service_kit::csv::write_row(&mut out, ["id", "name"]);
//! service_kit::csv::write_row(&mut out, ["7", "=1+1"]);
//! assert_eq!(out, "id,name\r\n7,\"'=1+1\"\r\n");
//! ```

use std::borrow::Cow;

/// What ends every row (RFC 4180).
pub const ROW_END: &str = "\r\n";

/// Leading characters that make a spreadsheet read a cell as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Characters that force RFC 4180 quoting.
const NEEDS_QUOTES: [char; 4] = [',', '"', '\n', '\r'];

/// One text cell, quoted and defused by the rule of this module (borrowed when unchanged).
pub fn cell(value: &str) -> Cow<'_, str> {
    let formula = value.starts_with(FORMULA_STARTS);
    if !formula && !value.contains(NEEDS_QUOTES) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 4);
    write_quoted(&mut out, value, formula);
    Cow::Owned(out)
}

/// Appends one text cell to `out`, quoted and defused by the rule of this module.
pub fn write_cell(out: &mut String, value: &str) {
    let formula = value.starts_with(FORMULA_STARTS);
    if formula || value.contains(NEEDS_QUOTES) {
        write_quoted(out, value, formula);
    } else {
        out.push_str(value);
    }
}

fn write_quoted(out: &mut String, value: &str, formula: bool) {
    out.push('"');
    if formula {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

/// Appends one row of text cells, separated by commas and ended with [`ROW_END`].
pub fn write_row<I>(out: &mut String, cells: I)
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    for (i, value) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_cell(out, value.as_ref());
    }
    out.push_str(ROW_END);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_cells_are_left_alone() {
        assert_eq!(cell("plain"), "plain");
        assert!(matches!(cell("plain"), Cow::Borrowed(_)));
        assert_eq!(cell(""), "");
        assert_eq!(
            cell("2026-12-05T10:00:00+00:00"),
            "2026-12-05T10:00:00+00:00"
        );
        assert_eq!(cell("a-b=c"), "a-b=c", "only a leading sign is a formula");
    }

    #[test]
    fn separators_quotes_and_line_breaks_are_quoted() {
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(cell("carriage\rreturn"), "\"carriage\rreturn\"");
        assert_eq!(cell("Flat 2, 3 Acre Lane"), "\"Flat 2, 3 Acre Lane\"");
    }

    #[test]
    fn formulas_are_defused_and_always_quoted() {
        assert_eq!(cell("=SUM(A1)"), "\"'=SUM(A1)\"");
        assert_eq!(cell("+447700900123"), "\"'+447700900123\"");
        assert_eq!(cell("-1"), "\"'-1\"");
        assert_eq!(cell("@cmd"), "\"'@cmd\"");
        assert_eq!(cell("\tx"), "\"'\tx\"");
        assert_eq!(cell("\rx"), "\"'\rx\"");
        assert_eq!(cell("-1+1,2"), "\"'-1+1,2\"");
        assert_eq!(
            cell("=HYPERLINK(\"x\")"),
            "\"'=HYPERLINK(\"\"x\"\")\"",
            "quotes inside a defused formula are doubled too"
        );
    }

    #[test]
    fn write_cell_appends_what_cell_returns() {
        let mut buf = String::new();
        write_cell(&mut buf, "plain");
        buf.push('|');
        write_cell(&mut buf, "a,\"b\"");
        buf.push('|');
        write_cell(&mut buf, "=HYPERLINK(1)");
        assert_eq!(buf, "plain|\"a,\"\"b\"\"\"|\"'=HYPERLINK(1)\"");
        for value in ["", "x", "a,b", "-3", "é\"ü", "@\n"] {
            let mut one = String::new();
            write_cell(&mut one, value);
            assert_eq!(one, cell(value), "{value:?}");
        }
    }

    #[test]
    fn rows_are_comma_separated_and_end_with_crlf() {
        let mut out = String::new();
        write_row(&mut out, ["id", "name", "note"]);
        write_row(
            &mut out,
            vec![String::from("1"), "Ann, Bo".into(), "=2".into()],
        );
        write_row(&mut out, [""; 0]);
        assert_eq!(out, "id,name,note\r\n1,\"Ann, Bo\",\"'=2\"\r\n\r\n");
    }
}
