//! Alipay's synchronous answers, through the crate's `provider::alipay`: the signature is
//! checked and the signed content parsed by `verify_answer`, and the answer is mapped to an
//! engine input by `to_input` against the payment's facts. The terminal knows none of
//! Alipay's rules itself.

use core::fmt;

use paystate::alipay::response::ResponseError;
use paystate::provider::Verified;
use paystate::provider::alipay::{Answer, AnswerError, Request};

/// Why an answer was refused before it reached the mapping.
pub struct Refused(AnswerError);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            AnswerError::Response(ResponseError::Signature(e)) => {
                write!(
                    f,
                    "RSA2 signature refused ({}): forged or altered",
                    e.code()
                )
            }
            // The one refusal whose detail the transcript shows; every other one is its code
            // (the crate's sentences would cost the firmware flash for lines never printed).
            AnswerError::Response(ResponseError::Malformed { at }) => {
                write!(f, "malformed_json (malformed JSON at byte {at})")
            }
            e => f.write_str(e.code()),
        }
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

    /// Checks `raw`, the answer to `request`, and parses its signed content.
    pub fn receive<'a, 'q>(
        &self,
        raw: &'a str,
        request: Request<'q>,
    ) -> Result<Verified<Answer<'a, 'q>>, Refused> {
        #[cfg(feature = "rsa")]
        let answer = paystate::provider::alipay::verify_answer(raw, request, &self.key);
        // The build without RSA measures the engine alone: it parses the content, unchecked.
        #[cfg(not(feature = "rsa"))]
        let answer = paystate::alipay::response::signed_response(raw, request.method())
            .map_err(AnswerError::Response)
            .and_then(|signed| {
                paystate::provider::alipay::verify_answer_content(
                    signed.content,
                    signed.kind,
                    request,
                )
            });
        answer.map_err(Refused)
    }
}
