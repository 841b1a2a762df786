//! Signed requests to the Alipay gateway: `alipay.trade.precreate`, `page.pay`, `wap.pay`,
//! `query`, `refund`, `fastpay.refund.query`, `close` and `cancel`.
//!
//! This module builds the request; the host sends it. Server-to-server methods: `POST`
//! [`SignedRequest::body`] (content type `application/x-www-form-urlencoded;charset=utf-8`) to
//! the gateway, and check the answer with [`verify_response`](super::response::verify_response)
//! for the same method. Browser methods (`page.pay` on a computer, `wap.pay` on a phone):
//! redirect the customer's browser to [`SignedRequest::url`], a `GET` of the gateway with
//! every parameter, `sign` included (what the SDKs' `pageExecute(.., "GET")` builds). Amounts
//! come from [`Money`] and are formatted exactly (`"99.90"`), never through a float. The time
//! is passed in by the host, as everywhere in this crate.
//!
//! The signed content follows rule V2: every common and business parameter except `sign`,
//! keys sorted bytewise, `sign_type=RSA2` included. Parameters whose value is
//! [blank](super::content::is_blank) (empty or only whitespace) are left out of the content
//! and of the request, as Alipay's SDKs leave them out. In certificate mode
//! ([`RequestSigner::with_cert_mode`]) `app_cert_sn` and `alipay_root_cert_sn` are sent and
//! signed like any other parameter.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use crate::money::{Currency, Money};
use crate::signature::{Rsa2PrivateKey, SignatureError};
use crate::time::Timestamp;

use super::content::{SignRule, SignedContent, is_blank};
use super::form::{Field, encode_pairs};

/// The longest `out_trade_no` / `out_request_no` Alipay accepts, in bytes.
pub const MAX_ORDER_ID_LEN: usize = 64;

/// The longest `subject` Alipay accepts, in bytes.
pub const MAX_SUBJECT_LEN: usize = 256;

/// The longest `quit_url` accepted, in bytes (Alipay's limit for the field).
pub const MAX_URL_LEN: usize = 400;

/// The largest single amount Alipay accepts: ¥100,000,000.00.
pub const MAX_AMOUNT: Money = Money::from_minor(10_000_000_000, Currency::CNY);

/// Alipay's production gateway, the default of [`RequestSigner`].
pub const GATEWAY: &str = "https://openapi.alipay.com/gateway.do";

/// One trade request. The merchant's ids are its own: `out_trade_no` is the order id the
/// payment is stored under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TradeRequest<'a> {
    /// `alipay.trade.precreate`: create a trade and get a QR code for the customer to scan.
    Precreate {
        /// The merchant's order id.
        out_trade_no: &'a str,
        /// The amount, in CNY.
        total_amount: Money,
        /// What is bought, shown to the customer.
        subject: &'a str,
        /// When Alipay should close the trade unpaid (the payment's deadline), if any.
        time_expire: Option<Timestamp>,
    },
    /// `alipay.trade.page.pay`: the cashier page on a computer. Send the customer's browser to
    /// [`SignedRequest::url`]; Alipay notifies the `notify_url` and sends the browser back to
    /// the `return_url` ([`RequestSigner::with_return_url`]).
    PagePay {
        /// The merchant's order id.
        out_trade_no: &'a str,
        /// The amount, in CNY.
        total_amount: Money,
        /// What is bought, shown to the customer.
        subject: &'a str,
        /// When Alipay should close the trade unpaid (the payment's deadline), if any.
        time_expire: Option<Timestamp>,
    },
    /// `alipay.trade.wap.pay`: the cashier in a phone's browser (or the Alipay app). Send the
    /// browser to [`SignedRequest::url`], like [`TradeRequest::PagePay`].
    WapPay {
        /// The merchant's order id.
        out_trade_no: &'a str,
        /// The amount, in CNY.
        total_amount: Money,
        /// What is bought, shown to the customer.
        subject: &'a str,
        /// When Alipay should close the trade unpaid (the payment's deadline), if any.
        time_expire: Option<Timestamp>,
        /// Where the browser goes when the customer leaves the cashier unpaid, if anywhere.
        quit_url: Option<&'a str>,
    },
    /// `alipay.trade.query`: ask the trade's status (after a missing notification, before
    /// acting on a timeout).
    Query {
        /// The merchant's order id.
        out_trade_no: &'a str,
    },
    /// `alipay.trade.refund`: return (part of) a captured amount.
    Refund {
        /// The merchant's order id.
        out_trade_no: &'a str,
        /// The amount to return, in CNY.
        refund_amount: Money,
        /// The merchant's id of this refund: the idempotency key Alipay uses, and the
        /// [`RefundId`](crate::RefundId) the confirmed refund is fed back with.
        out_request_no: &'a str,
    },
    /// `alipay.trade.fastpay.refund.query`: ask whether a refund went through (after a
    /// `refund` whose answer was lost or said to retry). Alipay answers `refund_status` =
    /// `REFUND_SUCCESS` for a refund it made; an answer without it means not (yet) refunded.
    RefundQuery {
        /// The merchant's order id.
        out_trade_no: &'a str,
        /// The id of the refund, as sent with `refund`.
        out_request_no: &'a str,
    },
    /// `alipay.trade.close`: close an unpaid trade (the engine's `close_trade` effect).
    Close {
        /// The merchant's order id.
        out_trade_no: &'a str,
    },
    /// `alipay.trade.cancel`: cancel a trade; a paid one is refunded by Alipay (for a
    /// payment whose outcome is unknown, e.g. a POS timeout).
    Cancel {
        /// The merchant's order id.
        out_trade_no: &'a str,
    },
}

