//! What happens to an input: in one database transaction, load the snapshot, apply, and if
//! applied write the new snapshot with a compare-and-swap on its version (a lost race reloads
//! and applies again) together with one outbox row per effect. The caller replies after
//! [`apply`] returns, that is after the commit.

use paystate::provider::Facts;
use paystate::{
    Effect, Input, LateSuccess, Money, Outcome, Payment, RefundId, Status, Timestamp, snapshot,
};
use serde_json::{Value, json};
use sqlx::Row as _;

use crate::store::{Db, DbError};

/// The payment providers this server speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Alipay (`alipay`).
    Alipay,
    /// WeChat Pay (`wechatpay`).
    Wechatpay,
    /// Stripe (`stripe`).
    Stripe,
}

impl Provider {
    /// The name stored and shown: `alipay`, `wechatpay`, `stripe`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Provider::Alipay => "alipay",
            Provider::Wechatpay => "wechatpay",
            Provider::Stripe => "stripe",
        }
    }

    /// The provider named `name`, if any.
    pub fn parse(name: &str) -> Option<Provider> {
        match name {
            "alipay" => Some(Provider::Alipay),
            "wechatpay" => Some(Provider::Wechatpay),
            "stripe" => Some(Provider::Stripe),
            _ => None,
        }
    }
}

/// A stored payment: what the engine decides with, and what the server keeps beside it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The merchant's order id (Alipay `out_trade_no`).
    pub order_id: String,
    /// Who takes the money.
    pub provider: Provider,
    /// The engine's payment, decoded from the snapshot.
    pub payment: Payment,
    /// The refunds the merchant asked for that the host keeps beside the snapshot:
    /// `(refund_id, amount)`.
    pub requested_refunds: Vec<(String, Money)>,
}

impl Stored {
    /// The requested refunds as [`Facts::with_requested_refunds`] wants them.
    pub fn requested_ids(&self) -> Vec<(RefundId, Money)> {
        self.requested_refunds
            .iter()
            .filter_map(|(id, m)| RefundId::new(id.as_bytes()).ok().map(|r| (r, *m)))
            .collect()
    }

    /// The payment view of the merchant API (docs/server.md): amounts as decimal strings,
    /// plus `refunds_requested`: the merchant's refunds, each `{"refund_id","amount",
    /// "confirmed"}` (`confirmed` once the provider confirmed it and the payment recorded it).
    pub fn view(&self) -> Value {
        let mut v = view(&self.order_id, self.provider, &self.payment);
        let requested: Vec<Value> = self
            .requested_refunds
            .iter()
            .map(|(id, amount)| {
                let confirmed = RefundId::new(id.as_bytes())
                    .ok()
                    .and_then(|r| self.payment.recorded_refund(r))
                    .is_some();
                json!({"refund_id": id, "amount": amount.to_string(), "confirmed": confirmed})
            })
            .collect();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("refunds_requested".to_owned(), Value::Array(requested));
        }
        v
    }
}

/// The payment view: `{"order_id","provider","status","version","amount","currency","paid",
/// "refunded","expires_at","pending_effects":[…]}`, amounts as decimal strings in the
/// currency's major unit (`"99.99"`), `expires_at` in seconds since the Unix epoch or `null`.
pub fn view(order_id: &str, provider: Provider, p: &Payment) -> Value {
    json!({
        "order_id": order_id,
        "provider": provider.as_str(),
        "status": p.status().name(),
        "version": p.version(),
        "amount": p.amount().to_string(),
        "currency": p.currency().code(),
        "paid": p.paid().to_string(),
        "refunded": p.refunded().to_string(),
        "expires_at": p.expires_at().map(|t| t.as_secs()),
        "pending_effects": p.pending_effects().iter().map(effect_json).collect::<Vec<_>>(),
    })
}

/// `{"type":"close_trade"}` or `{"type":"refund_required","amount":"99.99","refund_id":"lr…"}`.
pub fn effect_json(effect: &Effect) -> Value {
    match effect {
        Effect::CloseTrade => json!({"type": "close_trade"}),
        Effect::RefundRequired { amount, refund_id } => json!({
            "type": "refund_required",
            "amount": amount.to_string(),
            "refund_id": refund_id.as_str(),
        }),
    }
}

