//! The harness of the server's integration tests: a real database (SQLite by default, or the
//! PostgreSQL server named by `PAYSTATE_TEST_DATABASE`, where each test gets a database of
//! its own), the Alipay simulator in the test process, and `paystate-server` as a child
//! process on a loopback port, which a test can `SIGKILL` and start again.

#![allow(dead_code)] // each test binary uses part of the harness

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use paystate_server::auth;
use paystate_server::sim::wechatpay::{WechatSim, WechatSimConfig};
use paystate_server::sim::{AlipaySim, SimConfig};
use serde_json::Value;
use sqlx::Row as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

pub const APP_ID: &str = "2021000000000001";
pub const SELLER_ID: &str = "2088000000000001";
pub const API_KEY: &str = "shop";
pub const API_SECRET: &str = "test-secret-of-the-shop-0123456789";
pub const STRIPE_SECRET: &str = "whsec_test_secret_of_the_shop";
pub const WX_MCHID: &str = "1900000109";
pub const WX_APPID: &str = "wxd678efh567hg6787";
pub const WX_APIV3_KEY: &str = "0123456789abcdef0123456789abcdef";
/// The platform key's id; the test signs as the platform with the simulator's key pair.
pub const WX_SERIAL: &str = "PUB_KEY_ID_0119000001092025111500000000000000";
/// The merchant certificate's serial (`serial_no` of the server's requests): the
/// `merchant_serial` that `Env::write_config` writes.
pub const WX_MERCHANT_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn keys_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("keys")
}

/// The database a test runs on.
pub struct TestDb {
    /// The URL the server gets.
    pub url: String,
    admin: Option<(String, String)>, // (admin url, database name) on PostgreSQL
}

impl TestDb {
    /// A fresh database: a SQLite file in `dir`, or a new PostgreSQL database.
    pub async fn fresh(dir: &Path) -> TestDb {
        match std::env::var("PAYSTATE_TEST_DATABASE") {
            Ok(url) if url.starts_with("postgres") => {
                sqlx::any::install_default_drivers();
                let name = format!("pst_{:016x}", rand::random::<u64>());
                let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
                    .await
                    .expect("connect to the PostgreSQL server of PAYSTATE_TEST_DATABASE");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create a test database");
                let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&url);
                TestDb {
                    url: format!("{base}/{name}"),
                    admin: Some((url.clone(), name)),
                }
            }
            _ => TestDb {
                url: format!("sqlite://{}", dir.join("paystate.db").display()),
                admin: None,
            },
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.admin.is_some()
    }

    /// A pool on the test database, for checks of what was (not) written.
    pub async fn pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(&self.url)
            .await
            .expect("connect to the test database")
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let pool = self.pool().await;
        let row = sqlx::query(sql).fetch_one(&pool).await.expect(sql);
        let n: i64 = row.try_get(0).expect("a count");
        pool.close().await;
        n
    }
}

/// What a test changes in the server's configuration.
#[derive(Clone)]
pub struct Options {
    pub query_after_secs: u64,
    pub poll_interval_ms: u64,
    pub lease_secs: u64,
    pub retry_base_ms: u64,
    pub extra_env: Vec<(String, String)>,
    /// The Alipay gateway URL, if not the simulator's own (a proxy in front of it).
    pub gateway: Option<String>,
    /// `[http].request_timeout_secs` (4 in the tests).
    pub request_timeout_secs: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            query_after_secs: 3600,
            poll_interval_ms: 200,
            lease_secs: 30,
            retry_base_ms: 200,
            extra_env: Vec::new(),
            gateway: None,
            request_timeout_secs: 4,
        }
    }
}

/// A test environment: a temporary directory, a database, the simulator.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub db: TestDb,
    pub sim: AlipaySim,
    /// The WeChat Pay simulator, when made by [`Env::with_wechat`].
    pub wechat: Option<WechatSim>,
}