impl TradeRequest<'_> {
    /// The method name (`"alipay.trade.query"`): pass it to
    /// [`verify_response`](super::response::verify_response) with the answer.
    pub const fn method(&self) -> &'static str {
        match self {
            TradeRequest::Precreate { .. } => "alipay.trade.precreate",
            TradeRequest::PagePay { .. } => "alipay.trade.page.pay",
            TradeRequest::WapPay { .. } => "alipay.trade.wap.pay",
            TradeRequest::RefundQuery { .. } => "alipay.trade.fastpay.refund.query",
            TradeRequest::Query { .. } => "alipay.trade.query",
            TradeRequest::Refund { .. } => "alipay.trade.refund",
            TradeRequest::Close { .. } => "alipay.trade.close",
            TradeRequest::Cancel { .. } => "alipay.trade.cancel",
        }
    }
}

/// Why a request could not be built. A bug or a configuration error in the host: nothing was
/// sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RequestError {
    /// A text field is blank (empty or only whitespace), too long, or holds control
    /// characters.
    InvalidField {
        /// Its name (`"out_trade_no"`).
        field: &'static str,
    },
    /// The amount is not in CNY.
    UnsupportedCurrency {
        /// Its currency.
        currency: Currency,
    },
    /// The amount is zero or above [`MAX_AMOUNT`].
    InvalidAmount {
        /// Its name (`"total_amount"`).
        field: &'static str,
    },
    /// A timestamp past the year 9999 (Beijing time).
    TimestampOutOfRange,
    /// Signing failed.
    Signature(SignatureError),
}

impl RequestError {
    /// A short stable code for logs (`"invalid_field"`).
    pub const fn code(&self) -> &'static str {
        match self {
            RequestError::InvalidField { .. } => "invalid_field",
            RequestError::UnsupportedCurrency { .. } => "unsupported_currency",
            RequestError::InvalidAmount { .. } => "invalid_amount",
            RequestError::TimestampOutOfRange => "timestamp_out_of_range",
            RequestError::Signature(e) => e.code(),
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::InvalidField { field } => {
                write!(f, "{field} is blank, too long or has control characters")
            }
            RequestError::UnsupportedCurrency { currency } => {
                write!(f, "Alipay trade amounts are in CNY, not {currency}")
            }
            RequestError::InvalidAmount { field } => {
                write!(f, "{field} must be between 0.01 and {MAX_AMOUNT} CNY")
            }
            RequestError::TimestampOutOfRange => f.write_str("timestamp past the year 9999"),
            RequestError::Signature(e) => write!(f, "signing failed: {e}"),
        }
    }
}

