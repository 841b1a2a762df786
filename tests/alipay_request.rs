//! Signed trade requests: what the gateway checks (rule V2 over the decoded body) holds, and
//! amounts are formatted from `Money`.
#![cfg(feature = "rsa")]

use paystate::alipay::content::{SignRule, SignedContent};
use paystate::alipay::form::Form;
use paystate::alipay::notify::Notification;
use paystate::alipay::request::{RequestError, RequestSigner, TradeRequest};
use paystate::signature::Rsa2PrivateKey;
use paystate::{Currency, Money, Timestamp};

fn key() -> Rsa2PrivateKey {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/keys/app2048.pkcs1.pem"
    );
    Rsa2PrivateKey::parse(&std::fs::read(path).unwrap()).unwrap()
}

const NOW: Timestamp = Timestamp::from_secs(1_764_208_800); // 2025-11-27 10:00:00 in Beijing

fn cny(s: &str) -> Money {
    Money::parse(s, Currency::CNY).unwrap()
}

#[test]
fn every_method_is_signed_over_its_decoded_body() {
    let key = key();
    let signer = RequestSigner::new("2021000000000001", key.clone())
        .with_notify_url("https://shop.example/alipay/notify?x=1&y=2")
        .with_return_url("https://shop.example/orders/42");
    let requests = [
        TradeRequest::PagePay {
            out_trade_no: "order-42",
            total_amount: cny("1234.5"),
            subject: "\"Green\" tea\\ 绿茶",
            time_expire: None,
        },
        TradeRequest::WapPay {
            out_trade_no: "order-42",
            total_amount: cny("0.01"),
            subject: "tea",
            time_expire: Some(Timestamp::from_secs(1_764_210_600)),
            quit_url: Some("https://shop.example/orders/42?quit=1"),
        },
        TradeRequest::RefundQuery {
            out_trade_no: "order-42",
            out_request_no: "refund-1",
        },
        TradeRequest::Precreate {
            out_trade_no: "order-42",
            total_amount: cny("1234.5"),
            subject: "\"Green\" tea\\ 绿茶",
            time_expire: Some(Timestamp::from_secs(1_764_210_600)),
        },
        TradeRequest::Query {
            out_trade_no: "order-42",
        },
        TradeRequest::Refund {
            out_trade_no: "order-42",
            refund_amount: cny("0.5"),
            out_request_no: "refund-1",
        },
        TradeRequest::Close {
            out_trade_no: "order-42",
        },
        TradeRequest::Cancel {
            out_trade_no: "order-42",
        },
    ];
    for request in &requests {
        let signed = signer.sign(request, NOW).unwrap();
        assert_eq!(signed.method(), request.method());
        let mut buf = vec![0u8; signed.body().len()];
        let form = Form::decode(signed.body().as_bytes(), &mut buf).unwrap();
        // What the gateway recomputes from the body is what was signed, and it verifies.
        assert_eq!(
            SignedContent::new(&form, SignRule::V2).to_string(),
            signed.signed_content()
        );
        Notification::verify(&form, SignRule::V2, &key.public_key()).unwrap();
        assert_eq!(form.get("method"), Some(request.method()));
        assert_eq!(form.get("timestamp"), Some("2025-11-27 10:00:00"));
        assert_eq!(form.get("sign_type"), Some("RSA2"));
        assert_eq!(form.get("charset"), Some("utf-8"));
        let notify_url = form.get("notify_url");
        let return_url = form.get("return_url");
        let biz: serde_json::Value =
            serde_json::from_str(form.get("biz_content").unwrap()).unwrap();
        assert_eq!(biz["out_trade_no"], "order-42");
        match request {
            TradeRequest::Precreate { .. } => {
                assert_eq!(biz["total_amount"], "1234.50");
                assert_eq!(biz["subject"], "\"Green\" tea\\ 绿茶");
                assert_eq!(biz["time_expire"], "2025-11-27 10:30:00");
                assert_eq!(
                    notify_url,
                    Some("https://shop.example/alipay/notify?x=1&y=2")
                );
            }
            TradeRequest::PagePay { .. } => {
                assert_eq!(biz["total_amount"], "1234.50");
                assert_eq!(biz["product_code"], "FAST_INSTANT_TRADE_PAY");
                assert_eq!(biz.get("time_expire"), None);
                assert_eq!(
                    notify_url,
                    Some("https://shop.example/alipay/notify?x=1&y=2")
                );
                assert_eq!(return_url, Some("https://shop.example/orders/42"));
            }
            TradeRequest::WapPay { .. } => {
                assert_eq!(biz["total_amount"], "0.01");
                assert_eq!(biz["product_code"], "QUICK_WAP_WAY");
                assert_eq!(biz["time_expire"], "2025-11-27 10:30:00");
                assert_eq!(biz["quit_url"], "https://shop.example/orders/42?quit=1");
                assert_eq!(return_url, Some("https://shop.example/orders/42"));
            }
            TradeRequest::RefundQuery { .. } => {
                assert_eq!(request.method(), "alipay.trade.fastpay.refund.query");
                assert_eq!(biz["out_request_no"], "refund-1");
                assert_eq!(biz.as_object().unwrap().len(), 2);
                assert_eq!((notify_url, return_url), (None, None));
            }
            TradeRequest::Refund { .. } => {
                assert_eq!(biz["refund_amount"], "0.50");
                assert_eq!(biz["out_request_no"], "refund-1");
                assert_eq!(notify_url, None);
            }
            _ => {
                assert_eq!(biz.as_object().unwrap().len(), 1);
                assert_eq!((notify_url, return_url), (None, None));
            }
        }
    }
}

