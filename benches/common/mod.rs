//! What the benchmarks share: the baselines, the prepared states and inputs, and the loads.
//! Each bench binary uses part of it.
#![allow(dead_code)]

pub mod cases;
pub mod guards;
pub mod machines;
#[cfg(feature = "rsa")]
pub mod signatures;
#[cfg(feature = "serde")]
pub mod snapshots;
