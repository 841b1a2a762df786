//! The content Alipay signs: `key=value` pairs of the decoded form, sorted, joined with `&`.
//!
//! Keys are sorted bytewise, pairs with a blank value ([`is_blank`]: empty or only whitespace,
//! as Alipay's SDKs judge it) are dropped, `sign` is dropped, and
//! `sign_type` is dropped under [`SignRule::V1`] or kept under [`SignRule::V2`]. Which rule
//! applies is the host's configuration **per endpoint** — never read from the message:
//!
//! | rule | used by | `sign_type` |
//! |---|---|---|
//! | `V1` | trade notifications (`notify_type=trade_status_sync`, the `notify_url` of a payment) | dropped |
//! | `V2` | gateway notifications (`alipay.open.servicemarket.order.notify` and other "消息" pushed to the application gateway), and every request the merchant signs | kept |
//!
//! The content is never built as a string unless the host asks: [`SignedContent::digest`]
//! streams the pieces into SHA-256, [`SignedContent::pieces`] hands them to any sink, and
//! [`SignedContent`] implements `Display` for logs and the verification tool.

use core::fmt;

use sha2::{Digest, Sha256};

use super::form::{Field, Form};

/// Which fields besides `sign` are left out of the signed content. Chosen by the host per
/// endpoint (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SignRule {
    /// Drop `sign` and `sign_type`: asynchronous trade notifications (Alipay's `rsaCheckV1`).
    V1,
    /// Drop only `sign`: gateway notifications and signed requests (Alipay's `rsaCheckV2`).
    V2,
}

impl SignRule {
    /// `"v1"` or `"v2"`.
    pub const fn name(self) -> &'static str {
        match self {
            SignRule::V1 => "v1",
            SignRule::V2 => "v2",
        }
    }

    /// Parses `"v1"` or `"v2"` (any case).
    pub fn from_name(name: &str) -> Option<SignRule> {
        if name.eq_ignore_ascii_case("v1") {
            Some(SignRule::V1)
        } else if name.eq_ignore_ascii_case("v2") {
            Some(SignRule::V2)
        } else {
            None
        }
    }

    /// Whether a field with this key and value is part of the signed content: neither key
    /// nor value is [blank](is_blank), the key is not `sign`, nor `sign_type` under V1.
    pub fn includes(self, key: &str, value: &[u8]) -> bool {
        let dropped = is_blank(value)
            || is_blank(key.as_bytes())
            || key == "sign"
            || (self == SignRule::V1 && key == "sign_type");
        !dropped
    }
}

/// Java's `Character.isWhitespace`: the ASCII controls `\t \n \u{b} \u{c} \r` and
/// `\u{1c}..=\u{1f}`, and the Unicode space, line and paragraph separators except the
/// no-break ones (U+00A0, U+2007, U+202F).
pub const fn is_java_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | '\u{1c}'..='\u{1f}' | ' ' | '\u{1680}'
            | '\u{2000}'..='\u{2006}' | '\u{2008}'..='\u{200a}' | '\u{2028}' | '\u{2029}'
            | '\u{205f}' | '\u{3000}'
    )
}

/// Whether Alipay's SDKs treat a value as empty: it is empty or made only of whitespace
/// ([`is_java_whitespace`]; their `StringUtils.isEmpty` / `areNotEmpty`). Such pairs are left
/// out of the signed content of notifications and of requests alike.
///
/// `value` is UTF-8 text or GBK bytes; both are judged exactly without knowing which: a UTF-8
/// value by its characters, any other by its GBK characters (ASCII whitespace bytes and
/// `A1 A1`, U+3000; no other whitespace exists in GBK, and no whitespace-only GBK text is
/// valid UTF-8 unless it is ASCII).
///
/// ```
/// use paystate::alipay::content::is_blank;
///
/// assert!(is_blank(b"") && is_blank(b" ") && is_blank(b"\t\r\n") && is_blank("\u{3000}".as_bytes()));
/// assert!(is_blank(&[0xA1, 0xA1])); // U+3000 in GBK
/// assert!(!is_blank("\u{a0}".as_bytes()) && !is_blank(b" x "));
/// ```
pub fn is_blank(value: &[u8]) -> bool {
    match core::str::from_utf8(value) {
        Ok(text) => text.chars().all(is_java_whitespace),
        Err(_) => {
            let mut rest = value;
            loop {
                match rest {
                    [] => return true,
                    [b, tail @ ..] if b.is_ascii() && is_java_whitespace(char::from(*b)) => {
                        rest = tail
                    }
                    [0xA1, 0xA1, tail @ ..] => rest = tail,
                    _ => return false,
                }
            }
        }
    }
}

