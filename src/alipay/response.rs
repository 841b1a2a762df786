//! Synchronous responses of the Alipay gateway: find the signed JSON text, byte for byte.
//!
//! A response to `alipay.trade.query` looks like
//! `{"alipay_trade_query_response":{"code":"10000",...},"sign":"..."}`. Alipay signs the raw
//! text of the `alipay_trade_query_response` value exactly as sent — its whitespace, its key
//! order, its escapes (`"http:\/\/..."`). Re-serialising parsed JSON changes those bytes and
//! the signature fails, so this module scans the raw text instead: a quote- and escape-aware
//! scan of the top-level object that returns the exact slice and the `sign`, wherever `sign`
//! is (before or after) and whatever is inside strings (`"a}b{c"`).
//!
//! A gateway-level error comes as `error_response` instead of `<method>_response`; it may be
//! unsigned (`"sign":""`), and even signed it is a failure, never a result.
//!
//! **The host must parse the returned [`SignedResponse::content`]**, not the whole raw text:
//! that slice is exactly what the signature covers.
//!
//! No heap and no std: this runs on a POS terminal's microcontroller.

use core::fmt;

use crate::signature::{MAX_SIGNATURE_BASE64_LEN, MAX_SIGNATURE_LEN, SignatureError};

/// How deep the scan follows nested objects and arrays before refusing the text.
pub const MAX_DEPTH: u32 = 128;

/// Which value the signed content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ResponseKind {
    /// `<method>_response`: the method's result (check its `code`: `"10000"` is success).
    Method,
    /// `error_response`: the gateway refused the request (bad `app_id`, bad signature of the
    /// request, ...). A failure, even when its signature is valid.
    Error,
}

impl ResponseKind {
    /// `"method"` or `"error"`.
    pub const fn name(self) -> &'static str {
        match self {
            ResponseKind::Method => "method",
            ResponseKind::Error => "error",
        }
    }
}

/// The parts of a response that the signature check needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SignedResponse<'a> {
    /// The raw JSON text of the `<method>_response` (or `error_response`) value, exactly as
    /// received: the signed content, and the only part the host should parse.
    pub content: &'a str,
    /// Whether `content` is the method's result or the gateway's error.
    pub kind: ResponseKind,
    /// The raw text inside the quotes of the top-level `sign` string (JSON escapes not yet
    /// undone), or `None` if there is no `sign` or it is empty.
    pub sign: Option<&'a str>,
}

/// Why a response was not accepted. Every variant means: do not act on this response (query
/// again later, or reconcile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ResponseError {
    /// Not a JSON object, or a JSON syntax error the scan found.
    Malformed {
        /// Byte offset of the problem.
        at: usize,
    },
    /// Objects and arrays nested deeper than [`MAX_DEPTH`].
    TooDeep {
        /// Byte offset where the limit was passed.
        at: usize,
    },
    /// Neither `<method>_response` nor `error_response` at the top level (or the method name
    /// is not the one the request used).
    MissingResponse,
    /// The response value is not a JSON object.
    ResponseNotObject,
    /// A top-level key the check depends on (`<method>_response`, `error_response`, `sign`)
    /// appears twice: which one a JSON parser keeps is not defined.
    DuplicateKey {
        /// Byte offset of the second occurrence.
        at: usize,
    },
    /// No `sign`, or an empty one. Alipay leaves some `error_response`s unsigned; they are
    /// failures whose content cannot be trusted.
    Unsigned {
        /// Which value was found.
        kind: ResponseKind,
    },
    /// The `sign` is malformed or does not match.
    Signature(SignatureError),
}

impl ResponseError {
    /// A short stable code for logs and the verification tool (`"unsigned"`).
    pub const fn code(&self) -> &'static str {
        match self {
            ResponseError::Malformed { .. } => "malformed_json",
            ResponseError::TooDeep { .. } => "too_deep",
            ResponseError::MissingResponse => "missing_response",
            ResponseError::ResponseNotObject => "response_not_object",
            ResponseError::DuplicateKey { .. } => "duplicate_key",
            ResponseError::Unsigned { .. } => "unsigned",
            ResponseError::Signature(e) => e.code(),
        }
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Malformed { at } => write!(f, "malformed JSON at byte {at}"),
            ResponseError::TooDeep { at } => {
                write!(f, "nested deeper than {MAX_DEPTH} levels at byte {at}")
            }
            ResponseError::MissingResponse => {
                f.write_str("neither <method>_response nor error_response in the response")
            }
            ResponseError::ResponseNotObject => f.write_str("the response value is not an object"),
            ResponseError::DuplicateKey { at } => write!(f, "repeated top-level key at byte {at}"),
            ResponseError::Unsigned {
                kind: ResponseKind::Error,
            } => f.write_str("an unsigned error_response: the request failed at the gateway"),
            ResponseError::Unsigned {
                kind: ResponseKind::Method,
            } => f.write_str("the response has no sign"),
            ResponseError::Signature(e) => write!(f, "bad signature: {e}"),
        }
    }
}

