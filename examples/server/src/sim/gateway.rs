//! The gateway's state and its methods: the checks every request goes through, the cashier,
//! `query`, `close`, `refund`, `fastpay.refund.query`, the buyer's payment, and the
//! notifications they cause.

use std::collections::BTreeMap;
use std::sync::Arc;

use paystate::alipay::content::is_blank;
use serde_json::{Map, Value};

use super::wire::{self, ParamsError, yuan};
use super::{Call, Delivery, Inner, SimError, Trade, notify};

/// The cashier methods: the merchant sends the buyer's browser to a signed URL of them.
const PAGE_PAY: &str = "alipay.trade.page.pay";
const WAP_PAY: &str = "alipay.trade.wap.pay";

/// Whether `method` is answered with the cashier page.
pub(crate) fn is_cashier_method(method: &str) -> bool {
    method == PAGE_PAY || method == WAP_PAY
}

/// The longest `out_trade_no` / `out_request_no` Alipay accepts, in bytes.
const MAX_ID_LEN: usize = 64;
/// The longest `subject` Alipay accepts, in bytes.
const MAX_SUBJECT_LEN: usize = 256;

/// The simulated buyer.
const BUYER_ID: &str = "2088102177846880";
const BUYER_LOGON_ID: &str = "sim***@example.com";

/// A trade's status at Alipay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    WaitBuyerPay,
    Success,
    Closed,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::WaitBuyerPay => "WAIT_BUYER_PAY",
            Status::Success => "TRADE_SUCCESS",
            Status::Closed => "TRADE_CLOSED",
        }
    }
}

/// One refund that moved money.
#[derive(Debug, Clone)]
struct RefundRec {
    out_request_no: String,
    fen: u64,
    gmt_refund_pay: String,
}

/// One trade.
#[derive(Debug, Clone)]
pub(crate) struct TradeRec {
    out_trade_no: String,
    trade_no: String,
    subject: String,
    total_fen: u64,
    status: Status,
    /// `alipay.trade.page.pay` or `alipay.trade.wap.pay`: names the browser's return.
    method: String,
    notify_url: Option<String>,
    return_url: Option<String>,
    gmt_create: String,
    gmt_payment: Option<String>,
    gmt_close: Option<String>,
    refunds: Vec<RefundRec>,
    last_note: Option<Note>,
}

impl TradeRec {
    fn refunded_fen(&self) -> u64 {
        self.refunds
            .iter()
            .fold(0u64, |sum, r| sum.saturating_add(r.fen))
    }

    fn paid(&self) -> bool {
        self.gmt_payment.is_some()
    }

    fn to_trade(&self) -> Trade {
        Trade {
            out_trade_no: self.out_trade_no.clone(),
            trade_no: self.trade_no.clone(),
            status: self.status.name().into(),
            total_amount: yuan(self.total_fen),
            refunds: self
                .refunds
                .iter()
                .map(|r| (r.out_request_no.clone(), yuan(r.fen)))
                .collect(),
            notify_url: self.notify_url.clone(),
            return_url: self.return_url.clone(),
            subject: self.subject.clone(),
            gmt_payment: self.gmt_payment.clone(),
        }
    }
}

/// A notification made for a trade: its fields, and the signed body that is delivered (the
/// same bytes on every redelivery, as Alipay keeps `notify_id`).
#[derive(Debug, Clone)]
pub(crate) struct Note {
    pub(crate) out_trade_no: String,
    pub(crate) notify_id: String,
    pub(crate) trade_status: String,
    pub(crate) out_biz_no: Option<String>,
    pub(crate) url: String,
    pub(crate) fields: Vec<(String, String)>,
    pub(crate) body: String,
}

/// Everything the simulator remembers.
#[derive(Debug, Default)]
pub(crate) struct State {
    trades: BTreeMap<String, TradeRec>,
    pub(crate) calls: Vec<Call>,
    pub(crate) deliveries: Vec<Delivery>,
    pub(crate) down: bool,
    pub(crate) notify_off: bool,
    pub(crate) stopped: bool,
    seq: u64,
}

