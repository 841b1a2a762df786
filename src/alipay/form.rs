//! Strict `application/x-www-form-urlencoded` decoding, once, into a buffer the host provides.
//!
//! An Alipay notification is a form body. Its signature covers the **decoded** values, so the
//! body must be decoded exactly once (`+` is a space, `%XX` a byte) — decoding twice turns a
//! `+` of the signature into a space, decoding zero times leaves `%3A` in a date, and both make
//! "验签失败". Everything a lenient decoder would guess at is a typed error here: a bad escape,
//! a pair without `=`, an empty pair, a repeated key, bytes that are not UTF-8, a charset other
//! than UTF-8 and GBK.
//!
//! **Charsets.** A notification's `charset` may be `GBK` (or its subset `GB2312`: older
//! integrations). Alipay signs the values as bytes in that charset, so the values are kept as
//! the percent-decoded bytes, never transcoded: [`Field::value`] is bytes, and
//! [`Form::get`] / [`Field::value_str`] give the text only when it is valid UTF-8. The fields
//! a host maps (`out_trade_no`, `total_amount`, `trade_status`, `notify_id`, ...) are ASCII
//! in every charset. Keys must be UTF-8 (they are ASCII); without a `charset` field, or with
//! `charset=utf-8`, values must be UTF-8 too.
//!
//! No heap: the decoded keys and values are written into a buffer at least as long as the
//! body, and the form holds at most [`MAX_FIELDS`] fields (a const generic raises it).

use core::fmt;

/// How many fields a [`Form`] holds by default. An Alipay trade notification has about 30.
pub const MAX_FIELDS: usize = 64;

/// The longest charset name kept in [`FormError::UnsupportedCharset`].
pub const MAX_CHARSET_NAME: usize = 16;

/// The charset a form declares in its `charset` field: the encoding of its values' bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Charset {
    /// `utf-8` / `utf8` (any case), or no `charset` field: every value is UTF-8.
    Utf8,
    /// `GBK` or `GB2312` (any case): values are GBK bytes, exposed as bytes (Alipay's
    /// `charset` parameter accepts UTF-8, GBK and GB2312).
    Gbk,
}

impl Charset {
    /// `"UTF-8"` or `"GBK"`.
    pub const fn name(self) -> &'static str {
        match self {
            Charset::Utf8 => "UTF-8",
            Charset::Gbk => "GBK",
        }
    }

    /// Parses a `charset` value: `utf-8`, `utf8`, `gbk`, `gb2312`, any case.
    pub fn from_name(name: &[u8]) -> Option<Charset> {
        if name.eq_ignore_ascii_case(b"utf-8") || name.eq_ignore_ascii_case(b"utf8") {
            Some(Charset::Utf8)
        } else if name.eq_ignore_ascii_case(b"gbk") || name.eq_ignore_ascii_case(b"gb2312") {
            Some(Charset::Gbk)
        } else {
            None
        }
    }
}

/// One decoded field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Field<'b> {
    /// The decoded key (never empty, always UTF-8).
    pub key: &'b str,
    /// The decoded value's bytes (may be empty): UTF-8 text, or GBK bytes in a form whose
    /// [`Form::charset`] is [`Charset::Gbk`]. These exact bytes are what Alipay signed.
    pub value: &'b [u8],
}

impl<'b> Field<'b> {
    /// The value as text, or `None` if it is not valid UTF-8 (a non-ASCII GBK value).
    pub fn value_str(&self) -> Option<&'b str> {
        core::str::from_utf8(self.value).ok()
    }
}

/// Why a form body was refused. The host should answer the sender `fail` and log the error:
/// the body is not a well-formed notification, so it cannot be genuine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FormError {
    /// The body is empty.
    Empty,
    /// The buffer is shorter than the body.
    BufferTooSmall {
        /// The body's length: the buffer must be at least this long.
        needed: usize,
    },
    /// Two `&` in a row, or a `&` at the start or the end.
    EmptyPair {
        /// Byte offset in the body where the empty pair starts.
        at: usize,
    },
    /// A pair without `=`.
    MissingEquals {
        /// Byte offset of the pair in the body.
        at: usize,
    },
    /// A pair whose key is empty (`=value`).
    EmptyKey {
        /// Byte offset of the pair in the body.
        at: usize,
    },
    /// A `%` not followed by two hexadecimal digits.
    MalformedEscape {
        /// Byte offset of the `%` in the body.
        at: usize,
    },
    /// A key that appears twice. Which of the two is "the" value is exactly the ambiguity an
    /// attacker would use, so neither is taken.
    DuplicateKey {
        /// Byte offset in the body of the second pair with that key.
        at: usize,
    },
    /// A decoded key that is not UTF-8, or a value that is not UTF-8 in a form that declares
    /// no charset or UTF-8.
    InvalidUtf8 {
        /// Byte offset of the pair in the body.
        at: usize,
    },
    /// The form's `charset` field names an encoding other than UTF-8, GBK and GB2312 (the
    /// three Alipay's `charset` parameter accepts).
    UnsupportedCharset {
        /// The declared charset, as ASCII (other bytes shown as `?`), truncated to
        /// [`MAX_CHARSET_NAME`] bytes.
        charset: heapless::String<MAX_CHARSET_NAME>,
    },
    /// More fields than the form's capacity.
    TooManyFields {
        /// The capacity.
        max: usize,
    },
}