impl core::error::Error for ResponseError {}

impl From<SignatureError> for ResponseError {
    fn from(e: SignatureError) -> Self {
        ResponseError::Signature(e)
    }
}

struct Scanner<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn bump(&mut self) {
        self.pos = self.pos.saturating_add(1);
    }

    fn malformed(&self) -> ResponseError {
        ResponseError::Malformed { at: self.pos }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.bump();
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), ResponseError> {
        if self.peek() == Some(byte) {
            self.bump();
            Ok(())
        } else {
            Err(self.malformed())
        }
    }

    /// A string starting at the opening quote; returns the range of its raw contents.
    fn string(&mut self) -> Result<(usize, usize), ResponseError> {
        self.expect(b'"')?;
        let start = self.pos;
        loop {
            match self.peek() {
                None => return Err(self.malformed()),
                Some(b'"') => {
                    let end = self.pos;
                    self.bump();
                    return Ok((start, end));
                }
                Some(b'\\') => {
                    self.bump();
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.bump(),
                        Some(b'u') => {
                            self.bump();
                            for _ in 0..4 {
                                if !self.peek().is_some_and(|b| b.is_ascii_hexdigit()) {
                                    return Err(self.malformed());
                                }
                                self.bump();
                            }
                        }
                        _ => return Err(self.malformed()),
                    }
                }
                Some(0..=0x1f) => return Err(self.malformed()),
                Some(_) => self.bump(),
            }
        }
    }

    /// A number, `true`, `false` or `null`.
    fn scalar(&mut self) -> Result<(), ResponseError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.'))
        {
            self.bump();
        }
        let token = self.text.get(start..self.pos).unwrap_or_default();
        let number = token
            .first()
            .is_some_and(|&b| b == b'-' || b.is_ascii_digit())
            && token
                .iter()
                .all(|&b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
        if number || matches!(token, b"true" | b"false" | b"null") {
            Ok(())
        } else {
            Err(ResponseError::Malformed { at: start })
        }
    }

    /// Any value; returns its raw range. Nesting is followed with a stack of bits (1 for an
    /// object, 0 for an array), so `]` cannot close a `{`.
    fn value(&mut self) -> Result<(usize, usize), ResponseError> {
        let start = self.pos;
        let mut stack: u128 = 0;
        let mut depth: u32 = 0;
        loop {
            self.skip_ws();
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    if depth >= MAX_DEPTH {
                        return Err(ResponseError::TooDeep { at: self.pos });
                    }
                    stack = (stack << 1) | u128::from(open == b'{');
                    depth = depth.saturating_add(1);
                    self.bump();
                    self.skip_ws();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        // Empty container: closed right away below.
                    } else {
                        if open == b'{' {
                            self.member_key()?;
                        }
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(_) => self.scalar()?,
                None => return Err(self.malformed()),
            }
            // After a complete value (or an opening bracket of an empty container): a comma
            // or the closing brackets.
            loop {
                if depth == 0 {
                    return Ok((start, self.pos));
                }
                self.skip_ws();
                let in_object = stack & 1 == 1;
                match self.peek() {
                    Some(b',') => {
                        self.bump();
                        if in_object {
                            self.skip_ws();
                            self.member_key()?;
                        }
                        break;
                    }
                    Some(b'}') if in_object => {}
                    Some(b']') if !in_object => {}
                    _ => return Err(self.malformed()),
                }
                self.bump();
                stack >>= 1;
                depth = depth.saturating_sub(1);
            }
        }
    }

    /// `"key" :` inside an object.
    fn member_key(&mut self) -> Result<(), ResponseError> {
        self.string()?;
        self.skip_ws();
        self.expect(b':')
    }
}

/// `alipay.trade.query` → `alipay_trade_query_response`, compared without building it.
fn is_response_key(key: &[u8], method: &str) -> bool {
    const SUFFIX: &[u8] = b"_response";
    let m = method.as_bytes();
    if m.is_empty() || key.len() != m.len().saturating_add(SUFFIX.len()) {
        return false;
    }
    let (name, suffix) = key.split_at(m.len());
    suffix == SUFFIX
        && name
            .iter()
            .zip(m)
            .all(|(&k, &c)| k == if c == b'.' { b'_' } else { c })
}

