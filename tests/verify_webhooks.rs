//! `examples/verify` for `hmac`, `stripe` and `wechatpay`: one JSON object, exit 0 valid, 1 for a
//! failed signature or window, 2 for bad usage or unreadable input.
#![cfg(all(feature = "rsa", feature = "wechatpay", feature = "alipay-aes"))]

#[path = "../examples/verify/main.rs"]
#[allow(dead_code)]
mod verify;

use paystate::Timestamp;
use paystate::webhook::hmac::HmacKey;
use paystate::webhook::{encode_hex, hmac, stripe};
use serde_json::Value;

/// Runs `verify ARGS < input` in process; returns the exit status and the printed object.
fn run(args: &[&str], input: &[u8]) -> (u8, Value) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let verdict = verify::run(&args, &mut &input[..]);
    let printed = Value::Object(verdict.json).to_string();
    assert!(!printed.contains('\n'), "one line: {printed}");
    assert!(printed.starts_with(r#"{"valid":"#), "{printed}");
    (verdict.exit, serde_json::from_str(&printed).unwrap())
}

fn hex(sig: [u8; 32]) -> String {
    let mut buf = [0u8; 64];
    encode_hex(&sig, &mut buf).unwrap().to_owned()
}

#[test]
fn hmac_verdicts_and_exit_codes() {
    let key = HmacKey::new(b"s3cret").unwrap();
    let body = br#"{"order":"o1"}"#;
    let sig = hex(hmac::sign(&key, Timestamp::from_secs(1_000), body));
    let args = |sig: &str, now: &str| -> Vec<String> {
        [
            "hmac",
            "--secret",
            "s3cret",
            "--timestamp",
            "1000",
            "--signature",
            sig,
            "--now",
            now,
        ]
        .map(String::from)
        .to_vec()
    };
    let call =
        |a: Vec<String>, body: &[u8]| run(&a.iter().map(String::as_str).collect::<Vec<_>>(), body);

    let (code, out) = call(args(&sig, "1300"), body);
    assert_eq!((code, &out["valid"]), (0, &Value::Bool(true)), "{out}");
    let (code, out) = call(args(&sig, "1301"), body);
    assert_eq!((code, out["reason"].as_str()), (1, Some("stale")));
    let (code, out) = call(args(&sig, "699"), body);
    assert_eq!((code, out["reason"].as_str()), (1, Some("from_future")));
    let (code, out) = call(args(&sig, "1000"), b"{}");
    assert_eq!(
        (code, out["reason"].as_str()),
        (1, Some("signature_mismatch"))
    );
    assert_eq!(
        out["expected_signature"],
        hex(hmac::sign(&key, Timestamp::from_secs(1_000), b"{}"))
    );
    let (code, out) = call(args(&sig[..60], "1000"), body);
    assert_eq!(
        (code, out["reason"].as_str()),
        (1, Some("malformed_signature"))
    );
    let (code, out) = call(args(&sig, "soon"), body);
    assert_eq!((code, out["reason"].as_str()), (2, Some("bad_usage")));
    let mut a = args(&sig, "1000");
    a.extend(["--tolerance".into(), "-5".into()]);
    assert_eq!(call(a, body).0, 2);
    let (code, _) = run(&["hmac", "--secret", "s3cret", "--now", "1000"], body);
    assert_eq!(code, 2);
}

#[test]
fn stripe_verdicts_and_exit_codes() {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("data/hmac_sha256/stripe_scheme_selfgen.json")).unwrap();
    let body = v["raw_body"].as_str().unwrap().as_bytes();
    let rotation = v["header_rotation"].as_str().unwrap();
    let call = |header: &str, now: &str, extra: &[&str], body: &[u8]| {
        let mut a = vec![
            "stripe",
            "--secret",
            "whsec_test_secret",
            "--header",
            header,
            "--now",
            now,
        ];
        a.extend(extra);
        run(&a, body)
    };
    let (code, out) = call(rotation, "1614264600", &[], body);
    assert_eq!(
        (code, out["matched_v1"].as_u64(), out["v1_count"].as_u64()),
        (0, Some(1), Some(2)),
        "{out}"
    );
    let (code, out) = call(rotation, "1614264901", &[], body);
    assert_eq!((code, out["reason"].as_str()), (1, Some("stale")));
    assert_eq!(
        call(rotation, "1614264901", &["--tolerance", "301"], body).0,
        0
    );
    let (code, out) = call(rotation, "1614264299", &[], body);
    assert_eq!((code, out["reason"].as_str()), (1, Some("from_future")));
    let (code, out) = call(rotation, "1614264600", &[], &[body, b"\n"].concat());
    assert_eq!(
        (code, out["reason"].as_str()),
        (1, Some("signature_mismatch"))
    );
    assert!(out["detail"].as_str().unwrap().contains("line break"));
    let expected = hex(stripe::sign(
        &HmacKey::new(b"whsec_test_secret").unwrap(),
        Timestamp::from_secs(1_614_264_600),
        &[body, b"\n"].concat(),
    ));
    assert_eq!(out["expected_v1"], expected);
    let (code, out) = call("t=1614264600,t=1614264600,v1=00", "1614264600", &[], body);
    assert_eq!(
        (code, out["reason"].as_str()),
        (1, Some("repeated_timestamp"))
    );
    let (code, out) = call("", "1614264600", &[], body);
    assert_eq!((code, out["reason"].as_str()), (1, Some("missing_header")));
    let (code, _) = run(&["stripe", "--header", rotation, "--now", "1"], body);
    assert_eq!(code, 2);
    let (code, _) = call(rotation, "1614264600", &["--bogus", "1"], body);
    assert_eq!(code, 2);
}