impl FormError {
    /// A short stable code for logs and the verification tool (`"duplicate_key"`).
    pub const fn code(&self) -> &'static str {
        match self {
            FormError::Empty => "empty_body",
            FormError::BufferTooSmall { .. } => "buffer_too_small",
            FormError::EmptyPair { .. } => "empty_pair",
            FormError::MissingEquals { .. } => "missing_equals",
            FormError::EmptyKey { .. } => "empty_key",
            FormError::MalformedEscape { .. } => "malformed_escape",
            FormError::DuplicateKey { .. } => "duplicate_key",
            FormError::InvalidUtf8 { .. } => "invalid_utf8",
            FormError::UnsupportedCharset { .. } => "unsupported_charset",
            FormError::TooManyFields { .. } => "too_many_fields",
        }
    }
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormError::Empty => f.write_str("the body is empty"),
            FormError::BufferTooSmall { needed } => {
                write!(f, "the decoding buffer must hold at least {needed} bytes")
            }
            FormError::EmptyPair { at } => write!(f, "empty pair at byte {at}"),
            FormError::MissingEquals { at } => write!(f, "pair without '=' at byte {at}"),
            FormError::EmptyKey { at } => write!(f, "pair with an empty key at byte {at}"),
            FormError::MalformedEscape { at } => {
                write!(f, "'%' not followed by two hex digits at byte {at}")
            }
            FormError::DuplicateKey { at } => write!(f, "repeated key at byte {at}"),
            FormError::InvalidUtf8 { at } => write!(f, "not UTF-8 in the pair at byte {at}"),
            FormError::UnsupportedCharset { charset } => {
                write!(
                    f,
                    "charset {charset:?} is not supported (only UTF-8, GBK, GB2312)"
                )
            }
            FormError::TooManyFields { max } => write!(f, "more than {max} fields"),
        }
    }
}

impl core::error::Error for FormError {}

/// A decoded form: its fields sorted by key (bytewise), keys unique and UTF-8, values UTF-8
/// (or GBK bytes when the form declares `charset=GBK`).
///
/// ```
/// use paystate::alipay::form::{Charset, Form, FormError};
///
/// let body = b"total_amount=0.10&subject=%E8%AF%AD%E9%9B%80+500&notify_id=n1";
/// let mut buf = [0u8; 256];
/// let form = Form::decode(body, &mut buf)?;
/// assert_eq!(form.get("subject"), Some("语雀 500"));
/// assert_eq!(form.fields().iter().map(|f| f.key).collect::<Vec<_>>(),
///            ["notify_id", "subject", "total_amount"]);
///
/// // GBK: 测试 is B2 E2 CA D4. The bytes are kept as they are (they are what was signed).
/// let mut buf = [0u8; 256];
/// let form = Form::decode(b"charset=GBK&subject=%B2%E2%CA%D4&out_trade_no=42", &mut buf)?;
/// assert_eq!(form.charset(), Charset::Gbk);
/// assert_eq!(form.get_bytes("subject"), Some(&[0xB2, 0xE2, 0xCA, 0xD4][..]));
/// assert_eq!((form.get("subject"), form.get("out_trade_no")), (None, Some("42")));
///
/// let mut buf = [0u8; 256];
/// assert_eq!(Form::decode(b"a=1&a=2", &mut buf).err(), Some(FormError::DuplicateKey { at: 4 }));
/// # Ok::<(), FormError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Form<'b, const N: usize = MAX_FIELDS> {
    fields: heapless::Vec<Field<'b>, N>,
    charset: Charset,
}

/// Where one field was decoded: key `start..mid`, value `mid..end` in the buffer, and the
/// offset of its pair in the body.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    mid: usize,
    end: usize,
    at: usize,
}

