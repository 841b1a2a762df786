//! The simulated WeChat Pay's state and its APIs: the `Authorization` check every request goes
//! through, close, refund, the buyer's payment, and the notifications they cause.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use paystate::signature::Rsa2PrivateKey;
use serde_json::{Map, Value, json};

use super::super::wire;
use super::{Call, Delivery, Inner, Order, Refund, WechatSimConfig, WechatSimError, notify};

/// The scheme of the merchant's `Authorization` header.
const AUTH_SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";

/// An order's `trade_state` at WeChat Pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TradeState {
    NotPay,
    Success,
    Closed,
    Refund,
}

impl TradeState {
    fn name(self) -> &'static str {
        match self {
            TradeState::NotPay => "NOTPAY",
            TradeState::Success => "SUCCESS",
            TradeState::Closed => "CLOSED",
            TradeState::Refund => "REFUND",
        }
    }
}

/// One accepted refund.
#[derive(Debug, Clone)]
struct RefundRec {
    out_refund_no: String,
    refund_id: String,
    fen: u64,
    /// The `amount.total` it was asked with (the order's).
    total: u64,
    success: bool,
    create_time: String,
    success_time: Option<String>,
    notify_url: Option<String>,
}

impl RefundRec {
    fn status(&self) -> &'static str {
        if self.success {
            "SUCCESS"
        } else {
            "PROCESSING"
        }
    }
}

/// One order.
#[derive(Debug, Clone)]
struct OrderRec {
    out_trade_no: String,
    transaction_id: String,
    total: u64,
    state: TradeState,
    notify_url: Option<String>,
    success_time: Option<String>,
    refunds: Vec<RefundRec>,
    last_note: Option<Note>,
}

impl OrderRec {
    fn paid(&self) -> bool {
        self.success_time.is_some()
    }

    fn refunded(&self) -> u64 {
        self.refunds
            .iter()
            .fold(0u64, |sum, r| sum.saturating_add(r.fen))
    }

    fn to_order(&self) -> Order {
        Order {
            out_trade_no: self.out_trade_no.clone(),
            transaction_id: self.transaction_id.clone(),
            trade_state: self.state.name().into(),
            total: self.total,
            refunds: self
                .refunds
                .iter()
                .map(|r| Refund {
                    out_refund_no: r.out_refund_no.clone(),
                    refund_id: r.refund_id.clone(),
                    amount: r.fen,
                    status: r.status().into(),
                })
                .collect(),
            notify_url: self.notify_url.clone(),
        }
    }
}

/// A notification made for an order: the sealed body, delivered on every attempt with a fresh
/// signature (WeChat Pay keeps the `id` and the body).
#[derive(Debug, Clone)]
pub(crate) struct Note {
    pub(crate) out_trade_no: String,
    pub(crate) id: String,
    pub(crate) event_type: String,
    pub(crate) out_refund_no: Option<String>,
    pub(crate) url: String,
    pub(crate) body: String,
}

/// Everything the simulator remembers.
#[derive(Default)]
pub(crate) struct State {
    orders: BTreeMap<String, OrderRec>,
    pub(crate) calls: Vec<Call>,
    pub(crate) deliveries: Vec<Delivery>,
    pub(crate) down: bool,
    pub(crate) notify_off: bool,
    pub(crate) stopped: bool,
    /// Where the notifications of orders made from now on go.
    pub(crate) notify_url: Option<String>,
    /// `Some(after)`: new refunds are `PROCESSING` for `after`.
    pub(crate) processing: Option<Duration>,
    /// Signs answers instead of the platform key (forged answers).
    pub(crate) answer_key: Option<Rsa2PrivateKey>,
    seq: u64,
}

impl State {
    pub(crate) fn order(&self, out_trade_no: &str) -> Option<Order> {
        self.orders.get(out_trade_no).map(OrderRec::to_order)
    }

    pub(crate) fn refunds_effected(&self, out_refund_no: &str) -> usize {
        self.orders
            .values()
            .flat_map(|o| &o.refunds)
            .filter(|r| r.out_refund_no == out_refund_no)
            .count()
    }