impl State {
    pub(crate) fn trade(&self, out_trade_no: &str) -> Option<Trade> {
        self.trades.get(out_trade_no).map(TradeRec::to_trade)
    }

    pub(crate) fn refunds_effected(&self, out_request_no: &str) -> usize {
        self.trades
            .values()
            .flat_map(|t| &t.refunds)
            .filter(|r| r.out_request_no == out_request_no)
            .count()
    }

    pub(crate) fn last_note(&self, out_trade_no: &str) -> Option<&Note> {
        self.trades.get(out_trade_no)?.last_note.as_ref()
    }

    /// Whether scheduled deliveries go on.
    pub(crate) fn delivering(&self) -> bool {
        !self.notify_off && !self.stopped
    }

    /// A new 28-digit trade number: the Beijing date, `22001`, and 15 digits.
    fn new_trade_no(&mut self, now_millis: u64) -> String {
        self.seq = self.seq.wrapping_add(1);
        let date: String = wire::beijing(now_millis)
            .chars()
            .filter(char::is_ascii_digit)
            .take(8)
            .collect();
        let random = rand::random::<u32>() % 1_000_000_000;
        format!("{date:0>8}22001{:06}{random:09}", self.seq % 1_000_000)
    }

    /// The trade named by `trade_no` (preferred, as Alipay does) or `out_trade_no`.
    fn find(&mut self, biz: &Map<String, Value>) -> Result<&mut TradeRec, Refusal> {
        let by_trade_no = biz_str(biz, "trade_no");
        let by_out = biz_str(biz, "out_trade_no");
        let found = match (by_trade_no, by_out) {
            (Some(no), _) => self.trades.values_mut().find(|t| t.trade_no == no),
            (None, Some(out)) => self.trades.get_mut(out),
            (None, None) => {
                return Err(Refusal::business(
                    "ACQ.INVALID_PARAMETER",
                    "参数无效: out_trade_no 和 trade_no 不能同时为空",
                ));
            }
        };
        found.ok_or_else(|| Refusal::business("ACQ.TRADE_NOT_EXIST", "交易不存在"))
    }
}

/// A request the gateway does not carry out, with Alipay's codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: &'static str,
    msg: &'static str,
    pub(crate) sub_code: &'static str,
    pub(crate) sub_msg: String,
    /// Fields Alipay adds to some business failures (a refund's `refund_fee`).
    extra: Fields,
}

impl Refusal {
    /// `40001 Missing Required Arguments`: a gateway refusal, unsigned.
    fn missing(sub_code: &'static str, sub_msg: impl Into<String>) -> Refusal {
        Refusal {
            code: "40001",
            msg: "Missing Required Arguments",
            sub_code,
            sub_msg: sub_msg.into(),
            extra: Vec::new(),
        }
    }

    /// `40002 Invalid Arguments`: a gateway refusal, unsigned.
    fn invalid(sub_code: &'static str, sub_msg: impl Into<String>) -> Refusal {
        Refusal {
            code: "40002",
            msg: "Invalid Arguments",
            sub_code,
            sub_msg: sub_msg.into(),
            extra: Vec::new(),
        }
    }

    /// `40004 Business Failed`: the method's own failure, signed.
    fn business(sub_code: &'static str, sub_msg: impl Into<String>) -> Refusal {
        Refusal {
            code: "40004",
            msg: "Business Failed",
            sub_code,
            sub_msg: sub_msg.into(),
            extra: Vec::new(),
        }
    }

    fn with(mut self, extra: Fields) -> Refusal {
        self.extra = extra;
        self
    }

    /// Alipay signs business answers; the gateway's own refusals (bad app, bad signature,
    /// missing parameters) come unsigned.
    fn signed(&self) -> bool {
        self.code == "40004"
    }

    fn fields(&self) -> Fields {
        let mut fields = vec![
            ("code", self.code.to_string()),
            ("msg", self.msg.to_string()),
            ("sub_code", self.sub_code.to_string()),
            ("sub_msg", self.sub_msg.clone()),
        ];
        fields.extend(self.extra.iter().cloned());
        fields
    }
}

