//! An Alipay gateway simulator, for tests and for a demo on one machine with no network,
//! and a WeChat Pay one ([`wechatpay`], for tests).
//!
//! [`AlipaySim`] stands in for `https://openapi.alipay.com/gateway.do` and for Alipay's
//! notification system, behaving as Alipay documents for the methods this repository uses
//! (in key mode, UTF-8, RSA2):
//!
//! - `GET` (or `POST`) `/gateway.do` with `method=alipay.trade.page.pay` or
//!   `alipay.trade.wap.pay`: the signed URL the merchant sends the buyer's browser to. The
//!   request is checked as the gateway checks it and the trade is created (`WAIT_BUYER_PAY`),
//!   or shown again; the answer is a small HTML cashier page whose "Pay" button posts to
//!   `/cashier/pay`. A refused request is an HTML error page with status 400.
//! - `POST /cashier/pay` (form `out_trade_no`): the buyer pays. The trade becomes
//!   `TRADE_SUCCESS`, the browser is sent back (`303`) to the `return_url` with the signed
//!   return parameters, and the asynchronous notification goes to the `notify_url`.
//! - `POST /gateway.do` for `alipay.trade.query`, `alipay.trade.close`,
//!   `alipay.trade.refund` and `alipay.trade.fastpay.refund.query`: a JSON answer
//!   `{"<method>_response":{..},"sign":".."}` signed over the exact bytes of the response
//!   object, as Alipay signs it.
//! - Notifications (`notify_type=trade_status_sync`), signed under rule V1, posted as a form
//!   and redelivered until the reply body is exactly `success`, on a configurable, compressed
//!   version of Alipay's schedule ([`ALIPAY_RETRY_SCHEDULE`]).
//!
//! **Checks, in Alipay's order.** Every gateway request is checked for `app_id`
//! (`40001 isv.missing-app-id`, `40002 isv.invalid-app-id`), `method`, `sign`,
//! `sign_type=RSA2`, `charset` (UTF-8 only here), `timestamp` (the `yyyy-MM-dd HH:mm:ss`
//! format; the clock skew is not checked, so a server under test may run on a test clock),
//! `version`, then the RSA2 signature with the application's public key over every parameter
//! but `sign`, sorted, blank values left out (`40002 isv.invalid-signature`). These gateway
//! refusals are answered unsigned, as Alipay answers them; business answers (`10000`,
//! `40004 ACQ.*`) are signed.
//!
//! **Not modelled:** certificate mode (answers carry no `alipay_cert_sn`), content
//! encryption, GBK requests, `time_expire` (the simulator never closes a trade by itself),
//! `TRADE_FINISHED`, and a notification on `alipay.trade.close`.
//!
//! Amounts are integer fen inside, read and written as Alipay's decimal yuan strings
//! (`"99.90"`). Every handler answers malformed input with an error, never a panic.

mod gateway;
mod http;
mod notify;
pub mod wechatpay;
mod wire;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use paystate::signature::{Rsa2PrivateKey, Rsa2PublicKey};

/// Alipay's documented redelivery schedule of a notification not answered `success`: 4 min,
/// 10 min, 10 min, 1 h, 2 h, 6 h, 15 h (eight deliveries over about 25 hours). Pass a
/// compressed schedule in [`SimConfig::retry_schedule`] for tests.
pub const ALIPAY_RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(4 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(15 * 3600),
];

/// How long one notification delivery waits for the merchant's reply before it counts as a
/// failed attempt.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// The simulated merchant account and keys: what Alipay knows of the merchant (its
/// application id, its account id and the public key it uploaded) and Alipay's own key.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The merchant application's `app_id`: requests naming another are refused with
    /// `isv.invalid-app-id`; answers, returns and notifications carry it.
    pub app_id: String,
    /// The merchant's Alipay account id (`seller_id`, `2088…`), sent in notifications and
    /// returns.
    pub seller_id: String,
    /// The application's public key ("应用公钥" uploaded to Alipay): verifies the requests.
    pub app_public_key: Rsa2PublicKey,
    /// Alipay's private key: signs answers, returns and notifications. Its public half is
    /// what the merchant pins as "支付宝公钥".
    pub sim_private_key: Rsa2PrivateKey,
    /// The delays between deliveries of a notification not answered `success` (Alipay's
    /// [`ALIPAY_RETRY_SCHEDULE`], compressed): a notification is delivered at most
    /// `1 + retry_schedule.len()` times.
    pub retry_schedule: Vec<Duration>,
}