/// Finds the signed content and the `sign` of a raw response to `method`
/// (`"alipay.trade.query"`).
///
/// ```
/// use paystate::alipay::response::{signed_response, ResponseKind};
///
/// let raw = r#"{"sign":"c2ln","alipay_trade_query_response" : {"code":"10000","subject":"a}b"} }"#;
/// let r = signed_response(raw, "alipay.trade.query")?;
/// assert_eq!(r.content, r#"{"code":"10000","subject":"a}b"}"#);
/// assert_eq!((r.kind, r.sign), (ResponseKind::Method, Some("c2ln")));
/// # Ok::<(), paystate::alipay::response::ResponseError>(())
/// ```
pub fn signed_response<'a>(
    raw: &'a str,
    method: &str,
) -> Result<SignedResponse<'a>, ResponseError> {
    let text = raw.as_bytes();
    let mut s = Scanner { text, pos: 0 };
    let mut method_value: Option<(usize, usize)> = None;
    let mut error_value: Option<(usize, usize)> = None;
    let mut sign: Option<(usize, usize)> = None;

    s.skip_ws();
    s.expect(b'{')?;
    s.skip_ws();
    if s.peek() == Some(b'}') {
        s.bump();
    } else {
        loop {
            s.skip_ws();
            let key_at = s.pos;
            let (ks, ke) = s.string()?;
            let key = text.get(ks..ke).unwrap_or_default();
            s.skip_ws();
            s.expect(b':')?;
            s.skip_ws();
            let slot = if is_response_key(key, method) {
                Some(&mut method_value)
            } else if key == b"error_response" {
                Some(&mut error_value)
            } else if key == b"sign" {
                Some(&mut sign)
            } else {
                None
            };
            let range = if key == b"sign" {
                if s.peek() != Some(b'"') {
                    return Err(s.malformed());
                }
                s.string()?
            } else {
                s.value()?
            };
            if let Some(slot) = slot {
                if slot.is_some() {
                    return Err(ResponseError::DuplicateKey { at: key_at });
                }
                *slot = Some(range);
            }
            s.skip_ws();
            match s.peek() {
                Some(b',') => s.bump(),
                Some(b'}') => {
                    s.bump();
                    break;
                }
                _ => return Err(s.malformed()),
            }
        }
    }
    s.skip_ws();
    if s.pos != text.len() {
        return Err(s.malformed());
    }

    let (kind, (start, end)) = match (method_value, error_value) {
        (Some(range), _) => (ResponseKind::Method, range),
        (None, Some(range)) => (ResponseKind::Error, range),
        (None, None) => return Err(ResponseError::MissingResponse),
    };
    if text.get(start) != Some(&b'{') {
        return Err(ResponseError::ResponseNotObject);
    }
    // Every range starts and ends at an ASCII delimiter, so these are char boundaries.
    let content = raw
        .get(start..end)
        .ok_or(ResponseError::Malformed { at: start })?;
    let sign = sign
        .and_then(|(a, b)| raw.get(a..b))
        .filter(|s| !s.is_empty());
    Ok(SignedResponse {
        content,
        kind,
        sign,
    })
}

/// Undoes the only JSON escape a base64 string can carry (`\/`) and decodes it strictly.
pub fn decode_response_sign<'b>(
    sign: &str,
    buf: &'b mut [u8; MAX_SIGNATURE_LEN],
) -> Result<&'b [u8], SignatureError> {
    let mut text = [0u8; MAX_SIGNATURE_BASE64_LEN];
    let mut len = 0usize;
    let mut bytes = sign.bytes().enumerate();
    while let Some((at, b)) = bytes.next() {
        let b = if b == b'\\' {
            match bytes.next() {
                Some((_, b'/')) => b'/',
                _ => return Err(SignatureError::InvalidBase64Char { at, byte: b'\\' }),
            }
        } else {
            b
        };
        let slot = text
            .get_mut(len)
            .ok_or(SignatureError::TooLong { len: sign.len() })?;
        *slot = b;
        len = len.saturating_add(1);
    }
    crate::signature::decode_signature_bytes(text.get(..len).unwrap_or_default(), buf)
}