/// Why a stored payment could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] DbError),
    /// The stored snapshot does not decode (or breaks an invariant): never acted on.
    #[error("stored snapshot of {order_id} is corrupt: {reason}")]
    Corrupt {
        /// The order.
        order_id: String,
        /// The decoder's error.
        reason: String,
    },
}

fn decode_row(
    order_id: &str,
    provider: &str,
    bytes: &[u8],
) -> Result<(Provider, Payment), LoadError> {
    let corrupt = |reason: String| LoadError::Corrupt {
        order_id: order_id.to_owned(),
        reason,
    };
    let provider =
        Provider::parse(provider).ok_or_else(|| corrupt(format!("provider {provider:?}")))?;
    let payment = snapshot::decode(bytes).map_err(|e| corrupt(e.to_string()))?;
    Ok((provider, payment))
}

async fn requested_refunds<'e, E>(
    exec: E,
    order_id: &str,
    currency: paystate::Currency,
) -> Result<Vec<(String, Money)>, DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows = sqlx::query("SELECT refund_id, amount FROM refund_requests WHERE order_id = $1 ORDER BY created_at, refund_id")
        .bind(order_id)
        .fetch_all(exec)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get(0)?;
        let amount: i64 = row.try_get(1)?;
        out.push((
            id,
            Money::from_minor(u64::try_from(amount).unwrap_or(0), currency),
        ));
    }
    Ok(out)
}

