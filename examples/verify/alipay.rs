//! `verify alipay` (an asynchronous notification's form body, UTF-8 or GBK) and
//! `verify alipay-response` (a synchronous response's raw JSON, with a key or in certificate
//! mode, encrypted or not).

use paystate::alipay::cert::AlipayCertificate;
use paystate::alipay::content::{SignRule, SignedContent};
use paystate::alipay::encryption::AesKey;
use paystate::alipay::form::Form;
use paystate::alipay::notify::Notification;
use paystate::alipay::response::{
    ResponseError, ResponseKind, SignedResponse, signed_response, verify_response_with_certificates,
};
use paystate::signature::x509::Certificate;
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
    let charset = form.charset().name();
    let fields = || {
        vec![
            ("scheme", Value::from("alipay")),
            ("rule", Value::from(rule.name())),
            ("charset", Value::from(charset)),
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

/// How the response's signature is checked: a pinned key, or the held certificates.
enum Keys {
    Key(Rsa2PublicKey),
    Certificates(Vec<AlipayCertificate>),
}

/// Loads `--public-key KEY` or every `--alipay-cert CERT` (exactly one of the two).
fn response_keys(options: &Options) -> Result<Keys, Verdict> {
    let certs = options.get_all("--alipay-cert");
    match (options.get("--public-key"), certs.is_empty()) {
        (Some(_), false) => Err(Verdict::unreadable(
            "bad_usage",
            "give --public-key or --alipay-cert, not both".into(),
            vec![],
        )),
        (None, true) => Err(Verdict::unreadable(
            "bad_usage",
            "--public-key or --alipay-cert is required".into(),
            vec![],
        )),
        (Some(_), true) => public_key(options).map(Keys::Key),
        (None, false) => certs
            .into_iter()
            .map(|path| {
                let bytes = read_file(path)
                    .map_err(|e| Verdict::unreadable("unreadable_key", e, vec![]))?;
                let cert = Certificate::parse(&bytes).map_err(|e| {
                    Verdict::unreadable("bad_certificate", format!("{path}: {e}"), vec![])
                })?;
                AlipayCertificate::new(&cert)
                    .map_err(|e| Verdict::unreadable("bad_key", format!("{path}: {e}"), vec![]))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Keys::Certificates),
    }
}

/// Checks the signature of `found` (the response to `method` found in `raw`) with the key,
/// or with the held certificate its `alipay_cert_sn` names.
fn check<'a>(
    raw: &'a str,
    method: &str,
    found: SignedResponse<'a>,
    keys: &Keys,
) -> Result<SignedResponse<'a>, ResponseError> {
    match keys {
        Keys::Key(key) => found.verify_with(|content, sig| key.verify(content, sig)),
        Keys::Certificates(certs) => verify_response_with_certificates(raw, method, certs),
    }
}

/// `verify alipay-response (--public-key KEY | --alipay-cert CERT...) --method METHOD
/// [--aes-key BASE64] < raw JSON`
pub fn response(args: &[String], input: &mut dyn Read) -> Verdict {
    let options = match Options::parse_repeatable(
        args,
        &["--public-key", "--alipay-cert", "--method", "--aes-key"],
        &["--alipay-cert"],
    ) {
        Ok(o) => o,
        Err(e) => return Verdict::unreadable("bad_usage", e, vec![]),
    };
    let method = match options.require("--method") {
        Ok(m) => m.to_owned(),
        Err(e) => return Verdict::unreadable("bad_usage", e, vec![]),
    };
    let keys = match response_keys(&options) {
        Ok(k) => k,
        Err(verdict) => return verdict,
    };
    let aes_key = match options.get("--aes-key").map(AesKey::from_base64) {
        None => None,
        Some(Ok(key)) => Some(key),
        Some(Err(e)) => {
            return Verdict::unreadable("bad_aes_key", format!("--aes-key: {e}"), vec![]);
        }
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
    let mut fields = vec![
        scheme,
        method_field,
        ("response_key", Value::from(response_key)),
        ("signed_content", Value::from(found.content)),
        ("encrypted", Value::from(found.is_encrypted())),
    ];
    if let Keys::Certificates(_) = keys {
        fields.push(("alipay_cert_sn", Value::from(found.alipay_cert_sn)));
    }
    let verified = match check(&raw, &method, found, &keys) {
        Ok(v) => v,
        Err(ResponseError::Signature(e)) => return Verdict::invalid(e.code(), explain(&e), fields),
        Err(e @ ResponseError::UnknownCertSn { .. }) => {
            let held: Vec<String> = match &keys {
                Keys::Certificates(certs) => certs.iter().map(|c| c.sn().to_string()).collect(),
                Keys::Key(_) => vec![],
            };
            let detail = format!(
                "{e} (held: {}); download it with alipay.open.app.alipaycert.download and \
                 check it against Alipay's root certificate",
                held.join(", ")
            );
            return Verdict::invalid(e.code(), detail, fields);
        }
        Err(e) => return Verdict::invalid(e.code(), e.to_string(), fields),
    };
    match (&aes_key, verified.is_encrypted()) {
        (Some(key), true) => {
            let mut out = vec![0u8; verified.content.len()];
            match verified.decrypt(key, &mut out) {
                Ok(plain) => {
                    fields.push(("decrypted_content", Value::from(plain)));
                    Verdict::valid(fields)
                }
                Err(e) => Verdict::invalid(
                    e.code(),
                    format!("the signature is genuine, but {e}: check --aes-key"),
                    fields,
                ),
            }
        }
        (None, true) => {
            fields.push(("decrypted_content", Value::Null));
            fields.push((
                "note",
                Value::from("the content is encrypted: pass --aes-key to decrypt it"),
            ));
            Verdict::valid(fields)
        }
        (_, false) => Verdict::valid(fields),
    }
}
