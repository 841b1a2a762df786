//! `paystate-server reconcile`: the seed's daily bill check. The provider's bill file is read
//! line by line with the crate's streaming readers (Alipay's trade detail CSV in GBK or UTF-8,
//! WeChat Pay's trade bill) and summed per order; the ledger is every stored payment of that
//! provider that captured money; the crate's `reconcile` compares the two.
//!
//! Output: one JSON line per discrepancy, then a summary line. Exit status 0 when there are
//! none, 1 when there are, 2 when the bill (or the database) cannot be read.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use paystate::reconcile::bill::{AlipayBill, BillReader, BillTotals, WechatPayBill};
use paystate::reconcile::{Discrepancy, Entry, reconcile};
use paystate::{Payment, snapshot};
use serde_json::{Value, json};
use sqlx::Row as _;

use crate::config::Config;
use crate::payments::Provider;
use crate::store::Db;

/// Why reconciliation could not run (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileFailure {
    /// The bill file cannot be opened or read.
    #[error("bill {path}: {reason}")]
    BillUnreadable {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A line of the bill is malformed, or the bill ends early.
    #[error("bill {path}: {reason}")]
    BillMalformed {
        /// The file.
        path: String,
        /// The reader's error, naming its line.
        reason: String,
    },
    /// The database failed, or a stored snapshot does not decode.
    #[error("database: {0}")]
    Database(String),
    /// Comparing failed (the ledger or the bill out of order: a bug).
    #[error("reconcile: {0}")]
    Compare(String),
}

/// The result of a run: the discrepancies as JSON lines and the summary line.
#[derive(Debug, Clone)]
pub struct Report {
    /// One JSON object per discrepancy, in order-id order.
    pub discrepancies: Vec<Value>,
    /// `{"summary": {...}}`.
    pub summary: Value,
}

fn entry_json(e: &Entry<'_>) -> Value {
    json!({
        "status": e.status.name(),
        "paid": e.paid.to_string(),
        "refunded": e.refunded.to_string(),
        "currency": e.paid.currency().code(),
    })
}

fn discrepancy_json(d: &Discrepancy<'_>) -> Value {
    let id = |e: &Entry<'_>| String::from_utf8_lossy(e.order_id).into_owned();
    match d {
        Discrepancy::MissingLocally(p) => json!({
            "discrepancy": "missing_locally", "order_id": id(p), "provider": entry_json(p),
        }),
        Discrepancy::MissingAtProvider(l) => json!({
            "discrepancy": "missing_at_provider", "order_id": id(l), "local": entry_json(l),
        }),
        Discrepancy::AmountMismatch { local, provider } => json!({
            "discrepancy": "amount_mismatch", "order_id": id(local),
            "local": entry_json(local), "provider": entry_json(provider),
        }),
        Discrepancy::StatusMismatch { local, provider } => json!({
            "discrepancy": "status_mismatch", "order_id": id(local),
            "local": entry_json(local), "provider": entry_json(provider),
        }),
        _ => json!({"discrepancy": "other"}),
    }
}

/// Reads the bill at `path` with `reader`, line by line, into per-order sums.
fn read_bill<R: BillReader>(path: &Path, mut reader: R) -> Result<BillTotals, ReconcileFailure> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| ReconcileFailure::BillUnreadable {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let mut input = BufReader::new(file);
    let mut totals = BillTotals::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n =
            input
                .read_until(b'\n', &mut line)
                .map_err(|e| ReconcileFailure::BillUnreadable {
                    path: shown.clone(),
                    reason: e.to_string(),
                })?;
        if n == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let malformed = |e: paystate::reconcile::bill::BillError| ReconcileFailure::BillMalformed {
            path: shown.clone(),
            reason: e.to_string(),
        };
        if let Some(bill_line) = reader.line(&line).map_err(malformed)? {
            totals.add(&bill_line).map_err(malformed)?;
        }
    }
    reader
        .finish()
        .map_err(|e| ReconcileFailure::BillMalformed {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
    Ok(totals)
}

/// Reconciles the stored payments of `provider` with the bill at `bill`.
///
/// Errors: [`ReconcileFailure`] (exit status 2).
pub async fn run(
    config: &Config,
    provider: Provider,
    bill: &Path,
) -> Result<Report, ReconcileFailure> {
    let totals = match provider {
        Provider::Alipay => read_bill(bill, AlipayBill::new())?,
        Provider::Wechatpay => read_bill(bill, WechatPayBill::new())?,
        Provider::Stripe => {
            return Err(ReconcileFailure::BillUnreadable {
                path: bill.display().to_string(),
                reason: "there is no Stripe bill reader; reconcile alipay or wechatpay".to_owned(),
            });
        }
    };
    let db = Db::connect(&config.database, 2)
        .await
        .map_err(|e| ReconcileFailure::Database(e.to_string()))?;
    let rows = sqlx::query("SELECT order_id, snapshot FROM payments WHERE provider = $1")
        .bind(provider.as_str())
        .fetch_all(&db.pool)
        .await
        .map_err(|e| ReconcileFailure::Database(e.to_string()))?;
    let mut ledger: Vec<(Vec<u8>, Payment)> = Vec::with_capacity(rows.len());
    for row in rows {
        let order_id: String = row
            .try_get(0)
            .map_err(|e| ReconcileFailure::Database(e.to_string()))?;
        let bytes: Vec<u8> = row
            .try_get(1)
            .map_err(|e| ReconcileFailure::Database(e.to_string()))?;
        let payment = snapshot::decode(&bytes).map_err(|e| {
            ReconcileFailure::Database(format!("stored snapshot of {order_id}: {e}"))
        })?;
        // A bill lists captures and refunds: a payment that never captured money is not in it.
        if payment.paid().is_zero() {
            continue;
        }
        ledger.push((order_id.into_bytes(), payment));
    }
    // Byte order, whatever the database's collation.
    ledger.sort_by(|a, b| a.0.cmp(&b.0));
    let local = ledger.iter().map(|(id, p)| Entry::of(id, p));
    let mut discrepancies = Vec::new();
    for d in reconcile(local, totals.entries()) {
        let d = d.map_err(|e| ReconcileFailure::Compare(e.to_string()))?;
        discrepancies.push(discrepancy_json(&d));
    }
    let summary = json!({"summary": {
        "provider": provider.as_str(),
        "local_orders": ledger.len(),
        "bill_orders": totals.len(),
        "discrepancies": discrepancies.len(),
    }});
    db.pool.close().await;
    Ok(Report {
        discrepancies,
        summary,
    })
}

/// Prints `report` as JSON lines to `out`.
///
/// Errors: writing failed.
pub fn print(report: &Report, out: &mut impl Write) -> std::io::Result<()> {
    for d in &report.discrepancies {
        writeln!(out, "{d}")?;
    }
    writeln!(out, "{}", report.summary)
}
