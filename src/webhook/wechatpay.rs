//! WeChat Pay