    pub(crate) fn last_note(&self, out_trade_no: &str) -> Option<&Note> {
        self.orders.get(out_trade_no)?.last_note.as_ref()
    }

    /// Whether scheduled deliveries go on.
    pub(crate) fn delivering(&self) -> bool {
        !self.notify_off && !self.stopped
    }

    /// `prefix`, the Beijing date, a sequence number and random digits: `digits` long.
    fn new_number(&mut self, prefix: &str, digits: usize) -> String {
        self.seq = self.seq.wrapping_add(1);
        let date: String = wire::beijing(wire::now_millis())
            .chars()
            .filter(char::is_ascii_digit)
            .take(8)
            .collect();
        let random = rand::random::<u64>() % 10_000_000_000_000;
        let number = format!("{prefix}{date:0>8}{:06}{random:013}", self.seq % 1_000_000);
        number.chars().take(digits).collect()
    }

    pub(crate) fn create_order(
        &mut self,
        out_trade_no: &str,
        total: u64,
    ) -> Result<(), WechatSimError> {
        if !valid_out_trade_no(out_trade_no) {
            return Err(WechatSimError::InvalidOrder(format!(
                "out_trade_no {out_trade_no:?} is not 6..=32 characters of digits, letters and _-|*"
            )));
        }
        if !(1..=wire::MAX_FEN).contains(&total) {
            return Err(WechatSimError::InvalidOrder(format!(
                "total {total} is not 1..={} fen",
                wire::MAX_FEN
            )));
        }
        if self.orders.contains_key(out_trade_no) {
            return Err(WechatSimError::OrderExists(out_trade_no.into()));
        }
        let transaction_id = self.new_number("420000", 28);
        self.orders.insert(
            out_trade_no.into(),
            OrderRec {
                out_trade_no: out_trade_no.into(),
                transaction_id,
                total,
                state: TradeState::NotPay,
                notify_url: self.notify_url.clone(),
                success_time: None,
                refunds: Vec::new(),
                last_note: None,
            },
        );
        Ok(())
    }
}

/// WeChat Pay's `out_trade_no`: 6..=32 characters of digits, letters and `_ - | *`.
fn valid_out_trade_no(no: &str) -> bool {
    (6..=32).contains(&no.len())
        && no
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-|*".contains(&b))
}

/// WeChat Pay's `out_refund_no`: 1..=64 characters of digits, letters and `_ - | * @`.
fn valid_out_refund_no(no: &str) -> bool {
    (1..=64).contains(&no.len())
        && no
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-|*@".contains(&b))
}

/// A request WeChat Pay does not carry out: the status and `{"code","message"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    status: u16,
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
        }
    }

    fn param(message: impl Into<String>) -> Refusal {
        Refusal::new(400, "PARAM_ERROR", message)
    }

    fn invalid(message: impl Into<String>) -> Refusal {
        Refusal::new(400, "INVALID_REQUEST", message)
    }

    fn sign(message: impl Into<String>) -> Refusal {
        Refusal::new(401, "SIGN_ERROR", message)
    }

    fn body(&self) -> String {
        json!({ "code": self.code, "message": self.message }).to_string()
    }
}

/// Which API a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Api {
    /// `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close`.
    Close(String),
    /// `POST /v3/refund/domestic/refunds`.
    Refund,
    /// Any other path.
    Unknown,
}

/// How one request is answered.
#[derive(Debug)]
pub(crate) enum Reply {
    /// An answer with its `Wechatpay-*` headers (any status; an empty body for 204).
    Signed {
        status: u16,
        body: String,
        headers: Vec<(String, String)>,
    },
    /// An unsigned error (`401 SIGN_ERROR`, `404` for an unknown path).
    Unsigned { status: u16, body: String },
    /// Down: `503`.
    Unavailable,
}

/// A business answer before it is signed.
struct Answer {
    status: u16,
    body: String,
}

/// What a refund request leads to besides its answer.
#[derive(Default)]
struct Aftermath {
    notes: Vec<Note>,
    /// `(out_trade_no, out_refund_no, after)`: a `PROCESSING` refund to finish.
    finish: Option<(String, String, Duration)>,
}

