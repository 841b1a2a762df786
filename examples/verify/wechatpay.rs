//! `verify wechatpay`: SHA256withRSA over `"{timestamp}\n{nonce}\n{body}\n"` with a platform key
//! or certificate, the two-sided 300 s window and the nonce through a replay guard.

use paystate::Timestamp;
use paystate::guard::ReplayGuard;
use paystate::signature::Rsa2PublicKey;
use paystate::signature::SignatureError;
use paystate::signature::x509::{Certificate, CertificateError};
use paystate::webhook::wechatpay::{self, Headers, PlatformKey, WechatError};
use paystate::webhook::{Duration, check_window};
use std::io::Read;

use serde_json::Value;

use super::hmac::trailing_newline_hint;
use super::{Options, Verdict, read_all, read_file};

/// The id a bare public key is filed under here: the tool checks one key, so `Wechatpay-Serial`
/// plays no part in it.
const BARE_KEY_ID: &str = "key-given-on-the-command-line";

/// What the output says about the key: a certificate's serial and validity.
type KeyInfo = Vec<(&'static str, Value)>;

/// Loads `--public-key`: a certificate (PEM or DER) or a bare public key (PEM, DER, base64).
fn platform_key(path: &str) -> Result<(PlatformKey, KeyInfo), Verdict> {
    let bytes = read_file(path).map_err(|e| Verdict::unreadable("unreadable_key", e, vec![]))?;
    let bad_key = |e: String| Verdict::unreadable("bad_key", format!("{path}: {e}"), vec![]);
    match Certificate::parse(&bytes) {
        Ok(cert) => {
            let key = PlatformKey::from_certificate(&cert).map_err(|e| bad_key(e.to_string()))?;
            let info = vec![
                ("serial", Value::from(cert.serial_hex().as_str())),
                (
                    "certificate_not_before",
                    Value::from(cert.not_before().as_secs()),
                ),
                (
                    "certificate_not_after",
                    Value::from(cert.not_after().as_secs()),
                ),
            ];
            Ok((key, info))
        }
        // A PEM block that is not a certificate, or bytes that are not one: try a bare key.
        Err(cert_error) => match Rsa2PublicKey::parse(&bytes) {
            Ok(key) => {
                let key = PlatformKey::from_public_key(BARE_KEY_ID, key)
                    .map_err(|e| bad_key(e.to_string()))?;
                Ok((key, vec![]))
            }
            Err(key_error) => Err(bad_key(match cert_error {
                CertificateError::NotACertificate | CertificateError::InvalidDer => {
                    key_error.to_string()
                }
                other => other.to_string(),
            })),
        },
    }
}

/// `verify wechatpay --public-key KEY|CERT --timestamp T --nonce N --signature B64 --now NOW < body`
pub fn run(args: &[String], input: &mut dyn Read) -> Verdict {
    let options = match Options::parse(
        args,
        &[
            "--public-key",
            "--timestamp",
            "--nonce",
            "--signature",
            "--now",
        ],
    ) {
        Ok(o) => o,
        Err(e) => return Verdict::unreadable("bad_usage", e, vec![]),
    };
    let required = [
        "--public-key",
        "--timestamp",
        "--nonce",
        "--signature",
        "--now",
    ]
    .map(|n| options.require(n));
    let [path, timestamp, nonce, signature, now] = match required {
        [Ok(p), Ok(t), Ok(n), Ok(s), Ok(w)] => [p, t, n, s, w],
        other => {
            let e = other.into_iter().find_map(Result::err).unwrap_or_default();
            return Verdict::unreadable("bad_usage", e, vec![]);
        }
    };
    let Ok(now) = now.parse::<u64>().map(Timestamp::from_secs) else {
        return Verdict::unreadable(
            "bad_usage",
            format!("--now must be a whole number of seconds, got {now:?}"),
            vec![],
        );
    };
    let (key, key_info) = match platform_key(path) {
        Ok(k) => k,
        Err(v) => return v,
    };
    let body = match read_all(input) {
        Ok(b) => b,
        Err(e) => return Verdict::unreadable("unreadable_input", e, vec![]),
    };

    let headers = Headers {
        timestamp,
        nonce,
        serial: key.id(),
        signature,
    };
    let mut signed = format!("{timestamp}\n{nonce}\n").into_bytes();
    signed.extend_from_slice(&body);
    signed.push(b'\n');
    let fields = || {
        let mut f = vec![
            ("scheme", Value::from("wechatpay")),
            ("timestamp", Value::from(timestamp)),
            ("nonce", Value::from(nonce)),
            ("now", Value::from(now.as_secs())),
            (
                "signed_content",
                Value::from(String::from_utf8_lossy(&signed)),
            ),
        ];
        f.extend(key_info.clone());
        f
    };
    // A fresh guard with WeChat Pay's 300 s: the window, then the signature, then the nonce.
    let mut guard = ReplayGuard::<1>::new();
    match wechatpay::verify(&headers, &body, std::slice::from_ref(&key), &mut guard, now) {
        Ok(_) => Verdict::valid(fields()),
        Err(e @ WechatError::Signature(SignatureError::Mismatch)) => {
            let detail = trailing_newline_hint(
                &body,
                format!(
                    "{e}: check that the key is the platform certificate or platform public key \
                     that Wechatpay-Serial names (not the merchant's own), and that the body is \
                     exactly as received"
                ),
            );
            Verdict::invalid(e.code(), detail, fields())
        }
        Err(e) => {
            // The guard says only "stale" or "from_future"; say by how much.
            let window = timestamp.parse().ok().and_then(|ts| {
                check_window(Timestamp::from_secs(ts), now, Duration::DEFAULT_TOLERANCE).err()
            });
            let detail = match (e, window) {
                (WechatError::Replay(_), Some(w)) => w.to_string(),
                _ => e.to_string(),
            };
            Verdict::invalid(e.code(), detail, fields())
        }
    }
}
