//! `paystate-load`: the load generator behind `docs/server-figures.md`.
//!
//! It starts everything it talks to by itself, on 127.0.0.1 only: the Alipay simulator (in
//! this process), one or more `paystate-server` processes on a fresh database (a SQLite file
//! in a temporary directory, or a new database on the PostgreSQL server named by
//! `--database`), and sends them a bounded number of requests, each loop bounded in count and
//! in time. Every figure is printed beside a baseline measured in the same run.
//!
//! - `notify`: genuine Alipay success notifications (signed by the simulator's key, one per
//!   payment created beforehand) at a fixed concurrency, beside RSA2 verification alone on
//!   the same bodies and a bare compare-and-swap commit loop on the same database;
//! - `scale`: the same notifications against PostgreSQL databases pre-filled with many
//!   payments, and the plans of the server's hot queries;
//! - `outage`: the outbox while the provider is down and late payments keep creating refund
//!   obligations, then the drain after it comes back.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use paystate::alipay::content::SignRule;
use paystate::alipay::form::Form;
use paystate::alipay::notify::Notification;
use paystate::signature::Rsa2PublicKey;
use paystate::{Currency, EventId, Input, Money, Outcome, Payment, Timestamp, snapshot};
use paystate_server::auth;
use paystate_server::sim::{AlipaySim, SimConfig};
use paystate_server::store::{Backend, Db};
use serde_json::{Value, json};
use sqlx::Row as _;

const APP_ID: &str = "2021000000000001";
const SELLER_ID: &str = "2088000000000001";
const API_KEY: &str = "shop";
const API_SECRET: &str = "load-secret-of-the-shop-0123456789";
const BUYER_ID: &str = "2088102177846880";
/// Every payment of the workload is for this amount.
const AMOUNT: &str = "10.00";
const SUBJECT: &str = "Green tea, 500 g";
/// The longest any one phase may run, whatever the counts: the loops stop by themselves.
const PHASE_LIMIT: Duration = Duration::from_secs(600);

type Res<T> = Result<T, String>;

#[derive(Parser)]
#[command(
    name = "paystate-load",
    about = "Load generator for paystate-server (loopback only; it starts what it measures)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Genuine Alipay notifications against N instances, beside RSA2 verification alone and a
    /// bare commit loop, measured in the same run.
    Notify(NotifyArgs),
    /// The notification workload on PostgreSQL databases pre-filled with N payments each;
    /// EXPLAIN of the hot queries on the largest.
    Scale(ScaleArgs),
    /// The outbox while the simulated Alipay is down and late payments create refund
    /// obligations; the backlog over time and the drain after recovery.
    Outage(OutageArgs),
}

#[derive(Args, Clone)]
struct Common {
    /// `sqlite` (a file in a temporary directory) or a `postgres://` URL of a server on
    /// 127.0.0.1, on which a fresh database is created for each run and dropped after it.
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// The server binary (default: `paystate-server` beside this executable).
    #[arg(long)]
    server: Option<PathBuf>,
    /// The directory of the test-only keys (default: the package's `keys/`).
    #[arg(long)]
    keys: Option<PathBuf>,
    /// A command prefix for the server, split at spaces (`valgrind --tool=callgrind`).
    #[arg(long)]
    wrap: Option<String>,
    /// How long a server may take to answer `/healthz` after it is started.
    #[arg(long, default_value_t = 30)]
    start_timeout_secs: u64,
    /// `RUST_LOG` for the servers (their JSON logs go to files in the temporary directory).
    #[arg(long, default_value = "info")]
    rust_log: String,
    /// `[workers] max_connections` of each server.
    #[arg(long, default_value_t = 16)]
    max_connections: u32,
    /// Keep the temporary directory (server logs, SQLite files) and print where it is.
    #[arg(long)]
    keep: bool,
}

#[derive(Args)]
struct NotifyArgs {
    #[command(flatten)]
    common: Common,
    /// Server instances on the one database.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Notifications per run (one per payment, each payment created for it).
    #[arg(long, default_value_t = 10_000)]
    payments: usize,
    /// Notifications sent first and not counted, per run.
    #[arg(long, default_value_t = 500)]
    warmup: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Runs, each on a fresh database with fresh servers.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// How the payments are created: through the merchant API (`api`) or inserted directly
    /// into the database (`insert`).
    #[arg(long, default_value = "api")]
    create: CreateMode,
    /// Skip the baselines (for a profile of the server alone).
    #[arg(long)]
    no_baselines: bool,
}

#[derive(Args)]
struct ScaleArgs {
    #[command(flatten)]
    common: Common,
    /// Stored payments in each database, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,100000,1000000")]
    sizes: Vec<u64>,
    /// Notifications per size and round.
    #[arg(long, default_value_t = 5_000)]
    payments: usize,
    /// Notifications sent first and not counted, per size and round.
    #[arg(long, default_value_t = 300)]
    warmup: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Rounds; each round measures every size once, in turn.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// How the measured payments are created (`api` or `insert`).
    #[arg(long, default_value = "api")]
    create: CreateMode,
    /// Only fill the largest size and print the plans of the hot queries.
    #[arg(long)]
    explain_only: bool,
}

#[derive(Args)]
struct OutageArgs {
    #[command(flatten)]
    common: Common,
    /// Late payments made while the provider is down (each one a refund obligation).
    #[arg(long, default_value_t = 600)]
    payments: usize,
    /// How long the provider is down.
    #[arg(long, default_value_t = 60)]
    down_secs: u64,
    /// `[workers] retry_base_ms` of the server.
    #[arg(long, default_value_t = 1000)]
    retry_base_ms: u64,
    /// `[workers] retry_max_ms` of the server.
    #[arg(long, default_value_t = 8000)]
    retry_max_ms: u64,
    /// `[workers] outbox_interval_ms` of the server.
    #[arg(long, default_value_t = 500)]
    outbox_interval_ms: u64,
    /// How often the backlog is sampled.
    #[arg(long, default_value_t = 1000)]
    sample_ms: u64,
    /// The longest wait for the backlog to drain after recovery.
    #[arg(long, default_value_t = 300)]
    drain_timeout_secs: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CreateMode {
    Api,
    Insert,
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores())
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("paystate-load: cannot start the runtime: {e}");
            std::process::exit(2);
        }
    };
    let result = runtime.block_on(async move {
        match cli.cmd {
            Cmd::Notify(a) => notify_cmd(a).await,
            Cmd::Scale(a) => scale_cmd(a).await,
            Cmd::Outage(a) => outage_cmd(a).await,
        }
    });
    if let Err(e) = result {
        eprintln!("paystate-load: {e}");
        std::process::exit(1);
    }
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ------------------------------------------------------------------------------------------
// The environment: the simulator, the servers, the databases.

/// What one invocation shares: a temporary directory, the simulator, the HTTP client.
struct Env {
    dir: tempfile::TempDir,
    sim: AlipaySim,
    http: reqwest::Client,
    server_bin: PathBuf,
    keys: PathBuf,
    common: Common,
    postgres: Option<String>,
}

/// The server's `[workers]` section.
#[derive(Clone, Copy)]
struct Workers {
    outbox_interval_ms: u64,
    retry_base_ms: u64,
    retry_max_ms: u64,
    sweep_interval_ms: u64,
    query_after_secs: u64,
    poll_interval_ms: u64,
}

impl Default for Workers {
    fn default() -> Self {
        // The documented defaults, but for the query poller, which would otherwise ask the
        // simulator about every payment of a long run.
        Workers {
            outbox_interval_ms: 500,
            retry_base_ms: 1000,
            retry_max_ms: 300_000,
            sweep_interval_ms: 1000,
            query_after_secs: 3600,
            poll_interval_ms: 5000,
        }
    }
}