/// Reads a payment outside any transaction (for views and for the workers' planning; every
/// change goes through [`apply`]).
///
/// Errors: [`LoadError`]; `Ok(None)` for an unknown order.
pub async fn load(db: &Db, order_id: &str) -> Result<Option<Stored>, LoadError> {
    let row = sqlx::query("SELECT provider, snapshot FROM payments WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(&db.pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let provider: String = row.try_get(0)?;
    let bytes: Vec<u8> = row.try_get(1)?;
    let (provider, payment) = decode_row(order_id, &provider, &bytes)?;
    let requested_refunds = requested_refunds(&db.pool, order_id, payment.currency()).await?;
    Ok(Some(Stored {
        order_id: order_id.to_owned(),
        provider,
        payment,
        requested_refunds,
    }))
}

/// The subject a payment was created with; `Ok(None)` for an unknown order.
///
/// Errors: the database failed.
pub async fn subject(db: &Db, order_id: &str) -> Result<Option<String>, DbError> {
    let row = sqlx::query("SELECT subject FROM payments WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(&db.pool)
        .await?;
    row.map(|r| r.try_get(0)).transpose()
}

/// What the caller's mapping decided to do with the stored payment.
#[derive(Debug, Clone)]
pub enum Step {
    /// Apply this input.
    Apply(Input),
    /// Advance the clock (`tick`): the deadline sweeper.
    Tick,
    /// The message is genuine and acknowledged, but there is nothing to apply (a refund still
    /// processing, a status the mapping leaves alone).
    Nothing,
}

/// The result of [`apply`].
#[derive(Debug, Clone)]
pub struct Applied {
    /// The engine's outcome (`Outcome::Ignored` for [`Step::Nothing`]).
    pub outcome: Outcome,
    /// The payment after the input (unchanged unless applied).
    pub stored: Stored,
}

/// Why [`apply`] did not apply.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError<E> {
    /// No payment under this order id.
    #[error("unknown_payment")]
    UnknownPayment,
    /// The caller's mapping refused the message (a failed business check).
    #[error("{0}")]
    Map(E),
    /// The database or the stored snapshot failed.
    #[error("{0}")]
    Load(#[from] LoadError),
    /// The compare-and-swap lost every one of its retries (heavy contention on one payment).
    #[error("compare-and-swap lost {0} times in a row")]
    Contention(u32),
}

impl<E> From<DbError> for ApplyError<E> {
    fn from(e: DbError) -> Self {
        ApplyError::Load(LoadError::Db(e))
    }
}

/// How often a lost compare-and-swap is retried before giving up (the provider redelivers).
const CAS_RETRIES: u32 = 16;

/// The transaction per input (docs/server.md): load the payment `order_id`, let `map` decide
/// the step from the payment and its [`Facts`], apply it at `now`, and if applied store the
/// new snapshot with a compare-and-swap on the version read, plus one outbox row per effect,
/// in the same transaction. A lost compare-and-swap (another instance applied first) rolls
/// back, reloads and maps again. `map` may therefore run more than once; it must be pure.
///
/// Errors: [`ApplyError::UnknownPayment`], [`ApplyError::Map`] (nothing written),
/// [`ApplyError::Load`] (database or a corrupt snapshot: nothing written),
/// [`ApplyError::Contention`].
pub async fn apply<E, F>(
    db: &Db,
    order_id: &str,
    now: Timestamp,
    map: F,
) -> Result<Applied, ApplyError<E>>
where
    F: Fn(&Payment, &Facts<'_>) -> Result<Step, E>,
{
    for _ in 0..CAS_RETRIES {
        let mut tx = db.begin_write().await?;
        let row =
            sqlx::query("SELECT provider, snapshot, version FROM payments WHERE order_id = $1")
                .bind(order_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Err(ApplyError::UnknownPayment);
        };
        let provider: String = row.try_get(0)?;
        let bytes: Vec<u8> = row.try_get(1)?;
        let stored_version: i64 = row.try_get(2)?;
        let (provider, mut payment) = decode_row(order_id, &provider, &bytes)?;
        let requested = requested_refunds(&mut *tx, order_id, payment.currency()).await?;
        let stored = Stored {
            order_id: order_id.to_owned(),
            provider,
            payment: payment.clone(),
            requested_refunds: requested,
        };
        let ids = stored.requested_ids();
        let facts = Facts::of(order_id, &payment).with_requested_refunds(&ids);
        let step = match map(&payment, &facts) {
            Ok(step) => step,
            Err(e) => {
                tx.rollback().await?;
                return Err(ApplyError::Map(e));
            }
        };
        let outcome = match &step {
            Step::Apply(input) => payment.apply(input, now),
            Step::Tick => payment.tick(now),
            Step::Nothing => Outcome::Ignored,
        };
        let Outcome::Applied(effects) = &outcome else {
            tx.rollback().await?;
            return Ok(Applied { outcome, stored });
        };
        let mut buf = [0u8; snapshot::MAX_SIZE];
        let encoded = snapshot::encode(&payment, &mut buf).map_err(|e| LoadError::Corrupt {
            order_id: order_id.to_owned(),
            reason: e.to_string(),
        })?;
        let status = payment.status();
        let open = matches!(status, Status::Pending | Status::Processing);
        let updated = sqlx::query(
            "UPDATE payments SET snapshot = $1, status = $2, version = $3, expires_at = $4, \
             owes_effect = $5, updated_at = $6, \
             query_at = CASE WHEN $7 = 1 THEN query_at ELSE NULL END \
             WHERE order_id = $8 AND version = $9",
        )
        .bind(encoded.to_vec())
        .bind(status.name())
        .bind(i64::from(payment.version()))
        .bind(payment.expires_at().map(secs))
        .bind(i32::from(!payment.pending_effects().is_empty()))
        .bind(secs(now))
        .bind(i32::from(open))
        .bind(order_id)
        .bind(stored_version)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            // Another instance applied first: reload and decide again.
            tx.rollback().await?;
            continue;
        }
        for effect in effects.iter() {
            insert_outbox(&mut tx, order_id, provider, effect, now).await?;
        }
        tx.commit().await?;
        return Ok(Applied {
            outcome,
            stored: Stored { payment, ..stored },
        });
    }
    Err(ApplyError::Contention(CAS_RETRIES))
}

/// Seconds since the Unix epoch as the databases store them.
pub fn secs(t: Timestamp) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

/// The refund request number a late refund is asked for under: the obligation's
/// `refund_id` (`lr` + 22 hex digits), which Alipay keeps per trade; for WeChat Pay, which
/// wants `out_refund_no` unique per merchant, prefixed with the order id (spec §2.6: two
/// payments created alike in the same second share the `lr` number). WeChat Pay order ids are
/// at most 32 characters, so the result fits its 64.
pub fn obligation_refund_no(order_id: &str, provider: Provider, refund_id: &str) -> String {
    match provider {
        Provider::Wechatpay => format!("{order_id}_{refund_id}"),
        Provider::Alipay | Provider::Stripe => refund_id.to_owned(),
    }
}

/// The outbox row of one effect of a `provider`'s payment: its unique key, kind, refund
/// request number and amount.
pub fn outbox_fields(
    order_id: &str,
    provider: Provider,
    effect: &Effect,
) -> (String, &'static str, Option<String>, Option<i64>) {
    match effect {
        Effect::CloseTrade => (format!("{order_id}/close_trade"), "close_trade", None, None),
        Effect::RefundRequired { amount, refund_id } => {
            let number = obligation_refund_no(order_id, provider, refund_id.as_str());
            (
                format!("{order_id}/refund/{number}"),
                "refund",
                Some(number),
                Some(i64::try_from(amount.minor_units()).unwrap_or(i64::MAX)),
            )
        }
    }
}

/// Inserts (or reopens, if it was done) the outbox row of `effect`.
pub async fn insert_outbox(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    order_id: &str,
    provider: Provider,
    effect: &Effect,
    now: Timestamp,
) -> Result<(), DbError> {
    let (key, kind, refund_id, amount) = outbox_fields(order_id, provider, effect);
    insert_outbox_row(tx, &key, order_id, kind, refund_id.as_deref(), amount, now).await
}

/// Inserts an outbox row, or reopens the row with the same key if it was done. A row still
/// open is left as it is (its attempts and lease stand).
pub async fn insert_outbox_row(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    key: &str,
    order_id: &str,
    kind: &str,
    refund_id: Option<&str>,
    amount: Option<i64>,
    now: Timestamp,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO outbox (effect_key, order_id, kind, refund_id, amount, attempts, \
         next_attempt_at, lease_until, created_at) VALUES ($1, $2, $3, $4, $5, 0, $6, 0, $6) \
         ON CONFLICT (effect_key) DO UPDATE SET done_at = NULL, attempts = 0, \
         next_attempt_at = excluded.next_attempt_at, amount = excluded.amount, last_error = NULL \
         WHERE outbox.done_at IS NOT NULL",
    )
    .bind(key)
    .bind(order_id)
    .bind(kind)
    .bind(refund_id)
    .bind(amount)
    .bind(secs(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A new payment to store.
#[derive(Debug, Clone)]
pub struct NewPayment<'a> {
    /// The order id.
    pub order_id: &'a str,
    /// The provider.
    pub provider: Provider,
    /// The engine's fresh payment.
    pub payment: &'a Payment,
    /// What the customer buys (Alipay `subject`).
    pub subject: &'a str,
    /// When the query poller first asks about it, if ever.
    pub query_at: Option<Timestamp>,
}

/// Stores a new payment. `Ok(false)` when the order id is taken (nothing written).
///
/// Errors: the database failed.
pub async fn insert(db: &Db, new: &NewPayment<'_>, now: Timestamp) -> Result<bool, DbError> {
    let mut buf = [0u8; snapshot::MAX_SIZE];
    let Ok(encoded) = snapshot::encode(new.payment, &mut buf) else {
        return Err(DbError::Protocol("a fresh payment did not encode".into()));
    };
    let done = sqlx::query(
        "INSERT INTO payments (order_id, provider, snapshot, status, version, expires_at, \
         owes_effect, subject, created_at, updated_at, query_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $8, $9) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(new.order_id)
    .bind(new.provider.as_str())
    .bind(encoded.to_vec())
    .bind(new.payment.status().name())
    .bind(i64::from(new.payment.version()))
    .bind(new.payment.expires_at().map(secs))
    .bind(new.subject)
    .bind(secs(now))
    .bind(new.query_at.map(secs))
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The late-success policy named in the API (`"refund"` or `"accept"`).
pub fn parse_late_success(name: &str) -> Option<LateSuccess> {
    match name {
        "refund" => Some(LateSuccess::Refund),
        "accept" => Some(LateSuccess::Accept),
        _ => None,
    }
}