fn hex(b: u8) -> Option<u8> {
    crate::webhook::hex_digit(b)
}

/// Decodes `raw` (one key or value, found at `offset` in the body) into `out` from `pos`;
/// returns the new end position.
fn decode_component(
    raw: &[u8],
    offset: usize,
    out: &mut [u8],
    mut pos: usize,
) -> Result<usize, FormError> {
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        let (byte, used) = match b {
            b'+' => (b' ', 1),
            b'%' => {
                let escape = raw
                    .get(i.saturating_add(1))
                    .copied()
                    .and_then(hex)
                    .zip(raw.get(i.saturating_add(2)).copied().and_then(hex));
                match escape {
                    Some((hi, lo)) => ((hi << 4) | lo, 3),
                    None => {
                        return Err(FormError::MalformedEscape {
                            at: offset.saturating_add(i),
                        });
                    }
                }
            }
            other => (other, 1),
        };
        // The output never outgrows the input, and the buffer is at least as long as the
        // body; the error only keeps this free of panics.
        let slot = out.get_mut(pos).ok_or(FormError::BufferTooSmall {
            needed: offset.saturating_add(raw.len()),
        })?;
        *slot = byte;
        pos = pos.saturating_add(1);
        i = i.saturating_add(used);
    }
    Ok(pos)
}

fn charset_name(value: &[u8]) -> heapless::String<MAX_CHARSET_NAME> {
    let mut name = heapless::String::new();
    for &b in value.iter().take(MAX_CHARSET_NAME) {
        let c = if b.is_ascii_graphic() {
            char::from(b)
        } else {
            '?'
        };
        // Cannot fail: at most MAX_CHARSET_NAME one-byte characters.
        let _ = name.push(c);
    }
    name
}

impl<'b> Form<'b, MAX_FIELDS> {
    /// Decodes `body` into `buf` (at least `body.len()` bytes) and checks it strictly.
    ///
    /// The host passes the raw request body exactly as received — not a map its web
    /// framework already decoded — and a buffer: `vec![0; body.len()]`, or a stack array on a
    /// device. Every error means "not a genuine notification": answer `fail`.
    pub fn decode(body: &[u8], buf: &'b mut [u8]) -> Result<Self, FormError> {
        Form::decode_with_capacity(body, buf)
    }
}

impl<'b, const N: usize> Form<'b, N> {
    /// [`Form::decode`] for a form of capacity `N` (`Form::<128>::decode_with_capacity`).
    pub fn decode_with_capacity(body: &[u8], buf: &'b mut [u8]) -> Result<Self, FormError> {
        if body.is_empty() {
            return Err(FormError::Empty);
        }
        if buf.len() < body.len() {
            return Err(FormError::BufferTooSmall { needed: body.len() });
        }
        let mut spans: heapless::Vec<Span, N> = heapless::Vec::new();
        let mut pos = 0;
        let mut at = 0;
        for pair in body.split(|&b| b == b'&') {
            if pair.is_empty() {
                return Err(FormError::EmptyPair { at });
            }
            let eq = pair
                .iter()
                .position(|&b| b == b'=')
                .ok_or(FormError::MissingEquals { at })?;
            let (key, value) = (
                pair.get(..eq).unwrap_or_default(),
                pair.get(eq.saturating_add(1)..).unwrap_or_default(),
            );
            let start = pos;
            let mid = decode_component(key, at, buf, pos)?;
            if mid == start {
                return Err(FormError::EmptyKey { at });
            }
            let end = decode_component(value, at.saturating_add(eq).saturating_add(1), buf, mid)?;
            spans
                .push(Span {
                    start,
                    mid,
                    end,
                    at,
                })
                .map_err(|_| FormError::TooManyFields { max: N })?;
            pos = end;
            at = at.saturating_add(pair.len()).saturating_add(1);
        }

        let buf: &'b [u8] = buf;
        let key = |s: &Span| buf.get(s.start..s.mid).unwrap_or_default();
        let value = |s: &Span| buf.get(s.mid..s.end).unwrap_or_default();

        spans.sort_unstable_by(|a, b| key(a).cmp(key(b)).then(a.at.cmp(&b.at)));
        for pair in spans.windows(2) {
            if let [a, b] = pair
                && key(a) == key(b)
            {
                return Err(FormError::DuplicateKey { at: b.at });
            }
        }

        let charset = match spans.iter().find(|s| key(s) == b"charset") {
            None => Charset::Utf8,
            Some(s) => {
                Charset::from_name(value(s)).ok_or_else(|| FormError::UnsupportedCharset {
                    charset: charset_name(value(s)),
                })?
            }
        };

        let mut fields = heapless::Vec::new();
        for s in &spans {
            let k =
                core::str::from_utf8(key(s)).map_err(|_| FormError::InvalidUtf8 { at: s.at })?;
            let v = value(s);
            if charset == Charset::Utf8 && core::str::from_utf8(v).is_err() {
                return Err(FormError::InvalidUtf8 { at: s.at });
            }
            // Same capacity as `spans`: cannot fail.
            let _ = fields.push(Field { key: k, value: v });
        }
        Ok(Form { fields, charset })
    }