impl core::error::Error for RequestError {}

/// A signed request, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    method: &'static str,
    body: String,
    signed_content: String,
    gateway: String,
}

impl SignedRequest {
    /// The method name: verify the answer with it.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The form-encoded body to `POST` to the gateway (every parameter, `sign` included).
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The gateway URL the request goes to (the signer's).
    pub fn gateway(&self) -> &str {
        &self.gateway
    }

    /// The request as one `GET` URL: the gateway and every parameter, `sign` included. For
    /// `page.pay` and `wap.pay`, redirect the customer's browser here (HTTP 302, or a link).
    pub fn url(&self) -> String {
        let sep = if self.gateway.contains('?') { '&' } else { '?' };
        let mut url = String::with_capacity(
            self.gateway
                .len()
                .saturating_add(self.body.len())
                .saturating_add(1),
        );
        url.push_str(&self.gateway);
        url.push(sep);
        url.push_str(&self.body);
        url
    }

    /// The exact content that was signed (for logs and for comparing with Alipay's
    /// signature-check tool).
    pub fn signed_content(&self) -> &str {
        &self.signed_content
    }
}

/// The merchant's application: signs [`TradeRequest`]s with its private key. It owns its
/// configuration and shares the key (an [`Arc`]), so it is cheap to clone and can live in a
/// server's state for the life of the process.
///
/// ```
/// use paystate::alipay::request::{RequestSigner, TradeRequest};
/// use paystate::signature::Rsa2PrivateKey;
/// use paystate::{Currency, Money, Timestamp};
///
/// # let pem = include_str!("../../tests/data/keys/app2048.pkcs8.pem");
/// let key = Rsa2PrivateKey::from_pem(pem)?;
/// let signer = RequestSigner::new("2021000000000000", key)
///     .with_notify_url("https://shop.example/alipay/notify")
///     .with_return_url("https://shop.example/orders/42");
/// let request = TradeRequest::Precreate {
///     out_trade_no: "order-42",
///     total_amount: Money::parse("99.9", Currency::CNY)?,
///     subject: "Green tea, 500 g",
///     time_expire: None,
/// };
/// let signed = signer.sign(&request, Timestamp::from_secs(1_700_000_000))?;
/// assert!(signed.signed_content().starts_with(
///     r#"app_id=2021000000000000&biz_content={"out_trade_no":"order-42","total_amount":"99.90","subject":"Green tea, 500 g"}&charset=utf-8"#));
/// assert!(signed.signed_content().contains("&timestamp=2023-11-15 06:13:20&version=1.0"));
/// assert!(signed.body().contains("&sign="));
///
/// // The computer cashier: send the browser to a signed GET of the gateway.
/// let page = TradeRequest::PagePay {
///     out_trade_no: "order-42",
///     total_amount: Money::parse("99.9", Currency::CNY)?,
///     subject: "Green tea, 500 g",
///     time_expire: None,
/// };
/// let url = signer.sign(&page, Timestamp::from_secs(1_700_000_000))?.url();
/// assert!(url.starts_with("https://openapi.alipay.com/gateway.do?app_id=2021000000000000&"));
/// assert!(url.contains("&method=alipay.trade.page.pay&") && url.contains("&sign="));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RequestSigner {
    app_id: String,
    key: Arc<Rsa2PrivateKey>,
    gateway: String,
    notify_url: Option<String>,
    return_url: Option<String>,
    app_auth_token: Option<String>,
    cert_mode: Option<(String, String)>,
}

fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), RequestError> {
    if is_blank(text.as_bytes()) || text.len() > max || text.chars().any(char::is_control) {
        Err(RequestError::InvalidField { field })
    } else {
        Ok(())
    }
}

fn check_amount(field: &'static str, amount: Money) -> Result<(), RequestError> {
    if amount.currency() != Currency::CNY {
        return Err(RequestError::UnsupportedCurrency {
            currency: amount.currency(),
        });
    }
    if amount.is_zero() || amount.minor_units() > MAX_AMOUNT.minor_units() {
        return Err(RequestError::InvalidAmount { field });
    }
    Ok(())
}

