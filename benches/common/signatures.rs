//! The signature workloads: Alipay's real V1 trade notification and its key, the same RSA2
//! verification through `ring` and through each of the crate's backends (`ring`, the
//! heap-free `rsa-fixed`, when their features are on), and an HMAC webhook over a 1 KiB body.

use paystate::Timestamp;
use paystate::alipay::content::{SignRule, SignedContent};
use paystate::alipay::form::Form;
use paystate::alipay::notify::Notification;
#[cfg(feature = "rsa-fixed")]
use paystate::signature::FixedRsa2048;
#[cfg(feature = "ring")]
use paystate::signature::RingRsa2PublicKey;
#[cfg(any(feature = "ring", feature = "rsa-fixed"))]
use paystate::signature::Rsa2Verifier;
use paystate::signature::{MAX_SIGNATURE_LEN, Rsa2PublicKey, SignatureError, decode_signature};
use paystate::webhook::{Duration, encode_hex, hmac};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256};

/// Alipay's trade notification (rule V1), form-encoded, and the key that verifies it; see
/// `tests/data/alipay/README.md` for where they come from.
pub const BODY: &str = include_str!("../../tests/data/alipay/trade_notify_v1.form_body.txt");
pub const CONTENT: &str = include_str!("../../tests/data/alipay/trade_notify_v1.sign_content.txt");
pub const KEY_PEM: &str =
    include_str!("../../tests/data/alipay/alipay-public-key-trade-notify-v1.pem");

/// Everything the RSA benchmarks need, prepared once.
pub struct Alipay {
    pub key: Rsa2PublicKey,
    /// The same key as PKCS#1 `RSAPublicKey` DER, the form `ring` takes.
    pub ring_key: Vec<u8>,
    pub signature: Vec<u8>,
    pub form_buf: Vec<u8>,
    /// The same key in the `ring` backend.
    #[cfg(feature = "ring")]
    pub ring_backend: RingRsa2PublicKey,
    /// The same key in the heap-free backend.
    #[cfg(feature = "rsa-fixed")]
    pub fixed: FixedRsa2048,
}

impl Alipay {
    pub fn new() -> Alipay {
        let key = Rsa2PublicKey::from_pem(KEY_PEM).expect("the vector's key");
        let ring_key = rsa::PublicKey::from_public_key_pem(KEY_PEM)
            .expect("an RSA key")
            .to_pkcs1_der()
            .expect("encodes")
            .as_bytes()
            .to_vec();
        let mut form_buf = vec![0u8; BODY.len()];
        let signature = {
            let form: Form<'_> = Form::decode(BODY.as_bytes(), &mut form_buf).expect("decodes");
            let mut buf = [0u8; MAX_SIGNATURE_LEN];
            decode_signature(form.get("sign").expect("signed"), &mut buf)
                .expect("base64")
                .to_vec()
        };
        let mut alipay = Alipay {
            key,
            ring_key,
            signature,
            form_buf,
            #[cfg(feature = "ring")]
            ring_backend: RingRsa2PublicKey::from_pem(KEY_PEM).expect("the vector's key"),
            #[cfg(feature = "rsa-fixed")]
            fixed: FixedRsa2048::from_pem(KEY_PEM).expect("the vector's key"),
        };
        // Every path verifies before anything is measured.
        assert_eq!(alipay.notification(), Ok(()));
        assert_eq!(alipay.rsa2_verify(), Ok(()));
        assert!(alipay.ring_verify());
        #[cfg(feature = "ring")]
        {
            assert_eq!(alipay.ring_backend_verify(), Ok(()));
            assert_eq!(alipay.notification_ring_backend(), Ok(()));
        }
        #[cfg(feature = "rsa-fixed")]
        assert_eq!(alipay.fixed_verify(), Ok(()));
        alipay
    }

    /// SHA256withRSA over the signed content through the `ring` backend (the seam).
    #[cfg(feature = "ring")]
    pub fn ring_backend_verify(&self) -> Result<(), SignatureError> {
        self.ring_backend
            .verify_message(CONTENT.as_bytes(), &self.signature)
    }