#[test]
fn signing_is_deterministic() {
    let key = key();
    let signer = RequestSigner::new("2021000000000001", key.clone());
    let request = TradeRequest::Query {
        out_trade_no: "order-42",
    };
    assert_eq!(signer.sign(&request, NOW), signer.sign(&request, NOW));
    assert_ne!(
        signer.sign(&request, NOW).unwrap().body(),
        signer
            .sign(&request, Timestamp::from_secs(1_764_208_801))
            .unwrap()
            .body()
    );
}

#[test]
fn bad_requests_are_typed_errors() {
    let key = key();
    let signer = RequestSigner::new("2021000000000001", key.clone());
    let long = "x".repeat(65);
    let sign = |r: TradeRequest<'_>| signer.sign(&r, NOW).map(|_| ());
    let precreate = |out_trade_no, total_amount, subject| TradeRequest::Precreate {
        out_trade_no,
        total_amount,
        subject,
        time_expire: None,
    };
    assert_eq!(
        sign(precreate(
            "order-42",
            Money::from_minor(100, Currency::USD),
            "tea"
        )),
        Err(RequestError::UnsupportedCurrency {
            currency: Currency::USD
        })
    );
    assert_eq!(
        sign(precreate("order-42", cny("0"), "tea")),
        Err(RequestError::InvalidAmount {
            field: "total_amount"
        })
    );
    assert_eq!(
        sign(precreate("order-42", cny("100000000.01"), "tea")),
        Err(RequestError::InvalidAmount {
            field: "total_amount"
        })
    );
    assert_eq!(sign(precreate("order-42", cny("100000000"), "tea")), Ok(()));
    assert_eq!(
        sign(precreate("", cny("1"), "tea")),
        Err(RequestError::InvalidField {
            field: "out_trade_no"
        })
    );
    for blank in [" ", "\u{3000}", "\t "] {
        assert_eq!(
            sign(precreate(blank, cny("1"), "tea")),
            Err(RequestError::InvalidField {
                field: "out_trade_no"
            }),
            "{blank:?}"
        );
    }
    assert_eq!(
        RequestError::InvalidField { field: "x" }.code(),
        "invalid_field"
    );
    assert_eq!(
        sign(precreate(long.as_str(), cny("1"), "tea")),
        Err(RequestError::InvalidField {
            field: "out_trade_no"
        })
    );
    assert_eq!(
        sign(precreate("order-42", cny("1"), "tea\n")),
        Err(RequestError::InvalidField { field: "subject" })
    );
    assert_eq!(
        sign(TradeRequest::Refund {
            out_trade_no: "o",
            refund_amount: cny("1"),
            out_request_no: ""
        }),
        Err(RequestError::InvalidField {
            field: "out_request_no"
        })
    );
    assert_eq!(
        signer.sign(
            &TradeRequest::Query { out_trade_no: "o" },
            Timestamp::from_secs(u64::MAX)
        ),
        Err(RequestError::TimestampOutOfRange)
    );
}

