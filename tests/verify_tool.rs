//! `examples/verify`: the verdict, the signed content and the exit status of docs/spec.md §8 for
//! `alipay` and `alipay-response`, on real vectors, keys in every format, and bad input.
#![cfg(all(feature = "rsa", feature = "x509", feature = "alipay-aes"))]

#[path = "../examples/verify/main.rs"]
#[allow(dead_code)]
mod verify;

use paystate::alipay::form::encode_pairs;
use paystate::signature::Rsa2PrivateKey;
use serde_json::Value;

fn path(rel: &str) -> String {
    format!("{}/tests/data/{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn data(rel: &str) -> Vec<u8> {
    std::fs::read(path(rel)).unwrap()
}

/// Runs `verify ARGS < input`; returns the printed object and the exit status.
fn run(args: &[&str], input: &[u8]) -> (Value, u8) {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.strip_prefix('@').map_or_else(|| (*a).to_owned(), path))
        .collect();
    let verdict = verify::run(&args, &mut &input[..]);
    let printed = Value::Object(verdict.json).to_string();
    assert!(!printed.contains('\n'), "one line");
    let json: Value = serde_json::from_str(&printed).unwrap();
    assert!(printed.starts_with(r#"{"valid":"#), "{printed}");
    (json, verdict.exit)
}

const V1_KEY: &str = "@alipay/alipay-public-key-trade-notify-v1.pem";
const V2_KEY: &str = "@alipay/alipay-notify-sign-public-key-v2.pem";

#[test]
fn real_trade_notification() {
    let body = data("alipay/trade_notify_v1.form_body.txt");
    let (json, exit) = run(&["alipay", "--public-key", V1_KEY], &body);
    assert_eq!(exit, 0);
    assert_eq!(json["valid"], true);
    assert_eq!(json["scheme"], "alipay");
    assert_eq!(json["rule"], "v1");
    let content = String::from_utf8(data("alipay/trade_notify_v1.sign_content.txt")).unwrap();
    assert_eq!(json["signed_content"], content.as_str());
    // A trailing line break (echo, an editor) is not part of the body.
    let mut with_newline = body.clone();
    with_newline.extend_from_slice(b"\r\n");
    assert_eq!(
        run(
            &["alipay", "--public-key", V1_KEY, "--rule", "v1"],
            &with_newline
        )
        .1,
        0
    );

    // The wrong rule: invalid, and the detail names the right one.
    let (json, exit) = run(&["alipay", "--public-key", V1_KEY, "--rule=v2"], &body);
    assert_eq!(
        (exit, &json["valid"], &json["reason"]),
        (1, &Value::Bool(false), &Value::from("signature_mismatch"))
    );
    assert!(
        json["detail"]
            .as_str()
            .unwrap()
            .contains("valid under rule v1")
    );
    assert!(
        json["signed_content"]
            .as_str()
            .unwrap()
            .contains("&sign_type=RSA2&")
    );
    // The wrong key.
    let (json, exit) = run(&["alipay", "--public-key", V2_KEY], &body);
    assert_eq!(
        (exit, json["reason"].as_str()),
        (1, Some("signature_mismatch"))
    );
    // One changed byte.
    let tampered = String::from_utf8(body.clone())
        .unwrap()
        .replace("total_amount=0.10", "total_amount=0.11");
    assert_eq!(
        run(&["alipay", "--public-key", V1_KEY], tampered.as_bytes()).1,
        1
    );
    // '+' of the signature sent raw: it became a space.
    let plus = String::from_utf8(body).unwrap().replace("%2B", "+");
    let (json, exit) = run(&["alipay", "--public-key", V1_KEY], plus.as_bytes());
    assert_eq!(
        (exit, json["reason"].as_str()),
        (1, Some("sign_not_base64"))
    );
    assert!(
        json["detail"]
            .as_str()
            .unwrap()
            .contains("'+' was turned into a space")
    );
}

#[test]
fn real_gateway_notification_under_v2() {
    let params: serde_json::Map<String, Value> =
        serde_json::from_slice(&data("alipay/servicemarket_notify_v2.params.json")).unwrap();
    let mut body = String::new();
    encode_pairs(
        params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap())),
        &mut body,
    )
    .unwrap();
    let (json, exit) = run(
        &["alipay", "--public-key", V2_KEY, "--rule", "v2"],
        body.as_bytes(),
    );
    assert_eq!(
        (exit, &json["valid"], &json["rule"]),
        (0, &Value::Bool(true), &Value::from("v2"))
    );
    let (json, exit) = run(&["alipay", "--public-key", V2_KEY], body.as_bytes());
    assert_eq!(exit, 1);
    assert!(json["detail"].as_str().unwrap().contains("--rule v2"));
}

