//! Alipay's synchronous answers: check the signature, then read what the terminal needs.

use core::fmt;

use crate::json::{self, JsonError};

/// The verified (or, without the `rsa` feature, merely extracted) business content of one
/// answer: the JSON text of its `<method>_response` value.
pub struct Content<'a> {
    text: &'a str,
}

/// Why an answer was refused before it reached the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerError {
    /// The answer is not a well-formed signed response of the method asked (truncated,
    /// unbalanced, no `sign`).
    Malformed,
    /// The RSA2 signature does not verify: forged or altered (the reason's code).
    BadSignature(&'static str),
    /// A field the terminal needs is missing or not a plain string.
    Field(&'static str, Option<JsonError>),
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswerError::Malformed => f.write_str("malformed or truncated response"),
            AnswerError::BadSignature(code) => {
                write!(f, "RSA2 signature refused ({code}): forged or altered")
            }
            AnswerError::Field(name, None) => write!(f, "field {name} missing"),
            AnswerError::Field(name, Some(e)) => write!(f, "field {name} unreadable ({e:?})"),
        }
    }
}

impl<'a> Content<'a> {
    /// A string field that must be there.
    pub fn get(&self, name: &'static str) -> Result<&'a str, AnswerError> {
        match json::field(self.text, name) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(AnswerError::Field(name, None)),
            Err(e) => Err(AnswerError::Field(name, Some(e))),
        }
    }

    /// A string field that may be absent.
    pub fn opt(&self, name: &'static str) -> Result<Option<&'a str>, AnswerError> {
        json::field(self.text, name).map_err(|e| AnswerError::Field(name, Some(e)))
    }
}

/// The verifier of answers: Alipay's public key, pinned in the firmware.
pub struct Verifier {
    #[cfg(feature = "rsa")]
    key: paystate::signature::Rsa2PublicKey,
}

/// Alipay's public key as its console shows it (bare base64 SPKI); here a throwaway key.
#[cfg(feature = "rsa")]
const ALIPAY_PUBLIC_KEY: &str = include_str!("../data/alipay-public-key.txt");

impl Verifier {
    /// Parses the pinned key.
    #[cfg(feature = "rsa")]
    pub fn new() -> Result<Verifier, paystate::signature::KeyError> {
        let key = paystate::signature::Rsa2PublicKey::from_base64(ALIPAY_PUBLIC_KEY.trim())?;
        Ok(Verifier { key })
    }

    /// Without the `rsa` feature there is nothing to parse.
    #[cfg(not(feature = "rsa"))]
    pub fn new() -> Result<Verifier, core::convert::Infallible> {
        Ok(Verifier {})
    }

    /// What the transcript says about the check.
    pub const CHECK: &'static str = if cfg!(feature = "rsa") {
        "RSA2 ok"
    } else {
        "RSA2 not checked"
    };

    /// Checks `raw`, an answer to `method`, and returns its content.
    pub fn receive<'a>(&self, raw: &'a str, method: &str) -> Result<Content<'a>, AnswerError> {
        let (text, sign) = signed_parts(raw, method)?;
        #[cfg(feature = "rsa")]
        self.key
            .verify_base64(text.as_bytes(), sign)
            .map_err(|e| AnswerError::BadSignature(e.code()))?;
        #[cfg(not(feature = "rsa"))]
        let _ = sign;
        // The content must be a well-formed object before any field is trusted.
        json::member(text, "code").map_err(|_| AnswerError::Malformed)?;
        Ok(Content { text })
    }
}

/// The exact text of the `<method>_response` value of `raw` (what Alipay signs) and the
/// `sign` string beside it.
fn signed_parts<'a>(raw: &'a str, method: &str) -> Result<(&'a str, &'a str), AnswerError> {
    let mut key: heapless::String<64> = heapless::String::new();
    for part in method.split('.') {
        if !key.is_empty() {
            key.push('_').map_err(|_| AnswerError::Malformed)?;
        }
        key.push_str(part).map_err(|_| AnswerError::Malformed)?;
    }
    key.push_str("_response")
        .map_err(|_| AnswerError::Malformed)?;
    let text = match json::member(raw, &key) {
        Ok(Some(text)) => text,
        _ => return Err(AnswerError::Malformed),
    };
    let sign = match json::field(raw, "sign") {
        Ok(Some(sign)) => sign,
        _ => return Err(AnswerError::Malformed),
    };
    Ok((text, sign))
}
