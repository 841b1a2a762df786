//! The model's steps as lines of the JSON-lines driver (docs/driver.md), and the answers the
//! model expects the driver to give, field for field and in the documented order. A harness
//! that writes both can have the driver replay its run and compare.

use paystate::Effect;
use serde_json::{Value, json};

use crate::{Command, Model, Terms, Want};

/// The `create` line of a payment created with `terms` at `now`.
pub fn create(name: &str, terms: &Terms, now: u64) -> Value {
    let mut v = json!({
        "op": "create", "payment": name, "amount": terms.amount.to_string(),
        "currency": terms.amount.currency().code(), "now": now,
    });
    if let Some(t) = terms.expires_at {
        v["expires_at"] = json!(t);
    }
    v["late_success"] = json!(terms.policy.name());
    v
}

/// The `input` object of an `apply` line.
pub fn input(event: &str, cmd: &Command) -> Value {
    match cmd {
        Command::Initiate => json!({"type": "initiate", "event_id": event}),
        Command::Succeed(m) => json!({
            "type": "succeed", "event_id": event,
            "amount": m.to_string(), "currency": m.currency().code(),
        }),
        Command::Fail(reason) => json!({"type": "fail", "event_id": event, "reason": reason}),
        Command::Cancel => json!({"type": "cancel", "event_id": event}),
        Command::Close => json!({"type": "close", "event_id": event}),
        Command::Refund(refund_id, m) => json!({
            "type": "refund", "event_id": event, "refund_id": refund_id,
            "amount": m.to_string(), "currency": m.currency().code(),
        }),
    }
}

/// The answer to an `apply` or `tick` that the model answered `want`, or (with the bytes) to
/// a `snapshot`: the payment as the model holds it after the line.
pub fn answer(name: &str, m: &Model, want: &Want, snapshot: Option<&[u8]>) -> Value {
    let (outcome, error, effects): (&str, Option<&str>, &[Effect]) = match want {
        Want::Applied(effects) => ("applied", None, effects),
        Want::Duplicate => ("duplicate", None, &[]),
        Want::Ignored => ("ignored", None, &[]),
        Want::Rejected(r) => ("rejected", Some(r.code()), &[]),
    };
    let outcome = if snapshot.is_some() {
        "snapshot"
    } else {
        outcome
    };
    let mut v = json!({"payment": name, "outcome": outcome});
    if let Some(e) = error {
        v["error"] = json!(e);
    }
    if let Some(bytes) = snapshot {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        v["bytes"] = json!(hex);
        v["size"] = json!(bytes.len());
    }
    v["status"] = json!(m.status().name());
    v["version"] = json!(m.version());
    v["paid"] = json!(m.money(m.paid()).to_string());
    v["refunded"] = json!(m.money(m.refunded()).to_string());
    v["effects"] = effects_json(effects);
    v["pending_effects"] = effects_json(&m.outstanding());
    v
}

/// The answer to a `create` the model accepted.
pub fn created(name: &str, m: &Model) -> Value {
    let mut v = answer(name, m, &Want::Ignored, None);
    v["outcome"] = json!("created");
    v
}

/// The answer to a `create` of an amount of zero.
pub fn create_refused(name: &str) -> Value {
    json!({"payment": name, "outcome": "rejected", "error": "invalid_amount"})
}

/// An effect list as the driver writes it; the names are spelled out from docs/driver.md.
pub fn effects_json(effects: &[Effect]) -> Value {
    effects
        .iter()
        .map(|e| match e {
            Effect::CloseTrade => json!({"type": "close_trade"}),
            Effect::RefundRequired { amount, refund_id } => json!({
                "type": "refund_required",
                "amount": amount.to_string(),
                "refund_id": refund_id.as_str(),
            }),
        })
        .collect::<Vec<Value>>()
        .into()
}
