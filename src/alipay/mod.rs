//! Alipay (DESIGN.md §4).

pub mod content;
pub mod form;
pub mod notify;
#[cfg(feature = "rsa")]
pub mod request;
pub mod response;