    fn field(&self, key: &str) -> Option<&Field<'b>> {
        self.fields
            .binary_search_by(|f| f.key.as_bytes().cmp(key.as_bytes()))
            .ok()
            .and_then(|i| self.fields.get(i))
    }

    /// The decoded value of `key` as text, if present and valid UTF-8 (always, unless the form
    /// is [`Charset::Gbk`] and the value is not ASCII: then use [`Form::get_bytes`]).
    pub fn get(&self, key: &str) -> Option<&'b str> {
        self.field(key).and_then(Field::value_str)
    }

    /// The decoded bytes of `key`'s value, if present, exactly as signed.
    pub fn get_bytes(&self, key: &str) -> Option<&'b [u8]> {
        self.field(key).map(|f| f.value)
    }

    /// The declared charset of the values ([`Charset::Utf8`] when there is no `charset`).
    pub fn charset(&self) -> Charset {
        self.charset
    }

    /// Every field, sorted by key bytewise (the order of Alipay's signed content).
    pub fn fields(&self) -> &[Field<'b>] {
        &self.fields
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// `true` if there are no fields (never, for a form that decoded).
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// Writes `text` (UTF-8 text or, for a GBK form, its bytes) form-encoded: ASCII letters,
/// digits and `*-._` as they are, a space as `+`, every other byte as `%XX` (upper case).
/// [`Form::decode`] gives back exactly these bytes.
pub fn encode_component<W: fmt::Write>(text: impl AsRef<[u8]>, out: &mut W) -> fmt::Result {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_ref() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.write_char(char::from(b))?
            }
            b' ' => out.write_char('+')?,
            _ => {
                let hi = HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0');
                let lo = HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0');
                out.write_char('%')?;
                out.write_char(char::from(hi))?;
                out.write_char(char::from(lo))?;
            }
        }
    }
    Ok(())
}

