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
//! **Encrypted responses.** With content encryption on, `<method>_response` is a JSON string,
//! the base64 of the AES-CBC ciphertext of the response object. The signed content is then
//! that string token, quotes included, byte for byte ([`SignedResponse::is_encrypted`]);
//! verify it, then [`SignedResponse::decrypt`] (feature `alipay-aes`) gives the object's text.
//!
//! **Certificate mode.** The response names the Alipay certificate whose key signed it in a
//! top-level `alipay_cert_sn` ([`SignedResponse::alipay_cert_sn`]).
//!
//! **The host must parse the returned [`SignedResponse::content`]**, not the whole raw text:
//! that slice is exactly what the signature covers.
//!
//! No heap and no std: this runs on a POS terminal's microcontroller.

use core::fmt;

use crate::signature::{MAX_SIGNATURE_BASE64_LEN, MAX_SIGNATURE_LEN, SignatureError};

use super::cert::CertSn;
use super::encryption::AesError;

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
    /// received: the signed content, and the only part the host should parse (after
    /// [`SignedResponse::decrypt`] when it is an encrypted string, quotes included).
    pub content: &'a str,
    /// Whether `content` is the method's result or the gateway's error.
    pub kind: ResponseKind,
    /// The raw text inside the quotes of the top-level `sign` string (JSON escapes not yet
    /// undone), or `None` if there is no `sign` or it is empty.
    pub sign: Option<&'a str>,
    /// The raw text inside the quotes of the top-level `alipay_cert_sn` string (certificate
    /// mode: the SN of the Alipay certificate whose key signed the response), or `None` if
    /// there is none or it is empty.
    pub alipay_cert_sn: Option<&'a str>,
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
    /// The response value is not a JSON object (nor, for `<method>_response`, the string of
    /// an encrypted response).
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
    /// An encrypted response could not be decrypted: not base64, not whole blocks, or bad
    /// padding (the wrong AES key).
    Decryption(AesError),
    /// An encrypted response decrypted to something that is not a JSON object (the wrong AES
    /// key, in the rare case the padding still looked valid).
    DecryptedNotObject,
    /// Certificate mode, and the response has no `alipay_cert_sn`, an empty one, or one that
    /// is not an SN (32 hex digits): no certificate can be chosen to verify it.
    MissingCertSn,
    /// Certificate mode, and the response was signed with the key of an Alipay certificate
    /// the host does not hold (Alipay rotated its certificate): fetch the certificate with
    /// this SN (`alipay.open.app.alipaycert.download`), check it against Alipay's root,
    /// add it, and query again.
    UnknownCertSn {
        /// The SN the response names.
        sn: CertSn,
    },
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
            ResponseError::Decryption(e) => e.code(),
            ResponseError::DecryptedNotObject => "decrypted_not_object",
            ResponseError::MissingCertSn => "missing_cert_sn",
            ResponseError::UnknownCertSn { .. } => "unknown_cert_sn",
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
            ResponseError::Decryption(e) => write!(f, "cannot decrypt the response: {e}"),
            ResponseError::DecryptedNotObject => f.write_str(
                "the decrypted response is not a JSON object (is it the right AES key?)",
            ),
            ResponseError::MissingCertSn => {
                f.write_str("no alipay_cert_sn in the response: no certificate to verify it with")
            }
            ResponseError::UnknownCertSn { sn } => write!(
                f,
                "signed with the key of Alipay certificate {sn}, which is not held: fetch it"
            ),
        }
    }
}

impl core::error::Error for ResponseError {}

impl From<SignatureError> for ResponseError {
    fn from(e: SignatureError) -> Self {
        ResponseError::Signature(e)
    }
}