impl fmt::Display for SignRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The signed content of a form under a rule: a view, built on demand, never stored.
///
/// ```
/// use paystate::alipay::content::{SignRule, SignedContent};
/// use paystate::alipay::form::Form;
///
/// let mut buf = [0u8; 128];
/// let form = Form::decode(b"sign_type=RSA2&b=2&sign=xyz&a=1&empty=&blank=+%09", &mut buf)?;
/// assert_eq!(SignedContent::new(&form, SignRule::V1).to_string(), "a=1&b=2");
/// assert_eq!(SignedContent::new(&form, SignRule::V2).to_string(), "a=1&b=2&sign_type=RSA2");
/// # Ok::<(), paystate::alipay::form::FormError>(())
/// ```
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SignedContent<'f, 'b> {
    sorted: &'f [Field<'b>],
    rule: SignRule,
}

impl<'f, 'b> SignedContent<'f, 'b> {
    /// The signed content of `form` under `rule`.
    pub fn new<const N: usize>(form: &'f Form<'b, N>, rule: SignRule) -> Self {
        SignedContent {
            sorted: form.fields(),
            rule,
        }
    }

    /// Over fields already sorted bytewise by key with unique keys (as a [`Form`] holds them).
    #[cfg_attr(not(feature = "rsa"), allow(dead_code))]
    pub(crate) fn from_sorted(sorted: &'f [Field<'b>], rule: SignRule) -> Self {
        SignedContent { sorted, rule }
    }

    /// The rule.
    pub fn rule(&self) -> SignRule {
        self.rule
    }

    /// The fields that are signed, in order.
    pub fn fields(&self) -> impl Iterator<Item = &'f Field<'b>> + use<'f, 'b> {
        let rule = self.rule;
        self.sorted
            .iter()
            .filter(move |f| rule.includes(f.key, f.value))
    }

    /// The content as consecutive pieces of bytes (`key`, `=`, `value`, `&`, `key`, ...): feed
    /// them to any sink (a hasher, a socket) without building the string. Values are the
    /// form's bytes (GBK bytes in a GBK form: that is what Alipay signed).
    pub fn pieces(&self) -> impl Iterator<Item = &'b [u8]> + use<'f, 'b> {
        self.fields().enumerate().flat_map(|(i, f)| {
            let sep: &[u8] = if i == 0 { b"" } else { b"&" };
            [sep, f.key.as_bytes(), b"=", f.value]
        })
    }

    /// Feeds the content into `hasher`.
    pub fn update(&self, hasher: &mut Sha256) {
        for piece in self.pieces() {
            hasher.update(piece);
        }
    }

    /// SHA-256 of the content: what the RSA2 signature signs.
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        self.update(&mut hasher);
        hasher.finalize().into()
    }

    /// The content's length in bytes.
    pub fn len(&self) -> usize {
        self.pieces().fold(0usize, |n, p| n.saturating_add(p.len()))
    }

    /// `true` if no field is signed (a form of only `sign` and empty values).
    pub fn is_empty(&self) -> bool {
        self.fields().next().is_none()
    }
}

