//! The merchant API's request signatures, replay defence and idempotency keys.
//!
//! Every `/v1/` request carries `X-Paystate-Key` (an `[[api_keys]]` id),
//! `X-Paystate-Timestamp` (seconds since the Unix epoch), `X-Paystate-Nonce` (1..=64
//! printable ASCII) and `X-Paystate-Signature`: lowercase hex HMAC-SHA256 with the key's
//! secret over `"{timestamp}\n{nonce}\n{METHOD}\n{path and query}\n{body}"`. The checks run
//! in docs/spec.md §3.1's order: the window (±300 s), the signature, then the nonce is
//! recorded in the `nonces` table, which every instance shares, so a replay sent to another
//! instance is refused too.
//!
//! `Idempotency-Key` (1..=255 bytes) on a `POST` follows docs/spec.md §3.2 through the
//! `idempotency_keys` table: the same key and request replay the stored response; a different
//! request is `422 idempotency_conflict`; a request still running is `409 in_use` while its
//! lease (at most 30 s) lasts, and is taken over after it (an instance that died mid-request
//! never blocks a key for ever).

use hmac::{Hmac, KeyInit, Mac};
use paystate::time::check_window;
use paystate::{Duration, Timestamp};
use sha2::{Digest, Sha256};
use sqlx::Row as _;

use crate::config::Config;
use crate::payments::secs;
use crate::store::{Db, DbError};

/// The replay window of the merchant API, both ways.
pub const WINDOW: Duration = Duration::from_secs(300);

/// Why a request was refused: the `401` body's `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// A header is missing or malformed.
    MissingAuth,
    /// `X-Paystate-Key` names no configured key.
    UnknownKey,
    /// The signature does not match.
    BadSignature,
    /// The timestamp is more than 300 s in the past.
    Stale,
    /// The timestamp is more than 300 s in the future.
    FromFuture,
    /// The nonce was seen before (by any instance) within the window.
    Replayed,
}

impl AuthError {
    /// `missing_auth`, `unknown_key`, `bad_signature`, `stale`, `from_future`, `replayed`.
    pub const fn code(self) -> &'static str {
        match self {
            AuthError::MissingAuth => "missing_auth",
            AuthError::UnknownKey => "unknown_key",
            AuthError::BadSignature => "bad_signature",
            AuthError::Stale => "stale",
            AuthError::FromFuture => "from_future",
            AuthError::Replayed => "replayed",
        }
    }
}

/// The four signature headers of a request, as sent.
#[derive(Debug, Clone, Copy)]
pub struct SignatureHeaders<'a> {
    /// `X-Paystate-Key`.
    pub key: Option<&'a str>,
    /// `X-Paystate-Timestamp`.
    pub timestamp: Option<&'a str>,
    /// `X-Paystate-Nonce`.
    pub nonce: Option<&'a str>,
    /// `X-Paystate-Signature`.
    pub signature: Option<&'a str>,
}

/// The string the merchant signs.
pub fn signing_string(
    timestamp: &str,
    nonce: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut s = Vec::with_capacity(body.len().saturating_add(128));
    s.extend_from_slice(timestamp.as_bytes());
    s.push(b'\n');
    s.extend_from_slice(nonce.as_bytes());
    s.push(b'\n');
    s.extend_from_slice(method.as_bytes());
    s.push(b'\n');
    s.extend_from_slice(path_and_query.as_bytes());
    s.push(b'\n');
    s.extend_from_slice(body);
    s
}