impl Env {
    async fn new(common: &Common) -> Res<Env> {
        let postgres = match common.database.as_str() {
            "sqlite" => None,
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                if !loopback_url(url) {
                    return Err(format!(
                        "--database {url}: only a PostgreSQL server on 127.0.0.1 or localhost"
                    ));
                }
                Some(url.to_owned())
            }
            other => {
                return Err(format!(
                    "--database {other:?}: expected sqlite or a postgres:// URL"
                ));
            }
        };
        let server_bin = match &common.server {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(|e| format!("cannot find this executable: {e}"))?
                .with_file_name("paystate-server"),
        };
        if !server_bin.is_file() {
            return Err(format!(
                "{}: no server binary (build it, or pass --server)",
                server_bin.display()
            ));
        }
        let keys = common
            .keys
            .clone()
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("keys"));
        if !keys.join("app_private.pem").is_file() {
            return Err(format!(
                "{}: no app_private.pem (pass --keys)",
                keys.display()
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("paystate-load-")
            .tempdir()
            .map_err(|e| format!("a temporary directory: {e}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("bind the simulator: {e}"))?;
        let sim = AlipaySim::start(SimConfig::test_keys(APP_ID, SELLER_ID), listener)
            .await
            .map_err(|e| format!("start the simulator: {e}"))?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("the HTTP client: {e}"))?;
        Ok(Env {
            dir,
            sim,
            http,
            server_bin,
            keys,
            common: common.clone(),
            postgres,
        })
    }

    fn finish(self) {
        self.sim.shutdown();
        if self.common.keep {
            let kept = self.dir.keep();
            eprintln!("kept {}", kept.display());
        }
    }

    /// A fresh database: a SQLite file, or a new database on the PostgreSQL server.
    async fn fresh_db(&self, tag: &str) -> Res<TestDb> {
        match &self.postgres {
            None => Ok(TestDb {
                url: format!(
                    "sqlite://{}",
                    self.dir.path().join(format!("{tag}.db")).display()
                ),
                admin: None,
            }),
            Some(admin) => {
                let name = format!("pst_load_{tag}_{:08x}", rand::random::<u32>());
                let mut conn = admin_conn(admin).await?;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
                Ok(TestDb {
                    url: format!("{base}/{name}"),
                    admin: Some((admin.clone(), name)),
                })
            }
        }
    }

    fn write_config(&self, port: u16, db_url: &str, w: &Workers) -> Res<PathBuf> {
        let keys = self.keys.display();
        let text = format!(
            r#"listen = "127.0.0.1:{port}"
database = "{db_url}"
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

[workers]
outbox_interval_ms = {oi}
retry_base_ms = {rb}
retry_max_ms = {rm}
sweep_interval_ms = {si}
query_after_secs = {qa}
poll_interval_ms = {pi}
max_connections = {mc}
"#,
            gateway = self.sim.gateway_url(),
            oi = w.outbox_interval_ms,
            rb = w.retry_base_ms,
            rm = w.retry_max_ms,
            si = w.sweep_interval_ms,
            qa = w.query_after_secs,
            pi = w.poll_interval_ms,
            mc = self.common.max_connections,
        );
        let path = self.dir.path().join(format!("server-{port}.toml"));
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    /// Starts `n` servers on `db_url` and waits until each answers `/healthz`.
    async fn start_servers(&self, n: usize, db_url: &str, w: &Workers) -> Res<Vec<Instance>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.start_server(db_url, w).await?);
        }
        Ok(out)
    }

    async fn start_server(&self, db_url: &str, w: &Workers) -> Res<Instance> {
        let port = free_port()?;
        let config = self.write_config(port, db_url, w)?;
        let log = self.dir.path().join(format!("server-{port}.log"));
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let wrap: Vec<&str> = self
            .common
            .wrap
            .as_deref()
            .map(|w| w.split_whitespace().collect())
            .unwrap_or_default();
        let mut cmd = match wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&self.server_bin);
                c
            }
            None => Command::new(&self.server_bin),
        };
        cmd.arg("--config")
            .arg(&config)
            .env("RUST_LOG", &self.common.rust_log)
            .env_remove("PAYSTATE_FAILPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.server_bin.display()))?;
        let mut inst = Instance {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(self.common.start_timeout_secs);
        loop {
            if let Ok(r) = self.http.get(format!("{}/healthz", inst.base)).send().await
                && r.status().is_success()
            {
                return Ok(inst);
            }
            if let Some(child) = inst.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                inst.child = None;
                return Err(format!(
                    "paystate-server exited at start-up ({status}): {}",
                    tail(&inst.log)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "paystate-server did not answer /healthz within {} s: {}",
                    self.common.start_timeout_secs,
                    tail(&inst.log)
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or("");
    let host_part = rest.split(['/', '?']).next().unwrap_or("");
    let host = host_part
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(host_part);
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    host == "127.0.0.1" || host == "localhost" || host == "[::1]"
}

async fn admin_conn(url: &str) -> Res<sqlx::AnyConnection> {
    sqlx::any::install_default_drivers();
    <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .map_err(|e| format!("connect to {url}: {e}"))
}

fn free_port() -> Res<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind port 0: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local address: {e}"))
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

/// A database of one run.
struct TestDb {
    url: String,
    admin: Option<(String, String)>,
}

impl TestDb {
    fn is_postgres(&self) -> bool {
        self.admin.is_some()
    }

    async fn pool(&self, n: u32) -> Res<Db> {
        Db::connect(&self.url, n)
            .await
            .map_err(|e| format!("connect to {}: {e}", self.url))
    }

    async fn count(&self, db: &Db, sql: &str) -> Res<i64> {
        let row = sqlx::query(sql)
            .fetch_one(&db.pool)
            .await
            .map_err(|e| format!("{sql}: {e}"))?;
        row.try_get::<i64, _>(0).map_err(|e| format!("{sql}: {e}"))
    }

    /// Drops a PostgreSQL database (its servers stopped first).
    async fn drop_db(self) -> Res<()> {
        if let Some((admin, name)) = self.admin {
            let mut conn = admin_conn(&admin).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .map_err(|e| format!("DROP DATABASE {name}: {e}"))?;
        }
        Ok(())
    }
}

/// A `paystate-server` child process.
struct Instance {
    child: Option<Child>,
    base: String,
    log: PathBuf,
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
#[derive(Debug, Clone, Copy, Default)]
struct Mem {
    rss_kib: u64,
    hwm_kib: u64,
}

impl Instance {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn mem(&self) -> Mem {
        self.pid().map(proc_mem).unwrap_or_default()
    }

    /// `SIGTERM`, then waits (bounded) for a clean exit (a profiler writes its output then);
    /// `SIGKILL` if it does not come.
    async fn stop(&mut self, within: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn stop_all(servers: &mut [Instance]) {
    for s in servers.iter_mut() {
        s.stop(Duration::from_secs(120)).await;
    }
}

/// CPU time (user + system) of a process so far, in clock ticks (`/proc/<pid>/stat`).
fn proc_cpu_ticks(pid: &str) -> u64 {
    let (user, system) = proc_cpu_split(pid);
    user.saturating_add(system)
}

/// User and system CPU time of a process so far, in clock ticks (`/proc/<pid>/stat`).
fn proc_cpu_split(pid: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) and its closing parenthesis:
    // state is the first, utime the twelfth, stime the thirteenth.
    let rest = text.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field(11), field(12))
}

/// Where the machine's CPU time went, in clock ticks: the servers, every `postgres`
/// process, this process (the load generator and the simulator), and the whole machine
/// (busy, and all ticks of all cores).
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    servers: u64,
    servers_sys: u64,
    postgres_sys: u64,
    postgres: u64,
    me: u64,
    busy: u64,
    /// Interrupts and soft interrupts (loopback networking is partly here), and time stolen
    /// by the hypervisor: busy, but no process's.
    irq_steal: u64,
    total: u64,
}

impl Cpu {
    fn now(servers: &[u32]) -> Cpu {
        let split: Vec<(u64, u64)> = servers
            .iter()
            .map(|p| proc_cpu_split(&p.to_string()))
            .collect();
        let servers = split.iter().map(|(u, s)| u + s).sum();
        let servers_sys = split.iter().map(|(_, s)| s).sum();
        let mut postgres = 0u64;
        let mut postgres_sys = 0u64;
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let name = entry.file_name();
                let Some(pid) = name
                    .to_str()
                    .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                else {
                    continue;
                };
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim_end() == "postgres" {
                    let (u, s) = proc_cpu_split(pid);
                    postgres = postgres.saturating_add(u + s);
                    postgres_sys = postgres_sys.saturating_add(s);
                }
            }
        }
        let me = proc_cpu_ticks("self");
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let cpu: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let total: u64 = cpu.iter().take(8).sum();
        let at = |i: usize| cpu.get(i).copied().unwrap_or(0);
        let idle = at(3) + at(4);
        let irq_steal = at(5) + at(6) + at(7);
        Cpu {
            servers,
            servers_sys,
            postgres_sys,
            postgres,
            me,
            busy: total.saturating_sub(idle),
            irq_steal,
            total,
        }
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            servers: self.servers.saturating_sub(before.servers),
            servers_sys: self.servers_sys.saturating_sub(before.servers_sys),
            postgres_sys: self.postgres_sys.saturating_sub(before.postgres_sys),
            postgres: self.postgres.saturating_sub(before.postgres),
            me: self.me.saturating_sub(before.me),
            busy: self.busy.saturating_sub(before.busy),
            irq_steal: self.irq_steal.saturating_sub(before.irq_steal),
            total: self.total.saturating_sub(before.total),
        }
    }

    /// Each share of all the machine's CPU time over the interval, in per cent:
    /// (servers, postgres, load generator, other processes, interrupts and steal, idle).
    fn shares(&self) -> [f64; 6] {
        let t = self.total.max(1) as f64;
        let pct = |v: u64| v as f64 * 100.0 / t;
        let mine = self.servers + self.postgres + self.me;
        [
            pct(self.servers),
            pct(self.postgres),
            pct(self.me),
            pct(self
                .busy
                .saturating_sub(mine)
                .saturating_sub(self.irq_steal)),
            pct(self.irq_steal),
            pct(self.total.saturating_sub(self.busy)),
        ]
    }

    /// The kernel's part (system time) of the servers' and of PostgreSQL's CPU, in per cent.
    fn system_shares(&self) -> [f64; 2] {
        let pct = |part: u64, whole: u64| part as f64 * 100.0 / whole.max(1) as f64;
        [
            pct(self.servers_sys, self.servers),
            pct(self.postgres_sys, self.postgres),
        ]
    }

    /// CPU milliseconds per request of the servers, PostgreSQL and the load generator.
    fn per_request_ms(&self, n: usize) -> [f64; 3] {
        // SAFETY: sysconf has no memory-safety preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let per = |v: u64| v as f64 * 1e3 / hz / n.max(1) as f64;
        [per(self.servers), per(self.postgres), per(self.me)]
    }
}

fn proc_mem(pid: u32) -> Mem {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0)
    };
    Mem {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    }
}