impl<'a> SignedResponse<'a> {
    /// Checks the signature with the host's own RSA implementation: `check` gets the signed
    /// content and the decoded signature, and must verify SHA256withRSA PKCS#1 v1.5 with the
    /// pinned Alipay public key.
    pub fn verify_with<F>(self, check: F) -> Result<SignedResponse<'a>, ResponseError>
    where
        F: FnOnce(&[u8], &[u8]) -> Result<(), SignatureError>,
    {
        let sign = self
            .sign
            .ok_or(ResponseError::Unsigned { kind: self.kind })?;
        let mut buf = [0u8; MAX_SIGNATURE_LEN];
        let signature = decode_response_sign(sign, &mut buf)?;
        check(self.content.as_bytes(), signature)?;
        Ok(self)
    }
}

/// Finds the signed content of a raw response to `method` and checks its signature with the
/// pinned Alipay public key. On success the host parses the returned `content` (and treats
/// [`ResponseKind::Error`] as a failed request).
/// The key is any [`Rsa2Verifier`](crate::signature::Rsa2Verifier) backend.
pub fn verify_response<'a, V: crate::signature::Rsa2Verifier>(
    raw: &'a str,
    method: &str,
    key: &V,
) -> Result<SignedResponse<'a>, ResponseError> {
    signed_response(raw, method)?.verify_with(|content, sig| key.verify_message(content, sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content<'a>(raw: &'a str, method: &str) -> Result<&'a str, ResponseError> {
        signed_response(raw, method).map(|r| r.content)
    }

    #[test]
    fn response_key_names() {
        assert!(is_response_key(
            b"alipay_trade_query_response",
            "alipay.trade.query"
        ));
        assert!(!is_response_key(
            b"alipay_trade_query_response",
            "alipay.trade.refund"
        ));
        assert!(!is_response_key(
            b"alipay_trade_query_respons",
            "alipay.trade.query"
        ));
        assert!(!is_response_key(b"_response", ""));
    }

    #[test]
    fn nested_values_and_strings() {
        let raw = r#"{"x":[1,{"a":[]},"]}"],"m_response":{"a":{"b":[{},[]]},"s":"\"}\\","n":-1.5e3,"t":true,"z":null},"sign":"QQ=="}"#;
        assert_eq!(
            content(raw, "m"),
            Ok(r#"{"a":{"b":[{},[]]},"s":"\"}\\","n":-1.5e3,"t":true,"z":null}"#)
        );
        assert_eq!(content(" {\"m_response\":{}} \n", "m"), Ok("{}"));
    }

    #[test]
    fn malformed_text_is_refused() {
        use ResponseError::*;
        for (raw, err) in [
            ("", Malformed { at: 0 }),
            ("[]", Malformed { at: 0 }),
            ("{", Malformed { at: 1 }),
            ("{}", MissingResponse),
            (r#"{"m_response":{"a":1]}"#, Malformed { at: 20 }),
            (r#"{"m_response":[1}"#, Malformed { at: 16 }),
            (r#"{"m_response":{"a":"\x"}}"#, Malformed { at: 21 }),
            (r#"{"m_response":{"a":tru}}"#, Malformed { at: 19 }),
            (r#"{"m_response":{"a" 1}}"#, Malformed { at: 19 }),
            (r#"{"m_response":{}}x"#, Malformed { at: 17 }),
            (r#"{"m_response":"text"}"#, ResponseNotObject),
            (
                r#"{"m_response":{},"m_response":{}}"#,
                DuplicateKey { at: 17 },
            ),
            (
                r#"{"m_response":{},"sign":"a","sign":"b"}"#,
                DuplicateKey { at: 28 },
            ),
            (r#"{"m_response":{},"sign":1}"#, Malformed { at: 24 }),
            ("{\"m_response\":{\"a\":\"\n\"}}", Malformed { at: 20 }),
        ] {
            assert_eq!(content(raw, "m"), Err(err), "{raw}");
        }
        let deep = "[".repeat(200);
        let raw = std::format!("{{\"m_response\":{deep}");
        assert_eq!(content(&raw, "m"), Err(TooDeep { at: 14 + 128 }));
    }

    #[test]
    fn sign_escapes() {
        let mut buf = [0u8; MAX_SIGNATURE_LEN];
        assert_eq!(
            decode_response_sign(r"AAEC\/w==", &mut buf),
            Ok(&[0u8, 1, 2, 255][..])
        );
        assert_eq!(
            decode_response_sign(r"AAEC\nw==", &mut buf),
            Err(SignatureError::InvalidBase64Char { at: 4, byte: b'\\' })
        );
    }
}
