//! The server against the Alipay simulator, on a real database (SQLite, or PostgreSQL when
//! `PAYSTATE_TEST_DATABASE` names one): payments from creation to their end, notifications
//! redelivered and forged, late payments refunded once, crashes at the worst moments, the
//! query poller.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn success_fields<'a>(
    order_id: &'a str,
    notify_id: &'a str,
    amount: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("notify_time", "2026-11-30 12:00:00"),
        ("notify_type", "trade_status_sync"),
        ("notify_id", notify_id),
        ("app_id", APP_ID),
        ("charset", "utf-8"),
        ("version", "1.0"),
        ("sign_type", "RSA2"),
        ("trade_no", "2026113022001400000000000001"),
        ("out_trade_no", order_id),
        ("seller_id", SELLER_ID),
        ("total_amount", amount),
        ("trade_status", "TRADE_SUCCESS"),
        ("gmt_payment", "2026-11-30 12:00:00"),
    ]
}

async fn paid(env: &Env, server: &Server, order_id: &str, amount: &str) -> Value {
    let (code, created) = server.create(order_id, amount, &[]).await;
    assert_eq!(code, 201, "{created}");
    let pay_url = created["pay_url"].as_str().expect("a pay_url").to_owned();
    env.sim.open(&pay_url).await.expect("the cashier opens");
    env.sim.pay(order_id).await.expect("the buyer pays");
    server
        .wait_for(order_id, "succeeded", |v| status(v) == "succeeded")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_through_the_cashier_and_redelivered_and_forged() {
    let env = Env::new().await;
    let server = env.server(Options::default()).await;
    let (code, created) = server.create("order-1", "99.99", &[]).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["status"], "pending");
    let pay_url = created["pay_url"].as_str().expect("pay_url");
    assert!(pay_url.starts_with(&env.sim.gateway_url()), "{pay_url}");
    assert!(pay_url.contains("method=alipay.trade.page.pay"));
    env.sim.open(pay_url).await.expect("open");
    env.sim.pay("order-1").await.expect("pay");
    let v = server
        .wait_for("order-1", "succeeded", |v| status(v) == "succeeded")
        .await;
    assert_eq!(v["paid"], "99.99");
    assert_eq!(v["pending_effects"], json!([]));
    eventually("the simulator saw success", || {
        env.sim
            .deliveries("order-1")
            .iter()
            .any(|d| d.reply.as_deref() == Some("success"))
    })
    .await;
    let version = v["version"].clone();

    // The same notification again: success, nothing changes.
    let body = env.sim.notification("order-1").expect("the notification");
    assert_eq!(server.notify(&body).await, "success");
    assert_eq!(server.view("order-1").await["version"], version);

    // A forged copy: one byte of the body changed.
    let forged = body.replacen("total_amount=99.99", "total_amount=99.98", 1);
    assert_ne!(forged, body);
    assert_eq!(server.notify(&forged).await, "fail");
    // Genuinely signed, but for another seller, another app, another amount.
    for (field, value) in [
        ("seller_id", "2088999999999999"),
        ("app_id", "2021999999999999"),
        ("total_amount", "9.99"),
    ] {
        let mut fields = success_fields("order-1", "forged-notify", "99.99");
        for f in fields.iter_mut() {
            if f.0 == field {
                f.1 = value;
            }
        }
        let signed = env.sim.sign_notification(&fields);
        assert_eq!(server.notify(&signed).await, "fail", "{field} = {value}");
    }
    let after = server.view("order-1").await;
    assert_eq!(after["version"], version);
    assert_eq!(after["status"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_then_paid_anyway_is_refunded_exactly_once() {
    let env = Env::new().await;
    let server = env.server(Options::default()).await;
    let (code, created) = server.create("order-late", "25.00", &[]).await;
    assert_eq!(code, 201);
    env.sim
        .open(created["pay_url"].as_str().expect("pay_url"))
        .await
        .expect("open");
    let (code, v) = server
        .call("POST", "/v1/payments/order-late/cancel", None, None)
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "cancelled");
    // The close is carried out at the simulator.
    server
        .wait_for("order-late", "close done", |v| {
            v["pending_effects"] == json!([])
        })
        .await;
    eventually("trade closed at the simulator", || {
        env.sim
            .trade("order-late")
            .is_some_and(|t| t.status == "TRADE_CLOSED")
    })
    .await;

    // Paid anyway (a payment in flight when the close happened). Hold the provider down a
    // moment to read the obligation's refund id.
    env.sim.set_down(true);
    env.sim.pay_late("order-late").await.expect("late payment");
    let owed = server
        .wait_for("order-late", "refund owed", |v| {
            v["pending_effects"]
                .as_array()
                .is_some_and(|a| a.iter().any(|e| e["type"] == "refund_required"))
        })
        .await;
    let effect = &owed["pending_effects"][0];
    assert_eq!(effect["amount"], "25.00");
    let refund_id = effect["refund_id"].as_str().expect("refund_id").to_owned();
    env.sim.set_down(false);
    let v = server
        .wait_for("order-late", "refunded", |v| status(v) == "refunded")
        .await;
    assert_eq!(v["refunded"], "25.00");
    assert_eq!(v["pending_effects"], json!([]));
    let trade = env.sim.trade("order-late").expect("trade");
    assert_eq!(trade.refunds.len(), 1, "{:?}", trade.refunds);
    assert_eq!(trade.refunds[0].0, refund_id);
    assert_eq!(env.sim.refunds_effected(&refund_id), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_by_its_deadline_then_paid_is_refunded_once() {
    let env = Env::new().await;
    let server = env.server(Options::default()).await;
    let expires = unix_now() + 2;
    let (code, created) = server
        .create("order-deadline", "10.00", &[("expires_at", json!(expires))])
        .await;
    assert_eq!(code, 201, "{created}");
    env.sim
        .open(created["pay_url"].as_str().expect("pay_url"))
        .await
        .expect("open");
    let v = server
        .wait_for("order-deadline", "deadline", |v| {
            status(v) != "pending" && status(v) != "processing"
        })
        .await;
    let after_deadline = status(&v).to_owned();
    env.sim
        .pay_late("order-deadline")
        .await
        .expect("late payment");
    let v = server
        .wait_for("order-deadline", "refunded", |v| status(v) == "refunded")
        .await;
    assert_eq!(v["refunded"], "10.00", "after {after_deadline}");
    let trade = env.sim.trade("order-deadline").expect("trade");
    assert_eq!(trade.refunds.len(), 1);
    assert!(trade.refunds[0].0.starts_with("lr"), "{:?}", trade.refunds);
    assert_eq!(env.sim.refunds_effected(&trade.refunds[0].0), 1);
}

/// Kills the server with `SIGKILL` at `failpoint` while it carries out a late payment's
/// refund, restarts it, and checks the refund is completed exactly once.
async fn crash_during_refund(failpoint: &str, order_id: &str) {
    let env = Env::new().await;
    // The dead instance's claim on the outbox row lasts its lease; keep it short.
    let mut server = env
        .server(Options {
            lease_secs: 2,
            ..Options::default()
        })
        .await;
    let (code, created) = server.create(order_id, "30.00", &[]).await;
    assert_eq!(code, 201);
    env.sim
        .open(created["pay_url"].as_str().expect("pay_url"))
        .await
        .expect("open");
    let (code, _) = server
        .call(
            "POST",
            &format!("/v1/payments/{order_id}/cancel"),
            None,
            None,
        )
        .await;
    assert_eq!(code, 200);
    server
        .wait_for(order_id, "close done", |v| {
            v["pending_effects"] == json!([])
        })
        .await;
    // Restart with the failpoint armed; the late payment's refund trips it.
    server.kill();
    server.start(&[("PAYSTATE_FAILPOINT", failpoint)]).await;
    env.sim.pay_late(order_id).await.expect("late payment");
    assert!(
        server.wait_exit(Duration::from_secs(30)).await,
        "the failpoint never fired: {}",
        server.log_text()
    );
    assert!(
        server
            .log_text()
            .contains(&format!("failpoint {failpoint}"))
    );
    let before = env.sim.trade(order_id).expect("trade").refunds.len();
    match failpoint {
        "outbox_before_call" => assert_eq!(before, 0, "killed before the call"),
        _ => assert_eq!(before, 1, "killed after the call"),
    }
    server.start(&[]).await;
    let v = server
        .wait_for(order_id, "refunded", |v| status(v) == "refunded")
        .await;
    assert_eq!(v["pending_effects"], json!([]));
    let trade = env.sim.trade(order_id).expect("trade");
    assert_eq!(trade.refunds.len(), 1, "{:?}", trade.refunds);
    assert_eq!(
        env.sim.refunds_effected(&trade.refunds[0].0),
        1,
        "money moved once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_commit_and_provider_call() {
    crash_during_refund("outbox_before_call", "order-crash-1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_provider_call_and_confirmation() {
    crash_during_refund("outbox_after_call", "order-crash-2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trade_closed_after_a_full_refund_is_acknowledged_twice() {
    let env = Env::new().await;
    let server = env.server(Options::default()).await;
    paid(&env, &server, "order-full-refund", "50.00").await;
    let (code, v) = server
        .call(
            "POST",
            "/v1/payments/order-full-refund/refunds",
            Some(&json!({"refund_id": "rf-1", "amount": "50.00"})),
            None,
        )
        .await;
    assert_eq!(code, 202, "{v}");
    let v = server
        .wait_for("order-full-refund", "refunded", |v| status(v) == "refunded")
        .await;
    assert_eq!(v["refunded"], "50.00");
    eventually("the TRADE_CLOSED notification", || {
        env.sim
            .deliveries("order-full-refund")
            .iter()
            .any(|d| d.trade_status == "TRADE_CLOSED" && d.reply.as_deref() == Some("success"))
    })
    .await;
    let body = env
        .sim
        .notification("order-full-refund")
        .expect("the TRADE_CLOSED notification");
    assert!(body.contains("TRADE_CLOSED"), "{body}");
    assert_eq!(server.notify(&body).await, "success");
    assert_eq!(server.notify(&body).await, "success");
    assert_eq!(
        server.view("order-full-refund").await["version"],
        v["version"]
    );
    assert_eq!(env.sim.refunds_effected("rf-1"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_before_the_order_and_two_at_once() {
    let env = Env::new().await;
    let server = env.server(Options::default()).await;
    let body = env
        .sim
        .sign_notification(&success_fields("order-early", "notify-early-1", "12.34"));
    // Before the order exists: fail, so Alipay redelivers; nothing is written.
    assert_eq!(server.notify(&body).await, "fail");
    assert_eq!(env.db.count("SELECT COUNT(*) FROM payments").await, 0);
    let (code, _) = server.create("order-early", "12.34", &[]).await;
    assert_eq!(code, 201);
    // The redelivery, twice at the same instant.
    let (a, b) = tokio::join!(server.notify(&body), server.notify(&body));
    assert_eq!((a.as_str(), b.as_str()), ("success", "success"));
    let v = server.view("order-early").await;
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["version"], 1, "applied exactly once: {v}");
    let applied = server
        .metric("paystate_notifications_total{provider=\"alipay\",outcome=\"applied\"}")
        .await;
    let duplicate = server
        .metric("paystate_notifications_total{provider=\"alipay\",outcome=\"duplicate\"}")
        .await;
    assert_eq!((applied, duplicate), (1.0, 1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_poller_finds_a_payment_whose_notification_never_came() {
    let env = Env::new().await;
    let server = env
        .server(Options {
            query_after_secs: 1,
            poll_interval_ms: 200,
            ..Options::default()
        })
        .await;
    env.sim.set_notify(false);
    let (code, created) = server.create("order-quiet", "8.88", &[]).await;
    assert_eq!(code, 201);
    env.sim
        .open(created["pay_url"].as_str().expect("pay_url"))
        .await
        .expect("open");
    env.sim.pay("order-quiet").await.expect("pay");
    let v = server
        .wait_for("order-quiet", "succeeded by query", |v| {
            status(v) == "succeeded"
        })
        .await;
    assert_eq!(v["paid"], "8.88");
    assert!(
        env.sim.deliveries("order-quiet").is_empty(),
        "no notification was delivered"
    );
    assert!(
        env.sim
            .calls()
            .iter()
            .any(|c| c.method == "alipay.trade.query")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merchant_refunds_are_checked_against_the_balance() {
    let env = Env::new().await;
    let server = env.server(Options::default()).await;
    paid(&env, &server, "order-refunds", "100.00").await;
    // A cancel of a payment that succeeded is refused.
    let (code, v) = server
        .call("POST", "/v1/payments/order-refunds/cancel", None, None)
        .await;
    assert_eq!(
        (code, v["error"].as_str()),
        (409, Some("invalid_transition")),
        "{v}"
    );
    let path = "/v1/payments/order-refunds/refunds";
    env.sim.set_down(true); // keep both requests on their way
    let (code, v) = server
        .call(
            "POST",
            path,
            Some(&json!({"refund_id": "r-a", "amount": "60.00"})),
            None,
        )
        .await;
    assert_eq!(code, 202, "{v}");
    let (code, v) = server
        .call(
            "POST",
            path,
            Some(&json!({"refund_id": "r-b", "amount": "50.00"})),
            None,
        )
        .await;
    assert_eq!(
        (code, v["error"].as_str()),
        (409, Some("refund_exceeds_balance")),
        "{v}"
    );
    let (code, v) = server
        .call(
            "POST",
            path,
            Some(&json!({"refund_id": "r-a", "amount": "10.00"})),
            None,
        )
        .await;
    assert_eq!(
        (code, v["error"].as_str()),
        (409, Some("idempotency_conflict")),
        "{v}"
    );
    let (code, v) = server
        .call(
            "POST",
            path,
            Some(&json!({"refund_id": "r-a", "amount": "60.00"})),
            None,
        )
        .await;
    assert_eq!(code, 202, "the same request again: {v}");
    let (code, v) = server
        .call(
            "POST",
            path,
            Some(&json!({"refund_id": "r-c", "amount": "abc"})),
            None,
        )
        .await;
    assert_eq!(
        (code, v["error"].as_str()),
        (400, Some("invalid_amount")),
        "{v}"
    );
    env.sim.set_down(false);
    let v = server
        .wait_for("order-refunds", "refund applied", |v| {
            v["refunded"] == "60.00"
        })
        .await;
    assert_eq!(
        v["status"], "succeeded",
        "a partial refund keeps the payment succeeded: {v}"
    );
    assert_eq!(env.sim.refunds_effected("r-a"), 1);
    let (code, v) = server
        .call(
            "POST",
            path,
            Some(&json!({"refund_id": "r-d", "amount": "40.00"})),
            None,
        )
        .await;
    assert_eq!(code, 202, "{v}");
    let v = server
        .wait_for("order-refunds", "refunded in full", |v| {
            status(v) == "refunded"
        })
        .await;
    assert_eq!(v["refunded"], "100.00");
    assert_eq!(env.sim.refunds_effected("r-d"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_path_cashier_page_pay_button_and_return_page() {
    let env = Env::new().await;
    let server = env.server(Options::default()).await;
    let (code, created) = server.create("order-browser", "66.00", &[]).await;
    assert_eq!(code, 201);
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    // The pay_url shows the simulated cashier.
    let page = browser
        .get(created["pay_url"].as_str().expect("pay_url"))
        .send()
        .await
        .expect("cashier");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("/cashier/pay") && html.contains("order-browser"),
        "{html}"
    );
    // "Pay": Alipay sends the browser back to return_url, signed.
    let paid = browser
        .post(format!("http://{}/cashier/pay", env.sim.addr()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("out_trade_no=order-browser")
        .send()
        .await
        .expect("pay");
    assert_eq!(paid.status().as_u16(), 303);
    let location = paid
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a redirect")
        .to_owned();
    assert!(
        location.starts_with(&format!("{}/return/alipay?", server.base())),
        "{location}"
    );
    // The notification settles the payment; the return page only shows it.
    server
        .wait_for("order-browser", "succeeded", |v| status(v) == "succeeded")
        .await;
    let version = server.view("order-browser").await["version"].clone();
    let back = browser.get(&location).send().await.expect("return page");
    assert_eq!(back.status().as_u16(), 200);
    let html = back.text().await.expect("html");
    assert!(
        html.contains("Order order-browser") && html.contains("succeeded"),
        "{html}"
    );
    // A tampered return is refused, and neither changes the payment.
    let tampered = location.replacen("total_amount=66.00", "total_amount=6.00", 1);
    assert_ne!(tampered, location);
    let back = browser.get(&tampered).send().await.expect("return page");
    assert_eq!(back.status().as_u16(), 400);
    assert_eq!(server.view("order-browser").await["version"], version);
}

fn stripe_event(id: &str, ty: &str, order_id: &str, amount: u64) -> String {
    json!({
        "id": id,
        "object": "event",
        "type": ty,
        "data": {"object": {
            "id": "pi_1", "object": "payment_intent", "amount": amount,
            "amount_received": amount, "currency": "usd",
            "metadata": {"order_id": order_id},
        }},
    })
    .to_string()
}

async fn post_stripe(server: &Server, body: &str, t: u64, secret: &str) -> u16 {
    let key = paystate::webhook::hmac::HmacKey::new(secret.as_bytes()).expect("key");
    let mac =
        paystate::webhook::stripe::sign(&key, paystate::Timestamp::from_secs(t), body.as_bytes());
    server
        .http
        .post(format!("{}/webhook/stripe", server.base()))
        .header("stripe-signature", format!("t={t},v1={}", hex::encode(mac)))
        .body(body.to_owned())
        .send()
        .await
        .expect("answer")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_webhooks_settle_a_stripe_payment() {
    let env = Env::new().await;
    let server = env.server(Options::default()).await;
    let body = json!({"order_id": "order-stripe", "provider": "stripe", "amount": "12.50", "currency": "USD", "subject": "Mug"});
    let (code, v) = server.call("POST", "/v1/payments", Some(&body), None).await;
    assert_eq!(code, 201, "{v}");
    assert!(v.get("pay_url").is_none(), "no pay_url for Stripe: {v}");
    let now = unix_now();
    let event = stripe_event("evt_1", "payment_intent.succeeded", "order-stripe", 1250);
    // Signed with another secret, or too old: 400, nothing changes.
    assert_eq!(
        post_stripe(&server, &event, now, "whsec_someone_else").await,
        400
    );
    assert_eq!(
        post_stripe(&server, &event, now - 3600, STRIPE_SECRET).await,
        400
    );
    assert_eq!(server.view("order-stripe").await["status"], "pending");
    // Genuine: applied; redelivered: acknowledged, nothing changes.
    assert_eq!(post_stripe(&server, &event, now, STRIPE_SECRET).await, 200);
    let v = server.view("order-stripe").await;
    assert_eq!(
        (v["status"].as_str(), v["paid"].as_str()),
        (Some("succeeded"), Some("12.50"))
    );
    assert_eq!(post_stripe(&server, &event, now, STRIPE_SECRET).await, 200);
    assert_eq!(server.view("order-stripe").await["version"], v["version"]);
    // Another amount: a genuine event that fails the business check is not acknowledged.
    let wrong = stripe_event("evt_2", "payment_intent.succeeded", "order-stripe", 999);
    assert_eq!(post_stripe(&server, &wrong, now, STRIPE_SECRET).await, 500);
    // An event for an order this server does not have: 500, so Stripe retries (its creation
    // may not have committed yet).
    let foreign = stripe_event("evt_3", "payment_intent.succeeded", "nobody", 100);
    assert_eq!(
        post_stripe(&server, &foreign, now, STRIPE_SECRET).await,
        500
    );
    assert_eq!(server.view("order-stripe").await["version"], v["version"]);
}

/// A WeChat Pay notification as the platform sends it, made by the WeChat Pay simulator's
/// platform side: the resource sealed with AEAD_AES_256_GCM under the APIv3 key, the body
/// signed (SHA256withRSA over "timestamp\nnonce\nbody\n") with the platform key, here the
/// simulator's key pair.
fn wechat_notification(
    id: &str,
    order_id: &str,
    state: &str,
    total: u64,
    t: u64,
) -> (Vec<(String, String)>, String) {
    let resource = json!({
        "mchid": WX_MCHID, "appid": WX_APPID, "out_trade_no": order_id,
        "transaction_id": "4200000000201407033233368018", "trade_type": "NATIVE",
        "trade_state": state, "trade_state_desc": "", "bank_type": "CMC",
        "success_time": "2026-11-30T10:34:56+08:00", "payer": {"openid": "o1"},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
    });
    let platform = wechat_sim_config();
    let body = platform
        .seal_notification(id, "TRANSACTION.SUCCESS", "支付成功", &resource)
        .expect("sealed");
    let headers = platform.sign(body.as_bytes(), t, &format!("nonce-{id}-{t}"));
    (headers, body)
}

async fn post_wechat(server: &Server, headers: &[(String, String)], body: &str) -> (u16, String) {
    let mut req = server
        .http
        .post(format!("{}/notify/wechatpay", server.base()))
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.expect("answer");
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechatpay_notifications_settle_a_wechatpay_payment() {
    let env = Env::new().await;
    let server = env.server(Options::default()).await;
    let body = json!({"order_id": "order-wx", "provider": "wechatpay", "amount": "88.00", "currency": "CNY", "subject": "Tea"});
    let (code, v) = server.call("POST", "/v1/payments", Some(&body), None).await;
    assert_eq!(code, 201, "{v}");
    let now = unix_now();
    let (headers, note) = wechat_notification("EV-1", "order-wx", "SUCCESS", 8800, now);
    // Forged: the body changed after signing.
    let forged = note.replacen("支付成功", "支付失败", 1);
    let (code, text) = post_wechat(&server, &headers, &forged).await;
    assert_eq!(code, 401, "{text}");
    assert!(text.contains("\"FAIL\""), "{text}");
    assert_eq!(server.view("order-wx").await["status"], "pending");
    // Genuine: 204, succeeded.
    let (headers, note) = wechat_notification("EV-1", "order-wx", "SUCCESS", 8800, now - 1);
    let (code, text) = post_wechat(&server, &headers, &note).await;
    assert_eq!(code, 204, "{text}");
    let v = server.view("order-wx").await;
    assert_eq!(
        (v["status"].as_str(), v["paid"].as_str()),
        (Some("succeeded"), Some("88.00"))
    );
    // The very same request again is a replay: refused by the replay guard.
    assert_eq!(post_wechat(&server, &headers, &note).await.0, 401);
    // The same notification again, with a fresh nonce (WeChat Pay redelivers it signed anew): 204,
    // nothing changes.
    let (headers, again) = wechat_notification("EV-1", "order-wx", "SUCCESS", 8800, now + 1);
    assert_eq!(post_wechat(&server, &headers, &again).await.0, 204);
    assert_eq!(server.view("order-wx").await["version"], v["version"]);
    // Another amount, genuinely signed: 500, not acknowledged.
    let (headers, wrong) = wechat_notification("EV-2", "order-wx", "SUCCESS", 100, now);
    let (code, text) = post_wechat(&server, &headers, &wrong).await;
    assert_eq!(code, 500, "{text}");
    assert_eq!(server.view("order-wx").await["version"], v["version"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_close_call_and_confirmation() {
    let env = Env::new().await;
    let mut server = env
        .server(Options {
            lease_secs: 2,
            ..Options::default()
        })
        .await;
    let (code, created) = server.create("order-crash-close", "20.00", &[]).await;
    assert_eq!(code, 201, "{created}");
    env.sim
        .open(created["pay_url"].as_str().expect("pay_url"))
        .await
        .expect("open");
    // The close trips the failpoint: Alipay closed the trade, the server died before it
    // applied the answer.
    server.kill();
    server
        .start(&[("PAYSTATE_FAILPOINT", "outbox_after_call")])
        .await;
    let (code, v) = server
        .call("POST", "/v1/payments/order-crash-close/cancel", None, None)
        .await;
    assert_eq!(code, 200, "{v}");
    assert!(
        server.wait_exit(Duration::from_secs(30)).await,
        "the failpoint never fired: {}",
        server.log_text()
    );
    assert_eq!(
        env.sim.trade("order-crash-close").expect("trade").status,
        "TRADE_CLOSED"
    );
    server.start(&[]).await;
    let v = server
        .wait_for("order-crash-close", "close confirmed", |v| {
            v["pending_effects"] == json!([])
        })
        .await;
    assert_eq!(v["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_that_lost_to_an_unannounced_capture_is_refunded() {
    let env = Env::new().await;
    let server = env.server(Options::default()).await;
    env.sim.set_notify(false); // the capture's notification is lost
    let (code, created) = server.create("order-unannounced", "15.00", &[]).await;
    assert_eq!(code, 201, "{created}");
    env.sim
        .open(created["pay_url"].as_str().expect("pay_url"))
        .await
        .expect("open");
    env.sim.pay("order-unannounced").await.expect("pay");
    // The merchant cancels, not knowing the buyer paid: Alipay refuses the close, and the
    // trade's status shows the capture, which is refunded.
    let (code, v) = server
        .call("POST", "/v1/payments/order-unannounced/cancel", None, None)
        .await;
    assert_eq!((code, status(&v)), (200, "cancelled"), "{v}");
    let v = server
        .wait_for("order-unannounced", "refunded", |v| status(v) == "refunded")
        .await;
    assert_eq!(
        (v["paid"].as_str(), v["refunded"].as_str()),
        (Some("15.00"), Some("15.00"))
    );
    assert_eq!(v["pending_effects"], json!([]));
    let trade = env.sim.trade("order-unannounced").expect("trade");
    assert_eq!(trade.refunds.len(), 1, "{:?}", trade.refunds);
    assert_eq!(env.sim.refunds_effected(&trade.refunds[0].0), 1);
    assert!(env.sim.deliveries("order-unannounced").is_empty());
}
