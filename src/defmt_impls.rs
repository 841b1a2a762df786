//! `defmt::Format` for the types whose derived format would print internals.

use crate::money::Currency;

impl defmt::Format for Currency {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}", self.code())
    }
}

impl<const E: usize, const R: usize> defmt::Format for crate::Payment<E, R> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "Payment {{ status: {}, version: {=u32}, amount: {=u64}, paid: {=u64}, refunded: {=u64} }}",
            self.status(),
            self.version(),
            self.amount().minor_units(),
            self.paid().minor_units(),
            self.refunded().minor_units()
        )
    }
}

impl defmt::Format for crate::RefundRequestId {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}", self.as_str())
    }
}

impl defmt::Format for crate::table::OrderId {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=[u8]:a}", self.as_bytes())
    }
}

#[cfg(feature = "rsa")]
impl defmt::Format for crate::signature::Rsa2PublicKey {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Rsa2PublicKey({=u32} bits)", self.bits())
    }
}

#[cfg(feature = "rsa")]
impl defmt::Format for crate::signature::Rsa2PrivateKey {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Rsa2PrivateKey({=u32} bits)", self.bits())
    }
}

impl<const N: usize> defmt::Format for crate::guard::ReplayGuard<N> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "ReplayGuard {{ capacity: {=usize}, len: {=usize}, tolerance: {=u64}, floor: {} }}",
            N,
            self.len(),
            self.tolerance().as_secs(),
            self.floor()
        )
    }
}

impl<const N: usize, O: Clone> defmt::Format for crate::guard::IdempotencyStore<N, O> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "IdempotencyStore {{ capacity: {=usize}, len: {=usize}, retention: {=u64}, floor: {} }}",
            N,
            self.len(),
            self.retention().as_secs(),
            self.floor()
        )
    }
}

impl defmt::Format for crate::webhook::hmac::HmacKey {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "HmacKey(..)")
    }
}

impl defmt::Format for crate::webhook::hmac::Verifier {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "hmac::Verifier {{ timestamp: {} }}", self.timestamp())
    }
}

impl defmt::Format for crate::webhook::stripe::Verifier<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "stripe::Verifier {{ timestamp: {} }}", self.timestamp())
    }
}

#[cfg(feature = "wechatpay")]
impl defmt::Format for crate::webhook::wechatpay::ApiV3Key {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "ApiV3Key(..)")
    }
}

#[cfg(feature = "rsa-fixed")]
impl<const LIMBS: usize> defmt::Format for crate::signature::FixedRsa2PublicKey<LIMBS> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "FixedRsa2PublicKey({=u32} bits, e = {=u64})",
            self.bits(),
            self.exponent()
        )
    }
}

#[cfg(feature = "ring")]
impl defmt::Format for crate::signature::RingRsa2PublicKey {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "RingRsa2PublicKey({=u32} bits)", self.bits())
    }
}

#[cfg(feature = "wechatpay")]
impl<K: defmt::Format> defmt::Format for crate::webhook::wechatpay::PlatformKey<K> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "PlatformKey {{ id: {=str}, key: {} }}",
            self.id(),
            self.key()
        )
    }
}

#[cfg(feature = "x509")]
impl defmt::Format for crate::signature::x509::Certificate {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "Certificate {{ serial: {=str}, not_before: {}, not_after: {} }}",
            self.serial_hex().as_str(),
            self.not_before(),
            self.not_after()
        )
    }
}

#[cfg(feature = "x509")]
impl defmt::Format for crate::alipay::cert::AlipayCertificate {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "AlipayCertificate {{ sn: {}, not_after: {} }}",
            self.sn(),
            self.not_after()
        )
    }
}

#[cfg(feature = "alipay-aes")]
impl defmt::Format for crate::alipay::encryption::AesKey {
    fn format(&self, f: defmt::Formatter<'_>) {
        // The key is never printed.
        defmt::write!(f, "AesKey(AES-{=u32})", self.bits())
    }
}

#[cfg(feature = "rsa")]
impl defmt::Format for crate::alipay::request::SignedRequest {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "SignedRequest {{ method: {=str}, body: {=str} }}",
            self.method(),
            self.body()
        )
    }
}

#[cfg(feature = "rsa")]
impl defmt::Format for crate::alipay::request::RequestSigner {
    fn format(&self, f: defmt::Formatter<'_>) {
        // The key is never printed.
        defmt::write!(f, "RequestSigner {{ .. }}")
    }
}

impl<'a, L, P> defmt::Format for crate::reconcile::Reconcile<'a, L, P> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Reconcile {{ .. }}")
    }
}