// ------------------------------------------------------------------------------------------
// The merchant API and the payments.

static NONCE: AtomicU64 = AtomicU64::new(0);

/// A signed merchant request; the status and the parsed body.
async fn call(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> Res<(u16, Value)> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let ts = unix_now().to_string();
    let nonce = format!(
        "l{:x}-{:x}",
        NONCE.fetch_add(1, Ordering::Relaxed),
        rand::random::<u64>()
    );
    let sig = auth::sign(
        API_SECRET.as_bytes(),
        &ts,
        &nonce,
        method.as_str(),
        path,
        body.as_bytes(),
    );
    let resp = http
        .request(method.clone(), format!("{base}{path}"))
        .header("x-paystate-key", API_KEY)
        .header("x-paystate-timestamp", &ts)
        .header("x-paystate-nonce", &nonce)
        .header("x-paystate-signature", sig)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp
        .text()
        .await
        .map_err(|e| format!("{method} {path}: reading the answer: {e}"))?;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

/// The order ids of one batch: `{prefix}-0000001`, … (they sort in order, so a batch is a
/// key range).
fn order_ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:07}")).collect()
}

/// Creates the payments through the merchant API, `concurrency` at a time, spread over the
/// servers, each for its amount in `amounts` ([`AMOUNT`] where there is none). Returns each
/// payment's `pay_url`.
async fn create_api(
    env: &Env,
    bases: &[String],
    ids: &[String],
    amounts: &[String],
    concurrency: usize,
) -> Res<Vec<String>> {
    let ids = Arc::new(ids.to_vec());
    let amounts = Arc::new(amounts.to_vec());
    let bases = Arc::new(bases.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + PHASE_LIMIT;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (ids, amounts, bases, next, http) = (
            ids.clone(),
            amounts.clone(),
            bases.clone(),
            next.clone(),
            env.http.clone(),
        );
        set.spawn(async move {
            let mut urls = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (Some(id), false) = (ids.get(i), Instant::now() > deadline) else {
                    return Ok::<_, String>(urls);
                };
                let Some(base) = bases.get(i % bases.len().max(1)) else {
                    return Err("no server to send to".to_string());
                };
                let body = json!({
                    "order_id": id, "provider": "alipay",
                    "amount": amounts.get(i).map(String::as_str).unwrap_or(AMOUNT),
                    "currency": "CNY", "subject": SUBJECT,
                });
                let (status, v) = call(
                    &http,
                    base,
                    reqwest::Method::POST,
                    "/v1/payments",
                    Some(&body),
                )
                .await?;
                if status != 201 {
                    return Err(format!("create {id}: HTTP {status}: {v}"));
                }
                let url = v["pay_url"]
                    .as_str()
                    .ok_or_else(|| format!("create {id}: no pay_url in {v}"))?;
                urls.push((i, url.to_owned()));
            }
        });
    }
    let mut all = Vec::with_capacity(ids.len());
    while let Some(r) = set.join_next().await {
        all.extend(r.map_err(|e| format!("a creating task failed: {e}"))??);
    }
    if all.len() != ids.len() {
        return Err(format!(
            "created {} payments of {} within {} s",
            all.len(),
            ids.len(),
            PHASE_LIMIT.as_secs()
        ));
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, u)| u).collect())
}

/// The snapshot of a fresh payment of [`AMOUNT`] yuan, and of a paid one.
fn snapshots(now: Timestamp, deadline: Option<Timestamp>) -> Res<(Vec<u8>, Vec<u8>)> {
    let amount = Money::parse(AMOUNT, Currency::CNY).map_err(|e| format!("amount: {e}"))?;
    let mut payment = Payment::new(amount, now).map_err(|e| format!("a payment: {e}"))?;
    if let Some(at) = deadline {
        payment = payment.with_deadline(at);
    }
    let mut buf = [0u8; snapshot::MAX_SIZE];
    let fresh = snapshot::encode(&payment, &mut buf)
        .map_err(|e| format!("encode: {e}"))?
        .to_vec();
    let event = EventId::new(b"fill-notify-id").map_err(|e| format!("event id: {e}"))?;
    let mut paid = Payment::new(amount, now).map_err(|e| format!("a payment: {e}"))?;
    match paid.apply(&Input::succeed(event, amount), now) {
        Outcome::Applied(_) => {}
        other => return Err(format!("succeed on a fresh payment: {}", other.name())),
    }
    let paid = snapshot::encode(&paid, &mut buf)
        .map_err(|e| format!("encode: {e}"))?
        .to_vec();
    Ok((fresh, paid))
}

