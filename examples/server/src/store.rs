//! The database: one code path (sqlx's `Any` driver) for SQLite and PostgreSQL, with the few
//! statements that must differ chosen by [`Backend`].
//!
//! Tables (docs/server.md has the full schema):
//! - `payments`: the order id, the provider, the engine's snapshot (the truth), and copies of
//!   status, version, deadline and "owes an effect" as columns for queries and people, never
//!   read back as the truth;
//! - `outbox`: one row per effect to carry out at the provider, claimed with a lease;
//! - `refund_requests`: the refunds the merchant asked for and the provider has not confirmed;
//! - `nonces`: the merchant API's nonces, shared by every instance (docs/spec.md §3.1);
//! - `idempotency_keys`: the merchant API's idempotency keys, with a lease while in flight
//!   (docs/spec.md §3.2, §10).
//!
//! Times in every table are seconds since the Unix epoch; amounts are minor units.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// Which database the URL named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file, in WAL mode; writes take the lock up front
    /// (`BEGIN IMMEDIATE`) so concurrent writers wait instead of failing.
    Sqlite,
    /// A PostgreSQL server shared by every instance.
    Postgres,
}

/// The pool and what it is.
#[derive(Debug, Clone)]
pub struct Db {
    /// Connections.
    pub pool: AnyPool,
    /// Which database.
    pub backend: Backend,
}

/// A database error, as sqlx gives it.
pub type DbError = sqlx::Error;

/// The schema, one text for both databases: `{BLOB}` and `{SERIAL_KEY}` are the two types
/// that differ ([`Backend::schema`] fills them in).
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS payments (
    order_id TEXT PRIMARY KEY NOT NULL,
    provider TEXT NOT NULL,
    snapshot {BLOB} NOT NULL,
    status TEXT NOT NULL,
    version BIGINT NOT NULL,
    expires_at BIGINT,
    owes_effect INTEGER NOT NULL DEFAULT 0,
    subject TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    query_at BIGINT
);
CREATE INDEX IF NOT EXISTS payments_open_deadline ON payments (expires_at)
    WHERE status IN ('pending', 'processing') AND expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS payments_query_at ON payments (query_at) WHERE query_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS payments_owing ON payments (order_id) WHERE owes_effect = 1;
CREATE TABLE IF NOT EXISTS outbox (
    id {SERIAL_KEY},
    effect_key TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    refund_id TEXT,
    amount BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    done_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
DROP INDEX IF EXISTS outbox_due;
CREATE INDEX IF NOT EXISTS outbox_due_order ON outbox (next_attempt_at, id) WHERE done_at IS NULL;
CREATE TABLE IF NOT EXISTS refund_requests (
    order_id TEXT NOT NULL,
    refund_id TEXT NOT NULL,
    amount BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (order_id, refund_id)
);
CREATE TABLE IF NOT EXISTS nonces (
    api_key TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (api_key, nonce)
);
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_at);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    api_key TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    status BIGINT,
    body TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (api_key, idem_key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at);
"#;

// `outbox_due_order` is in the claim's order (`ORDER BY next_attempt_at, id`), so a claim reads
// the 16 rows it takes and stops, where the earlier `outbox_due (next_attempt_at)` made
// PostgreSQL read and sort every due row on each pass: a cost that grew with the backlog just
// when a backlog needs draining. Databases made before it lose the old index on start-up.

/// An arbitrary constant: the advisory lock that serialises schema creation when several
/// instances start at once on one PostgreSQL database.
const SCHEMA_LOCK: i64 = 0x7061_7973_7461_7465;

impl Backend {
    /// The schema in this database's SQL: `BLOB` or `BYTEA` for snapshots, an
    /// `AUTOINCREMENT` rowid or a `BIGSERIAL` for outbox ids.
    pub fn schema(self) -> String {
        let (blob, serial_key) = match self {
            Backend::Sqlite => ("BLOB", "INTEGER PRIMARY KEY AUTOINCREMENT"),
            Backend::Postgres => ("BYTEA", "BIGSERIAL PRIMARY KEY"),
        };
        SCHEMA
            .replace("{BLOB}", blob)
            .replace("{SERIAL_KEY}", serial_key)
    }
}

impl Db {
    /// Connects to `url` (`sqlite://FILE` — created if missing — or `postgres://…`) and
    /// creates the schema if it is not there.
    ///
    /// Errors: the database cannot be reached or opened, or the schema cannot be created.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        // One connection first: the pool would only say "timed out" after retrying, where this
        // says why (refused, no such database, authentication failed).
        let probe = <sqlx::AnyConnection as sqlx::Connection>::connect_with(&options).await?;
        sqlx::Connection::close(probe).await?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let db = Db { pool, backend };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> Result<(), DbError> {
        let mut conn = self.pool.acquire().await?;
        match self.backend {
            Backend::Sqlite => {
                conn.execute("BEGIN IMMEDIATE").await?;
                let result = conn.execute(Backend::Sqlite.schema().as_str()).await;
                match result {
                    Ok(_) => {
                        conn.execute("COMMIT").await?;
                    }
                    Err(e) => {
                        let _ = conn.execute("ROLLBACK").await;
                        return Err(e);
                    }
                }
            }
            Backend::Postgres => {
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(SCHEMA_LOCK)
                    .execute(&mut *conn)
                    .await?;
                let result = conn.execute(Backend::Postgres.schema().as_str()).await;
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(SCHEMA_LOCK)
                    .execute(&mut *conn)
                    .await?;
                result?;
            }
        }
        Ok(())
    }

    /// Begins a write transaction: `BEGIN IMMEDIATE` on SQLite (the write lock up front, so
    /// a read-then-write transaction never fails to upgrade), `BEGIN` on PostgreSQL (where the
    /// compare-and-swap on `version` decides races).
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, DbError> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// `true` when the database answers a trivial query.
    pub async fn healthy(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}
