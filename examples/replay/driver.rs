//! The driver itself: one JSON line in, one JSON value out (docs/spec.md §7). Shared by the
//! `replay` example and the transcript tests.

use std::collections::HashMap;

use paystate::guard::{ReplayError, ReplayGuard};
use paystate::{
    Currency, Effect, EventId, Input, LateSuccess, Money, Outcome, Payment, RefundId, Timestamp,
    snapshot,
};
use serde_json::{Map, Value, json};

/// A line that is not of the driver's shape: printed as `bad_input` with this detail.
pub struct BadInput(pub String);

fn bad<T>(detail: impl Into<String>) -> Result<T, BadInput> {
    Err(BadInput(detail.into()))
}

fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a Value, BadInput> {
    match obj.get(name) {
        Some(v) => Ok(v),
        None => bad(format!("missing field `{name}`")),
    }
}

fn string<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, BadInput> {
    match field(obj, name)? {
        Value::String(s) => Ok(s),
        _ => bad(format!("`{name}` must be a string")),
    }
}

fn opt_string<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, BadInput> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => bad(format!("`{name}` must be a string")),
    }
}

fn uint(obj: &Map<String, Value>, name: &str) -> Result<u64, BadInput> {
    match field(obj, name)?.as_u64() {
        Some(n) => Ok(n),
        None => bad(format!("`{name}` must be a non-negative integer")),
    }
}

fn opt_uint(obj: &Map<String, Value>, name: &str) -> Result<Option<u64>, BadInput> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => uint(obj, name).map(Some),
    }
}

fn event_id(obj: &Map<String, Value>) -> Result<EventId, BadInput> {
    EventId::new(string(obj, "event_id")?.as_bytes()).or_else(|e| bad(format!("`event_id`: {e}")))
}

fn state(id: &str, p: &Payment) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("payment".into(), id.into());
    m.insert("status".into(), p.status().name().into());
    m.insert("version".into(), p.version().into());
    m.insert("paid".into(), p.paid().to_string().into());
    m.insert("refunded".into(), p.refunded().to_string().into());
    m
}

/// `{"payment", "outcome", ["error"], "status", "version", "paid", "refunded", "effects",
/// "pending_effects"}`.
fn report(id: &str, p: &Payment, outcome: &str, error: Option<&str>, effects: &[Effect]) -> Value {
    let mut m = Map::new();
    m.insert("payment".into(), id.into());
    m.insert("outcome".into(), outcome.into());
    if let Some(e) = error {
        m.insert("error".into(), e.into());
    }
    let rest = state(id, p);
    for (k, v) in rest.into_iter().skip(1) {
        m.insert(k, v);
    }
    m.insert("effects".into(), effects_json(effects));
    m.insert("pending_effects".into(), effects_json(&p.pending_effects()));
    Value::Object(m)
}

/// `[{"type":"close_trade"}, {"type":"refund_required","amount":"99.99","refund_id":"lr…"}]`.
fn effects_json(effects: &[Effect]) -> Value {
    effects
        .iter()
        .map(|e| match e {
            Effect::CloseTrade => json!({"type": e.name()}),
            Effect::RefundRequired { amount, refund_id } => json!({
                "type": e.name(),
                "amount": amount.to_string(),
                "refund_id": refund_id.as_str(),
            }),
        })
        .collect::<Vec<Value>>()
        .into()
}

fn outcome_report(id: &str, p: &Payment, outcome: &Outcome) -> Value {
    let error = match outcome {
        Outcome::Rejected(r) => Some(r.code()),
        _ => None,
    };
    report(id, p, outcome.name(), error, outcome.effects())
}

fn rejected(id: &str, error: &str) -> Value {
    json!({"payment": id, "outcome": "rejected", "error": error})
}

/// A currency that is not `c`: stands for a code the engine cannot represent (unknown to
/// ISO 4217), which can only be a mismatch.
fn other_than(c: Currency) -> Currency {
    if c == Currency::USD {
        Currency::EUR
    } else {
        Currency::USD
    }
}

