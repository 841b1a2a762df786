//! `paystate-server reconcile` on Alipay bills generated here in GBK, as Alipay's download
//! serves them: a `#` header block, full-width `（元）` headers, tab-padded values, a refund line,
//! a `#` footer; against payments made through the server and the simulator.

mod common;

use common::*;
use serde_json::{Value, json};

const HEADER: &str = "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注";

fn line(trade_no: &str, order: &str, kind: &str, amount: &str, refund_no: &str) -> String {
    format!(
        "{trade_no}\t,{order}\t,{kind}\t,Green tea\t,2026-11-29 10:00:00\t,2026-11-29 10:00:05\t,\t,\t,\t,\t,buyer@example.com\t,{amount}\t,{amount}\t,0.00\t,0.00\t,0.00\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,{refund_no}\t,0.00\t,0.00\t,\t"
    )
}

/// A bill stating a period that holds every payment of the test (the years 2000 to 2100).
fn gbk_bill(lines: &[String]) -> Vec<u8> {
    gbk_bill_for("2000年01月01日 00:00:00", "2100年01月01日 00:00:00", lines)
}

fn gbk_bill_for(since: &str, until: &str, lines: &[String]) -> Vec<u8> {
    let mut text = String::new();
    text.push_str("#支付宝业务明细查询\r\n#账号：[20880000000000010156]\r\n");
    text.push_str(&format!("#起始日期：[{since}]   终止日期：[{until}]\r\n"));
    text.push_str("#-----------------------------------------业务明细列表----------------------------------------\r\n");
    text.push_str(HEADER);
    text.push_str("\r\n");
    for l in lines {
        text.push_str(l);
        text.push_str("\r\n");
    }
    text.push_str("#-----------------------------------------业务明细列表结束------------------------------------\r\n");
    text.push_str("#交易合计：3笔，商家实收：￥55.00元，商家实收退款：￥10.00元\r\n");
    text.push_str("#导出时间：[2026年11月30日 09:00:00]\r\n");
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable, "the bill is GBK-encodable");
    bytes.into_owned()
}