#[test]
fn browser_methods_are_a_signed_get_url() {
    let key = key();
    let signer = RequestSigner::new("2021000000000001", key.clone())
        .with_gateway("https://gateway.example/gateway.do?charset=utf-8")
        .with_notify_url("https://shop.example/alipay/notify")
        .with_return_url("https://shop.example/orders/42?a=b");
    let signed = signer
        .sign(
            &TradeRequest::WapPay {
                out_trade_no: "order-42",
                total_amount: cny("9.9"),
                subject: "绿茶",
                time_expire: None,
                quit_url: None,
            },
            NOW,
        )
        .unwrap();
    assert_eq!(
        signed.gateway(),
        "https://gateway.example/gateway.do?charset=utf-8"
    );
    let url = signed.url();
    // The gateway's own query is kept; every parameter follows, sign included.
    let query = url
        .strip_prefix("https://gateway.example/gateway.do?charset=utf-8&")
        .unwrap();
    assert_eq!(query, signed.body());
    let mut buf = vec![0u8; query.len()];
    let form = Form::decode(query.as_bytes(), &mut buf).unwrap();
    Notification::verify(&form, SignRule::V2, &key.public_key()).unwrap();
    assert_eq!(
        form.get("return_url"),
        Some("https://shop.example/orders/42?a=b")
    );
    assert_eq!(form.get("method"), Some("alipay.trade.wap.pay"));

    let default = RequestSigner::new("2021000000000001", key)
        .sign(&TradeRequest::Query { out_trade_no: "o" }, NOW)
        .unwrap();
    assert!(
        default
            .url()
            .starts_with("https://openapi.alipay.com/gateway.do?app_id=")
    );
}

#[test]
fn certificate_mode_parameters_are_signed() {
    let key = key();
    let signer = RequestSigner::new("2021000000000001", key.clone()).with_cert_mode(
        "866efef280dec9137a87d047ac446315",
        "687b59193f3f462dd5336e5abf83c5d8_02941eef3187dddf3d3b83462e1dfcf6",
    );
    let signed = signer
        .sign(&TradeRequest::Query { out_trade_no: "o" }, NOW)
        .unwrap();
    // Sorted first: alipay_root_cert_sn < app_cert_sn < app_id.
    assert!(signed.signed_content().starts_with(
        "alipay_root_cert_sn=687b59193f3f462dd5336e5abf83c5d8_02941eef3187dddf3d3b83462e1dfcf6&app_cert_sn=866efef280dec9137a87d047ac446315&app_id="
    ));
    let mut buf = vec![0u8; signed.body().len()];
    let form = Form::decode(signed.body().as_bytes(), &mut buf).unwrap();
    Notification::verify(&form, SignRule::V2, &key.public_key()).unwrap();
    assert_eq!(
        form.get("app_cert_sn"),
        Some("866efef280dec9137a87d047ac446315")
    );
}

#[test]
fn blank_parameters_are_left_out_of_the_request() {
    let key = key();
    let signer = RequestSigner::new("2021000000000001", key)
        .with_app_auth_token(" ")
        .with_notify_url("\u{3000}");
    let signed = signer
        .sign(
            &TradeRequest::Precreate {
                out_trade_no: "order-42",
                total_amount: cny("1"),
                subject: "tea",
                time_expire: None,
            },
            NOW,
        )
        .unwrap();
    for name in ["app_auth_token", "notify_url"] {
        assert!(!signed.signed_content().contains(name), "{name}");
        assert!(!signed.body().contains(name), "{name}");
    }
}

#[test]
fn the_signer_can_live_in_shared_server_state() {
    fn shared<T: Send + Sync + Clone + 'static>(_: &T) {}
    let key = std::sync::Arc::new(key());
    let signer = RequestSigner::new(String::from("2021000000000001"), key.clone());
    shared(&signer);
    let other = signer.clone().with_notify_url("https://shop.example/n");
    let request = TradeRequest::Query { out_trade_no: "o" };
    // One key, shared: both sign alike what they sign alike.
    assert_eq!(signer.sign(&request, NOW), other.sign(&request, NOW));
    assert_eq!(std::sync::Arc::strong_count(&key), 3);
}
