//! The fleet test (issue 13): three `paystate-server` instances on one database (PostgreSQL
//! when `PAYSTATE_TEST_DATABASE` names one, else one SQLite file in WAL mode shared by the
//! three processes), the Alipay simulator in this process, and a few hundred payments driven
//! through them at once:
//!
//! - payments are created through the merchant API on random instances, paid at the
//!   simulator, cancelled while their success notification is in flight, left to their
//!   deadline, refunded by the merchant (some three times at once on three instances, some
//!   nine or ten times), or left open for the query poller;
//! - every provider message (the simulator's success notifications, refund notifications
//!   taken from the simulator or built and signed with its key, the answers to the
//!   instances' own queries, closes and refunds) reaches random instances, in random order,
//!   several times, concurrently, sometimes the same one to two instances at the same instant;
//! - merchant requests are replayed with their nonce, and their idempotency keys reused with
//!   the same body and with another, on another instance than the original;
//! - one instance at a time is killed with `SIGKILL` at random moments, and started again.
//!
//! Then, once the outbox has drained, every payment's stored end state must be one that a
//! single `paystate::Payment` reaches from the same inputs (see [`model_ends`]); no
//! obligation may be outstanding; the simulator must have seen every required close and
//! refund, and never two refunds under one request number.
//!
//! `PAYSTATE_FLEET_SEED` replays a run (the seed is printed at the start and on failure, with
//! the interleaving: every action with its instance and time), `PAYSTATE_FLEET_PAYMENTS` sets
//! the number of payments (200, created over 25 s), `PAYSTATE_FLEET_SECONDS` turns on a soak
//! (payments keep being created at that rate for that many seconds), and
//! `PAYSTATE_FLEET_TRACE` names a file for the whole trace of a run that passes. The seed
//! fixes the plan (what each payment goes through, amounts, delays, instances, kill times);
//! the threads decide the exact interleaving, which the trace records.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use paystate::{
    Currency, Effect, EventId, Input, LateSuccess, Money, Outcome, Payment, RefundId, Rejection,
    Timestamp,
};
use paystate_server::sim::AlipaySim;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// How many `paystate-server` processes share the database.
const INSTANCES: usize = 3;
/// How long payments keep being created in the default run; the rate is
/// `payments / CREATION_SECS` per second, also in a soak.
const CREATION_SECS: u64 = 25;
/// The poller asks about an open payment this long after its `pay_url`, and again as often.
const QUERY_AFTER_SECS: u64 = 2;

// ------------------------------------------------------------------------------------------
// Settings, trace, shared context.

struct Settings {
    seed: u64,
    payments: usize,
    creation: Duration,
    soak: bool,
    /// The environment that runs this plan again.
    replay: String,
}

fn settings() -> Settings {
    let seed = match std::env::var("PAYSTATE_FLEET_SEED") {
        Ok(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse::<u64>(),
            };
            parsed.expect("PAYSTATE_FLEET_SEED is a number (decimal, or hex with 0x)")
        }
        Err(_) => rand::random::<u64>(),
    };
    let payments: usize = std::env::var("PAYSTATE_FLEET_PAYMENTS")
        .ok()
        .map(|s| {
            s.trim()
                .parse()
                .expect("PAYSTATE_FLEET_PAYMENTS is a count")
        })
        .unwrap_or(200)
        .max(1);
    let soak: Option<u64> = std::env::var("PAYSTATE_FLEET_SECONDS")
        .ok()
        .map(|s| {
            s.trim()
                .parse()
                .expect("PAYSTATE_FLEET_SECONDS is a number of seconds")
        })
        .filter(|&s| s > 0);
    let mut replay = format!("PAYSTATE_FLEET_SEED={seed} PAYSTATE_FLEET_PAYMENTS={payments}");
    match soak {
        None => Settings {
            seed,
            payments,
            creation: Duration::from_secs(CREATION_SECS),
            soak: false,
            replay,
        },
        Some(secs) => {
            // The same rate as the default run, for `secs` seconds.
            let rate = payments as f64 / CREATION_SECS as f64;
            replay.push_str(&format!(" PAYSTATE_FLEET_SECONDS={secs}"));
            Settings {
                seed,
                payments: ((rate * secs as f64).ceil() as usize).max(1),
                creation: Duration::from_secs(secs),
                soak: true,
                replay,
            }
        }
    }
}

/// One action: when (since the start), on which instance, about which order, what.
struct Line {
    at: Duration,
    inst: Option<usize>,
    order: String,
    what: String,
}

/// Every action of the run, with its time since the start and the instance it went to.
struct Trace {
    start: Instant,
    lines: Mutex<Vec<Line>>,
}

impl Trace {
    fn add(&self, inst: Option<usize>, order: &str, what: impl Into<String>) {
        let at = self.start.elapsed();
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Line {
                at,
                inst,
                order: order.to_owned(),
                what: what.into(),
            });
    }

    fn render(&self, filter: impl Fn(&str) -> bool) -> String {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for Line {
            at,
            inst,
            order,
            what,
        } in lines.iter()
        {
            if !filter(order) {
                continue;
            }
            let inst = inst.map_or_else(|| "  ".to_owned(), |i| format!("#{i}"));
            let _ = writeln!(out, "{:>9.3}s {inst} {order:<12} {what}", at.as_secs_f64());
        }
        out
    }
}

#[derive(Default)]
struct Stats {
    merchant_requests: AtomicUsize,
    transport_errors: AtomicUsize,
    notifications: AtomicUsize,
    notification_pairs: AtomicUsize,
    nonce_replays: AtomicUsize,
    idem_same_body: AtomicUsize,
    idem_conflicts: AtomicUsize,
    idem_pairs: AtomicUsize,
    refund_races: AtomicUsize,
    kills: AtomicUsize,
}

/// A notification the run made (and delivered), for the final round.
#[derive(Debug, Clone)]
struct Note {
    notify_id: String,
    body: String,
    what: String,
}

struct Ctx {
    sim: AlipaySim,
    bases: Vec<String>,
    http: reqwest::Client,
    trace: Trace,
    problems: Mutex<Vec<String>>,
    stats: Stats,
    /// Orders created so far (the refund-notification watcher looks at their trades).
    created: Mutex<Vec<String>>,
    /// Every notification the run made, by order.
    notes: Mutex<HashMap<String, Vec<Note>>>,
}