fn run_reconcile(
    server: &Server,
    bill: &[u8],
    dir: &std::path::Path,
    name: &str,
) -> (i32, Vec<Value>, String) {
    let path = dir.join(name);
    std::fs::write(&path, bill).expect("write the bill");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paystate-server"))
        .arg("reconcile")
        .arg("--config")
        .arg(&server.config)
        .arg("--provider")
        .arg("alipay")
        .arg("--bill")
        .arg(&path)
        .output()
        .expect("run reconcile");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (
        out.status.code().unwrap_or(-1),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gbk_alipay_bill_against_the_stored_payments() {
    let env = Env::new().await;
    let server = env.server(Options::default()).await;
    for (order, amount) in [("r-1", "20.00"), ("r-2", "30.00"), ("r-3", "40.00")] {
        let (code, created) = server.create(order, amount, &[]).await;
        assert_eq!(code, 201, "{created}");
        env.sim
            .open(created["pay_url"].as_str().expect("pay_url"))
            .await
            .expect("open");
        env.sim.pay(order).await.expect("pay");
        server
            .wait_for(order, "succeeded", |v| status(v) == "succeeded")
            .await;
    }
    let (code, v) = server
        .call(
            "POST",
            "/v1/payments/r-2/refunds",
            Some(&json!({"refund_id": "rf-r2", "amount": "10.00"})),
            None,
        )
        .await;
    assert_eq!(code, 202, "{v}");
    server
        .wait_for("r-2", "refund applied", |v| v["refunded"] == "10.00")
        .await;
    // Created and never paid: not in the ledger a bill is compared with.
    let (code, _) = server.create("r-4", "1.00", &[]).await;
    assert_eq!(code, 201);
    let trade = |o: &str| env.sim.trade(o).expect("trade").trade_no;

    // r-3 is missing from the bill; x-9 is in the bill and not here.
    let bill = gbk_bill(&[
        line(&trade("r-1"), "r-1", "交易", "20.00", ""),
        line(&trade("r-2"), "r-2", "交易", "30.00", ""),
        line(&trade("r-2"), "r-2", "退款", "-10.00", "rf-r2"),
        line("2026112922001400000000009999", "x-9", "交易", "5.00", ""),
    ]);
    let (code, lines, stderr) = run_reconcile(&server, &bill, env.dir.path(), "bill-1.csv");
    assert_eq!(code, 1, "{lines:?} {stderr}");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["discrepancy"], "missing_at_provider");
    assert_eq!(lines[0]["order_id"], "r-3");
    assert_eq!(lines[0]["local"]["paid"], "40.00");
    assert_eq!(lines[1]["discrepancy"], "missing_locally");
    assert_eq!(lines[1]["order_id"], "x-9");
    assert_eq!(lines[1]["provider"]["paid"], "5.00");
    assert_eq!(lines[2]["summary"]["discrepancies"], 2);
    assert_eq!(lines[2]["summary"]["local_orders"], 3);
    assert_eq!(lines[2]["summary"]["bill_orders"], 3);

    // An amount that differs, and a refund the ledger does not have.
    let bill = gbk_bill(&[
        line(&trade("r-1"), "r-1", "交易", "21.00", ""),
        line(&trade("r-2"), "r-2", "交易", "30.00", ""),
        line(&trade("r-2"), "r-2", "退款", "-10.00", "rf-r2"),
        line(&trade("r-3"), "r-3", "交易", "40.00", ""),
        line(&trade("r-3"), "r-3", "退款", "-40.00", "rf-r3"),
    ]);
    let (code, lines, _) = run_reconcile(&server, &bill, env.dir.path(), "bill-2.csv");
    assert_eq!(code, 1);
    let kinds: Vec<(&str, &str)> = lines
        .iter()
        .filter_map(|l| Some((l["discrepancy"].as_str()?, l["order_id"].as_str()?)))
        .collect();
    assert_eq!(
        kinds,
        [
            ("amount_mismatch", "r-1"),
            ("amount_mismatch", "r-3"),
            ("status_mismatch", "r-3")
        ],
        "{lines:?}"
    );

    // The bill that agrees: exit 0, only the summary.
    let bill = gbk_bill(&[
        line(&trade("r-1"), "r-1", "交易", "20.00", ""),
        line(&trade("r-2"), "r-2", "交易", "30.00", ""),
        line(&trade("r-2"), "r-2", "退款", "-10.00", "rf-r2"),
        line(&trade("r-3"), "r-3", "交易", "40.00", ""),
    ]);
    let (code, lines, _) = run_reconcile(&server, &bill, env.dir.path(), "bill-3.csv");
    assert_eq!((code, lines.len()), (0, 1), "{lines:?}");

    // A malformed line: exit 2, naming its line (the header block is 4 lines, the header the
    // 5th, this the 7th).
    let bill = gbk_bill(&[
        line(&trade("r-1"), "r-1", "交易", "20.00", ""),
        line(&trade("r-2"), "r-2", "交易", "3O.00", ""),
    ]);
    let (code, lines, stderr) = run_reconcile(&server, &bill, env.dir.path(), "bill-4.csv");
    assert_eq!(code, 2, "{lines:?}");
    assert!(lines.is_empty());
    assert!(stderr.contains("line 7"), "{stderr}");
    // A day's bill from long ago, with no trades: today's payments are outside its period and
    // not in it, so they are not reported missing.
    let bill = gbk_bill_for("2026年01月01日 00:00:00", "2026年01月02日 00:00:00", &[]);
    let (code, lines, stderr) = run_reconcile(&server, &bill, env.dir.path(), "bill-5.csv");
    assert_eq!((code, lines.len()), (0, 1), "{lines:?} {stderr}");
    assert_eq!(lines[0]["summary"]["local_orders"], 0);
    assert_eq!(lines[0]["summary"]["period"]["since"], 1_767_196_800u64); // 2026-01-01 00:00 +08:00
    // The same day, listing r-1: r-1 is compared (its amount differs) though created later.
    let bill = gbk_bill_for(
        "2026年01月01日 00:00:00",
        "2026年01月02日 00:00:00",
        &[line(&trade("r-1"), "r-1", "交易", "19.00", "")],
    );
    let (code, lines, _) = run_reconcile(&server, &bill, env.dir.path(), "bill-6.csv");
    assert_eq!(code, 1);
    assert_eq!(
        (
            lines[0]["discrepancy"].as_str(),
            lines[0]["order_id"].as_str()
        ),
        (Some("amount_mismatch"), Some("r-1"))
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
    // A bill that is not there.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paystate-server"))
        .args([
            "reconcile",
            "--provider",
            "alipay",
            "--bill",
            "/nonexistent/bill.csv",
            "--config",
        ])
        .arg(&server.config)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}