/// The committed test-only keys of this package (`keys/`): never for real money.
const APP_PUBLIC_PEM: &str = include_str!("../../keys/app_public.pem");
const SIM_PRIVATE_PEM: &str = include_str!("../../keys/alipay_sim_private.pem");

impl SimConfig {
    /// A configuration with the committed test keys (`keys/app_public.pem` verifies requests,
    /// `keys/alipay_sim_private.pem` signs) and a short schedule, Alipay's seven redeliveries
    /// compressed to 100 ms, 200 ms, 400 ms, … 6.4 s.
    ///
    /// # Panics
    ///
    /// If a committed key file does not load: a broken checkout, never input (a unit test
    /// loads them).
    pub fn test_keys(app_id: &str, seller_id: &str) -> SimConfig {
        let app_public_key = match Rsa2PublicKey::from_pem(APP_PUBLIC_PEM) {
            Ok(key) => key,
            Err(e) => panic!("the committed keys/app_public.pem does not load: {e}"),
        };
        let sim_private_key = match Rsa2PrivateKey::from_pem(SIM_PRIVATE_PEM) {
            Ok(key) => key,
            Err(e) => panic!("the committed keys/alipay_sim_private.pem does not load: {e}"),
        };
        SimConfig {
            app_id: app_id.into(),
            seller_id: seller_id.into(),
            app_public_key,
            sim_private_key,
            retry_schedule: (0..7).map(|i| Duration::from_millis(100 << i)).collect(),
        }
    }
}

/// A copy of one trade's state at the simulated Alipay, as `alipay.trade.query` would
/// describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    /// The merchant's order id.
    pub out_trade_no: String,
    /// Alipay's trade number: 28 digits, the date first (`2026113022001…`), given when the
    /// trade is created.
    pub trade_no: String,
    /// `WAIT_BUYER_PAY`, `TRADE_SUCCESS` or `TRADE_CLOSED` (closed unpaid, or fully
    /// refunded).
    pub status: String,
    /// The trade's amount, in yuan (`"99.99"`).
    pub total_amount: String,
    /// The refunds made, in order: `(out_request_no, amount in yuan)`. Each moved money once.
    pub refunds: Vec<(String, String)>,
    /// Where the trade's notifications go, if the merchant gave a `notify_url`.
    pub notify_url: Option<String>,
    /// Where the browser returns after paying, if the merchant gave a `return_url`.
    pub return_url: Option<String>,
    /// What is bought (`subject`).
    pub subject: String,
    /// When the buyer paid (`gmt_payment`, Beijing time), if it did.
    pub gmt_payment: Option<String>,
}

/// One call the gateway received (HTTP, or [`AlipaySim::open`]), and how it was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The `method` parameter (`"alipay.trade.refund"`), empty if there was none.
    pub method: String,
    /// `out_trade_no` of `biz_content`, if readable.
    pub out_trade_no: Option<String>,
    /// `out_request_no` of `biz_content`, if readable.
    pub out_request_no: Option<String>,
    /// The HTTP status answered: 200, 400 (a refused cashier page) or 503 (down).
    pub http_status: u16,
    /// The answer's `code` (`"10000"`, `"40004"`; for `page.pay`/`wap.pay`, `"10000"` means
    /// the cashier was shown); `None` when the gateway was down.
    pub code: Option<String>,
    /// The answer's `sub_code` (`"ACQ.TRADE_NOT_EXIST"`), if any.
    pub sub_code: Option<String>,
}