/// The content as text; bytes that are not UTF-8 (GBK values) are written as `\xNN`.
impl fmt::Display for SignedContent<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for piece in self.pieces() {
            for chunk in piece.utf8_chunks() {
                f.write_str(chunk.valid())?;
                for b in chunk.invalid() {
                    write!(f, "\\x{b:02X}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn rules_differ_only_in_sign_type() {
        let mut buf = [0u8; 128];
        let form = Form::decode(b"z=%26%3D&sign=s&sign_type=RSA2&B=1&a=&c=3", &mut buf).unwrap();
        let v1 = SignedContent::new(&form, SignRule::V1);
        let v2 = SignedContent::new(&form, SignRule::V2);
        // Bytewise: upper case sorts before lower case. Values are not re-encoded.
        assert_eq!(v1.to_string(), "B=1&c=3&z=&=");
        assert_eq!(v2.to_string(), "B=1&c=3&sign_type=RSA2&z=&=");
        assert_eq!(v1.len(), v1.to_string().len());
        assert_eq!(
            v1.digest(),
            <[u8; 32]>::from(Sha256::digest(b"B=1&c=3&z=&="))
        );
        assert!(!v1.is_empty());
    }

    #[test]
    fn nothing_signed() {
        let mut buf = [0u8; 32];
        let form = Form::decode(b"sign=x&a=", &mut buf).unwrap();
        let c = SignedContent::new(&form, SignRule::V2);
        assert!(c.is_empty());
        assert_eq!((c.to_string().as_str(), c.len()), ("", 0));
    }

    #[test]
    fn blank_values_and_keys_are_left_out() {
        let mut buf = [0u8; 128];
        let form = Form::decode(
            b"a=+&b=%E3%80%80%09&c=%C2%A0&d=x&e=%0B%1C%0C&%20=1&f=%E2%80%87",
            &mut buf,
        )
        .unwrap();
        // NBSP (U+00A0) and FIGURE SPACE (U+2007) are not whitespace to Java.
        assert_eq!(
            SignedContent::new(&form, SignRule::V2).to_string(),
            "c=\u{a0}&d=x&f=\u{2007}"
        );
        for ws in [
            '\u{1680}', '\u{2000}', '\u{2006}', '\u{2008}', '\u{200a}', '\u{2028}', '\u{2029}',
            '\u{205f}', '\u{3000}', '\u{1f}',
        ] {
            assert!(is_java_whitespace(ws), "{ws:?}");
        }
        for not in [
            '\u{a0}', '\u{2007}', '\u{202f}', '\u{85}', '\u{200b}', '\u{feff}', 'a',
        ] {
            assert!(!is_java_whitespace(not), "{not:?}");
        }
        assert!(is_blank(&[0xA1, 0xA1, b' ', 0xA1, 0xA1]));
        assert!(!is_blank(&[0xA1, 0xA2]) && !is_blank(&[0xA1]) && !is_blank(&[b' ', 0xB2, 0xE2]));
    }

    #[test]
    fn gbk_content_is_bytes() {
        let mut buf = [0u8; 128];
        let form = Form::decode(b"charset=GBK&subject=%B2%E2%CA%D4&a=1", &mut buf).unwrap();
        let content = SignedContent::new(&form, SignRule::V1);
        assert_eq!(
            content.to_string(),
            "a=1&charset=GBK&subject=\\xB2\\xE2\\xCA\\xD4"
        );
        assert_eq!(
            content.digest(),
            <[u8; 32]>::from(Sha256::digest(b"a=1&charset=GBK&subject=\xB2\xE2\xCA\xD4"))
        );
        assert_eq!(content.len(), 28);
    }

    #[test]
    fn rule_names() {
        assert_eq!(SignRule::from_name("V2"), Some(SignRule::V2));
        assert_eq!(SignRule::from_name("v1"), Some(SignRule::V1));
        assert_eq!(SignRule::from_name("rsa2"), None);
        assert_eq!(SignRule::V1.to_string(), "v1");
    }
}
