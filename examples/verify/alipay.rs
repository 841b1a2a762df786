//! `verify alipay` (an asynchronous notification's form body) and `verify alipay-response`
//! (a synchronous response's raw JSON).

use paystate::alipay::content::{SignRule, SignedContent};
use paystate::alipay::form::Form;
use paystate::alipay::notify::Notification;
use paystate::alipay::response::{ResponseError, ResponseKind, signed_response};
use paystate::signature::{Rsa2PublicKey, SignatureError};
use serde_json::Value;

use std::io::Read;

use super::{Options, Verdict, read_all, read_file};

/// Loads the key named by `--public-key`, or the verdict that explains why it could not.
fn public_key(options: &Options) -> Result<Rsa2PublicKey, Verdict> {
    let path = options
        .require("--public-key")
        .map_err(|e| Verdict::unreadable("bad_usage", e, vec![]))?;
    let bytes = read_file(path).map_err(|e| Verdict::unreadable("unreadable_key", e, vec![]))?;
    Rsa2PublicKey::parse(&bytes)
        .map_err(|e| Verdict::unreadable("bad_key", format!("{path}: {e}"), vec![]))
}

/// Why a signature failed, with what usually causes it.
fn explain(e: &SignatureError) -> String {
    match e {
        SignatureError::Mismatch => format!(
            "{e}: check that the key is Alipay's public key for this application (支付宝公钥, \
             not the application's own public key), that the endpoint's rule is right, and \
             that the body is exactly as received (decoded once)"
        ),
        other => other.to_string(),
    }
}

/// `verify alipay --public-key KEY [--rule v1|v2] < body`
pub fn notification(args: &[String], input: &mut dyn Read) -> Verdict {
    let options = match Options::parse(args, &["--public-key", "--rule"]) {
        Ok(o) => o,
        Err(e) => return Verdict::unreadable("bad_usage", e, vec![]),
    };
    let rule = match options.get("--rule").map(SignRule::from_name) {
        None => SignRule::V1,
        Some(Some(rule)) => rule,
        Some(None) => {
            return Verdict::unreadable("bad_usage", "--rule must be v1 or v2".into(), vec![]);
        }
    };
    let key = match public_key(&options) {
        Ok(k) => k,
        Err(verdict) => return verdict,
    };
    let mut body = match read_all(input) {
        Ok(b) => b,
        Err(e) => return Verdict::unreadable("unreadable_input", e, vec![]),
    };
    // A form body never ends in a raw line break (it would be %0A): one added by `echo` or an
    // editor is not part of the message.
    if body.ends_with(b"\r\n") {
        body.truncate(body.len() - 2);
    } else if body.ends_with(b"\n") {
        body.truncate(body.len() - 1);
    }

    let scheme = ("scheme", Value::from("alipay"));
    let rule_field = ("rule", Value::from(rule.name()));
    let mut buf = vec![0u8; body.len()];
    let form = match Form::decode(&body, &mut buf) {
        Ok(f) => f,
        Err(e) => {
            return Verdict::unreadable(
                e.code(),
                format!("malformed body: {e}"),
                vec![scheme, rule_field, ("signed_content", Value::Null)],
            );
        }
    };
    let content = SignedContent::new(&form, rule).to_string();
    let fields = || {
        vec![
            ("scheme", Value::from("alipay")),
            ("rule", Value::from(rule.name())),
            ("signed_content", Value::from(content.clone())),
        ]
    };
    match Notification::verify(&form, rule, &key) {
        Ok(_) => Verdict::valid(fields()),
        Err(e) => {
            let mut detail = explain(&e);
            if e == SignatureError::Mismatch {
                let other = if rule == SignRule::V1 {
                    SignRule::V2
                } else {
                    SignRule::V1
                };
                if Notification::verify(&form, other, &key).is_ok() {
                    detail = format!(
                        "{e}: it is valid under rule {other}, not {rule} — this endpoint's \
                         notifications are signed under {other} (--rule {other})"
                    );
                }
            }
            Verdict::invalid(e.code(), detail, fields())
        }
    }
}

/// `verify alipay-response --public-key KEY --method METHOD < raw JSON`
pub fn response(args: &[String], input: &mut dyn Read) -> Verdict {
    let options = match Options::parse(args, &["--public-key", "--method"]) {
        Ok(o) => o,
        Err(e) => return Verdict::unreadable("bad_usage", e, vec![]),
    };
    let method = match options.require("--method") {
        Ok(m) => m.to_owned(),
        Err(e) => return Verdict::unreadable("bad_usage", e, vec![]),
    };
    let key = match public_key(&options) {
        Ok(k) => k,
        Err(verdict) => return verdict,
    };
    let raw = match read_all(input).map(String::from_utf8) {
        Ok(Ok(raw)) => raw,
        Ok(Err(_)) => {
            return Verdict::unreadable(
                "unreadable_input",
                "the response is not UTF-8 (only UTF-8 responses are supported)".into(),
                vec![],
            );
        }
        Err(e) => return Verdict::unreadable("unreadable_input", e, vec![]),
    };
    let scheme = ("scheme", Value::from("alipay-response"));
    let method_field = ("method", Value::from(method.clone()));
    let found = match signed_response(&raw, &method) {
        Ok(f) => f,
        Err(e) => {
            let detail = match e {
                ResponseError::MissingResponse => format!(
                    "{e}: no {}_response (is --method the method of the request?)",
                    method.replace('.', "_")
                ),
                _ => e.to_string(),
            };
            return Verdict::unreadable(
                e.code(),
                detail,
                vec![scheme, method_field, ("signed_content", Value::Null)],
            );
        }
    };
    let response_key = match found.kind {
        ResponseKind::Method => format!("{}_response", method.replace('.', "_")),
        ResponseKind::Error => "error_response".to_owned(),
    };
    let fields = vec![
        scheme,
        method_field,
        ("response_key", Value::from(response_key)),
        ("signed_content", Value::from(found.content)),
    ];
    match found.verify_with(|content, sig| key.verify(content, sig)) {
        Ok(_) => Verdict::valid(fields),
        Err(ResponseError::Signature(e)) => Verdict::invalid(e.code(), explain(&e), fields),
        Err(e) => Verdict::invalid(e.code(), e.to_string(), fields),
    }
}
