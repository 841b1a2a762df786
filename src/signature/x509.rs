//! X.509 certificates: the public key, serial number and validity of a provider's certificate
//! (a WeChat Pay platform certificate, an Alipay public-key certificate).
//!
//! Nothing here checks a certificate chain: the host pins the certificate it downloaded from
//! the provider over an authenticated channel, exactly as it would pin a bare key. The
//! certificate is only a container for the key, its serial number (which names the key in
//! `Wechatpay-Serial`), its issuer and serial number (which name it in Alipay's `*_cert_sn`,
//! see [`alipay::cert`](crate::alipay::cert)) and its validity period.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use x509_cert::Certificate as X509Certificate;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::der::{Decode, Encode, Tag, Tagged};
use x509_cert::name::Name;

use super::{KeyError, Rsa2PublicKey};
use crate::time::Timestamp;

/// Longest serial number accepted, in bytes (RFC 5280 allows 20, plus a sign byte).
pub const MAX_SERIAL_LEN: usize = 21;

/// A serial number as hex text: at most [`MAX_SERIAL_LEN`] bytes, two upper-case digits each.
pub type SerialHex = heapless::String<{ 2 * MAX_SERIAL_LEN }>;

/// A serial number as decimal text: a sign and at most 51 digits (21 bytes).
pub type SerialDecimal = heapless::String<52>;

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
    /// A root certificate bundle with no certificate signed with RSA that could be read, so
    /// no `alipay_root_cert_sn` (see [`alipay::cert::root_cert_sn`](crate::alipay::cert::root_cert_sn)).
    NoRsaCertificate,
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
            CertificateError::NoRsaCertificate => {
                f.write_str("the bundle holds no readable certificate signed with RSA")
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
    serial_decimal: SerialDecimal,
    issuer: String,
    rsa_signed: bool,
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

    /// Reads a PEM certificate (`-----BEGIN CERTIFICATE-----`). Only the first block is read;
    /// its base64 may be wrapped at any width (Alipay's files use 76 columns).
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
        let block = text.get(..end).unwrap_or(text).trim_ascii_end();
        // Lax about layout, like keys: Alipay's certificate files wrap base64 at 76 columns,
        // which a strict RFC 7468 reader refuses.
        let (label, der) =
            super::rsa::decode_pem(block).map_err(|_| CertificateError::InvalidPem)?;
        if label != "CERTIFICATE" {
            return Err(CertificateError::NotACertificate);
        }
        Certificate::from_der(&der)
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
        let serial_decimal =
            decimal(raw).ok_or(CertificateError::SerialTooLong { len: raw.len() })?;
        let issuer = rfc2253(tbs.issuer()).map_err(|_| CertificateError::InvalidDer)?;
        let rsa_signed = {
            let oid = cert.signature_algorithm().oid.as_bytes();
            oid.len() > PKCS1_ARC.len() && oid.starts_with(PKCS1_ARC)
        };
        let validity = tbs.validity();
        let secs = |t: x509_cert::time::Time| Timestamp::from_secs(t.to_unix_duration().as_secs());
        Ok(Certificate {
            spki_der,
            serial,
            serial_decimal,
            issuer,
            rsa_signed,
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

    /// The serial number in decimal, as Java's `getSerialNumber().toString()` writes it
    /// (`"42701552432456004857627230056898180491"`; a `-` for the negative serials some old
    /// certificates carry).
    pub fn serial_decimal(&self) -> &str {
        &self.serial_decimal
    }

    /// The issuer's distinguished name as RFC 2253 text, exactly as Java's
    /// `X500Principal.getName()` writes it (the form Alipay's SDKs hash): most specific RDN
    /// first, `,` between RDNs with no spaces, `+` inside a multi-valued RDN, the keywords
    /// `CN C L ST O OU STREET DC UID`, any other attribute as its dotted OID with `#` and the
    /// DER in hex, and `,=+<>#;"\` and a leading or trailing space escaped with `\`.
    pub fn issuer_rfc2253(&self) -> &str {
        &self.issuer
    }

    /// Whether the certificate is signed with RSA (any hash: a signature algorithm under
    /// PKCS #1, `1.2.840.113549.1.1`).
    pub fn is_signed_with_rsa(&self) -> bool {
        self.rsa_signed
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

/// The PKCS #1 arc `1.2.840.113549.1.1`, DER-encoded: every RSA signature algorithm is under it.
const PKCS1_ARC: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01];

/// A DER INTEGER's content (big-endian two's complement) in decimal.
fn decimal(raw: &[u8]) -> Option<SerialDecimal> {
    let negative = raw.first().is_some_and(|b| b & 0x80 != 0);
    let mut magnitude: heapless::Vec<u8, MAX_SERIAL_LEN> = heapless::Vec::from_slice(raw).ok()?;
    if negative {
        // Two's complement: invert and add one.
        let mut carry = true;
        for b in magnitude.iter_mut().rev() {
            let (v, c) = (!*b).overflowing_add(u8::from(carry));
            *b = v;
            carry = c;
        }
    }
    // Repeated division by ten, least significant digit first.
    let mut digits: heapless::Vec<u8, 52> = heapless::Vec::new();
    loop {
        let mut rem: u16 = 0;
        let mut nonzero = false;
        for b in magnitude.iter_mut() {
            let cur = (rem << 8) | u16::from(*b);
            *b = u8::try_from(cur / 10).ok()?;
            rem = cur % 10;
            nonzero |= *b != 0;
        }
        digits
            .push(b'0'.saturating_add(u8::try_from(rem).ok()?))
            .ok()?;
        if !nonzero {
            break;
        }
    }
    let mut out = SerialDecimal::new();
    if negative {
        out.push('-').ok()?;
    }
    for &d in digits.iter().rev() {
        out.push(char::from(d)).ok()?;
    }
    Some(out)
}

/// The RFC 2253 keyword Java writes for an attribute type, if it has one.
fn keyword(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x0A] => "O",
        [0x55, 0x04, 0x0B] => "OU",
        [0x55, 0x04, 0x09] => "STREET",
        // 0.9.2342.19200300.100.1.25 and .1
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x01] => "UID",
        _ => return None,
    })
}