fn str_field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object
        .get(key)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

impl Inner {
    /// One request: `method`, the path and query as received, the `Authorization` header
    /// and the body. Records the call; sends the notifications it causes.
    pub(crate) fn handle(
        self: &Arc<Self>,
        api: Api,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Reply {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let object = parsed.as_ref().and_then(Value::as_object);
        let mut call = Call {
            api: match &api {
                Api::Close(_) => "close",
                Api::Refund => "refund",
                Api::Unknown => "unknown",
            }
            .into(),
            path: path.into(),
            out_trade_no: match &api {
                Api::Close(no) => Some(no.clone()),
                _ => object
                    .and_then(|o| str_field(o, "out_trade_no"))
                    .map(String::from),
            },
            out_refund_no: object
                .and_then(|o| str_field(o, "out_refund_no"))
                .map(String::from),
            http_status: 0,
            code: None,
            signed: false,
        };
        // The signature is checked before the state is locked (it is the slow part).
        let checked = match api {
            Api::Unknown => Err(Refusal::new(404, "NOT_FOUND", "请求的资源不存在")),
            _ => self.check_authorization(method, path, authorization, body),
        };

        let mut st = self.lock();
        if st.down {
            call.http_status = 503;
            st.calls.push(call);
            return Reply::Unavailable;
        }
        if let Err(refusal) = checked {
            call.http_status = refusal.status;
            call.code = Some(refusal.code.into());
            st.calls.push(call);
            return Reply::Unsigned {
                status: refusal.status,
                body: refusal.body(),
            };
        }
        let mut aftermath = Aftermath::default();
        let outcome = match &api {
            Api::Close(no) => close(&mut st, &self.config, no, object),
            Api::Refund => self.refund(&mut st, object, &mut aftermath),
            Api::Unknown => Err(Refusal::new(404, "NOT_FOUND", "请求的资源不存在")),
        };
        let answer = match outcome {
            Ok(answer) => answer,
            Err(refusal) => {
                call.code = Some(refusal.code.into());
                Answer {
                    status: refusal.status,
                    body: refusal.body(),
                }
            }
        };
        call.http_status = answer.status;
        call.signed = true;
        st.calls.push(call);
        let key = st
            .answer_key
            .as_ref()
            .unwrap_or(&self.config.platform_private_key);
        let headers = notify::signature_headers(
            key,
            &self.config.platform_serial,
            answer.body.as_bytes(),
            wire::now_millis() / 1000,
            &notify::nonce(32),
        );
        drop(st);
        for note in aftermath.notes {
            notify::spawn_delivery(self, note);
        }
        if let Some((out_trade_no, out_refund_no, after)) = aftermath.finish {
            let inner = Arc::clone(self);
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                inner.finish_refund(&out_trade_no, &out_refund_no);
            });
        }
        Reply::Signed {
            status: answer.status,
            body: answer.body,
            headers,
        }
    }

    /// The merchant's `Authorization`: the scheme, the five fields, the merchant and its
    /// certificate serial, then SHA256withRSA over
    /// `"{method}\n{path}\n{timestamp}\n{nonce}\n{body}\n"` with the merchant's public key.
    fn check_authorization(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<(), Refusal> {
        let header = authorization.ok_or_else(|| Refusal::sign("缺少 Authorization 请求头"))?;
        let rest = header
            .strip_prefix(AUTH_SCHEME)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(|| Refusal::sign(format!("认证类型应为 {AUTH_SCHEME}")))?;
        let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
        for part in rest.split(',') {
            let (key, value) = part
                .trim()
                .split_once('=')
                .ok_or_else(|| Refusal::sign("Authorization 格式错误"))?;
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or_else(|| Refusal::sign(format!("Authorization 中 {key} 的值应有引号")))?;
            if fields.insert(key, value).is_some() {
                return Err(Refusal::sign(format!("Authorization 中 {key} 出现了两次")));
            }
        }
        let get = |key: &str| {
            fields
                .get(key)
                .copied()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Refusal::sign(format!("Authorization 缺少 {key}")))
        };
        let (mchid, nonce, signature, timestamp, serial) = (
            get("mchid")?,
            get("nonce_str")?,
            get("signature")?,
            get("timestamp")?,
            get("serial_no")?,
        );
        if mchid != self.config.mchid {
            return Err(Refusal::sign("商户号与商户证书不匹配"));
        }
        if !serial.eq_ignore_ascii_case(&self.config.merchant_serial) {
            return Err(Refusal::sign("商户证书序列号有误"));
        }
        if !timestamp.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Refusal::sign("timestamp 应为秒级时间戳"));
        }
        let mut message = Vec::with_capacity(body.len().saturating_add(128));
        for part in [
            method.as_bytes(),
            path.as_bytes(),
            timestamp.as_bytes(),
            nonce.as_bytes(),
            body,
        ] {
            message.extend_from_slice(part);
            message.push(b'\n');
        }
        self.config
            .merchant_public_key
            .verify_base64(&message, signature)
            .map_err(|_| Refusal::sign("签名错误，请检查后再试"))
    }

    /// `POST /v3/refund/domestic/refunds`, deduplicated by `out_refund_no` as WeChat Pay
    /// does.
    fn refund(
        &self,
        st: &mut State,
        object: Option<&Map<String, Value>>,
        aftermath: &mut Aftermath,
    ) -> Result<Answer, Refusal> {
        let body = object.ok_or_else(|| Refusal::param("请求体不是 JSON 对象"))?;
        let out_refund_no =
            str_field(body, "out_refund_no").ok_or_else(|| Refusal::param("缺少 out_refund_no"))?;
        if !valid_out_refund_no(out_refund_no) {
            return Err(Refusal::param("out_refund_no 格式错误"));
        }
        let amount = body
            .get("amount")
            .and_then(Value::as_object)
            .ok_or_else(|| Refusal::param("缺少 amount"))?;
        let refund = amount
            .get("refund")
            .and_then(Value::as_u64)
            .filter(|&f| f > 0)
            .ok_or_else(|| Refusal::param("amount.refund 应为正整数"))?;
        let total = amount
            .get("total")
            .and_then(Value::as_u64)
            .filter(|&f| f > 0)
            .ok_or_else(|| Refusal::param("amount.total 应为正整数"))?;
        if str_field(amount, "currency") != Some("CNY") {
            return Err(Refusal::param("amount.currency 只支持 CNY"));
        }
        let notify_url = match body.get("notify_url") {
            None => None,
            Some(Value::String(url))
                if url.starts_with("http://") || url.starts_with("https://") =>
            {
                Some(url.clone())
            }
            Some(_) => return Err(Refusal::param("notify_url 格式错误")),
        };
        let key = match (
            str_field(body, "transaction_id"),
            str_field(body, "out_trade_no"),
        ) {
            (Some(id), _) => st
                .orders
                .values()
                .find(|o| o.transaction_id == id)
                .map(|o| o.out_trade_no.clone()),
            (None, Some(no)) => st.orders.contains_key(no).then(|| no.to_string()),
            (None, None) => {
                return Err(Refusal::param(
                    "out_trade_no 和 transaction_id 不能同时为空",
                ));
            }
        };
        // The same out_refund_no again: the refund it made, and no money moves.
        let earlier = st.orders.values().find_map(|o| {
            o.refunds
                .iter()
                .find(|r| r.out_refund_no == out_refund_no)
                .map(|r| (o, r))
        });
        if let Some((order, rec)) = earlier {
            if key.as_deref() == Some(order.out_trade_no.as_str())
                && rec.fen == refund
                && rec.total == total
            {
                return Ok(Answer {
                    status: 200,
                    body: refund_answer(order, rec),
                });
            }
            return Err(Refusal::invalid(
                "同一退款单号的订单或金额与之前的请求不一致，请核实后再试",
            ));
        }
        let key = key.ok_or_else(|| Refusal::new(404, "RESOURCE_NOT_EXISTS", "订单不存在"))?;
        let processing = st.processing;
        let refund_id = st.new_number("50300", 29);
        let order = st
            .orders
            .get_mut(&key)
            .ok_or_else(|| Refusal::new(404, "RESOURCE_NOT_EXISTS", "订单不存在"))?;
        if total != order.total {
            return Err(Refusal::invalid("订单金额与原订单金额不一致"));
        }
        if !order.paid() {
            return Err(Refusal::invalid("订单未支付，无法退款"));
        }
        if refund > order.total.saturating_sub(order.refunded()) {
            return Err(Refusal::invalid("申请退款金额超过订单可退金额"));
        }
        let now = wire::now_millis();
        let rec = RefundRec {
            out_refund_no: out_refund_no.into(),
            refund_id,
            fen: refund,
            total,
            success: processing.is_none(),
            create_time: notify::rfc3339(now),
            success_time: processing.is_none().then(|| notify::rfc3339(now)),
            notify_url,
        };
        order.state = TradeState::Refund;
        order.refunds.push(rec.clone());
        match processing {
            None => aftermath.notes.extend(self.refund_note(order, &rec)),
            Some(after) => {
                aftermath.finish =
                    Some((order.out_trade_no.clone(), rec.out_refund_no.clone(), after))
            }
        }
        Ok(Answer {
            status: 200,
            body: refund_answer(order, &rec),
        })
    }

    /// A `PROCESSING` refund succeeds: its `REFUND.SUCCESS` notification is sent.
    fn finish_refund(self: &Arc<Self>, out_trade_no: &str, out_refund_no: &str) {
        let mut st = self.lock();
        if st.stopped {
            return;
        }
        let Some(order) = st.orders.get_mut(out_trade_no) else {
            return;
        };
        let Some(index) = order
            .refunds
            .iter()
            .position(|r| r.out_refund_no == out_refund_no && !r.success)
        else {
            return;
        };
        let rec = match order.refunds.get_mut(index) {
            Some(rec) => {
                rec.success = true;
                rec.success_time = Some(notify::rfc3339(wire::now_millis()));
                rec.clone()
            }
            None => return,
        };
        let note = self.refund_note(order, &rec);
        drop(st);
        if let Some(note) = note {
            notify::spawn_delivery(self, note);
        }
    }

    /// The buyer pays (`late`: even an order closed unpaid); sends the notification.
    pub(crate) fn pay(
        self: &Arc<Self>,
        out_trade_no: &str,
        late: bool,
    ) -> Result<(), WechatSimError> {
        let mut st = self.lock();
        let order = st
            .orders
            .get_mut(out_trade_no)
            .ok_or_else(|| WechatSimError::UnknownOrder(out_trade_no.into()))?;
        match order.state {
            TradeState::NotPay => {}
            _ if order.paid() => return Err(WechatSimError::AlreadyPaid(out_trade_no.into())),
            TradeState::Closed if late => {}
            TradeState::Success | TradeState::Refund | TradeState::Closed => {
                return Err(WechatSimError::OrderClosed(out_trade_no.into()));
            }
        }
        order.state = TradeState::Success;
        order.success_time = Some(notify::rfc3339(wire::now_millis()));
        let note = self.payment_note(order);
        drop(st);
        if let Some(note) = note {
            notify::spawn_delivery(self, note);
        }
        Ok(())
    }

    /// The order's `TRANSACTION.SUCCESS` notification, kept as its last; `None` without a
    /// `notify_url`.
    fn payment_note(&self, order: &mut OrderRec) -> Option<Note> {
        let url = order.notify_url.clone()?;
        let resource = json!({
            "mchid": self.config.mchid,
            "appid": self.config.appid,
            "out_trade_no": order.out_trade_no,
            "transaction_id": order.transaction_id,
            "trade_type": "NATIVE",
            "trade_state": "SUCCESS",
            "trade_state_desc": "支付成功",
            "bank_type": "OTHERS",
            "attach": "",
            "success_time": order.success_time,
            "payer": { "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" },
            "amount": {
                "total": order.total,
                "payer_total": order.total,
                "currency": "CNY",
                "payer_currency": "CNY",
            },
        });
        let note = self.make_note(
            order,
            "TRANSACTION.SUCCESS",
            "支付成功",
            &resource,
            None,
            url,
        )?;
        order.last_note = Some(note.clone());
        Some(note)
    }

    /// A refund's `REFUND.SUCCESS` notification, kept as the order's last; `None` without a
    /// `notify_url` (the refund's, else the order's).
    fn refund_note(&self, order: &mut OrderRec, rec: &RefundRec) -> Option<Note> {
        let url = rec
            .notify_url
            .clone()
            .or_else(|| order.notify_url.clone())?;
        let resource = json!({
            "mchid": self.config.mchid,
            "out_trade_no": order.out_trade_no,
            "transaction_id": order.transaction_id,
            "out_refund_no": rec.out_refund_no,
            "refund_id": rec.refund_id,
            "refund_status": "SUCCESS",
            "success_time": rec.success_time,
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": order.total,
                "refund": rec.fen,
                "payer_total": order.total,
                "payer_refund": rec.fen,
            },
        });
        let note = self.make_note(
            order,
            "REFUND.SUCCESS",
            "退款成功",
            &resource,
            Some(rec.out_refund_no.clone()),
            url,
        )?;
        order.last_note = Some(note.clone());
        Some(note)
    }

    fn make_note(
        &self,
        order: &OrderRec,
        event_type: &str,
        summary: &str,
        resource: &Value,
        out_refund_no: Option<String>,
        url: String,
    ) -> Option<Note> {
        let id = format!("EV-{}", notify::digits(24));
        match notify::seal(&self.config, &id, event_type, summary, resource) {
            Ok(body) => Some(Note {
                out_trade_no: order.out_trade_no.clone(),
                id,
                event_type: event_type.into(),
                out_refund_no,
                url,
                body,
            }),
            Err(e) => {
                tracing::error!(error = %e, "the WeChat Pay simulator could not seal a notification");
                None
            }
        }
    }
}

