//! X.509 certificates: the public key, serial number and validity of a provider's certificate
//! (a WeChat Pay platform certificate, an Alipay public-key certificate).
//!
//! Nothing here checks a certificate chain: the host pins the certificate it downloaded from
//! the provider over an authenticated channel, exactly as it would pin a bare key. The
//! certificate is only a container for the key, its serial number (which names the key in
//! `Wechatpay-Serial`) and its validity period.

use alloc::vec::Vec;
use core::fmt;

use x509_cert::Certificate as X509Certificate;
use x509_cert::der::{Decode, DecodePem, Encode, pem};

use super::{KeyError, Rsa2PublicKey};
use crate::time::Timestamp;

/// Longest serial number accepted, in bytes (RFC 5280 allows 20, plus a sign byte).
pub const MAX_SERIAL_LEN: usize = 21;

/// A serial number as hex text: at most [`MAX_SERIAL_LEN`] bytes, two upper-case digits each.
pub type SerialHex = heapless::String<{ 2 * MAX_SERIAL_LEN }>;

/// Why a certificate could not be read. A configuration error: fix the file, do not retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CertificateError {
    /// The input is empty (or only whitespace).
    Empty,
    /// A PEM block that is malformed (bad armour, bad base64).
    InvalidPem,
    /// A PEM block that is not a `CERTIFICATE` (for example a `PUBLIC KEY`: load that with
    /// [`Rsa2PublicKey::parse`]).
    NotACertificate,
    /// The bytes are not a DER X.509 certificate.
    InvalidDer,
    /// The serial number is longer than [`MAX_SERIAL_LEN`] bytes.
    SerialTooLong {
        /// Its length in bytes.
        len: usize,
    },
}

impl fmt::Display for CertificateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertificateError::Empty => f.write_str("the certificate is empty"),
            CertificateError::InvalidPem => f.write_str("the certificate is not well-formed PEM"),
            CertificateError::NotACertificate => f.write_str("the PEM block is not a CERTIFICATE"),
            CertificateError::InvalidDer => {
                f.write_str("the bytes are not a DER X.509 certificate")
            }
            CertificateError::SerialTooLong { len } => {
                write!(
                    f,
                    "the serial number is {len} bytes (at most {MAX_SERIAL_LEN})"
                )
            }
        }
    }
}

impl core::error::Error for CertificateError {}

