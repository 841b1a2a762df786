//! Background work, on every instance, safe to run on many at once:
//!
//! - the **outbox** carries out each effect at the payment's provider (Alipay `trade.close`,
//!   `trade.refund` with `out_request_no` = the refund id; WeChat Pay's close and
//!   `refund/domestic/refunds` with `out_refund_no` = the refund id, through
//!   [`crate::wechatpay`]), verifies the answer and applies the confirmation as an input; a
//!   failure is retried with exponential backoff. Stripe effects are not carried out (the
//!   configuration holds no Stripe API key): their rows stay open and retried. Rows are
//!   claimed with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so an instance that dies
//!   holding one loses it after the lease;
//! - the **obligation scan** (at start-up and every minute) makes sure every effect still in a
//!   payment's `pending_effects()` has an open outbox row, so nothing owed is ever forgotten;
//! - the **deadline sweeper** applies `tick` to every open payment whose deadline passed;
//! - the **query poller** asks Alipay (`alipay.trade.query`) about payments still open some
//!   minutes after their `pay_url` was issued, and applies the answer;
//! - expired nonces, and completed idempotency keys older than a day, are deleted.

use std::time::Duration;

use paystate::alipay::request::TradeRequest;
use paystate::provider::MapError;
use paystate::provider::alipay::Request;
use paystate::provider::wechatpay::{Failure, RefundAnswer};
use paystate::{Input, Money, Outcome, Payment, RefundId, Timestamp};
use sqlx::Row as _;

use crate::alipay::AlipayClient;
use crate::app::{AppState, now};
use crate::metrics::EffectLabels;
use crate::payments::{self, Applied, ApplyError, Provider, Step, secs};
use crate::store::Backend;
use crate::wechatpay::RefundRequest;

/// Starts every background loop on the current runtime.
pub fn spawn_all(state: &AppState) {
    let s = state.clone();
    tokio::spawn(async move { outbox_loop(s).await });
    let s = state.clone();
    tokio::spawn(async move { sweep_loop(s).await });
    let s = state.clone();
    tokio::spawn(async move { poll_loop(s).await });
    let s = state.clone();
    tokio::spawn(async move { obligation_loop(s).await });
}

/// `PAYSTATE_FAILPOINT`, read once: the hooks sit on request and outbox paths.
fn armed_failpoint() -> Option<&'static str> {
    static ARMED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ARMED
        .get_or_init(|| std::env::var("PAYSTATE_FAILPOINT").ok())
        .as_deref()
}

