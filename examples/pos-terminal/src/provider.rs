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
    key: paystate::signature::FixedRsa2048,
}

/// Alipay's public key, pinned at build time: `build.rs` takes the modulus and exponent out
/// of `data/alipay-public-key.txt` (as Alipay's console shows it; here a throwaway key).
#[cfg(feature = "rsa")]
mod pinned {
    include!(concat!(env!("OUT_DIR"), "/alipay_key.rs"));
}

impl Verifier {
    /// Parses the pinned key.
    #[cfg(feature = "rsa")]
    pub fn new() -> Result<Verifier, paystate::signature::KeyError> {
        let key = paystate::signature::FixedRsa2048::from_modulus_and_exponent(
            &pinned::MODULUS,
            &pinned::EXPONENT,
        )?;
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
        // The signature through the crate's verification seam with the heap-free key.
        #[cfg(feature = "rsa")]
        let signed = paystate::alipay::response::verify_response(raw, request.method(), &self.key);
        // The build without RSA measures the engine alone: it finds the content, unchecked.
        #[cfg(not(feature = "rsa"))]
        let signed = paystate::alipay::response::signed_response(raw, request.method());
        let signed = signed.map_err(|e| Refused(AnswerError::Response(e)))?;
        // This merchant has no content encryption: an encrypted answer is refused, as
        // `verify_answer` refuses it.
        if signed.is_encrypted() {
            return Err(Refused(AnswerError::Encrypted));
        }
        // The verified content, parsed as the answer to `request`.
        paystate::provider::alipay::verify_answer_content(signed.content, signed.kind, request)
            .map_err(Refused)
    }
}
