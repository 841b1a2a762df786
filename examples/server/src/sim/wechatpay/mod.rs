//! A WeChat Pay APIv3 gateway simulator, for tests: the merchant API and the notification
//! system of a direct merchant (普通商户), behaving as WeChat Pay documents them for the calls
//! this repository makes.
//!
//! [`WechatSim`] stands in for `https://api.mch.weixin.qq.com` (point `[wechatpay].gateway` at
//! [`WechatSim::gateway_url`]):
//!
//! - `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close` with `{"mchid"}` (关闭订单):
//!   an unpaid order (`NOTPAY`) becomes `CLOSED`, answer `204` with no body; closing a closed
//!   order again is `204` too; an unknown order is `404 ORDER_NOT_EXIST`; a paid one
//!   `400 ORDERPAID`.
//! - `POST /v3/refund/domestic/refunds` (申请退款) with `out_trade_no` (or `transaction_id`),
//!   `out_refund_no`, `amount.refund`, `amount.total`, `amount.currency` (`CNY`) and an
//!   optional `notify_url`: `200` with the refund. Refunds are **deduplicated by
//!   `out_refund_no`** across the merchant, as WeChat Pay does ("同一退款单号多次请求只退一笔"):
//!   the same number with the same order and amounts answers the same refund (its status now)
//!   and moves no more money; with another order or amount it is `400 INVALID_REQUEST`. The
//!   refund is `SUCCESS` at once, or `PROCESSING` for a while
//!   ([`WechatSim::set_refund_processing`]) and `SUCCESS` after it. Either way its
//!   `REFUND.SUCCESS` notification goes to the refund's `notify_url` (else the order's) once it
//!   succeeds. Errors: `404 RESOURCE_NOT_EXISTS` (unknown order), `400 INVALID_REQUEST`
//!   (unpaid order, an amount beyond what is left, a `total` that is not the order's, a
//!   reused `out_refund_no`), `400 PARAM_ERROR` (malformed body).
//! - Orders are made by the test ([`WechatSim::create_order`]: the server under test has no
//!   `pay_url` for WeChat Pay) and paid by it ([`WechatSim::pay`], [`WechatSim::pay_late`]),
//!   which sends the `TRANSACTION.SUCCESS` notification.
//! - Notifications (回调通知) are posted as WeChat Pay posts them: the `resource` sealed with
//!   `AEAD_AES_256_GCM` under the APIv3 key, the body signed with the platform key
//!   (SHA256withRSA over `"{timestamp}\n{nonce}\n{body}\n"`) in `Wechatpay-Timestamp`,
//!   `Wechatpay-Nonce`, `Wechatpay-Signature`, `Wechatpay-Serial`. A notification not
//!   answered `200` or `204` is delivered again, the same body with the same `id` signed anew
//!   (a fresh timestamp and nonce), on a configurable, compressed version of WeChat Pay's
//!   schedule ([`WECHATPAY_RETRY_SCHEDULE`]).
//!
//! **Checks, in WeChat Pay's order.** Every request's `Authorization` must be
//! `WECHATPAY2-SHA256-RSA2048` with `mchid`, `nonce_str`, `signature`, `timestamp` and
//! `serial_no`; the `mchid` must be the merchant's, `serial_no` its certificate's, and the
//! signature SHA256withRSA with the merchant's key over
//! `"{METHOD}\n{path and query}\n{timestamp}\n{nonce}\n{body}\n"` (the path and query exactly
//! as received). A failure is `401 SIGN_ERROR`, unsigned, as WeChat Pay signs only the answers
//! to requests whose signature held; every other answer is signed with the platform key
//! (`Wechatpay-*` headers over `"{timestamp}\n{nonce}\n{body}\n"`, the empty body of a 204
//! included), or with another key when a test asks for forged answers
//! ([`WechatSim::set_answer_key`]).
//!
//! **Not modelled:** order creation by the merchant (JSAPI, Native, …), queries, refund
//! queries, the request timestamp's age and nonce reuse (a server under test may run on a
//! test clock), platform certificates (the platform key is a public key with an id,
//! `PUB_KEY_ID_…`), `REFUND.ABNORMAL` and `REFUND.CLOSED`, the one-minute spacing WeChat Pay
//! asks between refunds of one order.
//!
//! Amounts are integer fen. Every handler answers malformed input with an error, never a
//! panic.

