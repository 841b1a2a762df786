//! Public-key certificate mode (公钥证书模式): the certificate SNs that name keys.
//!
//! In certificate mode the merchant holds three certificates from Alipay's console: its own
//! application certificate, Alipay's public-key certificate and Alipay's root certificate
//! bundle. Requests carry `app_cert_sn` and `alipay_root_cert_sn`; every response carries
//! `alipay_cert_sn`, the SN of the Alipay certificate whose key signed it, and the host
//! verifies with that certificate's key
//! ([`verify_response_with_certificates`](super::response::verify_response_with_certificates)).
//! When Alipay rotates its certificate, responses name an SN the host does not hold
//! ([`ResponseError::UnknownCertSn`](super::response::ResponseError::UnknownCertSn)): fetch
//! the new certificate (`alipay.open.app.alipaycert.download`), check it against the root,
//! and add it.
//!
//! A certificate's SN, as every Alipay SDK computes it (Java `AntCertificationUtil`, the
//! Node.js SDK's `antcertutil`): the lower-case hex MD5 of its issuer's distinguished name in
//! RFC 2253 form ([`Certificate::issuer_rfc2253`]) followed by its serial number in decimal
//! ([`Certificate::serial_decimal`]). The root SN joins with `_` the SNs of the root bundle's
//! certificates that are signed with RSA, in file order ([`root_cert_sn`]).
//!
//! [`CertSn`] itself needs nothing; computing SNs needs the feature `x509`.
//!
//! [`Certificate::issuer_rfc2253`]: crate::signature::x509::Certificate::issuer_rfc2253
//! [`Certificate::serial_decimal`]: crate::signature::x509::Certificate::serial_decimal

use core::fmt;

/// A certificate SN: the 16 bytes of an MD5 digest, written as 32 lower-case hex digits.
///
/// ```
/// use paystate::alipay::cert::CertSn;
///
/// let sn = CertSn::parse("7513daaaa48aa3ba2e4018d84402479c").unwrap();
/// assert_eq!(sn.to_string(), "7513daaaa48aa3ba2e4018d84402479c");
/// assert_eq!(CertSn::parse("7513DAAAA48AA3BA2E4018D84402479C"), Some(sn));
/// assert_eq!(CertSn::parse("7513daaa"), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CertSn([u8; 16]);

impl CertSn {
    /// The SN of this MD5 digest.
    pub const fn from_digest(digest: [u8; 16]) -> CertSn {
        CertSn(digest)
    }

    /// The MD5 digest.
    pub const fn digest(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses 32 hex digits (either case). `None` for anything else.
    pub fn parse(text: &str) -> Option<CertSn> {
        let text = text.as_bytes();
        if text.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (byte, pair) in out.iter_mut().zip(text.chunks(2)) {
            let digit = |b: u8| {
                char::from(b)
                    .to_digit(16)
                    .and_then(|d| u8::try_from(d).ok())
            };
            match pair {
                [hi, lo] => *byte = (digit(*hi)? << 4) | digit(*lo)?,
                _ => return None,
            }
        }
        Some(CertSn(out))
    }

    /// The SN as Alipay writes it: 32 lower-case hex digits.
    pub fn to_hex(&self) -> heapless::String<32> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = heapless::String::new();
        for b in self.0 {
            for nibble in [b >> 4, b & 0x0f] {
                let digit = DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0');
                // 32 digits fit.
                let _ = out.push(char::from(digit));
            }
        }
        out
    }
}

impl fmt::Display for CertSn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for CertSn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertSn({self})")
    }
}

#[cfg(feature = "x509")]
mod sn {
    use alloc::string::String;
    use alloc::vec::Vec;

    use md5::{Digest, Md5};

    use super::CertSn;
    use crate::signature::x509::{Certificate, CertificateError};
    use crate::signature::{KeyError, Rsa2PublicKey};
    use crate::time::Timestamp;