/// Declares `Guard`, one variant per capacity the driver offers, and its dispatch.
macro_rules! guards {
    ($($n:literal => $v:ident),* $(,)?) => {
        /// The driver's replay guard, at one of the capacities it offers (boxed: a guard of
        /// 4096 entries is 128 KiB).
        enum Guard { $($v(Box<ReplayGuard<$n>>)),* }

        /// The capacities `replay_guard` accepts.
        const CAPACITIES: &[u64] = &[$($n),*];

        impl Guard {
            fn new(capacity: u64, tolerance: u64) -> Option<Guard> {
                match capacity {
                    $($n => Some(Guard::$v(Box::new(ReplayGuard::with_tolerance(paystate::Duration::from_secs(tolerance))))),)*
                    _ => None,
                }
            }

            fn admit(&mut self, ts: Timestamp, nonce: &[u8], now: Timestamp, valid: bool) -> Result<(), ReplayError> {
                match self {
                    $(Guard::$v(g) => g.admit(ts, nonce, now, || valid),)*
                }
            }
        }
    };
}

guards! {
    1 => G1, 2 => G2, 4 => G4, 8 => G8, 10 => G10, 16 => G16, 32 => G32, 50 => G50,
    64 => G64, 100 => G100, 128 => G128, 256 => G256, 500 => G500, 512 => G512,
    1000 => G1000, 1024 => G1024, 2048 => G2048, 4096 => G4096,
}

/// The driver's state: the payments by id, and one replay guard.
pub struct Driver {
    payments: HashMap<String, Payment>,
    guard: Guard,
}

impl Default for Driver {
    fn default() -> Driver {
        Driver {
            payments: HashMap::new(),
            // docs/spec.md §7: capacity 64 and tolerance 300 until configured.
            guard: Guard::G64(Box::new(ReplayGuard::new())),
        }
    }
}

impl Driver {
    /// Answers one input line; `Err` for a line that is not of the driver's shape.
    pub fn line(&mut self, line: &str) -> Result<Value, BadInput> {
        let value: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => return bad(format!("not JSON: {e}")),
        };
        let Value::Object(obj) = value else {
            return bad("a line must be a JSON object");
        };
        match string(&obj, "op")? {
            "create" => self.create(&obj),
            "apply" => self.apply(&obj),
            "tick" => self.tick(&obj),
            "snapshot" => self.snapshot(&obj),
            "replay_guard" => self.replay_guard(&obj),
            "webhook" => self.webhook(&obj),
            other => bad(format!("unknown op `{other}`")),
        }
    }

    fn create(&mut self, obj: &Map<String, Value>) -> Result<Value, BadInput> {
        let id = string(obj, "payment")?;
        let amount = string(obj, "amount")?;
        let currency = string(obj, "currency")?;
        let now = Timestamp::from_secs(uint(obj, "now")?);
        let expires_at = opt_uint(obj, "expires_at")?.map(Timestamp::from_secs);
        let policy = match opt_string(obj, "late_success")? {
            None | Some("refund") => LateSuccess::Refund,
            Some("accept") => LateSuccess::Accept,
            Some(other) => return bad(format!("unknown late_success `{other}`")),
        };
        if let Some(existing) = self.payments.get(id) {
            return Ok(report(
                id,
                existing,
                "rejected",
                Some("payment_exists"),
                &[],
            ));
        }
        let Ok(currency) = Currency::from_code(currency) else {
            return Ok(rejected(id, "unknown_currency"));
        };
        let Ok(amount) = Money::parse(amount, currency) else {
            return Ok(rejected(id, "invalid_amount"));
        };
        let Ok(mut payment) = Payment::new(amount, now) else {
            return Ok(rejected(id, "invalid_amount"));
        };
        payment = payment.with_late_success(policy);
        if let Some(deadline) = expires_at {
            payment = payment.with_deadline(deadline);
        }
        let out = report(id, &payment, "created", None, &[]);
        self.payments.insert(id.to_owned(), payment);
        Ok(out)
    }

    fn apply(&mut self, obj: &Map<String, Value>) -> Result<Value, BadInput> {
        let id = string(obj, "payment")?;
        let now = Timestamp::from_secs(uint(obj, "now")?);
        let Value::Object(input) = field(obj, "input")? else {
            return bad("`input` must be an object");
        };
        let Some(payment) = self.payments.get_mut(id) else {
            // Still check the line's shape, so a malformed line is reported as such.
            let _ = build_input(input, Currency::CNY, 1)?;
            return Ok(rejected(id, "unknown_payment"));
        };
        let input = build_input(input, payment.currency(), payment.amount().minor_units())?;
        let outcome = payment.apply(&input, now);
        Ok(outcome_report(id, payment, &outcome))
    }

    fn tick(&mut self, obj: &Map<String, Value>) -> Result<Value, BadInput> {
        let id = string(obj, "payment")?;
        let now = Timestamp::from_secs(uint(obj, "now")?);
        let Some(payment) = self.payments.get_mut(id) else {
            return Ok(rejected(id, "unknown_payment"));
        };
        let outcome = payment.tick(now);
        Ok(outcome_report(id, payment, &outcome))
    }

    fn replay_guard(&mut self, obj: &Map<String, Value>) -> Result<Value, BadInput> {
        let capacity = uint(obj, "capacity")?;
        let tolerance =
            opt_uint(obj, "tolerance")?.unwrap_or(ReplayGuard::<1>::DEFAULT_TOLERANCE.as_secs());
        match Guard::new(capacity, tolerance) {
            Some(guard) => {
                self.guard = guard;
                Ok(json!({"outcome": "configured"}))
            }
            None => bad(format!(
                "unsupported capacity {capacity}; one of {CAPACITIES:?}"
            )),
        }
    }

    fn webhook(&mut self, obj: &Map<String, Value>) -> Result<Value, BadInput> {
        let timestamp = Timestamp::from_secs(uint(obj, "timestamp")?);
        let nonce = string(obj, "nonce")?;
        let now = Timestamp::from_secs(uint(obj, "now")?);
        let valid = match obj.get("signature_valid") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return bad("`signature_valid` must be a boolean"),
        };
        match self.guard.admit(timestamp, nonce.as_bytes(), now, valid) {
            Ok(()) => Ok(json!({"outcome": "accepted"})),
            Err(ReplayError::InvalidNonce { len }) => {
                bad(format!("`nonce` of {len} bytes (must be 1..=64)"))
            }
            Err(e) => Ok(json!({"outcome": "rejected", "error": e.code()})),
        }
    }

    fn snapshot(&mut self, obj: &Map<String, Value>) -> Result<Value, BadInput> {
        let id = string(obj, "payment")?;
        let Some(payment) = self.payments.get_mut(id) else {
            return Ok(rejected(id, "unknown_payment"));
        };
        let mut buf = [0u8; snapshot::MAX_SIZE];
        let bytes = match snapshot::encode(payment, &mut buf) {
            Ok(b) => b.to_vec(),
            Err(e) => return bad(format!("snapshot encoding failed: {e}")),
        };
        match snapshot::decode(&bytes) {
            Ok(restored) => *payment = restored,
            Err(e) => return bad(format!("snapshot did not round-trip: {e}")),
        }
        let mut out = report(id, payment, "snapshot", None, &[]);
        if let Value::Object(m) = &mut out {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let mut ordered = Map::new();
            for (k, v) in std::mem::take(m) {
                ordered.insert(k.clone(), v);
                if k == "outcome" {
                    ordered.insert("bytes".into(), hex.clone().into());
                    ordered.insert("size".into(), bytes.len().into());
                }
            }
            *m = ordered;
        }
        Ok(out)
    }
}

