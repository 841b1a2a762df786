//! `paystate-server demo`: the whole flow on one machine. It starts the Alipay simulator and
//! the server (SQLite in a temporary directory, the repository's test-only keys), creates a
//! payment through the signed merchant API and prints its `pay_url`. Open it in a browser,
//! press "Pay" on the simulated cashier, and watch the notification settle the payment. With
//! `--auto-pay` the demo plays the buyer itself and exits when the payment has succeeded.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::sim::{AlipaySim, SimConfig};

const APP_ID: &str = "2021000000000000";
const SELLER_ID: &str = "2088000000000000";
const API_SECRET: &str = "demo-secret-not-for-production";
const APP_PRIVATE: &str = include_str!("../keys/app_private.pem");
const SIM_PUBLIC: &str = include_str!("../keys/alipay_sim_public.pem");

/// What the demo was asked to do.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The server's address (`127.0.0.1:8080`).
    pub listen: String,
    /// The simulator's address (`127.0.0.1:8081`).
    pub sim_listen: String,
    /// Play the buyer and exit once the payment succeeded.
    pub auto_pay: bool,
}

/// Runs the demo. Returns the payment's final view with `--auto-pay`; otherwise serves until
/// Ctrl-C.
///
/// Errors: a port that cannot be bound, or a step of the flow that failed, as text.
pub async fn run(options: DemoOptions) -> Result<Option<Value>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let sim_listener = tokio::net::TcpListener::bind(&options.sim_listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {} for the simulator: {e}",
                options.sim_listen
            )
        })?;
    let sim = AlipaySim::start(SimConfig::test_keys(APP_ID, SELLER_ID), sim_listener)
        .await
        .map_err(|e| format!("simulator: {e}"))?;
    let listener = tokio::net::TcpListener::bind(&options.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let config_path = write_config(dir.path(), &addr.to_string(), &sim.gateway_url())?;
    let config = crate::config::Config::load(&config_path).map_err(|e| e.to_string())?;
    let state = crate::prepare(config).await.map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve_on(state, listener, async move {
        let _ = stop_rx.await;
    }));

    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let order_id = format!("demo-{}", crate::app::now().as_secs());
    let body = json!({
        "order_id": order_id,
        "provider": "alipay",
        "amount": "99.99",
        "currency": "CNY",
        "subject": "Green tea, 500 g",
        "expires_at": crate::app::now().as_secs() + 900,
    });
    let (status, created) = signed(&http, &base, "POST", "/v1/payments", Some(&body)).await?;
    if status != 201 {
        return Err(format!("creating the payment: HTTP {status}: {created}"));
    }
    let pay_url = created["pay_url"].as_str().unwrap_or_default().to_owned();
    println!(
        "paystate demo: server on {base}, Alipay simulator on {}",
        sim.gateway_url()
    );
    println!(
        "created payment {order_id}: {}",
        created["status"].as_str().unwrap_or_default()
    );
    println!("pay_url: {pay_url}");
    if !options.auto_pay {
        println!("open the pay_url in a browser and press Pay; Ctrl-C to stop.");
        println!(
            "the merchant API key of this demo: X-Paystate-Key \"demo\", secret \"{API_SECRET}\" \
             (see docs/server.md for the signature)"
        );
        println!("watching GET {base}/v1/payments/{order_id}:");
        let path = format!("/v1/payments/{order_id}");
        let mut last = String::new();
        let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
        loop {
            if let Ok((200, view)) = signed(&http, &base, "GET", &path, None).await {
                let now = format!(
                    "{} (paid {} {}, refunded {})",
                    view["status"].as_str().unwrap_or_default(),
                    view["paid"].as_str().unwrap_or_default(),
                    view["currency"].as_str().unwrap_or_default(),
                    view["refunded"].as_str().unwrap_or_default(),
                );
                if now != last {
                    println!("payment {order_id}: {now}");
                    last = now;
                }
            }
            tokio::select! {
                _ = &mut ctrl_c => break,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        let _ = stop_tx.send(());
        let _ = server.await;
        return Ok(None);
    }
    sim.open(&pay_url)
        .await
        .map_err(|e| format!("opening the cashier: {e}"))?;
    println!("the buyer opened the cashier page");
    sim.pay(&order_id)
        .await
        .map_err(|e| format!("paying: {e}"))?;
    println!("the buyer pressed Pay; Alipay notifies {base}/notify/alipay");
    let deadline = Instant::now() + Duration::from_secs(30);
    let path = format!("/v1/payments/{order_id}");
    let view = loop {
        let (status, view) = signed(&http, &base, "GET", &path, None).await?;
        if status == 200 && view["status"] == "succeeded" {
            break view;
        }
        if Instant::now() > deadline {
            return Err(format!("the payment did not succeed within 30 s: {view}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let replies: Vec<String> = sim
        .deliveries(&order_id)
        .iter()
        .filter_map(|d| d.reply.clone())
        .collect();
    println!("notification delivered; the server replied {replies:?}");
    let text = |k: &str| view[k].as_str().unwrap_or_default().to_owned();
    println!(
        "payment {order_id}: {} (paid {} {})",
        text("status"),
        text("paid"),
        text("currency")
    );
    let _ = stop_tx.send(());
    let _ = server.await;
    Ok(Some(view))
}

fn write_config(dir: &Path, listen: &str, gateway: &str) -> Result<std::path::PathBuf, String> {
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).map_err(|e| format!("writing {name}: {e}"))
    };
    write("app_private.pem", APP_PRIVATE)?;
    write("alipay_sim_public.pem", SIM_PUBLIC)?;
    let config = format!(
        r#"listen = "{listen}"
database = "sqlite://demo.db"
public_url = "http://{listen}"

[[api_keys]]
id = "demo"
secret = "{API_SECRET}"

[alipay]
app_id = "{APP_ID}"
seller_id = "{SELLER_ID}"
app_private_key = "app_private.pem"
alipay_public_key = "alipay_sim_public.pem"
gateway = "{gateway}"

[workers]
outbox_interval_ms = 200
sweep_interval_ms = 500
query_after_secs = 30
poll_interval_ms = 1000
"#
    );
    write("server.toml", &config)?;
    Ok(dir.join("server.toml"))
}

async fn signed(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let ts = crate::app::now().as_secs().to_string();
    let nonce = format!("demo-{:016x}", rand::random::<u64>());
    let sig = crate::auth::sign(
        API_SECRET.as_bytes(),
        &ts,
        &nonce,
        method,
        path,
        body.as_bytes(),
    );
    let response = http
        .request(
            method.parse().map_err(|_| "method".to_owned())?,
            format!("{base}{path}"),
        )
        .header("x-paystate-key", "demo")
        .header("x-paystate-timestamp", ts)
        .header("x-paystate-nonce", nonce)
        .header("x-paystate-signature", sig)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| e.to_string())?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}
