//! The WeChat Pay simulator against the merchant side: every request here is signed by the
//! server's own WeChat Pay client, every answer and notification is verified and mapped by the
//! `paystate` crate's functions with the committed platform public key, on loopback listeners
//! the tests bind themselves.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use paystate::guard::ReplayGuard;
use paystate::provider::wechatpay::{Keys, Merchant, NotificationResource, verify_notification};
use paystate::provider::{Facts, MapError};
use paystate::signature::{Rsa2PrivateKey, Rsa2PublicKey};
use paystate::webhook::wechatpay::{ApiV3Key, Headers, PlatformKey};
use paystate::{Command, Currency, Input, InputKind, Money, Outcome, Payment, RefundId, Timestamp};
use paystate_server::config::WechatpayConfig;
use paystate_server::sim::wechatpay::{WechatSim, WechatSimConfig, WechatSimError};
use paystate_server::wechatpay::{CallError, RawAnswer, RefundRequest, WechatpayClient};
use tokio::net::TcpListener;

const MCHID: &str = "1900000109";
const APPID: &str = "wxd678efh567hg6787";
const APIV3_KEY: [u8; 32] = *b"0123456789abcdef0123456789abcdef";
const MERCHANT_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";
const PLATFORM_SERIAL: &str = "PUB_KEY_ID_0119000001092025111500000000000000";
const MERCHANT: Merchant<'static> = Merchant {
    mchid: MCHID,
    appid: APPID,
};
/// The longest any test waits for something to happen.
const WAIT: Duration = Duration::from_secs(10);

fn platform_public_key() -> Rsa2PublicKey {
    Rsa2PublicKey::from_pem(include_str!("../keys/alipay_sim_public.pem")).unwrap()
}

fn merchant_private_key() -> Rsa2PrivateKey {
    Rsa2PrivateKey::from_pem(include_str!("../keys/app_private.pem")).unwrap()
}

fn platform_keys() -> Vec<PlatformKey> {
    vec![PlatformKey::from_public_key(PLATFORM_SERIAL, platform_public_key()).unwrap()]
}

fn sim_config() -> WechatSimConfig {
    WechatSimConfig::test_keys(MCHID, APPID, APIV3_KEY, MERCHANT_SERIAL, PLATFORM_SERIAL)
}

async fn start() -> WechatSim {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    WechatSim::start(sim_config(), listener).await.unwrap()
}

/// The server's client, pointed at `sim`; refunds name `{public_url}/notify/wechatpay`.
fn client(sim: &WechatSim, public_url: &str) -> WechatpayClient {
    let config = WechatpayConfig {
        mchid: MCHID.into(),
        appid: APPID.into(),
        apiv3_key: ApiV3Key::new(APIV3_KEY),
        merchant_serial: MERCHANT_SERIAL.into(),
        merchant_private_key: Arc::new(merchant_private_key()),
        platform_keys: platform_keys(),
        gateway: sim.gateway_url(),
    };
    WechatpayClient::new(config, public_url)
}

fn now() -> Timestamp {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Timestamp::from_secs(secs)
}

fn cny(fen: u64) -> Money {
    Money::from_minor(fen, Currency::CNY)
}

fn paid_payment(fen: u64) -> Payment {
    let mut payment: Payment = Payment::new(cny(fen), now()).unwrap();
    let event = paystate::EventId::new(b"paid").unwrap();
    applied(&payment.apply(&Input::succeed(event, cny(fen)), now()));
    payment
}

fn applied(outcome: &Outcome) {
    assert!(matches!(outcome, Outcome::Applied(_)), "{outcome:?}");
}

fn refund_of(input: &Input) -> (RefundId, Money) {
    match input.command() {
        Command::Refund { refund_id, amount } => (refund_id, amount),
        other => panic!("expected a refund, got {other:?}"),
    }
}

fn header<'a>(answer: &'a RawAnswer, name: &str) -> Option<&'a str> {
    answer
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn error_code(answer: &RawAnswer) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&answer.body).ok()?;
    v["code"].as_str().map(String::from)
}