/// One delivery attempt of a notification to a `notify_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The trade it is about.
    pub out_trade_no: String,
    /// The notification's `notify_id`: the same on every redelivery of it.
    pub notify_id: String,
    /// Its `trade_status`.
    pub trade_status: String,
    /// Its `out_biz_no` (the refund's `out_request_no`) for a refund notification.
    pub out_biz_no: Option<String>,
    /// 1 for the first delivery of this notification, 2 for the first redelivery, …
    pub attempt: u32,
    /// The HTTP status of the reply, if one came.
    pub http_status: Option<u16>,
    /// The reply body, if one came.
    pub reply: Option<String>,
    /// Why no reply came (connection refused, timeout), if so.
    pub error: Option<String>,
}

impl Delivery {
    /// Whether Alipay takes this attempt as acknowledged: HTTP 200 and a body of exactly
    /// `success` (anything else, even `success` with a line break, is redelivered).
    pub fn acknowledged(&self) -> bool {
        self.http_status == Some(200) && self.reply.as_deref() == Some("success")
    }
}

/// Why a test-driven action of the simulator ([`AlipaySim::open`], [`AlipaySim::pay`]) did
/// not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// No trade with this `out_trade_no` (the cashier was never opened for it).
    #[error("no trade with out_trade_no {0:?} at the simulated Alipay")]
    UnknownTrade(String),
    /// The trade is already paid: a buyer cannot pay it twice.
    #[error("trade {0:?} is already paid")]
    AlreadyPaid(String),
    /// The trade was closed unpaid: the cashier refuses to pay it (use `pay_late` for a
    /// payment that was in flight when the close happened).
    #[error("trade {0:?} is closed")]
    TradeClosed(String),
    /// The gateway refused the cashier request, as its HTML error page says.
    #[error("the gateway refused the request: {code} {sub_code} ({sub_msg})")]
    Refused {
        /// `40001`, `40002` or `40004`.
        code: String,
        /// `isv.invalid-signature`, `ACQ.CONTEXT_INCONSISTENT`, …
        sub_code: String,
        /// Alipay's explanation.
        sub_msg: String,
    },
    /// The URL is not a request to a `/gateway.do` with a query string.
    #[error("not a gateway URL with parameters: {0:?}")]
    NotAGatewayUrl(String),
    /// The URL's `method` is not `alipay.trade.page.pay` or `alipay.trade.wap.pay` (the
    /// method given, empty if none): it is not for the buyer's browser.
    #[error("not a cashier request (method {0:?}): only page.pay and wap.pay URLs are opened")]
    NotACashierMethod(String),
    /// The simulator is down ([`AlipaySim::set_down`]).
    #[error("the simulated Alipay gateway is down (HTTP 503)")]
    Down,
}

/// A simulated Alipay: the gateway, the cashier and the notification system, serving HTTP on
/// a listener the caller bound. Cheap to clone: clones share one state.
#[derive(Clone)]
pub struct AlipaySim {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AlipaySim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlipaySim")
            .field("addr", &self.inner.addr)
            .finish_non_exhaustive()
    }
}