mod gateway;
mod http;
mod notify;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use paystate::signature::{Rsa2PrivateKey, Rsa2PublicKey};

pub use notify::Sealed;

/// WeChat Pay's documented redelivery schedule of a notification not acknowledged: 15 s,
/// 15 s, 30 s, 3 min, 10 min, 20 min, 30 min, 30 min, 30 min, 60 min, 3 h, 3 h, 3 h, 6 h,
/// 6 h (24 h 4 min in all). Pass a compressed schedule in [`WechatSimConfig::retry_schedule`]
/// for tests.
pub const WECHATPAY_RETRY_SCHEDULE: [Duration; 15] = [
    Duration::from_secs(15),
    Duration::from_secs(15),
    Duration::from_secs(30),
    Duration::from_secs(3 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(20 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(3 * 3600),
    Duration::from_secs(3 * 3600),
    Duration::from_secs(3 * 3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(6 * 3600),
];

/// How long one notification delivery waits for the merchant's reply before it counts as a
/// failed attempt.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// What WeChat Pay knows of the merchant (its ids, its APIv3 key, the public key of its API
/// certificate) and the platform's own key.
#[derive(Clone)]
pub struct WechatSimConfig {
    /// The merchant id (`mchid`): requests must name it; notifications carry it.
    pub mchid: String,
    /// The application id orders are made under (`appid`), sent in payment notifications.
    pub appid: String,
    /// The merchant's APIv3 key: seals notification resources.
    pub apiv3_key: [u8; 32],
    /// The serial number of the merchant's API certificate: the `serial_no` requests must
    /// carry (compared ignoring case).
    pub merchant_serial: String,
    /// The merchant's public key: verifies requests.
    pub merchant_public_key: Rsa2PublicKey,
    /// The id of the platform key (`Wechatpay-Serial` of answers and notifications), as the
    /// merchant configured it (`PUB_KEY_ID_…`).
    pub platform_serial: String,
    /// The platform's private key: signs answers and notifications. Its public half is what
    /// the merchant pins as WeChat Pay's platform key.
    pub platform_private_key: Rsa2PrivateKey,
    /// The delays between deliveries of a notification not acknowledged (WeChat Pay's
    /// [`WECHATPAY_RETRY_SCHEDULE`], compressed): a notification is delivered at most
    /// `1 + retry_schedule.len()` times.
    pub retry_schedule: Vec<Duration>,
}

impl std::fmt::Debug for WechatSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a key.
        f.debug_struct("WechatSimConfig")
            .field("mchid", &self.mchid)
            .field("appid", &self.appid)
            .field("merchant_serial", &self.merchant_serial)
            .field("platform_serial", &self.platform_serial)
            .field("retry_schedule", &self.retry_schedule)
            .finish_non_exhaustive()
    }
}

/// The committed test-only keys of this package (`keys/`): never for real money. The
/// merchant's key pair is the one the Alipay simulator knows as the application's; the
/// platform's is the Alipay simulator's own.
const MERCHANT_PUBLIC_PEM: &str = include_str!("../../../keys/app_public.pem");
const PLATFORM_PRIVATE_PEM: &str = include_str!("../../../keys/alipay_sim_private.pem");

impl WechatSimConfig {
    /// A configuration with the committed test keys (`keys/app_public.pem` verifies requests,
    /// `keys/alipay_sim_private.pem` signs as the platform, under `platform_serial`) and a
    /// short schedule: WeChat Pay's fifteen redeliveries compressed to 100 ms, 200 ms,
    /// 400 ms, 800 ms, then 1.6 s each.
    ///
    /// # Panics
    ///
    /// If a committed key file does not load: a broken checkout, never input (a unit test
    /// loads them).
    pub fn test_keys(
        mchid: &str,
        appid: &str,
        apiv3_key: [u8; 32],
        merchant_serial: &str,
        platform_serial: &str,
    ) -> WechatSimConfig {
        let merchant_public_key = match Rsa2PublicKey::from_pem(MERCHANT_PUBLIC_PEM) {
            Ok(key) => key,
            Err(e) => panic!("the committed keys/app_public.pem does not load: {e}"),
        };
        let platform_private_key = match Rsa2PrivateKey::from_pem(PLATFORM_PRIVATE_PEM) {
            Ok(key) => key,
            Err(e) => panic!("the committed keys/alipay_sim_private.pem does not load: {e}"),
        };
        WechatSimConfig {
            mchid: mchid.into(),
            appid: appid.into(),
            apiv3_key,
            merchant_serial: merchant_serial.into(),
            merchant_public_key,
            platform_serial: platform_serial.into(),
            platform_private_key,
            retry_schedule: (0..WECHATPAY_RETRY_SCHEDULE.len())
                .map(|i| Duration::from_millis(100 << i.min(4)))
                .collect(),
        }
    }

    /// A notification body as WeChat Pay's platform makes one: `resource` (the JSON of a
    /// transaction or a refund) sealed with `AEAD_AES_256_GCM` under the APIv3 key (a fresh
    /// 12-character nonce, `associated_data` = `original_type` = `transaction` for
    /// `TRANSACTION.*`, `refund` for `REFUND.*`), inside the envelope with `id`,
    /// `create_time`, `resource_type`, `event_type` and `summary`. Sign it with
    /// [`WechatSimConfig::sign`].
    ///
    /// # Errors
    ///
    /// [`WechatSimError::Seal`] if the resource cannot be sealed (longer than AES-GCM allows).
    pub fn seal_notification(
        &self,
        id: &str,
        event_type: &str,
        summary: &str,
        resource: &serde_json::Value,
    ) -> Result<String, WechatSimError> {
        notify::seal(self, id, event_type, summary, resource)
    }

    /// The four `Wechatpay-*` headers of a message signed by the platform at `timestamp`
    /// with `nonce`: SHA256withRSA over `"{timestamp}\n{nonce}\n{body}\n"`.
    pub fn sign(&self, body: &[u8], timestamp: u64, nonce: &str) -> Vec<(String, String)> {
        notify::signature_headers(
            &self.platform_private_key,
            &self.platform_serial,
            body,
            timestamp,
            nonce,
        )
    }
}

/// A copy of one order's state at the simulated WeChat Pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The merchant's order number.
    pub out_trade_no: String,
    /// WeChat Pay's order number (`transaction_id`, 28 digits), given when the order is made.
    pub transaction_id: String,
    /// `NOTPAY`, `SUCCESS`, `CLOSED` (closed unpaid) or `REFUND` (paid, then refunded in
    /// part or in full).
    pub trade_state: String,
    /// The order's amount, in fen.
    pub total: u64,
    /// The refunds accepted, in order. Each moved money once.
    pub refunds: Vec<Refund>,
    /// Where the order's notifications go, if anywhere.
    pub notify_url: Option<String>,
}