/// A test hook: when the environment variable `PAYSTATE_FAILPOINT` names this point, the
/// process kills itself with `SIGKILL` right here, as a crash would. Used by the crash-safety
/// tests; never set in production.
pub fn failpoint(name: &str) {
    if armed_failpoint().is_some_and(|v| v == name) {
        eprintln!("failpoint {name}: SIGKILL");
        // SAFETY: kill(2) on our own pid with SIGKILL has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// A test hook like [`failpoint`] that stalls instead: when `PAYSTATE_FAILPOINT` is
/// `NAME:sleep`, the caller waits two seconds here, `NAME:sleep=N` N seconds (a slow
/// request, for the idempotency tests).
pub async fn failpoint_sleep(name: &str) {
    let Some(value) = armed_failpoint() else {
        return;
    };
    let Some((point, how)) = value.split_once(':') else {
        return;
    };
    if point != name {
        return;
    }
    let secs = match how {
        "sleep" => 2,
        other => match other
            .strip_prefix("sleep=")
            .and_then(|n| n.parse::<u64>().ok())
        {
            Some(n) => n.min(60),
            None => return,
        },
    };
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

// ------------------------------------------------------------------------------------------
// The outbox.

/// One claimed outbox row.
#[derive(Debug, Clone)]
pub struct Claimed {
    id: i64,
    order_id: String,
    kind: String,
    refund_id: Option<String>,
    amount: Option<i64>,
    attempts: i64,
    lease_until: i64,
}

async fn outbox_loop(state: AppState) {
    let every = Duration::from_millis(state.config.workers.outbox_interval_ms);
    loop {
        match run_outbox_once(&state).await {
            Ok(n) if n > 0 => continue, // more may be due: go again at once
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "outbox pass failed"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Claims the due rows (up to 16), carries them out concurrently, and updates the backlog
/// gauge. Returns how many rows were claimed.
///
/// Errors: the database failed while claiming.
pub async fn run_outbox_once(state: &AppState) -> Result<usize, sqlx::Error> {
    let now = now();
    let lease = secs(now.saturating_add(state.config.workers.lease_secs));
    let skip_locked = match state.db.backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE outbox SET lease_until = $1 WHERE id IN (SELECT id FROM outbox \
         WHERE done_at IS NULL AND next_attempt_at <= $2 AND lease_until < $2 \
         ORDER BY next_attempt_at, id LIMIT 16{skip_locked}) \
         RETURNING id, order_id, kind, refund_id, amount, attempts, lease_until"
    );
    let rows = match state.db.backend {
        Backend::Sqlite => {
            let mut tx = state.db.begin_write().await?;
            let rows = sqlx::query(&sql)
                .bind(lease)
                .bind(secs(now))
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            rows
        }
        Backend::Postgres => {
            sqlx::query(&sql)
                .bind(lease)
                .bind(secs(now))
                .fetch_all(&state.db.pool)
                .await?
        }
    };
    let mut claimed = Vec::with_capacity(rows.len());
    for r in rows {
        claimed.push(Claimed {
            id: r.try_get(0)?,
            order_id: r.try_get(1)?,
            kind: r.try_get(2)?,
            refund_id: r.try_get(3)?,
            amount: r.try_get(4)?,
            attempts: r.try_get(5)?,
            lease_until: r.try_get(6)?,
        });
    }
    let n = claimed.len();
    let mut set = tokio::task::JoinSet::new();
    for row in claimed {
        let s = state.clone();
        set.spawn(async move { carry_out(&s, row).await });
    }
    while set.join_next().await.is_some() {}
    if let Ok(row) = sqlx::query("SELECT COUNT(*) FROM outbox WHERE done_at IS NULL")
        .fetch_one(&state.db.pool)
        .await
    {
        let backlog: i64 = row.try_get(0).unwrap_or(0);
        state.metrics.outbox_backlog.set(backlog);
    }
    Ok(n)
}

/// Is the effect of `row` still owed by `payment`?
fn still_owed(row: &Claimed, payment: &Payment) -> bool {
    match row.kind.as_str() {
        "close_trade" => payment.close_pending(),
        "refund" => row
            .refund_id
            .as_deref()
            .and_then(|id| RefundId::new(id.as_bytes()).ok())
            .is_some_and(|id| payment.recorded_refund(id).is_none()),
        _ => false,
    }
}

async fn mark_done(state: &AppState, row: &Claimed) {
    let done = sqlx::query("UPDATE outbox SET done_at = $1, lease_until = 0, last_error = NULL WHERE id = $2 AND lease_until = $3")
        .bind(secs(now()))
        .bind(row.id)
        .bind(row.lease_until)
        .execute(&state.db.pool)
        .await;
    match done {
        Ok(_) => {
            state
                .metrics
                .outbox_done
                .get_or_create(&EffectLabels {
                    kind: row.kind.clone(),
                })
                .inc();
            tracing::info!(
                order_id = %row.order_id,
                kind = %row.kind,
                refund_id = row.refund_id.as_deref().unwrap_or(""),
                "effect done"
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "marking an outbox row done failed; it will be checked again")
        }
    }
}

async fn mark_failed(state: &AppState, row: &Claimed, error: &str) {
    let attempts = u32::try_from(row.attempts.saturating_add(1)).unwrap_or(u32::MAX);
    let delay = state.config.workers.retry_delay(attempts.saturating_sub(1));
    let next = now().saturating_add(delay.as_secs().max(1));
    // Sub-second retry delays (tests) still wait at least the next second: the table keeps
    // seconds.
    let failed = sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, lease_until = 0, \
         last_error = $2 WHERE id = $3 AND lease_until = $4",
    )
    .bind(secs(next))
    .bind(error)
    .bind(row.id)
    .bind(row.lease_until)
    .execute(&state.db.pool)
    .await;
    state
        .metrics
        .outbox_failures
        .get_or_create(&EffectLabels {
            kind: row.kind.clone(),
        })
        .inc();
    tracing::warn!(order_id = %row.order_id, kind = %row.kind, attempts, error, "effect failed; retried later");
    if let Err(e) = failed {
        tracing::error!(error = %e, "recording an outbox failure failed");
    }
}

/// Carries out one claimed effect: checks it is still owed, calls the payment's provider,
/// verifies the answer and applies the confirmation.
async fn carry_out(state: &AppState, row: Claimed) {
    let stored = match payments::load(&state.db, &row.order_id).await {
        Ok(Some(s)) => s,
        Ok(None) => return mark_failed(state, &row, "unknown payment").await,
        Err(e) => return mark_failed(state, &row, &e.to_string()).await,
    };
    if !still_owed(&row, &stored.payment) {
        return mark_done(state, &row).await;
    }
    match stored.provider {
        Provider::Alipay => carry_out_alipay(state, &row, &stored).await,
        Provider::Wechatpay => carry_out_wechatpay(state, &row, &stored).await,
        Provider::Stripe => {
            mark_failed(
                state,
                &row,
                "effects at stripe are not carried out by this server (it holds no Stripe API key)",
            )
            .await
        }
    }
}

/// The amount of a refund row, in the payment's currency.
fn refund_amount(row: &Claimed, payment: &Payment) -> Result<Money, String> {
    row.amount
        .and_then(|a| u64::try_from(a).ok())
        .filter(|&a| a > 0)
        .map(|a| Money::from_minor(a, payment.currency()))
        .ok_or_else(|| format!("refund row without a positive amount ({:?})", row.amount))
}

/// `alipay.trade.close` or `alipay.trade.refund` (`out_request_no` = the row's refund id).
async fn carry_out_alipay(state: &AppState, row: &Claimed, stored: &payments::Stored) {
    let Some(alipay) = &state.alipay else {
        return mark_failed(state, row, "alipay is not configured").await;
    };
    let refund_id = row.refund_id.clone().unwrap_or_default();
    let (trade, request) = match row.kind.as_str() {
        "close_trade" => (
            TradeRequest::Close {
                out_trade_no: &row.order_id,
            },
            Request::Close,
        ),
        "refund" => {
            let amount = match refund_amount(row, &stored.payment) {
                Ok(m) => m,
                Err(e) => return mark_failed(state, row, &e).await,
            };
            (
                TradeRequest::Refund {
                    out_trade_no: &row.order_id,
                    refund_amount: amount,
                    out_request_no: &refund_id,
                },
                Request::Refund {
                    out_request_no: &refund_id,
                },
            )
        }
        other => return mark_failed(state, row, &format!("unknown effect kind {other}")).await,
    };
    failpoint("outbox_before_call");
    let raw = match alipay.call(&trade, now()).await {
        Ok(raw) => raw,
        Err(e) => return mark_failed(state, row, &e.to_string()).await,
    };
    failpoint("outbox_after_call");
    let result = payments::apply(&state.db, &row.order_id, now(), |_, facts| {
        match alipay.verify(&raw, request, |answer| answer.to_input(facts)) {
            Ok(Ok(input)) => Ok(Step::Apply(input)),
            Ok(Err(MapError::NothingToApply)) => Ok(Step::Nothing),
            Ok(Err(e)) => Err(format!("answer: {e}")),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    // A close Alipay answered without confirming it: the trade is closed already (by an
    // earlier call whose answer was lost with the instance that made it: Alipay refuses a
    // second close with ACQ.TRADE_STATUS_ERROR), or paid (the capture the close lost to).
    // Retrying the close would get the same refusal for ever; the trade's status says which
    // it is, and applying it discharges the obligation (a capture turns it into a refund).
    let confirmed = matches!(&result, Ok(a)
        if !matches!(a.outcome, Outcome::Rejected(_)) && !still_owed(row, &a.stored.payment));
    if row.kind == "close_trade" && !confirmed {
        match query_and_apply(state, alipay, &row.order_id).await {
            Ok(a)
                if !matches!(a.outcome, Outcome::Rejected(_))
                    && !still_owed(row, &a.stored.payment) =>
            {
                return mark_done(state, row).await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(order_id = %row.order_id, error = %e, "the trade's status after an unconfirmed close is unknown")
            }
        }
    }
    settle(state, row, result).await
}

/// Asks Alipay about the trade (`alipay.trade.query`) and applies the verified answer: the
/// query poller's step, and the outbox's when a close is not confirmed.
///
/// Errors: the call failed, or the answer was refused (unverified, for another order…), as
/// text.
async fn query_and_apply(
    state: &AppState,
    alipay: &AlipayClient,
    order_id: &str,
) -> Result<Applied, String> {
    let raw = alipay
        .call(
            &TradeRequest::Query {
                out_trade_no: order_id,
            },
            now(),
        )
        .await
        .map_err(|e| format!("query failed: {e}"))?;
    payments::apply(&state.db, order_id, now(), |_, facts| {
        match alipay.verify(&raw, Request::Query, |answer| answer.to_input(facts)) {
            Ok(Ok(input)) => Ok(Step::Apply(input)),
            Ok(Err(MapError::NothingToApply)) => Ok(Step::Nothing),
            Ok(Err(e)) => Err(format!("answer: {e}")),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
    .map_err(|e| match e {
        ApplyError::Map(e) => e,
        other => other.to_string(),
    })
}

/// WeChat Pay's close (`POST /v3/pay/transactions/out-trade-no/{no}/close`) or refund
/// (`POST /v3/refund/domestic/refunds`, `out_refund_no` = the row's refund id). The answer is
/// verified before any transaction opens; a forged or unsigned one is never applied.
async fn carry_out_wechatpay(state: &AppState, row: &Claimed, stored: &payments::Stored) {
    let Some(wx) = &state.wechatpay else {
        return mark_failed(state, row, "wechatpay is not configured").await;
    };
    let refund_id = row.refund_id.clone().unwrap_or_default();
    let refund = match row.kind.as_str() {
        "close_trade" => None,
        "refund" => match refund_amount(row, &stored.payment) {
            Ok(amount) => Some(RefundRequest {
                out_trade_no: &row.order_id,
                out_refund_no: &refund_id,
                refund: amount,
                total: stored.payment.amount(),
            }),
            Err(e) => return mark_failed(state, row, &e).await,
        },
        other => return mark_failed(state, row, &format!("unknown effect kind {other}")).await,
    };
    failpoint("outbox_before_call");
    let called = match &refund {
        None => wx.close(&row.order_id, now()).await,
        Some(request) => wx.refund(request, now()).await,
    };
    let raw = match called {
        Ok(raw) => raw,
        Err(e) => return mark_failed(state, row, &e.to_string()).await,
    };
    failpoint("outbox_after_call");
    let merchant = wx.merchant();
    let at = now();
    let result = if refund.is_none() {
        let answer = match wx.verify_close(&raw, &row.order_id, at) {
            Ok(a) => a,
            Err(e) => return mark_failed(state, row, &e.to_string()).await,
        };
        let failure = answer.message().failure();
        payments::apply(&state.db, &row.order_id, at, |_, facts| {
            wechatpay_step(answer.to_input(&merchant, facts), failure)
        })
        .await
    } else {
        let answer = match wx.verify_refund(&raw, at) {
            Ok(a) => a,
            Err(e) => return mark_failed(state, row, &e.to_string()).await,
        };
        let failure = match answer.message() {
            RefundAnswer::Failed(f) => Some(*f),
            RefundAnswer::Refund(_) => None,
        };
        payments::apply(&state.db, &row.order_id, at, |_, facts| {
            wechatpay_step(answer.to_input(&merchant, facts), failure)
        })
        .await
    };
    settle(state, row, result).await
}

/// What a verified WeChat Pay answer, mapped, does: apply the confirmation; nothing for a
/// refund still `PROCESSING` (the row retries; the `REFUND.SUCCESS` notification or a later
/// attempt confirms it); a refusal names WeChat Pay's error code.
fn wechatpay_step(
    mapped: Result<Input, MapError>,
    failure: Option<Failure<'_>>,
) -> Result<Step, String> {
    match mapped {
        Ok(input) => Ok(Step::Apply(input)),
        Err(MapError::NothingToApply) => Ok(Step::Nothing),
        Err(MapError::ProviderError) => Err(match failure {
            Some(f) => format!(
                "WeChat Pay answered HTTP {} {}",
                f.status(),
                f.code().unwrap_or("(no code)")
            ),
            None => "WeChat Pay answered with an error".to_owned(),
        }),
        Err(MapError::RefundFailed) => Err(
            "WeChat Pay reports the refund CLOSED or ABNORMAL; it is requested again under the same out_refund_no"
                .to_owned(),
        ),
        Err(e) => Err(format!("answer: {e}")),
    }
}

/// The row after the provider's answer was applied (or not): done when the payment no
/// longer owes the effect, else retried later.
async fn settle(state: &AppState, row: &Claimed, result: Result<Applied, ApplyError<String>>) {
    match result {
        Ok(applied) => {
            if let Outcome::Rejected(r) = &applied.outcome {
                return mark_failed(state, row, &format!("confirmation rejected: {r}")).await;
            }
            if still_owed(row, &applied.stored.payment) {
                mark_failed(
                    state,
                    row,
                    "the provider's answer did not confirm the effect yet",
                )
                .await;
            } else {
                mark_done(state, row).await;
            }
        }
        Err(ApplyError::Map(e)) => mark_failed(state, row, &e).await,
        Err(e) => mark_failed(state, row, &e.to_string()).await,
    }
}

// ------------------------------------------------------------------------------------------
// Obligations, deadlines, queries.

async fn obligation_loop(state: AppState) {
    loop {
        if let Err(e) = scan_obligations(&state).await {
            tracing::error!(error = %e, "obligation scan failed");
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}

/// Makes sure every effect in a payment's `pending_effects()` has an open outbox row (it
/// reopens a row marked done if the obligation is still there). Returns how many payments
/// owe something.
///
/// Errors: the database failed.
pub async fn scan_obligations(state: &AppState) -> Result<usize, sqlx::Error> {
    let rows = sqlx::query("SELECT order_id FROM payments WHERE owes_effect = 1")
        .fetch_all(&state.db.pool)
        .await?;
    let mut owing = 0;
    for r in rows {
        let order_id: String = r.try_get(0)?;
        let stored = match payments::load(&state.db, &order_id).await {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(order_id = %order_id, error = %e, "obligation scan: unreadable payment");
                continue;
            }
        };
        let effects = stored.payment.pending_effects();
        if effects.is_empty() {
            continue;
        }
        owing += 1;
        let mut tx = state.db.begin_write().await?;
        for effect in effects.iter() {
            payments::insert_outbox(&mut tx, &order_id, stored.provider, effect, now()).await?;
        }
        tx.commit().await?;
    }
    Ok(owing)
}

async fn sweep_loop(state: AppState) {
    let every = Duration::from_millis(state.config.workers.sweep_interval_ms);
    let mut passes: u64 = 0;
    loop {
        if let Err(e) = sweep_deadlines(&state).await {
            tracing::error!(error = %e, "deadline sweep failed");
        }
        passes = passes.wrapping_add(1);
        if passes % 60 == 1 {
            if let Err(e) = crate::auth::sweep_nonces(&state.db, now()).await {
                tracing::error!(error = %e, "nonce sweep failed");
            }
            if let Err(e) = crate::auth::sweep_idempotency_keys(&state.db, now()).await {
                tracing::error!(error = %e, "idempotency key sweep failed");
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Applies `tick` to every open payment whose deadline has passed (up to 100 a pass).
/// Returns how many were applied.
///
/// Errors: the database failed while listing them.
pub async fn sweep_deadlines(state: &AppState) -> Result<usize, sqlx::Error> {
    let now = now();
    let rows = sqlx::query(
        "SELECT order_id FROM payments WHERE status IN ('pending', 'processing') \
         AND expires_at IS NOT NULL AND expires_at <= $1 ORDER BY expires_at LIMIT 100",
    )
    .bind(secs(now))
    .fetch_all(&state.db.pool)
    .await?;
    let mut applied = 0;
    for r in rows {
        let order_id: String = r.try_get(0)?;
        match payments::apply::<std::convert::Infallible, _>(&state.db, &order_id, now, |_, _| {
            Ok(Step::Tick)
        })
        .await
        {
            Ok(a) if matches!(a.outcome, Outcome::Applied(_)) => {
                applied += 1;
                tracing::info!(order_id = %order_id, status = a.stored.payment.status().name(), "deadline passed");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(order_id = %order_id, error = %e, "tick failed"),
        }
    }
    Ok(applied)
}

async fn poll_loop(state: AppState) {
    let every = Duration::from_millis(state.config.workers.poll_interval_ms);
    loop {
        if let Err(e) = poll_once(&state).await {
            tracing::error!(error = %e, "query poll failed");
        }
        tokio::time::sleep(every).await;
    }
}

/// Queries Alipay about open payments whose `query_at` has come (up to 20 a pass), each
/// claimed by moving its `query_at` on first, and applies the answers. Returns how many were
/// asked about.
///
/// Errors: the database failed while listing them.
pub async fn poll_once(state: &AppState) -> Result<usize, sqlx::Error> {
    let Some(alipay) = &state.alipay else {
        return Ok(0);
    };
    let now: Timestamp = now();
    let rows = sqlx::query(
        "SELECT order_id, query_at FROM payments WHERE query_at IS NOT NULL AND query_at <= $1 \
         AND status IN ('pending', 'processing') AND provider = 'alipay' ORDER BY query_at LIMIT 20",
    )
    .bind(secs(now))
    .fetch_all(&state.db.pool)
    .await?;
    let mut asked = 0;
    for r in rows {
        let order_id: String = r.try_get(0)?;
        let query_at: i64 = r.try_get(1)?;
        let next = secs(now.saturating_add(state.config.workers.query_after_secs));
        let claimed =
            sqlx::query("UPDATE payments SET query_at = $1 WHERE order_id = $2 AND query_at = $3")
                .bind(next)
                .bind(&order_id)
                .bind(query_at)
                .execute(&state.db.pool)
                .await?;
        if claimed.rows_affected() != 1 {
            continue; // another instance asks
        }
        asked += 1;
        match query_and_apply(state, alipay, &order_id).await {
            Ok(a) => {
                tracing::info!(order_id = %order_id, outcome = a.outcome.name(), status = a.stored.payment.status().name(), "queried")
            }
            Err(e) => tracing::warn!(order_id = %order_id, error = %e, "query answer not applied"),
        }
    }
    Ok(asked)
}
