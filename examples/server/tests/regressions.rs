//! Regression tests for faults a first-use review of `paystate-server` found: reconciliation
//! against a period's bill, slow request headers, timed-out requests missing from the
//! metrics, and refund amount errors. Each test states what a user expects.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// A payment made today is compared with a bill whose header says it covers an earlier day
/// (Alipay's bills are per day or per month). The payment is outside the bill's period, so it
/// is not a discrepancy (before the fix, every stored payment ever was the ledger, and a
/// daily run reported every payment of every earlier day as `missing_at_provider`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_reconcile_ignores_payments_outside_the_bills_period() {
    let env = Env::new().await;
    let server = env.server(Options::default()).await;
    let (code, created) = server.create("today-1", "20.00", &[]).await;
    assert_eq!(code, 201, "{created}");
    let pay_url = created["pay_url"].as_str().expect("pay_url").to_owned();
    env.sim.open(&pay_url).await.expect("the cashier opens");
    env.sim.pay("today-1").await.expect("the buyer pays");
    server
        .wait_for("today-1", "succeeded", |v| status(v) == "succeeded")
        .await;

    // A bill for 2026-01-01 (long before this payment), with no trades in it.
    let header = "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注";
    let text = format!(
        "#支付宝业务明细查询\r\n#账号：[20880000000000010156]\r\n\
         #起始日期：[2026年01月01日 00:00:00]   终止日期：[2026年01月02日 00:00:00]\r\n\
         #-----------------------------------------业务明细列表----------------------------------------\r\n\
         {header}\r\n\
         #-----------------------------------------业务明细列表结束------------------------------------\r\n\
         #导出时间：[2026年01月02日 09:00:00]\r\n"
    );
    let (bytes, _, _) = encoding_rs::GBK.encode(&text);
    let bill = env.dir.path().join("bill-2026-01-01.csv");
    std::fs::write(&bill, &bytes).expect("write the bill");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paystate-server"))
        .args(["reconcile", "--provider", "alipay", "--config"])
        .arg(&server.config)
        .arg("--bill")
        .arg(&bill)
        .output()
        .expect("run reconcile");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a payment made after the bill's period was reported: {stdout}"
    );
}

/// A client that opens a connection and never finishes its request headers keeps a
/// connection (and a file descriptor) for ever: there is no header read timeout, and the
/// 30 s request timeout only starts once the headers are in. Many such clients exhaust the
/// server's descriptors (slowloris).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_unfinished_request_headers_are_timed_out() {
    let env = Env::new().await;
    let server = env.server(Options::default()).await;
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .expect("send part of the headers");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    let start = Instant::now();
    let mut buf = [0u8; 256];
    let closed = s.read(&mut buf).is_ok();
    assert!(
        closed,
        "the connection was still open after {:?} with unfinished headers",
        start.elapsed()
    );
}

/// A request stopped by the 30 s timeout is answered `503`, but the timeout layer sits
/// outside the metrics middleware, so `paystate_http_requests_total` never counts it: a slow
/// client or a stuck database is invisible in the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_a_timed_out_request_is_counted_in_the_metrics() {
    let env = Env::new().await;
    let server = env.server(Options::default()).await;
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    s.write_all(b"POST /v1/payments HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        .expect("send the headers, never the body");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).expect("the server answers within 20 s");
    let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let counted = server
        .metric("paystate_http_requests_total{route=\"/v1/payments\",status=\"503\"}")
        .await;
    assert_eq!(counted, 1.0, "the 503 was not counted");
}

/// docs/server.md: a refund's bad amount is `400 invalid_amount`. A zero amount is
/// `422` with the detail `"invalid_amount"` (no explanation), while `"0.001"` is `400` with a
/// detail; and the balance refusal counts minor units and forgets refunds on their way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_refund_amount_errors_are_400_with_a_detail() {
    let env = Env::new().await;
    let server = env.server(Options::default()).await;
    let (code, created) = server.create("rf-amt", "10.00", &[]).await;
    assert_eq!(code, 201, "{created}");
    let pay_url = created["pay_url"].as_str().expect("pay_url").to_owned();
    env.sim.open(&pay_url).await.expect("the cashier opens");
    env.sim.pay("rf-amt").await.expect("the buyer pays");
    server
        .wait_for("rf-amt", "succeeded", |v| status(v) == "succeeded")
        .await;
    let path = "/v1/payments/rf-amt/refunds";
    let (code, v) = server
        .call(
            "POST",
            path,
            Some(&json!({"refund_id": "z1", "amount": "0.001"})),
            None,
        )
        .await;
    assert_eq!(
        (code, v["error"].as_str()),
        (400, Some("invalid_amount")),
        "{v}"
    );
    let (code, v) = server
        .call(
            "POST",
            path,
            Some(&json!({"refund_id": "z0", "amount": "0.00"})),
            None,
        )
        .await;
    assert_eq!(
        (code, v["error"].as_str()),
        (400, Some("invalid_amount")),
        "{v}"
    );
    assert_ne!(
        v["detail"], "invalid_amount",
        "the detail explains nothing: {v}"
    );

    // 3.00 on its way; asking for 100.00 must say 7.00 is left, in yuan.
    let (code, v) = server
        .call(
            "POST",
            path,
            Some(&json!({"refund_id": "a1", "amount": "3.00"})),
            None,
        )
        .await;
    assert_eq!(code, 202, "{v}");
    let (code, v) = server
        .call(
            "POST",
            path,
            Some(&json!({"refund_id": "a2", "amount": "100.00"})),
            None,
        )
        .await;
    assert_eq!(code, 409, "{v}");
    let detail = v["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("7.00"),
        "the balance refusal says: {detail}"
    );
}