    /// The SN of a certificate: MD5 of its RFC 2253 issuer and its decimal serial number.
    ///
    /// ```
    /// use paystate::alipay::cert::cert_sn;
    /// use paystate::signature::x509::Certificate;
    ///
    /// let cert = Certificate::parse(include_bytes!(
    ///     "../../tests/data/alipay_cert_sn/alipayCertPublicKey_RSA2.crt"
    /// ))?;
    /// assert_eq!(cert_sn(&cert).to_string(), "7513daaaa48aa3ba2e4018d84402479c");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cert_sn(cert: &Certificate) -> CertSn {
        let mut md5 = Md5::new();
        md5.update(cert.issuer_rfc2253().as_bytes());
        md5.update(cert.serial_decimal().as_bytes());
        CertSn::from_digest(md5.finalize().into())
    }

    /// The `alipay_root_cert_sn` of a root certificate bundle (PEM, the file the console
    /// gives): the SNs of its certificates signed with RSA (any hash), in file order, joined
    /// with `_`. Other certificates (SM2, ECDSA roots), and blocks a strict parser refuses,
    /// are skipped, as Alipay's SDKs skip them.
    ///
    /// Errors: [`CertificateError::Empty`], [`CertificateError::InvalidPem`] (not text, or no
    /// `CERTIFICATE` block), [`CertificateError::NoRsaCertificate`].
    pub fn root_cert_sn(bundle: &[u8]) -> Result<String, CertificateError> {
        if bundle.trim_ascii().is_empty() {
            return Err(CertificateError::Empty);
        }
        let text = core::str::from_utf8(bundle).map_err(|_| CertificateError::InvalidPem)?;
        const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
        let mut sns: Vec<String> = Vec::new();
        let mut blocks = 0usize;
        for (i, _) in text.match_indices(BEGIN) {
            blocks = blocks.saturating_add(1);
            let block = text.get(i..).unwrap_or_default();
            // `from_pem` reads the first block only.
            match Certificate::from_pem(block) {
                Ok(cert) if cert.is_signed_with_rsa() => {
                    sns.push(cert_sn(&cert).to_hex().as_str().into())
                }
                Ok(_) | Err(_) => {}
            }
        }
        if blocks == 0 {
            return Err(CertificateError::InvalidPem);
        }
        if sns.is_empty() {
            return Err(CertificateError::NoRsaCertificate);
        }
        Ok(sns.join("_"))
    }

    /// An Alipay public-key certificate ("支付宝公钥证书") the host trusts: its SN and its
    /// key. Load the ones the host holds at start-up; the response names the one to use.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AlipayCertificate {
        sn: CertSn,
        key: Rsa2PublicKey,
        not_before: Timestamp,
        not_after: Timestamp,
    }

    impl AlipayCertificate {
        /// From a parsed certificate. Errors if its key is not an RSA key of 2048..=4096 bits.
        pub fn new(cert: &Certificate) -> Result<AlipayCertificate, KeyError> {
            Ok(AlipayCertificate {
                sn: cert_sn(cert),
                key: cert.public_key()?,
                not_before: cert.not_before(),
                not_after: cert.not_after(),
            })
        }

        /// Its SN: what `alipay_cert_sn` says in the responses it signs.
        pub fn sn(&self) -> CertSn {
            self.sn
        }

        /// Its key.
        pub fn public_key(&self) -> &Rsa2PublicKey {
            &self.key
        }

        /// The end of its validity period (`notAfter`): Alipay's certificates last a few
        /// years, so the host should watch this and fetch the next one in time.
        pub fn not_after(&self) -> Timestamp {
            self.not_after
        }

        /// The start of its validity period (`notBefore`).
        pub fn not_before(&self) -> Timestamp {
            self.not_before
        }
    }
}

#[cfg(feature = "x509")]
pub use sn::{AlipayCertificate, cert_sn, root_cert_sn};