/// One refund at the simulated WeChat Pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// WeChat Pay's refund number (`refund_id`).
    pub refund_id: String,
    /// The amount refunded, in fen.
    pub amount: u64,
    /// `SUCCESS` or `PROCESSING`.
    pub status: String,
}

/// One HTTP request the gateway received, and how it was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `close`, `refund`, or `unknown` for another path.
    pub api: String,
    /// The path and query, as received.
    pub path: String,
    /// The order named, if readable.
    pub out_trade_no: Option<String>,
    /// `out_refund_no` of a refund request, if readable.
    pub out_refund_no: Option<String>,
    /// The HTTP status answered: 200, 204, 4xx, or 503 (down).
    pub http_status: u16,
    /// The error `code` answered (`ORDER_NOT_EXIST`, `SIGN_ERROR`), `None` for a success or
    /// when down.
    pub code: Option<String>,
    /// Whether the answer carried the `Wechatpay-*` signature (with the platform key or,
    /// after [`WechatSim::set_answer_key`], another one).
    pub signed: bool,
}

/// One delivery attempt of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The order it is about.
    pub out_trade_no: String,
    /// The notification's `id`: the same on every redelivery of it.
    pub id: String,
    /// `TRANSACTION.SUCCESS` or `REFUND.SUCCESS`.
    pub event_type: String,
    /// The refund's `out_refund_no`, for a refund notification.
    pub out_refund_no: Option<String>,
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
    /// Whether WeChat Pay takes this attempt as received: HTTP 200 or 204 ("接收成功：HTTP
    /// 应答状态码需返回200或204"); anything else is delivered again.
    pub fn acknowledged(&self) -> bool {
        matches!(self.http_status, Some(200 | 204))
    }
}