/// Inserts fresh Alipay payments directly, as the server's create would store them (without
/// the `pay_url`), 500 rows a transaction.
async fn create_insert(db: &Db, ids: &[String]) -> Res<()> {
    let now = unix_now();
    let (fresh, _) = snapshots(Timestamp::from_secs(now), None)?;
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    for chunk in ids.chunks(500) {
        let mut tx = db.begin_write().await.map_err(|e| format!("begin: {e}"))?;
        for id in chunk {
            sqlx::query(
                "INSERT INTO payments (order_id, provider, snapshot, status, version, expires_at, \
                 owes_effect, subject, created_at, updated_at, query_at) \
                 VALUES ($1, 'alipay', $2, 'pending', 0, NULL, 0, $3, $4, $4, $5)",
            )
            .bind(id)
            .bind(fresh.clone())
            .bind(SUBJECT)
            .bind(now)
            .bind(now.saturating_add(3600))
            .execute(&mut *tx)
            .await
            .map_err(|e| format!("insert {id}: {e}"))?;
        }
        tx.commit().await.map_err(|e| format!("commit: {e}"))?;
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Genuine notifications.

/// `yyyy-MM-dd HH:mm:ss` in Beijing time (UTC+8), as Alipay writes its times.
fn beijing(unix: u64) -> String {
    let t = unix.saturating_add(8 * 3600);
    let (days, secs) = (t / 86_400, t % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The `TRADE_SUCCESS` notification of each order, with the fields the simulator sends, signed
/// by the simulator's key (rule V1), on every core at once.
fn sign_notes(sim: &AlipaySim, ids: &[String]) -> Res<Vec<String>> {
    let now = unix_now();
    let (created, paid) = (beijing(now.saturating_sub(60)), beijing(now));
    let date: String = created
        .chars()
        .filter(char::is_ascii_digit)
        .take(8)
        .collect();
    let threads = cores();
    let per = ids.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = ids
            .chunks(per)
            .map(|chunk| {
                let (sim, created, paid, date) = (sim.clone(), &created, &paid, &date);
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|id| {
                            let notify_id = format!("{:032x}", rand::random::<u128>());
                            let trade_no =
                                format!("{date}2200{:016}", rand::random::<u64>() % 10u64.pow(16));
                            let fund = format!(
                                r#"[{{"amount":"{AMOUNT}","fundChannel":"ALIPAYACCOUNT"}}]"#
                            );
                            sim.sign_notification(&[
                                ("gmt_create", created),
                                ("charset", "utf-8"),
                                ("gmt_payment", paid),
                                ("notify_time", paid),
                                ("subject", SUBJECT),
                                ("buyer_id", BUYER_ID),
                                ("invoice_amount", AMOUNT),
                                ("version", "1.0"),
                                ("notify_id", &notify_id),
                                ("fund_bill_list", &fund),
                                ("notify_type", "trade_status_sync"),
                                ("out_trade_no", id),
                                ("total_amount", AMOUNT),
                                ("trade_status", "TRADE_SUCCESS"),
                                ("trade_no", &trade_no),
                                ("auth_app_id", APP_ID),
                                ("receipt_amount", AMOUNT),
                                ("point_amount", "0.00"),
                                ("buyer_pay_amount", AMOUNT),
                                ("app_id", APP_ID),
                                ("sign_type", "RSA2"),
                                ("seller_id", SELLER_ID),
                            ])
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for h in handles {
            out.extend(
                h.join()
                    .map_err(|_| "a signing thread panicked".to_string())?,
            );
        }
        Ok(out)
    })
}

/// The baseline: what the server does first with each body, alone — decode the form and
/// `Notification::verify` it (RSA2) — on as many threads as cores. Returns verifications/s.
fn verify_alone(key: &Rsa2PublicKey, bodies: &[String]) -> Res<f64> {
    let threads = cores();
    let per = bodies.len().div_ceil(threads).max(1);
    let start = Instant::now();
    let failures: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = bodies
            .chunks(per)
            .map(|chunk| {
                scope.spawn(move || {
                    let mut bad = 0usize;
                    for body in chunk {
                        let mut buf = vec![0u8; body.len()];
                        let form: Result<Form<'_>, _> = Form::decode(body.as_bytes(), &mut buf);
                        let ok = match form {
                            Ok(form) => Notification::verify(&form, SignRule::V1, key).is_ok(),
                            Err(_) => false,
                        };
                        if !ok {
                            bad += 1;
                        }
                    }
                    bad
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(usize::MAX / 2))
            .sum()
    });
    let secs = start.elapsed().as_secs_f64();
    if failures > 0 {
        return Err(format!(
            "{failures} of {} notification bodies did not verify",
            bodies.len()
        ));
    }
    Ok(bodies.len() as f64 / secs)
}

fn sim_public_key(keys: &Path) -> Res<Rsa2PublicKey> {
    let path = keys.join("alipay_sim_public.pem");
    let pem = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Rsa2PublicKey::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
}

// ------------------------------------------------------------------------------------------
// Load.

/// What one timed phase did.
#[derive(Debug, Clone)]
struct Phase {
    sent: usize,
    ok: usize,
    first_error: Option<String>,
    elapsed: Duration,
    /// Per-request latencies, sorted.
    latencies: Vec<Duration>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn pct(&self, q: f64) -> Duration {
        percentile(&self.latencies, q)
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Posts every body to `/notify/alipay`, `concurrency` at a time, the bodies spread over the
/// servers in turn. A reply other than HTTP 200 `success` is a failure.
async fn send_notes(
    http: &reqwest::Client,
    bases: &[String],
    bodies: &[String],
    concurrency: usize,
) -> Phase {
    let bodies: Arc<Vec<String>> = Arc::new(bodies.to_vec());
    let urls: Arc<Vec<String>> =
        Arc::new(bases.iter().map(|b| format!("{b}/notify/alipay")).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + PHASE_LIMIT;
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (bodies, urls, next, http) = (bodies.clone(), urls.clone(), next.clone(), http.clone());
        set.spawn(async move {
            let mut lat = Vec::new();
            let mut sent = 0usize;
            let mut error = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (Some(body), false) = (bodies.get(i), Instant::now() > deadline) else {
                    break;
                };
                sent += 1;
                let t = Instant::now();
                let reply = http
                    .post(urls.get(i % urls.len().max(1)).map_or("", String::as_str))
                    .header(
                        "content-type",
                        "application/x-www-form-urlencoded; charset=utf-8",
                    )
                    .body(body.clone())
                    .send()
                    .await;
                let outcome = match reply {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        match r.text().await {
                            Ok(text) if status == 200 && text == "success" => Ok(()),
                            Ok(text) => Err(format!("HTTP {status}: {text:?}")),
                            Err(e) => Err(format!("reading the reply: {e}")),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                match outcome {
                    Ok(()) => lat.push(t.elapsed()),
                    Err(e) => {
                        error.get_or_insert(e);
                    }
                }
            }
            (sent, lat, error)
        });
    }
    let mut phase = Phase {
        sent: 0,
        ok: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    while let Some(r) = set.join_next().await {
        match r {
            Ok((sent, lat, error)) => {
                phase.sent += sent;
                phase.ok += lat.len();
                phase.latencies.extend(lat);
                if phase.first_error.is_none() {
                    phase.first_error = error;
                }
            }
            Err(e) => {
                phase
                    .first_error
                    .get_or_insert(format!("a sending task failed: {e}"));
            }
        }
    }
    phase.elapsed = start.elapsed();
    phase.latencies.sort_unstable();
    phase
}

/// The bound on the database side: `UPDATE payments SET version = version + 1 WHERE
/// order_id = $1 AND version = $2`, one row per transaction (begun as the server begins its
/// writes), `concurrency` transactions at once, once for each of `ids`.
async fn bare_commits(db: &Db, ids: &[String], concurrency: usize) -> Res<Phase> {
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        let row = sqlx::query("SELECT version FROM payments WHERE order_id = $1")
            .bind(id)
            .fetch_one(&db.pool)
            .await
            .map_err(|e| format!("version of {id}: {e}"))?;
        let v: i64 = row
            .try_get(0)
            .map_err(|e| format!("version of {id}: {e}"))?;
        rows.push((id.clone(), v));
    }
    let rows = Arc::new(rows);
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + PHASE_LIMIT;
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (rows, next, db) = (rows.clone(), next.clone(), db.clone());
        set.spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (Some((id, v)), false) = (rows.get(i), Instant::now() > deadline) else {
                    return Ok::<_, String>(lat);
                };
                let t = Instant::now();
                let mut tx = db.begin_write().await.map_err(|e| format!("begin: {e}"))?;
                let done = sqlx::query(
                    "UPDATE payments SET version = version + 1 WHERE order_id = $1 AND version = $2",
                )
                .bind(id)
                .bind(*v)
                .execute(&mut *tx)
                .await
                .map_err(|e| format!("update {id}: {e}"))?;
                if done.rows_affected() != 1 {
                    return Err(format!("update {id}: version {v} not found"));
                }
                tx.commit().await.map_err(|e| format!("commit {id}: {e}"))?;
                lat.push(t.elapsed());
            }
        });
    }
    let mut phase = Phase {
        sent: rows.len(),
        ok: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    while let Some(r) = set.join_next().await {
        let lat = r.map_err(|e| format!("a committing task failed: {e}"))??;
        phase.ok += lat.len();
        phase.latencies.extend(lat);
    }
    phase.elapsed = start.elapsed();
    phase.latencies.sort_unstable();
    Ok(phase)
}

/// Samples the largest `VmRSS` of each pid every 100 ms until `stop` is set.
fn sample_rss(pids: Vec<u32>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<u64>> {
    tokio::spawn(async move {
        let mut max = vec![0u64; pids.len()];
        let deadline = Instant::now() + PHASE_LIMIT;
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            for (m, pid) in max.iter_mut().zip(&pids) {
                *m = (*m).max(proc_mem(*pid).rss_kib);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        max
    })
}

// ------------------------------------------------------------------------------------------
// Reporting.

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// `median (min–max)` of the values, with `prec` decimals.
fn spread(values: &[f64], prec: usize) -> String {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return "–".into();
    }
    v.sort_by(f64::total_cmp);
    let med = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    if v.len() == 1 {
        return format!("{med:.prec$}");
    }
    format!("{med:.prec$} ({:.prec$}–{:.prec$})", v[0], v[v.len() - 1])
}

/// Every request of the phase succeeded (a phase of nothing is fine only for a warm-up).
fn check(phase: &Phase, what: &str) -> Res<()> {
    if phase.ok != phase.sent || (phase.sent == 0 && !what.starts_with("warm-up")) {
        return Err(format!(
            "{what}: {} of {} succeeded; first error: {}",
            phase.ok,
            phase.sent,
            phase
                .first_error
                .as_deref()
                .unwrap_or("none (stopped at the time limit)")
        ));
    }
    Ok(())
}

/// The release binary's size, as built and stripped (by `strip`, if installed).
fn binary_sizes(bin: &Path, dir: &Path) -> (u64, Option<u64>) {
    let size = std::fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
    let out = dir.join("paystate-server.stripped");
    let stripped = Command::new("strip")
        .arg("-o")
        .arg(&out)
        .arg(bin)
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&out).ok())
        .map(|m| m.len());
    (size, stripped)
}

// ------------------------------------------------------------------------------------------
// `notify`.

struct NotifyRun {
    create_secs: f64,
    sign_secs: f64,
    verify: Option<f64>,
    load: Phase,
    bare: Option<Phase>,
    idle: Vec<Mem>,
    peak_rss: Vec<u64>,
    after: Vec<Mem>,
    cpu: Cpu,
}

/// Counts that must be at least one.
fn at_least_one(what: &[(&str, usize)]) -> Res<()> {
    match what.iter().find(|(_, n)| *n == 0) {
        Some((name, _)) => Err(format!("--{name} must be at least 1")),
        None => Ok(()),
    }
}

async fn notify_cmd(a: NotifyArgs) -> Res<()> {
    at_least_one(&[
        ("instances", a.instances),
        ("payments", a.payments),
        ("concurrency", a.concurrency),
        ("runs", a.runs),
    ])?;
    let env = Env::new(&a.common).await?;
    let key = sim_public_key(&env.keys)?;
    let backend = if env.postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "# notify: {} instance(s) on {backend}, {} notifications a run (+{} warm-up), concurrency {}, {} run(s), payments created by {}, {} cores",
        a.instances,
        a.payments,
        a.warmup,
        a.concurrency,
        a.runs,
        match a.create {
            CreateMode::Api => "the merchant API",
            CreateMode::Insert => "direct insert",
        },
        cores()
    );
    let mut runs = Vec::new();
    for r in 0..a.runs {
        let run = notify_run(&env, &a, &key, r).await?;
        println!(
            "run {}: {:.0} notifications/s (p50 {} ms, p99 {} ms, max {} ms); verify alone {}; bare commits {}; set-up: create {:.1} s, sign {:.1} s",
            r + 1,
            run.load.rate(),
            ms(run.load.pct(0.5)),
            ms(run.load.pct(0.99)),
            ms(run.load.pct(1.0)),
            run.verify
                .map(|v| format!("{v:.0}/s"))
                .unwrap_or_else(|| "–".into()),
            run.bare
                .as_ref()
                .map(|b| format!(
                    "{:.0}/s (p50 {} ms, p99 {} ms)",
                    b.rate(),
                    ms(b.pct(0.5)),
                    ms(b.pct(0.99))
                ))
                .unwrap_or_else(|| "–".into()),
            run.create_secs,
            run.sign_secs,
        );
        for (i, ((idle, peak), after)) in run
            .idle
            .iter()
            .zip(&run.peak_rss)
            .zip(&run.after)
            .enumerate()
        {
            println!(
                "  instance {}: idle VmRSS {} MiB (VmHWM {} MiB); under load VmRSS max {} MiB, VmHWM {} MiB",
                i + 1,
                mib(idle.rss_kib),
                mib(idle.hwm_kib),
                mib(*peak),
                mib(after.hwm_kib)
            );
        }
        let [sv, pg, me, other, irq, idle] = run.cpu.shares();
        let [sv_ms, pg_ms, me_ms] = run.cpu.per_request_ms(run.load.ok);
        println!(
            "  CPU during the load, share of both cores: servers {sv:.0} %, postgres {pg:.0} %, load generator {me:.0} %, other processes {other:.0} %, interrupts and steal {irq:.0} %, idle {idle:.0} %; CPU per notification: servers {sv_ms:.3} ms, postgres {pg_ms:.3} ms, load generator {me_ms:.3} ms"
        );
        runs.push(run);
    }
    let col =
        |f: &dyn Fn(&NotifyRun) -> Option<f64>| -> Vec<f64> { runs.iter().filter_map(f).collect() };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n| measure | median (min–max) over {} runs |",
        runs.len()
    );
    let _ = writeln!(out, "|---|---|");
    let rows: Vec<(&str, Vec<f64>, usize)> = vec![
        ("notifications/s", col(&|r| Some(r.load.rate())), 0),
        (
            "p50 latency (ms)",
            col(&|r| Some(r.load.pct(0.5).as_secs_f64() * 1e3)),
            2,
        ),
        (
            "p99 latency (ms)",
            col(&|r| Some(r.load.pct(0.99).as_secs_f64() * 1e3)),
            2,
        ),
        ("RSA2 verifications/s alone", col(&|r| r.verify), 0),
        (
            "notifications / verifications",
            col(&|r| r.verify.map(|v| r.load.rate() / v)),
            3,
        ),
        (
            "bare commits/s",
            col(&|r| r.bare.as_ref().map(Phase::rate)),
            0,
        ),
        (
            "bare commit p50 (ms)",
            col(&|r| r.bare.as_ref().map(|b| b.pct(0.5).as_secs_f64() * 1e3)),
            2,
        ),
        (
            "bare commit p99 (ms)",
            col(&|r| r.bare.as_ref().map(|b| b.pct(0.99).as_secs_f64() * 1e3)),
            2,
        ),
        (
            "notifications / bare commits",
            col(&|r| r.bare.as_ref().map(|b| r.load.rate() / b.rate())),
            3,
        ),
        (
            "VmRSS idle, instance 1 (MiB)",
            col(&|r| r.idle.first().map(|m| m.rss_kib as f64 / 1024.0)),
            1,
        ),
        (
            "VmRSS max under load, instance 1 (MiB)",
            col(&|r| r.peak_rss.first().map(|m| *m as f64 / 1024.0)),
            1,
        ),
        (
            "VmHWM after load, instance 1 (MiB)",
            col(&|r| r.after.first().map(|m| m.hwm_kib as f64 / 1024.0)),
            1,
        ),
        (
            "CPU share during the load: servers (%)",
            col(&|r| Some(r.cpu.shares()[0])),
            0,
        ),
        (
            "CPU share during the load: postgres (%)",
            col(&|r| Some(r.cpu.shares()[1])),
            0,
        ),
        (
            "CPU share during the load: load generator (%)",
            col(&|r| Some(r.cpu.shares()[2])),
            0,
        ),
        (
            "CPU share during the load: other processes (%)",
            col(&|r| Some(r.cpu.shares()[3])),
            0,
        ),
        (
            "CPU share during the load: interrupts and steal (%)",
            col(&|r| Some(r.cpu.shares()[4])),
            0,
        ),
        (
            "CPU share during the load: idle (%)",
            col(&|r| Some(r.cpu.shares()[5])),
            0,
        ),
        (
            "server CPU per notification (ms)",
            col(&|r| Some(r.cpu.per_request_ms(r.load.ok)[0])),
            3,
        ),
        (
            "postgres CPU per notification (ms)",
            col(&|r| Some(r.cpu.per_request_ms(r.load.ok)[1])),
            3,
        ),
        (
            "system (kernel) part of the servers' CPU (%)",
            col(&|r| Some(r.cpu.system_shares()[0])),
            0,
        ),
        (
            "system (kernel) part of postgres' CPU (%)",
            col(&|r| Some(r.cpu.system_shares()[1])),
            0,
        ),
        (
            "set-up: creating the payments (s)",
            col(&|r| Some(r.create_secs)),
            1,
        ),
        (
            "set-up: signing the notifications (s)",
            col(&|r| Some(r.sign_secs)),
            1,
        ),
    ];
    for (name, values, prec) in rows {
        if !values.is_empty() {
            let _ = writeln!(out, "| {name} | {} |", spread(&values, prec));
        }
    }
    let (size, stripped) = binary_sizes(&env.server_bin, env.dir.path());
    let _ = writeln!(
        out,
        "\nserver binary: {} bytes ({} MiB), stripped {}",
        size,
        mib(size / 1024),
        stripped
            .map(|s| format!("{s} bytes ({} MiB)", mib(s / 1024)))
            .unwrap_or_else(|| "n/a (no strip)".into())
    );
    print!("{out}");
    env.finish();
    Ok(())
}

async fn notify_run(env: &Env, a: &NotifyArgs, key: &Rsa2PublicKey, r: usize) -> Res<NotifyRun> {
    let db = env.fresh_db(&format!("notify{r}")).await?;
    let workers = Workers::default();
    let mut servers = env.start_servers(a.instances, &db.url, &workers).await?;
    let result = notify_measure(env, a, key, r, &db, &servers).await;
    stop_all(&mut servers).await;
    drop(servers);
    db.drop_db().await?;
    result
}

async fn notify_measure(
    env: &Env,
    a: &NotifyArgs,
    key: &Rsa2PublicKey,
    r: usize,
    db: &TestDb,
    servers: &[Instance],
) -> Res<NotifyRun> {
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    // Idle: started, schema made, the start-up scan done, nothing served yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle: Vec<Mem> = servers.iter().map(Instance::mem).collect();
    let warm_ids = order_ids(&format!("w{r}"), a.warmup);
    let ids = order_ids(&format!("r{r}"), a.payments);
    // The bare loop's pool has as many connections as one server (its tasks queue for them
    // as the server's requests do).
    let pool = db.pool(a.common.max_connections).await?;
    let t = Instant::now();
    match a.create {
        CreateMode::Api => {
            create_api(env, &bases, &warm_ids, &[], a.concurrency).await?;
            create_api(env, &bases, &ids, &[], a.concurrency).await?;
        }
        CreateMode::Insert => {
            create_insert(&pool, &warm_ids).await?;
            create_insert(&pool, &ids).await?;
        }
    }
    let create_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let warm_notes = sign_notes(&env.sim, &warm_ids)?;
    let notes = sign_notes(&env.sim, &ids)?;
    let sign_secs = t.elapsed().as_secs_f64();
    let verify = if a.no_baselines {
        None
    } else {
        Some(verify_alone(key, &notes)?)
    };
    let warm = send_notes(&env.http, &bases, &warm_notes, a.concurrency).await;
    check(&warm, "warm-up notifications")?;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss(
        servers.iter().filter_map(Instance::pid).collect(),
        stop.clone(),
    );
    let pids: Vec<u32> = servers.iter().filter_map(Instance::pid).collect();
    let cpu_before = Cpu::now(&pids);
    let load = send_notes(&env.http, &bases, &notes, a.concurrency).await;
    let cpu = Cpu::now(&pids).since(cpu_before);
    stop.store(true, Ordering::Relaxed);
    let peak_rss = sampler.await.unwrap_or_default();
    let after: Vec<Mem> = servers.iter().map(Instance::mem).collect();
    check(&load, "notifications")?;
    let paid = db
        .count(
            &pool,
            &format!(
                "SELECT COUNT(*) FROM payments WHERE status = 'succeeded' AND order_id >= 'r{r}-' AND order_id < 'r{r}.'"
            ),
        )
        .await?;
    if usize::try_from(paid).ok() != Some(ids.len()) {
        return Err(format!(
            "{paid} of {} payments succeeded after their notification",
            ids.len()
        ));
    }
    let bare = if a.no_baselines {
        None
    } else {
        let b = bare_commits(&pool, &ids, a.concurrency).await?;
        check(&b, "bare commits")?;
        Some(b)
    };
    pool.pool.close().await;
    Ok(NotifyRun {
        create_secs,
        sign_secs,
        verify,
        load,
        bare,
        idle,
        peak_rss,
        after,
        cpu,
    })
}

// ------------------------------------------------------------------------------------------
// `scale`.

/// Fills a PostgreSQL database with `n` payments in bulk (`INSERT … SELECT generate_series`):
/// nine in ten paid, one in ten open with a deadline and a query time a month away (so they
/// sit in the sweeper's and the poller's partial indexes without being due); and beside them,
/// as a server that took those payments would have, a done outbox row for one payment in ten,
/// an open one for one payment in a thousand (a refund failing for a month, its next attempt a
/// month away), a finished idempotency key for one in ten, a live nonce for one in ten and a
/// refund request for one in a hundred. Then `VACUUM (ANALYZE)` and `CHECKPOINT`.
async fn fill(db: &Db, n: u64) -> Res<()> {
    if db.backend != Backend::Postgres {
        return Err("the bulk fill is for PostgreSQL".into());
    }
    let now = unix_now();
    let later = now + 30 * 86_400;
    let (open, paid) = snapshots(Timestamp::from_secs(now), Some(Timestamp::from_secs(later)))?;
    let (_, paid_no_deadline) = snapshots(Timestamp::from_secs(now), None)?;
    drop(paid);
    let (now, later) = (
        i64::try_from(now).unwrap_or(i64::MAX),
        i64::try_from(later).unwrap_or(i64::MAX),
    );
    let n = i64::try_from(n).map_err(|_| "size too large".to_string())?;
    let step: i64 = 200_000;
    let mut from = 1;
    while from <= n {
        let to = (from + step - 1).min(n);
        sqlx::query(
            "INSERT INTO payments (order_id, provider, snapshot, status, version, expires_at, \
             owes_effect, subject, created_at, updated_at, query_at) \
             SELECT 'fill-' || lpad(g::text, 8, '0'), 'alipay', \
             CASE WHEN g % 10 = 0 THEN $1 ELSE $2 END, \
             CASE WHEN g % 10 = 0 THEN 'pending' ELSE 'succeeded' END, \
             CASE WHEN g % 10 = 0 THEN 0 ELSE 1 END, \
             CASE WHEN g % 10 = 0 THEN $3 ELSE NULL END, 0, $4, $5, $5, \
             CASE WHEN g % 10 = 0 THEN $3 ELSE NULL END \
             FROM generate_series($6, $7) AS g",
        )
        .bind(open.clone())
        .bind(paid_no_deadline.clone())
        .bind(later)
        .bind(SUBJECT)
        .bind(now)
        .bind(from)
        .bind(to)
        .execute(&db.pool)
        .await
        .map_err(|e| format!("fill payments {from}..={to}: {e}"))?;
        from = to + 1;
    }
    let tenth = (n / 10).max(1);
    let fills = [
        (
            "outbox",
            "INSERT INTO outbox (effect_key, order_id, kind, refund_id, amount, attempts, \
             next_attempt_at, lease_until, done_at, last_error, created_at) \
             SELECT 'fill-' || lpad((g * 10 + 1)::text, 8, '0') || '/refund/fr' || g, \
             'fill-' || lpad((g * 10 + 1)::text, 8, '0'), 'refund', 'fr' || g, 100, 1, $1, 0, $1, NULL, $1 \
             FROM generate_series(0, $2 - 1) AS g",
        ),
        (
            "open outbox rows",
            "INSERT INTO outbox (effect_key, order_id, kind, refund_id, amount, attempts, \
             next_attempt_at, lease_until, done_at, last_error, created_at) \
             SELECT 'fill-' || lpad((g * 1000 + 3)::text, 8, '0') || '/refund/fo' || g, \
             'fill-' || lpad((g * 1000 + 3)::text, 8, '0'), 'refund', 'fo' || g, 100, 12, \
             $1 + 30 * 86400, 0, NULL, 'HTTP 503', $1 \
             FROM generate_series(0, $2 / 100 - 1) AS g",
        ),
        (
            "idempotency_keys",
            "INSERT INTO idempotency_keys (api_key, idem_key, fingerprint, state, lease_until, \
             status, body, created_at) \
             SELECT 'shop', 'fill-key-' || g, md5(g::text), 'done', 0, 201, '{}', $1 \
             FROM generate_series(1, $2) AS g",
        ),
        (
            "nonces",
            "INSERT INTO nonces (api_key, nonce, expires_at) \
             SELECT 'shop', 'fill-nonce-' || g, $1 + 300 FROM generate_series(1, $2) AS g",
        ),
        (
            "refund_requests",
            "INSERT INTO refund_requests (order_id, refund_id, amount, created_at) \
             SELECT 'fill-' || lpad((g * 100 + 1)::text, 8, '0'), 'fr' || g, 100, $1 \
             FROM generate_series(1, $2 / 10) AS g",
        ),
    ];
    for (table, sql) in fills {
        sqlx::query(sql)
            .bind(now)
            .bind(tenth)
            .execute(&db.pool)
            .await
            .map_err(|e| format!("fill {table}: {e}"))?;
    }
    // As a database that took those payments over time would be: statistics known, hint bits
    // and the visibility map set, the fill's pages written out (so neither a first read nor a
    // checkpoint of the fill falls inside the measurement).
    for sql in ["VACUUM (ANALYZE)", "CHECKPOINT"] {
        sqlx::raw_sql(sql)
            .execute(&db.pool)
            .await
            .map_err(|e| format!("{sql}: {e}"))?;
    }
    Ok(())
}

/// The server's hot statements, as it sends them, with parameter types and sample values for
/// `PREPARE`.
const HOT_QUERIES: &[(&str, &str, &str, &str)] = &[
    (
        "load a payment by order_id (every input)",
        "SELECT provider, snapshot, version FROM payments WHERE order_id = $1",
        "text",
        "'fill-00000007'",
    ),
    (
        "the payment's refund requests (every input)",
        "SELECT refund_id, amount FROM refund_requests WHERE order_id = $1 ORDER BY created_at, refund_id",
        "text",
        "'fill-00000101'",
    ),
    (
        "compare-and-swap of the snapshot (every applied input)",
        "UPDATE payments SET snapshot = $1, status = $2, version = $3, expires_at = $4, \
         owes_effect = $5, updated_at = $6, query_at = CASE WHEN $7 = 1 THEN query_at ELSE NULL END \
         WHERE order_id = $8 AND version = $9",
        "bytea, text, bigint, bigint, integer, bigint, integer, text, bigint",
        "'\\x00', 'succeeded', 2, NULL, 0, 0, 0, 'fill-00000007', 1",
    ),
    (
        "insert an outbox row (every effect)",
        "INSERT INTO outbox (effect_key, order_id, kind, refund_id, amount, attempts, \
         next_attempt_at, lease_until, created_at) VALUES ($1, $2, $3, $4, $5, 0, $6, 0, $6) \
         ON CONFLICT (effect_key) DO UPDATE SET done_at = NULL, attempts = 0, \
         next_attempt_at = excluded.next_attempt_at, amount = excluded.amount, last_error = NULL \
         WHERE outbox.done_at IS NOT NULL",
        "text, text, text, text, bigint, bigint",
        "'x/close_trade', 'x', 'close_trade', NULL, NULL, 0",
    ),
    (
        "outbox claim (every outbox pass)",
        "UPDATE outbox SET lease_until = $1 WHERE id IN (SELECT id FROM outbox \
         WHERE done_at IS NULL AND next_attempt_at <= $2 AND lease_until < $2 \
         ORDER BY next_attempt_at, id LIMIT 16 FOR UPDATE SKIP LOCKED) \
         RETURNING id, order_id, kind, refund_id, amount, attempts, lease_until",
        "bigint, bigint",
        "{now}+30, {now}",
    ),
    (
        "outbox backlog gauge (every outbox pass)",
        "SELECT COUNT(*) FROM outbox WHERE done_at IS NULL",
        "",
        "",
    ),
    (
        "deadline sweeper",
        "SELECT order_id FROM payments WHERE status IN ('pending', 'processing') \
         AND expires_at IS NOT NULL AND expires_at <= $1 ORDER BY expires_at LIMIT 100",
        "bigint",
        "{now}",
    ),
    (
        "query poller",
        "SELECT order_id, query_at FROM payments WHERE query_at IS NOT NULL AND query_at <= $1 \
         AND status IN ('pending', 'processing') AND provider = 'alipay' ORDER BY query_at LIMIT 20",
        "bigint",
        "{now}",
    ),
    (
        "obligation scan (start-up, every minute)",
        "SELECT order_id FROM payments WHERE owes_effect = 1",
        "",
        "",
    ),
    (
        "nonce insert (every merchant request)",
        "INSERT INTO nonces (api_key, nonce, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (api_key, nonce) DO NOTHING",
        "text, text, bigint",
        "'shop', 'n1', {now}+300",
    ),
    (
        "expired nonces (every minute)",
        "DELETE FROM nonces WHERE expires_at < $1",
        "bigint",
        "{now}",
    ),
    (
        "expired idempotency keys (every minute)",
        "DELETE FROM idempotency_keys WHERE state = 'done' AND created_at < $1",
        "bigint",
        "{now}-86400",
    ),
    (
        "idempotency key lookup (POST with Idempotency-Key)",
        "SELECT fingerprint, state, lease_until, status, body FROM idempotency_keys \
         WHERE api_key = $1 AND idem_key = $2",
        "text, text",
        "'shop', 'fill-key-7'",
    ),
];

/// Prints the plan PostgreSQL chooses for each hot statement, as a prepared statement with
/// the generic plan (what a long-lived connection's cached statement ends up using) and with
/// a custom plan for the sample values; flags any sequential scan.
async fn explain(url: &str) -> Res<bool> {
    let mut conn = admin_conn(url).await?;
    let mut all_indexed = true;
    for (i, (name, sql, types, values)) in HOT_QUERIES.iter().enumerate() {
        println!("\n#### {name}\n\n```sql\n{sql}\n```\n");
        let stmt = format!("hot{i}");
        let prepare = if types.is_empty() {
            format!("PREPARE {stmt} AS {sql}")
        } else {
            format!("PREPARE {stmt} ({types}) AS {sql}")
        };
        sqlx::raw_sql(&prepare)
            .execute(&mut conn)
            .await
            .map_err(|e| format!("{prepare}: {e}"))?;
        for mode in ["force_generic_plan", "force_custom_plan"] {
            let exec = if values.is_empty() {
                format!("EXECUTE {stmt}")
            } else {
                let values = values.replace("{now}", &unix_now().to_string());
                format!("EXECUTE {stmt}({values})")
            };
            let set = format!("SET plan_cache_mode = {mode}");
            sqlx::raw_sql(&set)
                .execute(&mut conn)
                .await
                .map_err(|e| format!("{set}: {e}"))?;
            let text = format!("EXPLAIN (COSTS OFF) {exec}");
            let rows = sqlx::raw_sql(&text)
                .fetch_all(&mut conn)
                .await
                .map_err(|e| format!("{text}: {e}"))?;
            let mut plan = Vec::with_capacity(rows.len());
            for row in rows {
                let line: String = row.try_get(0).map_err(|e| format!("{text}: {e}"))?;
                plan.push(line);
            }
            let seq = plan.iter().any(|l| l.contains("Seq Scan"));
            all_indexed &= !seq;
            println!(
                "{} plan{}:\n```\n{}\n```",
                if mode == "force_generic_plan" {
                    "generic"
                } else {
                    "custom"
                },
                if seq { " — SEQUENTIAL SCAN" } else { "" },
                plan.join("\n")
            );
        }
        sqlx::raw_sql(&format!("DEALLOCATE {stmt}"))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("DEALLOCATE {stmt}: {e}"))?;
    }
    Ok(all_indexed)
}

async fn scale_cmd(a: ScaleArgs) -> Res<()> {
    at_least_one(&[("payments", a.payments), ("concurrency", a.concurrency)])?;
    if a.sizes.contains(&0) {
        return Err("--sizes must be at least 1 each".into());
    }
    let env = Env::new(&a.common).await?;
    if env.postgres.is_none() {
        return Err("scale: pass --database postgres://… (the fill is for PostgreSQL)".into());
    }
    let mut sizes = a.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    if a.explain_only {
        sizes = sizes.last().copied().into_iter().collect();
    }
    println!(
        "# scale: PostgreSQL with {sizes:?} stored payments, {} notifications per size and round (+{} warm-up), concurrency {}, {} round(s), {} cores",
        a.payments,
        a.warmup,
        a.concurrency,
        a.rounds,
        cores()
    );
    let mut dbs = Vec::new();
    for &n in &sizes {
        let db = env.fresh_db(&format!("s{n}")).await?;
        let pool = db.pool(4).await?;
        let t = Instant::now();
        fill(&pool, n).await?;
        let bytes: i64 = sqlx::query("SELECT pg_database_size(current_database())")
            .fetch_one(&pool.pool)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| format!("database size: {e}"))?;
        println!(
            "filled {n} payments in {:.1} s (database {} MiB)",
            t.elapsed().as_secs_f64(),
            mib(u64::try_from(bytes).unwrap_or(0) / 1024)
        );
        pool.pool.close().await;
        dbs.push((n, db));
    }
    let key = sim_public_key(&env.keys)?;
    let mut results: BTreeMap<u64, Vec<(Phase, f64)>> = BTreeMap::new();
    let rounds = if a.explain_only { 0 } else { a.rounds };
    for round in 0..rounds {
        for (n, db) in &dbs {
            let mut servers = env.start_servers(1, &db.url, &Workers::default()).await?;
            let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
            let measured = async {
                let warm_ids = order_ids(&format!("sw{round}"), a.warmup);
                let ids = order_ids(&format!("s{round}"), a.payments);
                match a.create {
                    CreateMode::Api => {
                        create_api(&env, &bases, &warm_ids, &[], a.concurrency).await?;
                        create_api(&env, &bases, &ids, &[], a.concurrency).await?;
                    }
                    CreateMode::Insert => {
                        let pool = db.pool(4).await?;
                        create_insert(&pool, &warm_ids).await?;
                        create_insert(&pool, &ids).await?;
                        pool.pool.close().await;
                    }
                }
                let warm = sign_notes(&env.sim, &warm_ids)?;
                let notes = sign_notes(&env.sim, &ids)?;
                let verify = verify_alone(&key, &notes)?;
                check(
                    &send_notes(&env.http, &bases, &warm, a.concurrency).await,
                    "warm-up",
                )?;
                let load = send_notes(&env.http, &bases, &notes, a.concurrency).await;
                check(&load, "notifications")?;
                Ok::<_, String>((load, verify))
            }
            .await;
            stop_all(&mut servers).await;
            let (load, verify) = measured?;
            println!(
                "round {} size {n}: {:.0} notifications/s, p50 {} ms, p99 {} ms (verify alone {verify:.0}/s)",
                round + 1,
                load.rate(),
                ms(load.pct(0.5)),
                ms(load.pct(0.99))
            );
            results.entry(*n).or_default().push((load, verify));
        }
    }
    if !results.is_empty() {
        let small = sizes.first().copied().unwrap_or(0);
        let base: Vec<(f64, f64)> = results
            .get(&small)
            .map(|v| {
                v.iter()
                    .map(|(p, _)| (secs(p.pct(0.5)), secs(p.pct(0.99))))
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "\n| stored payments | notifications/s | p50 (ms) | p99 (ms) | p50 / p50 at {small} | p99 / p99 at {small} |"
        );
        println!("|---|---|---|---|---|---|");
        for (n, v) in &results {
            let rate: Vec<f64> = v.iter().map(|(p, _)| p.rate()).collect();
            let p50: Vec<f64> = v.iter().map(|(p, _)| secs(p.pct(0.5)) * 1e3).collect();
            let p99: Vec<f64> = v.iter().map(|(p, _)| secs(p.pct(0.99)) * 1e3).collect();
            // Ratios within a round: the same round measured each size in turn.
            let r50: Vec<f64> = v
                .iter()
                .zip(&base)
                .map(|((p, _), (b50, _))| secs(p.pct(0.5)) / b50)
                .collect();
            let r99: Vec<f64> = v
                .iter()
                .zip(&base)
                .map(|((p, _), (_, b99))| secs(p.pct(0.99)) / b99)
                .collect();
            println!(
                "| {n} | {} | {} | {} | {} | {} |",
                spread(&rate, 0),
                spread(&p50, 2),
                spread(&p99, 2),
                spread(&r50, 2),
                spread(&r99, 2)
            );
        }
    }
    if let Some((n, db)) = dbs.last() {
        println!("\n### Plans at {n} stored payments (PostgreSQL, after ANALYZE)");
        let indexed = explain(&db.url).await?;
        println!(
            "\nevery hot statement uses an index: {}",
            if indexed { "yes" } else { "NO" }
        );
    }
    for (_, db) in dbs {
        db.drop_db().await?;
    }
    env.finish();
    Ok(())
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

// ------------------------------------------------------------------------------------------
// `outage`.

/// One sample of the backlog.
struct Sample {
    at: f64,
    gauge: f64,
    open_rows: i64,
    refunds_done: usize,
}

async fn backlog_gauge(http: &reqwest::Client, base: &str) -> f64 {
    let Ok(resp) = http.get(format!("{base}/metrics")).send().await else {
        return f64::NAN;
    };
    let text = resp.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("paystate_outbox_backlog ")
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .unwrap_or(f64::NAN)
}

async fn outage_cmd(a: OutageArgs) -> Res<()> {
    at_least_one(&[("payments", a.payments)])?;
    let env = Env::new(&a.common).await?;
    let db = env.fresh_db("outage").await?;
    let workers = Workers {
        outbox_interval_ms: a.outbox_interval_ms,
        retry_base_ms: a.retry_base_ms,
        retry_max_ms: a.retry_max_ms,
        ..Workers::default()
    };
    let mut servers = env.start_servers(1, &db.url, &workers).await?;
    let result = outage_measure(&env, &a, &db, &servers).await;
    stop_all(&mut servers).await;
    drop(servers);
    db.drop_db().await?;
    env.finish();
    result
}

async fn outage_measure(env: &Env, a: &OutageArgs, db: &TestDb, servers: &[Instance]) -> Res<()> {
    let base = servers.first().map(|s| s.base.clone()).ok_or("no server")?;
    println!(
        "# outage: 1 instance on {}, {} late payments over {} s of outage, retry_base_ms {}, retry_max_ms {}, outbox_interval_ms {}",
        if db.is_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        a.payments,
        a.down_secs,
        a.retry_base_ms,
        a.retry_max_ms,
        a.outbox_interval_ms
    );
    // Before the outage: the payments exist and their trades are open at the simulator.
    let ids = order_ids("late", a.payments);
    // A fen more for each payment: the engine derives a late refund's request number from the
    // payment's creation second, amount, deadline and policy (docs/spec.md), so distinct
    // amounts give every obligation its own number and `refunds_effected` counts one each.
    let amounts: Vec<String> = (0..ids.len())
        .map(|i| format!("{}.{:02}", 10 + i / 100, i % 100))
        .collect();
    let urls = create_api(env, std::slice::from_ref(&base), &ids, &amounts, 16).await?;
    for (id, url) in ids.iter().zip(&urls) {
        env.sim
            .open(url)
            .await
            .map_err(|e| format!("open {id} at the simulator: {e}"))?;
    }
    let pool = db.pool(4).await?;
    let open_rows = "SELECT COUNT(*) FROM outbox WHERE done_at IS NULL";
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let sampler = {
        let (http, base, stop, pool, sim, ids) = (
            env.http.clone(),
            base.clone(),
            stop.clone(),
            pool.clone(),
            env.sim.clone(),
            ids.clone(),
        );
        let every = Duration::from_millis(a.sample_ms.max(100));
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let deadline = Instant::now() + PHASE_LIMIT * 2;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let gauge = backlog_gauge(&http, &base).await;
                let open = match sqlx::query(open_rows).fetch_one(&pool.pool).await {
                    Ok(row) => row.try_get::<i64, _>(0).unwrap_or(-1),
                    Err(_) => -1,
                };
                let refunds_done = ids
                    .iter()
                    .filter(|id| sim.trade(id).is_some_and(|t| !t.refunds.is_empty()))
                    .count();
                samples.push(Sample {
                    at: t0.elapsed().as_secs_f64(),
                    gauge,
                    open_rows: open,
                    refunds_done,
                });
                tokio::time::sleep(every).await;
            }
            samples
        })
    };
    // The outage: each payment is cancelled (a close is owed) and then paid anyway (a late
    // success: a refund is owed), at an even pace over the outage.
    env.sim.set_down(true);
    let down = Duration::from_secs(a.down_secs);
    for (i, id) in ids.iter().enumerate() {
        let at = t0 + down.mul_f64(i as f64 / ids.len().max(1) as f64);
        tokio::time::sleep_until(at.into()).await;
        let (status, v) = call(
            &env.http,
            &base,
            reqwest::Method::POST,
            &format!("/v1/payments/{id}/cancel"),
            None,
        )
        .await?;
        if status != 200 {
            return Err(format!("cancel {id}: HTTP {status}: {v}"));
        }
        env.sim
            .pay_late(id)
            .await
            .map_err(|e| format!("pay {id} late: {e}"))?;
    }
    tokio::time::sleep_until((t0 + down).into()).await;
    let at_recovery = TestDb::count(db, &pool, open_rows).await?;
    env.sim.set_down(false);
    let t1 = Instant::now();
    // The drain: until no row is open and every payment is refunded (bounded).
    let drain_deadline = t1 + Duration::from_secs(a.drain_timeout_secs);
    let mut drained_at = None;
    while Instant::now() < drain_deadline {
        let open = TestDb::count(db, &pool, open_rows).await?;
        let refunded = TestDb::count(
            db,
            &pool,
            "SELECT COUNT(*) FROM payments WHERE order_id LIKE 'late-%' AND status = 'refunded'",
        )
        .await?;
        if open == 0 && usize::try_from(refunded).ok() == Some(ids.len()) {
            drained_at = Some(t1.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(a.sample_ms.max(100) * 2)).await;
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.await.unwrap_or_default();
    // Nothing lost, nothing twice: every obligation refunded exactly once at the provider.
    let mut once = 0usize;
    let mut problems = Vec::new();
    for id in &ids {
        let row =
            sqlx::query("SELECT refund_id FROM outbox WHERE order_id = $1 AND kind = 'refund'")
                .bind(id)
                .fetch_all(&pool.pool)
                .await
                .map_err(|e| format!("refund rows of {id}: {e}"))?;
        if row.len() != 1 {
            problems.push(format!("{id}: {} refund rows", row.len()));
            continue;
        }
        let refund_id: Option<String> = row[0].try_get(0).map_err(|e| format!("{id}: {e}"))?;
        let refund_id = refund_id.unwrap_or_default();
        let effected = env.sim.refunds_effected(&refund_id);
        let trade_refunds = env.sim.trade(id).map(|t| t.refunds.len()).unwrap_or(0);
        if effected == 1 && trade_refunds == 1 {
            once += 1;
        } else {
            problems.push(format!(
                "{id}: refund {refund_id} effected {effected} times, trade has {trade_refunds} refunds"
            ));
        }
    }
    let refund_rows_total = TestDb::count(
        db,
        &pool,
        "SELECT COUNT(*) FROM outbox WHERE kind = 'refund'",
    )
    .await?;
    let close_rows_total = TestDb::count(
        db,
        &pool,
        "SELECT COUNT(*) FROM outbox WHERE kind = 'close_trade'",
    )
    .await?;
    pool.pool.close().await;
    println!(
        "\n| t (s) | phase | paystate_outbox_backlog | open outbox rows | trades refunded at the provider |"
    );
    println!("|---|---|---|---|---|");
    let down_s = a.down_secs as f64;
    let stride = (5000 / a.sample_ms.max(100)).max(1) as usize;
    for (i, s) in samples.iter().enumerate() {
        let last = i + 1 == samples.len();
        // Every fifth second while down, every sample during the drain.
        if i % stride == 0 || last || (s.at >= down_s && s.open_rows != 0) {
            println!(
                "| {:.1} | {} | {} | {} | {} |",
                s.at,
                if s.at < down_s { "down" } else { "up" },
                if s.gauge.is_nan() {
                    "–".to_string()
                } else {
                    format!("{:.0}", s.gauge)
                },
                s.open_rows,
                s.refunds_done
            );
        }
    }
    let peak = samples.iter().map(|s| s.open_rows).max().unwrap_or(0);
    println!(
        "\nopen rows at recovery: {at_recovery}; peak: {peak}; outbox rows: {refund_rows_total} refund, {close_rows_total} close_trade"
    );
    match drained_at {
        Some(d) => println!(
            "drained in {:.1} s after recovery: {:.1} rows/s ({at_recovery} rows)",
            d.as_secs_f64(),
            at_recovery as f64 / d.as_secs_f64().max(1e-9)
        ),
        None => println!(
            "NOT drained within {} s after recovery",
            a.drain_timeout_secs
        ),
    }
    println!(
        "refunded exactly once at the provider: {once} of {}; problems: {}",
        ids.len(),
        problems.len()
    );
    for p in problems.iter().take(10) {
        println!("  {p}");
    }
    if drained_at.is_none() || once != ids.len() {
        return Err("the outbox did not carry out every obligation exactly once".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_time_is_utc_plus_eight() {
        assert_eq!(beijing(0), "1970-01-01 08:00:00");
        // 2024-02-29 16:30:05 UTC, a leap day.
        assert_eq!(beijing(1_709_224_205), "2024-03-01 00:30:05");
    }

    #[test]
    fn percentiles_are_ranks() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&v, 1.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn only_loopback_databases() {
        assert!(loopback_url("postgres://postgres@127.0.0.1:55433/postgres"));
        assert!(loopback_url("postgres://u:p@localhost/db"));
        assert!(!loopback_url("postgres://postgres@10.0.0.5:5432/postgres"));
        assert!(!loopback_url("postgres://db.example.com/x"));
    }

    #[test]
    fn spread_is_median_and_range() {
        assert_eq!(spread(&[3.0, 1.0, 2.0], 0), "2 (1–3)");
        assert_eq!(spread(&[4.0], 1), "4.0");
        assert_eq!(spread(&[], 1), "–");
    }

    #[test]
    fn fill_snapshots_decode() {
        let now = Timestamp::from_secs(1_700_000_000);
        let (fresh, paid) = snapshots(now, Some(Timestamp::from_secs(1_700_086_400)))
            .unwrap_or_else(|e| panic!("{e}"));
        let fresh = snapshot::decode(&fresh).unwrap_or_else(|e| panic!("{e}"));
        let paid = snapshot::decode(&paid).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fresh.status().name(), "pending");
        assert_eq!(paid.status().name(), "succeeded");
    }
}
