//! The server against the WeChat Pay simulator, on a real database (SQLite, or PostgreSQL when
//! `PAYSTATE_TEST_DATABASE` names one): closes and refunds carried out through the outbox,
//! late payments refunded once under the obligation's refund id, merchant refunds, the
//! provider down, crashes around the call, forged answers, refunds still processing.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use sqlx::Row as _;

/// Creates a WeChat Pay payment at the server and its order at the simulator.
async fn created(env: &Env, server: &Server, order_id: &str, amount: &str) {
    let (code, v) = server.create_wechat(order_id, amount, &[]).await;
    assert_eq!(code, 201, "{v}");
    assert!(v.get("pay_url").is_none(), "no pay_url for WeChat Pay: {v}");
    let fen = paystate::Money::parse(amount, paystate::Currency::CNY)
        .expect("an amount")
        .minor_units();
    env.wechat()
        .create_order(order_id, fen)
        .expect("the order is made at WeChat Pay");
}

/// Creates a WeChat Pay payment and pays it; waits until the notification settled it.
async fn paid(env: &Env, server: &Server, order_id: &str, amount: &str) -> Value {
    created(env, server, order_id, amount).await;
    env.wechat().pay(order_id).await.expect("the buyer pays");
    server
        .wait_for(order_id, "succeeded", |v| status(v) == "succeeded")
        .await
}

async fn cancel(server: &Server, order_id: &str) -> Value {
    let (code, v) = server
        .call(
            "POST",
            &format!("/v1/payments/{order_id}/cancel"),
            None,
            None,
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "cancelled");
    v
}

async fn refund(server: &Server, order_id: &str, refund_id: &str, amount: &str) -> (u16, Value) {
    server
        .call(
            "POST",
            &format!("/v1/payments/{order_id}/refunds"),
            Some(&json!({"refund_id": refund_id, "amount": amount})),
            None,
        )
        .await
}

/// The simulator's refund calls under `out_refund_no`.
fn refund_calls(env: &Env, out_refund_no: &str) -> Vec<paystate_server::sim::wechatpay::Call> {
    env.wechat()
        .calls()
        .into_iter()
        .filter(|c| c.api == "refund" && c.out_refund_no.as_deref() == Some(out_refund_no))
        .collect()
}

/// `(attempts, done, last_error)` of the outbox row with this key.
async fn outbox_row(env: &Env, effect_key: &str) -> (i64, bool, Option<String>) {
    let pool = env.db.pool().await;
    let row = sqlx::query(
        "SELECT attempts, CASE WHEN done_at IS NULL THEN 0 ELSE 1 END, last_error \
         FROM outbox WHERE effect_key = $1",
    )
    .bind(effect_key)
    .fetch_one(&pool)
    .await
    .expect("the outbox row");
    let out = (
        row.try_get::<i64, _>(0).expect("attempts"),
        row.try_get::<i32, _>(1).expect("done") == 1,
        row.try_get::<Option<String>, _>(2).expect("last_error"),
    );
    pool.close().await;
    out
}

