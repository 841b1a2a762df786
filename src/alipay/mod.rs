//! Alipay (DESIGN.md §4).