/// The signature a client sends: lowercase hex HMAC-SHA256 of [`signing_string`].
pub fn sign(
    secret: &[u8],
    timestamp: &str,
    nonce: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&signing_string(
        timestamp,
        nonce,
        method,
        path_and_query,
        body,
    ));
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a request's signature headers and records its nonce. Returns the key's id.
///
/// Errors: an [`AuthError`] (answer `401 {"error": code}`), or the database failing (`500`).
pub async fn authenticate(
    config: &Config,
    db: &Db,
    headers: SignatureHeaders<'_>,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now: Timestamp,
) -> Result<Result<String, AuthError>, DbError> {
    let (Some(key_id), Some(ts), Some(nonce), Some(signature)) = (
        headers.key,
        headers.timestamp,
        headers.nonce,
        headers.signature,
    ) else {
        return Ok(Err(AuthError::MissingAuth));
    };
    if nonce.is_empty() || nonce.len() > 64 || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Ok(Err(AuthError::MissingAuth));
    }
    let Some(key) = config.api_key(key_id) else {
        return Ok(Err(AuthError::UnknownKey));
    };
    if ts.is_empty() || ts.len() > 12 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Err(AuthError::MissingAuth));
    }
    let Ok(ts_secs) = ts.parse::<u64>() else {
        return Ok(Err(AuthError::MissingAuth));
    };
    let timestamp = Timestamp::from_secs(ts_secs);
    if let Err(e) = check_window(timestamp, now, WINDOW) {
        return Ok(Err(match e {
            paystate::time::WindowError::Stale { .. } => AuthError::Stale,
            _ => AuthError::FromFuture,
        }));
    }
    let Ok(expected) = hex::decode(signature) else {
        return Ok(Err(AuthError::BadSignature));
    };
    if signature.bytes().any(|b| b.is_ascii_uppercase()) {
        return Ok(Err(AuthError::BadSignature));
    }
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&key.secret) else {
        return Ok(Err(AuthError::BadSignature));
    };
    mac.update(&signing_string(ts, nonce, method, path_and_query, body));
    if mac.verify_slice(&expected).is_err() {
        return Ok(Err(AuthError::BadSignature));
    }
    // Recorded only after the signature holds, so a forger cannot burn a client's nonces.
    // Kept until the timestamp leaves the window; a later timestamp with the same nonce is
    // refused by the window by then.
    let expires = timestamp.saturating_add(WINDOW.as_secs().saturating_add(1));
    let inserted = sqlx::query(
        "INSERT INTO nonces (api_key, nonce, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (api_key, nonce) DO NOTHING",
    )
    .bind(key_id)
    .bind(nonce)
    .bind(secs(expires))
    .execute(&db.pool)
    .await?;
    if inserted.rows_affected() != 1 {
        // Still recorded, or expired but not yet swept: an expired nonce's timestamp is out of
        // the window, so this request's timestamp (inside it) differs; take the row over only
        // if it has expired.
        let taken = sqlx::query("UPDATE nonces SET expires_at = $1 WHERE api_key = $2 AND nonce = $3 AND expires_at < $4")
            .bind(secs(expires))
            .bind(key_id)
            .bind(nonce)
            .bind(secs(now))
            .execute(&db.pool)
            .await?;
        if taken.rows_affected() != 1 {
            return Ok(Err(AuthError::Replayed));
        }
    }
    Ok(Ok(key_id.to_owned()))
}

/// Deletes nonces whose window has passed. Returns how many.
///
/// Errors: the database failed.
pub async fn sweep_nonces(db: &Db, now: Timestamp) -> Result<u64, DbError> {
    let done = sqlx::query("DELETE FROM nonces WHERE expires_at < $1")
        .bind(secs(now))
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected())
}

/// How long a completed idempotency key is kept, in seconds (24 hours, as Stripe keeps
/// them): a retry later than that is a new request.
pub const IDEMPOTENCY_RETENTION: u64 = 24 * 60 * 60;

/// Deletes completed idempotency keys older than [`IDEMPOTENCY_RETENTION`]. Keys still in
/// flight are left to their lease. Returns how many were deleted.
///
/// Errors: the database failed.
pub async fn sweep_idempotency_keys(db: &Db, now: Timestamp) -> Result<u64, DbError> {
    let cutoff = now.as_secs().saturating_sub(IDEMPOTENCY_RETENTION);
    let done = sqlx::query("DELETE FROM idempotency_keys WHERE state = 'done' AND created_at < $1")
        .bind(secs(Timestamp::from_secs(cutoff)))
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected())
}

/// What [`begin`] found for an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// First use (`taken_over: false`), or a lease taken over from a run that did not finish
    /// (`taken_over: true`: that run may have done part or all of its work before it died):
    /// run the request, then [`complete`] or [`release`].
    Run {
        /// The key's lease ran out under an earlier run of the same request.
        taken_over: bool,
    },
    /// Done before with the same request: send this status and body again.
    Replay(u16, String),
    /// Used before with a different request: `422 idempotency_conflict`.
    Conflict,
    /// Still running elsewhere, under a lease: `409 in_use`.
    InUse,
}