#[test]
fn wechatpay_verdicts_and_exit_codes() {
    let h: serde_json::Value =
        serde_json::from_str(include_str!("data/wechatpay_v3_notify/headers.json")).unwrap();
    let body = include_bytes!("data/wechatpay_v3_notify/body.json");
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");
    let cert = format!("{data}wechatpay_v3_notify/platform_cert.pem");
    let sig = h["Wechatpay-Signature"].as_str().unwrap();
    let nonce = h["Wechatpay-Nonce"].as_str().unwrap();
    let call = |key: &str, ts: &str, sig: &str, now: &str, body: &[u8]| {
        run(
            &[
                "wechatpay",
                "--public-key",
                key,
                "--timestamp",
                ts,
                "--nonce",
                nonce,
                "--signature",
                sig,
                "--now",
                now,
            ],
            body,
        )
    };
    let (code, out) = call(&cert, "1624523846", sig, "1624523846", body);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["serial"], "D7CE59D1F522D701");
    let signed = include_str!("data/wechatpay_v3_notify/signed_message.bin");
    assert_eq!(out["signed_content"], signed);
    let (code, out) = call(&cert, "1624523846", sig, "1624524147", body);
    assert_eq!((code, out["reason"].as_str()), (1, Some("stale")));
    assert_eq!(out["detail"], "timestamp is 301 s old (tolerance 300 s)");
    let (code, out) = call(&cert, "1624523846", sig, "1624523545", body);
    assert_eq!((code, out["reason"].as_str()), (1, Some("from_future")));
    let (code, out) = call(&cert, "1624523846", sig, "1624523846", &body[1..]);
    assert_eq!(
        (code, out["reason"].as_str()),
        (1, Some("signature_mismatch"))
    );
    let probe = format!("WECHATPAY/SIGNTEST/{sig}");
    let (code, out) = call(&cert, "1624523846", &probe, "1624523846", body);
    assert_eq!((code, out["reason"].as_str()), (1, Some("signtest")));
    let (code, out) = call(&cert, "1624523846x", sig, "1624523846", body);
    assert_eq!(
        (code, out["reason"].as_str()),
        (1, Some("invalid_timestamp"))
    );

    // A bare public key (PEM or DER) and the fresh certificate in DER; the wrong key fails.
    let fresh: serde_json::Value =
        serde_json::from_str(include_str!("data/wechatpay_fresh/notification.json")).unwrap();
    let fh = &fresh["headers"];
    let fbody = fresh["body"].as_str().unwrap().as_bytes();
    let fts = fh["Wechatpay-Timestamp"].as_str().unwrap();
    let fsig = fh["Wechatpay-Signature"].as_str().unwrap();
    let fnonce = fh["Wechatpay-Nonce"].as_str().unwrap();
    for key in [
        "wechatpay_fresh/platform_public_key.pem",
        "wechatpay_fresh/platform_cert.der",
    ] {
        let key = format!("{data}{key}");
        let (code, out) = run(
            &[
                "wechatpay",
                "--public-key",
                &key,
                "--timestamp",
                fts,
                "--nonce",
                fnonce,
                "--signature",
                fsig,
                "--now",
                fts,
            ],
            fbody,
        );
        assert_eq!(code, 0, "{key}: {out}");
    }
    let (code, out) = run(
        &[
            "wechatpay",
            "--public-key",
            &cert,
            "--timestamp",
            fts,
            "--nonce",
            fnonce,
            "--signature",
            fsig,
            "--now",
            fts,
        ],
        fbody,
    );
    assert_eq!(
        (code, out["reason"].as_str()),
        (1, Some("signature_mismatch"))
    );

    // Unreadable or unusable keys, missing arguments.
    let (code, out) = call(
        "/nonexistent/key.pem",
        "1624523846",
        sig,
        "1624523846",
        body,
    );
    assert_eq!((code, out["reason"].as_str()), (2, Some("unreadable_key")));
    let private = format!("{data}wechatpay_fresh/platform_private_key.pem");
    let (code, out) = call(&private, "1624523846", sig, "1624523846", body);
    assert_eq!((code, out["reason"].as_str()), (2, Some("bad_key")));
    let (code, _) = run(&["wechatpay", "--public-key", &cert, "--now", "1"], body);
    assert_eq!(code, 2);
}