/// How the gateway answers one request.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A JSON answer (status 200, as Alipay answers even its refusals).
    Json { body: String },
    /// The cashier page.
    Cashier { html: String },
    /// The cashier's error page (status 400).
    CashierRefused { html: String, refusal: Refusal },
    /// The gateway is down (status 503).
    Unavailable,
}

/// The fields of a JSON answer, in the order written (`code` and `msg` first).
type Fields = Vec<(&'static str, String)>;

/// A field of `biz_content` as non-blank text.
fn biz_str<'a>(biz: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    biz.get(key)
        .and_then(Value::as_str)
        .filter(|v| !is_blank(v.as_bytes()))
}

fn success() -> Fields {
    vec![("code", "10000".into()), ("msg", "Success".into())]
}

fn check_id(value: &str, field: &str) -> Result<(), Refusal> {
    if value.len() > MAX_ID_LEN || value.chars().any(char::is_control) {
        return Err(Refusal::business(
            "ACQ.INVALID_PARAMETER",
            format!("参数无效: {field}"),
        ));
    }
    Ok(())
}

fn require_biz(biz: Option<&Map<String, Value>>) -> Result<&Map<String, Value>, Refusal> {
    biz.ok_or_else(|| {
        Refusal::business(
            "ACQ.INVALID_PARAMETER",
            "参数无效: biz_content 缺失或不是 JSON 对象",
        )
    })
}

impl Inner {
    /// One gateway request: the query string and the form body (either may carry the
    /// parameters). Records the call; sends the notifications it causes.
    pub(crate) fn gateway(self: &Arc<Self>, query: Option<&str>, body: &[u8]) -> Reply {
        let parsed = wire::parse_params(query, body);
        // Read leniently, so that even a request refused for its form is answered as its
        // method is (the cashier's error page, or `<method>_response`).
        let method = wire::first_value(query, body, "method")
            .map(|m| m.trim().to_string())
            .unwrap_or_default();
        let biz: Option<Map<String, Value>> = parsed
            .as_ref()
            .ok()
            .and_then(|p| p.get("biz_content"))
            .and_then(|b| serde_json::from_str::<Value>(b).ok())
            .and_then(|v| match v {
                Value::Object(map) => Some(map),
                _ => None,
            });
        let ids = |key| biz.as_ref().and_then(|b| biz_str(b, key)).map(String::from);
        let mut call = Call {
            method: method.clone(),
            out_trade_no: ids("out_trade_no"),
            out_request_no: ids("out_request_no"),
            http_status: 200,
            code: None,
            sub_code: None,
        };
        let cashier = is_cashier_method(&method);

        let mut st = self.lock();
        if st.down {
            call.http_status = 503;
            st.calls.push(call);
            return Reply::Unavailable;
        }
        let params = match parsed {
            Ok(params) => params,
            Err(ParamsError::Duplicate(key)) => {
                let refusal = Refusal::invalid(
                    "isv.invalid-parameter",
                    format!("参数无效: {key} 出现了两次"),
                );
                return self.refuse(&mut st, call, cashier, &method, refusal);
            }
        };
        if let Err(refusal) = self.check_common(&params) {
            return self.refuse(&mut st, call, cashier, &method, refusal);
        }

        let mut notes = Vec::new();
        let outcome = match method.as_str() {
            PAGE_PAY | WAP_PAY => match self.cashier(&mut st, &method, &params, biz.as_ref()) {
                Ok(html) => {
                    call.code = Some("10000".into());
                    st.calls.push(call);
                    return Reply::Cashier { html };
                }
                Err(refusal) => Err(refusal),
            },
            "alipay.trade.query" => trade_query(&mut st, biz.as_ref()),
            "alipay.trade.close" => trade_close(&mut st, biz.as_ref()),
            "alipay.trade.refund" => self.refund(&mut st, biz.as_ref()).map(|(fields, note)| {
                notes.extend(note);
                fields
            }),
            "alipay.trade.fastpay.refund.query" => refund_query(&mut st, biz.as_ref()),
            _ => Err(Refusal::invalid("isv.invalid-method", "不存在的方法名")),
        };
        let reply = match outcome {
            Ok(fields) => {
                call.code = Some("10000".into());
                st.calls.push(call);
                Reply::Json {
                    body: self.answer(&wire::response_key(&method), &fields, true),
                }
            }
            Err(refusal) => self.refuse(&mut st, call, cashier, &method, refusal),
        };
        drop(st);
        for note in notes {
            notify::spawn_delivery(self, note);
        }
        reply
    }

