//! `paystate-server`: the service host of the paystate engine.
//!
//! An HTTP service (axum) that keeps payments in SQLite or PostgreSQL (sqlx), takes the
//! merchant's signed API calls and the providers' notifications, and carries out the engine's
//! effects through an outbox. Everything it decides, the engine decides; this crate is the
//! I/O and the clock. `docs/server.md` in the repository has the whole picture.

pub mod alipay;
pub mod app;
pub mod auth;
pub mod config;
pub mod demo;
pub mod metrics;
pub mod payments;
pub mod reconcile;
pub mod refunds;
pub mod sim;
pub mod store;
pub mod wechatpay;
pub mod workers;

use std::sync::{Arc, Mutex};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use paystate::guard::ReplayGuard;

use crate::app::AppState;
use crate::config::Config;
use crate::store::Db;

/// Why the server did not start: one line, naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration.
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    /// The database could not be reached or prepared.
    #[error("{file}: database: {reason}")]
    Database {
        /// The configuration file.
        file: String,
        /// What went wrong.
        reason: String,
    },
    /// The listen address could not be bound.
    #[error("{file}: listen: cannot listen on {addr}: {reason}")]
    Listen {
        /// The configuration file.
        file: String,
        /// The address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
}

/// Connects to the database and builds the shared state.
///
/// Errors: [`StartError::Database`].
pub async fn prepare(config: Config) -> Result<AppState, StartError> {
    let db = Db::connect(&config.database, config.workers.max_connections)
        .await
        .map_err(|e| StartError::Database {
            file: config.file.display().to_string(),
            reason: e.to_string(),
        })?;
    let alipay = config
        .alipay
        .clone()
        .map(|a| Arc::new(alipay::AlipayClient::new(a, &config.public_url)));
    let wechatpay = config
        .wechatpay
        .clone()
        .map(|w| Arc::new(wechatpay::WechatpayClient::new(w, &config.public_url)));
    Ok(AppState {
        config: Arc::new(config),
        db,
        metrics: Arc::new(metrics::Metrics::new()),
        alipay,
        wechatpay,
        wechat_guard: Arc::new(Mutex::new(ReplayGuard::new())),
    })
}

/// Runs the server until `shutdown` completes: binds the listen address, runs the obligation
/// scan once, starts the background work and serves.
///
/// Errors: [`StartError::Listen`] when the address cannot be bound.
pub async fn serve(
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let listener = tokio::net::TcpListener::bind(&state.config.listen)
        .await
        .map_err(|e| StartError::Listen {
            file: state.config.file.display().to_string(),
            addr: state.config.listen.clone(),
            reason: e.to_string(),
        })?;
    serve_on(state, listener, shutdown).await
}

/// [`serve`] on a listener the caller bound (tests and the demo bind port 0).
///
/// Errors: none today once listening; the signature leaves room for start-up checks.
pub async fn serve_on(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    match workers::scan_obligations(&state).await {
        Ok(n) => tracing::info!(owing = n, "obligation scan at start-up"),
        Err(e) => {
            tracing::error!(error = %e, "obligation scan at start-up failed; retried every minute")
        }
    }
    workers::spawn_all(&state);
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(listen = %addr, "serving");
    let header_timeout = std::time::Duration::from_secs(state.config.http.header_timeout_secs);
    let app = app::router(state);
    // hyper directly rather than `axum::serve`, for the header read timeout: a client that
    // never finishes its request headers (slowloris) is cut off after
    // `[http].header_timeout_secs`; the request timeout of the router starts only once they are in.
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(e) => {
                        // Out of file descriptors, most likely: wait a moment, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = TowerToHyperService::new(app.clone());
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(std::time::Duration::from_secs(30), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 30 s; stopping anyway");
    }
    Ok(())
}
