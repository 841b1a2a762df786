//! The content Alipay signs: `key=value` pairs of the decoded form, sorted, joined with `&`.
//!
//! Keys are sorted bytewise, pairs with an empty value are dropped, `sign` is dropped, and
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

    /// Whether a field with this key and value is part of the signed content.
    pub fn includes(self, key: &str, value: &str) -> bool {
        !value.is_empty() && key != "sign" && !(self == SignRule::V1 && key == "sign_type")
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
/// let form = Form::decode(b"sign_type=RSA2&b=2&sign=xyz&a=1&empty=", &mut buf)?;
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

    /// The content as consecutive pieces (`key`, `=`, `value`, `&`, `key`, ...): feed them to
    /// any sink (a hasher, a `fmt::Write`, a socket) without building the string.
    pub fn pieces(&self) -> impl Iterator<Item = &'b str> + use<'f, 'b> {
        self.fields().enumerate().flat_map(|(i, f)| {
            let sep = if i == 0 { "" } else { "&" };
            [sep, f.key, "=", f.value]
        })
    }

    /// Feeds the content into `hasher`.
    pub fn update(&self, hasher: &mut Sha256) {
        for piece in self.pieces() {
            hasher.update(piece.as_bytes());
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

impl fmt::Display for SignedContent<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.pieces().try_for_each(|p| f.write_str(p))
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
    fn rule_names() {
        assert_eq!(SignRule::from_name("V2"), Some(SignRule::V2));
        assert_eq!(SignRule::from_name("v1"), Some(SignRule::V1));
        assert_eq!(SignRule::from_name("rsa2"), None);
        assert_eq!(SignRule::V1.to_string(), "v1");
    }
}