/// Writes `text` as a JSON string (quotes included).
fn json_string(out: &mut String, text: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in text.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            c if u32::from(c) < 0x20 => write!(out, "\\u{:04x}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// `yyyy-MM-dd HH:mm:ss` in Beijing time (UTC+8, no daylight saving), Alipay's format for
/// `timestamp` and `time_expire`.
#[allow(
    clippy::arithmetic_side_effects,
    reason = "days is checked to be below 2_932_897 first, which keeps every intermediate \
              value of the civil-date algorithm far inside i64"
)]
pub fn beijing_time(t: Timestamp) -> Result<heapless::String<19>, RequestError> {
    let secs = t
        .as_secs()
        .checked_add(8 * 3600)
        .ok_or(RequestError::TimestampOutOfRange)?;
    let days = i64::try_from(secs / 86_400).map_err(|_| RequestError::TimestampOutOfRange)?;
    let rem = secs % 86_400;
    // 10000-01-01 is day 2_932_897: refusing anything later keeps every step below on small
    // numbers.
    if days >= 2_932_897 {
        return Err(RequestError::TimestampOutOfRange);
    }
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm), for days ≥ 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = heapless::String::new();
    write!(
        out,
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
    .map_err(|_| RequestError::TimestampOutOfRange)?;
    Ok(out)
}

impl RequestSigner {
    /// Signs for application `app_id` with its private key (the "应用私钥" whose public half
    /// is uploaded to Alipay), sent to [`GATEWAY`]. Pass the key, or an `Arc` of it to share
    /// one key between signers.
    pub fn new(app_id: impl Into<String>, key: impl Into<Arc<Rsa2PrivateKey>>) -> Self {
        RequestSigner {
            app_id: app_id.into(),
            key: key.into(),
            gateway: GATEWAY.into(),
            notify_url: None,
            return_url: None,
            app_auth_token: None,
            cert_mode: None,
        }
    }

    /// Another gateway URL (the sandbox's, `https://openapi-sandbox.dl.alipaydev.com/gateway.do`).
    pub fn with_gateway(mut self, gateway: impl Into<String>) -> Self {
        self.gateway = gateway.into();
        self
    }

    /// The `notify_url` sent with `precreate`, `page.pay` and `wap.pay`: where Alipay posts
    /// the trade's notifications.
    pub fn with_notify_url(mut self, notify_url: impl Into<String>) -> Self {
        self.notify_url = Some(notify_url.into());
        self
    }

    /// The `return_url` sent with `page.pay` and `wap.pay`: where Alipay sends the customer's
    /// browser after paying. Its query is signed too, but the payment is only settled by the
    /// notification (or a query), never by the browser coming back.
    pub fn with_return_url(mut self, return_url: impl Into<String>) -> Self {
        self.return_url = Some(return_url.into());
        self
    }

    /// `app_auth_token`, when acting for another merchant (third-party applications).
    pub fn with_app_auth_token(mut self, token: impl Into<String>) -> Self {
        self.app_auth_token = Some(token.into());
        self
    }

    /// Certificate mode (公钥证书模式): every request carries `app_cert_sn` (the SN of the
    /// application's certificate) and `alipay_root_cert_sn` (of Alipay's root bundle), both
    /// signed. Compute them once with [`cert_sn`](super::cert::cert_sn) and
    /// [`root_cert_sn`](super::cert::root_cert_sn) (feature `x509`). Answers are then
    /// verified with
    /// [`verify_response_with_certificates`](super::response::verify_response_with_certificates).
    pub fn with_cert_mode(
        mut self,
        app_cert_sn: impl Into<String>,
        alipay_root_cert_sn: impl Into<String>,
    ) -> Self {
        self.cert_mode = Some((app_cert_sn.into(), alipay_root_cert_sn.into()));
        self
    }

