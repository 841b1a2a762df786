//! The merchant API's signatures, replay defence and idempotency keys, and bad input
//! anywhere: each gets a clear error, the server keeps serving, and nothing is written.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use paystate_server::auth;
use serde_json::{Value, json};

/// Sends a merchant request with exactly these header values (`None` leaves one out).
#[allow(
    clippy::too_many_arguments,
    reason = "one argument per header under test"
)]
async fn raw_call(
    server: &Server,
    method: &str,
    path: &str,
    body: &str,
    key: Option<&str>,
    ts: Option<&str>,
    nonce: Option<&str>,
    sig: Option<&str>,
) -> (u16, Value) {
    let mut req = server
        .http
        .request(
            method.parse().expect("method"),
            format!("{}{path}", server.base()),
        )
        .body(body.to_owned());
    for (name, value) in [
        ("x-paystate-key", key),
        ("x-paystate-timestamp", ts),
        ("x-paystate-nonce", nonce),
        ("x-paystate-signature", sig),
    ] {
        if let Some(v) = value {
            req = req.header(name, v);
        }
    }
    let resp = req.send().await.expect("answer");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn signed(ts: &str, nonce: &str, method: &str, path: &str, body: &str) -> String {
    auth::sign(
        API_SECRET.as_bytes(),
        ts,
        nonce,
        method,
        path,
        body.as_bytes(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_windows_and_nonces() {
    let env = Env::new().await;
    let server = env.server(Options::default()).await;
    let path = "/v1/payments/nope";
    let now = unix_now();
    let ts = now.to_string();
    let good = signed(&ts, "nonce-1", "GET", path, "");
    // The genuine request: 404 (the order is unknown) proves it got through.
    let (code, v) = raw_call(
        &server,
        "GET",
        path,
        "",
        Some(API_KEY),
        Some(&ts),
        Some("nonce-1"),
        Some(&good),
    )
    .await;
    assert_eq!(
        (code, v["error"].as_str()),
        (404, Some("unknown_payment")),
        "{v}"
    );
    // Replayed nonce, to the same instance.
    let (code, v) = raw_call(
        &server,
        "GET",
        path,
        "",
        Some(API_KEY),
        Some(&ts),
        Some("nonce-1"),
        Some(&good),
    )
    .await;
    assert_eq!((code, v["error"].as_str()), (401, Some("replayed")));
    // A missing header, each in turn.
    for missing in 0..4 {
        let mut h = [
            Some(API_KEY),
            Some(ts.as_str()),
            Some("nonce-2"),
            Some(good.as_str()),
        ];
        h[missing] = None;
        let (code, v) = raw_call(&server, "GET", path, "", h[0], h[1], h[2], h[3]).await;
        assert_eq!(
            (code, v["error"].as_str()),
            (401, Some("missing_auth")),
            "header {missing}"
        );
    }
    let (code, v) = raw_call(
        &server,
        "GET",
        path,
        "",
        Some("other"),
        Some(&ts),
        Some("nonce-3"),
        Some(&good),
    )
    .await;
    assert_eq!((code, v["error"].as_str()), (401, Some("unknown_key")));
    // A wrong signature: for another path, and one hex digit changed.
    let other = signed(&ts, "nonce-4", "GET", "/v1/payments/other", "");
    let (code, v) = raw_call(
        &server,
        "GET",
        path,
        "",
        Some(API_KEY),
        Some(&ts),
        Some("nonce-4"),
        Some(&other),
    )
    .await;
    assert_eq!((code, v["error"].as_str()), (401, Some("bad_signature")));
    let mut flipped = signed(&ts, "nonce-5", "GET", path, "").into_bytes();
    flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).expect("hex");
    let (code, v) = raw_call(
        &server,
        "GET",
        path,
        "",
        Some(API_KEY),
        Some(&ts),
        Some("nonce-5"),
        Some(&flipped),
    )
    .await;
    assert_eq!((code, v["error"].as_str()), (401, Some("bad_signature")));
    // A bad signature does not burn the nonce: the genuine request with it still passes.
    let genuine5 = signed(&ts, "nonce-5", "GET", path, "");
    let (code, _) = raw_call(
        &server,
        "GET",
        path,
        "",
        Some(API_KEY),
        Some(&ts),
        Some("nonce-5"),
        Some(&genuine5),
    )
    .await;
    assert_eq!(code, 404);
    // Stale and from the future, correctly signed.
    let old = (now - 301).to_string();
    let s = signed(&old, "nonce-6", "GET", path, "");
    let (code, v) = raw_call(
        &server,
        "GET",
        path,
        "",
        Some(API_KEY),
        Some(&old),
        Some("nonce-6"),
        Some(&s),
    )
    .await;
    assert_eq!((code, v["error"].as_str()), (401, Some("stale")));
    let future = (now + 301).to_string();
    let s = signed(&future, "nonce-7", "GET", path, "");
    let (code, v) = raw_call(
        &server,
        "GET",
        path,
        "",
        Some(API_KEY),
        Some(&future),
        Some("nonce-7"),
        Some(&s),
    )
    .await;
    assert_eq!((code, v["error"].as_str()), (401, Some("from_future")));
    // A replay sent to another instance on the same database is refused too.
    let second = env.server(Options::default()).await;
    let (code, v) = raw_call(
        &second,
        "GET",
        path,
        "",
        Some(API_KEY),
        Some(&ts),
        Some("nonce-1"),
        Some(&good),
    )
    .await;
    assert_eq!((code, v["error"].as_str()), (401, Some("replayed")));
    assert_eq!(env.db.count("SELECT COUNT(*) FROM payments").await, 0);
}

fn create_body(order_id: &str, amount: &str) -> Value {
    json!({"order_id": order_id, "provider": "alipay", "amount": amount, "currency": "CNY", "subject": "Tea"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_replay_conflict_and_in_use() {
    let env = Env::new().await;
    let server = env
        .server(Options {
            extra_env: vec![(
                "PAYSTATE_FAILPOINT".into(),
                "create_after_claim:sleep".into(),
            )],
            ..Options::default()
        })
        .await;
    let body = create_body("order-idem", "1.00");
    // Two at once with one key: one runs (slowly), the other is told it is in use.
    let (a, b) = tokio::join!(
        server.call("POST", "/v1/payments", Some(&body), Some("key-1")),
        async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            server
                .call("POST", "/v1/payments", Some(&body), Some("key-1"))
                .await
        }
    );
    assert_eq!(a.0, 201, "{}", a.1);
    assert_eq!(
        (b.0, b.1["error"].as_str()),
        (409, Some("in_use")),
        "{}",
        b.1
    );
    // The same key and body again: the stored response, byte for byte.
    let (code, v) = server
        .call("POST", "/v1/payments", Some(&body), Some("key-1"))
        .await;
    assert_eq!((code, &v), (201, &a.1));
    // The same key, another body.
    let (code, v) = server
        .call(
            "POST",
            "/v1/payments",
            Some(&create_body("order-idem", "2.00")),
            Some("key-1"),
        )
        .await;
    assert_eq!(
        (code, v["error"].as_str()),
        (422, Some("idempotency_conflict"))
    );
    // Another instance sees the same key.
    let second = env.server(Options::default()).await;
    let (code, v) = second
        .call("POST", "/v1/payments", Some(&body), Some("key-1"))
        .await;
    assert_eq!((code, &v), (201, &a.1));
    // Without a key, the same order again is a conflict of the payment itself.
    let (code, v) = second.call("POST", "/v1/payments", Some(&body), None).await;
    assert_eq!((code, v["error"].as_str()), (409, Some("payment_exists")));
    assert_eq!(env.db.count("SELECT COUNT(*) FROM payments").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_held_by_a_dead_instance_is_taken_over_after_its_lease() {
    let env = Env::new().await;
    let mut server = env
        .server(Options {
            lease_secs: 2,
            ..Options::default()
        })
        .await;
    server.kill();
    server
        .start(&[("PAYSTATE_FAILPOINT", "create_after_claim")])
        .await;
    let body = create_body("order-lease", "3.00");
    let killed = server
        .call_may_fail("POST", "/v1/payments", &body, "key-lease")
        .await;
    assert!(
        killed.is_none(),
        "the failpoint kills the server mid-request"
    );
    assert!(server.wait_exit(Duration::from_secs(10)).await);
    server.start(&[]).await;
    let (code, v) = server
        .call("POST", "/v1/payments", Some(&body), Some("key-lease"))
        .await;
    assert_eq!(
        (code, v["error"].as_str()),
        (409, Some("in_use")),
        "within the lease: {v}"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (code, v) = server
        .call("POST", "/v1/payments", Some(&body), Some("key-lease"))
        .await;
    assert_eq!(code, 201, "after the lease, a real answer: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_anywhere_changes_nothing() {
    let env = Env::new().await;
    let server = env.server(Options::default()).await;
    // Malformed JSON, unknown fields, bad amounts and currencies.
    for (body, code, error) in [
        (json!("not an object"), 400, "bad_input"),
        (json!({"order_id": "o1"}), 400, "bad_input"),
        (
            json!({"order_id": "o1", "provider": "alipay", "amount": "1.00", "currency": "CNY", "subject": "x", "extra": 1}),
            400,
            "bad_input",
        ),
        (create_body("o1", "1.001"), 400, "invalid_amount"),
        (create_body("o1", "-1"), 400, "invalid_amount"),
        (create_body("o1", "0"), 400, "invalid_amount"),
        (
            json!({"order_id": "o1", "provider": "alipay", "amount": "1.00", "currency": "XXX", "subject": "x"}),
            400,
            "unknown_currency",
        ),
        (
            json!({"order_id": "o1", "provider": "paypal", "amount": "1.00", "currency": "CNY", "subject": "x"}),
            400,
            "bad_input",
        ),
        (create_body("o/1", "1.00"), 400, "bad_input"),
        (
            json!({"order_id": "o1", "provider": "alipay", "amount": "1.00", "currency": "USD", "subject": "x"}),
            400,
            "bad_input",
        ),
    ] {
        let (got, v) = server.call("POST", "/v1/payments", Some(&body), None).await;
        assert_eq!(
            (got, v["error"].as_str()),
            (code, Some(error)),
            "{body}: {v}"
        );
    }
    // Raw bytes that are not JSON at all.
    let ts = unix_now().to_string();
    let s = auth::sign(
        API_SECRET.as_bytes(),
        &ts,
        "raw-1",
        "POST",
        "/v1/payments",
        b"{\"order_id\":",
    );
    let resp = server
        .http
        .post(format!("{}/v1/payments", server.base()))
        .header("x-paystate-key", API_KEY)
        .header("x-paystate-timestamp", &ts)
        .header("x-paystate-nonce", "raw-1")
        .header("x-paystate-signature", s)
        .body("{\"order_id\":")
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status().as_u16(), 400);
    // A 10 MB body: refused from its Content-Length, before it is read, in the API's JSON.
    // (Raw TCP, so the answer is read whatever the client would do with the unsent rest.)
    for path in ["/notify/alipay", "/v1/payments"] {
        let mut tcp = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        write!(
            tcp,
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\naaaa",
            10 * 1024 * 1024
        )
        .expect("send the headers");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let mut answer = Vec::new();
        let _ = tcp.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(
            answer.contains(r#""error":"body_too_large""#),
            "{path}: {answer}"
        );
    }
    // An unknown order.
    let (code, v) = server.call("GET", "/v1/payments/ghost", None, None).await;
    assert_eq!((code, v["error"].as_str()), (404, Some("unknown_payment")));
    let (code, _) = server
        .call("POST", "/v1/payments/ghost/cancel", None, None)
        .await;
    assert_eq!(code, 404);
    let (code, _) = server
        .call(
            "POST",
            "/v1/payments/ghost/refunds",
            Some(&json!({"refund_id":"r","amount":"1.00"})),
            None,
        )
        .await;
    assert_eq!(code, 404);
    // Notifications: not a form, not UTF-8, no signature, a garbage signature.
    for body in [
        &b"%zz=1"[..],
        &b"charset=utf-8&out_trade_no=\xff\xfe&sign=abc"[..],
        &b"out_trade_no=o1&trade_status=TRADE_SUCCESS"[..],
        &b"out_trade_no=o1&sign=%%%"[..],
        &b""[..],
    ] {
        let reply = server
            .http
            .post(format!("{}/notify/alipay", server.base()))
            .body(body.to_vec())
            .send()
            .await
            .expect("answer")
            .text()
            .await
            .unwrap_or_default();
        assert_eq!(reply, "fail", "{}", String::from_utf8_lossy(body));
    }
    // A return that does not verify.
    let resp = server
        .http
        .get(format!(
            "{}/return/alipay?out_trade_no=o1&sign=x",
            server.base()
        ))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status().as_u16(), 400);
    // Still serving, and nothing was written.
    let resp = server
        .http
        .get(format!("{}/healthz", server.base()))
        .send()
        .await
        .expect("healthz");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(env.db.count("SELECT COUNT(*) FROM payments").await, 0);
    assert_eq!(env.db.count("SELECT COUNT(*) FROM outbox").await, 0);
}

#[test]
fn a_bad_configuration_stops_the_server_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = keys_dir();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let base = |extra: &str| {
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite://x.db\"\npublic_url = \"http://127.0.0.1\"\n{extra}"
        )
    };
    let cases = [
        (
            "missing-key-file.toml",
            base(&format!(
                "[alipay]\napp_id = \"1\"\nseller_id = \"2\"\napp_private_key = \"missing.pem\"\nalipay_public_key = \"{}/alipay_sim_public.pem\"\n",
                keys.display()
            )),
            "[alipay].app_private_key: cannot read",
        ),
        (
            "not-a-key.toml",
            base(&format!(
                "[alipay]\napp_id = \"1\"\nseller_id = \"2\"\napp_private_key = \"{}/README.md\"\nalipay_public_key = \"{}/alipay_sim_public.pem\"\n",
                keys.display(),
                keys.display()
            )),
            "[alipay].app_private_key: not an RSA private key",
        ),
        (
            "unknown-key.toml",
            base("colour = \"blue\"\n"),
            "unknown field",
        ),
        (
            "no-database.toml",
            "listen = \"127.0.0.1:0\"\npublic_url = \"http://x\"\n".to_owned(),
            "missing field `database`",
        ),
        (
            "bad-database.toml",
            "listen = \"127.0.0.1:0\"\ndatabase = \"mysql://x\"\npublic_url = \"http://x\"\n"
                .to_owned(),
            "database: must start with",
        ),
        (
            "short-secret.toml",
            base("[[api_keys]]\nid = \"shop\"\nsecret = \"short\"\n"),
            "secret: must be at least 16 bytes",
        ),
        ("no-api-keys.toml", base(""), "[[api_keys]]: at least one key is needed"),
        (
            "bad-gateway.toml",
            base(&format!(
                "[[api_keys]]\nid = \"shop\"\nsecret = \"0123456789abcdef\"\n[alipay]\napp_id = \"1\"\nseller_id = \"2\"\napp_private_key = \"{k}/app_private.pem\"\nalipay_public_key = \"{k}/alipay_sim_public.pem\"\ngateway = \"not a url\"\n",
                k = keys.display()
            )),
            "[alipay].gateway: \"not a url\" is not a URL",
        ),
        (
            "bad-retry.toml",
            base("[[api_keys]]\nid = \"shop\"\nsecret = \"0123456789abcdef\"\n[workers]\nretry_base_ms = 10000\nretry_max_ms = 1\n"),
            "[workers].retry_max_ms: must be at least retry_base_ms",
        ),
        (
            "no-database-server.toml",
            "listen = \"127.0.0.1:0\"\ndatabase = \"postgres://nobody@127.0.0.1:1/none\"\npublic_url = \"http://x\"\n[[api_keys]]\nid = \"shop\"\nsecret = \"0123456789abcdef\"\n"
                .to_owned(),
            "database:",
        ),
    ];
    for (name, text, expected) in cases {
        let path = write(name, &text);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_paystate-server"))
            .arg("--config")
            .arg(&path)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
        assert!(err.contains(expected), "{name}: {err}");
        assert!(err.contains(name), "{name}: names the file: {err}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paystate-server"))
        .arg("--config")
        .arg(dir.path().join("absent.toml"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the configuration"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_nonces_and_day_old_idempotency_keys_are_swept() {
    use paystate::Timestamp;
    use paystate_server::store::Db;
    let dir = tempfile::tempdir().expect("tempdir");
    let test_db = TestDb::fresh(dir.path()).await;
    let db = Db::connect(&test_db.url, 2).await.expect("connect");
    let now = unix_now() as i64;
    for (nonce, expires) in [("old", now - 10), ("live", now + 100)] {
        sqlx::query("INSERT INTO nonces (api_key, nonce, expires_at) VALUES ('shop', $1, $2)")
            .bind(nonce)
            .bind(expires)
            .execute(&db.pool)
            .await
            .expect("insert nonce");
    }
    for (key, state, created) in [
        ("done-old", "done", now - 90_000),
        ("done-new", "done", now - 10),
        ("flight-old", "in_flight", now - 90_000),
    ] {
        sqlx::query(
            "INSERT INTO idempotency_keys (api_key, idem_key, fingerprint, state, lease_until, created_at) \
             VALUES ('shop', $1, 'f', $2, 0, $3)",
        )
        .bind(key)
        .bind(state)
        .bind(created)
        .execute(&db.pool)
        .await
        .expect("insert key");
    }
    let t = Timestamp::from_secs(now as u64);
    assert_eq!(auth::sweep_nonces(&db, t).await.expect("sweep"), 1);
    assert_eq!(
        auth::sweep_idempotency_keys(&db, t).await.expect("sweep"),
        1
    );
    assert_eq!(
        test_db
            .count("SELECT COUNT(*) FROM nonces WHERE nonce = 'live'")
            .await,
        1
    );
    assert_eq!(
        test_db.count("SELECT COUNT(*) FROM idempotency_keys").await,
        2
    );
    assert_eq!(
        test_db
            .count("SELECT COUNT(*) FROM idempotency_keys WHERE idem_key = 'done-old'")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_instance_died_after_storing_it_is_answered_created_on_retry() {
    let env = Env::new().await;
    let mut server = env
        .server(Options {
            lease_secs: 2,
            ..Options::default()
        })
        .await;
    server.kill();
    server
        .start(&[("PAYSTATE_FAILPOINT", "create_after_insert")])
        .await;
    let body = create_body("order-died", "4.00");
    let killed = server
        .call_may_fail("POST", "/v1/payments", &body, "key-died")
        .await;
    assert!(
        killed.is_none(),
        "the failpoint kills the server mid-request"
    );
    assert!(server.wait_exit(Duration::from_secs(10)).await);
    assert_eq!(env.db.count("SELECT COUNT(*) FROM payments").await, 1);
    // Another instance, after the dead one's lease: the payment the first run stored, with
    // the pay_url the merchant needs, not `409 payment_exists`.
    let second = env.server(Options::default()).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (code, v) = second
        .call("POST", "/v1/payments", Some(&body), Some("key-died"))
        .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(
        (v["order_id"].as_str(), v["amount"].as_str()),
        (Some("order-died"), Some("4.00"))
    );
    let pay_url = v["pay_url"].as_str().expect("a pay_url");
    env.sim.open(pay_url).await.expect("the cashier opens");
    // From now on the key replays that answer; without a key the order is still taken.
    let (code, again) = second
        .call("POST", "/v1/payments", Some(&body), Some("key-died"))
        .await;
    assert_eq!((code, &again), (201, &v));
    let (code, v) = second.call("POST", "/v1/payments", Some(&body), None).await;
    assert_eq!((code, v["error"].as_str()), (409, Some("payment_exists")));
    // The same key for the same order with another amount is a conflict of the key.
    let (code, v) = second
        .call(
            "POST",
            "/v1/payments",
            Some(&create_body("order-died", "5.00")),
            Some("key-died"),
        )
        .await;
    assert_eq!(
        (code, v["error"].as_str()),
        (422, Some("idempotency_conflict"))
    );
    assert_eq!(env.db.count("SELECT COUNT(*) FROM payments").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_slower_than_its_lease_keeps_its_idempotency_key() {
    let env = Env::new().await;
    let server = env
        .server(Options {
            lease_secs: 2,
            // The tests' request timeout (4 s) would cut a 5 s request short.
            request_timeout_secs: 10,
            extra_env: vec![(
                "PAYSTATE_FAILPOINT".into(),
                "create_after_claim:sleep=5".into(),
            )],
            ..Options::default()
        })
        .await;
    let body = create_body("order-slow", "4.00");
    let (a, b) = tokio::join!(
        server.call("POST", "/v1/payments", Some(&body), Some("key-slow")),
        async {
            tokio::time::sleep(Duration::from_millis(3500)).await;
            server
                .call("POST", "/v1/payments", Some(&body), Some("key-slow"))
                .await
        }
    );
    // The lease (2 s) ran out twice over while the first run slept, but it was renewed: the
    // second is told the key is in use, not run again.
    assert_eq!(
        (b.0, b.1["error"].as_str()),
        (409, Some("in_use")),
        "{}",
        b.1
    );
    assert_eq!(a.0, 201, "{}", a.1);
}

/// The fleet test's finding: a create with a deadline a few seconds ahead, whose instance died
/// after storing it, retried under its key once the lease ran out and the deadline had
/// passed, answered `400 expires_at is not in the future` — the pay_url lost again. It answers
/// the stored payment; a retry whose earlier run stored nothing is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_past_its_deadline_answers_the_stored_payment() {
    let env = Env::new().await;
    let mut server = env
        .server(Options {
            lease_secs: 2,
            ..Options::default()
        })
        .await;
    server.kill();
    server
        .start(&[("PAYSTATE_FAILPOINT", "create_after_insert")])
        .await;
    let expires = unix_now() + 2;
    let mut body = create_body("order-expiring", "4.00");
    body["expires_at"] = json!(expires);
    let killed = server
        .call_may_fail("POST", "/v1/payments", &body, "key-expiring")
        .await;
    assert!(
        killed.is_none(),
        "the failpoint kills the server mid-request"
    );
    assert!(server.wait_exit(Duration::from_secs(10)).await);
    server.start(&[]).await;
    // After the lease and after the deadline.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(unix_now() > expires);
    let (code, v) = server
        .call("POST", "/v1/payments", Some(&body), Some("key-expiring"))
        .await;
    assert_eq!(code, 201, "{v}");
    assert!(v["pay_url"].as_str().is_some(), "{v}");
    // A new key with a passed deadline, nothing stored: refused.
    let mut late = create_body("order-never", "4.00");
    late["expires_at"] = json!(unix_now() - 1);
    let (code, v) = server
        .call("POST", "/v1/payments", Some(&late), Some("key-never"))
        .await;
    assert_eq!((code, v["error"].as_str()), (400, Some("bad_input")), "{v}");
}
