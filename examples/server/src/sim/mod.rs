//! The Alipay provider simulator (being written).