impl Env {
    pub async fn new() -> Env {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = TestDb::fresh(dir.path()).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the simulator");
        let sim = AlipaySim::start(SimConfig::test_keys(APP_ID, SELLER_ID), listener)
            .await
            .expect("start the simulator");
        Env {
            dir,
            db,
            sim,
            wechat: None,
        }
    }

    /// Writes a configuration for a server on `port` and returns its path.
    pub fn write_config(&self, port: u16, opts: &Options) -> PathBuf {
        let keys = keys_dir();
        let text = format!(
            r#"listen = "127.0.0.1:{port}"
database = "{db}"
public_url = "http://127.0.0.1:{port}"

[[api_keys]]
id = "{API_KEY}"
secret = "{API_SECRET}"

[alipay]
app_id = "{APP_ID}"
seller_id = "{SELLER_ID}"
app_private_key = "{keys}/app_private.pem"
alipay_public_key = "{keys}/alipay_sim_public.pem"
gateway = "{gateway}"

[stripe]
webhook_secret = "{STRIPE_SECRET}"

[wechatpay]
mchid = "{WX_MCHID}"
appid = "{WX_APPID}"
apiv3_key = "{WX_APIV3_KEY}"
merchant_serial = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
merchant_private_key = "{keys}/app_private.pem"
platform_keys = [{{ serial = "{WX_SERIAL}", key = "{keys}/alipay_sim_public.pem" }}]
{wx_gateway}

[http]
header_timeout_secs = 2
request_timeout_secs = {rt}

[workers]
outbox_interval_ms = 100
retry_base_ms = {retry}
retry_max_ms = 1000
sweep_interval_ms = 200
query_after_secs = {qa}
poll_interval_ms = {pi}
lease_secs = {lease}
"#,
            db = self.db.url,
            keys = keys.display(),
            gateway = opts
                .gateway
                .clone()
                .unwrap_or_else(|| self.sim.gateway_url()),
            wx_gateway = self.wechat_gateway_line(),
            qa = opts.query_after_secs,
            pi = opts.poll_interval_ms,
            lease = opts.lease_secs,
            retry = opts.retry_base_ms,
            rt = opts.request_timeout_secs,
        );
        let path = self.dir.path().join(format!("server-{port}.toml"));
        std::fs::write(&path, text).expect("write the configuration");
        path
    }

    /// Starts a server with `opts` and waits until it answers `/healthz`.
    pub async fn server(&self, opts: Options) -> Server {
        let port = free_port();
        let config = self.write_config(port, &opts);
        let mut server = Server {
            port,
            config,
            log: self.dir.path().join(format!("server-{port}.log")),
            child: None,
            opts,
            http: reqwest::Client::new(),
        };
        server.start(&[]).await;
        server
    }
}

impl Env {
    /// [`Env::new`] with the WeChat Pay simulator as well (its platform key is the Alipay
    /// simulator's key pair under [`WX_SERIAL`]; it verifies the server's requests with
    /// `keys/app_public.pem`); `[wechatpay].gateway` points at it.
    pub async fn with_wechat() -> Env {
        let mut env = Env::new().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the WeChat Pay simulator");
        let wechat = WechatSim::start(wechat_sim_config(), listener)
            .await
            .expect("start the WeChat Pay simulator");
        env.wechat = Some(wechat);
        env
    }

    /// The WeChat Pay simulator (the environment must come from [`Env::with_wechat`]).
    pub fn wechat(&self) -> &WechatSim {
        self.wechat
            .as_ref()
            .expect("a WeChat Pay simulator: make the environment with Env::with_wechat")
    }

    /// The `gateway = "…"` line of `[wechatpay]`: the simulator's, or none (the default).
    fn wechat_gateway_line(&self) -> String {
        self.wechat
            .as_ref()
            .map(|w| format!("gateway = \"{}\"", w.gateway_url()))
            .unwrap_or_default()
    }

