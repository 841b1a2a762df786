//! Alipay (docs/spec.md §4): notifications, synchronous responses and signed requests.
//!
//! - [`form`]: the strict form decoder a notification body goes through, once.
//! - [`content`]: the content Alipay signs, under the host's rule ([`content::SignRule`]
//!   `V1` for trade notifications, `V2` for gateway notifications and requests), streamed
//!   into SHA-256.
//! - [`notify`]: a verified notification → the four business checks → an engine
//!   [`Input`](crate::Input), and the reply (`success` / `fail`).
//! - [`response`]: the exact signed JSON text of a synchronous response, found by a scan that
//!   needs no heap.
//! - [`cert`]: certificate mode, the SNs that name Alipay's and the application's
//!   certificates (computing them needs the feature `x509`).
//! - [`encryption`]: content encryption, AES-CBC decryption of encrypted responses
//!   (`AesKey`, feature `alipay-aes`).
//! - `request` (feature `rsa`): signed bodies for `alipay.trade.precreate`, `query`,
//!   `refund`, `fastpay.refund.query`, `close` and `cancel`, and signed `page.pay`/`wap.pay`
//!   URLs for the customer's browser.
//!
//! Everything but `request` and the RSA arithmetic itself is `no_std` without allocation; the
//! RSA2 checks are behind the `rsa` feature ([`Rsa2PublicKey`](crate::signature)), and
//! [`notify::Notification::verify_with`] / [`response::SignedResponse::verify_with`] accept
//! the host's own RSA implementation instead.
//!
//! ```
//! # #[cfg(feature = "rsa")] {
//! use paystate::alipay::{content::SignRule, form::Form, notify::Notification};
//! use paystate::signature::Rsa2PublicKey;
//!
//! let key = Rsa2PublicKey::from_pem(include_str!(
//!     "../../tests/data/alipay/alipay-public-key-trade-notify-v1.pem"
//! ))?;
//! let body = include_bytes!("../../tests/data/alipay/trade_notify_v1.form_body.txt");
//! let mut buf = [0u8; 2048];
//! let form = Form::decode(body, &mut buf)?;
//! let note = Notification::verify(&form, SignRule::V1, &key)?;
//! assert_eq!(note.out_trade_no()?, "20190815155618536-564-57");
//! assert!(Notification::verify(&form, SignRule::V2, &key).is_err());
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cert;
pub mod content;
pub mod encryption;
pub mod form;
pub mod notify;
#[cfg(feature = "rsa")]
pub mod request;
pub mod response;
