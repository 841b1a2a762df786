//! Alipay's wire formats as the gateway writes and reads them: the signed content of a
//! request (rule V2) and of a notification or a browser return (rule V1), the JSON of a
//! synchronous answer, the times it writes, and the HTML of the cashier.
//!
//! Written independently of the `paystate` crate's own encoders (the simulator is what the
//! crate is checked against), except for `is_blank`, which is the definition of a blank value
//! in Alipay's SDKs (Java's `Character.isWhitespace`).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use paystate::Timestamp;
use paystate::alipay::content::is_blank;
use paystate::alipay::request::beijing_time;
use paystate::money::{Currency, Money};

/// The content Alipay signs: `key=value` pairs sorted by key (bytewise), joined by `&`,
/// leaving out `sign`, pairs whose key or value is blank, and `sign_type` when `drop_sign_type`
/// (rule V1: trade notifications and the browser's return; rule V2, requests, keeps it).
pub(crate) fn signed_content<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    drop_sign_type: bool,
) -> String {
    let mut sorted: Vec<(&str, &str)> = pairs
        .into_iter()
        .filter(|(k, v)| {
            !(is_blank(k.as_bytes())
                || is_blank(v.as_bytes())
                || *k == "sign"
                || (drop_sign_type && *k == "sign_type"))
        })
        .collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = String::new();
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Why a parameter string was refused before any check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParamsError {
    /// The same key twice (in the query, in the body, or in both): which value the signature
    /// covered is ambiguous.
    Duplicate(String),
}

/// Decodes `application/x-www-form-urlencoded` parameters from the query string and the body
/// (Alipay's SDKs put the common parameters in either), refusing a key given twice.
pub(crate) fn parse_params(
    query: Option<&str>,
    body: &[u8],
) -> Result<BTreeMap<String, String>, ParamsError> {
    let mut params = BTreeMap::new();
    let sources = query.map(str::as_bytes).into_iter().chain([body]);
    for source in sources {
        for (k, v) in form_urlencoded::parse(source) {
            if params.insert(k.to_string(), v.to_string()).is_some() {
                return Err(ParamsError::Duplicate(k.into_owned()));
            }
        }
    }
    Ok(params)
}

/// The first value of `key` in the query string or the body, read leniently (duplicates
/// allowed): to know what a refused request was.
pub(crate) fn first_value(query: Option<&str>, body: &[u8], key: &str) -> Option<String> {
    query
        .map(str::as_bytes)
        .into_iter()
        .chain([body])
        .flat_map(form_urlencoded::parse)
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Encodes pairs as a form body (space as `+`, everything but `A-Za-z0-9*-._` percent-encoded).
pub(crate) fn form_body<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Writes `text` as a JSON string, quotes included.
pub(crate) fn json_str(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A flat JSON object of string fields, in the order given (Alipay writes `code` and `msg`
/// first): the exact text the answer's signature covers.
pub(crate) fn json_object(fields: &[(&str, String)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(&mut out, k);
        out.push(':');
        json_str(&mut out, v);
    }
    out.push('}');
    out
}

/// `alipay.trade.query` → `alipay_trade_query_response`.
pub(crate) fn response_key(method: &str) -> String {
    format!("{}_response", method.replace('.', "_"))
}

/// A whole answer: `{"<key>":<object>,"sign":"<base64>"}`, or without `sign` when unsigned.
pub(crate) fn response_body(key: &str, object: &str, sign: Option<&str>) -> String {
    let mut out = String::from("{");
    json_str(&mut out, key);
    out.push(':');
    out.push_str(object);
    if let Some(sign) = sign {
        out.push_str(",\"sign\":");
        json_str(&mut out, sign);
    }
    out.push('}');
    out
}

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `yyyy-MM-dd HH:mm:ss` in Beijing time, Alipay's format for `gmt_*`, `notify_time` and
/// `timestamp`.
pub(crate) fn beijing(millis: u64) -> String {
    beijing_time(Timestamp::from_secs(millis / 1000))
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// `yyyy-MM-dd HH:mm:ss.SSS`, the format of a refund notification's `gmt_refund`.
pub(crate) fn beijing_millis(millis: u64) -> String {
    format!("{}.{:03}", beijing(millis), millis % 1000)
}

/// Whether `text` is a `yyyy-MM-dd HH:mm:ss` date and time that exists (the format Alipay
/// requires of `timestamp`).
pub(crate) fn is_alipay_timestamp(text: &str) -> bool {
    let b = text.as_bytes();
    let shape = b.len() == 19
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b' ',
            13 | 16 => c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return false;
    }
    let num = |from: usize, to: usize| {
        text.get(from..to)
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    };
    let (year, month, day) = (num(0, 4), num(5, 7), num(8, 10));
    let (hour, minute, second) = (num(11, 13), num(14, 16), num(17, 19));
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    };
    year >= 1970 && (1..=days).contains(&day) && hour < 24 && minute < 60 && second < 60
}

/// An amount in fen as Alipay writes it (`"99.90"`).
pub(crate) fn yuan(fen: u64) -> String {
    Money::from_minor(fen, Currency::CNY).to_string()
}

/// The largest single amount Alipay accepts, in fen: ¥100,000,000.00.
pub(crate) const MAX_FEN: u64 = 10_000_000_000;

/// Reads an amount field of `biz_content`: a decimal string in yuan (or a JSON number, which
/// Alipay accepts too), at most two decimals, 0.01 to 100,000,000. Never through a float.
pub(crate) fn amount_fen(value: &serde_json::Value) -> Option<u64> {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let fen = Money::parse(&text, Currency::CNY).ok()?.minor_units();
    (1..=MAX_FEN).contains(&fen).then_some(fen)
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A small HTML page.
pub(crate) fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <title>{}</title></head>\n<body>\n{body}\n</body></html>\n",
        html_escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_rules() {
        let pairs = [
            ("sign_type", "RSA2"),
            ("b", "2"),
            ("sign", "xyz"),
            ("a", "1"),
            ("empty", ""),
            ("blank", " \t"),
            ("ideographic", "\u{3000}"),
        ];
        assert_eq!(signed_content(pairs, true), "a=1&b=2");
        assert_eq!(signed_content(pairs, false), "a=1&b=2&sign_type=RSA2");
    }

    #[test]
    fn params_refuse_duplicates_across_query_and_body() {
        let p = parse_params(Some("a=1&b=x+y"), b"c=%E8%AF%AD").unwrap();
        assert_eq!(p.get("b").map(String::as_str), Some("x y"));
        assert_eq!(p.get("c").map(String::as_str), Some("语"));
        assert_eq!(
            parse_params(Some("a=1"), b"a=2"),
            Err(ParamsError::Duplicate("a".into()))
        );
        assert_eq!(
            parse_params(None, b"a=1&a=1"),
            Err(ParamsError::Duplicate("a".into()))
        );
    }

    #[test]
    fn timestamps() {
        assert!(is_alipay_timestamp("2024-02-29 23:59:59"));
        assert!(!is_alipay_timestamp("2023-02-29 00:00:00"));
        assert!(!is_alipay_timestamp("2023-13-01 00:00:00"));
        assert!(!is_alipay_timestamp("2023-01-01 24:00:00"));
        assert!(!is_alipay_timestamp("2023-01-01T00:00:00"));
        assert!(!is_alipay_timestamp("2023-01-01 00:00:0"));
        assert!(!is_alipay_timestamp("２０２３-01-01 00:00:00"));
        assert!(!is_alipay_timestamp(""));
    }

    #[test]
    fn json_text() {
        let obj = json_object(&[("code", "10000".into()), ("sub", "a\"b\\c\n语/".into())]);
        assert_eq!(obj, r#"{"code":"10000","sub":"a\"b\\c\n语/"}"#);
        assert_eq!(
            response_body(&response_key("alipay.trade.query"), "{}", Some("c2ln")),
            r#"{"alipay_trade_query_response":{},"sign":"c2ln"}"#
        );
    }

    #[test]
    fn amounts() {
        use serde_json::json;
        assert_eq!(amount_fen(&json!("99.9")), Some(9990));
        assert_eq!(amount_fen(&json!(88.88)), Some(8888));
        assert_eq!(amount_fen(&json!(100)), Some(10000));
        assert_eq!(amount_fen(&json!("0.00")), None);
        assert_eq!(amount_fen(&json!("0.001")), None);
        assert_eq!(amount_fen(&json!("-1")), None);
        assert_eq!(amount_fen(&json!("100000000.01")), None);
        assert_eq!(amount_fen(&json!(true)), None);
        assert_eq!(yuan(9990), "99.90");
    }

    #[test]
    fn times() {
        assert_eq!(beijing(0), "1970-01-01 08:00:00");
        assert_eq!(beijing_millis(1_565_855_782_042), "2019-08-15 15:56:22.042");
    }
}