/// An answer's body, cut for a problem's line (a `pay_url` is long).
fn short(text: &str) -> String {
    match text.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

fn unix_secs_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn fen(yuan: &str) -> u64 {
    Money::parse(yuan, Currency::CNY)
        .map(|m| m.minor_units())
        .expect("an amount in yuan")
}

fn other(rng: &mut StdRng, than: usize) -> usize {
    (than + rng.random_range(1..INSTANCES)) % INSTANCES
}

async fn pause(rng: &mut StdRng, max_ms: u64) {
    let ms = rng.random_range(0..=max_ms);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

impl Ctx {
    fn problem(&self, order: &str, msg: impl Into<String>) {
        let msg = msg.into();
        self.trace.add(None, order, format!("PROBLEM: {msg}"));
        self.problems
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{order}: {msg}"));
    }

    fn remember_note(&self, order: &str, notify_id: &str, body: &str, what: &str) {
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        let list = notes.entry(order.to_owned()).or_default();
        if !list.iter().any(|n| n.notify_id == notify_id) {
            list.push(Note {
                notify_id: notify_id.to_owned(),
                body: body.to_owned(),
                what: what.to_owned(),
            });
        }
    }

    async fn send(
        &self,
        inst: usize,
        order: &str,
        label: &str,
        req: &Signed,
    ) -> Result<Answer, String> {
        self.stats.merchant_requests.fetch_add(1, Ordering::Relaxed);
        let result = send(&self.http, &self.bases[inst], req).await;
        let key = req
            .idem
            .as_deref()
            .map(|k| format!(" key={k}"))
            .unwrap_or_default();
        match &result {
            Ok(a) => {
                let detail = a.error().map(|e| format!(" {e}")).unwrap_or_default();
                let replay = if a.replayed { " (replayed)" } else { "" };
                self.trace.add(
                    Some(inst),
                    order,
                    format!(
                        "{label}: {} {} nonce={}{key} -> {}{detail}{replay}",
                        req.method, req.path, req.nonce, a.status
                    ),
                );
                if a.status >= 500 {
                    self.problem(
                        order,
                        format!(
                            "{label} answered {} on #{inst}: {}",
                            a.status,
                            short(&a.text)
                        ),
                    );
                }
            }
            Err(e) => {
                self.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                self.trace.add(
                    Some(inst),
                    order,
                    format!(
                        "{label}: {} {} nonce={}{key} -> no answer ({e})",
                        req.method, req.path, req.nonce
                    ),
                );
            }
        }
        result
    }

    /// Sends `req` to `inst`, and on no answer, `409 in_use` or a `5xx` retries it (the same
    /// idempotency key and body, a fresh nonce) on other instances until a definitive answer
    /// (bounded). Returns that answer, the request that got it and its instance, and whether
    /// any attempt went unanswered.
    async fn resolve(
        &self,
        order: &str,
        label: &str,
        inst: usize,
        req: Signed,
        rng: &mut StdRng,
    ) -> Option<(Answer, Signed, usize, bool)> {
        let mut inst = inst;
        let mut req = req;
        let mut lost = false;
        for attempt in 0..80 {
            let label = if attempt == 0 {
                label.to_owned()
            } else {
                format!("{label} (retry {attempt})")
            };
            match self.send(inst, order, &label, &req).await {
                Ok(a) if a.status < 500 && !(a.status == 409 && a.error() == Some("in_use")) => {
                    return Some((a, req, inst, lost));
                }
                Ok(_) => {}
                Err(_) => lost = true,
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(150..600))).await;
            inst = other(rng, inst);
            req = req.fresh();
        }
        self.problem(
            order,
            format!("{label}: no definitive answer after 80 attempts"),
        );
        None
    }

    /// Delivers a notification body to `inst`; the reply, `None` when no answer came. A
    /// genuine notification about an existing order must be answered `success`.
    async fn notify(&self, inst: usize, order: &str, what: &str, body: &str) -> Option<String> {
        self.stats.notifications.fetch_add(1, Ordering::Relaxed);
        match send_notify(&self.http, &self.bases[inst], body).await {
            Ok(reply) => {
                self.trace
                    .add(Some(inst), order, format!("notify {what} -> {reply}"));
                if reply != "success" {
                    self.problem(
                        order,
                        format!("notification {what} answered {reply:?} by #{inst}"),
                    );
                }
                Some(reply)
            }
            Err(e) => {
                self.trace.add(
                    Some(inst),
                    order,
                    format!("notify {what} -> no answer ({e})"),
                );
                None
            }
        }
    }

    /// The same notification to two instances at the same instant.
    async fn notify_pair(
        &self,
        a: usize,
        b: usize,
        order: &str,
        what: &str,
        body: &str,
    ) -> Vec<Option<String>> {
        self.stats
            .notification_pairs
            .fetch_add(1, Ordering::Relaxed);
        let (x, y) = tokio::join!(
            self.notify(a, order, what, body),
            self.notify(b, order, what, body)
        );
        vec![x, y]
    }

    /// The payment's view from a random instance (retried on another when one is down).
    async fn view(&self, order: &str, rng: &mut StdRng) -> Option<serde_json::Value> {
        let path = format!("/v1/payments/{order}");
        for _ in 0..20 {
            let inst = rng.random_range(0..INSTANCES);
            if let Ok(a) = self
                .send(inst, order, "view", &Signed::new("GET", &path, "", None))
                .await
                && a.status == 200
            {
                return Some(a.json);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        None
    }
}

// ------------------------------------------------------------------------------------------
// Plans and what the test saw.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeadlinePay {
    /// Nobody pays: the sweeper cancels it and the close is carried out.
    Never,
    /// The buyer pays within ±1.5 s of the deadline: the success and the tick race.
    Near,
    /// The buyer pays after the test saw it cancelled: a late payment, refunded.
    Late,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Paid; the success delivered several times.
    Paid,
    /// Paid, then refunded by the merchant: `race`, three refunds of 40 % at once on the three
    /// instances (exactly two may pass); `many`, nine or ten small ones (more applied events
    /// than the engine's event-id memory holds).
    Refunds { many: bool, race: bool },
    /// Paid at the provider, then the merchant's cancel and the success notification at once.
    CancelRacesSuccess,
    /// Cancelled, then paid anyway (before or after the close reaches the provider).
    CancelThenLate,
    /// Cancelled without the cashier ever being opened (the close finds no trade).
    CancelUnopened,
    /// A deadline a few seconds ahead; `cancel`: the merchant cancels around it too.
    Deadline { pay: DeadlinePay, cancel: bool },
    /// Never paid, no deadline: left open (the poller queries it).
    Open { opened: bool },
}

/// The answer the merchant's cancel finally got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelSeen {
    /// `200`: a cancel was applied (or found the payment cancelled already).
    Ok,
    /// `409 invalid_transition`: the payment had succeeded first.
    Refused,
    /// No definitive answer.
    Unknown,
}

#[derive(Debug, Clone)]
struct Record {
    index: usize,
    order: String,
    plan: Plan,
    amount: u64,
    expires_at: Option<u64>,
    policy: LateSuccess,
    created: bool,
    opened: bool,
    cancel: Option<CancelSeen>,
    /// The success notification: `(notify_id, body)`.
    success_note: Option<(String, String)>,
    /// When (Unix seconds) an instance first answered `success` to the success notification.
    success_acked_at: Option<f64>,
    /// The buyer paid only after the test saw the payment cancelled by its deadline.
    paid_after_seen_cancelled: bool,
    /// Refunds the merchant API accepted (`202`): `(refund_id, fen)`.
    refunds: Vec<(String, u64)>,
    /// Orders of conflicting idempotency-key reuses: they must never exist.
    absent: Vec<String>,
    /// A retried create was refused because the deadline had passed: the payment must not
    /// exist (had the dead run stored it, the retry would have answered 201).
    never_stored: bool,
}

impl Record {
    fn new(index: usize, plan: Plan, amount: u64, policy: LateSuccess) -> Record {
        Record {
            index,
            order: format!("fl-{index:05}"),
            plan,
            amount,
            expires_at: None,
            policy,
            created: false,
            opened: false,
            cancel: None,
            success_note: None,
            success_acked_at: None,
            paid_after_seen_cancelled: false,
            refunds: Vec::new(),
            absent: Vec::new(),
            never_stored: false,
        }
    }
}

fn draw_plan(rng: &mut StdRng) -> Plan {
    match rng.random_range(0..100) {
        0..20 => Plan::Paid,
        20..28 => Plan::Refunds {
            many: false,
            race: false,
        },
        28..35 => Plan::Refunds {
            many: false,
            race: true,
        },
        35..40 => Plan::Refunds {
            many: true,
            race: false,
        },
        40..55 => Plan::CancelRacesSuccess,
        55..65 => Plan::CancelThenLate,
        65..69 => Plan::CancelUnopened,
        69..75 => Plan::Deadline {
            pay: DeadlinePay::Never,
            cancel: rng.random_bool(0.3),
        },
        75..85 => Plan::Deadline {
            pay: DeadlinePay::Near,
            cancel: false,
        },
        85..93 => Plan::Deadline {
            pay: DeadlinePay::Late,
            cancel: rng.random_bool(0.3),
        },
        _ => Plan::Open {
            opened: rng.random_bool(0.7),
        },
    }
}

// ------------------------------------------------------------------------------------------
// One payment's script.

async fn run_payment(ctx: Arc<Ctx>, mut rec: Record, mut rng: StdRng) -> Record {
    let order = rec.order.clone();
    ctx.trace.add(
        None,
        &order,
        format!(
            "plan {:?}, {} CNY, late_success {}",
            rec.plan,
            yuan(rec.amount),
            rec.policy.name()
        ),
    );
    if let Plan::Deadline { .. } = rec.plan {
        rec.expires_at = Some(unix_now() + rng.random_range(3..=6));
    }
    let Some(pay_url) = create(&ctx, &mut rec, &mut rng).await else {
        return rec;
    };
    let pay_url = match pay_url {
        Some(url) => url,
        None => {
            // Created, but its pay_url was lost (a problem, recorded): the buyer never reaches
            // the cashier. What is left to check is a cancel.
            ctx.trace
                .add(None, &order, "no pay_url: the plan becomes CancelUnopened");
            rec.plan = Plan::CancelUnopened;
            String::new()
        }
    };
    match rec.plan {
        Plan::Paid => {
            pause(&mut rng, 1500).await;
            open(&ctx, &mut rec, &pay_url).await;
            pause(&mut rng, 1500).await;
            if pay(&ctx, &mut rec, false).await {
                deliver_success(&ctx, &mut rec, &mut rng, 2000).await;
            }
        }
        Plan::Refunds { many, race } => {
            open(&ctx, &mut rec, &pay_url).await;
            pause(&mut rng, 1000).await;
            if pay(&ctx, &mut rec, false).await {
                deliver_success(&ctx, &mut rec, &mut rng, 1000).await;
                if rec.success_acked_at.is_some() {
                    refunds(&ctx, &mut rec, &mut rng, many, race).await;
                }
            }
        }
        Plan::CancelRacesSuccess => {
            open(&ctx, &mut rec, &pay_url).await;
            pause(&mut rng, 1000).await;
            if pay(&ctx, &mut rec, false).await {
                let note = rec.success_note.clone().map(|(_, b)| b).unwrap_or_default();
                let a = rng.random_range(0..INSTANCES);
                let b = other(&mut rng, a);
                let c = other(&mut rng, b);
                let both = rng.random_bool(0.5);
                let (cancel_result, _, _) = tokio::join!(
                    cancel(&ctx, &order, a, &mut rng),
                    ctx.notify(b, &order, "TRADE_SUCCESS", &note),
                    async {
                        if both {
                            ctx.notify(c, &order, "TRADE_SUCCESS", &note).await
                        } else {
                            None
                        }
                    }
                );
                rec.cancel = Some(cancel_result);
                deliver_success(&ctx, &mut rec, &mut rng, 1500).await;
            }
        }
        Plan::CancelThenLate => {
            open(&ctx, &mut rec, &pay_url).await;
            pause(&mut rng, 800).await;
            let inst = rng.random_range(0..INSTANCES);
            let seen = cancel(&ctx, &order, inst, &mut rng).await;
            rec.cancel = Some(seen);
            if seen == CancelSeen::Refused {
                ctx.problem(&order, "a cancel of an unpaid payment was refused");
            }
            // Sometimes before the close reaches the provider, sometimes after.
            pause(&mut rng, 2500).await;
            if pay(&ctx, &mut rec, true).await {
                deliver_success(&ctx, &mut rec, &mut rng, 1500).await;
            }
        }
        Plan::CancelUnopened => {
            pause(&mut rng, 1000).await;
            let inst = rng.random_range(0..INSTANCES);
            rec.cancel = Some(cancel(&ctx, &order, inst, &mut rng).await);
        }
        Plan::Deadline {
            pay: when,
            cancel: also_cancel,
        } => {
            let expires = rec.expires_at.unwrap_or_default();
            if when != DeadlinePay::Never || rng.random_bool(0.85) {
                open(&ctx, &mut rec, &pay_url).await;
            }
            let cancel_seed: u64 = rng.random();
            let cancel_at = expires as f64 + rng.random_range(-1.5..1.5);
            let cancel_inst = rng.random_range(0..INSTANCES);
            let pay_seed: u64 = rng.random();
            let (ctx_ref, order_ref) = (&ctx, &order);
            let cancel_task = async move {
                if also_cancel {
                    // Around the deadline: the cancel and the tick race (both cancel).
                    sleep_until_unix(cancel_at).await;
                    let mut crng = StdRng::seed_from_u64(cancel_seed);
                    Some(cancel(ctx_ref, order_ref, cancel_inst, &mut crng).await)
                } else {
                    None
                }
            };
            let rec_ref = &mut rec;
            let pay_task = async move {
                let mut prng = StdRng::seed_from_u64(pay_seed);
                match when {
                    DeadlinePay::Never => {}
                    DeadlinePay::Near => {
                        let at = expires as f64 + prng.random_range(-1.5..1.5);
                        sleep_until_unix(at).await;
                        if pay(ctx_ref, rec_ref, false).await {
                            deliver_success(ctx_ref, rec_ref, &mut prng, 1000).await;
                        }
                    }
                    DeadlinePay::Late => {
                        sleep_until_unix(expires as f64).await;
                        let deadline = Instant::now() + Duration::from_secs(40);
                        loop {
                            let v = ctx_ref.view(order_ref, &mut prng).await;
                            if v.as_ref().is_some_and(|v| v["status"] == "cancelled") {
                                break;
                            }
                            if Instant::now() > deadline {
                                ctx_ref.problem(
                                    order_ref,
                                    format!("not cancelled 40 s after its deadline: {v:?}"),
                                );
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(300)).await;
                        }
                        rec_ref.paid_after_seen_cancelled = true;
                        pause(&mut prng, 1000).await;
                        if pay(ctx_ref, rec_ref, true).await {
                            deliver_success(ctx_ref, rec_ref, &mut prng, 1000).await;
                        }
                    }
                }
            };
            let (seen, ()) = tokio::join!(cancel_task, pay_task);
            if seen.is_some() {
                rec.cancel = seen;
            }
        }
        Plan::Open { opened } => {
            if opened {
                pause(&mut rng, 1000).await;
                open(&ctx, &mut rec, &pay_url).await;
            }
        }
    }
    ctx.trace.add(None, &order, "script done");
    rec
}

async fn sleep_until_unix(at: f64) {
    let now = unix_secs_f64();
    if at > now {
        tokio::time::sleep(Duration::from_secs_f64(at - now)).await;
    }
}

/// Creates the payment (an idempotency key; sometimes two instances at once with it), then
/// checks the key and the nonce from other instances. `None`: not created (a problem was
/// recorded); `Some(None)`: created but its `pay_url` was lost.
async fn create(ctx: &Ctx, rec: &mut Record, rng: &mut StdRng) -> Option<Option<String>> {
    let order = rec.order.clone();
    let mut body = json!({
        "order_id": order,
        "provider": "alipay",
        "amount": yuan(rec.amount),
        "currency": "CNY",
        "subject": format!("Fleet order {}", rec.index),
    });
    if let Some(e) = rec.expires_at {
        body["expires_at"] = json!(e);
    }
    if rec.policy == LateSuccess::Accept || rng.random_bool(0.5) {
        body["late_success"] = json!(rec.policy.name());
    }
    let body = body.to_string();
    let key = format!("create-{order}");
    let req = Signed::new("POST", "/v1/payments", &body, Some(&key));
    let inst = rng.random_range(0..INSTANCES);
    let mut definitive = None;
    if rng.random_bool(0.1) {
        // The same key and body on two instances at the same instant: one runs, the other is
        // told the key is in use (or, if the first was already done, gets its response).
        ctx.stats.idem_pairs.fetch_add(1, Ordering::Relaxed);
        let twin = req.fresh();
        let b = other(rng, inst);
        let (x, y) = tokio::join!(
            ctx.send(inst, &order, "create (pair)", &req),
            ctx.send(b, &order, "create (pair)", &twin)
        );
        if let (Ok(x), Ok(y)) = (&x, &y) {
            let ran: Vec<&Answer> = [x, y]
                .into_iter()
                .filter(|a| a.status == 201 && !a.replayed)
                .collect();
            let other_ok = [x, y]
                .into_iter()
                .all(|a| a.status == 201 || (a.status == 409 && a.error() == Some("in_use")));
            if ran.len() != 1 || !other_ok {
                ctx.problem(
                    &order,
                    format!(
                        "one key on two instances at once: {} {} / {} {}",
                        x.status,
                        short(&x.text),
                        y.status,
                        short(&y.text)
                    ),
                );
            } else {
                definitive = Some((
                    ran[0].clone(),
                    if x.status == 201 && !x.replayed {
                        req.clone()
                    } else {
                        twin.clone()
                    },
                    if x.status == 201 && !x.replayed {
                        inst
                    } else {
                        b
                    },
                    false,
                ));
            }
        }
    }
    let (answer, sent, by, lost) = match definitive {
        Some(d) => d,
        None => {
            ctx.resolve(&order, "create", inst, req.fresh(), rng)
                .await?
        }
    };
    let pay_url = match (answer.status, answer.error()) {
        (201, _) => answer.json["pay_url"].as_str().map(str::to_owned),
        // A retry after an answer was lost must answer as the lost run would have, pay_url
        // included: without it the order can never be paid.
        (409, Some("payment_exists")) if lost => {
            ctx.problem(
                &order,
                "a create retried with its idempotency key after its answer was lost got \
                 409 payment_exists: its pay_url is lost",
            );
            None
        }
        // The run that held the key died, and its deadline (a few seconds ahead) passed before
        // a retry could take the key over: if that run stored the payment, the retry answers
        // 201 with it; it answered 400, so nothing was stored (checked at the end: no row).
        (400, Some("bad_input"))
            if lost
                && answer.text.contains("expires_at is not in the future")
                && rec.expires_at.is_some_and(|e| e <= unix_now()) =>
        {
            ctx.trace.add(
                None,
                &order,
                "not created: its deadline passed before a retry could create it",
            );
            rec.never_stored = true;
            return None;
        }
        _ => {
            ctx.problem(
                &order,
                format!("create answered {} {}", answer.status, short(&answer.text)),
            );
            return None;
        }
    };
    rec.created = true;
    ctx.created
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(order.clone());
    // The same key and body on another instance: the stored response, byte for byte.
    if rng.random_bool(0.3) {
        check_same_body(ctx, &order, "create", &sent, &answer, by, rng).await;
    }
    // The same key with another body (another order) on another instance: refused, and that
    // order is never created.
    if rng.random_bool(0.25) {
        let alt = format!("{order}-alt");
        let alt_body = body.replace(&format!("\"{order}\""), &format!("\"{alt}\""));
        let conflicting = Signed::new("POST", "/v1/payments", &alt_body, Some(&key));
        check_conflict(ctx, &order, "create", &conflicting, by, rng).await;
        rec.absent.push(alt);
    }
    // The exact request again (its nonce) on another instance.
    if rng.random_bool(0.25) {
        check_replay(ctx, &order, "create", &sent, by, rng).await;
    }
    Some(pay_url)
}

async fn check_same_body(
    ctx: &Ctx,
    order: &str,
    label: &str,
    sent: &Signed,
    original: &Answer,
    by: usize,
    rng: &mut StdRng,
) {
    ctx.stats.idem_same_body.fetch_add(1, Ordering::Relaxed);
    let inst = other(rng, by);
    let label = format!("{label}: same key, same body");
    if let Ok(a) = ctx.send(inst, order, &label, &sent.fresh()).await
        && (a.status != original.status || a.text != original.text || !a.replayed)
    {
        ctx.problem(
            order,
            format!(
                "{label} on #{inst}: {} {} (replayed: {}), not the stored {} {}",
                a.status,
                short(&a.text),
                a.replayed,
                original.status,
                short(&original.text)
            ),
        );
    }
}

async fn check_conflict(
    ctx: &Ctx,
    order: &str,
    label: &str,
    conflicting: &Signed,
    by: usize,
    rng: &mut StdRng,
) {
    ctx.stats.idem_conflicts.fetch_add(1, Ordering::Relaxed);
    let inst = other(rng, by);
    let label = format!("{label}: same key, another body");
    if let Ok(a) = ctx.send(inst, order, &label, conflicting).await
        && (a.status, a.error()) != (422, Some("idempotency_conflict"))
    {
        ctx.problem(
            order,
            format!(
                "{label} on #{inst}: {} {}, not 422 idempotency_conflict",
                a.status,
                short(&a.text)
            ),
        );
    }
}

async fn check_replay(
    ctx: &Ctx,
    order: &str,
    label: &str,
    sent: &Signed,
    by: usize,
    rng: &mut StdRng,
) {
    ctx.stats.nonce_replays.fetch_add(1, Ordering::Relaxed);
    let inst = other(rng, by);
    let label = format!("{label}: replayed nonce");
    if let Ok(a) = ctx.send(inst, order, &label, sent).await
        && (a.status, a.error()) != (401, Some("replayed"))
    {
        ctx.problem(
            order,
            format!(
                "{label} on #{inst}: {} {}, not 401 replayed",
                a.status,
                short(&a.text)
            ),
        );
    }
}

async fn open(ctx: &Ctx, rec: &mut Record, pay_url: &str) {
    match ctx.sim.open(pay_url).await {
        Ok(()) => {
            rec.opened = true;
            ctx.trace.add(None, &rec.order, "cashier opened");
        }
        Err(e) => ctx.problem(&rec.order, format!("the cashier did not open: {e}")),
    }
}

/// The buyer pays (`late`: even a closed trade). Takes the success notification the
/// simulator made. `false` when the simulator refused (a trade closed by the deadline's
/// close before the buyer got there).
async fn pay(ctx: &Ctx, rec: &mut Record, late: bool) -> bool {
    let order = rec.order.clone();
    let paid = if late {
        ctx.sim.pay_late(&order).await
    } else {
        ctx.sim.pay(&order).await
    };
    if let Err(e) = paid {
        ctx.trace.add(
            None,
            &order,
            format!(
                "buyer pays{}: refused ({e})",
                if late { " late" } else { "" }
            ),
        );
        if !matches!(
            rec.plan,
            Plan::Deadline {
                pay: DeadlinePay::Near,
                ..
            }
        ) {
            ctx.problem(&order, format!("the buyer could not pay: {e}"));
        }
        return false;
    }
    let fields = ctx.sim.notification_fields(&order).unwrap_or_default();
    let body = ctx.sim.notification(&order).unwrap_or_default();
    let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
    let notify_id = get("notify_id").unwrap_or_default();
    let is_success =
        get("trade_status").as_deref() == Some("TRADE_SUCCESS") && get("out_biz_no").is_none();
    if !is_success || notify_id.is_empty() || !body.contains(&notify_id) {
        // Something (a refund) made a newer notification in between: sign our own.
        let notify_id = format!("{:032x}", rand::random::<u128>());
        let trade = ctx.sim.trade(&order);
        let trade_no = trade
            .as_ref()
            .map(|t| t.trade_no.clone())
            .unwrap_or_default();
        let amount = yuan(rec.amount);
        let gmt = trade
            .and_then(|t| t.gmt_payment)
            .unwrap_or_else(|| "2026-11-30 12:00:00".into());
        let body = ctx.sim.sign_notification(&[
            ("notify_time", &gmt),
            ("notify_type", "trade_status_sync"),
            ("notify_id", &notify_id),
            ("app_id", APP_ID),
            ("charset", "utf-8"),
            ("version", "1.0"),
            ("sign_type", "RSA2"),
            ("trade_no", &trade_no),
            ("out_trade_no", &order),
            ("seller_id", SELLER_ID),
            ("total_amount", &amount),
            ("trade_status", "TRADE_SUCCESS"),
            ("gmt_payment", &gmt),
        ]);
        rec.success_note = Some((notify_id.clone(), body.clone()));
        ctx.remember_note(&order, &notify_id, &body, "TRADE_SUCCESS (built)");
    } else {
        rec.success_note = Some((notify_id.clone(), body.clone()));
        ctx.remember_note(&order, &notify_id, &body, "TRADE_SUCCESS");
    }
    ctx.trace.add(
        None,
        &order,
        format!(
            "buyer pays{} (notify_id {})",
            if late { " late" } else { "" },
            rec.success_note
                .as_ref()
                .map(|n| n.0.as_str())
                .unwrap_or("")
        ),
    );
    true
}

/// Delivers the success notification two to four times over `spread_ms`, to random
/// instances, one of the deliveries to two instances at the same instant; then, if no
/// instance acknowledged it yet, again until one does (bounded).
async fn deliver_success(ctx: &Ctx, rec: &mut Record, rng: &mut StdRng, spread_ms: u64) {
    let Some((_, body)) = rec.success_note.clone() else {
        return;
    };
    let order = rec.order.clone();
    let k = rng.random_range(2..=4);
    let pair_at = rng.random_range(0..k);
    let mut plan = Vec::new();
    for d in 0..k {
        let delay = rng.random_range(0..=spread_ms);
        let a = rng.random_range(0..INSTANCES);
        let b = other(rng, a);
        plan.push((delay, a, (d == pair_at).then_some(b)));
    }
    let acks: Mutex<Vec<f64>> = Mutex::new(Vec::new());
    let deliveries = plan.into_iter().map(|(delay, a, b)| {
        let body = &body;
        let order = &order;
        let acks = &acks;
        async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let replies = match b {
                Some(b) => ctx.notify_pair(a, b, order, "TRADE_SUCCESS", body).await,
                None => vec![ctx.notify(a, order, "TRADE_SUCCESS", body).await],
            };
            if replies.iter().any(|r| r.as_deref() == Some("success")) {
                acks.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(unix_secs_f64());
            }
        }
    });
    join_all(deliveries).await;
    let mut acked: Option<f64> = acks
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .reduce(f64::min);
    let mut tries = 0;
    while acked.is_none() && tries < 60 {
        tries += 1;
        let inst = rng.random_range(0..INSTANCES);
        if ctx
            .notify(inst, &order, "TRADE_SUCCESS (until acknowledged)", &body)
            .await
            .as_deref()
            == Some("success")
        {
            acked = Some(unix_secs_f64());
        } else {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    if acked.is_none() {
        ctx.problem(&order, "no instance acknowledged the success notification");
    }
    // An acknowledgement's time bounds when the success was applied: at or before it.
    rec.success_acked_at = match (rec.success_acked_at, acked) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
}

/// Runs futures concurrently on this task and waits for all of them.
async fn join_all<F: std::future::Future<Output = ()>>(futures: impl IntoIterator<Item = F>) {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    std::future::poll_fn(move |cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

/// The merchant cancels (with an idempotency key; retried on other instances when the
/// answer is lost), and sometimes replays the request or reuses its key from another
/// instance.
async fn cancel(ctx: &Ctx, order: &str, inst: usize, rng: &mut StdRng) -> CancelSeen {
    let path = format!("/v1/payments/{order}/cancel");
    let key = format!("cancel-{order}");
    let req = Signed::new("POST", &path, "", Some(&key));
    let Some((answer, sent, by, _)) = ctx.resolve(order, "cancel", inst, req, rng).await else {
        return CancelSeen::Unknown;
    };
    let seen = match (answer.status, answer.error()) {
        (200, _) => CancelSeen::Ok,
        (409, Some("invalid_transition")) => CancelSeen::Refused,
        _ => {
            ctx.problem(
                order,
                format!("cancel answered {} {}", answer.status, short(&answer.text)),
            );
            CancelSeen::Unknown
        }
    };
    if rng.random_bool(0.3) {
        check_replay(ctx, order, "cancel", &sent, by, rng).await;
    }
    if rng.random_bool(0.3) {
        check_same_body(ctx, order, "cancel", &sent, &answer, by, rng).await;
    }
    if rng.random_bool(0.2) {
        let conflicting = Signed::new("POST", &path, "{}", Some(&key));
        check_conflict(ctx, order, "cancel", &conflicting, by, rng).await;
    }
    seen
}

/// A refund request's fate: `(refund_id, accepted)`, `None` without a definitive answer.
type Decided = Option<(String, bool)>;

/// One merchant refund request, resolved: `Some(true)` accepted (`202`), `Some(false)`
/// refused for the balance, `None` no definitive answer.
async fn refund_once(
    ctx: &Ctx,
    rec: &Record,
    k: usize,
    fen: u64,
    inst: usize,
    rng: &mut StdRng,
) -> Decided {
    let order = &rec.order;
    let refund_id = format!("{order}-r{k}");
    let path = format!("/v1/payments/{order}/refunds");
    let body = json!({"refund_id": refund_id, "amount": yuan(fen)}).to_string();
    let key = format!("refund-{order}-{k}");
    let req = Signed::new("POST", &path, &body, Some(&key));
    let label = format!("refund {refund_id} of {}", yuan(fen));
    let (answer, sent, by, _) = ctx.resolve(order, &label, inst, req, rng).await?;
    let accepted = match (answer.status, answer.error()) {
        (202, _) => true,
        (409, Some("refund_exceeds_balance")) => false,
        _ => {
            ctx.problem(
                order,
                format!("{label} answered {} {}", answer.status, short(&answer.text)),
            );
            return None;
        }
    };
    if rng.random_bool(0.3) {
        check_same_body(ctx, order, &label, &sent, &answer, by, rng).await;
    }
    if rng.random_bool(0.25) {
        let other_body = json!({"refund_id": refund_id, "amount": yuan(fen + 1)}).to_string();
        let conflicting = Signed::new("POST", &path, &other_body, Some(&key));
        check_conflict(ctx, order, &label, &conflicting, by, rng).await;
    }
    if rng.random_bool(0.25) {
        check_replay(ctx, order, &label, &sent, by, rng).await;
    }
    Some((refund_id, accepted))
}

async fn refunds(ctx: &Ctx, rec: &mut Record, rng: &mut StdRng, many: bool, race: bool) {
    let amount = rec.amount;
    let order = rec.order.clone();
    if race {
        // Three refunds of 40 % at once on the three instances: whichever two come first fit
        // the balance, the third must be refused.
        ctx.stats.refund_races.fetch_add(1, Ordering::Relaxed);
        let part = amount * 40 / 100;
        let seeds: Vec<u64> = (0..3).map(|_| rng.random()).collect();
        let results: Mutex<Vec<(u64, Decided)>> = Mutex::new(Vec::new());
        let snapshot = rec.clone();
        join_all((0..3).map(|k| {
            let results = &results;
            let snapshot = &snapshot;
            let seed = seeds[k];
            async move {
                let mut r = StdRng::seed_from_u64(seed);
                let got = refund_once(ctx, snapshot, k, part, k, &mut r).await;
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((part, got));
            }
        }))
        .await;
        let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
        let accepted: Vec<(String, u64)> = results
            .iter()
            .filter_map(|(f, r)| {
                r.as_ref()
                    .filter(|(_, ok)| *ok)
                    .map(|(id, _)| (id.clone(), *f))
            })
            .collect();
        let decided = results.iter().filter(|(_, r)| r.is_some()).count();
        if decided == 3 && accepted.len() != 2 {
            ctx.problem(
                &order,
                format!(
                    "three refunds of 40 % at once: {} accepted, not 2",
                    accepted.len()
                ),
            );
        }
        rec.refunds.extend(accepted);
        if rng.random_bool(0.6) {
            let left = amount.saturating_sub(rec.refunds.iter().map(|(_, f)| f).sum::<u64>());
            if left > 0 {
                let inst = rng.random_range(0..INSTANCES);
                if let Some((id, true)) = refund_once(ctx, rec, 3, left, inst, rng).await {
                    rec.refunds.push((id, left));
                } else {
                    ctx.problem(
                        &order,
                        format!("a refund of the {} left was not accepted", yuan(left)),
                    );
                }
            }
        }
        return;
    }
    let parts: Vec<u64> = if many {
        let n = rng.random_range(9..=10);
        (0..n).map(|_| rng.random_range(100..=300)).collect()
    } else {
        let first = rng.random_range(1..=amount.max(2) - 1);
        if rng.random_bool(0.5) {
            vec![first, amount - first]
        } else {
            vec![first]
        }
    };
    let mut k = 0;
    while k < parts.len() {
        // Sometimes two at once, on two instances.
        let together = if k + 1 < parts.len() && rng.random_bool(0.3) {
            2
        } else {
            1
        };
        let a = rng.random_range(0..INSTANCES);
        let b = other(rng, a);
        let seeds: Vec<u64> = (0..together).map(|_| rng.random()).collect();
        let results: Mutex<Vec<(u64, Decided)>> = Mutex::new(Vec::new());
        let snapshot = rec.clone();
        join_all((0..together).map(|j| {
            let results = &results;
            let snapshot = &snapshot;
            let fen = parts[k + j];
            let inst = if j == 0 { a } else { b };
            let seed = seeds[j];
            async move {
                let mut r = StdRng::seed_from_u64(seed);
                let got = refund_once(ctx, snapshot, k + j, fen, inst, &mut r).await;
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((fen, got));
            }
        }))
        .await;
        for (fen, got) in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
            match got {
                Some((id, true)) => rec.refunds.push((id, fen)),
                Some((id, false)) => ctx.problem(
                    &order,
                    format!(
                        "refund {id} of {} within the balance was refused",
                        yuan(fen)
                    ),
                ),
                None => {}
            }
        }
        k += together;
        pause(rng, 400).await;
    }
}

// ------------------------------------------------------------------------------------------
// Refund notifications: a watcher that turns every refund the simulator makes into a
// notification (the simulator's own when it is still its last one, else one built and
// signed with its key) delivered one to three times to random instances.

async fn refund_notifier(ctx: Arc<Ctx>, mut rng: StdRng, stop: Arc<std::sync::atomic::AtomicBool>) {
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut tasks = tokio::task::JoinSet::new();
    while !stop.load(Ordering::Relaxed) {
        let orders: Vec<String> = ctx
            .created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for order in orders {
            let Some(trade) = ctx.sim.trade(&order) else {
                continue;
            };
            let total = fen(&trade.total_amount);
            let mut cumulative = 0u64;
            for (out_request_no, amount) in &trade.refunds {
                cumulative += fen(amount);
                if !seen.insert((order.clone(), out_request_no.clone())) {
                    continue;
                }
                let (notify_id, body, what) =
                    refund_note(&ctx, &trade, out_request_no, cumulative, total);
                ctx.remember_note(&order, &notify_id, &body, &what);
                let deliveries = rng.random_range(1..=3);
                for _ in 0..deliveries {
                    let delay = rng.random_range(0..1500);
                    let a = rng.random_range(0..INSTANCES);
                    let b = other(&mut rng, a);
                    let pair = rng.random_bool(0.25);
                    let ctx = Arc::clone(&ctx);
                    let (order, body, what) = (order.clone(), body.clone(), what.clone());
                    tasks.spawn(async move {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        if pair {
                            ctx.notify_pair(a, b, &order, &what, &body).await;
                        } else {
                            ctx.notify(a, &order, &what, &body).await;
                        }
                    });
                }
            }
        }
        while tasks.try_join_next().is_some() {}
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    while tasks.join_next().await.is_some() {}
}

fn refund_note(
    ctx: &Ctx,
    trade: &paystate_server::sim::Trade,
    out_request_no: &str,
    cumulative: u64,
    total: u64,
) -> (String, String, String) {
    let order = &trade.out_trade_no;
    let what = format!("refund {out_request_no}");
    if let Some(fields) = ctx.sim.notification_fields(order) {
        let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
        if get("out_biz_no").as_deref() == Some(out_request_no)
            && let (Some(id), Some(body)) = (get("notify_id"), ctx.sim.notification(order))
            && body.contains(&id)
        {
            return (id, body, what);
        }
    }
    let notify_id = format!("{:032x}", rand::random::<u128>());
    let status = if cumulative >= total {
        "TRADE_CLOSED"
    } else {
        "TRADE_SUCCESS"
    };
    let gmt = trade
        .gmt_payment
        .clone()
        .unwrap_or_else(|| "2026-11-30 12:00:00".into());
    let fee = yuan(cumulative);
    let body = ctx.sim.sign_notification(&[
        ("notify_time", &gmt),
        ("notify_type", "trade_status_sync"),
        ("notify_id", &notify_id),
        ("app_id", APP_ID),
        ("charset", "utf-8"),
        ("version", "1.0"),
        ("sign_type", "RSA2"),
        ("trade_no", &trade.trade_no),
        ("out_trade_no", order),
        ("seller_id", SELLER_ID),
        ("total_amount", &trade.total_amount),
        ("trade_status", status),
        ("gmt_payment", &gmt),
        ("out_biz_no", out_request_no),
        ("refund_fee", &fee),
        ("gmt_refund", &format!("{gmt}.000")),
    ]);
    (notify_id, body, format!("{what} (built)"))
}

// ------------------------------------------------------------------------------------------
// The model: a single engine payment fed the same inputs.

/// A payment's end state as the checks compare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct End {
    status: &'static str,
    paid: u64,
    refunded: u64,
}

fn end_of(p: &Payment) -> End {
    End {
        status: p.status().name(),
        paid: p.paid().minor_units(),
        refunded: p.refunded().minor_units(),
    }
}

/// An input from outside the payment's own obligations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    /// The poller's query found the trade waiting for the buyer.
    Initiate,
    /// The success: a notification or a query's answer (they are one capture; the second is
    /// `ignored` since the payment is paid).
    Succeed,
    /// The merchant's cancel.
    Cancel,
    /// The sweeper's tick at or after the deadline.
    Tick,
}

/// What the fleet gave one payment, and what the test saw of the order.
struct ModelInputs<'a> {
    /// The trade was opened at the simulator, so a query could find it waiting.
    opened: bool,
    /// The trade ended paid at the simulator: a success reached the server (the test
    /// delivered it until acknowledged; the poller may have found it too).
    paid_at_provider: bool,
    cancel: Option<CancelSeen>,
    deadline: Option<u64>,
    /// An instance acknowledged the success before the deadline (test clock = server clock).
    success_acked_before_deadline: bool,
    /// The buyer paid only after the test saw the payment cancelled: the success found it
    /// cancelled (by the tick, or by the merchant's cancel around the deadline).
    paid_after_cancelled: bool,
    refunds: &'a [(String, u64)],
}

fn permutations(items: &[Ext]) -> Vec<Vec<Ext>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, first);
            out.push(tail);
        }
    }
    out
}

