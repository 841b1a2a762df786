//! `verify stripe`: the `Stripe-Signature` header, HMAC-SHA256 over `"{t}.{body}"`.

use paystate::webhook::encode_hex;
use paystate::webhook::stripe::{self, SignatureHeader, StripeError};
use std::io::Read;

use serde_json::Value;

use super::hmac::{signed_inputs, trailing_newline_hint};
use super::{Options, Verdict};

/// `verify stripe --secret whsec_... --header 't=...,v1=...' --now NOW [--tolerance 300] < body`
pub fn run(args: &[String], input: &mut dyn Read) -> Verdict {
    let options = match Options::parse(args, &["--secret", "--header", "--now", "--tolerance"]) {
        Ok(o) => o,
        Err(e) => return Verdict::unreadable("bad_usage", e, vec![]),
    };
    let (secret, header) = match (options.require("--secret"), options.require("--header")) {
        (Ok(s), Ok(h)) => (s, h),
        (Err(e), _) | (_, Err(e)) => return Verdict::unreadable("bad_usage", e, vec![]),
    };
    let (now, tolerance, key, body) = match signed_inputs(&options, secret, input) {
        Ok(inputs) => inputs,
        Err(v) => return v,
    };

    let parsed = SignatureHeader::parse(header).ok();
    let fields = |extra: Vec<(&'static str, Value)>| {
        let mut f = vec![
            ("scheme", Value::from("stripe")),
            (
                "timestamp",
                parsed.map_or(Value::Null, |h| h.timestamp().as_secs().into()),
            ),
            (
                "v1_count",
                parsed.map_or(Value::Null, |h| h.v1_count().into()),
            ),
            ("now", Value::from(now.as_secs())),
            ("tolerance", Value::from(tolerance.as_secs())),
        ];
        f.extend(extra);
        f
    };
    match stripe::verify(&key, header, &body, now, tolerance) {
        Ok(v) => Verdict::valid(fields(vec![("matched_v1", Value::from(v.matched()))])),
        Err(e @ StripeError::Mismatch) => {
            let mut hex = [0u8; 64];
            let expected = parsed
                .and_then(|h| encode_hex(&stripe::sign(&key, h.timestamp(), &body), &mut hex))
                .unwrap_or("");
            let detail = trailing_newline_hint(
                &body,
                format!("{e}: check the endpoint's signing secret (whsec_..., the whole string)"),
            );
            Verdict::invalid(
                e.code(),
                detail,
                fields(vec![("expected_v1", Value::from(expected))]),
            )
        }
        Err(e) => Verdict::invalid(e.code(), e.to_string(), fields(vec![])),
    }
}
