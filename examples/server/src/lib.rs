//! `paystate-server`: the service host of the paystate engine.
//!
//! An HTTP service (axum) that keeps payments in SQLite or PostgreSQL (sqlx), takes the
//! merchant's signed API calls and the providers' notifications, and carries out the engine's
//! effects through an outbox. Everything it decides, the engine decides; this crate is the
//! I/O and the clock. See `docs/server.md` in the repository for the whole picture.

pub mod sim;