/// Why a test-driven action of the simulator did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WechatSimError {
    /// No order with this `out_trade_no`.
    #[error("no order with out_trade_no {0:?} at the simulated WeChat Pay")]
    UnknownOrder(String),
    /// An order with this `out_trade_no` exists already.
    #[error("an order with out_trade_no {0:?} exists already")]
    OrderExists(String),
    /// Not an order WeChat Pay accepts: `out_trade_no` must be 6..=32 characters of digits,
    /// letters and `_ - | *`, the total 1..=10^10 fen.
    #[error("not an order WeChat Pay accepts: {0}")]
    InvalidOrder(String),
    /// The order is paid already: a buyer cannot pay it twice.
    #[error("order {0:?} is already paid")]
    AlreadyPaid(String),
    /// The order was closed unpaid (use `pay_late` for a payment that was in flight when the
    /// close happened).
    #[error("order {0:?} is closed")]
    OrderClosed(String),
    /// A notification resource could not be sealed.
    #[error("the notification resource could not be sealed")]
    Seal,
}

/// A simulated WeChat Pay: the merchant API and the notification system, serving HTTP on a
/// listener the caller bound. Cheap to clone: clones share one state.
#[derive(Clone)]
pub struct WechatSim {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WechatSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatSim")
            .field("addr", &self.inner.addr)
            .finish_non_exhaustive()
    }
}

/// What every clone shares.
pub(crate) struct Inner {
    config: WechatSimConfig,
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

impl WechatSim {
    /// Starts serving on `listener` (bind `127.0.0.1:0` in tests) in a spawned task, until
    /// [`WechatSim::shutdown`] or the end of the runtime.
    ///
    /// # Errors
    ///
    /// If the listener's address cannot be read or the HTTP client for notifications cannot
    /// be built.
    pub async fn start(
        config: WechatSimConfig,
        listener: tokio::net::TcpListener,
    ) -> std::io::Result<WechatSim> {
        let addr = listener.local_addr()?;
        let client = reqwest::Client::builder()
            .timeout(NOTIFY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(std::io::Error::other)?;
        let (shutdown, mut stop) = tokio::sync::watch::channel(false);
        let sim = WechatSim {
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
                tracing::error!(error = %e, "the WeChat Pay simulator stopped serving");
            }
        });
        Ok(sim)
    }

    /// Stops serving, redelivering notifications and finishing refunds. Idempotent.
    pub fn shutdown(&self) {
        self.inner.lock().stopped = true;
        let _ = self.inner.shutdown.send(true);
    }

    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The base URL to configure the merchant with (`[wechatpay].gateway`):
    /// `http://127.0.0.1:PORT`.
    pub fn gateway_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &WechatSimConfig {
        &self.inner.config
    }

    /// Where the notifications of orders made from now on go (the `notify_url` a merchant
    /// gives when it makes an order); `None`: nowhere.
    pub fn set_notify_url(&self, url: Option<String>) {
        self.inner.lock().notify_url = url;
    }

    /// Makes an unpaid order (`NOTPAY`) of `total` fen, whose notifications go to the URL set
    /// by [`WechatSim::set_notify_url`].
    ///
    /// # Errors
    ///
    /// [`WechatSimError::InvalidOrder`], [`WechatSimError::OrderExists`].
    pub fn create_order(&self, out_trade_no: &str, total: u64) -> Result<(), WechatSimError> {
        self.inner.lock().create_order(out_trade_no, total)
    }

    /// A copy of the order with this `out_trade_no`, if it was made.
    pub fn order(&self, out_trade_no: &str) -> Option<Order> {
        self.inner.lock().order(out_trade_no)
    }

