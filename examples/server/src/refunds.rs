//! The merchant's refund requests (`POST /v1/payments/{order_id}/refunds`).
//!
//! A refund is requested from the provider (an outbox row; Alipay `out_request_no`, WeChat
//! Pay `out_refund_no` = the merchant's `refund_id`) and applied to the payment only when the
//! provider confirms it. Stripe refunds are refused (`422 unsupported`): the server holds no
//! Stripe API key to carry them out.
//! Before anything is written, the engine is asked on a copy of the payment whether the
//! refund could be applied, and the refunds already requested but not confirmed are counted
//! against the balance, so two requests cannot together refund more than was paid.

use axum::http::StatusCode;
use paystate::{Effect, EventId, Input, Money, Outcome, RefundId, Timestamp, snapshot};
use sqlx::Row as _;

use crate::payments::{self, Provider, Stored, secs};
use crate::store::{Backend, Db, DbError};

/// What became of a refund request.
#[derive(Debug)]
pub enum Requested {
    /// No payment under this order id.
    UnknownPayment,
    /// The amount is not a decimal amount in the payment's currency.
    BadAmount(String),
    /// The engine (or the balance left after other requested refunds) refuses it: the status,
    /// the code and a detail.
    Refused(StatusCode, &'static str, String),
    /// Requested (or requested before with the same amount): the payment as it is.
    Accepted(Box<Stored>),
}

/// Records a refund request of `amount` (a decimal string) under `refund_text` for
/// `order_id`, with its outbox row, in one transaction.
///
/// Errors: the database failed, or the stored snapshot is corrupt.
pub async fn request(
    db: &Db,
    order_id: &str,
    refund_text: &str,
    refund_id: RefundId,
    amount: &str,
    now: Timestamp,
) -> Result<Requested, DbError> {
    let mut tx = db.begin_write().await?;
    let lock = match db.backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let row = sqlx::query(&format!(
        "SELECT provider, snapshot FROM payments WHERE order_id = $1{lock}"
    ))
    .bind(order_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        tx.rollback().await?;
        return Ok(Requested::UnknownPayment);
    };
    let provider: String = row.try_get(0)?;
    let bytes: Vec<u8> = row.try_get(1)?;
    let Some(provider) = Provider::parse(&provider) else {
        return Err(DbError::Protocol(format!("stored provider {provider:?}")));
    };
    let payment = snapshot::decode(&bytes)
        .map_err(|e| DbError::Protocol(format!("stored snapshot of {order_id}: {e}")))?;
    let amount = match Money::parse(amount, payment.currency()) {
        Ok(m) => m,
        Err(e) => {
            tx.rollback().await?;
            return Ok(Requested::BadAmount(e.to_string()));
        }
    };
    if let Some((status, code, detail)) = unsupported(provider, &payment, refund_text) {
        tx.rollback().await?;
        return Ok(Requested::Refused(status, code, detail));
    }
    let rows = sqlx::query("SELECT refund_id, amount FROM refund_requests WHERE order_id = $1")
        .bind(order_id)
        .fetch_all(&mut *tx)
        .await?;
    let mut requested = Vec::with_capacity(rows.len());
    for r in rows {
        let id: String = r.try_get(0)?;
        let minor: i64 = r.try_get(1)?;
        requested.push((
            id,
            Money::from_minor(u64::try_from(minor).unwrap_or(0), payment.currency()),
        ));
    }
    let stored = Stored {
        order_id: order_id.to_owned(),
        provider,
        payment: payment.clone(),
        requested_refunds: requested.clone(),
    };
    // The same refund id again: the same request (accepted again), or a conflict.
    let earlier = requested
        .iter()
        .find(|(id, _)| id == refund_text)
        .map(|(_, m)| *m)
        .or_else(|| payment.recorded_refund(refund_id));
    if let Some(before) = earlier {
        tx.rollback().await?;
        return Ok(if before == amount {
            Requested::Accepted(Box::new(stored))
        } else {
            Requested::Refused(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                format!("refund {refund_text} was requested for {before}, not {amount}"),
            )
        });
    }
    if amount.is_zero() {
        tx.rollback().await?;
        return Ok(Requested::BadAmount("a refund of zero".to_owned()));
    }
    // Would the engine take it? (Its balance check is repeated below, counting the refunds
    // already on their way too.)
    let event = EventId::derived(&[
        b"merchant.refund",
        order_id.as_bytes(),
        refund_text.as_bytes(),
    ])
    .map_err(|e| DbError::Protocol(e.to_string()))?;
    let mut probe = payment.clone();
    if let Outcome::Rejected(r) = probe.apply(&Input::refund(event, refund_id, amount), now)
        && !matches!(r, paystate::Rejection::RefundExceedsBalance { .. })
    {
        tx.rollback().await?;
        return Ok(Requested::Refused(
            crate::app::rejection_status(&r),
            r.code(),
            r.to_string(),
        ));
    }
    // And with what is already on its way to the customer?
    let mut committed = 0u64;
    for (id, m) in &requested {
        let recorded = RefundId::new(id.as_bytes())
            .ok()
            .and_then(|r| payment.recorded_refund(r))
            .is_some();
        if !recorded {
            committed = committed.saturating_add(m.minor_units());
        }
    }
    for effect in payment.pending_effects().iter() {
        if let Effect::RefundRequired { amount: owed, .. } = effect {
            committed = committed.saturating_add(owed.minor_units());
        }
    }
    let balance = payment.balance().minor_units();
    if committed.saturating_add(amount.minor_units()) > balance {
        tx.rollback().await?;
        return Ok(Requested::Refused(
            StatusCode::CONFLICT,
            "refund_exceeds_balance",
            format!(
                "{amount} requested, {} left after refunds already on their way",
                Money::from_minor(balance.saturating_sub(committed), payment.currency())
            ),
        ));
    }
    let minor = i64::try_from(amount.minor_units()).unwrap_or(i64::MAX);
    sqlx::query("INSERT INTO refund_requests (order_id, refund_id, amount, created_at) VALUES ($1, $2, $3, $4)")
        .bind(order_id)
        .bind(refund_text)
        .bind(minor)
        .bind(secs(now))
        .execute(&mut *tx)
        .await?;
    payments::insert_outbox_row(
        &mut tx,
        &format!("{order_id}/refund/{refund_text}"),
        order_id,
        "refund",
        Some(refund_text),
        Some(minor),
        now,
    )
    .await?;
    tx.commit().await?;
    let mut stored = stored;
    stored
        .requested_refunds
        .push((refund_text.to_owned(), amount));
    Ok(Requested::Accepted(Box::new(stored)))
}

/// Why this server cannot carry out a refund of `payment` at `provider` under `refund_id`, if
/// it cannot: `422 unsupported` for Stripe (no API key is configured) and for a WeChat Pay
/// payment not in CNY (WeChat Pay's domestic refunds are in CNY only); `400 bad_input` for a
/// WeChat Pay refund id with a character `out_refund_no` does not allow (WeChat Pay: digits,
/// letters and `_ - | * @`; this API also allows `.`).
fn unsupported(
    provider: Provider,
    payment: &paystate::Payment,
    refund_id: &str,
) -> Option<(StatusCode, &'static str, String)> {
    match provider {
        Provider::Alipay => None,
        Provider::Stripe => Some((
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported",
            "this server carries out refunds at Alipay and WeChat Pay, not stripe".to_owned(),
        )),
        Provider::Wechatpay if payment.currency() != paystate::Currency::CNY => Some((
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported",
            format!(
                "WeChat Pay refunds are in CNY only; this payment is in {}",
                payment.currency()
            ),
        )),
        Provider::Wechatpay if refund_id.contains('.') => Some((
            StatusCode::BAD_REQUEST,
            "bad_input",
            "a WeChat Pay refund_id (its out_refund_no) may not contain '.'".to_owned(),
        )),
        Provider::Wechatpay => None,
    }
}