/// What the crate needs from an X.509 certificate: its `SubjectPublicKeyInfo`, serial number
/// and validity. Load it once at start-up, like a key.
///
/// ```
/// use paystate::signature::x509::Certificate;
///
/// let pem = "-----BEGIN CERTIFICATE-----
/// MIIDVzCCAj+gAwIBAgIJANfOWdH1ItcBMA0GCSqGSIb3DQEBCwUAMEIxCzAJBgNV
/// BAYTAlhYMRUwEwYDVQQHDAxEZWZhdWx0IENpdHkxHDAaBgNVBAoME0RlZmF1bHQg
/// Q29tcGFueSBMdGQwHhcNMjEwNDI3MDg1NTIzWhcNMzEwNDI1MDg1NTIzWjBCMQsw
/// CQYDVQQGEwJYWDEVMBMGA1UEBwwMRGVmYXVsdCBDaXR5MRwwGgYDVQQKDBNEZWZh
/// dWx0IENvbXBhbnkgTHRkMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA
/// 2VCTd91fnUn73Xy9DLvt/V62TVxRTEEstVdeRaZ3B3leO0pldE806mXO4RwdHXag
/// HQ4vGeZN0yqm++rDsGK+U3AH7kejyD2pXshNP9Cq5YwbptiLGtjcquw4HNxJQUOm
/// DeJf2vg6byms9RUipiq4SzbJKqJFlUpbuIPDpSpWz10PYmyCNeDGUUK65E5h2B83
/// 4uxl1zNLYQCrkdBzb8oUxwYeP5a2DNxmjL5lsJML7DGr5znsevnoqGRwTm9fxCGf
/// y8wus7hwKz6clt3Whmmda7UAdb1c08hEQFVRbF14AR73xbnd8N0obCWJPCbzMCtk
/// aSef4FdEEgEXJiw0VAJT8wIDAQABo1AwTjAdBgNVHQ4EFgQUT1c7nd/SUO76HSoZ
/// umNUJv1R5PwwHwYDVR0jBBgwFoAUT1c7nd/SUO76HSoZumNUJv1R5PwwDAYDVR0T
/// BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOCAQEAfTjxKRQMzNB/U6ZoCUS+BSNfa2Oh
/// 0plMN6ZuzwiVVZwg1jywvv5yv04koS7Pd4i9E4gt9ZBUQXlpq+A3oOCEEHNRR6b2
/// kyazGRM7s0OP5X21WrbpSmKmU6K7hkfx30yYs08LVs/Q8DIhvaj1FCFeJzUCzYn/
/// fHMq4tsbKO0dKAeydPM/nrUZBmaYQVKMVOORGLFjFKVO7JV6Kq/R86ouhjEPgJOe
/// 2xulNBUcjicqtZlBdEh/PWCYP2SpGVDclKm8jeo175T3EVAkdKzzmfpxtMmnMlmq
/// cTJOU9TxuGvNASMtjj7pYIerTx+xgZDXEVBWFW9PjJ0TV06tCRsgSHItgg==
/// -----END CERTIFICATE-----";
/// let cert = Certificate::from_pem(pem)?;
/// assert_eq!(cert.serial_hex().as_str(), "D7CE59D1F522D701"); // what Wechatpay-Serial says
/// assert_eq!(cert.public_key()?.bits(), 2048);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    spki_der: Vec<u8>,
    serial: heapless::Vec<u8, MAX_SERIAL_LEN>,
    not_before: Timestamp,
    not_after: Timestamp,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("serial", &self.serial_hex().as_str())
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Certificate, CertificateError> {
        if der.is_empty() {
            return Err(CertificateError::Empty);
        }
        let cert = X509Certificate::from_der(der).map_err(|_| CertificateError::InvalidDer)?;
        Certificate::from_parsed(&cert)
    }

    /// Reads a PEM certificate (`-----BEGIN CERTIFICATE-----`). Only the first block is read.
    pub fn from_pem(pem: &str) -> Result<Certificate, CertificateError> {
        let text = pem.trim_ascii_start();
        if text.trim_ascii_end().is_empty() {
            return Err(CertificateError::Empty);
        }
        // Cut the first block out, so a chain file or trailing text does not get in the way.
        let end = text
            .find("-----END ")
            .and_then(|at| text.get(at..)?.find("\n").map(|nl| at.saturating_add(nl)))
            .unwrap_or(text.len());
        let block = text.get(..end).unwrap_or(text).trim_ascii_end().as_bytes();
        match pem::decode_label(block) {
            Ok("CERTIFICATE") => {}
            Ok(_) => return Err(CertificateError::NotACertificate),
            Err(_) => return Err(CertificateError::InvalidPem),
        }
        let cert = X509Certificate::from_pem(block).map_err(|e| match e.kind() {
            x509_cert::der::ErrorKind::Pem(_) => CertificateError::InvalidPem,
            _ => CertificateError::InvalidDer,
        })?;
        Certificate::from_parsed(&cert)
    }

    /// Reads a certificate file: PEM if it starts with `-----BEGIN`, else DER.
    pub fn parse(bytes: &[u8]) -> Result<Certificate, CertificateError> {
        let text = bytes.trim_ascii_start();
        if text.is_empty() {
            return Err(CertificateError::Empty);
        }
        if text.starts_with(b"-----BEGIN") {
            let pem = core::str::from_utf8(text).map_err(|_| CertificateError::InvalidPem)?;
            Certificate::from_pem(pem)
        } else {
            Certificate::from_der(bytes)
        }
    }

    fn from_parsed(cert: &X509Certificate) -> Result<Certificate, CertificateError> {
        let tbs = cert.tbs_certificate();
        let spki_der = tbs
            .subject_public_key_info()
            .to_der()
            .map_err(|_| CertificateError::InvalidDer)?;
        // The DER integer's content; drop sign-padding zero bytes to get the magnitude.
        let raw = tbs.serial_number().as_bytes();
        let magnitude = match raw.iter().position(|&b| b != 0) {
            Some(first) => raw.get(first..).unwrap_or(raw),
            None => raw.get(raw.len().saturating_sub(1)..).unwrap_or(raw),
        };
        let serial =
            heapless::Vec::from_slice(magnitude).map_err(|_| CertificateError::SerialTooLong {
                len: magnitude.len(),
            })?;
        let validity = tbs.validity();
        let secs = |t: x509_cert::time::Time| Timestamp::from_secs(t.to_unix_duration().as_secs());
        Ok(Certificate {
            spki_der,
            serial,
            not_before: secs(validity.not_before),
            not_after: secs(validity.not_after),
        })
    }

    /// The certificate's `SubjectPublicKeyInfo`, DER-encoded.
    pub fn subject_public_key_info_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The certified key as an RSA2 key. Errors if it is not an RSA key of 2048..=4096 bits.
    pub fn public_key(&self) -> Result<Rsa2PublicKey, KeyError> {
        Rsa2PublicKey::from_der(&self.spki_der)
    }

    /// The serial number: big-endian, without leading zero bytes.
    pub fn serial_number(&self) -> &[u8] {
        &self.serial
    }

    /// The serial number as upper-case hex, two digits a byte, as WeChat Pay writes it in
    /// `Wechatpay-Serial` (`"D7CE59D1F522D701"`).
    pub fn serial_hex(&self) -> SerialHex {
        const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
        let mut out = SerialHex::new();
        for b in &self.serial {
            for nibble in [b >> 4, b & 0x0f] {
                let digit = DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0');
                // Capacity is two digits per byte of a serial of at most MAX_SERIAL_LEN bytes.
                let _ = out.push(char::from(digit));
            }
        }
        out
    }

    /// The start of the validity period (`notBefore`).
    pub fn not_before(&self) -> Timestamp {
        self.not_before
    }

    /// The end of the validity period (`notAfter`).
    pub fn not_after(&self) -> Timestamp {
        self.not_after
    }

    /// Whether `now` is within the validity period (both ends inclusive).
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}