impl From<AesError> for ResponseError {
    fn from(e: AesError) -> Self {
        ResponseError::Decryption(e)
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
    let mut cert_sn: Option<(usize, usize)> = None;

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
            } else if key == b"alipay_cert_sn" {
                Some(&mut cert_sn)
            } else {
                None
            };
            let range = if key == b"sign" || key == b"alipay_cert_sn" {
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
    match (text.get(start), kind) {
        (Some(b'{'), _) | (Some(b'"'), ResponseKind::Method) => {}
        _ => return Err(ResponseError::ResponseNotObject),
    }
    // Every range starts and ends at an ASCII delimiter, so these are char boundaries.
    let content = raw
        .get(start..end)
        .ok_or(ResponseError::Malformed { at: start })?;
    let string = |range: Option<(usize, usize)>| {
        range
            .and_then(|(a, b)| raw.get(a..b))
            .filter(|s| !s.is_empty())
    };
    Ok(SignedResponse {
        content,
        kind,
        sign: string(sign),
        alipay_cert_sn: string(cert_sn),
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

/// Whether `text` is exactly one JSON object (surrounding whitespace allowed).
#[cfg_attr(not(feature = "alipay-aes"), allow(dead_code))]
fn is_object(text: &[u8]) -> bool {
    let mut s = Scanner { text, pos: 0 };
    s.skip_ws();
    if s.peek() != Some(b'{') || s.value().is_err() {
        return false;
    }
    s.skip_ws();
    s.pos == text.len()
}

impl<'a> SignedResponse<'a> {
    /// Whether the response value is encrypted: a JSON string where the object should be
    /// (content encryption is on). Decrypt it with [`SignedResponse::decrypt`] (feature
    /// `alipay-aes`) after verifying.
    pub fn is_encrypted(&self) -> bool {
        self.content.starts_with('"')
    }

    /// The response object's JSON text: decrypted with the merchant's AES key into `out` if
    /// the response [is encrypted](SignedResponse::is_encrypted), else a copy of
    /// [`content`](SignedResponse::content) (Alipay leaves some responses, such as
    /// `error_response`, unencrypted). Call it on a verified response. `out` must be at least
    /// as long as `content`.
    ///
    /// Errors: [`ResponseError::Decryption`] (not base64, bad length, bad padding: the wrong
    /// key, [`AesError::BufferTooSmall`] for a short `out`), [`ResponseError::DecryptedNotObject`].
    #[cfg(feature = "alipay-aes")]
    pub fn decrypt<'o>(
        &self,
        key: &super::encryption::AesKey,
        out: &'o mut [u8],
    ) -> Result<&'o str, ResponseError> {
        let needed = self.content.len();
        let out = out
            .get_mut(..needed)
            .ok_or(AesError::BufferTooSmall { needed })?;
        let inner = match self.content.as_bytes() {
            [b'"', inner @ .., b'"'] => inner,
            text => {
                out.copy_from_slice(text);
                return core::str::from_utf8(out).map_err(|_| ResponseError::DecryptedNotObject);
            }
        };
        // The base64 text, with the one JSON escape it can carry (`\/`) undone.
        let mut len = 0usize;
        let mut bytes = inner.iter();
        while let Some(&b) = bytes.next() {
            let b = match b {
                b'\\' => match bytes.next() {
                    Some(b'/') => b'/',
                    _ => return Err(AesError::CiphertextNotBase64.into()),
                },
                b => b,
            };
            // `inner` is shorter than `out`.
            let slot = out
                .get_mut(len)
                .ok_or(AesError::BufferTooSmall { needed })?;
            *slot = b;
            len = len.saturating_add(1);
        }
        let plain = key.decrypt_base64_in_place(out, len)?;
        match core::str::from_utf8(plain) {
            Ok(text) if is_object(plain) => Ok(text),
            _ => Err(ResponseError::DecryptedNotObject),
        }
    }

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

/// Certificate mode: finds the signed content of a raw response to `method`, picks among the
/// Alipay certificates the host holds the one its `alipay_cert_sn` names, and checks the
/// signature with that certificate's key.
///
/// Errors, besides those of [`verify_response`]: [`ResponseError::MissingCertSn`], and
/// [`ResponseError::UnknownCertSn`] when no certificate held has that SN (fetch the new one).
/// An unsigned response is [`ResponseError::Unsigned`] whatever its SN.
#[cfg(feature = "x509")]
pub fn verify_response_with_certificates<'a>(
    raw: &'a str,
    method: &str,
    certificates: &[super::cert::AlipayCertificate],
) -> Result<SignedResponse<'a>, ResponseError> {
    let found = signed_response(raw, method)?;
    if found.sign.is_none() {
        return Err(ResponseError::Unsigned { kind: found.kind });
    }
    let sn = found
        .alipay_cert_sn
        .and_then(CertSn::parse)
        .ok_or(ResponseError::MissingCertSn)?;
    let cert = certificates
        .iter()
        .find(|c| c.sn() == sn)
        .ok_or(ResponseError::UnknownCertSn { sn })?;
    found.verify_with(|content, sig| cert.public_key().verify(content, sig))
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
            (r#"{"m_response":1}"#, ResponseNotObject),
            (r#"{"m_response":[]}"#, ResponseNotObject),
            (r#"{"error_response":"QUJD"}"#, ResponseNotObject),
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
