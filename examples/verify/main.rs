//! `verify`: is this callback genuine, and if not, why (docs/spec.md §8).
//!
//! ```text
//! verify alipay --public-key KEY [--rule v1|v2]                      < form-urlencoded body
//! verify alipay-response (--public-key KEY | --alipay-cert CERT...) --method alipay.trade.query
//!                   [--aes-key BASE64]                           < raw JSON response
//! verify wechatpay --public-key KEY|CERT --timestamp T --nonce N --signature B64 --now NOW < body
//! verify stripe --secret whsec_... --header 't=...,v1=...' --now NOW [--tolerance 300] < body
//! verify hmac --secret S --timestamp T --signature HEX --now NOW [--tolerance 300]   < body
//! ```
//!
//! `KEY` is a file holding the key as PEM, DER, or Alipay's bare base64. The tool prints
//! exactly one JSON object on standard output — `{"valid":true,...}` or
//! `{"valid":false,"reason":"...","detail":"...",...}`, with the exact signed content it
//! computed — and exits 0 when valid, 1 when the signature or the time window fails, 2 for bad usage or
//! unreadable input (a key that does not load, a body that is not a well-formed form or
//! JSON response). A `charset=GBK` notification is verified over its GBK bytes (they show as
//! `\xNN` in the signed content); an encrypted response reports `"encrypted":true` and, with
//! `--aes-key`, the `decrypted_content`.
//!
//! Each scheme lives in its own file, gets the arguments after its name and the message's
//! reader, and returns a [`Verdict`]; this file only dispatches (in [`run`]) and holds the
//! helpers they share.

mod alipay;
mod hmac;
mod stripe;
#[cfg(feature = "wechatpay")]
mod wechatpay;

use std::collections::BTreeMap;
use std::io::Read;
use std::process::ExitCode;

use serde_json::{Map, Value};

const USAGE: &str = "\
usage:
  verify alipay --public-key KEY [--rule v1|v2]                      < form-urlencoded body
  verify alipay-response (--public-key KEY | --alipay-cert CERT...) --method alipay.trade.query
                  [--aes-key BASE64]                           < raw JSON response
  verify wechatpay --public-key KEY|CERT --timestamp T --nonce N --signature B64 --now NOW < body
  verify stripe --secret whsec_... --header 't=...,v1=...' --now NOW [--tolerance 300] < body
  verify hmac --secret S --timestamp T --signature HEX --now NOW [--tolerance 300]   < body

KEY is a file holding the key as PEM, DER, or Alipay's bare base64; for wechatpay, also an
X.509 platform certificate (PEM or DER). Certificate mode: --alipay-cert (repeatable) names
the Alipay public-key certificates held; the response's alipay_cert_sn picks one
(unknown_cert_sn: fetch the new certificate). --aes-key decrypts an encrypted response.
Exit status: 0 valid, 1 signature or window fails, 2 bad usage or unreadable input.";

/// The verdict of one run: the JSON object to print and the exit status.
pub struct Verdict {
    /// Printed as one line on standard output.
    pub json: Map<String, Value>,
    /// 0 valid, 1 signature or window fails, 2 bad usage or unreadable input.
    pub exit: u8,
}

impl Verdict {
    /// `{"valid":true, ...fields}`, exit 0.
    pub fn valid(fields: Vec<(&str, Value)>) -> Verdict {
        Verdict::with(true, fields, 0)
    }

    /// `{"valid":false,"reason":..,"detail":.., ...fields}`, exit 1: the message is not genuine.
    pub fn invalid(reason: &str, detail: String, fields: Vec<(&str, Value)>) -> Verdict {
        Verdict::refused(reason, detail, fields, 1)
    }

    /// The same with exit 2: the tool could not read its input or its arguments.
    pub fn unreadable(reason: &str, detail: String, fields: Vec<(&str, Value)>) -> Verdict {
        Verdict::refused(reason, detail, fields, 2)
    }

    fn refused(reason: &str, detail: String, fields: Vec<(&str, Value)>, exit: u8) -> Verdict {
        let mut all = vec![
            ("reason", Value::from(reason)),
            ("detail", Value::from(detail)),
        ];
        all.extend(fields);
        Verdict::with(false, all, exit)
    }

    fn with(valid: bool, fields: Vec<(&str, Value)>, exit: u8) -> Verdict {
        let mut json = Map::new();
        json.insert("valid".into(), Value::Bool(valid));
        for (k, v) in fields {
            json.insert(k.into(), v);
        }
        Verdict { json, exit }
    }
}

/// `--name value` / `--name=value` options from a fixed list, each at most once unless it is
/// repeatable.
pub struct Options(BTreeMap<&'static str, Vec<String>>);

impl Options {
    /// Parses `args` allowing only the names in `allowed` (with their `--`), each once.
    pub fn parse(args: &[String], allowed: &[&'static str]) -> Result<Options, String> {
        Options::parse_repeatable(args, allowed, &[])
    }

    /// Like [`Options::parse`]; the names in `repeatable` may be given more than once.
    pub fn parse_repeatable(
        args: &[String],
        allowed: &[&'static str],
        repeatable: &[&str],
    ) -> Result<Options, String> {
        let mut map: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
                _ => (arg.as_str(), None),
            };
            let name = *allowed
                .iter()
                .find(|a| **a == name)
                .ok_or_else(|| format!("unknown argument {arg:?}"))?;
            let value = match inline {
                Some(v) => v,
                None => args
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))?,
            };
            let values = map.entry(name).or_default();
            if !values.is_empty() && !repeatable.contains(&name) {
                return Err(format!("{name} given twice"));
            }
            values.push(value);
        }
        Ok(Options(map))
    }

    /// The value of an option, if given (the first, for a repeatable one).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.first()).map(String::as_str)
    }

    /// Every value of a repeatable option, in order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .get(name)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The value of a required option.
    pub fn require(&self, name: &str) -> Result<&str, String> {
        self.get(name).ok_or_else(|| format!("{name} is required"))
    }
}

/// The whole of the message input (standard input when run).
pub fn read_all(input: &mut dyn Read) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    Ok(bytes)
}

/// Runs one scheme on `args` (after the program name), reading the message from `input`.
pub fn run(args: &[String], input: &mut dyn Read) -> Verdict {
    match args.split_first() {
        Some((scheme, rest)) => match scheme.as_str() {
            "alipay" => alipay::notification(rest, input),
            "alipay-response" => alipay::response(rest, input),
            #[cfg(feature = "wechatpay")]
            "wechatpay" => wechatpay::run(rest, input),
            "stripe" => stripe::run(rest, input),
            "hmac" => hmac::run(rest, input),
            other => Verdict::unreadable("bad_usage", format!("unknown scheme {other:?}"), vec![]),
        },
        None => Verdict::unreadable("bad_usage", "no scheme given".into(), vec![]),
    }
}

/// The bytes of a key or certificate file.
pub fn read_file(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(
        args.first().map(String::as_str),
        Some("-h" | "--help" | "help")
    ) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let verdict = run(&args, &mut std::io::stdin().lock());
    if verdict.json.get("reason").and_then(Value::as_str) == Some("bad_usage") {
        eprintln!("{USAGE}");
    }
    println!("{}", Value::Object(verdict.json));
    ExitCode::from(verdict.exit)
}