    /// [`Env::server`], with the WeChat Pay simulator's notifications sent to it (for orders
    /// made from now on).
    pub async fn wechat_server(&self, opts: Options) -> Server {
        let server = self.server(opts).await;
        self.wechat()
            .set_notify_url(Some(format!("{}/notify/wechatpay", server.base())));
        server
    }
}

/// The WeChat Pay simulator's configuration matching the server's `[wechatpay]`.
pub fn wechat_sim_config() -> WechatSimConfig {
    let key: [u8; 32] = WX_APIV3_KEY
        .as_bytes()
        .try_into()
        .expect("a 32-byte APIv3 key");
    WechatSimConfig::test_keys(WX_MCHID, WX_APPID, key, WX_MERCHANT_SERIAL, WX_SERIAL)
}

pub fn free_port() -> u16 {
    let l = StdListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local address").port()
}

/// A `paystate-server` child process.
pub struct Server {
    pub port: u16,
    pub config: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    pub opts: Options,
    pub http: reqwest::Client,
}

impl Server {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts the process with extra environment variables (a failpoint) and waits for it.
    pub async fn start(&mut self, env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the server log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_paystate-server"));
        cmd.arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log);
        cmd.env_remove("PAYSTATE_FAILPOINT");
        for (k, v) in &self.opts.extra_env {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn paystate-server"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self
                .http
                .get(format!("{}/healthz", self.base()))
                .send()
                .await
                && r.status().is_success()
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "paystate-server exited at start-up ({status}): {}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "paystate-server did not start: {}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `SIGKILL`s the process and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits (bounded) for the process to exit by itself (a failpoint killed it).
    pub async fn wait_exit(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    self.child = None;
                    return true;
                }
            } else {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A signed merchant request.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        idem: Option<&str>,
    ) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let ts = unix_now().to_string();
        let nonce = format!("n{:016x}", rand::random::<u64>());
        let sig = auth::sign(
            API_SECRET.as_bytes(),
            &ts,
            &nonce,
            method,
            path,
            body.as_bytes(),
        );
        let mut req = self
            .http
            .request(
                method.parse().expect("a method"),
                format!("{}{path}", self.base()),
            )
            .header("x-paystate-key", API_KEY)
            .header("x-paystate-timestamp", &ts)
            .header("x-paystate-nonce", &nonce)
            .header("x-paystate-signature", sig)
            .body(body);
        if let Some(k) = idem {
            req = req.header("idempotency-key", k);
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A signed `POST` whose connection may die (a failpoint kills the server): `None` then.
    pub async fn call_may_fail(
        &self,
        method: &str,
        path: &str,
        body: &Value,
        idem: &str,
    ) -> Option<u16> {
        let body = body.to_string();
        let ts = unix_now().to_string();
        let nonce = format!("n{:016x}", rand::random::<u64>());
        let sig = auth::sign(
            API_SECRET.as_bytes(),
            &ts,
            &nonce,
            method,
            path,
            body.as_bytes(),
        );
        self.http
            .request(
                method.parse().expect("a method"),
                format!("{}{path}", self.base()),
            )
            .header("x-paystate-key", API_KEY)
            .header("x-paystate-timestamp", &ts)
            .header("x-paystate-nonce", &nonce)
            .header("x-paystate-signature", sig)
            .header("idempotency-key", idem)
            .body(body)
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }

    pub async fn create(
        &self,
        order_id: &str,
        amount: &str,
        extra: &[(&str, Value)],
    ) -> (u16, Value) {
        let mut body = serde_json::json!({
            "order_id": order_id,
            "provider": "alipay",
            "amount": amount,
            "currency": "CNY",
            "subject": "Green tea, 500 g",
        });
        if let Some(obj) = body.as_object_mut() {
            for (k, v) in extra {
                obj.insert((*k).to_owned(), v.clone());
            }
        }
        self.call("POST", "/v1/payments", Some(&body), None).await
    }

    /// Creates a WeChat Pay payment (`provider: "wechatpay"`, CNY).
    pub async fn create_wechat(
        &self,
        order_id: &str,
        amount: &str,
        extra: &[(&str, Value)],
    ) -> (u16, Value) {
        let mut body = serde_json::json!({
            "order_id": order_id,
            "provider": "wechatpay",
            "amount": amount,
            "currency": "CNY",
            "subject": "Green tea, 500 g",
        });
        if let Some(obj) = body.as_object_mut() {
            for (k, v) in extra {
                obj.insert((*k).to_owned(), v.clone());
            }
        }
        self.call("POST", "/v1/payments", Some(&body), None).await
    }

    pub async fn view(&self, order_id: &str) -> Value {
        let (status, v) = self
            .call("GET", &format!("/v1/payments/{order_id}"), None, None)
            .await;
        assert_eq!(status, 200, "GET {order_id}: {v}");
        v
    }

    /// Polls the view until `pred` holds (bounded: 30 s).
    pub async fn wait_for(
        &self,
        order_id: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.view(order_id).await;
            if pred(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{order_id}: waited 30 s for {what}; last view {v}\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// POSTs a raw notification body to `/notify/alipay`; returns the reply body.
    pub async fn notify(&self, body: &str) -> String {
        self.http
            .post(format!("{}/notify/alipay", self.base()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
            .await
            .expect("the server answers")
            .text()
            .await
            .unwrap_or_default()
    }

    /// The value of one counter line of `/metrics`, 0 when absent.
    pub async fn metric(&self, name_and_labels: &str) -> f64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.base()))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .unwrap_or_default();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name_and_labels)
                    .and_then(|rest| rest.trim().parse::<f64>().ok())
            })
            .unwrap_or(0.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Env {
    /// `n` servers with `opts` on this environment's one database and simulator, each on a
    /// port of its own, all answering `/healthz` (a fleet behind a load balancer).
    pub async fn servers(&self, n: usize, opts: Options) -> Vec<Server> {
        let mut servers = Vec::with_capacity(n);
        for _ in 0..n {
            servers.push(self.server(opts.clone()).await);
        }
        servers
    }
}

/// A TCP proxy on a loopback port in front of `target` that holds each chunk of every answer
/// for a random 0..=`max_ms` milliseconds: a provider whose answers are slow on the way back,
/// so that an instance can die after the provider acted and before it heard of it. Returns
/// the proxy's address.
pub async fn slow_proxy(target: SocketAddr, max_ms: u64) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let addr = listener.local_addr().expect("the proxy's address");
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let Ok(upstream) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut upstream_read, mut upstream_write) = upstream.into_split();
                let up = async {
                    let _ = tokio::io::copy(&mut client_read, &mut upstream_write).await;
                    let _ = upstream_write.shutdown().await;
                };
                let down = async {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match upstream_read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let ms = rand::random_range(0..=max_ms);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = client_write.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    addr
}

/// One signed merchant request with its timestamp and nonce fixed: sent again, to any
/// instance, it is a replay.
#[derive(Debug, Clone)]
pub struct Signed {
    pub method: String,
    pub path: String,
    pub body: String,
    pub ts: String,
    pub nonce: String,
    pub signature: String,
    pub idem: Option<String>,
}

impl Signed {
    /// `method path` with `body` (empty for none) and an optional `Idempotency-Key`, signed
    /// now with a fresh nonce.
    pub fn new(method: &str, path: &str, body: &str, idem: Option<&str>) -> Signed {
        let ts = unix_now().to_string();
        let nonce = format!("n{:016x}", rand::random::<u64>());
        let signature = auth::sign(
            API_SECRET.as_bytes(),
            &ts,
            &nonce,
            method,
            path,
            body.as_bytes(),
        );
        Signed {
            method: method.to_owned(),
            path: path.to_owned(),
            body: body.to_owned(),
            ts,
            nonce,
            signature,
            idem: idem.map(str::to_owned),
        }
    }

