//! Quoting: bracket identifiers, `N'…'` literals and `0x…` binary literals.
//!
//! These three functions are the only way user data enters T-SQL text in milink.

use std::fmt::Write as _;

/// A value that is a SQL identifier and can be bracket-quoted.
///
/// Implemented by the validated names in [`crate::names`]; builders accept only these.
pub trait SqlIdentifier {
    /// The identifier, unquoted.
    fn ident(&self) -> &str;

    /// The identifier bracket-quoted: `[name]` with every `]` doubled.
    fn quoted(&self) -> String {
        quote_ident(self.ident())
    }

    /// The identifier as a Unicode string literal: `N'name'` with every `'` doubled.
    fn literal(&self) -> String {
        quote_nstring(self.ident())
    }
}

/// Bracket-quotes an identifier: `[` + value with `]` doubled + `]`.
pub fn quote_ident(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('[');
    for c in value.chars() {
        if c == ']' {
            out.push_str("]]");
        } else {
            out.push(c);
        }
    }
    out.push(']');
    out
}

/// A Unicode string literal: `N'` + value with `'` doubled + `'`.
pub fn quote_nstring(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 3);
    out.push_str("N'");
    for c in value.chars() {
        if c == '\'' {
            out.push_str("''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// A binary literal: `0x` followed by two upper-case hex digits per byte.
pub fn binary_literal(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("0x");
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02X}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_the_closing_character() {
        assert_eq!(quote_ident("ToyStore"), "[ToyStore]");
        assert_eq!(quote_ident("a]b"), "[a]]b]");
        assert_eq!(quote_ident("[x]"), "[[x]]]");
        assert_eq!(quote_nstring("O'Brien"), "N'O''Brien'");
        assert_eq!(quote_nstring(""), "N''");
        assert_eq!(binary_literal(&[0x30, 0x82, 0x0a]), "0x30820A");
        assert_eq!(binary_literal(&[]), "0x");
    }
}