    /// The buyer pays a `NOTPAY` order: it becomes `SUCCESS` and its `TRANSACTION.SUCCESS`
    /// notification is sent (in a spawned task).
    ///
    /// # Errors
    ///
    /// [`WechatSimError::UnknownOrder`], [`WechatSimError::AlreadyPaid`],
    /// [`WechatSimError::OrderClosed`].
    pub async fn pay(&self, out_trade_no: &str) -> Result<(), WechatSimError> {
        self.inner.pay(out_trade_no, false)
    }

    /// A payment that was in flight when the order was closed: pays even a `CLOSED` order,
    /// which becomes `SUCCESS`; the notification follows.
    ///
    /// # Errors
    ///
    /// [`WechatSimError::UnknownOrder`], [`WechatSimError::AlreadyPaid`].
    pub async fn pay_late(&self, out_trade_no: &str) -> Result<(), WechatSimError> {
        self.inner.pay(out_trade_no, true)
    }

    /// How many refunds were accepted under this `out_refund_no` (over all orders): each
    /// moves money once. WeChat Pay refunds each `out_refund_no` once, so this must stay at
    /// most 1.
    pub fn refunds_effected(&self, out_refund_no: &str) -> usize {
        self.inner.lock().refunds_effected(out_refund_no)
    }

    /// Every HTTP request so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().calls.clone()
    }

    /// Every delivery attempt of this order's notifications so far, in order.
    pub fn deliveries(&self, out_trade_no: &str) -> Vec<Delivery> {
        self.inner
            .lock()
            .deliveries
            .iter()
            .filter(|d| d.out_trade_no == out_trade_no)
            .cloned()
            .collect()
    }

    /// A provider outage: while `down`, every HTTP request is answered `503 Service
    /// Unavailable`, unsigned, and changes nothing. Notifications, and the test's own
    /// [`WechatSim::pay`], go on.
    pub fn set_down(&self, down: bool) {
        self.inner.lock().down = down;
    }

    /// While `false`, notifications are made but not delivered, and pending redeliveries
    /// stop: lost notifications. [`WechatSim::redeliver`] still delivers.
    pub fn set_notify(&self, enabled: bool) {
        self.inner.lock().notify_off = !enabled;
    }

    /// How refunds accepted from now on proceed: `None` (the default), `SUCCESS` at once;
    /// `Some(after)`, `PROCESSING` and then `SUCCESS` once `after` has passed, when their
    /// `REFUND.SUCCESS` notification is sent.
    pub fn set_refund_processing(&self, after: Option<Duration>) {
        self.inner.lock().processing = after;
    }

    /// Forged answers: while `Some(key)`, answers are signed with `key` instead of the
    /// platform key (under the platform key's serial), as an impostor on the merchant's
    /// connection would sign them; the business they answer is done all the same (a refund
    /// moves money). `None` (the default): genuine answers. Notifications are always signed
    /// with the platform key.
    pub fn set_answer_key(&self, key: Option<Rsa2PrivateKey>) {
        self.inner.lock().answer_key = key;
    }

    /// Delivers the order's last notification once more, now, signed anew, and waits for the
    /// reply (even while [`WechatSim::set_notify`] is off). Nothing happens if the order has
    /// none.
    pub async fn redeliver(&self, out_trade_no: &str) {
        let note = self.inner.lock().last_note(out_trade_no).cloned();
        if let Some(note) = note {
            notify::deliver_once(&self.inner, &note).await;
        }
    }

    /// The order's last notification (delivered or not) as a delivery would send it now:
    /// signed anew. For replay and redelivery tests.
    pub fn notification(&self, out_trade_no: &str) -> Option<Sealed> {
        let note = self.inner.lock().last_note(out_trade_no).cloned()?;
        Some(notify::signed(&self.inner, &note))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_keys_load_and_pair() {
        let config = WechatSimConfig::test_keys("1900000109", "wx1", [7; 32], "5157F0", "PUB");
        let merchant_private =
            Rsa2PrivateKey::from_pem(include_str!("../../../keys/app_private.pem"))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(merchant_private.public_key(), config.merchant_public_key);
        assert_eq!(config.retry_schedule.len(), WECHATPAY_RETRY_SCHEDULE.len());
        assert_eq!(
            config.retry_schedule.first(),
            Some(&Duration::from_millis(100))
        );
        assert_eq!(
            config.retry_schedule.last(),
            Some(&Duration::from_millis(1600))
        );
    }
}