fn ev(what: &[u8], order: &str) -> EventId {
    EventId::derived(&[b"fleet-model", what, order.as_bytes()]).expect("an event id")
}

/// The end states a single `paystate::Payment` (`fresh`: as created) reaches from the inputs
/// the fleet gave it, with one order of inputs reaching each.
///
/// "The same set of inputs": the external inputs (the success, the merchant's cancel, the
/// sweeper's tick, the poller's `initiate`), then the merchant's accepted refunds, then the
/// provider's confirmations of every effect still owed (the close; the required refund).
/// Duplicates and redeliveries add nothing: the engine answers them `duplicate` or `ignored`
/// (the final redelivery round checks it on the server, even once the event-id memory has
/// forgotten them).
///
/// Which order the fleet applied the external inputs in is not observable in general, and
/// two pairs legitimately change the outcome:
///
/// - **cancel vs success**: a cancel applied first makes the payment `cancelled`; the success
///   then captures the money and owes its refund (`refunded` in the end, the required refund
///   made once). The success applied first makes it `succeeded`, and the cancel is refused
///   with `409 invalid_transition`. The merchant's answer tells which happened: `200` keeps
///   only the orders where the cancel was not refused, `409` only those where it was. A
///   cancel whose answer was lost constrains nothing: both ends are valid.
/// - **tick vs success** (a payment paid near its deadline): the same two ends, `succeeded`
///   or `refunded` through the required refund, and no answer tells which. An instance's
///   `success` acknowledgement before the deadline proves the success came first (the tick
///   reads the same clock, at or after the deadline); a buyer who paid only after the test
///   saw the payment cancelled proves the success found it cancelled. Otherwise both are
///   valid.
///
/// Every other pair commutes for these inputs: `initiate` only moves `pending` to
/// `processing` (an open payment may end in either), cancel and tick both cancel, and
/// refunds add up.
fn model_ends(
    fresh: &Payment,
    order: &str,
    m: &ModelInputs<'_>,
) -> Result<BTreeMap<End, Vec<Ext>>, String> {
    let amount = fresh.amount();
    let mut externals = Vec::new();
    if m.paid_at_provider {
        externals.push(Ext::Succeed);
    }
    if m.cancel.is_some() {
        externals.push(Ext::Cancel);
    }
    if m.deadline.is_some() {
        externals.push(Ext::Tick);
    }
    let mut variants = vec![externals.clone()];
    if m.opened {
        let mut with = externals;
        with.push(Ext::Initiate);
        variants.push(with);
    }
    let mut ends = BTreeMap::new();
    'orders: for order_of in variants.iter().flat_map(|v| permutations(v)) {
        let pos = |e: Ext| order_of.iter().position(|x| *x == e);
        if m.success_acked_before_deadline && pos(Ext::Tick) < pos(Ext::Succeed) {
            continue;
        }
        let mut p = fresh.clone();
        let t = Timestamp::from_secs(m.deadline.unwrap_or(2_000_000_000));
        let mut cancel_outcome = None;
        for e in &order_of {
            match e {
                Ext::Initiate => {
                    let _ = p.apply(&Input::initiate(ev(b"query", order)), t);
                }
                Ext::Succeed => {
                    if m.paid_after_cancelled && p.status().name() != "cancelled" {
                        continue 'orders;
                    }
                    let _ = p.apply(&Input::succeed(ev(b"success", order), amount), t);
                }
                Ext::Cancel => {
                    cancel_outcome = Some(p.apply(&Input::cancel(ev(b"cancel", order)), t))
                }
                Ext::Tick => {
                    let _ = p.tick(t);
                }
            }
        }
        let refused = matches!(
            cancel_outcome,
            Some(Outcome::Rejected(Rejection::InvalidTransition))
        );
        match m.cancel {
            Some(CancelSeen::Ok) if refused => continue 'orders,
            Some(CancelSeen::Refused) if !refused => continue 'orders,
            _ => {}
        }
        for (id, fen) in m.refunds {
            let input = Input::refund(
                ev(id.as_bytes(), order),
                RefundId::new(id.as_bytes()).expect("a refund id"),
                Money::from_minor(*fen, amount.currency()),
            );
            let outcome = p.apply(&input, t);
            if !matches!(outcome, Outcome::Applied(_)) {
                return Err(format!(
                    "the engine answers {outcome:?} to refund {id} of {} after {order_of:?}, which the server accepted",
                    yuan(*fen)
                ));
            }
        }
        for _ in 0..4 {
            let owed = p.pending_effects();
            if owed.is_empty() {
                break;
            }
            for effect in owed.iter() {
                let outcome = match effect {
                    Effect::CloseTrade => p.apply(&Input::close(ev(b"close", order)), t),
                    Effect::RefundRequired { amount, refund_id } => p.apply(
                        &Input::refund(
                            ev(refund_id.as_str().as_bytes(), order),
                            refund_id.refund_id(),
                            *amount,
                        ),
                        t,
                    ),
                };
                if !matches!(outcome, Outcome::Applied(_)) {
                    return Err(format!(
                        "the engine answers {outcome:?} to the confirmation of {effect} after {order_of:?}"
                    ));
                }
            }
        }
        if !p.pending_effects().is_empty() {
            return Err(format!(
                "obligations outstanding in the model after {order_of:?}"
            ));
        }
        ends.entry(end_of(&p)).or_insert(order_of);
    }
    if ends.is_empty() {
        return Err("no order of the inputs agrees with what the test saw".into());
    }
    Ok(ends)
}

