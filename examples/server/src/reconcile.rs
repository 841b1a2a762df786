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

/// The period a bill covers, in seconds since the Unix epoch: `[since, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// The first second of the period.
    pub since: u64,
    /// The first second after it.
    pub until: u64,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Reads `[2026年11月29日 00:00:00]` (Beijing time, UTC+8) after `label` in `line`.
fn bracketed_time(line: &str, label: &str) -> Option<u64> {
    let rest = line.split(label).nth(1)?;
    let inside = rest.strip_prefix('[')?.split(']').next()?;
    let (date, time) = inside.trim().split_once(' ')?;
    let (y, rest) = date.split_once('年')?;
    let (m, rest) = rest.split_once('月')?;
    let d = rest.strip_suffix('日')?;
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, se) = (hms.next()??, hms.next()??, hms.next()??);
    let (y, m, d) = (
        y.parse::<i64>().ok()?,
        m.parse::<i64>().ok()?,
        d.parse::<i64>().ok()?,
    );
    let valid = (1..=9999).contains(&y)
        && (1..=12).contains(&m)
        && (1..=31).contains(&d)
        && (0..24).contains(&h)
        && (0..60).contains(&mi)
        && (0..61).contains(&se);
    if !valid {
        return None;
    }
    let secs = days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + se - 8 * 3600;
    u64::try_from(secs).ok()
}

/// The period of an Alipay bill, from its header comment
/// `#起始日期：[2026年11月29日 00:00:00]   终止日期：[2026年11月30日 00:00:00]` (GBK or UTF-8).
pub fn alipay_period(comment: &[u8]) -> Option<Period> {
    let text = match std::str::from_utf8(comment) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => encoding_rs::GBK.decode_without_bom_handling(comment).0,
    };
    let since = bracketed_time(&text, "起始日期：")?;
    let until = bracketed_time(&text, "终止日期：")?;
    (since < until).then_some(Period { since, until })
}

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

/// Reads the bill at `path` with `reader`, line by line, into per-order sums, and the period
/// its header states (Alipay's), if any.
fn read_bill<R: BillReader>(
    path: &Path,
    mut reader: R,
) -> Result<(BillTotals, Option<Period>), ReconcileFailure> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| ReconcileFailure::BillUnreadable {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let mut input = BufReader::new(file);
    let mut totals = BillTotals::new();
    let mut period = None;
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
        if period.is_none() && line.first() == Some(&b'#') {
            period = alipay_period(&line);
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
    Ok((totals, period))
}

/// Reconciles the stored payments of `provider` with the bill at `bill`.
///
/// The ledger compared is every stored payment of `provider` that captured money and either
/// is in the bill or was created within the bill's period: `period` if given, else the period
/// an Alipay bill's header states, else (a WeChat Pay bill states none) every payment. So a
/// day's bill does not report every earlier payment as missing at the provider.
///
/// Errors: [`ReconcileFailure`] (exit status 2).
pub async fn run(
    config: &Config,
    provider: Provider,
    bill: &Path,
    period: Option<Period>,
) -> Result<Report, ReconcileFailure> {
    let (totals, stated) = match provider {
        Provider::Alipay => read_bill(bill, AlipayBill::new())?,
        Provider::Wechatpay => read_bill(bill, WechatPayBill::new())?,
        Provider::Stripe => {
            return Err(ReconcileFailure::BillUnreadable {
                path: bill.display().to_string(),
                reason: "there is no Stripe bill reader; reconcile alipay or wechatpay".to_owned(),
            });
        }
    };
    let period = period.or(stated);
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
        let created = payment.created_at().as_secs();
        let in_period = period.is_none_or(|p| (p.since..p.until).contains(&created));
        if !in_period && totals.get(order_id.as_bytes()).is_none() {
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
        "period": period.map(|p| json!({"since": p.since, "until": p.until})),
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
