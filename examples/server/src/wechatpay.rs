//! Calls to the WeChat Pay APIv3 gateway: the close and refund requests of the outbox.
//!
//! Every request is signed by WeChat Pay's documented rule: SHA256withRSA with the merchant's
//! private key over `"{METHOD}\n{path and query}\n{timestamp}\n{nonce}\n{body}\n"`, sent as
//! `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",
//! timestamp="…",serial_no="…"` (the merchant certificate's serial). Requests go out with
//! reqwest (rustls). Answers are kept raw (the HTTP status, the `Wechatpay-*` headers, the
//! body byte for byte) and verified with the platform keys by the crate's own functions
//! ([`verify_close`], [`verify_refund`]) before anything is read from them.
//!
//! | effect | request | answer |
//! |---|---|---|
//! | `close_trade` | `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close` `{"mchid"}` | `204`, or an error (`ORDER_NOT_EXIST`, `ORDER_CLOSED` count as closed: the crate maps them) |
//! | `refund_required`, a merchant refund | `POST /v3/refund/domestic/refunds` `{"out_trade_no","out_refund_no","notify_url","amount":{"refund","total","currency":"CNY"}}` | `200` the refund with its `status` (`SUCCESS`, `PROCESSING`, …), or an error |
//!
//! The refund's `notify_url` is the server's `/notify/wechatpay`, where WeChat Pay sends the
//! `REFUND.*` notification; the refund's `out_refund_no` is the obligation's `refund_id` or
//! the merchant's, and WeChat Pay refunds each `out_refund_no` once, so a request sent again
//! (after a crash, a timeout) moves no more money.

use std::time::Duration;

use paystate::provider::Verified;
use paystate::provider::wechatpay::{
    CloseAnswer, Merchant, RefundAnswer, verify_close, verify_refund,
};
use paystate::webhook::wechatpay::Headers;
use paystate::{Currency, Money, Timestamp};
use rand::Rng as _;

use crate::config::WechatpayConfig;

/// The scheme name of WeChat Pay's `Authorization` header (RSA, SHA-256, 2048-bit keys).
pub const AUTH_SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";

/// How many characters the request nonce (`nonce_str`) has.
const NONCE_LEN: usize = 32;

/// The WeChat Pay side of the server.
#[derive(Clone)]
pub struct WechatpayClient {
    /// The configuration.
    pub config: WechatpayConfig,
    notify_url: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for WechatpayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a key.
        f.debug_struct("WechatpayClient")
            .field("mchid", &self.config.mchid)
            .field("gateway", &self.config.gateway)
            .finish_non_exhaustive()
    }
}

/// Why a gateway call gave no verified answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The request could not be built or signed (a gateway that is not a URL, a refund in
    /// another currency than CNY, a signing failure).
    #[error("request: {0}")]
    Request(String),
    /// The gateway could not be reached, timed out, or answered a 5xx without a signature:
    /// the provider is down; retry later.
    #[error("gateway unreachable: {0}")]
    Transport(String),
    /// The answer failed verification or could not be read: never acted on.
    #[error("answer refused: {0}")]
    Answer(String),
}

/// An answer as received: what the crate verifies.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    /// The HTTP status.
    pub status: u16,
    /// Every header of the answer whose value is text, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, byte for byte.
    pub body: Vec<u8>,
}

impl RawAnswer {
    /// The four `Wechatpay-*` signature headers.
    ///
    /// Errors: [`CallError::Answer`] when one is missing or repeated (an unsigned answer:
    /// WeChat Pay signs only the answers to requests whose own signature held).
    pub fn signature_headers(&self) -> Result<Headers<'_>, CallError> {
        Headers::from_pairs(
            self.headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        )
        .map_err(|e| CallError::Answer(format!("HTTP {}: {e}", self.status)))
    }
}

/// A refund to request (`POST /v3/refund/domestic/refunds`).
#[derive(Debug, Clone, Copy)]
pub struct RefundRequest<'a> {
    /// The order refunded (the payment's order id).
    pub out_trade_no: &'a str,
    /// The refund's number: the obligation's `refund_id` or the merchant's.
    pub out_refund_no: &'a str,
    /// How much goes back (`amount.refund`).
    pub refund: Money,
    /// The order's whole amount (`amount.total`), as WeChat Pay asks for it.
    pub total: Money,
}

impl WechatpayClient {
    /// A client for `config`, whose refunds' `notify_url` points at `public_url`.
    pub fn new(config: WechatpayConfig, public_url: &str) -> WechatpayClient {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("paystate-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        WechatpayClient {
            config,
            notify_url: format!("{public_url}/notify/wechatpay"),
            http,
        }
    }