    /// The same request (method, path, body, idempotency key) signed again with a fresh
    /// nonce: a retry, not a replay.
    pub fn fresh(&self) -> Signed {
        Signed::new(&self.method, &self.path, &self.body, self.idem.as_deref())
    }
}

/// A server's answer to a merchant request, as received.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The body, byte for byte.
    pub text: String,
    /// The body as JSON (a JSON string of the text when it is not JSON).
    pub json: Value,
    /// Whether `Idempotent-Replayed: true` came with it.
    pub replayed: bool,
}

impl Answer {
    /// The `error` code of an error body.
    pub fn error(&self) -> Option<&str> {
        self.json["error"].as_str()
    }
}

/// Sends `req` to the server at `base` (`http://127.0.0.1:PORT`). `Err` when no answer came:
/// the instance is down, or died while handling it (then the request may or may not have
/// taken effect).
pub async fn send(http: &reqwest::Client, base: &str, req: &Signed) -> Result<Answer, String> {
    let method: reqwest::Method = req.method.parse().map_err(|e| format!("{e}"))?;
    let mut builder = http
        .request(method, format!("{base}{}", req.path))
        .header("x-paystate-key", API_KEY)
        .header("x-paystate-timestamp", &req.ts)
        .header("x-paystate-nonce", &req.nonce)
        .header("x-paystate-signature", &req.signature)
        .body(req.body.clone());
    if let Some(k) = &req.idem {
        builder = builder.header("idempotency-key", k);
    }
    let resp = builder.send().await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let replayed = resp
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let text = resp.text().await.map_err(|e| e.to_string())?;
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
    Ok(Answer {
        status,
        text,
        json,
        replayed,
    })
}