#[test]
fn keys_in_every_format() {
    let private = Rsa2PrivateKey::parse(&data("keys/app2048.pkcs8.pem")).unwrap();
    let params = [
        ("app_id", "2021000000000001"),
        ("notify_id", "n-1"),
        ("sign_type", "RSA2"),
        ("subject", "a+b & c=d 语"),
        ("trade_status", "TRADE_SUCCESS"),
    ];
    let content =
        "app_id=2021000000000001&notify_id=n-1&subject=a+b & c=d 语&trade_status=TRADE_SUCCESS";
    let sign = private.sign_base64(content.as_bytes()).unwrap();
    let mut body = String::new();
    encode_pairs(
        params.into_iter().chain([("sign", sign.as_str())]),
        &mut body,
    )
    .unwrap();
    for key in [
        "@keys/app2048.spki.pem",
        "@keys/app2048.pkcs1-public.pem",
        "@keys/app2048.spki.der",
        "@keys/app2048.pkcs1-public.der",
        "@keys/app2048.spki.b64",
    ] {
        let (json, exit) = run(&["alipay", "--public-key", key], body.as_bytes());
        assert_eq!(
            (exit, json["signed_content"].as_str()),
            (0, Some(content)),
            "{key}"
        );
    }
}

#[test]
fn bad_keys_and_usage_exit_2() {
    let body = data("alipay/trade_notify_v1.form_body.txt");
    for (args, reason) in [
        (vec!["alipay"], "bad_usage"),
        (vec![], "bad_usage"),
        (vec!["paypal", "--public-key", V1_KEY], "bad_usage"),
        (
            vec!["alipay", "--public-key", V1_KEY, "--rule", "v3"],
            "bad_usage",
        ),
        (
            vec!["alipay", "--public-key", V1_KEY, "--method", "x"],
            "bad_usage",
        ),
        (
            vec!["alipay", "--public-key", V1_KEY, "--public-key", V1_KEY],
            "bad_usage",
        ),
        (vec!["alipay", "--public-key"], "bad_usage"),
        (vec!["alipay-response", "--public-key", V1_KEY], "bad_usage"),
        (
            vec!["alipay", "--public-key", "@keys/missing.pem"],
            "unreadable_key",
        ),
        (
            vec!["alipay", "--public-key", "@keys/weak1024.spki.pem"],
            "bad_key",
        ),
        (
            vec!["alipay", "--public-key", "@keys/huge8192.spki.pem"],
            "bad_key",
        ),
        (
            vec!["alipay", "--public-key", "@keys/ec-p256.spki.pem"],
            "bad_key",
        ),
        (
            vec!["alipay", "--public-key", "@keys/app2048.pkcs8.pem"],
            "bad_key",
        ),
        (vec!["alipay", "--public-key", "@keys/README.md"], "bad_key"),
    ] {
        let (json, exit) = run(&args, &body);
        assert_eq!(
            (exit, json["valid"].as_bool(), json["reason"].as_str()),
            (2, Some(false), Some(reason)),
            "{args:?}"
        );
    }
}

