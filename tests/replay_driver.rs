//! The JSON-lines driver's format is a public interface: committed transcripts pin it.
#![cfg(feature = "serde")]

#[path = "../examples/replay/driver.rs"]
#[allow(dead_code)]
mod driver;

use driver::{BadInput, Driver};
use serde_json::Value;

fn run(lines: &str) -> Vec<Value> {
    let mut d = Driver::default();
    lines
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match d.line(l) {
            Ok(v) => v,
            Err(BadInput(detail)) => {
                serde_json::json!({"outcome": "error", "error": "bad_input", "detail": detail})
            }
        })
        .collect()
}

fn one(d: &mut Driver, line: &str) -> Value {
    match d.line(line) {
        Ok(v) => v,
        Err(BadInput(detail)) => {
            serde_json::json!({"outcome": "error", "error": "bad_input", "detail": detail})
        }
    }
}

#[test]
fn design_example_transcript() {
    let got = run(include_str!("data/replay/design_example.jsonl"));
    let want: Vec<Value> = include_str!("data/replay/design_example.expected.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got, want);
    // Key order is part of the format too.
    let first = serde_json::to_string(&got[0]).unwrap();
    assert_eq!(
        first,
        r#"{"payment":"o1","outcome":"created","status":"pending","version":0,"paid":"0.00","refunded":"0.00","effects":[],"pending_effects":[]}"#
    );
}

#[test]
fn the_design_doc_output_lines() {
    let mut d = Driver::default();
    one(
        &mut d,
        r#"{"op":"create","payment":"o1","amount":"99.99","currency":"CNY","now":1000,"expires_at":2800,"late_success":"refund"}"#,
    );
    let v = one(
        &mut d,
        r#"{"op":"apply","payment":"o1","now":1001,"input":{"type":"initiate","event_id":"e1"}}"#,
    );
    assert_eq!(
        v.to_string(),
        r#"{"payment":"o1","outcome":"applied","status":"processing","version":1,"paid":"0.00","refunded":"0.00","effects":[],"pending_effects":[]}"#
    );
    let v = one(
        &mut d,
        r#"{"op":"apply","payment":"o1","now":1002,"input":{"type":"succeed","event_id":"n1","amount":"99.98","currency":"CNY"}}"#,
    );
    assert_eq!(
        v.to_string(),
        r#"{"payment":"o1","outcome":"rejected","error":"amount_mismatch","status":"processing","version":1,"paid":"0.00","refunded":"0.00","effects":[],"pending_effects":[]}"#
    );
    let v = one(
        &mut d,
        r#"{"op":"apply","payment":"o1","now":1004,"input":{"type":"cancel","event_id":"c1"}}"#,
    );
    assert_eq!(
        v.to_string(),
        r#"{"payment":"o1","outcome":"applied","status":"cancelled","version":2,"paid":"0.00","refunded":"0.00","effects":[{"type":"close_trade"}],"pending_effects":[{"type":"close_trade"}]}"#
    );
    let v = one(
        &mut d,
        r#"{"op":"apply","payment":"o1","now":1005,"input":{"type":"succeed","event_id":"n2","amount":"99.99"}}"#,
    );
    assert_eq!(
        v.to_string(),
        r#"{"payment":"o1","outcome":"applied","status":"cancelled","version":3,"paid":"99.99","refunded":"0.00","effects":[{"type":"refund_required","amount":"99.99","refund_id":"lr336b0b00de9374e91e0883"}],"pending_effects":[{"type":"refund_required","amount":"99.99","refund_id":"lr336b0b00de9374e91e0883"}]}"#
    );
    let v = one(&mut d, r#"{"op":"snapshot","payment":"o1"}"#);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "payment",
            "outcome",
            "bytes",
            "size",
            "status",
            "version",
            "paid",
            "refunded",
            "effects",
            "pending_effects"
        ]
    );
    assert_eq!(
        v["bytes"].as_str().unwrap().len(),
        2 * v["size"].as_u64().unwrap() as usize
    );
    assert!(v["bytes"].as_str().unwrap().starts_with("02"));
}

