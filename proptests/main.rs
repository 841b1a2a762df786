//! Property tests: random input sequences across several payments, checked step by step
//! against the shared reference model (model/) and against every invariant of docs/spec.md
//! §2.5; random request streams (with a clock that jumps back and forth) through the guards
//! of §3; the Alipay form decoder and response scan; the payment table; the bill readers of
//! §6.

mod alipay;
mod bill;
mod engine;
mod guards;
mod reconcile;
mod table;