/// What every clone shares.
pub(crate) struct Inner {
    config: SimConfig,
    addr: SocketAddr,
    state: Mutex<gateway::State>,
    client: reqwest::Client,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Inner {
    /// The state; a panic elsewhere while it was held does not make it unreadable.
    fn lock(&self) -> MutexGuard<'_, gateway::State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AlipaySim {
    /// Starts serving on `listener` (bind `127.0.0.1:0` in tests) in a spawned task, until
    /// [`AlipaySim::shutdown`] or the end of the runtime.
    ///
    /// # Errors
    ///
    /// If the listener's address cannot be read or the HTTP client for notifications cannot
    /// be built.
    pub async fn start(
        config: SimConfig,
        listener: tokio::net::TcpListener,
    ) -> std::io::Result<AlipaySim> {
        let addr = listener.local_addr()?;
        let client = reqwest::Client::builder()
            .timeout(NOTIFY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(std::io::Error::other)?;
        let (shutdown, mut stop) = tokio::sync::watch::channel(false);
        let sim = AlipaySim {
            inner: Arc::new(Inner {
                config,
                addr,
                state: Mutex::new(gateway::State::default()),
                client,
                shutdown,
            }),
        };
        let app = http::router(sim.clone());
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|stop| *stop).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
            {
                tracing::error!(error = %e, "the Alipay simulator stopped serving");
            }
        });
        Ok(sim)
    }

    /// Stops serving and stops redelivering notifications. Idempotent.
    pub fn shutdown(&self) {
        self.inner.lock().stopped = true;
        let _ = self.inner.shutdown.send(true);
    }

    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The gateway URL to configure the merchant with: `http://127.0.0.1:PORT/gateway.do`.
    pub fn gateway_url(&self) -> String {
        format!("http://{}/gateway.do", self.inner.addr)
    }

    /// The public half of the simulator's signing key: what the merchant pins as Alipay's
    /// public key.
    pub fn sim_public_key(&self) -> Rsa2PublicKey {
        self.inner.config.sim_private_key.public_key()
    }

    /// A copy of the trade with this `out_trade_no`, if the cashier was opened for it.
    pub fn trade(&self, out_trade_no: &str) -> Option<Trade> {
        self.inner.lock().trade(out_trade_no)
    }

    /// How many times money moved for refunds with this `out_request_no` (over all trades).
    /// Alipay refunds each `out_request_no` of a trade at most once, so for the unique
    /// request numbers a merchant uses this must stay at most 1.
    pub fn refunds_effected(&self, out_request_no: &str) -> usize {
        self.inner.lock().refunds_effected(out_request_no)
    }

    /// Every gateway call so far, in order (the cashier's `POST /cashier/pay` is not one).
    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().calls.clone()
    }

    /// Every delivery attempt of this trade's notifications so far, in order.
    pub fn deliveries(&self, out_trade_no: &str) -> Vec<Delivery> {
        self.inner
            .lock()
            .deliveries
            .iter()
            .filter(|d| d.out_trade_no == out_trade_no)
            .cloned()
            .collect()
    }

    /// A provider outage: while `down`, every HTTP request to the simulator (gateway and
    /// cashier) is answered `503 Service Unavailable` and [`AlipaySim::open`] fails with
    /// [`SimError::Down`]. Notifications, and the test's own [`AlipaySim::pay`], go on.
    pub fn set_down(&self, down: bool) {
        self.inner.lock().down = down;
    }

    /// While `false`, notifications are made (see [`AlipaySim::notification`]) but not
    /// delivered, and pending redeliveries stop: lost notifications. [`AlipaySim::redeliver`]
    /// still delivers.
    pub fn set_notify(&self, enabled: bool) {
        self.inner.lock().notify_off = !enabled;
    }

    /// What the buyer's browser does with the merchant's signed `page.pay`/`wap.pay` URL,
    /// without HTTP: the gateway's checks, then the trade is created or shown again. The URL's
    /// host is not looked at, only its `/gateway.do` path and its query.
    ///
    /// # Errors
    ///
    /// [`SimError::Refused`] with the code the cashier's error page shows (a bad signature, a
    /// wrong `app_id`, `ACQ.CONTEXT_INCONSISTENT` for another amount under the same
    /// `out_trade_no`, …), [`SimError::NotAGatewayUrl`], [`SimError::NotACashierMethod`],
    /// [`SimError::Down`] (nothing is recorded for the last three but `Down`).
    pub async fn open(&self, pay_url: &str) -> Result<(), SimError> {
        let (path, query) = pay_url
            .split_once('?')
            .ok_or_else(|| SimError::NotAGatewayUrl(pay_url.into()))?;
        if !path.ends_with("/gateway.do") {
            return Err(SimError::NotAGatewayUrl(pay_url.into()));
        }
        let query = query.split('#').next().unwrap_or_default();
        let method = wire::first_value(Some(query), b"", "method").unwrap_or_default();
        if !gateway::is_cashier_method(method.trim()) {
            return Err(SimError::NotACashierMethod(method));
        }
        match self.inner.gateway(Some(query), b"") {
            gateway::Reply::Unavailable => Err(SimError::Down),
            gateway::Reply::Cashier { .. } => Ok(()),
            gateway::Reply::CashierRefused { refusal, .. } => Err(SimError::Refused {
                code: refusal.code.into(),
                sub_code: refusal.sub_code.into(),
                sub_msg: refusal.sub_msg,
            }),
            // A cashier method is always answered with a page.
            gateway::Reply::Json { .. } => Err(SimError::NotACashierMethod(method)),
        }
    }

    /// The buyer pays a `WAIT_BUYER_PAY` trade at the cashier: it becomes `TRADE_SUCCESS`
    /// and its `TRADE_SUCCESS` notification is sent (in a spawned task).
    ///
    /// # Errors
    ///
    /// [`SimError::UnknownTrade`], [`SimError::AlreadyPaid`], [`SimError::TradeClosed`].
    pub async fn pay(&self, out_trade_no: &str) -> Result<(), SimError> {
        self.inner.pay(out_trade_no, false).map(|_| ())
    }

    /// A payment that was in flight when the trade was closed: pays even a `TRADE_CLOSED`
    /// trade (closed unpaid), which becomes `TRADE_SUCCESS`; the notification follows.
    ///
    /// # Errors
    ///
    /// [`SimError::UnknownTrade`], [`SimError::AlreadyPaid`].
    pub async fn pay_late(&self, out_trade_no: &str) -> Result<(), SimError> {
        self.inner.pay(out_trade_no, true).map(|_| ())
    }

    /// The signed form body of the trade's last notification (delivered or not), for
    /// redelivery and replay tests.
    pub fn notification(&self, out_trade_no: &str) -> Option<String> {
        self.inner
            .lock()
            .last_note(out_trade_no)
            .map(|note| note.body.clone())
    }

    /// The fields of the trade's last notification, `sign_type` included and `sign` left out:
    /// change one and sign them again with [`AlipaySim::sign_notification`].
    pub fn notification_fields(&self, out_trade_no: &str) -> Option<Vec<(String, String)>> {
        self.inner
            .lock()
            .last_note(out_trade_no)
            .map(|note| note.fields.clone())
    }

    /// A genuine notification body signed by the simulator over exactly `fields` (any
    /// `sign` among them is dropped; `sign_type=RSA2` is added if absent), as Alipay signs a
    /// trade notification: rule V1, every field but `sign` and `sign_type`, sorted, blank
    /// values left out. Fields are sent in the order given. For tests of the merchant's
    /// business checks (another `seller_id`, `app_id` or amount).
    pub fn sign_notification(&self, fields: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(String, String)> = fields
            .iter()
            .filter(|(k, _)| *k != "sign")
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        if !pairs.iter().any(|(k, _)| k == "sign_type") {
            pairs.push(("sign_type".into(), "RSA2".into()));
        }
        self.inner.signed_form(&pairs)
    }

    /// Delivers the trade's last notification once more, now, and waits for the reply (even
    /// while [`AlipaySim::set_notify`] is off). Nothing happens if the trade has none.
    pub async fn redeliver(&self, out_trade_no: &str) {
        let note = self.inner.lock().last_note(out_trade_no).cloned();
        if let Some(note) = note {
            notify::deliver_once(&self.inner, &note).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_keys_load_and_pair() {
        let config = SimConfig::test_keys("2021000000000000", "2088000000000000");
        let sim_public = Rsa2PublicKey::from_pem(include_str!("../../keys/alipay_sim_public.pem"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.sim_private_key.public_key(), sim_public);
        assert_eq!(config.retry_schedule.len(), ALIPAY_RETRY_SCHEDULE.len());
        let signature = config
            .sim_private_key
            .sign_base64(b"content")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(sim_public.verify_base64(b"content", &signature).is_ok());
    }
}