#[test]
fn malformed_lines_are_bad_input_and_the_driver_goes_on() {
    let bad_lines = [
        "not json",
        "[1,2]",
        r#"{"op":"fly"}"#,
        r#"{"payment":"o1"}"#,
        r#"{"op":"create","payment":"o1","amount":99.99,"currency":"CNY","now":1}"#,
        r#"{"op":"create","payment":"o1","amount":"1","currency":"CNY","now":-1}"#,
        r#"{"op":"create","payment":"o1","amount":"1","currency":"CNY","now":1,"late_success":"maybe"}"#,
        r#"{"op":"apply","payment":"o1","now":1,"input":{"type":"initiate"}}"#,
        r#"{"op":"apply","payment":"o1","now":1,"input":{"type":"initiate","event_id":""}}"#,
        &format!(
            r#"{{"op":"apply","payment":"o1","now":1,"input":{{"type":"initiate","event_id":"{}"}}}}"#,
            "x".repeat(65)
        ),
        r#"{"op":"apply","payment":"o1","now":1,"input":{"type":"explode","event_id":"e"}}"#,
        r#"{"op":"apply","payment":"o1","now":1,"input":{"type":"refund","event_id":"e","amount":"1.00"}}"#,
        r#"{"op":"apply","payment":"o1","now":1,"input":{"type":"fail","event_id":"e"}}"#,
        r#"{"op":"tick","payment":"o1"}"#,
    ];
    let mut d = Driver::default();
    one(
        &mut d,
        r#"{"op":"create","payment":"o1","amount":"1","currency":"CNY","now":1}"#,
    );
    for line in bad_lines {
        let v = one(&mut d, line);
        assert_eq!(v["outcome"], "error", "{line}");
        assert_eq!(v["error"], "bad_input", "{line}");
    }
    // nothing was applied by any of them
    let v = one(&mut d, r#"{"op":"tick","payment":"o1","now":5}"#);
    assert_eq!(v["version"], 0);
}

#[test]
fn create_errors_and_unknown_payments() {
    let mut d = Driver::default();
    let v = one(
        &mut d,
        r#"{"op":"create","payment":"a","amount":"1.001","currency":"CNY","now":1}"#,
    );
    assert_eq!(
        (v["outcome"].as_str(), v["error"].as_str()),
        (Some("rejected"), Some("invalid_amount"))
    );
    let v = one(
        &mut d,
        r#"{"op":"create","payment":"a","amount":"0","currency":"JPY","now":1}"#,
    );
    assert_eq!(v["error"], "invalid_amount");
    let v = one(
        &mut d,
        r#"{"op":"create","payment":"a","amount":"1","currency":"XAU","now":1}"#,
    );
    assert_eq!(v["error"], "unknown_currency");
    let v = one(
        &mut d,
        r#"{"op":"create","payment":"a","amount":"100","currency":"JPY","now":1}"#,
    );
    assert_eq!(
        (v["outcome"].as_str(), v["paid"].as_str()),
        (Some("created"), Some("0"))
    );
    let v = one(
        &mut d,
        r#"{"op":"create","payment":"a","amount":"100","currency":"JPY","now":1}"#,
    );
    assert_eq!(v["error"], "payment_exists");
    for op in [
        r#"{"op":"apply","payment":"zz","now":1,"input":{"type":"initiate","event_id":"e"}}"#,
        r#"{"op":"tick","payment":"zz","now":1}"#,
        r#"{"op":"snapshot","payment":"zz"}"#,
    ] {
        let v = one(&mut d, op);
        assert_eq!(
            (v["outcome"].as_str(), v["error"].as_str()),
            (Some("rejected"), Some("unknown_payment"))
        );
    }
}

#[test]
fn malformed_amounts_fail_the_check_a_wrong_amount_fails() {
    let mut d = Driver::default();
    one(
        &mut d,
        r#"{"op":"create","payment":"o","amount":"10.00","currency":"CNY","now":1}"#,
    );
    let v = one(
        &mut d,
        r#"{"op":"apply","payment":"o","now":2,"input":{"type":"succeed","event_id":"n","amount":"10.000"}}"#,
    );
    assert_eq!(v["error"], "amount_mismatch");
    let v = one(
        &mut d,
        r#"{"op":"apply","payment":"o","now":2,"input":{"type":"succeed","event_id":"n","amount":"10.00","currency":"ZZZ"}}"#,
    );
    assert_eq!(v["error"], "currency_mismatch");
    let v = one(
        &mut d,
        r#"{"op":"apply","payment":"o","now":2,"input":{"type":"succeed","event_id":"n","amount":"10.00","currency":"USD"}}"#,
    );
    assert_eq!(v["error"], "currency_mismatch");
    let v = one(
        &mut d,
        r#"{"op":"apply","payment":"o","now":2,"input":{"type":"succeed","event_id":"n","amount":"10"}}"#,
    );
    assert_eq!(
        (v["outcome"].as_str(), v["paid"].as_str()),
        (Some("applied"), Some("10.00"))
    );
    let v = one(
        &mut d,
        r#"{"op":"apply","payment":"o","now":2,"input":{"type":"refund","event_id":"r","refund_id":"r1","amount":"-1"}}"#,
    );
    assert_eq!(v["error"], "invalid_amount");
    let v = one(
        &mut d,
        r#"{"op":"apply","payment":"o","now":2,"input":{"type":"refund","event_id":"r","refund_id":"r1","amount":"10.01"}}"#,
    );
    assert_eq!(v["error"], "refund_exceeds_balance");
    // a malformed amount under an applied event id is a conflict, not a duplicate
    let v = one(
        &mut d,
        r#"{"op":"apply","payment":"o","now":2,"input":{"type":"succeed","event_id":"n","amount":"x"}}"#,
    );
    assert_eq!(v["error"], "idempotency_conflict");
}

#[test]
fn replay_guard_ops() {
    let mut d = Driver::default();
    let hook = |d: &mut Driver, ts: u64, nonce: &str, now: u64, valid: bool| -> Value {
        one(
            d,
            &format!(
                r#"{{"op":"webhook","timestamp":{ts},"nonce":"{nonce}","now":{now},"signature_valid":{valid}}}"#
            ),
        )
    };
    // default guard: capacity 64, tolerance 300
    assert_eq!(
        one(
            &mut d,
            r#"{"op":"webhook","timestamp":1000,"nonce":"5K8264ILTKCH16CQ2502SI8ZNMTM67VS","now":1010}"#
        ),
        serde_json::json!({"outcome":"accepted"})
    );
    assert_eq!(
        hook(&mut d, 1000, "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", 1010, true)["error"],
        "replayed"
    );
    assert_eq!(hook(&mut d, 1000, "fresh", 1301, true)["error"], "stale");
    assert_eq!(
        hook(&mut d, 1000, "fresh", 1300, true)["outcome"],
        "accepted"
    );
    assert_eq!(
        hook(&mut d, 1401, "future", 1100, true)["error"],
        "from_future"
    );
    assert_eq!(
        hook(&mut d, 1100, "unsigned", 1100, false)["error"],
        "bad_signature"
    );
    assert_eq!(
        hook(&mut d, 1100, "unsigned", 1100, true)["outcome"],
        "accepted",
        "a bad signature left no trace"
    );
    // reconfigure: an empty guard of capacity 8, tolerance 60
    assert_eq!(
        one(
            &mut d,
            r#"{"op":"replay_guard","capacity":8,"tolerance":60}"#
        ),
        serde_json::json!({"outcome":"configured"})
    );
    assert_eq!(
        hook(&mut d, 1000, "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", 1010, true)["outcome"],
        "accepted"
    );
    assert_eq!(hook(&mut d, 1000, "n", 1061, true)["error"], "stale");
    // overload: a burst larger than the capacity, then replays of all of it: none accepted
    for i in 0..20 {
        hook(&mut d, 2000 + i, &format!("burst{i}"), 2010, true);
    }
    for i in 0..20 {
        assert_eq!(
            hook(&mut d, 2000 + i, &format!("burst{i}"), 2020, true)["outcome"],
            "rejected",
            "replay {i}"
        );
    }
    for cap in [8, 64, 1024] {
        assert_eq!(
            one(
                &mut d,
                &format!(r#"{{"op":"replay_guard","capacity":{cap}}}"#)
            )["outcome"],
            "configured"
        );
    }
    assert_eq!(
        one(&mut d, r#"{"op":"replay_guard","capacity":0}"#)["error"],
        "bad_input"
    );
    assert_eq!(
        one(
            &mut d,
            r#"{"op":"webhook","timestamp":1,"nonce":"","now":1}"#
        )["error"],
        "bad_input"
    );
    assert_eq!(
        one(
            &mut d,
            r#"{"op":"webhook","timestamp":1,"nonce":"a","now":1,"signature_valid":"yes"}"#
        )["error"],
        "bad_input"
    );
}