#[test]
fn malformed_bodies_exit_2() {
    let mut huge = b"subject=".to_vec();
    huge.resize(1 << 20, b'x');
    for (body, reason) in [
        (&b""[..], "empty_body"),
        (b"\n", "empty_body"),
        (b"a=%zz&sign=AAAA", "malformed_escape"),
        (b"a=1&a=1&sign=AAAA", "duplicate_key"),
        (b"a=1&&sign=AAAA", "empty_pair"),
        (
            b"charset=Big5&subject=%D3%EF&sign=AAAA",
            "unsupported_charset",
        ),
        (b"a=%FF&sign=AAAA", "invalid_utf8"),
        (b"{\"json\":true}", "missing_equals"),
    ] {
        let (json, exit) = run(&["alipay", "--public-key", V1_KEY], body);
        assert_eq!(
            (exit, json["reason"].as_str()),
            (2, Some(reason)),
            "{body:?}"
        );
        assert_eq!(json["signed_content"], Value::Null);
    }
    // Well-formed but unsigned, or signed with garbage: the signature fails (exit 1).
    for (body, reason) in [
        (&huge[..], "missing_sign"),
        (b"a=1&sign=", "missing_sign"),
        (b"a=1&sign=AAAA", "sign_wrong_length"),
        (b"a=1&sign=%25%25", "sign_not_base64"),
    ] {
        let (json, exit) = run(&["alipay", "--public-key", V1_KEY], body);
        assert_eq!(
            (exit, json["reason"].as_str()),
            (1, Some(reason)),
            "{:?}",
            &body[..body.len().min(20)]
        );
    }
}

const UPLOAD_KEY: &str = "@alipay/alipay-public-key.pem";

#[test]
fn real_sync_response() {
    let raw = data("alipay/sync_response_file_upload.raw.json");
    let args = [
        "alipay-response",
        "--public-key",
        UPLOAD_KEY,
        "--method",
        "alipay.open.file.upload",
    ];
    let (json, exit) = run(&args, &raw);
    assert_eq!(exit, 0);
    assert_eq!(json["valid"], true);
    assert_eq!(json["response_key"], "alipay_open_file_upload_response");
    let content =
        String::from_utf8(data("alipay/sync_response_file_upload.sign_content.txt")).unwrap();
    assert_eq!(json["signed_content"], content.as_str());

    let text = String::from_utf8(raw).unwrap();
    let tampered = text.replace("Success", "success");
    let (json, exit) = run(&args, tampered.as_bytes());
    assert_eq!(
        (exit, json["reason"].as_str()),
        (1, Some("signature_mismatch"))
    );
    assert_eq!(
        json["signed_content"],
        content.replace("Success", "success").as_str()
    );
    assert_eq!(
        run(
            &[
                "alipay-response",
                "--public-key",
                V1_KEY,
                "--method",
                "alipay.open.file.upload"
            ],
            text.as_bytes()
        )
        .1,
        1
    );

    // Another method, broken JSON, not UTF-8: unreadable.
    for (input, method, reason) in [
        (text.as_bytes(), "alipay.trade.query", "missing_response"),
        (
            &text.as_bytes()[..40],
            "alipay.open.file.upload",
            "malformed_json",
        ),
        (
            &b"\xff{}"[..],
            "alipay.open.file.upload",
            "unreadable_input",
        ),
        (b"", "alipay.open.file.upload", "malformed_json"),
    ] {
        let (json, exit) = run(
            &[
                "alipay-response",
                "--public-key",
                UPLOAD_KEY,
                "--method",
                method,
            ],
            input,
        );
        assert_eq!(
            (exit, json["reason"].as_str()),
            (2, Some(reason)),
            "{method}"
        );
    }
}