/// Writes `key=value` pairs form-encoded and joined with `&`: a request or notification body.
/// Keys and values are text (`&str`) or bytes (`&[u8]`, a [`Field::value`]).
pub fn encode_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>, W: fmt::Write>(
    pairs: impl IntoIterator<Item = (K, V)>,
    out: &mut W,
) -> fmt::Result {
    for (i, (key, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.write_char('&')?;
        }
        encode_component(key, out)?;
        out.write_char('=')?;
        encode_component(value, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(
        body: &[u8],
    ) -> Result<std::vec::Vec<(std::string::String, std::string::String)>, FormError> {
        let mut buf = std::vec![0u8; body.len()];
        let form = Form::decode(body, &mut buf)?;
        Ok(form
            .fields()
            .iter()
            .map(|f| (f.key.into(), f.value_str().unwrap().into()))
            .collect())
    }

    fn pairs(p: &[(&str, &str)]) -> std::vec::Vec<(std::string::String, std::string::String)> {
        p.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    #[test]
    fn decodes_plus_and_escapes_once() {
        assert_eq!(
            decode(b"b=x+y%2B%2bz&a=%25%32%30&c="),
            Ok(pairs(&[("a", "%20"), ("b", "x y++z"), ("c", "")]))
        );
        // Keys are decoded too; '=' after the first is part of the value.
        assert_eq!(
            decode(b"s%5Fx=a==&k+2=1"),
            Ok(pairs(&[("k 2", "1"), ("s_x", "a==")]))
        );
        assert_eq!(decode("t=语雀".as_bytes()), Ok(pairs(&[("t", "语雀")])));
    }

    #[test]
    fn refuses_everything_ambiguous() {
        use FormError::*;
        assert_eq!(decode(b""), Err(Empty));
        assert_eq!(decode(b"a=1&&b=2"), Err(EmptyPair { at: 4 }));
        assert_eq!(decode(b"&a=1"), Err(EmptyPair { at: 0 }));
        assert_eq!(decode(b"a=1&"), Err(EmptyPair { at: 4 }));
        assert_eq!(decode(b"a=1&b"), Err(MissingEquals { at: 4 }));
        assert_eq!(decode(b"a=1&=2"), Err(EmptyKey { at: 4 }));
        assert_eq!(decode(b"a=%2"), Err(MalformedEscape { at: 2 }));
        assert_eq!(decode(b"a=1%"), Err(MalformedEscape { at: 3 }));
        assert_eq!(decode(b"a=%zz"), Err(MalformedEscape { at: 2 }));
        assert_eq!(decode(b"a%g1=1"), Err(MalformedEscape { at: 1 }));
        assert_eq!(decode(b"a=1&b=2&a=1"), Err(DuplicateKey { at: 8 }));
        // Duplicates are found after decoding: "a" and "%61" are the same key.
        assert_eq!(decode(b"%61=1&a=1"), Err(DuplicateKey { at: 6 }));
        assert_eq!(decode(b"a=%FF"), Err(InvalidUtf8 { at: 0 }));
        assert_eq!(decode(b"x=1&a=%E8%AF"), Err(InvalidUtf8 { at: 4 }));
    }

    #[test]
    fn utf8_and_gbk_charsets() {
        for ok in ["utf-8", "UTF-8", "utf8", "Utf-8"] {
            let body = std::format!("charset={ok}&a=1");
            let mut buf = [0u8; 32];
            let form = Form::decode(body.as_bytes(), &mut buf).unwrap();
            assert_eq!(form.charset(), Charset::Utf8, "{ok}");
        }
        // GBK and GB2312: values are bytes (语雀 in GBK), keys still UTF-8, still strict.
        for name in ["GBK", "gbk", "GB2312"] {
            let body = std::format!("charset={name}&subject=%D3%EF%C8%B8&b=1");
            let mut buf = [0u8; 64];
            let form = Form::decode(body.as_bytes(), &mut buf).unwrap();
            assert_eq!(form.charset(), Charset::Gbk);
            assert_eq!(form.get_bytes("subject"), Some(&b"\xD3\xEF\xC8\xB8"[..]));
            assert_eq!((form.get("subject"), form.get("b")), (None, Some("1")));
        }
        assert_eq!(
            decode(b"charset=GBK&%D3%EF=1"),
            Err(FormError::InvalidUtf8 { at: 12 })
        );
        assert_eq!(
            decode(b"charset=GBK&a=1&a=%D3"),
            Err(FormError::DuplicateKey { at: 16 })
        );
        assert_eq!(
            decode(b"charset=GBK&a=%D3%E"),
            Err(FormError::MalformedEscape { at: 17 })
        );
        assert_eq!(
            decode(b"charset=Shift_JIS&subject=%D3%EF%C8%B8"),
            Err(FormError::UnsupportedCharset {
                charset: "Shift_JIS".try_into().unwrap()
            })
        );
        assert_eq!(
            decode(b"charset=%FFgb2312-and-much-more-text"),
            Err(FormError::UnsupportedCharset {
                charset: "?gb2312-and-much".try_into().unwrap()
            })
        );
    }

    #[test]
    fn capacity_and_buffer_are_checked() {
        let mut small = [0u8; 3];
        assert_eq!(
            Form::decode(b"a=1&b=2", &mut small),
            Err(FormError::BufferTooSmall { needed: 7 })
        );
        let mut buf = [0u8; 64];
        assert_eq!(
            Form::<2>::decode_with_capacity(b"a=1&b=2&c=3", &mut buf),
            Err(FormError::TooManyFields { max: 2 })
        );
        let mut buf = [0u8; 64];
        let form = Form::<2>::decode_with_capacity(b"b=1&a=2", &mut buf).unwrap();
        assert_eq!(
            (form.get("a"), form.get("b"), form.get("c")),
            (Some("2"), Some("1"), None)
        );
        assert_eq!(form.get_bytes("a"), Some(&b"2"[..]));
    }

    #[test]
    fn encoding_round_trips() {
        let mut s = std::string::String::new();
        encode_pairs([("k y", "a+b=c&d/é%"), ("sign", "AB+/==")], &mut s).unwrap();
        assert_eq!(s, "k+y=a%2Bb%3Dc%26d%2F%C3%A9%25&sign=AB%2B%2F%3D%3D");
        assert_eq!(
            decode(s.as_bytes()),
            Ok(pairs(&[("k y", "a+b=c&d/é%"), ("sign", "AB+/==")]))
        );
    }
}
