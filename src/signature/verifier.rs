//! The one seam every provider verifies RSA2 signatures through, whichever arithmetic is
//! behind it: [`Rsa2Verifier`] over a [`SignedMessage`] (documented there, as re-exported from
//! `paystate::signature`).

use sha2::{Digest, Sha256};

use super::SignatureError;

/// The bytes a signature covers, handed over as consecutive pieces so that content which is
/// never built as one string can still be verified without a heap.
///
/// Implemented for byte slices, strings, arrays of pieces, Alipay's
/// [`SignedContent`](crate::alipay::content::SignedContent) and references to any of them.
///
/// ```
/// use paystate::signature::{SignedMessage, sha256_of};
///
/// // WeChat Pay's signed message, in pieces: the same digest as the joined string.
/// let pieces: [&[u8]; 6] = [b"1554208460", b"\n", b"593BEC0C930BF1AFEB40B4A08C8FB242", b"\n", b"{}", b"\n"];
/// assert_eq!(sha256_of(&pieces), sha256_of("1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{}\n"));
/// ```
pub trait SignedMessage {
    /// Calls `sink` with each piece of the message, in order. The message is their
    /// concatenation; empty pieces are allowed.
    fn for_each_piece(&self, sink: &mut dyn FnMut(&[u8]));

    /// The whole message as one slice, if it already is one. Backends that need contiguous
    /// input (`ring`) use it to skip a copy; the default is `None`.
    fn as_contiguous(&self) -> Option<&[u8]> {
        None
    }
}

impl SignedMessage for [u8] {
    fn for_each_piece(&self, sink: &mut dyn FnMut(&[u8])) {
        sink(self);
    }

