//! Reading a provider's JSON without a heap.
//!
//! Bodies are parsed with `serde-json-core`, borrowing every string from the input (or, for
//! WeChat Pay's encrypted resources, from the caller's decryption buffer). Two of its rules
//! shape the mappers:
//!
//! - **Unknown fields are skipped**, at any depth, so a provider adding fields breaks
//!   nothing; a field sent twice is an error (which of the two was meant is ambiguous).
//! - **Strings are borrowed as sent, escapes included**: `"a\u0062"` arrives as the six
//!   bytes `a\u0062`, not `ab`. So the fields a mapper compares (merchant ids, the order id)
//!   are compared after decoding the escapes ([`same`]), and the fields it turns into ids or
//!   codes (an event id, a refund id, a status, a currency) must be sent unescaped ([`plain`]);
//!   a provider never escapes those (they are ASCII letters, digits, `_`, `-`), and a value
//!   that is escaped is a [`MapError::BadField`] rather than a silently different id.

use core::fmt;

use serde::Deserialize;
use serde_json_core::str::{EscapedStr, EscapedStringFragment};

use super::MapError;
use crate::money::Currency;

/// A body (or a decrypted resource) that is not the JSON its message kind has: not JSON at
/// all, trailing bytes after the object, a field of the wrong type (a string where a number
/// belongs), a field sent twice, a number out of range. Nothing was mapped; the host answers
/// with an error status and alerts (a genuine provider does not send it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct JsonError {
    /// Which part failed: `"body"`, `"resource"` (WeChat Pay's decrypted resource) or
    /// `"answer"`.
    pub part: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {} is not the JSON expected", self.part)
    }
}

impl core::error::Error for JsonError {}

/// Parses the whole of `bytes` (whitespace around the value allowed, nothing else).
pub(crate) fn parse<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    part: &'static str,
) -> Result<T, JsonError> {
    serde_json_core::from_slice(bytes)
        .map(|(value, _)| value)
        .map_err(|_| JsonError { part })
}

/// The text of a field the mapper uses as an id, a code or a status: present, non-empty and
/// free of JSON escapes.
pub(crate) fn plain<'a>(
    value: Option<EscapedStr<'a>>,
    field: &'static str,
) -> Result<&'a str, MapError> {
    let text = value.ok_or(MapError::MissingField(field))?.0;
    if text.is_empty() {
        return Err(MapError::MissingField(field));
    }
    if text.contains('\\') {
        return Err(MapError::BadField(field));
    }
    Ok(text)
}

/// Whether the JSON string `value` (escapes as sent) decodes to exactly `expected`.
pub(crate) fn same(value: EscapedStr<'_>, expected: &str) -> bool {
    let mut rest = expected;
    for fragment in value.fragments() {
        let next = match fragment {
            Ok(EscapedStringFragment::NotEscaped(text)) => rest.strip_prefix(text),
            Ok(EscapedStringFragment::Escaped(c)) => rest.strip_prefix(c),
            Err(_) => None,
        };
        match next {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// Checks that the field `value` is present and decodes to `expected`, else `mismatch`.
#[cfg_attr(not(feature = "wechatpay"), allow(dead_code))]
pub(crate) fn expect(
    value: Option<EscapedStr<'_>>,
    field: &'static str,
    expected: &str,
    mismatch: MapError,
) -> Result<(), MapError> {
    match value {
        None => Err(MapError::MissingField(field)),
        Some(v) if v.0.is_empty() => Err(MapError::MissingField(field)),
        Some(v) if same(v, expected) => Ok(()),
        Some(_) => Err(mismatch),
    }
}

/// A currency code in either case (`"CNY"`, Stripe's `"usd"`). Anything that is not an ISO
/// 4217 code — a wrong length, a non-letter, a code not in the table — is
/// [`MapError::UnknownCurrency`], never a mismatch.
pub(crate) fn currency(code: &str) -> Result<Currency, MapError> {
    let bytes = code.as_bytes();
    let mut upper = [0u8; 3];
    if bytes.len() != upper.len() || !bytes.iter().all(u8::is_ascii_alphabetic) {
        return Err(MapError::UnknownCurrency);
    }
    for (u, b) in upper.iter_mut().zip(bytes) {
        *u = b.to_ascii_uppercase();
    }
    let upper = core::str::from_utf8(&upper).map_err(|_| MapError::UnknownCurrency)?;
    Currency::from_code(upper).map_err(|_| MapError::UnknownCurrency)
}

/// Checks a message's currency against the payment's: unknown first, then a mismatch.
pub(crate) fn expect_currency(
    value: Option<EscapedStr<'_>>,
    field: &'static str,
    expected: Currency,
) -> Result<Currency, MapError> {
    // Present but empty or escaped is a code that is not ISO 4217's: unknown, not missing.
    let code = value.ok_or(MapError::MissingField(field))?.0;
    let got = currency(code)?;
    if got != expected {
        return Err(MapError::CurrencyMismatch { expected, got });
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_strings_compare_decoded() {
        assert!(same(EscapedStr("a\\u0062c"), "abc"));
        assert!(same(EscapedStr("a\\/b"), "a/b"));
        assert!(same(EscapedStr("plain"), "plain"));
        assert!(!same(EscapedStr("a\\u0062"), "a\\u0062"));
        assert!(!same(EscapedStr("abc"), "ab"));
        assert!(!same(EscapedStr("ab"), "abc"));
        assert!(!same(EscapedStr("a\\x"), "a\\x"));
    }

    #[test]
    fn currencies_in_either_case_and_unknown_codes() {
        assert_eq!(currency("usd"), Ok(Currency::USD));
        assert_eq!(currency("CNY"), Ok(Currency::CNY));
        assert_eq!(currency("Jpy"), Ok(Currency::JPY));
        for bad in ["", "us", "usdc", "xyz", "u$d", "ü"] {
            assert_eq!(currency(bad), Err(MapError::UnknownCurrency), "{bad}");
        }
    }
}