/// The fingerprint of a request for its idempotency key: SHA-256 over method, path and body.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b"\n");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

/// Claims `idem_key` of `api_key` for a request with `fingerprint`, with a lease of
/// `lease_secs` seconds.
///
/// Errors: the database failed.
pub async fn begin(
    db: &Db,
    api_key: &str,
    idem_key: &str,
    fingerprint: &str,
    now: Timestamp,
    lease_secs: u64,
) -> Result<Begin, DbError> {
    let lease = secs(now.saturating_add(lease_secs));
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (api_key, idem_key, fingerprint, state, lease_until, created_at) \
         VALUES ($1, $2, $3, 'in_flight', $4, $5) ON CONFLICT (api_key, idem_key) DO NOTHING",
    )
    .bind(api_key)
    .bind(idem_key)
    .bind(fingerprint)
    .bind(lease)
    .bind(secs(now))
    .execute(&db.pool)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Begin::Run { taken_over: false });
    }
    let row = sqlx::query(
        "SELECT fingerprint, state, lease_until, status, body FROM idempotency_keys \
         WHERE api_key = $1 AND idem_key = $2",
    )
    .bind(api_key)
    .bind(idem_key)
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else {
        // Released between our insert and our read: let the client retry.
        return Ok(Begin::InUse);
    };
    let stored_fp: String = row.try_get(0)?;
    let state: String = row.try_get(1)?;
    let lease_until: i64 = row.try_get(2)?;
    if stored_fp != fingerprint {
        return Ok(Begin::Conflict);
    }
    if state == "done" {
        let status: Option<i64> = row.try_get(3)?;
        let body: Option<String> = row.try_get(4)?;
        let status = status.and_then(|s| u16::try_from(s).ok()).unwrap_or(500);
        return Ok(Begin::Replay(status, body.unwrap_or_default()));
    }
    if lease_until > secs(now) {
        return Ok(Begin::InUse);
    }
    // The lease ran out: the instance that held it died. Take it over, once.
    let taken = sqlx::query(
        "UPDATE idempotency_keys SET lease_until = $1 WHERE api_key = $2 AND idem_key = $3 \
         AND state = 'in_flight' AND lease_until = $4",
    )
    .bind(lease)
    .bind(api_key)
    .bind(idem_key)
    .bind(lease_until)
    .execute(&db.pool)
    .await?;
    Ok(if taken.rows_affected() == 1 {
        Begin::Run { taken_over: true }
    } else {
        Begin::InUse
    })
}

/// Extends the lease of `idem_key` while its request still runs (state `in_flight`) to
/// `now + lease_secs`.
///
/// Errors: the database failed.
pub async fn renew(
    db: &Db,
    api_key: &str,
    idem_key: &str,
    now: Timestamp,
    lease_secs: u64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE idempotency_keys SET lease_until = $1 WHERE api_key = $2 AND idem_key = $3 \
         AND state = 'in_flight'",
    )
    .bind(secs(now.saturating_add(lease_secs)))
    .bind(api_key)
    .bind(idem_key)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Stores the response of a request run under `idem_key`.
///
/// Errors: the database failed.
pub async fn complete(
    db: &Db,
    api_key: &str,
    idem_key: &str,
    status: u16,
    body: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE idempotency_keys SET state = 'done', status = $1, body = $2 \
         WHERE api_key = $3 AND idem_key = $4",
    )
    .bind(i64::from(status))
    .bind(body)
    .bind(api_key)
    .bind(idem_key)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Forgets a key whose request failed inside the server (a database error): the client may
/// retry it.
///
/// Errors: the database failed.
pub async fn release(db: &Db, api_key: &str, idem_key: &str) -> Result<(), DbError> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE api_key = $1 AND idem_key = $2 AND state = 'in_flight'",
    )
    .bind(api_key)
    .bind(idem_key)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Is `key` a valid `Idempotency-Key` (1..=255 bytes of visible ASCII, no spaces)?
pub fn valid_idempotency_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}
