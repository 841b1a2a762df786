//! The Alipay simulator against the merchant side of the `paystate` crate: every request here
//! is signed by the crate's `RequestSigner`, every answer, return and notification is verified
//! and mapped by the crate's own functions with the committed simulator public key, on
//! loopback listeners the tests bind themselves.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use paystate::alipay::content::SignRule;
use paystate::alipay::form::Form;
use paystate::alipay::notify::{MerchantConfig, Notification, NotifyError};
use paystate::alipay::request::{RequestSigner, SignedRequest, TradeRequest};
use paystate::alipay::response::ResponseError;
use paystate::provider::alipay::{AnswerError, Request, return_to_input, verify_answer};
use paystate::provider::{Facts, MapError};
use paystate::signature::{Rsa2PrivateKey, Rsa2PublicKey};
use paystate::{Command, Currency, Input, InputKind, Money, Outcome, Payment, RefundId, Status};
use paystate::{Timestamp, alipay::form::encode_pairs};
use paystate_server::sim::{AlipaySim, SimConfig, SimError};
use tokio::net::TcpListener;

const APP_ID: &str = "2021000000000001";
const SELLER_ID: &str = "2088000000000001";
const MERCHANT: MerchantConfig<'static> = MerchantConfig {
    app_id: APP_ID,
    seller_id: SELLER_ID,
};
/// The longest any test waits for something to happen.
const WAIT: Duration = Duration::from_secs(10);

fn sim_public_key() -> Rsa2PublicKey {
    Rsa2PublicKey::from_pem(include_str!("../keys/alipay_sim_public.pem")).unwrap()
}

fn app_private_key() -> Rsa2PrivateKey {
    Rsa2PrivateKey::from_pem(include_str!("../keys/app_private.pem")).unwrap()
}

async fn start_with(config: SimConfig) -> AlipaySim {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    AlipaySim::start(config, listener).await.unwrap()
}

async fn start() -> AlipaySim {
    start_with(SimConfig::test_keys(APP_ID, SELLER_ID)).await
}

fn now() -> Timestamp {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Timestamp::from_secs(secs)
}

fn cny(amount: &str) -> Money {
    Money::parse(amount, Currency::CNY).unwrap()
}

fn signer(sim: &AlipaySim) -> RequestSigner {
    RequestSigner::new(APP_ID, app_private_key()).with_gateway(sim.gateway_url())
}