    fn biz_content(request: &TradeRequest<'_>) -> Result<String, RequestError> {
        let mut json = String::new();
        let mut first = true;
        let mut put = |key: &str, value: &str| -> fmt::Result {
            json.write_str(if first { "{" } else { "," })?;
            first = false;
            json_string(&mut json, key)?;
            json.write_char(':')?;
            json_string(&mut json, value)
        };
        let amount = |m: Money| {
            let mut s = heapless::String::<32>::new();
            // 20 digits, a point and up to 4 decimals always fit.
            let _ = write!(s, "{m}");
            s
        };
        let result = match *request {
            TradeRequest::Precreate {
                out_trade_no,
                total_amount,
                subject,
                time_expire,
            } => {
                check_text("out_trade_no", out_trade_no, MAX_ORDER_ID_LEN)?;
                check_amount("total_amount", total_amount)?;
                check_text("subject", subject, MAX_SUBJECT_LEN)?;
                let expire = time_expire.map(beijing_time).transpose()?;
                put("out_trade_no", out_trade_no)
                    .and_then(|()| put("total_amount", &amount(total_amount)))
                    .and_then(|()| put("subject", subject))
                    .and_then(|()| match &expire {
                        Some(t) => put("time_expire", t),
                        None => Ok(()),
                    })
            }
            TradeRequest::PagePay {
                out_trade_no,
                total_amount,
                subject,
                time_expire,
            } => {
                check_text("out_trade_no", out_trade_no, MAX_ORDER_ID_LEN)?;
                check_amount("total_amount", total_amount)?;
                check_text("subject", subject, MAX_SUBJECT_LEN)?;
                let expire = time_expire.map(beijing_time).transpose()?;
                put("out_trade_no", out_trade_no)
                    .and_then(|()| put("total_amount", &amount(total_amount)))
                    .and_then(|()| put("subject", subject))
                    .and_then(|()| put("product_code", "FAST_INSTANT_TRADE_PAY"))
                    .and_then(|()| match &expire {
                        Some(t) => put("time_expire", t),
                        None => Ok(()),
                    })
            }
            TradeRequest::WapPay {
                out_trade_no,
                total_amount,
                subject,
                time_expire,
                quit_url,
            } => {
                check_text("out_trade_no", out_trade_no, MAX_ORDER_ID_LEN)?;
                check_amount("total_amount", total_amount)?;
                check_text("subject", subject, MAX_SUBJECT_LEN)?;
                if let Some(url) = quit_url {
                    check_text("quit_url", url, MAX_URL_LEN)?;
                }
                let expire = time_expire.map(beijing_time).transpose()?;
                put("out_trade_no", out_trade_no)
                    .and_then(|()| put("total_amount", &amount(total_amount)))
                    .and_then(|()| put("subject", subject))
                    .and_then(|()| put("product_code", "QUICK_WAP_WAY"))
                    .and_then(|()| match &expire {
                        Some(t) => put("time_expire", t),
                        None => Ok(()),
                    })
                    .and_then(|()| match quit_url {
                        Some(url) => put("quit_url", url),
                        None => Ok(()),
                    })
            }
            TradeRequest::RefundQuery {
                out_trade_no,
                out_request_no,
            } => {
                check_text("out_trade_no", out_trade_no, MAX_ORDER_ID_LEN)?;
                check_text("out_request_no", out_request_no, MAX_ORDER_ID_LEN)?;
                put("out_trade_no", out_trade_no)
                    .and_then(|()| put("out_request_no", out_request_no))
            }
            TradeRequest::Refund {
                out_trade_no,
                refund_amount,
                out_request_no,
            } => {
                check_text("out_trade_no", out_trade_no, MAX_ORDER_ID_LEN)?;
                check_amount("refund_amount", refund_amount)?;
                check_text("out_request_no", out_request_no, MAX_ORDER_ID_LEN)?;
                put("out_trade_no", out_trade_no)
                    .and_then(|()| put("refund_amount", &amount(refund_amount)))
                    .and_then(|()| put("out_request_no", out_request_no))
            }
            TradeRequest::Query { out_trade_no }
            | TradeRequest::Close { out_trade_no }
            | TradeRequest::Cancel { out_trade_no } => {
                check_text("out_trade_no", out_trade_no, MAX_ORDER_ID_LEN)?;
                put("out_trade_no", out_trade_no)
            }
        };
        // Writing to a String cannot fail.
        result.map_err(|_| RequestError::InvalidField {
            field: "biz_content",
        })?;
        json.push('}');
        Ok(json)
    }