/// Closes `no` and maps the verified answer for a payment of `facts`.
async fn close(
    client: &WechatpayClient,
    no: &str,
    payment: &Payment,
) -> (RawAnswer, Result<Input, MapError>) {
    let raw = client.close(no, now()).await.unwrap();
    let answer = client
        .verify_close(&raw, no, now())
        .unwrap_or_else(|e| panic!("the crate refused the close answer ({e}): {raw:?}"));
    let mapped = answer.to_input(&MERCHANT, &Facts::of(no, payment));
    (raw, mapped)
}

/// Requests a refund and maps the verified answer.
async fn refund(
    client: &WechatpayClient,
    no: &str,
    out_refund_no: &str,
    refund: u64,
    total: u64,
    payment: &Payment,
) -> (RawAnswer, Result<Input, MapError>) {
    let request = RefundRequest {
        out_trade_no: no,
        out_refund_no,
        refund: cny(refund),
        total: cny(total),
    };
    let raw = client.refund(&request, now()).await.unwrap();
    let answer = client
        .verify_refund(&raw, now())
        .unwrap_or_else(|e| panic!("the crate refused the refund answer ({e}): {raw:?}"));
    let mapped = answer.to_input(&MERCHANT, &Facts::of(no, payment));
    (raw, mapped)
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One request a receiver got: its headers and body.
type Received = (Vec<(String, String)>, String);

/// A merchant's `/notify/wechatpay`: records every request and answers with the statuses of
/// `script` (its last repeated).
struct Receiver {
    base: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn url(&self) -> String {
        format!("{}/notify/wechatpay", self.base)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

type ReceiverState = (Arc<Mutex<Vec<Received>>>, Arc<Vec<u16>>);

async fn receive(
    State((received, script)): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut received = received.lock().unwrap();
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    received.push((headers, String::from_utf8(body.to_vec()).unwrap()));
    let i = (received.len() - 1).min(script.len() - 1);
    StatusCode::from_u16(script[i]).unwrap()
}

async fn receiver(script: &[u16]) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/notify/wechatpay", post(receive))
        .with_state((received.clone(), Arc::new(script.to_vec())));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { base, received }
}

/// Verifies (platform key, APIv3 key, `guard`) and maps one received notification.
fn map_notification<const N: usize>(
    received: &Received,
    guard: &mut ReplayGuard<N>,
    order: &str,
    payment: &Payment,
) -> (String, Result<Input, MapError>) {
    let (headers, body) = received;
    let headers = Headers::from_pairs(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .unwrap_or_else(|e| panic!("signature headers ({e}): {headers:?}"));
    let platform = platform_keys();
    let api_v3 = ApiV3Key::new(APIV3_KEY);
    let keys = Keys {
        platform: &platform,
        api_v3: &api_v3,
    };
    let mut buf = vec![0u8; body.len()];
    let note = verify_notification(&headers, body.as_bytes(), &keys, guard, now(), &mut buf)
        .unwrap_or_else(|e| panic!("the crate refused the notification ({e}): {body}"));
    let event_type = note.message().event_type().to_owned();
    if let NotificationResource::Transaction(t) = note.message().resource() {
        assert_eq!(t.out_trade_no(), Some(order));
    }
    (
        event_type,
        note.to_input(&MERCHANT, &Facts::of(order, payment)),
    )
}

#[tokio::test]
async fn close_answers_verify_and_map_to_close() {
    let sim = start().await;
    let client = client(&sim, "http://127.0.0.1:9");
    sim.create_order("wx-close-a", 1000).unwrap();
    let mut payment: Payment = Payment::new(cny(1000), now()).unwrap();
    let cancel = paystate::EventId::new(b"cancel").unwrap();
    applied(&payment.apply(&Input::cancel(cancel), now()));
    assert!(payment.close_pending());

    // 204, empty and signed: the close.
    let (raw, input) = close(&client, "wx-close-a", &payment).await;
    assert_eq!(raw.status, 204);
    assert!(raw.body.is_empty());
    assert_eq!(header(&raw, "wechatpay-serial"), Some(PLATFORM_SERIAL));
    let input = input.unwrap();
    assert_eq!(input.kind(), InputKind::Close);
    applied(&payment.apply(&input, now()));
    assert!(!payment.close_pending());
    assert_eq!(sim.order("wx-close-a").unwrap().trade_state, "CLOSED");
    // Closing again is a close again (the same event: a duplicate).
    let (raw, again) = close(&client, "wx-close-a", &payment).await;
    assert_eq!(raw.status, 204);
    assert_eq!(again.unwrap(), input);

    // An order WeChat Pay never had: ORDER_NOT_EXIST, which is a close too.
    let (raw, input) = close(
        &client,
        "wx-close-none",
        &Payment::new(cny(990), now()).unwrap(),
    )
    .await;
    assert_eq!(
        (raw.status, error_code(&raw).as_deref()),
        (404, Some("ORDER_NOT_EXIST"))
    );
    assert_eq!(input.unwrap().kind(), InputKind::Close);

    // A paid order is not closed: ORDERPAID, a provider error.
    sim.create_order("wx-close-paid", 500).unwrap();
    sim.pay("wx-close-paid").await.unwrap();
    let (raw, input) = close(&client, "wx-close-paid", &paid_payment(500)).await;
    assert_eq!(
        (raw.status, error_code(&raw).as_deref()),
        (400, Some("ORDERPAID"))
    );
    assert_eq!(input, Err(MapError::ProviderError));
    assert_eq!(sim.order("wx-close-paid").unwrap().trade_state, "SUCCESS");
    let calls = sim.calls();
    assert_eq!(calls.len(), 4);
    assert!(
        calls.iter().all(|c| c.api == "close" && c.signed),
        "{calls:?}"
    );
}

#[tokio::test]
async fn refunds_deduplicate_by_out_refund_no_and_map_to_refunds() {
    let sim = start().await;
    let merchant = receiver(&[204]).await;
    sim.set_notify_url(Some(merchant.url()));
    let client = client(&sim, &merchant.base);
    sim.create_order("wx-refund-a", 1000).unwrap();
    let mut payment: Payment = Payment::new(cny(1000), now()).unwrap();

    // Paid: TRANSACTION.SUCCESS, verified and mapped to succeed.
    sim.pay("wx-refund-a").await.unwrap();
    wait_until("the payment notification", || {
        merchant.received().len() == 1
    })
    .await;
    let mut guard = ReplayGuard::<64>::new();
    let (event_type, input) =
        map_notification(&merchant.received()[0], &mut guard, "wx-refund-a", &payment);
    assert_eq!(event_type, "TRANSACTION.SUCCESS");
    let input = input.unwrap();
    assert_eq!(input.kind(), InputKind::Succeed);
    applied(&payment.apply(&input, now()));

    // A refund: SUCCESS at once, mapped to the refund under out_refund_no.
    let (raw, input) = refund(&client, "wx-refund-a", "wx-rf-1", 300, 1000, &payment).await;
    assert_eq!(raw.status, 200, "{:?}", String::from_utf8_lossy(&raw.body));
    let input = input.unwrap();
    assert_eq!(
        refund_of(&input),
        (RefundId::new(b"wx-rf-1").unwrap(), cny(300))
    );
    applied(&payment.apply(&input, now()));
    let refund_id = sim.order("wx-refund-a").unwrap().refunds[0]
        .refund_id
        .clone();
    assert_eq!(refund_id.len(), 29, "{refund_id}");

    // The same request again: the same refund, no money moves, the same input.
    let (raw, again) = refund(&client, "wx-refund-a", "wx-rf-1", 300, 1000, &payment).await;
    let body: serde_json::Value = serde_json::from_slice(&raw.body).unwrap();
    assert_eq!(body["refund_id"], refund_id.as_str());
    assert_eq!(body["status"], "SUCCESS");
    assert_eq!(again.unwrap(), input);
    assert_eq!(sim.refunds_effected("wx-rf-1"), 1);

    // The same number with another amount, more than is left, another total, no such order.
    for (no, out_refund_no, fen, total, status, code) in [
        ("wx-refund-a", "wx-rf-1", 200, 1000, 400, "INVALID_REQUEST"),
        ("wx-refund-a", "wx-rf-2", 800, 1000, 400, "INVALID_REQUEST"),
        ("wx-refund-a", "wx-rf-3", 100, 999, 400, "INVALID_REQUEST"),
        (
            "wx-refund-none",
            "wx-rf-4",
            100,
            1000,
            404,
            "RESOURCE_NOT_EXISTS",
        ),
    ] {
        let (raw, input) = refund(&client, no, out_refund_no, fen, total, &payment).await;
        assert_eq!(
            (raw.status, error_code(&raw).as_deref()),
            (status, Some(code)),
            "{out_refund_no}"
        );
        assert_eq!(input, Err(MapError::ProviderError));
    }
    assert_eq!(sim.order("wx-refund-a").unwrap().refunds.len(), 1);

    // REFUND.SUCCESS went to the refund's notify_url: the same refund, recorded once.
    wait_until("the refund notification", || merchant.received().len() == 2).await;
    let (event_type, input) =
        map_notification(&merchant.received()[1], &mut guard, "wx-refund-a", &payment);
    assert_eq!(event_type, "REFUND.SUCCESS");
    let input = input.unwrap();
    assert_eq!(
        refund_of(&input),
        (RefundId::new(b"wx-rf-1").unwrap(), cny(300))
    );
    assert_eq!(payment.apply(&input, now()), Outcome::Duplicate);
    assert_eq!(payment.refunded(), cny(300));
    assert_eq!(sim.order("wx-refund-a").unwrap().trade_state, "REFUND");
}

#[tokio::test]
async fn a_processing_refund_succeeds_later_with_its_notification() {
    let sim = start().await;
    let merchant = receiver(&[204]).await;
    let client = client(&sim, &merchant.base);
    sim.create_order("wx-proc-a", 2000).unwrap();
    sim.pay("wx-proc-a").await.unwrap(); // no notify_url for the order: no notification
    sim.set_refund_processing(Some(Duration::from_millis(300)));
    let payment = paid_payment(2000);
    let (raw, input) = refund(&client, "wx-proc-a", "wx-proc-r", 2000, 2000, &payment).await;
    let body: serde_json::Value = serde_json::from_slice(&raw.body).unwrap();
    assert_eq!(body["status"], "PROCESSING");
    assert!(body.get("success_time").is_none(), "{body}");
    assert_eq!(input, Err(MapError::NothingToApply));
    assert!(merchant.received().is_empty());
    // Then SUCCESS, told by REFUND.SUCCESS at the refund's notify_url.
    wait_until("the refund notification", || merchant.received().len() == 1).await;
    let mut guard = ReplayGuard::<8>::new();
    let (event_type, input) =
        map_notification(&merchant.received()[0], &mut guard, "wx-proc-a", &payment);
    assert_eq!(event_type, "REFUND.SUCCESS");
    assert_eq!(
        refund_of(&input.unwrap()),
        (RefundId::new(b"wx-proc-r").unwrap(), cny(2000))
    );
    // Asked again: the same refund, SUCCESS now, and still one.
    let (_, input) = refund(&client, "wx-proc-a", "wx-proc-r", 2000, 2000, &payment).await;
    assert_eq!(refund_of(&input.unwrap()).1, cny(2000));
    assert_eq!(sim.order("wx-proc-a").unwrap().refunds[0].status, "SUCCESS");
    assert_eq!(sim.refunds_effected("wx-proc-r"), 1);
}

/// Posts `body` to `path` at the simulator with `authorization`.
async fn post_raw(
    sim: &WechatSim,
    path: &str,
    authorization: Option<&str>,
    body: &str,
) -> (u16, HeaderMap, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", sim.gateway_url()))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(a) = authorization {
        request = request.header("authorization", a);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

#[tokio::test]
async fn requests_with_a_bad_signature_are_refused_unsigned() {
    let sim = start().await;
    let client = client(&sim, "http://127.0.0.1:9");
    sim.create_order("wx-sign-a", 1000).unwrap();
    let path = "/v3/pay/transactions/out-trade-no/wx-sign-a/close";
    let body = format!(r#"{{"mchid":"{MCHID}"}}"#);
    let auth = |body: &str, path: &str| {
        client
            .authorization("POST", path, body, now(), "NONCE0123456789")
            .unwrap()
    };
    let genuine = auth(&body, path);
    // Signed with a key that is not the merchant's (the platform's own).
    let other_key = {
        let wrong = WechatpayConfig {
            mchid: MCHID.into(),
            appid: APPID.into(),
            apiv3_key: ApiV3Key::new(APIV3_KEY),
            merchant_serial: MERCHANT_SERIAL.into(),
            merchant_private_key: Arc::new(sim_config().platform_private_key),
            platform_keys: platform_keys(),
            gateway: sim.gateway_url(),
        };
        WechatpayClient::new(wrong, "http://127.0.0.1:9")
            .authorization("POST", path, &body, now(), "NONCE0123456789")
            .unwrap()
    };
    let cases: Vec<(&str, Option<String>, String)> = vec![
        ("no Authorization", None, body.clone()),
        (
            "a body changed after signing",
            Some(genuine.clone()),
            body.replace('}', " }"),
        ),
        (
            "another path signed",
            Some(auth(
                &body,
                "/v3/pay/transactions/out-trade-no/wx-sign-b/close",
            )),
            body.clone(),
        ),
        ("another key", Some(other_key), body.clone()),
        (
            "another scheme",
            Some(genuine.replace("WECHATPAY2-SHA256-RSA2048", "WECHATPAY2-SHA256-RSA")),
            body.clone(),
        ),
        (
            "another serial",
            Some(genuine.replace(MERCHANT_SERIAL, "1234ABCD")),
            body.clone(),
        ),
        (
            "another mchid",
            Some(genuine.replace(&format!("mchid=\"{MCHID}\""), "mchid=\"1900000110\"")),
            body.clone(),
        ),
        (
            "a field twice",
            Some(format!("{genuine},mchid=\"{MCHID}\"")),
            body.clone(),
        ),
        ("unquoted", Some(genuine.replace('"', "")), body.clone()),
    ];
    for (what, authorization, body) in cases {
        let (status, headers, text) = post_raw(&sim, path, authorization.as_deref(), &body).await;
        assert_eq!(status, 401, "{what}: {text}");
        assert!(text.contains("SIGN_ERROR"), "{what}: {text}");
        assert!(
            headers.get("wechatpay-signature").is_none(),
            "{what}: unsigned"
        );
    }
    assert_eq!(sim.order("wx-sign-a").unwrap().trade_state, "NOTPAY");
    // The genuine request goes through, signed.
    let (status, headers, _) = post_raw(&sim, path, Some(&genuine), &body).await;
    assert_eq!(status, 204);
    assert!(headers.get("wechatpay-signature").is_some());
    assert_eq!(sim.order("wx-sign-a").unwrap().trade_state, "CLOSED");
    // The client reads an unsigned refusal as a refused answer.
    let raw = RawAnswer {
        status: 401,
        headers: Vec::new(),
        body: br#"{"code":"SIGN_ERROR","message":"x"}"#.to_vec(),
    };
    assert!(matches!(
        client.verify_close(&raw, "wx-sign-a", now()),
        Err(CallError::Answer(_))
    ));
}

#[tokio::test]
async fn forged_answers_fail_verification_and_down_is_unreachable() {
    let sim = start().await;
    let client = client(&sim, "http://127.0.0.1:9");
    sim.create_order("wx-forge-a", 1000).unwrap();
    sim.set_answer_key(Some(merchant_private_key()));
    let raw = client.close("wx-forge-a", now()).await.unwrap();
    assert_eq!(raw.status, 204);
    match client.verify_close(&raw, "wx-forge-a", now()) {
        Err(CallError::Answer(e)) => assert!(e.contains("signature"), "{e}"),
        other => panic!("a forged answer verified: {other:?}"),
    }
    // WeChat Pay closed the order all the same; the next, genuine, answer says so.
    assert_eq!(sim.order("wx-forge-a").unwrap().trade_state, "CLOSED");
    sim.set_answer_key(None);
    let raw = client.close("wx-forge-a", now()).await.unwrap();
    let answer = client.verify_close(&raw, "wx-forge-a", now()).unwrap();
    assert!(answer.message().failure().is_none());

    sim.set_down(true);
    let down = client.close("wx-forge-a", now()).await;
    assert!(matches!(down, Err(CallError::Transport(_))), "{down:?}");
    let request = RefundRequest {
        out_trade_no: "wx-forge-a",
        out_refund_no: "wx-forge-r",
        refund: cny(1),
        total: cny(1000),
    };
    assert!(matches!(
        client.refund(&request, now()).await,
        Err(CallError::Transport(_))
    ));
    let calls = sim.calls();
    assert_eq!(
        calls.iter().map(|c| c.http_status).collect::<Vec<_>>(),
        [204, 204, 503, 503]
    );
    assert!(!calls[2].signed && calls[0].signed);
    // A refund in another currency is never sent.
    sim.set_down(false);
    let usd = RefundRequest {
        refund: Money::from_minor(1, Currency::USD),
        ..request
    };
    assert!(matches!(
        client.refund(&usd, now()).await,
        Err(CallError::Request(_))
    ));
    assert_eq!(sim.calls().len(), 4);
}

#[tokio::test]
async fn notifications_are_redelivered_signed_anew_until_acknowledged() {
    let sim = start().await;
    let merchant = receiver(&[500, 503, 204]).await;
    sim.set_notify_url(Some(merchant.url()));
    sim.create_order("wx-notify-a", 1234).unwrap();
    sim.pay("wx-notify-a").await.unwrap();
    wait_until("three deliveries", || {
        sim.deliveries("wx-notify-a").len() == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deliveries = sim.deliveries("wx-notify-a");
    assert_eq!(deliveries.len(), 3, "acknowledged: no more deliveries");
    assert_eq!(
        deliveries
            .iter()
            .map(|d| (d.attempt, d.http_status))
            .collect::<Vec<_>>(),
        [(1, Some(500)), (2, Some(503)), (3, Some(204))]
    );
    assert!(
        deliveries
            .iter()
            .all(|d| d.id == deliveries[0].id && d.id.starts_with("EV-"))
    );
    assert!(deliveries[2].acknowledged() && !deliveries[0].acknowledged());
    // The same body each time, signed anew: every delivery passes one replay guard.
    let received = merchant.received();
    assert!(received.iter().all(|(_, body)| *body == received[0].1));
    let mut guard = ReplayGuard::<8>::new();
    let payment: Payment = Payment::new(cny(1234), now()).unwrap();
    for r in &received {
        let (event_type, input) = map_notification(r, &mut guard, "wx-notify-a", &payment);
        assert_eq!(event_type, "TRANSACTION.SUCCESS");
        assert_eq!(input.unwrap().kind(), InputKind::Succeed);
    }
    // A notification redelivered by the test, and one read for a replay test.
    sim.redeliver("wx-notify-a").await;
    assert_eq!(sim.deliveries("wx-notify-a").len(), 4);
    let sealed = sim.notification("wx-notify-a").unwrap();
    assert_eq!(sealed.body, received[0].1);
    let (_, input) = map_notification(
        &(sealed.headers, sealed.body),
        &mut guard,
        "wx-notify-a",
        &payment,
    );
    assert_eq!(input.unwrap().kind(), InputKind::Succeed);
}

#[tokio::test]
async fn a_refused_connection_is_a_failed_attempt_and_attempts_are_bounded() {
    let mut config = sim_config();
    config.retry_schedule = vec![Duration::from_millis(10); 3];
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = WechatSim::start(config, listener).await.unwrap();
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify/wechatpay", closed.local_addr().unwrap());
    drop(closed);
    sim.set_notify_url(Some(url));
    sim.create_order("wx-refused", 100).unwrap();
    sim.pay("wx-refused").await.unwrap();
    wait_until("four attempts", || sim.deliveries("wx-refused").len() == 4).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let deliveries = sim.deliveries("wx-refused");
    assert_eq!(deliveries.len(), 4, "1 + retry_schedule.len()");
    assert!(
        deliveries
            .iter()
            .all(|d| d.http_status.is_none() && d.error.is_some())
    );
}

#[tokio::test]
async fn test_side_orders_follow_wechatpay_rules() {
    let sim = start().await;
    for (no, total) in [
        ("abc", 100),
        ("order.with.dots", 100),
        ("an-order-number-longer-than-32-chr", 100),
        ("wx-zero", 0),
    ] {
        assert!(
            matches!(
                sim.create_order(no, total),
                Err(WechatSimError::InvalidOrder(_))
            ),
            "{no} {total}"
        );
    }
    sim.create_order("wx-rules", 100).unwrap();
    assert_eq!(
        sim.create_order("wx-rules", 100),
        Err(WechatSimError::OrderExists("wx-rules".into()))
    );
    assert_eq!(
        sim.pay("wx-nobody").await,
        Err(WechatSimError::UnknownOrder("wx-nobody".into()))
    );
    let order = sim.order("wx-rules").unwrap();
    assert_eq!((order.trade_state.as_str(), order.total), ("NOTPAY", 100));
    assert_eq!(order.transaction_id.len(), 28, "{}", order.transaction_id);
    sim.pay("wx-rules").await.unwrap();
    assert_eq!(
        sim.pay("wx-rules").await,
        Err(WechatSimError::AlreadyPaid("wx-rules".into()))
    );
    assert_eq!(
        sim.pay_late("wx-rules").await,
        Err(WechatSimError::AlreadyPaid("wx-rules".into()))
    );
    // A closed order: the cashier refuses, a payment in flight does not.
    sim.create_order("wx-rules-2", 100).unwrap();
    let client = client(&sim, "http://127.0.0.1:9");
    assert_eq!(client.close("wx-rules-2", now()).await.unwrap().status, 204);
    assert_eq!(
        sim.pay("wx-rules-2").await,
        Err(WechatSimError::OrderClosed("wx-rules-2".into()))
    );
    sim.pay_late("wx-rules-2").await.unwrap();
    assert_eq!(sim.order("wx-rules-2").unwrap().trade_state, "SUCCESS");
}

#[tokio::test]
async fn malformed_requests_are_answered_never_panicked() {
    let sim = start().await;
    let client = client(&sim, "http://127.0.0.1:9");
    sim.create_order("wx-bad-a", 100).unwrap();
    sim.pay("wx-bad-a").await.unwrap();
    let signed = |path: &str, body: &str| {
        client
            .authorization("POST", path, body, now(), "NONCEabcdef")
            .unwrap()
    };
    let refunds = "/v3/refund/domestic/refunds";
    let cases: Vec<(&str, &str, u16, &str)> = vec![
        (refunds, "not json", 400, "PARAM_ERROR"),
        (refunds, "[]", 400, "PARAM_ERROR"),
        (
            refunds,
            r#"{"out_trade_no":"wx-bad-a"}"#,
            400,
            "PARAM_ERROR",
        ),
        (
            refunds,
            r#"{"out_trade_no":"wx-bad-a","out_refund_no":"r.1","amount":{"refund":1,"total":100,"currency":"CNY"}}"#,
            400,
            "PARAM_ERROR",
        ),
        (
            refunds,
            r#"{"out_trade_no":"wx-bad-a","out_refund_no":"r1","amount":{"refund":-1,"total":100,"currency":"CNY"}}"#,
            400,
            "PARAM_ERROR",
        ),
        (
            refunds,
            r#"{"out_trade_no":"wx-bad-a","out_refund_no":"r1","amount":{"refund":1,"total":100,"currency":"USD"}}"#,
            400,
            "PARAM_ERROR",
        ),
        (
            refunds,
            r#"{"out_trade_no":"wx-bad-a","out_refund_no":"r1","amount":{"refund":1,"total":100,"currency":"CNY"},"notify_url":7}"#,
            400,
            "PARAM_ERROR",
        ),
        (
            refunds,
            r#"{"out_refund_no":"r1","amount":{"refund":1,"total":100,"currency":"CNY"}}"#,
            400,
            "PARAM_ERROR",
        ),
        (
            "/v3/pay/transactions/out-trade-no/wx-bad-a/close",
            r#"{"mchid":"1900000110"}"#,
            400,
            "PARAM_ERROR",
        ),
        (
            "/v3/pay/transactions/out-trade-no/abc/close",
            r#"{"mchid":"1900000109"}"#,
            400,
            "PARAM_ERROR",
        ),
        (
            "/v3/pay/transactions/out-trade-no/wx-bad-a/close",
            "{",
            400,
            "PARAM_ERROR",
        ),
        ("/v3/pay/transactions/id/4200/close", "{}", 404, "NOT_FOUND"),
    ];
    for (path, body, status, code) in cases {
        let (got, _, text) = post_raw(&sim, path, Some(&signed(path, body)), body).await;
        assert_eq!(got, status, "{path} {body}: {text}");
        assert!(text.contains(code), "{path} {body}: {text}");
    }
    // A GET where a POST is expected, an empty request: answered.
    let response = reqwest::get(format!("{}/v3/refund/domestic/refunds", sim.gateway_url()))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(sim.order("wx-bad-a").unwrap().refunds.len(), 0);
}