fn page_pay_url(signer: &RequestSigner, order: &str, amount: &str) -> String {
    let request = TradeRequest::PagePay {
        out_trade_no: order,
        total_amount: cny(amount),
        subject: "绿茶 500 g & more",
        time_expire: None,
    };
    signer.sign(&request, now()).unwrap().url()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Posts a signed server-to-server request as the host does; the status and the raw answer.
async fn post_signed(signed: &SignedRequest) -> (u16, String) {
    post_body(signed.gateway(), signed.body()).await
}

async fn post_body(url: &str, body: &str) -> (u16, String) {
    let response = client()
        .post(url)
        .header(
            "content-type",
            "application/x-www-form-urlencoded;charset=utf-8",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Signs and posts `request`; the raw answer (HTTP 200 expected).
async fn call(sim: &AlipaySim, request: &TradeRequest<'_>) -> String {
    let signed = signer(sim).sign(request, now()).unwrap();
    let (status, raw) = post_signed(&signed).await;
    assert_eq!(status, 200, "{raw}");
    raw
}

/// Verifies `raw` as the answer to `request` with the simulator's committed public key and
/// maps it with `facts`.
fn map(raw: &str, request: Request<'_>, facts: &Facts<'_>) -> Result<Input, MapError> {
    let key = sim_public_key();
    let answer = verify_answer(raw, request, &key)
        .unwrap_or_else(|e| panic!("the crate refused the answer ({e}): {raw}"));
    answer.to_input(facts)
}

fn sub_code(raw: &str, request: Request<'_>) -> Option<String> {
    let key = sim_public_key();
    let answer = verify_answer(raw, request, &key).unwrap();
    answer.sub_code().map(String::from)
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

/// A merchant's `notify_url`: records every body and answers from `script` (its last reply
/// repeated).
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

type ReceiverState = (Arc<Mutex<Vec<String>>>, Arc<Vec<&'static str>>);

async fn receive(State((bodies, script)): State<ReceiverState>, body: String) -> &'static str {
    let mut bodies = bodies.lock().unwrap();
    bodies.push(body);
    let i = (bodies.len() - 1).min(script.len() - 1);
    script[i]
}

async fn receiver(script: &[&'static str]) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alipay/notify", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/alipay/notify", post(receive))
        .with_state((bodies.clone(), Arc::new(script.to_vec())));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, bodies }
}

/// Decodes, verifies (rule V1, the simulator's committed key) and maps a notification body.
fn map_notification(body: &str, payment: &Payment, order: &str) -> Result<Input, NotifyError> {
    let key = sim_public_key();
    let mut buf = vec![0; body.len()];
    let form = Form::decode(body.as_bytes(), &mut buf).unwrap();
    let note = Notification::verify(&form, SignRule::V1, &key)
        .unwrap_or_else(|e| panic!("the crate refused the notification ({e}): {body}"));
    note.to_input(&MERCHANT, &Facts::of(order, payment))
}

fn field(body: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn refund_of(input: &Input) -> (RefundId, Money) {
    match input.command() {
        Command::Refund { refund_id, amount } => (refund_id, amount),
        other => panic!("expected a refund, got {other:?}"),
    }
}

fn applied(outcome: &Outcome) {
    assert!(matches!(outcome, Outcome::Applied(_)), "{outcome:?}");
}

#[tokio::test]
async fn page_pay_url_signed_by_the_crate_opens_one_trade() {
    let sim = start().await;
    let notify = receiver(&["success"]).await;
    let signer = signer(&sim)
        .with_notify_url(&notify.url)
        .with_return_url("http://shop.example/orders/o-1");
    let url = page_pay_url(&signer, "o-1", "99.99");

    sim.open(&url).await.unwrap();
    let trade = sim.trade("o-1").unwrap();
    assert_eq!(
        (trade.status.as_str(), trade.total_amount.as_str()),
        ("WAIT_BUYER_PAY", "99.99")
    );
    assert_eq!(trade.subject, "绿茶 500 g & more");
    assert_eq!(trade.trade_no.len(), 28);
    assert!(trade.trade_no.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(trade.notify_url.as_deref(), Some(notify.url.as_str()));
    assert_eq!(
        trade.return_url.as_deref(),
        Some("http://shop.example/orders/o-1")
    );

    // Opening the page again (here by the browser's GET) shows the same trade.
    let page = client().get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("action=\"/cashier/pay\"") && html.contains("99.99"));
    assert!(html.contains("绿茶 500 g &amp; more"), "{html}");
    assert_eq!(sim.trade("o-1").unwrap(), trade);

    // One changed byte, in the amount or in the signature: refused, nothing changes.
    assert!(url.contains("99.99"));
    for tampered in [url.replace("99.99", "19.99"), {
        let at = url.find("&sign=").unwrap() + 10;
        let mut bytes = url.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    }] {
        match sim.open(&tampered).await {
            Err(SimError::Refused { code, sub_code, .. }) => {
                assert_eq!(
                    (code.as_str(), sub_code.as_str()),
                    ("40002", "isv.invalid-signature")
                )
            }
            other => panic!("a tampered URL was not refused: {other:?}"),
        }
        let page = client().get(&tampered).send().await.unwrap();
        assert_eq!(page.status(), 400);
    }
    assert_eq!(sim.trade("o-1").unwrap(), trade);

    // Another amount under the same out_trade_no, genuinely signed: Alipay refuses it.
    match sim.open(&page_pay_url(&signer, "o-1", "19.99")).await {
        Err(SimError::Refused { sub_code, .. }) => assert_eq!(sub_code, "ACQ.CONTEXT_INCONSISTENT"),
        other => panic!("{other:?}"),
    }

    // Another application's request: refused, no trade created.
    let stranger =
        RequestSigner::new("2021999999999999", app_private_key()).with_gateway(sim.gateway_url());
    match sim.open(&page_pay_url(&stranger, "o-2", "1.00")).await {
        Err(SimError::Refused { sub_code, .. }) => assert_eq!(sub_code, "isv.invalid-app-id"),
        other => panic!("{other:?}"),
    }
    assert!(sim.trade("o-2").is_none());

    // The phone cashier too.
    let wap = TradeRequest::WapPay {
        out_trade_no: "o-3",
        total_amount: cny("0.01"),
        subject: "tea",
        time_expire: None,
        quit_url: Some("http://shop.example/cart"),
    };
    sim.open(&signer.sign(&wap, now()).unwrap().url())
        .await
        .unwrap();
    assert_eq!(sim.trade("o-3").unwrap().total_amount, "0.01");

    let calls = sim.calls();
    let codes: Vec<(u16, Option<&str>)> = calls
        .iter()
        .map(|c| (c.http_status, c.sub_code.as_deref()))
        .collect();
    assert_eq!(
        codes,
        [
            (200, None),
            (200, None),
            (400, Some("isv.invalid-signature")),
            (400, Some("isv.invalid-signature")),
            (400, Some("isv.invalid-signature")),
            (400, Some("isv.invalid-signature")),
            (400, Some("ACQ.CONTEXT_INCONSISTENT")),
            (400, Some("isv.invalid-app-id")),
            (200, None),
        ]
    );
    assert_eq!(calls[0].method, "alipay.trade.page.pay");
    assert_eq!(calls[0].out_trade_no.as_deref(), Some("o-1"));
    assert_eq!(calls[8].method, "alipay.trade.wap.pay");
}

#[tokio::test]
async fn answers_verify_and_map_to_the_engine_inputs() {
    let sim = start().await;
    let signer = signer(&sim);
    let order = "o-10";
    let mut payment = Payment::new(cny("99.99"), now()).unwrap();

    // Before the cashier is opened, Alipay does not know the trade.
    let raw = call(
        &sim,
        &TradeRequest::Query {
            out_trade_no: order,
        },
    )
    .await;
    assert_eq!(
        map(&raw, Request::Query, &Facts::of(order, &payment)),
        Err(MapError::NothingToApply)
    );
    assert_eq!(
        sub_code(&raw, Request::Query).as_deref(),
        Some("ACQ.TRADE_NOT_EXIST")
    );

    sim.open(&page_pay_url(&signer, order, "99.99"))
        .await
        .unwrap();
    let raw = call(
        &sim,
        &TradeRequest::Query {
            out_trade_no: order,
        },
    )
    .await;
    let input = map(&raw, Request::Query, &Facts::of(order, &payment)).unwrap();
    assert_eq!(input.kind(), InputKind::Initiate);
    applied(&payment.apply(&input, now()));

    sim.pay(order).await.unwrap();
    let raw = call(
        &sim,
        &TradeRequest::Query {
            out_trade_no: order,
        },
    )
    .await;
    let input = map(&raw, Request::Query, &Facts::of(order, &payment)).unwrap();
    assert_eq!(
        input.command(),
        Command::Succeed {
            amount: cny("99.99")
        }
    );
    applied(&payment.apply(&input, now()));
    assert_eq!(payment.status(), Status::Succeeded);

    // A paid trade cannot be closed.
    let raw = call(
        &sim,
        &TradeRequest::Close {
            out_trade_no: order,
        },
    )
    .await;
    assert_eq!(
        map(&raw, Request::Close, &Facts::of(order, &payment)),
        Err(MapError::ProviderError)
    );
    assert_eq!(
        sub_code(&raw, Request::Close).as_deref(),
        Some("ACQ.TRADE_STATUS_ERROR")
    );

    // A partial refund, sent twice: money moves once, both answers are the same refund.
    let refund = TradeRequest::Refund {
        out_trade_no: order,
        refund_amount: cny("30.00"),
        out_request_no: "r-1",
    };
    let r1 = Request::Refund {
        out_request_no: "r-1",
    };
    let first = call(&sim, &refund).await;
    assert!(first.contains(r#""fund_change":"Y""#), "{first}");
    let first_input = map(&first, r1, &Facts::of(order, &payment)).unwrap();
    assert_eq!(
        refund_of(&first_input),
        (RefundId::new(b"r-1").unwrap(), cny("30.00"))
    );
    let second = call(&sim, &refund).await;
    assert!(second.contains(r#""fund_change":"N""#), "{second}");
    assert!(second.contains(r#""refund_fee":"30.00""#), "{second}");
    assert_eq!(sim.refunds_effected("r-1"), 1);
    assert_eq!(
        map(&second, r1, &Facts::of(order, &payment)).unwrap(),
        first_input
    );
    applied(&payment.apply(&first_input, now()));
    // Read after the refund was recorded, the repeated answer is still that refund.
    let again = map(&second, r1, &Facts::of(order, &payment)).unwrap();
    assert_eq!(again, first_input);
    assert_eq!(payment.apply(&again, now()), Outcome::Duplicate);

    // The refund query confirms it; an unknown request number is an empty success.
    let raw = call(
        &sim,
        &TradeRequest::RefundQuery {
            out_trade_no: order,
            out_request_no: "r-1",
        },
    )
    .await;
    let confirmed = map(
        &raw,
        Request::RefundQuery {
            out_request_no: "r-1",
        },
        &Facts::of(order, &payment),
    )
    .unwrap();
    assert_eq!(
        refund_of(&confirmed),
        (RefundId::new(b"r-1").unwrap(), cny("30.00"))
    );
    let raw = call(
        &sim,
        &TradeRequest::RefundQuery {
            out_trade_no: order,
            out_request_no: "r-unknown",
        },
    )
    .await;
    assert_eq!(
        map(
            &raw,
            Request::RefundQuery {
                out_request_no: "r-unknown"
            },
            &Facts::of(order, &payment)
        ),
        Err(MapError::NothingToApply)
    );

    // More than what is left: refused, no money moves.
    let raw = call(
        &sim,
        &TradeRequest::Refund {
            out_trade_no: order,
            refund_amount: cny("70.00"),
            out_request_no: "r-2",
        },
    )
    .await;
    let r2 = Request::Refund {
        out_request_no: "r-2",
    };
    assert_eq!(
        map(&raw, r2, &Facts::of(order, &payment)),
        Err(MapError::ProviderError)
    );
    assert_eq!(
        sub_code(&raw, r2).as_deref(),
        Some("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
    );
    assert_eq!(sim.refunds_effected("r-2"), 0);

    // The rest: the trade is fully refunded and closed.
    let raw = call(
        &sim,
        &TradeRequest::Refund {
            out_trade_no: order,
            refund_amount: cny("69.99"),
            out_request_no: "r-3",
        },
    )
    .await;
    let input = map(
        &raw,
        Request::Refund {
            out_request_no: "r-3",
        },
        &Facts::of(order, &payment),
    )
    .unwrap();
    assert_eq!(
        refund_of(&input),
        (RefundId::new(b"r-3").unwrap(), cny("69.99"))
    );
    applied(&payment.apply(&input, now()));
    assert_eq!(payment.status(), Status::Refunded);
    let trade = sim.trade(order).unwrap();
    assert_eq!(trade.status, "TRADE_CLOSED");
    assert_eq!(
        trade.refunds,
        [
            ("r-1".to_string(), "30.00".to_string()),
            ("r-3".to_string(), "69.99".to_string())
        ]
    );
    let raw = call(
        &sim,
        &TradeRequest::Query {
            out_trade_no: order,
        },
    )
    .await;
    assert_eq!(
        map(&raw, Request::Query, &Facts::of(order, &payment))
            .unwrap()
            .kind(),
        InputKind::Close
    );

    let refund_calls = sim
        .calls()
        .into_iter()
        .filter(|c| c.method == "alipay.trade.refund")
        .count();
    assert_eq!(refund_calls, 4);
}

#[tokio::test]
async fn close_and_refund_of_an_unpaid_trade() {
    let sim = start().await;
    let order = "o-20";
    let payment = Payment::new(cny("5.00"), now()).unwrap();
    let facts = Facts::of(order, &payment);

    // A trade that never existed is closed, as the crate reads Alipay's answer.
    let raw = call(
        &sim,
        &TradeRequest::Close {
            out_trade_no: order,
        },
    )
    .await;
    assert_eq!(
        sub_code(&raw, Request::Close).as_deref(),
        Some("ACQ.TRADE_NOT_EXIST")
    );
    assert_eq!(
        map(&raw, Request::Close, &facts).unwrap().kind(),
        InputKind::Close
    );

    sim.open(&page_pay_url(&signer(&sim), order, "5.00"))
        .await
        .unwrap();
    let refund = TradeRequest::Refund {
        out_trade_no: order,
        refund_amount: cny("5.00"),
        out_request_no: "r-20",
    };
    let raw = call(&sim, &refund).await;
    let r = Request::Refund {
        out_request_no: "r-20",
    };
    assert_eq!(sub_code(&raw, r).as_deref(), Some("ACQ.TRADE_STATUS_ERROR"));
    assert_eq!(map(&raw, r, &facts), Err(MapError::ProviderError));

    let raw = call(
        &sim,
        &TradeRequest::Close {
            out_trade_no: order,
        },
    )
    .await;
    assert_eq!(sub_code(&raw, Request::Close), None);
    assert_eq!(
        map(&raw, Request::Close, &facts).unwrap().kind(),
        InputKind::Close
    );
    assert_eq!(sim.trade(order).unwrap().status, "TRADE_CLOSED");
    let raw = call(
        &sim,
        &TradeRequest::Query {
            out_trade_no: order,
        },
    )
    .await;
    assert_eq!(
        map(&raw, Request::Query, &facts).unwrap().kind(),
        InputKind::Close
    );
    // Closing again: the trade is no longer waiting.
    let raw = call(
        &sim,
        &TradeRequest::Close {
            out_trade_no: order,
        },
    )
    .await;
    assert_eq!(
        sub_code(&raw, Request::Close).as_deref(),
        Some("ACQ.TRADE_STATUS_ERROR")
    );

    // The buyer cannot pay a closed trade at the cashier, but a payment in flight lands.
    assert_eq!(
        sim.pay(order).await,
        Err(SimError::TradeClosed(order.into()))
    );
    sim.pay_late(order).await.unwrap();
    assert_eq!(sim.trade(order).unwrap().status, "TRADE_SUCCESS");
    assert_eq!(
        sim.pay_late(order).await,
        Err(SimError::AlreadyPaid(order.into()))
    );
    assert_eq!(
        sim.pay("nope").await,
        Err(SimError::UnknownTrade("nope".into()))
    );
    assert_eq!(sim.refunds_effected("r-20"), 0);
}

#[tokio::test]
async fn a_request_with_a_changed_byte_gets_an_unsigned_refusal() {
    let sim = start().await;
    let signed = signer(&sim)
        .sign(
            &TradeRequest::Query {
                out_trade_no: "o-30",
            },
            now(),
        )
        .unwrap();
    let tampered = signed.body().replace("o-30", "o-31");
    assert_ne!(tampered, signed.body());
    let (status, raw) = post_body(signed.gateway(), &tampered).await;
    assert_eq!(status, 200);
    assert!(
        raw.starts_with(r#"{"alipay_trade_query_response":{"code":"40002""#),
        "{raw}"
    );
    assert!(
        raw.contains("isv.invalid-signature") && !raw.contains("\"sign\""),
        "{raw}"
    );
    assert_eq!(
        verify_answer(&raw, Request::Query, &sim_public_key()).err(),
        Some(AnswerError::Response(ResponseError::Unsigned {
            kind: paystate::alipay::response::ResponseKind::Method
        }))
    );
    let last = sim.calls().pop().unwrap();
    assert_eq!(
        (last.code.as_deref(), last.sub_code.as_deref()),
        (Some("40002"), Some("isv.invalid-signature"))
    );

    // The untouched request is answered, signed.
    let (_, raw) = post_signed(&signed).await;
    assert!(verify_answer(&raw, Request::Query, &sim_public_key()).is_ok());
}

#[tokio::test]
async fn notification_verifies_and_maps_to_succeed() {
    let sim = start().await;
    let notify = receiver(&["success"]).await;
    let order = "o-40";
    let signer = signer(&sim).with_notify_url(&notify.url);
    sim.open(&page_pay_url(&signer, order, "99.99"))
        .await
        .unwrap();
    sim.pay(order).await.unwrap();
    wait_until("the notification", || notify.bodies().len() == 1).await;

    let body = &notify.bodies()[0];
    assert_eq!(sim.notification(order).as_deref(), Some(body.as_str()));
    let payment = Payment::new(cny("99.99"), now()).unwrap();
    let input = map_notification(body, &payment, order).unwrap();
    assert_eq!(
        input.command(),
        Command::Succeed {
            amount: cny("99.99")
        }
    );
    assert_eq!(
        field(body, "notify_type").as_deref(),
        Some("trade_status_sync")
    );
    assert_eq!(
        field(body, "trade_status").as_deref(),
        Some("TRADE_SUCCESS")
    );
    assert_eq!(
        field(body, "trade_no"),
        Some(sim.trade(order).unwrap().trade_no)
    );
    assert_eq!(field(body, "trans_currency"), None);

    // Signed under rule V1 (sign_type left out), not V2.
    let mut buf = vec![0; body.len()];
    let form = Form::decode(body.as_bytes(), &mut buf).unwrap();
    assert!(Notification::verify(&form, SignRule::V2, &sim_public_key()).is_err());

    // Acknowledged: not delivered again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(notify.bodies().len(), 1);
    let deliveries = sim.deliveries(order);
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].acknowledged());
    assert_eq!(deliveries[0].attempt, 1);
    assert_eq!(
        Some(deliveries[0].notify_id.clone()),
        field(body, "notify_id")
    );
}

#[tokio::test]
async fn fail_twice_then_success_is_three_deliveries() {
    let sim = start().await;
    let notify = receiver(&["fail", "fail", "success"]).await;
    let order = "o-50";
    let signer = signer(&sim).with_notify_url(&notify.url);
    sim.open(&page_pay_url(&signer, order, "12.34"))
        .await
        .unwrap();
    sim.pay(order).await.unwrap();
    wait_until("three deliveries", || notify.bodies().len() >= 3).await;
    // Longer than the next delays of the schedule: nothing more comes.
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let bodies = notify.bodies();
    assert_eq!(bodies.len(), 3);
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "redeliveries are the same body"
    );
    let deliveries = sim.deliveries(order);
    let seen: Vec<(u32, Option<&str>, bool)> = deliveries
        .iter()
        .map(|d| (d.attempt, d.reply.as_deref(), d.acknowledged()))
        .collect();
    assert_eq!(
        seen,
        [
            (1, Some("fail"), false),
            (2, Some("fail"), false),
            (3, Some("success"), true)
        ]
    );
    assert!(
        deliveries
            .iter()
            .all(|d| d.notify_id == deliveries[0].notify_id)
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_failed_attempt_and_attempts_are_bounded() {
    let mut config = SimConfig::test_keys(APP_ID, SELLER_ID);
    config.retry_schedule = vec![Duration::from_millis(20); 3];
    let sim = start_with(config).await;
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let order = "o-60";
    let signer = signer(&sim).with_notify_url(format!("http://{closed}/notify"));
    sim.open(&page_pay_url(&signer, order, "1.00"))
        .await
        .unwrap();
    sim.pay(order).await.unwrap();
    wait_until("four attempts", || sim.deliveries(order).len() == 4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deliveries = sim.deliveries(order);
    assert_eq!(deliveries.len(), 4);
    for (i, d) in deliveries.iter().enumerate() {
        assert_eq!(d.attempt, i as u32 + 1);
        assert_eq!((d.http_status, d.reply.as_deref()), (None, None));
        assert!(d.error.is_some());
    }
}

#[tokio::test]
async fn a_lost_notification_is_not_delivered_until_redelivered() {
    let sim = start().await;
    let notify = receiver(&["success"]).await;
    let order = "o-70";
    let signer = signer(&sim).with_notify_url(&notify.url);
    sim.open(&page_pay_url(&signer, order, "8.00"))
        .await
        .unwrap();
    sim.set_notify(false);
    sim.pay(order).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(notify.bodies().is_empty());
    assert!(sim.deliveries(order).is_empty());

    let made = sim.notification(order).unwrap();
    sim.redeliver(order).await;
    assert_eq!(notify.bodies(), [made]);
    let deliveries = sim.deliveries(order);
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].acknowledged());
}

#[tokio::test]
async fn refund_notifications_map_to_the_refunds() {
    let sim = start().await;
    let notify = receiver(&["success"]).await;
    let order = "o-80";
    let signer_ = signer(&sim).with_notify_url(&notify.url);
    sim.open(&page_pay_url(&signer_, order, "99.99"))
        .await
        .unwrap();
    sim.pay(order).await.unwrap();
    wait_until("the payment's notification", || notify.bodies().len() == 1).await;
    let mut payment = Payment::new(cny("99.99"), now()).unwrap();
    let paid = map_notification(&notify.bodies()[0], &payment, order).unwrap();
    applied(&payment.apply(&paid, now()));

    // A partial refund: TRADE_SUCCESS with out_biz_no, the cumulative refund_fee, gmt_refund.
    call(
        &sim,
        &TradeRequest::Refund {
            out_trade_no: order,
            refund_amount: cny("10.00"),
            out_request_no: "r-81",
        },
    )
    .await;
    wait_until("the refund's notification", || notify.bodies().len() == 2).await;
    let body = notify.bodies()[1].clone();
    assert_eq!(
        field(&body, "trade_status").as_deref(),
        Some("TRADE_SUCCESS")
    );
    assert_eq!(field(&body, "out_biz_no").as_deref(), Some("r-81"));
    assert_eq!(field(&body, "refund_fee").as_deref(), Some("10.00"));
    assert!(field(&body, "gmt_refund").is_some());
    let input = map_notification(&body, &payment, order).unwrap();
    assert_eq!(
        refund_of(&input),
        (RefundId::new(b"r-81").unwrap(), cny("10.00"))
    );
    applied(&payment.apply(&input, now()));

    // The rest: TRADE_CLOSED with the whole amount as refund_fee.
    call(
        &sim,
        &TradeRequest::Refund {
            out_trade_no: order,
            refund_amount: cny("89.99"),
            out_request_no: "r-82",
        },
    )
    .await;
    wait_until("the full refund's notification", || {
        notify.bodies().len() == 3
    })
    .await;
    let body = notify.bodies()[2].clone();
    assert_eq!(
        field(&body, "trade_status").as_deref(),
        Some("TRADE_CLOSED")
    );
    assert_eq!(field(&body, "refund_fee").as_deref(), Some("99.99"));
    let input = map_notification(&body, &payment, order).unwrap();
    assert_eq!(
        refund_of(&input),
        (RefundId::new(b"r-82").unwrap(), cny("89.99"))
    );
    applied(&payment.apply(&input, now()));
    assert_eq!(payment.status(), Status::Refunded);

    // A repeated refund request moves nothing and notifies nothing.
    call(
        &sim,
        &TradeRequest::Refund {
            out_trade_no: order,
            refund_amount: cny("89.99"),
            out_request_no: "r-82",
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(notify.bodies().len(), 3);
    assert_eq!(sim.refunds_effected("r-82"), 1);
    let statuses: Vec<(String, Option<String>)> = sim
        .deliveries(order)
        .into_iter()
        .map(|d| (d.trade_status, d.out_biz_no))
        .collect();
    assert_eq!(
        statuses,
        [
            ("TRADE_SUCCESS".to_string(), None),
            ("TRADE_SUCCESS".to_string(), Some("r-81".to_string())),
            ("TRADE_CLOSED".to_string(), Some("r-82".to_string())),
        ]
    );
}

#[tokio::test]
async fn the_cashier_returns_the_browser_with_a_signed_return() {
    let sim = start().await;
    let notify = receiver(&["success"]).await;
    let order = "o-90";
    let signer = signer(&sim)
        .with_notify_url(&notify.url)
        .with_return_url("http://shop.example/orders/o-90?from=alipay");
    sim.open(&page_pay_url(&signer, order, "66.60"))
        .await
        .unwrap();
    let pay_url = format!("http://{}/cashier/pay", sim.addr());
    let response = client()
        .post(&pay_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("out_trade_no={order}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let query = location
        .strip_prefix("http://shop.example/orders/o-90?from=alipay&")
        .unwrap_or_else(|| panic!("{location}"));
    let key = sim_public_key();
    let mut buf = vec![0; query.len()];
    let form = Form::decode(query.as_bytes(), &mut buf).unwrap();
    let note = Notification::verify(&form, SignRule::V1, &key).unwrap();
    assert_eq!(note.get("method"), Some("alipay.trade.page.pay.return"));
    let payment = Payment::new(cny("66.60"), now()).unwrap();
    let input = return_to_input(&note, &MERCHANT, &Facts::of(order, &payment)).unwrap();
    assert_eq!(input.kind(), InputKind::Initiate);
    wait_until("the notification", || notify.bodies().len() == 1).await;

    // Paying twice, or an unknown or missing order: an error page, no panic.
    for body in [
        format!("out_trade_no={order}"),
        "out_trade_no=nope".into(),
        "%%".into(),
        String::new(),
    ] {
        let response = client()
            .post(&pay_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
    }
}

#[tokio::test]
async fn signed_notifications_with_other_fields_fail_the_business_checks() {
    let sim = start().await;
    let notify = receiver(&["success"]).await;
    let order = "o-100";
    let signer = signer(&sim).with_notify_url(&notify.url);
    sim.open(&page_pay_url(&signer, order, "20.00"))
        .await
        .unwrap();
    sim.pay(order).await.unwrap();
    let payment = Payment::new(cny("20.00"), now()).unwrap();
    let fields = sim.notification_fields(order).unwrap();
    let with = |name: &str, value: &str| {
        let changed: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), if k == name { value } else { v.as_str() }))
            .collect();
        sim.sign_notification(&changed)
    };
    assert!(matches!(
        map_notification(&with("seller_id", "2088999999999999"), &payment, order),
        Err(NotifyError::SellerIdMismatch)
    ));
    assert!(matches!(
        map_notification(&with("app_id", "2021999999999999"), &payment, order),
        Err(NotifyError::AppIdMismatch)
    ));
    assert!(matches!(
        map_notification(&with("total_amount", "0.01"), &payment, order),
        Err(NotifyError::AmountMismatch { .. })
    ));
    // Unchanged fields, signed again: a genuine notification.
    assert_eq!(
        map_notification(&with("none", ""), &payment, order)
            .unwrap()
            .kind(),
        InputKind::Succeed
    );
}

#[tokio::test]
async fn down_answers_503() {
    let sim = start().await;
    let signer = signer(&sim);
    let url = page_pay_url(&signer, "o-110", "1.00");
    let query = signer
        .sign(
            &TradeRequest::Query {
                out_trade_no: "o-110",
            },
            now(),
        )
        .unwrap();
    sim.set_down(true);
    assert_eq!(post_signed(&query).await.0, 503);
    assert_eq!(client().get(&url).send().await.unwrap().status(), 503);
    assert_eq!(sim.open(&url).await, Err(SimError::Down));
    assert!(sim.trade("o-110").is_none());
    let last = sim.calls().pop().unwrap();
    assert_eq!((last.http_status, last.code), (503, None));

    sim.set_down(false);
    let (status, raw) = post_signed(&query).await;
    assert_eq!(status, 200);
    assert!(verify_answer(&raw, Request::Query, &sim_public_key()).is_ok());
    sim.open(&url).await.unwrap();
}

/// Signs any parameters as the application would (rule V2), for requests the crate's signer
/// never makes.
fn sign_params(params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .copied()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    sorted.sort();
    let content = sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let sign = app_private_key().sign_base64(content.as_bytes()).unwrap();
    let mut body = String::new();
    encode_pairs(
        params.iter().copied().chain([("sign", sign.as_str())]),
        &mut body,
    )
    .unwrap();
    body
}

fn common<'a>(method: &'a str, biz: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("app_id", APP_ID),
        ("method", method),
        ("format", "JSON"),
        ("charset", "utf-8"),
        ("sign_type", "RSA2"),
        ("timestamp", "2026-01-02 03:04:05"),
        ("version", "1.0"),
        ("biz_content", biz),
    ]
}

#[tokio::test]
async fn malformed_requests_are_answered_never_panicked() {
    let sim = start().await;
    let gateway = sim.gateway_url();
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "isv.missing-app-id"),
        ("%".into(), "isv.missing-app-id"),
        ("%zz=%%&&=&x".into(), "isv.missing-app-id"),
        ("app_id=1&app_id=1".into(), "isv.invalid-parameter"),
        (format!("app_id={APP_ID}"), "isv.missing-method"),
        (
            format!("app_id={APP_ID}&method=alipay.trade.query"),
            "isv.missing-signature",
        ),
        (
            format!("app_id={APP_ID}&method=alipay.trade.query&sign=abc&sign_type=RSA"),
            "isv.invalid-signature-type",
        ),
        (
            format!(
                "app_id={APP_ID}&method=alipay.trade.query&sign=abc&sign_type=RSA2&charset=utf-8\
                 &timestamp=2026-13-01+00:00:00&version=1.0"
            ),
            "isv.invalid-timestamp",
        ),
        (
            format!(
                "app_id={APP_ID}&method=alipay.trade.query&sign=%FF%FE&sign_type=RSA2&charset=utf-8\
                 &timestamp=2026-01-01+00:00:00&version=1.0"
            ),
            "isv.invalid-signature",
        ),
        (
            sign_params(&common("alipay.trade.query", "not json")),
            "ACQ.INVALID_PARAMETER",
        ),
        (
            sign_params(&common("alipay.trade.query", "{}")),
            "ACQ.INVALID_PARAMETER",
        ),
        (
            sign_params(&common(
                "alipay.trade.refund",
                r#"{"out_trade_no":"x","refund_amount":"-1"}"#,
            )),
            "ACQ.INVALID_PARAMETER",
        ),
        (
            sign_params(&common(
                "alipay.trade.refund",
                r#"{"out_trade_no":"x","refund_amount":"1.00"}"#,
            )),
            "ACQ.TRADE_NOT_EXIST",
        ),
        (
            sign_params(&common("alipay.trade.pay", r#"{"out_trade_no":"x"}"#)),
            "isv.invalid-method",
        ),
    ];
    for (body, expected) in &cases {
        let (status, raw) = post_body(&gateway, body).await;
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value =
            serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{e}: {raw}"));
        let object = json
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.ends_with("_response")))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{raw}"));
        assert_eq!(object["sub_code"], *expected, "{body} → {raw}");
    }
    // Business failures are signed as the method's answer, which the crate verifies.
    let raw = post_body(&gateway, &cases[9].0).await.1;
    assert!(verify_answer(&raw, Request::Query, &sim_public_key()).is_ok());
    // An unknown method is the gateway's error_response.
    assert!(
        post_body(&gateway, &cases[13].0)
            .await
            .1
            .starts_with("{\"error_response\"")
    );

    // A cashier method with a broken biz_content: the error page.
    let page = sign_params(&common("alipay.trade.page.pay", r#"{"out_trade_no":"x"}"#));
    let response = client()
        .get(format!("{gateway}?{page}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // Other paths and methods.
    assert_eq!(
        client()
            .get(format!("http://{}/nowhere", sim.addr()))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // Still serving.
    sim.open(&page_pay_url(&signer(&sim), "o-120", "3.00"))
        .await
        .unwrap();
    assert!(matches!(
        sim.open("http://127.0.0.1/elsewhere?x=1").await,
        Err(SimError::NotAGatewayUrl(_))
    ));
    let query_url = signer(&sim)
        .sign(
            &TradeRequest::Query {
                out_trade_no: "o-120",
            },
            now(),
        )
        .unwrap()
        .url();
    assert_eq!(
        sim.open(&query_url).await,
        Err(SimError::NotACashierMethod("alipay.trade.query".into()))
    );
    // A cashier URL refused for its form still gets the cashier's error page.
    let doubled = format!(
        "{}&app_id={APP_ID}",
        page_pay_url(&signer(&sim), "o-121", "1.00")
    );
    assert_eq!(client().get(&doubled).send().await.unwrap().status(), 400);
    match sim.open(&doubled).await {
        Err(SimError::Refused { sub_code, .. }) => assert_eq!(sub_code, "isv.invalid-parameter"),
        other => panic!("{other:?}"),
    }
}