#[test]
fn unsigned_error_response_is_not_valid() {
    let raw = r#"{"error_response":{"msg":"Invalid Arguments","code":"40002","sub_msg":"授权码code无效","sub_code":"isv.code-invalid"},"alipay_cert_sn":"a5b59edf65dcda9ca26e071ab6f5a0a7","sign":""}"#;
    let (json, exit) = run(
        &[
            "alipay-response",
            "--public-key",
            UPLOAD_KEY,
            "--method",
            "alipay.trade.query",
        ],
        raw.as_bytes(),
    );
    assert_eq!((exit, json["reason"].as_str()), (1, Some("unsigned")));
    assert_eq!(json["response_key"], "error_response");
    assert!(
        json["signed_content"]
            .as_str()
            .unwrap()
            .starts_with(r#"{"msg":"Invalid Arguments""#)
    );

    // A signed error_response is genuine (and still an error).
    let private = Rsa2PrivateKey::parse(&data("keys/app2048.pkcs8.pem")).unwrap();
    let content = r#"{"code":"40002","msg":"Invalid Arguments"}"#;
    let sign = private.sign_base64(content.as_bytes()).unwrap();
    let raw = format!(r#"{{"error_response":{content},"sign":"{sign}"}}"#);
    let (json, exit) = run(
        &[
            "alipay-response",
            "--public-key",
            "@keys/app2048.spki.der",
            "--method",
            "alipay.trade.query",
        ],
        raw.as_bytes(),
    );
    assert_eq!(
        (exit, json["response_key"].as_str()),
        (0, Some("error_response"))
    );
}

/// A body signed (rule V1) by the test key over its non-blank pairs; values may be bytes.
fn self_signed_body(params: &[(&str, &[u8])]) -> Vec<u8> {
    let private = Rsa2PrivateKey::parse(&data("keys/app2048.pkcs8.pem")).unwrap();
    let mut kept: Vec<_> = params
        .iter()
        .filter(|(k, v)| *k != "sign_type" && !v.iter().all(|b| b.is_ascii_whitespace()))
        .collect();
    kept.sort_by(|a, b| a.0.cmp(b.0));
    let mut content = Vec::new();
    for (i, (k, v)) in kept.iter().enumerate() {
        if i > 0 {
            content.push(b'&');
        }
        content.extend_from_slice(k.as_bytes());
        content.push(b'=');
        content.extend_from_slice(v);
    }
    let sign = private.sign_base64(&content).unwrap();
    let mut body = String::new();
    encode_pairs(
        params.iter().copied().chain([("sign", sign.as_bytes())]),
        &mut body,
    )
    .unwrap();
    body.into_bytes()
}

#[test]
fn gbk_and_blank_notifications_verify() {
    // 测试 in GBK is B2 E2 CA D4.
    let gbk = self_signed_body(&[
        ("charset", b"GBK"),
        ("notify_id", b"n-1"),
        ("subject", &[0xB2, 0xE2, 0xCA, 0xD4]),
        ("body", b" "),
        ("sign_type", b"RSA2"),
    ]);
    let (json, exit) = run(&["alipay", "--public-key", "@keys/app2048.spki.pem"], &gbk);
    assert_eq!((exit, json["valid"].as_bool()), (0, Some(true)), "{json}");
    assert_eq!(json["charset"], "GBK");
    assert_eq!(
        json["signed_content"],
        r"charset=GBK&notify_id=n-1&subject=\xB2\xE2\xCA\xD4"
    );
    let tampered = String::from_utf8(gbk).unwrap().replace("%D4", "%D5");
    let (json, exit) = run(
        &["alipay", "--public-key", "@keys/app2048.spki.pem"],
        tampered.as_bytes(),
    );
    assert_eq!(
        (exit, json["reason"].as_str()),
        (1, Some("signature_mismatch"))
    );
}

const AES_KEY: &str = "aGVsbG8gd29ybGQgMTIzNA==";

fn encrypted_response(plain: &str, sn: Option<&str>) -> String {
    let key = paystate::alipay::encryption::AesKey::from_base64(AES_KEY).unwrap();
    let mut out = vec![0u8; plain.len() * 3 + 64];
    let token = key.encrypt_base64(plain.as_bytes(), &mut out).unwrap();
    let private = Rsa2PrivateKey::parse(&data("keys/app2048.pkcs8.pem")).unwrap();
    let sign = private
        .sign_base64(format!("\"{token}\"").as_bytes())
        .unwrap();
    let sn = sn.map_or(String::new(), |sn| format!(r#","alipay_cert_sn":"{sn}""#));
    format!(r#"{{"alipay_trade_query_response":"{token}","sign":"{sign}"{sn}}}"#)
}

#[test]
fn encrypted_responses() {
    let plain = r#"{"code":"10000","msg":"Success","trade_status":"TRADE_SUCCESS"}"#;
    let raw = encrypted_response(plain, None);
    let args = [
        "alipay-response",
        "--public-key",
        "@keys/app2048.spki.pem",
        "--method",
        "alipay.trade.query",
    ];
    let with_key = [&args[..], &["--aes-key", AES_KEY]].concat();
    let (json, exit) = run(&with_key, raw.as_bytes());
    assert_eq!((exit, json["valid"].as_bool()), (0, Some(true)), "{json}");
    assert_eq!(json["encrypted"], true);
    assert_eq!(json["decrypted_content"], plain);
    assert!(json["signed_content"].as_str().unwrap().starts_with('"'));

    // Without the AES key: genuine, but the content stays encrypted.
    let (json, exit) = run(&args, raw.as_bytes());
    assert_eq!((exit, &json["encrypted"]), (0, &Value::Bool(true)));
    assert_eq!(json["decrypted_content"], Value::Null);

    // Another AES key: the signature is genuine, the content cannot be read.
    let other = [&args[..], &["--aes-key", "AAECAwQFBgcICQoLDA0ODw=="]].concat();
    let (json, exit) = run(&other, raw.as_bytes());
    assert_eq!((exit, json["valid"].as_bool()), (1, Some(false)));
    assert!(
        ["bad_padding", "decrypted_not_object"].contains(&json["reason"].as_str().unwrap()),
        "{json}"
    );
    // A key that is not one.
    let bad = [&args[..], &["--aes-key", "AAEC"]].concat();
    let (json, exit) = run(&bad, raw.as_bytes());
    assert_eq!((exit, json["reason"].as_str()), (2, Some("bad_aes_key")));

    // A string response is no longer unreadable: its signature is what fails.
    let (json, exit) = run(
        &args,
        br#"{"alipay_trade_query_response":"QUJD","sign":"AAAA"}"#,
    );
    assert_eq!(
        (exit, json["reason"].as_str()),
        (1, Some("sign_wrong_length"))
    );
    assert_eq!(json["encrypted"], true);
}

#[test]
fn certificate_mode() {
    let selfgen = "3e1b32f91b24396d2c3d3ec61b1f24ff";
    let args = [
        "alipay-response",
        "--alipay-cert",
        "@alipay_cert_sn/alipayCertPublicKey_RSA2.crt",
        "--alipay-cert",
        "@alipay_cert_sn/selfgen_alipay_cert.pem",
        "--method",
        "alipay.trade.query",
        "--aes-key",
        AES_KEY,
    ];
    let plain = r#"{"code":"10000"}"#;
    let (json, exit) = run(&args, encrypted_response(plain, Some(selfgen)).as_bytes());
    assert_eq!((exit, json["valid"].as_bool()), (0, Some(true)), "{json}");
    assert_eq!(json["alipay_cert_sn"], selfgen);
    assert_eq!(json["decrypted_content"], plain);

    // Alipay rotated its certificate: an SN the host does not hold.
    let rotated = "0123456789abcdef0123456789abcdef";
    let (json, exit) = run(&args, encrypted_response(plain, Some(rotated)).as_bytes());
    assert_eq!(
        (exit, json["reason"].as_str()),
        (1, Some("unknown_cert_sn"))
    );
    let detail = json["detail"].as_str().unwrap();
    assert!(
        detail.contains(rotated) && detail.contains(selfgen),
        "{detail}"
    );
    // No SN at all.
    let (json, exit) = run(&args, encrypted_response(plain, None).as_bytes());
    assert_eq!(
        (exit, json["reason"].as_str()),
        (1, Some("missing_cert_sn"))
    );

    for (args, reason) in [
        (
            vec![
                "alipay-response",
                "--alipay-cert",
                "@alipay_cert_sn/selfgen_alipay_cert.pem",
                "--public-key",
                "@keys/app2048.spki.pem",
                "--method",
                "m",
            ],
            "bad_usage",
        ),
        (vec!["alipay-response", "--method", "m"], "bad_usage"),
        (
            vec![
                "alipay-response",
                "--alipay-cert",
                "@keys/app2048.spki.pem",
                "--method",
                "m",
            ],
            "bad_certificate",
        ),
        (
            vec![
                "alipay-response",
                "--alipay-cert",
                "@nope.crt",
                "--method",
                "m",
            ],
            "unreadable_key",
        ),
    ] {
        let (json, exit) = run(&args, b"{}");
        assert_eq!(
            (exit, json["reason"].as_str()),
            (2, Some(reason)),
            "{args:?}"
        );
    }
}