/// The text of a directory string, or `None` for a value that is not one (written as hex).
fn directory_string(atv: &AttributeTypeAndValue) -> Option<String> {
    let bytes = atv.value.value();
    match atv.value.tag() {
        Tag::PrintableString | Tag::Ia5String | Tag::Utf8String => {
            core::str::from_utf8(bytes).ok().map(String::from)
        }
        // T.61 as Latin-1, as Java reads it.
        Tag::TeletexString => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            let units = bytes
                .chunks(2)
                .map(|c| match c {
                    [hi, lo] => Some(u16::from_be_bytes([*hi, *lo])),
                    _ => None,
                })
                .collect::<Option<Vec<u16>>>()?;
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        _ => None,
    }
}

/// `name` as Java's `X500Principal.getName()` (RFC 2253) writes it.
fn rfc2253(name: &Name) -> Result<String, fmt::Error> {
    let mut out = String::new();
    let rdns: Vec<_> = name.iter_rdn().collect();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let text = keyword(atv.oid.as_bytes()).and_then(|k| Some((k, directory_string(atv)?)));
            match text {
                Some((keyword, text)) => {
                    out.push_str(keyword);
                    out.push('=');
                    let last = text.chars().count().saturating_sub(1);
                    for (k, c) in text.chars().enumerate() {
                        match c {
                            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => {
                                out.push('\\');
                                out.push(c);
                            }
                            ' ' if k == 0 || k == last => out.push_str("\\ "),
                            '\0' => out.push_str("\\00"),
                            c => out.push(c),
                        }
                    }
                }
                None => {
                    let der = atv.value.to_der().map_err(|_| fmt::Error)?;
                    match keyword(atv.oid.as_bytes()) {
                        Some(keyword) => out.push_str(keyword),
                        None => write!(out, "{}", atv.oid)?,
                    }
                    out.push_str("=#");
                    for b in der {
                        write!(out, "{b:02x}")?;
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_numbers_in_decimal() {
        let d = |raw: &[u8]| decimal(raw).unwrap();
        assert_eq!(d(&[0]), "0");
        assert_eq!(d(&[0x01, 0x00]), "256");
        assert_eq!(d(&[0x00, 0xFF]), "255");
        assert_eq!(d(&[0xFF]), "-1");
        assert_eq!(d(&[0x80, 0x00]), "-32768");
        // 2^64 + 1
        assert_eq!(d(&[1, 0, 0, 0, 0, 0, 0, 0, 1]), "18446744073709551617");
        let max = [0xFFu8; MAX_SERIAL_LEN];
        let mut positive = [0xFFu8; MAX_SERIAL_LEN];
        positive[0] = 0x7F;
        assert_eq!(d(&max), "-1");
        assert_eq!(d(&positive).len(), 51);
        assert_eq!(decimal(&[1; MAX_SERIAL_LEN + 1]), None);
    }
}