    fn as_contiguous(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl SignedMessage for str {
    fn for_each_piece(&self, sink: &mut dyn FnMut(&[u8])) {
        sink(self.as_bytes());
    }

    fn as_contiguous(&self) -> Option<&[u8]> {
        Some(self.as_bytes())
    }
}

impl<const N: usize> SignedMessage for [u8; N] {
    fn for_each_piece(&self, sink: &mut dyn FnMut(&[u8])) {
        sink(self);
    }

    fn as_contiguous(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl<const N: usize> SignedMessage for [&[u8]; N] {
    fn for_each_piece(&self, sink: &mut dyn FnMut(&[u8])) {
        for piece in self {
            sink(piece);
        }
    }
}

impl SignedMessage for [&[u8]] {
    fn for_each_piece(&self, sink: &mut dyn FnMut(&[u8])) {
        for piece in self {
            sink(piece);
        }
    }
}

impl<M: SignedMessage + ?Sized> SignedMessage for &M {
    fn for_each_piece(&self, sink: &mut dyn FnMut(&[u8])) {
        (**self).for_each_piece(sink);
    }

    fn as_contiguous(&self) -> Option<&[u8]> {
        (**self).as_contiguous()
    }
}

impl SignedMessage for crate::alipay::content::SignedContent<'_, '_> {
    fn for_each_piece(&self, sink: &mut dyn FnMut(&[u8])) {
        for piece in self.pieces() {
            sink(piece);
        }
    }
}

/// SHA-256 of a message given in pieces: what an RSA2 (SHA256withRSA) signature signs.
pub fn sha256_of<M: SignedMessage + ?Sized>(message: &M) -> [u8; 32] {
    let mut hasher = Sha256::new();
    message.for_each_piece(&mut |piece| hasher.update(piece));
    hasher.finalize().into()
}

/// A pinned RSA public key that checks SHA256withRSA (RSASSA-PKCS1-v1_5 with SHA-256,
/// RFC 8017 §8.2.2 and §9.2) signatures: the seam every provider verifies through.
///
/// A backend is a pinned public key that implements this trait: it is handed the signed
/// message and the decoded signature, and answers `Ok(())` or a [`SignatureError`]. Three
/// backends ship with the crate:
///
/// | backend | feature | heap | arithmetic |
/// |---|---|---|---|
/// | `Rsa2PublicKey` | `rsa` (default) | yes | RustCrypto's `rsa` crate |
/// | `RingRsa2PublicKey` | `ring` | yes (std hosts) | `ring` |
/// | `FixedRsa2PublicKey` | `rsa-fixed` | **no** | `crypto-bigint` fixed-size integers |
///
/// **Why the seam takes the message, not its digest.** `ring` cannot verify an RSA signature
/// over a digest computed elsewhere: its only entry point hashes the message itself. A
/// digest-shaped seam would leave `ring` out; a message-shaped one serves every backend. The
/// message comes as consecutive pieces ([`SignedMessage`]) because the content a provider
/// signs is usually not one buffer: Alipay's is assembled from the sorted form fields, WeChat
/// Pay's is `timestamp \n nonce \n body \n`. Digest-based backends stream the pieces into
/// SHA-256 with no copy and no heap; `ring` gets one contiguous buffer (built only when the
/// message is not one already). Hosts whose RSA lives elsewhere (a secure element, an HSM) and
/// takes a digest keep using the providers' `verify_with` hooks, or call the digest-based
/// backends' own `verify_digest`.
///
/// Every backend applies the same rules, so swapping one for another changes speed and
/// footprint, never a verdict: the signature must be exactly as long as the modulus
/// ([`SignatureError::WrongLength`] otherwise), and must be the RSASSA-PKCS1-v1_5 signature
/// (RFC 8017 §8.2.2) with SHA-256 (§9.2) of the message ([`SignatureError::Mismatch`]
/// otherwise). Keys load under the same policy: 2048..=4096 bits, an odd modulus, an odd
/// public exponent from 3 to 2³³−1.
///
/// Implement it to plug another RSA implementation into the providers
/// ([`Notification::verify`](crate::alipay::notify::Notification::verify),
/// [`verify_response`](crate::alipay::response::verify_response), WeChat Pay's `verify`);
/// an implementation must give the verdicts described above, which the crate's backends are
/// differentially tested to agree on.
///
/// ```
/// use paystate::signature::{Rsa2Verifier, SignatureError, SignedMessage};
///
/// /// A stand-in for a secure element's RSA: accepts exactly one signature over one message.
/// struct Pinned;
///
/// impl Rsa2Verifier for Pinned {
///     fn verify_message<M: SignedMessage + ?Sized>(
///         &self,
///         message: &M,
///         signature: &[u8],
///     ) -> Result<(), SignatureError> {
///         let genuine = message.as_contiguous() == Some(b"a=1&b=2") && signature == [7u8; 256];
///         if signature.len() != 256 {
///             Err(SignatureError::WrongLength { expected: 256, got: signature.len() })
///         } else if genuine {
///             Ok(())
///         } else {
///             Err(SignatureError::Mismatch)
///         }
///     }
/// }
///
/// assert_eq!(Pinned.verify_message("a=1&b=2", &[7; 256]), Ok(()));
/// assert_eq!(Pinned.verify_message("a=1&b=3", &[7; 256]), Err(SignatureError::Mismatch));
/// ```
pub trait Rsa2Verifier {
    /// Checks `signature` (the raw bytes, already decoded from base64; exactly as long as the
    /// modulus) over `message`.
    ///
    /// # Errors
    ///
    /// [`SignatureError::WrongLength`] if the signature is not as long as the modulus,
    /// [`SignatureError::Mismatch`] if it is not this key's signature of the message. Either
    /// way the host must not act on the message.
    fn verify_message<M: SignedMessage + ?Sized>(
        &self,
        message: &M,
        signature: &[u8],
    ) -> Result<(), SignatureError>;
}

impl<V: Rsa2Verifier + ?Sized> Rsa2Verifier for &V {
    fn verify_message<M: SignedMessage + ?Sized>(
        &self,
        message: &M,
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        (**self).verify_message(message, signature)
    }
}

/// The DER `DigestInfo` prefix for SHA-256 (RFC 8017 §9.2, note 1): what precedes the
/// 32-byte hash in every RSA2 signature's encoded message.
pub const SHA256_DIGEST_INFO_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_hash_like_the_joined_message() {
        let joined = sha256_of("1554208460\nnonce\n{\"a\":1}\n");
        let pieces: [&[u8]; 6] = [b"1554208460", b"\n", b"nonce", b"\n", b"{\"a\":1}", b"\n"];
        assert_eq!(sha256_of(&pieces), joined);
        assert_eq!(sha256_of(&pieces[..]), joined);
        assert_eq!(sha256_of(b"1554208460\nnonce\n{\"a\":1}\n"), joined);
        assert_ne!(sha256_of(&pieces[..5]), joined);
        assert_eq!(pieces.as_contiguous(), None);
        assert_eq!("ab".as_contiguous(), Some(&b"ab"[..]));
    }

    #[test]
    fn digest_info_prefix_is_the_der_of_sha256() {
        // SEQUENCE { SEQUENCE { OID 2.16.840.1.101.3.4.2.1, NULL }, OCTET STRING (32) }
        assert_eq!(SHA256_DIGEST_INFO_PREFIX[0], 0x30);
        assert_eq!(
            usize::from(SHA256_DIGEST_INFO_PREFIX[1]),
            SHA256_DIGEST_INFO_PREFIX.len() - 2 + 32
        );
        assert_eq!(&SHA256_DIGEST_INFO_PREFIX[17..], &[0x04, 0x20]);
    }
}