    /// End to end, as [`Alipay::notification`], verified through the `ring` backend.
    #[cfg(feature = "ring")]
    pub fn notification_ring_backend(&mut self) -> Result<(), SignatureError> {
        let form: Form<'_> = Form::decode(BODY.as_bytes(), &mut self.form_buf)
            .map_err(|_| SignatureError::Missing)?;
        Notification::verify(&form, SignRule::V1, &self.ring_backend).map(|_| ())
    }

    /// SHA256withRSA over the signed content through the heap-free backend (the seam).
    #[cfg(feature = "rsa-fixed")]
    pub fn fixed_verify(&self) -> Result<(), SignatureError> {
        self.fixed
            .verify_message(CONTENT.as_bytes(), &self.signature)
    }

    /// End to end: decode the form, build the signed content (V1), hash it, verify.
    pub fn notification(&mut self) -> Result<(), SignatureError> {
        let form: Form<'_> = Form::decode(BODY.as_bytes(), &mut self.form_buf)
            .map_err(|_| SignatureError::Missing)?;
        Notification::verify(&form, SignRule::V1, &self.key).map(|_| ())
    }

    /// SHA256withRSA over the signed content, with this crate's key.
    pub fn rsa2_verify(&self) -> Result<(), SignatureError> {
        self.key.verify(CONTENT.as_bytes(), &self.signature)
    }

    /// The same check with `ring` (RSA PKCS#1 v1.5, SHA-256).
    pub fn ring_verify(&self) -> bool {
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            &self.ring_key,
        )
        .verify(CONTENT.as_bytes(), &self.signature)
        .is_ok()
    }

    /// The signed content and its digest alone, from the decoded form (no RSA).
    pub fn content_digest(&mut self) -> Option<[u8; 32]> {
        let form: Form<'_> = Form::decode(BODY.as_bytes(), &mut self.form_buf).ok()?;
        Some(SignedContent::new(&form, SignRule::V1).digest())
    }
}

impl Default for Alipay {
    fn default() -> Self {
        Alipay::new()
    }
}

/// A signed HMAC webhook with a 1 KiB JSON body.
pub struct HmacWebhook {
    pub key: hmac::HmacKey,
    pub body: Vec<u8>,
    pub timestamp: String,
    pub signature: String,
    pub now: Timestamp,
}

impl HmacWebhook {
    pub fn new() -> HmacWebhook {
        let mut body = br#"{"id":"evt_1","type":"payment.succeeded","data":{"order":"o-000042","amount":"99.99","currency":"CNY","note":""#.to_vec();
        while body.len() < 1024 - 3 {
            body.push(b'x');
        }
        body.extend_from_slice(b"\"}}");
        assert_eq!(body.len(), 1024);
        let key = hmac::HmacKey::new(b"whsec_benchmark_shared_secret").expect("a secret");
        let ts = Timestamp::from_secs(1_764_000_000);
        let mut hex = [0u8; 64];
        let signature = encode_hex(&hmac::sign(&key, ts, &body), &mut hex)
            .expect("64 hex digits")
            .to_string();
        let webhook = HmacWebhook {
            key,
            body,
            timestamp: "1764000000".to_string(),
            signature,
            now: Timestamp::from_secs(1_764_000_042),
        };
        assert!(webhook.verify());
        webhook
    }

    /// The whole check: parse the headers, the window, HMAC-SHA256 over `"{ts}|{body}"`,
    /// compare in constant time.
    pub fn verify(&self) -> bool {
        hmac::verify(
            &self.key,
            &self.timestamp,
            &self.signature,
            &self.body,
            self.now,
            Duration::DEFAULT_TOLERANCE,
        )
        .is_ok()
    }

    /// The baseline: SHA-256 of the body alone.
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.body).into()
    }
}

impl Default for HmacWebhook {
    fn default() -> Self {
        HmacWebhook::new()
    }
}