// ------------------------------------------------------------------------------------------
// The test.

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn fleet_of_three_on_one_database() {
    let s = settings();
    let started = Instant::now();
    let env = Env::new().await;
    let db_name = if env.db.is_postgres() {
        "PostgreSQL"
    } else {
        "SQLite (one WAL file, three processes)"
    };
    println!(
        "fleet: seed {} (the same plan again: {}), {} payments over {} s{}, {INSTANCES} instances on {db_name}",
        s.seed,
        s.replay,
        s.payments,
        s.creation.as_secs(),
        if s.soak { " (soak)" } else { "" }
    );
    env.sim.set_notify(false); // the test is Alipay's notification system
    // Alipay's answers come back slowly (up to 300 ms after it acted), so that the kills
    // land between a provider call and its confirmation as well as everywhere else.
    let proxy = slow_proxy(env.sim.addr(), 300).await;
    let opts = Options {
        query_after_secs: QUERY_AFTER_SECS,
        poll_interval_ms: 200,
        lease_secs: 2,
        retry_base_ms: 200,
        extra_env: Vec::new(),
        gateway: Some(format!("http://{proxy}/gateway.do")),
        ..Options::default()
    };
    let servers = env.servers(INSTANCES, opts).await;
    let bases: Vec<String> = servers.iter().map(Server::base).collect();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0) // a fresh connection per request: no stale one to a killed instance
        .timeout(Duration::from_secs(20))
        .build()
        .expect("an HTTP client");
    let ctx = Arc::new(Ctx {
        sim: env.sim.clone(),
        bases,
        http,
        trace: Trace {
            start: Instant::now(),
            lines: Mutex::new(Vec::new()),
        },
        problems: Mutex::new(Vec::new()),
        stats: Stats::default(),
        created: Mutex::new(Vec::new()),
        notes: Mutex::new(HashMap::new()),
    });

    // The plan, from the seed.
    let mut master = StdRng::seed_from_u64(s.seed);
    let mut amounts = HashSet::new();
    let mut plans = Vec::with_capacity(s.payments);
    for i in 0..s.payments {
        let plan = draw_plan(&mut master);
        let low = if matches!(plan, Plan::Refunds { many: true, .. }) {
            5_000
        } else {
            100
        };
        // Distinct amounts: the required refund's request number is derived from the
        // creation second, the amount, the deadline and the policy, not the order, so two
        // payments created in one second for one amount would share it across trades.
        let amount = loop {
            let a = master.random_range(low..=50_000u64);
            if amounts.insert(a) {
                break a;
            }
        };
        let policy = if master.random_bool(0.3) {
            LateSuccess::Accept
        } else {
            LateSuccess::Refund
        };
        let start = s.creation.mul_f64(i as f64 / s.payments as f64)
            + Duration::from_millis(master.random_range(0..300));
        let script_seed: u64 = master.random();
        plans.push((Record::new(i, plan, amount, policy), start, script_seed));
    }
    // The kills: after a pause of 1.5 to 6 s from the last restart, one instance is killed
    // and kept down 0.2 to 2 s, until 12 s after the last creation.
    let kill_window = s.creation.as_secs_f64() + 12.0;
    let mut kill_plan: Vec<(f64, usize, u64)> = Vec::new();
    let mut planned = 0.0;
    loop {
        let gap = master.random_range(1.5..6.0);
        let down = master.random_range(200..2000u64);
        planned += gap + down as f64 / 1000.0;
        if planned > kill_window {
            break;
        }
        kill_plan.push((gap, master.random_range(0..INSTANCES), down));
    }
    let notifier_seed: u64 = master.random();

    // The refund notifications.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let notifier = tokio::spawn(refund_notifier(
        Arc::clone(&ctx),
        StdRng::seed_from_u64(notifier_seed),
        Arc::clone(&stop),
    ));

    // The kills: one instance at a time, SIGKILL, down a moment, started again.
    let chaos_ctx = Arc::clone(&ctx);
    let chaos = tokio::spawn(async move {
        let mut servers = servers;
        for (gap, inst, down_ms) in kill_plan {
            tokio::time::sleep(Duration::from_secs_f64(gap)).await;
            servers[inst].kill();
            chaos_ctx.stats.kills.fetch_add(1, Ordering::Relaxed);
            chaos_ctx.trace.add(Some(inst), "-", "SIGKILL");
            tokio::time::sleep(Duration::from_millis(down_ms)).await;
            servers[inst].start(&[]).await;
            chaos_ctx.trace.add(Some(inst), "-", "started again");
        }
        servers
    });

    // The payments.
    let mut scripts = tokio::task::JoinSet::new();
    for (rec, start, seed) in plans {
        let ctx = Arc::clone(&ctx);
        scripts.spawn(async move {
            tokio::time::sleep(start).await;
            run_payment(ctx, rec, StdRng::seed_from_u64(seed)).await
        });
    }
    let mut records = Vec::with_capacity(s.payments);
    let scripts_deadline = Instant::now() + s.creation + Duration::from_secs(120);
    while !scripts.is_empty() {
        match tokio::time::timeout_at(scripts_deadline.into(), scripts.join_next()).await {
            Ok(Some(Ok(rec))) => records.push(rec),
            Ok(Some(Err(e))) => ctx.problem("-", format!("a payment's script failed: {e}")),
            Ok(None) => break,
            Err(_) => {
                ctx.problem(
                    "-",
                    format!(
                        "{} payment scripts still running after the time allowed",
                        scripts.len()
                    ),
                );
                scripts.abort_all();
                break;
            }
        }
    }
    let servers = chaos.await.expect("the kill task");
    let active = ctx.trace.start.elapsed();
    ctx.trace.add(None, "-", "every script done; draining");

    // The drain: no open outbox row, no payment owing an effect, no open payment past its
    // deadline (bounded).
    let pool = env.db.pool().await;
    let drain_deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let open_rows = open_outbox(&pool).await;
        let rows = payment_rows(&pool).await;
        let now = unix_now() as i64;
        let owing: Vec<&PaymentRow> = rows.iter().filter(|r| r.owes_effect == 1).collect();
        let overdue: Vec<String> = rows
            .iter()
            .filter(|r| r.status == "pending" || r.status == "processing")
            .filter_map(|r| {
                let p = paystate::snapshot::decode(&r.snapshot).ok()?;
                p.expires_at()
                    .filter(|e| e.as_secs() as i64 <= now)
                    .map(|_| r.order_id.clone())
            })
            .collect();
        if open_rows.is_empty() && owing.is_empty() && overdue.is_empty() {
            break;
        }
        if Instant::now() > drain_deadline {
            ctx.problem(
                "-",
                format!(
                    "not drained after 60 s: open outbox rows {open_rows:?}; owing {:?}; open past their deadline {overdue:?}",
                    owing.iter().map(|r| &r.order_id).collect::<Vec<_>>()
                ),
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let drained = ctx.trace.start.elapsed();
    ctx.trace.add(None, "-", "drained");
    // Refund notifications for the last refunds, then stop the watcher.
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.store(true, Ordering::Relaxed);
    notifier.await.expect("the refund notifier");

    // The checks.
    let mut check_rng = StdRng::seed_from_u64(s.seed ^ 0x5eed);
    let before = check_end_states(&ctx, &env.sim, &pool, &records, &mut check_rng).await;

    // Every notification of the run once more (pairs at the same instant for some), and every
    // cancel again: all acknowledged, none changes a payment — even those whose event ids
    // the engine's memory (the last 8 applied events) has forgotten.
    let notes: HashMap<String, Vec<Note>> =
        ctx.notes.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut redeliveries = Vec::new();
    for rec in &records {
        for note in notes.get(&rec.order).into_iter().flatten() {
            redeliveries.push((
                rec.order.clone(),
                note.body.clone(),
                format!("{} (final round)", note.what),
            ));
        }
    }
    let forgotten = records
        .iter()
        .filter(|r| {
            let Some((id, _)) = &r.success_note else {
                return false;
            };
            let Some(row) = before.get(&r.order) else {
                return false;
            };
            EventId::new(id.as_bytes()).is_ok_and(|e| !row.remembers(e))
        })
        .count();
    join_all(redeliveries.chunks(16).map(|chunk| {
        let ctx = &ctx;
        let seed = check_rng.random::<u64>();
        async move {
            let mut r = StdRng::seed_from_u64(seed);
            for (order, body, what) in chunk {
                let a = r.random_range(0..INSTANCES);
                if r.random_bool(0.3) {
                    let b = other(&mut r, a);
                    ctx.notify_pair(a, b, order, what, body).await;
                } else {
                    ctx.notify(a, order, what, body).await;
                }
            }
        }
    }))
    .await;
    for rec in records.iter().filter(|r| r.cancel.is_some()) {
        let path = format!("/v1/payments/{}/cancel", rec.order);
        let inst = check_rng.random_range(0..INSTANCES);
        let Ok(a) = ctx
            .send(
                inst,
                &rec.order,
                "cancel again (final round)",
                &Signed::new("POST", &path, "", None),
            )
            .await
        else {
            continue;
        };
        let expected: &[u16] = match before.get(&rec.order).map(|p| p.status().name()) {
            Some("succeeded") => &[409],
            _ => &[200],
        };
        if !expected.contains(&a.status) {
            ctx.problem(
                &rec.order,
                format!("cancel again answered {} {}", a.status, short(&a.text)),
            );
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_rows = payment_rows(&pool).await;
    for row in &after_rows {
        let Some(old) = before.get(&row.order_id) else {
            continue;
        };
        let Ok(new) = paystate::snapshot::decode(&row.snapshot) else {
            continue;
        };
        // An open payment may still move from pending to processing (the poller).
        let open = matches!(old.status().name(), "pending" | "processing");
        if !open && (new.version() != old.version() || end_of(&new) != end_of(old)) {
            ctx.problem(
                &row.order_id,
                format!(
                    "changed by the final round of old messages: {:?} v{} -> {:?} v{}",
                    end_of(old),
                    old.version(),
                    end_of(&new),
                    new.version()
                ),
            );
        }
    }
    let open_rows = open_outbox(&pool).await;
    if !open_rows.is_empty() {
        ctx.problem(
            "-",
            format!("the final round of old messages opened outbox rows: {open_rows:?}"),
        );
    }
    pool.close().await;

    // The report.
    let total = started.elapsed();
    let mut by_plan: BTreeMap<String, usize> = BTreeMap::new();
    for r in &records {
        let name = format!("{:?}", r.plan);
        *by_plan.entry(name).or_default() += 1;
    }
    let mut ends_by_plan: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
    for r in &records {
        if let Some(p) = before.get(&r.order) {
            let plan = format!("{:?}", r.plan);
            let plan = plan.split([' ', '{']).next().unwrap_or("").to_owned();
            *ends_by_plan
                .entry(plan)
                .or_default()
                .entry(p.status().name())
                .or_default() += 1;
        }
    }
    let mut calls: BTreeMap<String, usize> = BTreeMap::new();
    for c in env.sim.calls() {
        let code = c
            .sub_code
            .or(c.code)
            .unwrap_or_else(|| c.http_status.to_string());
        *calls
            .entry(format!(
                "{} {code}",
                c.method.trim_start_matches("alipay.trade.")
            ))
            .or_default() += 1;
    }
    let st = &ctx.stats;
    let summary = format!(
        "fleet: seed {} on {db_name}: {} payments; scripts done at {:.1} s, drained at {:.1} s, total {:.1} s; \
         {} merchant requests ({} unanswered), {} notifications ({} pairs at once), {} nonce replays, \
         {} same-body key reuses, {} conflicting key reuses, {} key pairs at once, {} refund races, {} kills; \
         {} payments whose success notification the engine had forgotten when it came again\n  plans: {by_plan:?}\n  \
         end states: {ends_by_plan:?}\n  provider calls: {calls:?}",
        s.seed,
        records.len(),
        active.as_secs_f64(),
        drained.as_secs_f64(),
        total.as_secs_f64(),
        st.merchant_requests.load(Ordering::Relaxed),
        st.transport_errors.load(Ordering::Relaxed),
        st.notifications.load(Ordering::Relaxed),
        st.notification_pairs.load(Ordering::Relaxed),
        st.nonce_replays.load(Ordering::Relaxed),
        st.idem_same_body.load(Ordering::Relaxed),
        st.idem_conflicts.load(Ordering::Relaxed),
        st.idem_pairs.load(Ordering::Relaxed),
        st.refund_races.load(Ordering::Relaxed),
        st.kills.load(Ordering::Relaxed),
        forgotten,
    );
    println!("{summary}");
    if let Ok(path) = std::env::var("PAYSTATE_FLEET_TRACE") {
        // The whole trace of a passing run too, for a look at the interleavings.
        std::fs::write(&path, ctx.trace.render(|_| true)).expect("write PAYSTATE_FLEET_TRACE");
    }
    let problems = ctx
        .problems
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if !problems.is_empty() {
        let failing: HashSet<String> = problems
            .iter()
            .filter_map(|p| p.split(':').next().map(str::to_owned))
            .collect();
        let kept = env.dir.path().to_path_buf();
        let trace_file = kept.join("fleet-trace.txt");
        let _ = std::fs::write(&trace_file, ctx.trace.render(|_| true));
        let shown = ctx.trace.render(|o| o == "-" || failing.contains(o));
        drop(servers);
        // Keep the directory (server logs, the full trace, the SQLite file) for a post-mortem.
        let dir = env.dir;
        let path = dir.keep();
        panic!(
            "fleet: {} problem(s) with seed {} (the same plan again: {}):\n  {}\n\n\
             the interleaving of the failing payments and the kills (time since start, instance, order, action):\n{shown}\n\
             {summary}\nthe whole trace, the server logs and the database: {}",
            problems.len(),
            s.seed,
            s.replay,
            problems.join("\n  "),
            path.display(),
        );
    }
    drop(servers);
}

/// Checks every payment's stored end state against the model, the obligations, the
/// simulator, the view, and returns the decoded payments by order.
async fn check_end_states(
    ctx: &Ctx,
    sim: &AlipaySim,
    pool: &sqlx::AnyPool,
    records: &[Record],
    rng: &mut StdRng,
) -> HashMap<String, Payment> {
    let rows = payment_rows(pool).await;
    let mut decoded: HashMap<String, Payment> = HashMap::new();
    for row in &rows {
        match paystate::snapshot::decode(&row.snapshot) {
            Ok(p) => {
                if p.status().name() != row.status || i64::from(p.version()) != row.version {
                    ctx.problem(
                        &row.order_id,
                        format!(
                            "columns status {} v{} disagree with the snapshot {:?}",
                            row.status, row.version, p
                        ),
                    );
                }
                if row.owes_effect != 0 {
                    ctx.problem(&row.order_id, "owes_effect = 1 after the drain");
                }
                decoded.insert(row.order_id.clone(), p);
            }
            Err(e) => ctx.problem(&row.order_id, format!("the snapshot does not decode: {e}")),
        }
    }
    let known: HashSet<&str> = records
        .iter()
        .filter(|r| r.created)
        .map(|r| r.order.as_str())
        .collect();
    for row in &rows {
        if !known.contains(row.order_id.as_str()) {
            ctx.problem(
                &row.order_id,
                "a payment nobody created (a conflicting idempotency key ran?)",
            );
        }
    }
    // Never two refunds under one request number, on any trade.
    let mut numbers = BTreeSet::new();
    for call in sim.calls() {
        if call.method == "alipay.trade.refund"
            && let Some(n) = call.out_request_no
        {
            numbers.insert(n);
        }
    }
    for n in &numbers {
        let times = sim.refunds_effected(n);
        if times > 1 {
            ctx.problem(
                "-",
                format!("refund {n} moved money {times} times at the provider"),
            );
        }
    }
    let mut multi = 0usize;
    for rec in records {
        let order = rec.order.as_str();
        for alt in &rec.absent {
            if rows.iter().any(|r| &r.order_id == alt) {
                ctx.problem(
                    order,
                    format!("{alt} exists: a conflicting idempotency key ran"),
                );
            }
        }
        if rec.never_stored && rows.iter().any(|r| r.order_id == order) {
            ctx.problem(
                order,
                "a retried create answered 400 (deadline passed), yet the payment is stored",
            );
        }
        if !rec.created {
            continue;
        }
        let Some(p) = decoded.get(order) else {
            ctx.problem(order, "created, but not stored");
            continue;
        };
        if p.amount().minor_units() != rec.amount
            || p.expires_at().map(|t| t.as_secs()) != rec.expires_at
            || p.late_success() != rec.policy
        {
            ctx.problem(
                order,
                format!(
                    "stored {:?}, created for {} expiring {:?}",
                    p,
                    yuan(rec.amount),
                    rec.expires_at
                ),
            );
        }
        if !p.pending_effects().is_empty() {
            ctx.problem(
                order,
                format!(
                    "obligations outstanding: {:?}",
                    p.pending_effects().as_slice()
                ),
            );
        }
        let trade = sim.trade(order);
        let paid_at_provider = trade.as_ref().is_some_and(|t| t.gmt_payment.is_some());
        let fresh = Payment::new(p.amount(), p.created_at())
            .expect("a positive amount")
            .with_late_success(p.late_success());
        let fresh = match p.expires_at() {
            Some(e) => fresh.with_deadline(e),
            None => fresh,
        };
        let inputs = ModelInputs {
            opened: rec.opened,
            paid_at_provider,
            cancel: rec.cancel,
            deadline: rec.expires_at,
            success_acked_before_deadline: match (rec.success_acked_at, rec.expires_at) {
                (Some(ack), Some(deadline)) => ack < deadline as f64,
                _ => false,
            },
            paid_after_cancelled: rec.paid_after_seen_cancelled,
            refunds: &rec.refunds,
        };
        let got = end_of(p);
        match model_ends(&fresh, order, &inputs) {
            Err(e) => ctx.problem(order, format!("model: {e}")),
            Ok(ends) => {
                if ends.len() > 1 {
                    multi += 1;
                }
                if !ends.contains_key(&got) {
                    ctx.problem(
                        order,
                        format!("stored {got:?}; the engine fed the same inputs ends in {ends:?}"),
                    );
                } else {
                    ctx.trace.add(
                        None,
                        order,
                        format!("end {got:?} (valid: {:?})", ends.keys().collect::<Vec<_>>()),
                    );
                }
            }
        }
        // The merchant's refunds: each recorded with its amount, each made once.
        for (id, fen) in &rec.refunds {
            let recorded = RefundId::new(id.as_bytes())
                .ok()
                .and_then(|r| p.recorded_refund(r));
            if recorded.map(|m| m.minor_units()) != Some(*fen) {
                ctx.problem(
                    order,
                    format!("refund {id} of {} recorded as {recorded:?}", yuan(*fen)),
                );
            }
            let times = sim.refunds_effected(id);
            if times != 1 {
                ctx.problem(
                    order,
                    format!("refund {id} made {times} times at the provider"),
                );
            }
        }
        // The required refund of a late payment: made exactly once, and only then.
        let lr = p.refund_request_id();
        let late_refunded =
            rec.refunds.is_empty() && p.paid().minor_units() > 0 && got.status == "refunded";
        let lr_times = trade.as_ref().map_or(0, |t| {
            t.refunds.iter().filter(|(n, _)| n == lr.as_str()).count()
        });
        if late_refunded {
            if lr_times != 1 || p.recorded_refund(lr.refund_id()) != Some(p.paid()) {
                ctx.problem(
                    order,
                    format!(
                        "late payment: refund {lr} made {lr_times} times, recorded {:?}",
                        p.recorded_refund(lr.refund_id())
                    ),
                );
            }
        } else if lr_times != 0 {
            ctx.problem(
                order,
                format!("refund {lr} made {lr_times} times for a payment that owed none ({got:?})"),
            );
        }
        // Money follows the provider.
        if let Some(t) = &trade {
            let refunded: u64 = t.refunds.iter().map(|(_, a)| fen(a)).sum();
            if refunded != got.refunded {
                ctx.problem(
                    order,
                    format!(
                        "the provider refunded {}, the payment records {}",
                        yuan(refunded),
                        yuan(got.refunded)
                    ),
                );
            }
        }
        if (got.paid > 0) != paid_at_provider {
            ctx.problem(
                order,
                format!(
                    "paid {} here, paid at the provider: {paid_at_provider}",
                    yuan(got.paid)
                ),
            );
        }
        // The required close: a payment cancelled unpaid had its trade closed at the
        // provider, or the provider answered that there was no trade to close.
        if got.status == "cancelled" && got.paid == 0 {
            let closed = match &trade {
                Some(t) => t.status == "TRADE_CLOSED",
                None => sim.calls().iter().any(|c| {
                    c.method == "alipay.trade.close"
                        && c.out_trade_no.as_deref() == Some(order)
                        && c.sub_code.as_deref() == Some("ACQ.TRADE_NOT_EXIST")
                }),
            };
            if !closed {
                ctx.problem(
                    order,
                    format!("cancelled unpaid, but the provider never closed it: {trade:?}"),
                );
            }
        }
        // The view agrees with the snapshot, whichever instance answers.
        if let Some(v) = ctx.view(order, rng).await {
            if v["status"] != got.status
                || v["paid"] != yuan(got.paid)
                || v["refunded"] != yuan(got.refunded)
                || v["pending_effects"] != json!([])
            {
                ctx.problem(
                    order,
                    format!("the view {v} disagrees with the snapshot {got:?}"),
                );
            }
        } else {
            ctx.problem(order, "no instance showed its view");
        }
    }
    println!(
        "fleet: {multi} payments had more than one valid end state (a race whose order the test could not observe)"
    );
    decoded
}