/// `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close`: an unpaid order is closed
/// (again: still 204); a paid one cannot be.
fn close(
    st: &mut State,
    config: &WechatSimConfig,
    out_trade_no: &str,
    object: Option<&Map<String, Value>>,
) -> Result<Answer, Refusal> {
    let body = object.ok_or_else(|| Refusal::param("请求体不是 JSON 对象"))?;
    let mchid = str_field(body, "mchid").ok_or_else(|| Refusal::param("缺少 mchid"))?;
    if mchid != config.mchid {
        return Err(Refusal::param("mchid 与请求的商户号不一致"));
    }
    if !valid_out_trade_no(out_trade_no) {
        return Err(Refusal::param("out_trade_no 格式错误"));
    }
    let order = st
        .orders
        .get_mut(out_trade_no)
        .ok_or_else(|| Refusal::new(404, "ORDER_NOT_EXIST", "订单不存在"))?;
    match order.state {
        TradeState::NotPay => order.state = TradeState::Closed,
        TradeState::Closed => {}
        TradeState::Success | TradeState::Refund => {
            return Err(Refusal::new(400, "ORDERPAID", "订单已支付"));
        }
    }
    Ok(Answer {
        status: 204,
        body: String::new(),
    })
}

/// The `200` answer to a refund request: the refund as it is now.
fn refund_answer(order: &OrderRec, rec: &RefundRec) -> String {
    let mut answer = json!({
        "refund_id": rec.refund_id,
        "out_refund_no": rec.out_refund_no,
        "transaction_id": order.transaction_id,
        "out_trade_no": order.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": rec.create_time,
        "status": rec.status(),
        "funds_account": "AVAILABLE",
        "amount": {
            "total": order.total,
            "refund": rec.fen,
            "from": [],
            "payer_total": order.total,
            "payer_refund": rec.fen,
            "settlement_refund": rec.fen,
            "settlement_total": order.total,
            "discount_refund": 0,
            "currency": "CNY",
            "refund_fee": 0,
        },
        "promotion_detail": [],
    });
    if let (Some(time), Some(object)) = (&rec.success_time, answer.as_object_mut()) {
        object.insert("success_time".into(), Value::String(time.clone()));
    }
    answer.to_string()
}