    /// Builds and signs `request` at time `now` (sent as `timestamp`, Beijing time).
    pub fn sign(
        &self,
        request: &TradeRequest<'_>,
        now: Timestamp,
    ) -> Result<SignedRequest, RequestError> {
        check_text("app_id", &self.app_id, 32)?;
        let biz_content = RequestSigner::biz_content(request)?;
        let timestamp = beijing_time(now)?;
        let method = request.method();
        let (notify_url, return_url) = match request {
            TradeRequest::Precreate { .. } => (self.notify_url.as_deref(), None),
            TradeRequest::PagePay { .. } | TradeRequest::WapPay { .. } => {
                (self.notify_url.as_deref(), self.return_url.as_deref())
            }
            _ => (None, None),
        };
        let (app_cert_sn, root_cert_sn) = match &self.cert_mode {
            Some((app, root)) => (Some(app.as_str()), Some(root.as_str())),
            None => (None, None),
        };
        let mut params: Vec<Field<'_>> = [
            ("app_id", Some(self.app_id.as_str())),
            ("method", Some(method)),
            ("format", Some("JSON")),
            ("charset", Some("utf-8")),
            ("sign_type", Some("RSA2")),
            ("timestamp", Some(timestamp.as_str())),
            ("version", Some("1.0")),
            ("notify_url", notify_url),
            ("return_url", return_url),
            ("app_auth_token", self.app_auth_token.as_deref()),
            ("app_cert_sn", app_cert_sn),
            ("alipay_root_cert_sn", root_cert_sn),
            ("biz_content", Some(biz_content.as_str())),
        ]
        .into_iter()
        .filter_map(|(key, value)| {
            // A blank value is left out of the request, not only of the signed content.
            value
                .filter(|v| !is_blank(v.as_bytes()))
                .map(|value| Field {
                    key,
                    value: value.as_bytes(),
                })
        })
        .collect();
        params.sort_unstable_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));

        let content = SignedContent::from_sorted(&params, SignRule::V2);
        // Every value is UTF-8 text, so the content is too.
        let signed_content = content.to_string();
        let sign = self
            .key
            .sign_digest(&content.digest())
            .map(|sig| <base64ct::Base64 as base64ct::Encoding>::encode_string(&sig))
            .map_err(RequestError::Signature)?;

        let mut body = String::new();
        let pairs = params
            .iter()
            .map(|f| (f.key, f.value))
            .chain([("sign", sign.as_bytes())]);
        encode_pairs(pairs, &mut body).map_err(|_| RequestError::InvalidField { field: "body" })?;
        Ok(SignedRequest {
            method,
            body,
            signed_content,
            gateway: self.gateway.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_time_format() {
        let t = |s| beijing_time(Timestamp::from_secs(s)).unwrap();
        assert_eq!(t(0), "1970-01-01 08:00:00");
        assert_eq!(t(1_565_855_782), "2019-08-15 15:56:22");
        assert_eq!(t(951_782_400 - 8 * 3600), "2000-02-29 00:00:00");
        assert_eq!(t(253_402_300_799 - 8 * 3600), "9999-12-31 23:59:59");
        assert_eq!(
            beijing_time(Timestamp::from_secs(253_402_300_800 - 8 * 3600)),
            Err(RequestError::TimestampOutOfRange)
        );
        assert_eq!(
            beijing_time(Timestamp::from_secs(u64::MAX)),
            Err(RequestError::TimestampOutOfRange)
        );
    }

    #[test]
    fn json_escaping() {
        let mut s = String::new();
        json_string(&mut s, "a\"b\\c\n语").unwrap();
        assert_eq!(s, r#""a\"b\\c\u000a语""#);
    }
}