    /// The host's identities, for the crate's business checks.
    pub fn merchant(&self) -> Merchant<'_> {
        Merchant {
            mchid: &self.config.mchid,
            appid: &self.config.appid,
        }
    }

    /// The `Authorization` header of a request: `method` (`POST`), `path_and_query` exactly
    /// as sent (`/v3/refund/domestic/refunds`), the body, the time and a nonce.
    ///
    /// Errors: [`CallError::Request`] when the merchant key cannot sign.
    pub fn authorization(
        &self,
        method: &str,
        path_and_query: &str,
        body: &str,
        timestamp: Timestamp,
        nonce: &str,
    ) -> Result<String, CallError> {
        let secs = timestamp.as_secs();
        let message = format!("{method}\n{path_and_query}\n{secs}\n{nonce}\n{body}\n");
        let signature = self
            .config
            .merchant_private_key
            .sign_base64(message.as_bytes())
            .map_err(|e| CallError::Request(format!("signing: {e}")))?;
        Ok(format!(
            "{AUTH_SCHEME} mchid=\"{}\",nonce_str=\"{nonce}\",signature=\"{signature}\",timestamp=\"{secs}\",serial_no=\"{}\"",
            self.config.mchid, self.config.merchant_serial
        ))
    }

    /// The gateway URL with `segments` appended to its path (each percent-encoded as a path
    /// segment needs).
    fn url(&self, segments: &[&str]) -> Result<reqwest::Url, CallError> {
        let bad = || {
            CallError::Request(format!(
                "[wechatpay].gateway {:?} is not a base URL",
                self.config.gateway
            ))
        };
        let mut url = reqwest::Url::parse(&self.config.gateway).map_err(|_| bad())?;
        url.path_segments_mut()
            .map_err(|()| bad())?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Closes the order `out_trade_no` at `now`: `POST
    /// /v3/pay/transactions/out-trade-no/{out_trade_no}/close` with `{"mchid"}`.
    ///
    /// Errors: [`CallError::Request`], [`CallError::Transport`].
    pub async fn close(&self, out_trade_no: &str, now: Timestamp) -> Result<RawAnswer, CallError> {
        let url = self.url(&[
            "v3",
            "pay",
            "transactions",
            "out-trade-no",
            out_trade_no,
            "close",
        ])?;
        let body = serde_json::json!({ "mchid": self.config.mchid }).to_string();
        self.post(url, body, now).await
    }

    /// Requests a refund at `now`: `POST /v3/refund/domestic/refunds`.
    ///
    /// Errors: [`CallError::Request`] (also for amounts not in CNY: WeChat Pay's domestic
    /// refunds are in CNY only), [`CallError::Transport`].
    pub async fn refund(
        &self,
        request: &RefundRequest<'_>,
        now: Timestamp,
    ) -> Result<RawAnswer, CallError> {
        for m in [request.refund, request.total] {
            if m.currency() != Currency::CNY {
                return Err(CallError::Request(format!(
                    "WeChat Pay refunds are in CNY only, not {}",
                    m.currency()
                )));
            }
        }
        let url = self.url(&["v3", "refund", "domestic", "refunds"])?;
        let body = serde_json::json!({
            "out_trade_no": request.out_trade_no,
            "out_refund_no": request.out_refund_no,
            "notify_url": self.notify_url,
            "amount": {
                "refund": request.refund.minor_units(),
                "total": request.total.minor_units(),
                "currency": "CNY",
            },
        })
        .to_string();
        self.post(url, body, now).await
    }

    /// Signs and posts `body` to `url`; the answer as received, whatever its status, unless
    /// the gateway could not be reached or answered a 5xx without a signature (down).
    async fn post(
        &self,
        url: reqwest::Url,
        body: String,
        now: Timestamp,
    ) -> Result<RawAnswer, CallError> {
        let path_and_query = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let nonce = new_nonce();
        let authorization = self.authorization("POST", &path_and_query, &body, now, &nonce)?;
        let response = self
            .http
            .post(url)
            .header("authorization", authorization)
            .header("accept", "application/json")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|v| (name.as_str().to_owned(), v.to_owned()))
            })
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?
            .to_vec();
        let answer = RawAnswer {
            status,
            headers,
            body,
        };
        if status >= 500 && answer.signature_headers().is_err() {
            return Err(CallError::Transport(format!("HTTP {status}, unsigned")));
        }
        Ok(answer)
    }

    /// Verifies `raw` as the answer to closing `out_trade_no`, at `now`, with the configured
    /// platform keys.
    ///
    /// Errors: [`CallError::Answer`] for an unsigned or forged answer, one outside the 300 s
    /// window, or one that is not a close answer.
    pub fn verify_close<'a>(
        &self,
        raw: &'a RawAnswer,
        out_trade_no: &'a str,
        now: Timestamp,
    ) -> Result<Verified<CloseAnswer<'a>>, CallError> {
        let headers = raw.signature_headers()?;
        verify_close(
            &headers,
            raw.status,
            &raw.body,
            &self.config.platform_keys,
            now,
            out_trade_no,
        )
        .map_err(|e| CallError::Answer(format!("HTTP {}: {} ({e})", raw.status, e.code())))
    }

    /// Verifies `raw` as the answer to a refund request, at `now`, with the configured
    /// platform keys.
    ///
    /// Errors: [`CallError::Answer`], as [`WechatpayClient::verify_close`].
    pub fn verify_refund<'a>(
        &self,
        raw: &'a RawAnswer,
        now: Timestamp,
    ) -> Result<Verified<RefundAnswer<'a>>, CallError> {
        let headers = raw.signature_headers()?;
        verify_refund(
            &headers,
            raw.status,
            &raw.body,
            &self.config.platform_keys,
            now,
        )
        .map_err(|e| CallError::Answer(format!("HTTP {}: {} ({e})", raw.status, e.code())))
    }
}

/// A fresh request nonce: 32 random upper-case letters and digits, as WeChat Pay's SDKs make
/// them.
fn new_nonce() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..NONCE_LEN)
        .map(|_| {
            let i = rng.random_range(0..ALPHABET.len());
            ALPHABET.get(i).map_or('0', |&b| char::from(b))
        })
        .collect()
}