/// POSTs a raw notification body to `base`'s `/notify/alipay`: the reply body, or `Err` when
/// no answer came.
pub async fn send_notify(http: &reqwest::Client, base: &str, body: &str) -> Result<String, String> {
    let resp = http
        .post(format!("{base}/notify/alipay"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    if status == 200 {
        Ok(text)
    } else {
        Ok(format!("HTTP {status}: {text}"))
    }
}

/// One row of `payments`, as stored.
#[derive(Debug, Clone)]
pub struct PaymentRow {
    pub order_id: String,
    pub snapshot: Vec<u8>,
    pub status: String,
    pub version: i64,
    pub owes_effect: i32,
}

/// Every stored payment, by order id.
pub async fn payment_rows(pool: &sqlx::AnyPool) -> Vec<PaymentRow> {
    let rows = sqlx::query(
        "SELECT order_id, snapshot, status, version, owes_effect FROM payments ORDER BY order_id",
    )
    .fetch_all(pool)
    .await
    .expect("read payments");
    rows.iter()
        .map(|r| PaymentRow {
            order_id: r.try_get(0).expect("order_id"),
            snapshot: r.try_get(1).expect("snapshot"),
            status: r.try_get(2).expect("status"),
            version: r.try_get(3).expect("version"),
            owes_effect: r.try_get(4).expect("owes_effect"),
        })
        .collect()
}

/// The open outbox rows: `(effect_key, attempts, last_error)`.
pub async fn open_outbox(pool: &sqlx::AnyPool) -> Vec<(String, i64, Option<String>)> {
    let rows = sqlx::query(
        "SELECT effect_key, attempts, last_error FROM outbox WHERE done_at IS NULL ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .expect("read the outbox");
    rows.iter()
        .map(|r| {
            (
                r.try_get(0).expect("effect_key"),
                r.try_get(1).expect("attempts"),
                r.try_get(2).expect("last_error"),
            )
        })
        .collect()
}

/// Waits (bounded: 30 s) for `pred`.
pub async fn eventually(what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pred() {
        assert!(Instant::now() < deadline, "waited 30 s for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn status(v: &Value) -> &str {
    v["status"].as_str().unwrap_or("")
}
