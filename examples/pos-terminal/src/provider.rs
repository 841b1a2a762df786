//! Alipay's synchronous answers: check the signature, then read what the terminal needs.

use core::fmt;

use paystate::alipay::response::{self, ResponseError, ResponseKind};

use crate::json::{self, JsonError};

/// The verified (or, without the `rsa` feature, merely extracted) business content of one
/// answer: the JSON text of its `<method>_response` value.
pub struct Content<'a> {
    text: &'a str,
}

/// Why an answer was refused before it reached the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerError {
    /// Not a signed response of the method asked, or its signature fails (the crate's check).
    Response(ResponseError),
    /// A signed `error_response`: the gateway refused the request.
    Gateway,
    /// A field the terminal needs is missing or not a plain string.
    Field(&'static str, Option<JsonError>),
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswerError::Response(ResponseError::Signature(e)) => {
                write!(
                    f,
                    "RSA2 signature refused ({}): forged or altered",
                    e.code()
                )
            }
            AnswerError::Response(e) => write!(f, "{} ({e})", e.code()),
            AnswerError::Gateway => f.write_str("the gateway refused the request"),
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

    /// Checks `raw`, an answer to `method`, and returns its signed content.
    pub fn receive<'a>(&self, raw: &'a str, method: &str) -> Result<Content<'a>, AnswerError> {
        #[cfg(feature = "rsa")]
        let signed = response::verify_response(raw, method, &self.key);
        // The build without RSA measures the engine alone: it finds the content, unchecked.
        #[cfg(not(feature = "rsa"))]
        let signed = response::signed_response(raw, method);
        let signed = signed.map_err(AnswerError::Response)?;
        if signed.kind != ResponseKind::Method {
            return Err(AnswerError::Gateway);
        }
        Ok(Content {
            text: signed.content,
        })
    }
}