fn owed_refund_id(v: &Value) -> Option<String> {
    v["pending_effects"].as_array().and_then(|a| {
        a.iter()
            .find(|e| e["type"] == "refund_required")
            .and_then(|e| e["refund_id"].as_str())
            .map(str::to_owned)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_then_paid_late_is_refunded_exactly_once() {
    let env = Env::with_wechat().await;
    let server = env.wechat_server(Options::default()).await;
    let wx = env.wechat();
    created(&env, &server, "wx-late-1", "25.00").await;
    cancel(&server, "wx-late-1").await;
    // The close is carried out at WeChat Pay.
    server
        .wait_for("wx-late-1", "close done", |v| {
            v["pending_effects"] == json!([])
        })
        .await;
    let order = wx.order("wx-late-1").expect("the order");
    assert_eq!(order.trade_state, "CLOSED");
    assert!(
        wx.calls()
            .iter()
            .any(|c| c.api == "close" && c.http_status == 204 && c.signed),
        "{:?}",
        wx.calls()
    );
    // A cancelled order cannot be paid at the cashier any more...
    assert!(wx.pay("wx-late-1").await.is_err());
    // ...but a payment in flight when the close happened goes through. Hold WeChat Pay down a
    // moment to read the obligation's refund id.
    wx.set_down(true);
    wx.pay_late("wx-late-1").await.expect("a late payment");
    let owed = server
        .wait_for("wx-late-1", "refund owed", |v| owed_refund_id(v).is_some())
        .await;
    assert_eq!(owed["pending_effects"][0]["amount"], "25.00");
    let refund_id = owed_refund_id(&owed).expect("a refund id");
    assert!(refund_id.starts_with("lr"), "{refund_id}");
    wx.set_down(false);
    let v = server
        .wait_for("wx-late-1", "refunded", |v| status(v) == "refunded")
        .await;
    assert_eq!(v["refunded"], "25.00");
    assert_eq!(v["pending_effects"], json!([]));
    // WeChat Pay wants out_refund_no unique per merchant: the obligation's number is sent
    // prefixed with the order id (spec §2.6).
    let out_refund_no = format!("wx-late-1_{refund_id}");
    let order = wx.order("wx-late-1").expect("the order");
    assert_eq!(order.refunds.len(), 1, "{:?}", order.refunds);
    assert_eq!(order.refunds[0].out_refund_no, out_refund_no);
    assert_eq!(order.refunds[0].amount, 2500);
    assert_eq!(wx.refunds_effected(&out_refund_no), 1);
    let (_, done, _) = outbox_row(&env, &format!("wx-late-1/refund/{out_refund_no}")).await;
    assert!(done, "the refund row is done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_closes_the_order_and_an_unknown_order_counts_as_closed() {
    let env = Env::with_wechat().await;
    let server = env.wechat_server(Options::default()).await;
    let wx = env.wechat();
    created(&env, &server, "wx-close-1", "9.90").await;
    cancel(&server, "wx-close-1").await;
    server
        .wait_for("wx-close-1", "close done", |v| {
            v["pending_effects"] == json!([])
        })
        .await;
    assert_eq!(wx.order("wx-close-1").expect("order").trade_state, "CLOSED");
    let (attempts, done, _) = outbox_row(&env, "wx-close-1/close_trade").await;
    assert_eq!((attempts, done), (0, true), "closed at the first attempt");

    // A payment whose order never reached WeChat Pay: ORDER_NOT_EXIST is a close.
    let (code, v) = server.create_wechat("wx-close-2", "9.90", &[]).await;
    assert_eq!(code, 201, "{v}");
    cancel(&server, "wx-close-2").await;
    server
        .wait_for("wx-close-2", "close done", |v| {
            v["pending_effects"] == json!([])
        })
        .await;
    assert!(
        wx.calls().iter().any(|c| c.api == "close"
            && c.out_trade_no.as_deref() == Some("wx-close-2")
            && c.http_status == 404
            && c.code.as_deref() == Some("ORDER_NOT_EXIST")),
        "{:?}",
        wx.calls()
    );
    let (_, done, _) = outbox_row(&env, "wx-close-2/close_trade").await;
    assert!(done);
    assert_eq!(server.view("wx-close-2").await["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merchant_refunds_are_carried_out_once() {
    let env = Env::with_wechat().await;
    let server = env.wechat_server(Options::default()).await;
    let wx = env.wechat();
    paid(&env, &server, "wx-refunds-1", "100.00").await;
    let (code, v) = refund(&server, "wx-refunds-1", "wx-r-1", "30.00").await;
    assert_eq!(code, 202, "{v}");
    let v = server
        .wait_for("wx-refunds-1", "refund applied", |v| {
            v["refunded"] == "30.00"
        })
        .await;
    assert_eq!(v["status"], "succeeded", "a partial refund: {v}");
    assert_eq!(wx.refunds_effected("wx-r-1"), 1);
    // The same request again: accepted, and no second refund.
    let (code, _) = refund(&server, "wx-refunds-1", "wx-r-1", "30.00").await;
    assert_eq!(code, 202);
    let (code, v) = refund(&server, "wx-refunds-1", "wx-r-2", "70.00").await;
    assert_eq!(code, 202, "{v}");
    let v = server
        .wait_for("wx-refunds-1", "refunded", |v| status(v) == "refunded")
        .await;
    assert_eq!(v["refunded"], "100.00");
    assert_eq!(wx.refunds_effected("wx-r-1"), 1);
    assert_eq!(wx.refunds_effected("wx-r-2"), 1);
    let order = wx.order("wx-refunds-1").expect("order");
    assert_eq!(order.trade_state, "REFUND");
    let refunded: u64 = order.refunds.iter().map(|r| r.amount).sum();
    assert_eq!(refunded, 10_000);
    // The REFUND.SUCCESS notifications were acknowledged and changed nothing more.
    eventually("both refund notifications acknowledged", || {
        wx.deliveries("wx-refunds-1")
            .iter()
            .filter(|d| d.event_type == "REFUND.SUCCESS" && d.acknowledged())
            .count()
            == 2
    })
    .await;
    assert_eq!(server.view("wx-refunds-1").await["version"], v["version"]);

    // What this server cannot carry out at WeChat Pay is refused before anything is written.
    paid(&env, &server, "wx-refunds-2", "5.00").await;
    let (code, v) = refund(&server, "wx-refunds-2", "wx.r.3", "1.00").await;
    assert_eq!((code, v["error"].as_str()), (400, Some("bad_input")), "{v}");
    let (code, v) = server
        .create_wechat("wx-refunds-usd", "5.00", &[("currency", json!("USD"))])
        .await;
    assert_eq!(code, 201, "{v}");
    let (code, v) = refund(&server, "wx-refunds-usd", "wx-r-4", "1.00").await;
    assert_eq!(
        (code, v["error"].as_str()),
        (422, Some("unsupported")),
        "{v}"
    );
    let body = json!({"order_id": "stripe-refunds", "provider": "stripe", "amount": "5.00", "currency": "USD", "subject": "Mug"});
    let (code, v) = server.call("POST", "/v1/payments", Some(&body), None).await;
    assert_eq!(code, 201, "{v}");
    let (code, v) = refund(&server, "stripe-refunds", "st-r-1", "1.00").await;
    assert_eq!(
        (code, v["error"].as_str()),
        (422, Some("unsupported")),
        "{v}"
    );
    assert_eq!(
        env.db
            .count("SELECT COUNT(*) FROM refund_requests WHERE refund_id IN ('wx.r.3', 'wx-r-4', 'st-r-1')")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_down_then_up_the_row_retries_and_completes_once() {
    let env = Env::with_wechat().await;
    let server = env.wechat_server(Options::default()).await;
    let wx = env.wechat();
    paid(&env, &server, "wx-down-1", "40.00").await;
    wx.set_down(true);
    let (code, v) = refund(&server, "wx-down-1", "wx-down-r1", "40.00").await;
    assert_eq!(code, 202, "{v}");
    eventually("two refused attempts", || {
        refund_calls(&env, "wx-down-r1")
            .iter()
            .filter(|c| c.http_status == 503)
            .count()
            >= 2
    })
    .await;
    let (attempts, done, last_error) = outbox_row(&env, "wx-down-1/refund/wx-down-r1").await;
    assert!(attempts >= 1 && !done, "{attempts} {done}");
    assert!(
        last_error.as_deref().is_some_and(|e| e.contains("503")),
        "{last_error:?}"
    );
    assert_eq!(server.view("wx-down-1").await["refunded"], "0.00");
    assert_eq!(wx.refunds_effected("wx-down-r1"), 0);
    assert!(
        server
            .metric("paystate_outbox_failures_total{kind=\"refund\"}")
            .await
            >= 1.0
    );
    wx.set_down(false);
    let v = server
        .wait_for("wx-down-1", "refunded", |v| status(v) == "refunded")
        .await;
    assert_eq!(v["refunded"], "40.00");
    assert_eq!(wx.refunds_effected("wx-down-r1"), 1);
    let (_, done, last_error) = outbox_row(&env, "wx-down-1/refund/wx-down-r1").await;
    assert!(done && last_error.is_none(), "{last_error:?}");
}

/// Kills the server with `SIGKILL` at `failpoint` while it carries out a late payment's
/// refund at WeChat Pay, restarts it, and checks the refund is completed exactly once, by the
/// outbox (notifications are held back, so nothing else can confirm it).
async fn crash_during_refund(failpoint: &str, order_id: &str) {
    let env = Env::with_wechat().await;
    // The dead instance's claim on the outbox row lasts its lease; keep it short.
    let mut server = env
        .wechat_server(Options {
            lease_secs: 2,
            ..Options::default()
        })
        .await;
    let wx = env.wechat();
    created(&env, &server, order_id, "30.00").await;
    cancel(&server, order_id).await;
    server
        .wait_for(order_id, "close done", |v| {
            v["pending_effects"] == json!([])
        })
        .await;
    // Restart with the failpoint armed; the late payment's refund trips it.
    server.kill();
    server.start(&[("PAYSTATE_FAILPOINT", failpoint)]).await;
    wx.set_notify(false);
    wx.pay_late(order_id).await.expect("a late payment");
    wx.redeliver(order_id).await; // TRANSACTION.SUCCESS, once
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
    let before = wx.order(order_id).expect("order").refunds.len();
    match failpoint {
        "outbox_before_call" => assert_eq!(before, 0, "killed before the call"),
        _ => assert_eq!(before, 1, "killed after the call"),
    }
    server.start(&[]).await;
    let v = server
        .wait_for(order_id, "refunded", |v| status(v) == "refunded")
        .await;
    assert_eq!(v["pending_effects"], json!([]));
    let order = wx.order(order_id).expect("order");
    assert_eq!(order.refunds.len(), 1, "{:?}", order.refunds);
    let out_refund_no = order.refunds[0].out_refund_no.clone();
    assert!(
        out_refund_no.starts_with(&format!("{order_id}_lr")),
        "{out_refund_no}"
    );
    assert_eq!(wx.refunds_effected(&out_refund_no), 1, "money moved once");
    let calls = refund_calls(&env, &out_refund_no);
    match failpoint {
        "outbox_before_call" => assert_eq!(calls.len(), 1, "{calls:?}"),
        // The call made before the crash is made again after it, under the same number.
        _ => assert_eq!(calls.len(), 2, "{calls:?}"),
    }
    assert!(calls.iter().all(|c| c.http_status == 200), "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_commit_and_the_wechatpay_call() {
    crash_during_refund("outbox_before_call", "wx-crash-1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_the_wechatpay_call_and_the_confirmation() {
    crash_during_refund("outbox_after_call", "wx-crash-2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_answer_is_not_applied_and_the_row_retries() {
    let env = Env::with_wechat().await;
    let server = env.wechat_server(Options::default()).await;
    let wx = env.wechat();
    paid(&env, &server, "wx-forged-1", "10.00").await;
    // Only the answer could confirm the refund: no REFUND.SUCCESS notification.
    wx.set_notify(false);
    let impostor =
        paystate::signature::Rsa2PrivateKey::from_pem(include_str!("../keys/app_private.pem"))
            .expect("a key that is not the platform's");
    wx.set_answer_key(Some(impostor));
    let (code, v) = refund(&server, "wx-forged-1", "wx-forged-r1", "10.00").await;
    assert_eq!(code, 202, "{v}");
    eventually("two forged answers", || {
        refund_calls(&env, "wx-forged-r1").len() >= 2
    })
    .await;
    // WeChat Pay did refund (the request was genuine); the server did not believe the answer.
    assert_eq!(wx.refunds_effected("wx-forged-r1"), 1);
    let v = server.view("wx-forged-1").await;
    assert_eq!(
        (v["status"].as_str(), v["refunded"].as_str()),
        (Some("succeeded"), Some("0.00"))
    );
    let (attempts, done, last_error) = outbox_row(&env, "wx-forged-1/refund/wx-forged-r1").await;
    assert!(attempts >= 1 && !done);
    assert!(
        last_error
            .as_deref()
            .is_some_and(|e| e.contains("answer refused") && e.contains("signature")),
        "{last_error:?}"
    );
    // The genuine answer to the next attempt: the same refund, applied once.
    wx.set_answer_key(None);
    let v = server
        .wait_for("wx-forged-1", "refunded", |v| status(v) == "refunded")
        .await;
    assert_eq!(v["refunded"], "10.00");
    assert_eq!(wx.refunds_effected("wx-forged-r1"), 1);
    assert!(refund_calls(&env, "wx-forged-r1").len() >= 3);
}

/// A refund WeChat Pay answers `PROCESSING`: nothing is applied and the row retries; the
/// `REFUND.SUCCESS` notification confirms it, or (notifications lost) a later attempt does.
async fn refund_processing(order_id: &str, by_notification: bool) {
    let env = Env::with_wechat().await;
    let server = env.wechat_server(Options::default()).await;
    let wx = env.wechat();
    paid(&env, &server, order_id, "20.00").await;
    wx.set_notify(by_notification);
    wx.set_refund_processing(Some(Duration::from_millis(2500)));
    let refund_id = format!("{order_id}-r1");
    let (code, v) = refund(&server, order_id, &refund_id, "20.00").await;
    assert_eq!(code, 202, "{v}");
    eventually("the first answer", || {
        !refund_calls(&env, &refund_id).is_empty()
    })
    .await;
    assert_eq!(
        wx.order(order_id).expect("order").refunds[0].status,
        "PROCESSING"
    );
    // The PROCESSING answer applied nothing: the row waits, saying why.
    let key = format!("{order_id}/refund/{refund_id}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, done, last_error) = outbox_row(&env, &key).await;
        assert!(!done, "done before WeChat Pay finished the refund");
        if last_error
            .as_deref()
            .is_some_and(|e| e.contains("did not confirm"))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{last_error:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.view(order_id).await["refunded"], "0.00");
    let v = server
        .wait_for(order_id, "refunded", |v| status(v) == "refunded")
        .await;
    assert_eq!(v["refunded"], "20.00");
    assert_eq!(wx.refunds_effected(&refund_id), 1);
    if by_notification {
        assert!(
            wx.deliveries(order_id)
                .iter()
                .any(|d| d.event_type == "REFUND.SUCCESS" && d.acknowledged()),
            "{:?}",
            wx.deliveries(order_id)
        );
    } else {
        assert!(
            wx.deliveries(order_id)
                .iter()
                .all(|d| d.event_type != "REFUND.SUCCESS"),
            "no refund notification was delivered"
        );
        assert!(refund_calls(&env, &refund_id).len() >= 2);
    }
    server.wait_for(order_id, "the row done", |_| true).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !outbox_row(&env, &key).await.1 {
        assert!(std::time::Instant::now() < deadline, "the row never done");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processing_refund_is_confirmed_by_its_notification() {
    refund_processing("wx-proc-1", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processing_refund_is_confirmed_by_a_later_attempt() {
    refund_processing("wx-proc-2", false).await;
}

/// Two payments created alike in the same second share the obligation's `lr…` number; WeChat
/// Pay wants refund numbers unique per merchant, so each late refund goes out prefixed with
/// its order id, and both are paid (spec §2.6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_payments_paid_late_are_both_refunded() {
    let env = Env::with_wechat().await;
    let server = env.wechat_server(Options::default()).await;
    let wx = env.wechat.as_ref().expect("the WeChat Pay simulator");
    // Made alike, back to back: almost always within one second; retried until they are.
    let mut twins = None;
    for attempt in 0..5 {
        let (a, b) = (format!("wx-twin-a{attempt}"), format!("wx-twin-b{attempt}"));
        created(&env, &server, &a, "12.00").await;
        created(&env, &server, &b, "12.00").await;
        cancel(&server, &a).await;
        cancel(&server, &b).await;
        for id in [&a, &b] {
            server
                .wait_for(id, "close done", |v| v["pending_effects"] == json!([]))
                .await;
        }
        wx.set_down(true);
        wx.pay_late(&a).await.expect("late payment");
        wx.pay_late(&b).await.expect("late payment");
        let ra = owed_refund_id(
            &server
                .wait_for(&a, "owed", |v| owed_refund_id(v).is_some())
                .await,
        );
        let rb = owed_refund_id(
            &server
                .wait_for(&b, "owed", |v| owed_refund_id(v).is_some())
                .await,
        );
        wx.set_down(false);
        if ra == rb {
            twins = Some((a, b, ra.expect("an id")));
            break;
        }
        for id in [&a, &b] {
            server
                .wait_for(id, "refunded", |v| status(v) == "refunded")
                .await;
        }
    }
    let (a, b, lr) = twins.expect("two payments created in one second within five tries");
    for id in [&a, &b] {
        let v = server
            .wait_for(id, "refunded", |v| status(v) == "refunded")
            .await;
        assert_eq!(v["refunded"], "12.00");
        let number = format!("{id}_{lr}");
        assert_eq!(wx.refunds_effected(&number), 1, "{number}");
    }
}