    /// Records a refused call and answers it: the cashier's error page for a cashier method,
    /// else the JSON answer (`error_response` when there is no method to name).
    fn refuse(
        &self,
        st: &mut State,
        mut call: Call,
        cashier: bool,
        method: &str,
        refusal: Refusal,
    ) -> Reply {
        call.code = Some(refusal.code.into());
        call.sub_code = Some(refusal.sub_code.into());
        if cashier {
            call.http_status = 400;
            st.calls.push(call);
            let html = wire::html_page(
                "支付宝 - 错误",
                &format!(
                    "<h1>抱歉，无法付款</h1>\n<p>错误代码 <code>{}</code> <code>{}</code></p>\n<p>{}</p>",
                    wire::html_escape(refusal.code),
                    wire::html_escape(refusal.sub_code),
                    wire::html_escape(&refusal.sub_msg),
                ),
            );
            return Reply::CashierRefused { html, refusal };
        }
        st.calls.push(call);
        let key = if method.is_empty() || refusal.sub_code == "isv.invalid-method" {
            "error_response".to_string()
        } else {
            wire::response_key(method)
        };
        Reply::Json {
            body: self.answer(&key, &refusal.fields(), refusal.signed()),
        }
    }

    /// The JSON answer, signed over the exact bytes of the response object when `signed`.
    fn answer(&self, key: &str, fields: &[(&'static str, String)], signed: bool) -> String {
        let object = wire::json_object(fields);
        let sign = if signed {
            match self.config.sim_private_key.sign_base64(object.as_bytes()) {
                Ok(sign) => Some(sign),
                Err(e) => {
                    tracing::error!(error = %e, "the simulator could not sign an answer");
                    None
                }
            }
        } else {
            None
        };
        wire::response_body(key, &object, sign.as_deref())
    }

    /// The gateway's checks of the common parameters and of the signature, in Alipay's order.
    fn check_common(&self, p: &BTreeMap<String, String>) -> Result<(), Refusal> {
        let get = |key: &str| {
            p.get(key)
                .map(String::as_str)
                .filter(|v| !is_blank(v.as_bytes()))
        };
        let app_id =
            get("app_id").ok_or_else(|| Refusal::missing("isv.missing-app-id", "缺少AppID参数"))?;
        if app_id != self.config.app_id {
            return Err(Refusal::invalid("isv.invalid-app-id", "无效的AppID参数"));
        }
        get("method").ok_or_else(|| Refusal::missing("isv.missing-method", "缺少方法名参数"))?;
        let sign =
            get("sign").ok_or_else(|| Refusal::missing("isv.missing-signature", "缺少签名参数"))?;
        let sign_type = get("sign_type")
            .ok_or_else(|| Refusal::missing("isv.missing-signature-type", "缺少签名类型参数"))?;
        if sign_type != "RSA2" {
            return Err(Refusal::invalid(
                "isv.invalid-signature-type",
                "无效的签名类型参数（本应用只接受 RSA2）",
            ));
        }
        match get("charset") {
            Some(c) if c.eq_ignore_ascii_case("utf-8") || c.eq_ignore_ascii_case("utf8") => {}
            _ => {
                return Err(Refusal::invalid(
                    "isv.invalid-charset",
                    "字符集错误（模拟器只接受 utf-8）",
                ));
            }
        }
        let timestamp = get("timestamp")
            .ok_or_else(|| Refusal::missing("isv.missing-timestamp", "缺少时间戳参数"))?;
        if !wire::is_alipay_timestamp(timestamp) {
            return Err(Refusal::invalid(
                "isv.invalid-timestamp",
                "非法的时间戳参数（格式为 yyyy-MM-dd HH:mm:ss）",
            ));
        }
        get("version").ok_or_else(|| Refusal::missing("isv.missing-version", "缺少版本参数"))?;
        if let Some(format) = get("format")
            && !format.eq_ignore_ascii_case("json")
        {
            return Err(Refusal::invalid("isv.invalid-format", "无效的数据格式参数"));
        }
        let content = wire::signed_content(p.iter().map(|(k, v)| (k.as_str(), v.as_str())), false);
        self.config
            .app_public_key
            .verify_base64(content.as_bytes(), sign)
            .map_err(|_| {
                Refusal::invalid(
                    "isv.invalid-signature",
                    format!(
                        "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，\
                         网关生成的验签字符串为：{content}"
                    ),
                )
            })
    }

    /// `page.pay` / `wap.pay`: create the trade, or show it again; the cashier page.
    fn cashier(
        &self,
        st: &mut State,
        method: &str,
        params: &BTreeMap<String, String>,
        biz: Option<&Map<String, Value>>,
    ) -> Result<String, Refusal> {
        let biz = require_biz(biz)?;
        let bad =
            |what: &str| Refusal::business("ACQ.INVALID_PARAMETER", format!("参数无效: {what}"));
        let out_trade_no = biz_str(biz, "out_trade_no").ok_or_else(|| bad("out_trade_no"))?;
        check_id(out_trade_no, "out_trade_no")?;
        let total_fen = biz
            .get("total_amount")
            .and_then(wire::amount_fen)
            .ok_or_else(|| bad("total_amount"))?;
        let subject = biz_str(biz, "subject").ok_or_else(|| bad("subject"))?;
        if subject.len() > MAX_SUBJECT_LEN {
            return Err(bad("subject"));
        }
        let product = if method == PAGE_PAY {
            "FAST_INSTANT_TRADE_PAY"
        } else {
            "QUICK_WAP_WAY"
        };
        if biz_str(biz, "product_code") != Some(product) {
            return Err(bad(&format!("product_code 应为 {product}")));
        }
        if let Some(trade) = st.trades.get(out_trade_no) {
            if trade.total_fen != total_fen {
                return Err(Refusal::business(
                    "ACQ.CONTEXT_INCONSISTENT",
                    "交易信息被篡改: 同一 out_trade_no 的金额与原交易不一致",
                ));
            }
            return match trade.status {
                Status::WaitBuyerPay => Ok(cashier_html(trade)),
                Status::Success => Err(Refusal::business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")),
                Status::Closed => Err(Refusal::business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")),
            };
        }
        let now = wire::now_millis();
        let url = |key: &str| params.get(key).filter(|v| !is_blank(v.as_bytes())).cloned();
        let trade = TradeRec {
            out_trade_no: out_trade_no.into(),
            trade_no: st.new_trade_no(now),
            subject: subject.into(),
            total_fen,
            status: Status::WaitBuyerPay,
            method: method.into(),
            notify_url: url("notify_url"),
            return_url: url("return_url"),
            gmt_create: wire::beijing(now),
            gmt_payment: None,
            gmt_close: None,
            refunds: Vec::new(),
            last_note: None,
        };
        let html = cashier_html(&trade);
        st.trades.insert(out_trade_no.into(), trade);
        Ok(html)
    }

    /// `alipay.trade.refund`, deduplicated by `out_request_no` as Alipay does.
    fn refund(
        &self,
        st: &mut State,
        biz: Option<&Map<String, Value>>,
    ) -> Result<(Fields, Option<Note>), Refusal> {
        let biz = require_biz(biz)?;
        let fen = biz
            .get("refund_amount")
            .and_then(wire::amount_fen)
            .ok_or_else(|| Refusal::business("ACQ.INVALID_PARAMETER", "参数无效: refund_amount"))?;
        let trade = st.find(biz)?;
        // Without out_request_no, Alipay takes the order id: a refund of the whole amount.
        let named = biz_str(biz, "out_request_no");
        let out_request_no = named.unwrap_or(&trade.out_trade_no).to_string();
        check_id(&out_request_no, "out_request_no")?;
        let failed_extra = vec![
            ("out_trade_no", trade.out_trade_no.clone()),
            ("refund_fee", "0.00".to_string()),
            ("send_back_fee", "0.00".to_string()),
        ];
        let answer = |trade: &TradeRec, fund_change: &str, rec: &RefundRec| {
            let mut fields = success();
            fields.extend([
                ("trade_no", trade.trade_no.clone()),
                ("out_trade_no", trade.out_trade_no.clone()),
                ("buyer_logon_id", BUYER_LOGON_ID.to_string()),
                ("fund_change", fund_change.to_string()),
                ("refund_fee", yuan(trade.refunded_fen())),
                ("gmt_refund_pay", rec.gmt_refund_pay.clone()),
                ("buyer_user_id", BUYER_ID.to_string()),
                ("send_back_fee", yuan(rec.fen)),
            ]);
            fields
        };
        if let Some(rec) = trade
            .refunds
            .iter()
            .find(|r| r.out_request_no == out_request_no)
        {
            // The same request again: the refund it made, no money moves.
            return Ok((answer(trade, "N", rec), None));
        }
        if !trade.paid() {
            return Err(
                Refusal::business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法").with(failed_extra),
            );
        }
        let left = trade.total_fen.saturating_sub(trade.refunded_fen());
        if named.is_none() && fen != trade.total_fen {
            return Err(Refusal::business(
                "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
                "撤销或退款金额与订单金额不一致",
            )
            .with(failed_extra));
        }
        if fen > left {
            return Err(
                Refusal::business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
                    .with(failed_extra),
            );
        }
        let now = wire::now_millis();
        let rec = RefundRec {
            out_request_no: out_request_no.clone(),
            fen,
            gmt_refund_pay: wire::beijing(now),
        };
        trade.refunds.push(rec.clone());
        let mut extra = vec![
            ("out_biz_no", out_request_no),
            ("refund_fee", yuan(trade.refunded_fen())),
            ("gmt_refund", wire::beijing_millis(now)),
        ];
        if trade.refunded_fen() >= trade.total_fen {
            trade.status = Status::Closed;
            let closed = wire::beijing(now);
            trade.gmt_close = Some(closed.clone());
            extra.push(("gmt_close", closed));
        }
        let fields = answer(trade, "Y", &rec);
        let note = self.make_note(trade, extra);
        Ok((fields, note))
    }

    /// The buyer pays (`late`: even a trade closed unpaid). Returns where the browser goes
    /// back to, if the merchant gave a `return_url`; sends the notification.
    pub(crate) fn pay(
        self: &Arc<Self>,
        out_trade_no: &str,
        late: bool,
    ) -> Result<Option<String>, SimError> {
        let mut st = self.lock();
        let trade = st
            .trades
            .get_mut(out_trade_no)
            .ok_or_else(|| SimError::UnknownTrade(out_trade_no.into()))?;
        match trade.status {
            Status::WaitBuyerPay => {}
            _ if trade.paid() => return Err(SimError::AlreadyPaid(out_trade_no.into())),
            Status::Closed if late => {}
            Status::Success | Status::Closed => {
                return Err(SimError::TradeClosed(out_trade_no.into()));
            }
        }
        trade.status = Status::Success;
        trade.gmt_payment = Some(wire::beijing(wire::now_millis()));
        trade.gmt_close = None;
        let location = self.return_location(trade);
        let note = self.make_note(trade, Vec::new());
        drop(st);
        if let Some(note) = note {
            notify::spawn_delivery(self, note);
        }
        Ok(location)
    }

    /// The browser's return after paying: `return_url` with the signed return parameters
    /// (verified by the merchant as a notification, rule V1).
    fn return_location(&self, trade: &TradeRec) -> Option<String> {
        let url = trade.return_url.as_deref()?;
        let pairs: Vec<(String, String)> = [
            ("charset", "utf-8".to_string()),
            ("out_trade_no", trade.out_trade_no.clone()),
            ("method", format!("{}.return", trade.method)),
            ("total_amount", yuan(trade.total_fen)),
            ("trade_no", trade.trade_no.clone()),
            ("auth_app_id", self.config.app_id.clone()),
            ("version", "1.0".to_string()),
            ("app_id", self.config.app_id.clone()),
            ("sign_type", "RSA2".to_string()),
            ("seller_id", self.config.seller_id.clone()),
            ("timestamp", wire::beijing(wire::now_millis())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let query = self.signed_form(&pairs);
        let url = url.split('#').next().unwrap_or(url);
        let sep = if url.contains('?') { '&' } else { '?' };
        Some(format!("{url}{sep}{query}"))
    }

    /// `pairs` as a form body with the simulator's `sign` over them under rule V1.
    pub(crate) fn signed_form(&self, pairs: &[(String, String)]) -> String {
        let content =
            wire::signed_content(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), true);
        let sign = match self.config.sim_private_key.sign_base64(content.as_bytes()) {
            Ok(sign) => sign,
            Err(e) => {
                tracing::error!(error = %e, "the simulator could not sign a notification");
                String::new()
            }
        };
        wire::form_body(
            pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .chain([("sign", sign.as_str())]),
        )
    }

    /// The trade's notification now (`trade_status_sync`), with `extra` fields (a refund's),
    /// kept as its last; `None` without a `notify_url`.
    fn make_note(&self, trade: &mut TradeRec, extra: Fields) -> Option<Note> {
        let url = trade.notify_url.clone()?;
        let now = wire::now_millis();
        let notify_id = format!("{:032x}", rand::random::<u128>());
        let total = yuan(trade.total_fen);
        let paid_amount = if trade.paid() {
            total.clone()
        } else {
            "0.00".to_string()
        };
        let mut fields: Fields = vec![("gmt_create", trade.gmt_create.clone())];
        fields.push(("charset", "utf-8".into()));
        if let Some(paid) = &trade.gmt_payment {
            fields.push(("gmt_payment", paid.clone()));
        }
        fields.extend([
            ("notify_time", wire::beijing(now)),
            ("subject", trade.subject.clone()),
        ]);
        if trade.paid() {
            fields.push(("buyer_id", BUYER_ID.into()));
        }
        fields.extend([
            ("invoice_amount", paid_amount.clone()),
            ("version", "1.0".into()),
            ("notify_id", notify_id.clone()),
        ]);
        if trade.paid() {
            fields.push((
                "fund_bill_list",
                format!(r#"[{{"amount":"{total}","fundChannel":"ALIPAYACCOUNT"}}]"#),
            ));
        }
        fields.extend([
            ("notify_type", "trade_status_sync".into()),
            ("out_trade_no", trade.out_trade_no.clone()),
            ("total_amount", total),
            ("trade_status", trade.status.name().into()),
            ("trade_no", trade.trade_no.clone()),
            ("auth_app_id", self.config.app_id.clone()),
            ("receipt_amount", paid_amount.clone()),
            ("point_amount", "0.00".into()),
            ("buyer_pay_amount", paid_amount),
            ("app_id", self.config.app_id.clone()),
            ("sign_type", "RSA2".into()),
            ("seller_id", self.config.seller_id.clone()),
        ]);
        let out_biz_no = extra
            .iter()
            .find(|(k, _)| *k == "out_biz_no")
            .map(|(_, v)| v.clone());
        fields.extend(extra);
        let fields: Vec<(String, String)> = fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let note = Note {
            out_trade_no: trade.out_trade_no.clone(),
            notify_id,
            trade_status: trade.status.name().into(),
            out_biz_no,
            url,
            body: self.signed_form(&fields),
            fields,
        };
        trade.last_note = Some(note.clone());
        Some(note)
    }
}

/// `alipay.trade.query`.
fn trade_query(st: &mut State, biz: Option<&Map<String, Value>>) -> Result<Fields, Refusal> {
    let trade = st.find(require_biz(biz)?)?;
    let total = yuan(trade.total_fen);
    let paid_amount = if trade.paid() {
        total.clone()
    } else {
        "0.00".to_string()
    };
    let mut fields = success();
    fields.extend([
        ("trade_no", trade.trade_no.clone()),
        ("out_trade_no", trade.out_trade_no.clone()),
    ]);
    if trade.paid() {
        fields.push(("buyer_logon_id", BUYER_LOGON_ID.into()));
    }
    fields.extend([
        ("trade_status", trade.status.name().to_string()),
        ("total_amount", total),
        ("buyer_pay_amount", paid_amount.clone()),
        ("point_amount", "0.00".into()),
        ("invoice_amount", paid_amount.clone()),
    ]);
    if let Some(paid) = &trade.gmt_payment {
        fields.push(("send_pay_date", paid.clone()));
    }
    fields.push(("receipt_amount", paid_amount));
    if trade.paid() {
        fields.push(("buyer_user_id", BUYER_ID.into()));
    }
    Ok(fields)
}

/// `alipay.trade.close`: only a trade waiting for the buyer can be closed.
fn trade_close(st: &mut State, biz: Option<&Map<String, Value>>) -> Result<Fields, Refusal> {
    let trade = st.find(require_biz(biz)?)?;
    if trade.status != Status::WaitBuyerPay {
        return Err(Refusal::business(
            "ACQ.TRADE_STATUS_ERROR",
            "交易状态不合法",
        ));
    }
    trade.status = Status::Closed;
    trade.gmt_close = Some(wire::beijing(wire::now_millis()));
    let mut fields = success();
    fields.extend([
        ("trade_no", trade.trade_no.clone()),
        ("out_trade_no", trade.out_trade_no.clone()),
    ]);
    Ok(fields)
}

/// `alipay.trade.fastpay.refund.query`: the refund made under `out_request_no`, or an empty
/// success when there is none.
fn refund_query(st: &mut State, biz: Option<&Map<String, Value>>) -> Result<Fields, Refusal> {
    let biz = require_biz(biz)?;
    let out_request_no = biz_str(biz, "out_request_no")
        .ok_or_else(|| Refusal::business("ACQ.INVALID_PARAMETER", "参数无效: out_request_no"))?;
    let trade = st.find(biz)?;
    let mut fields = success();
    if let Some(rec) = trade
        .refunds
        .iter()
        .find(|r| r.out_request_no == out_request_no)
    {
        fields.extend([
            ("trade_no", trade.trade_no.clone()),
            ("out_trade_no", trade.out_trade_no.clone()),
            ("out_request_no", rec.out_request_no.clone()),
            ("total_amount", yuan(trade.total_fen)),
            ("refund_amount", yuan(rec.fen)),
            ("refund_status", "REFUND_SUCCESS".into()),
        ]);
    }
    Ok(fields)
}

/// The cashier page of a trade waiting for the buyer.
fn cashier_html(trade: &TradeRec) -> String {
    let e = wire::html_escape;
    wire::html_page(
        "支付宝 - 收银台 (模拟)",
        &format!(
            "<h1>支付宝收银台（模拟器）</h1>\n\
             <p class=\"subject\">{}</p>\n\
             <p class=\"amount\">¥ {}</p>\n\
             <p>商户订单号 <code>{}</code>，交易号 <code>{}</code></p>\n\
             <form method=\"post\" action=\"/cashier/pay\">\n\
             <input type=\"hidden\" name=\"out_trade_no\" value=\"{}\">\n\
             <button type=\"submit\">Pay</button>\n\
             </form>",
            e(&trade.subject),
            e(&yuan(trade.total_fen)),
            e(&trade.out_trade_no),
            e(&trade.trade_no),
            e(&trade.out_trade_no),
        ),
    )
}
