//! `paystate-server`: serve, reconcile a bill, or run the demo.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use paystate_server::config::Config;

/// The paystate payment service: the merchant API, the providers' notifications, the outbox.
#[derive(Parser)]
#[command(name = "paystate-server", version)]
struct Cli {
    /// The configuration file (TOML); paths in it are relative to it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Compare the stored payments with a provider's bill: one JSON line per discrepancy and
    /// a summary line; exit 0 when there are none, 1 when there are, 2 when the bill cannot be
    /// read.
    Reconcile {
        /// `alipay` (the trade detail CSV, GBK or UTF-8) or `wechatpay` (the trade bill).
        #[arg(long)]
        provider: String,
        /// The bill file, unzipped.
        #[arg(long)]
        bill: PathBuf,
        /// The start of the bill's period, in seconds since the Unix epoch (default: the
        /// period an Alipay bill's header states). Payments created outside the period are
        /// compared only if the bill lists them.
        #[arg(long, requires = "until")]
        since: Option<u64>,
        /// The end of the bill's period (exclusive), in seconds since the Unix epoch.
        #[arg(long, requires = "since")]
        until: Option<u64>,
    },
    /// The whole flow on one machine: the Alipay simulator, the server on a temporary SQLite
    /// database, a payment and its pay_url.
    Demo {
        /// Where the server listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Where the simulated Alipay gateway and cashier listen.
        #[arg(long, default_value = "127.0.0.1:8081")]
        sim_listen: String,
        /// Play the buyer too, and exit once the payment has succeeded.
        #[arg(long)]
        auto_pay: bool,
    },
}

fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("paystate-server: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let Some(path) = cli.config else {
                eprintln!("paystate-server: --config FILE is required");
                return ExitCode::from(2);
            };
            let config = match Config::load(&path) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("paystate-server: {e}");
                    return ExitCode::from(2);
                }
            };
            init_logs("info");
            runtime.block_on(async move {
                let state = match paystate_server::prepare(config).await {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("paystate-server: {e}");
                        return ExitCode::from(2);
                    }
                };
                match paystate_server::serve(state, shutdown_signal()).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("paystate-server: {e}");
                        ExitCode::from(2)
                    }
                }
            })
        }
        Command::Reconcile {
            provider,
            bill,
            since,
            until,
        } => {
            let period = match (since, until) {
                (Some(since), Some(until)) if since < until => {
                    Some(paystate_server::reconcile::Period { since, until })
                }
                (Some(_), Some(_)) => {
                    eprintln!("paystate-server reconcile: --since must be before --until");
                    return ExitCode::from(2);
                }
                _ => None,
            };
            let Some(path) = cli.config else {
                eprintln!("paystate-server: --config FILE is required");
                return ExitCode::from(2);
            };
            let config = match Config::load(&path) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("paystate-server: {e}");
                    return ExitCode::from(2);
                }
            };
            let Some(provider) = paystate_server::payments::Provider::parse(&provider) else {
                eprintln!("paystate-server reconcile: --provider must be alipay or wechatpay");
                return ExitCode::from(2);
            };
            match runtime.block_on(paystate_server::reconcile::run(
                &config, provider, &bill, period,
            )) {
                Ok(report) => {
                    let mut out = std::io::stdout().lock();
                    if let Err(e) = paystate_server::reconcile::print(&report, &mut out) {
                        eprintln!("paystate-server reconcile: {e}");
                        return ExitCode::from(2);
                    }
                    if report.discrepancies.is_empty() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("paystate-server reconcile: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Demo {
            listen,
            sim_listen,
            auto_pay,
        } => {
            init_logs("warn");
            let options = paystate_server::demo::DemoOptions {
                listen,
                sim_listen,
                auto_pay,
            };
            match runtime.block_on(paystate_server::demo::run(options)) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("paystate-server demo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
