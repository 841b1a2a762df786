//! `verify hmac`: the generic HMAC-SHA256 scheme, `hex(HMAC-SHA256(secret, "{timestamp}|{body}"))`.

use paystate::Timestamp;
use paystate::webhook::hmac::{self, HmacError, HmacKey};
use paystate::webhook::{Duration, encode_hex};
use std::io::Read;

use serde_json::Value;

use super::{Options, Verdict, read_all};

/// `--now` and `--tolerance`, shared with `verify stripe`.
fn clock(options: &Options) -> Result<(Timestamp, Duration), Verdict> {
    let number = |name: &str, text: &str| {
        text.parse::<u64>().map_err(|_| {
            Verdict::unreadable(
                "bad_usage",
                format!("{name} must be a whole number of seconds, got {text:?}"),
                vec![],
            )
        })
    };
    let now = options
        .require("--now")
        .map_err(|e| Verdict::unreadable("bad_usage", e, vec![]))?;
    let now = Timestamp::from_secs(number("--now", now)?);
    let tolerance = match options.get("--tolerance") {
        Some(t) => Duration::from_secs(number("--tolerance", t)?),
        None => Duration::DEFAULT_TOLERANCE,
    };
    Ok((now, tolerance))
}

/// What both HMAC schemes read besides their signature: `--now` and `--tolerance`, the
/// secret as a key, and the body.
pub fn signed_inputs(
    options: &Options,
    secret: &str,
    input: &mut dyn Read,
) -> Result<(Timestamp, Duration, HmacKey, Vec<u8>), Verdict> {
    let (now, tolerance) = clock(options)?;
    let key = HmacKey::new(secret.as_bytes())
        .map_err(|e| Verdict::unreadable("bad_usage", format!("--secret: {e}"), vec![]))?;
    let body = read_all(input).map_err(|e| Verdict::unreadable("unreadable_input", e, vec![]))?;
    Ok((now, tolerance, key, body))
}

/// A hint for a body that fails only because of a line break at its end.
pub fn trailing_newline_hint(body: &[u8], detail: String) -> String {
    if body.ends_with(b"\n") {
        format!(
            "{detail} (the body ends with a line break: if `echo` or an editor added it, it is \
             not part of the signed body; pipe the exact bytes)"
        )
    } else {
        detail
    }
}

/// `verify hmac --secret S --timestamp T --signature HEX --now NOW [--tolerance 300] < body`
pub fn run(args: &[String], input: &mut dyn Read) -> Verdict {
    let options = match Options::parse(
        args,
        &[
            "--secret",
            "--timestamp",
            "--signature",
            "--now",
            "--tolerance",
        ],
    ) {
        Ok(o) => o,
        Err(e) => return Verdict::unreadable("bad_usage", e, vec![]),
    };
    let required = ["--secret", "--timestamp", "--signature"].map(|n| options.require(n));
    let [secret, timestamp, signature] = match required {
        [Ok(s), Ok(t), Ok(g)] => [s, t, g],
        other => {
            let e = other.into_iter().find_map(Result::err).unwrap_or_default();
            return Verdict::unreadable("bad_usage", e, vec![]);
        }
    };
    let (now, tolerance, key, body) = match signed_inputs(&options, secret, input) {
        Ok(inputs) => inputs,
        Err(v) => return v,
    };

    let fields = |extra: Vec<(&'static str, Value)>| {
        let mut f = vec![
            ("scheme", Value::from("hmac")),
            ("timestamp", Value::from(timestamp)),
            ("now", Value::from(now.as_secs())),
            ("tolerance", Value::from(tolerance.as_secs())),
        ];
        f.extend(extra);
        f
    };
    match hmac::verify(&key, timestamp, signature, &body, now, tolerance) {
        Ok(_) => Verdict::valid(fields(vec![])),
        Err(e @ HmacError::Mismatch) => {
            // The secret's owner runs this tool: show what the signature should have been.
            let ts = timestamp.parse().map(Timestamp::from_secs).unwrap_or(now);
            let mut hex = [0u8; 64];
            let expected = encode_hex(&hmac::sign(&key, ts, &body), &mut hex).unwrap_or("");
            let detail = trailing_newline_hint(&body, e.to_string());
            Verdict::invalid(
                e.code(),
                detail,
                fields(vec![("expected_signature", Value::from(expected))]),
            )
        }
        Err(e) => Verdict::invalid(e.code(), e.to_string(), fields(vec![])),
    }
}