/// Builds the engine input of an `apply` line for a payment in `currency` of `amount` minor
/// units. A well-typed amount string that is not a valid amount cannot be equal to any amount
/// the engine accepted, so it is passed on as one that fails the same check a wrong amount
/// fails (a capture of a different amount, a refund of zero), in the order of docs/spec.md §2.3.
fn build_input(
    obj: &Map<String, Value>,
    currency: Currency,
    amount: u64,
) -> Result<Input, BadInput> {
    let kind = string(obj, "type")?;
    let event = event_id(obj)?;
    let currency_of = |obj: &Map<String, Value>| -> Result<Currency, BadInput> {
        Ok(match opt_string(obj, "currency")? {
            None => currency,
            Some(code) => Currency::from_code(code).unwrap_or_else(|_| other_than(currency)),
        })
    };
    Ok(match kind {
        "initiate" => Input::initiate(event),
        "succeed" => {
            let c = currency_of(obj)?;
            let m = Money::parse(string(obj, "amount")?, c)
                .unwrap_or_else(|_| Money::from_minor(amount.checked_add(1).unwrap_or(0), c));
            Input::succeed(event, m)
        }
        "fail" => match Input::fail(event, string(obj, "reason")?) {
            Ok(input) => input,
            Err(e) => return bad(format!("`reason`: {e}")),
        },
        "cancel" => Input::cancel(event),
        "close" => Input::close(event),
        "refund" => {
            let refund_id = RefundId::new(string(obj, "refund_id")?.as_bytes())
                .or_else(|e| bad(format!("`refund_id`: {e}")))?;
            let c = currency_of(obj)?;
            let m = Money::parse(string(obj, "amount")?, c).unwrap_or(Money::zero(c));
            Input::refund(event, refund_id, m)
        }
        other => return bad(format!("unknown input type `{other}`")),
    })
}
