//! The AES key and the cipher itself (feature `alipay-aes`).

use core::fmt;

use aes::{Aes128, Aes192, Aes256};
use base64ct::{Base64, Encoding};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};

use super::AesError;

/// The IV Alipay's SDKs use: all zeros.
const IV: [u8; 16] = [0; 16];

/// The longest base64 text of a key accepted (a 32-byte key is 44 characters).
const MAX_KEY_BASE64_LEN: usize = 44;

#[derive(Clone, PartialEq, Eq)]
enum Key {
    Aes128([u8; 16]),
    Aes192([u8; 24]),
    Aes256([u8; 32]),
}

/// The merchant's AES key for content encryption. Its `Debug` output does not show the key.
///
/// ```
/// use paystate::alipay::encryption::{AesError, AesKey};
///
/// let key = AesKey::from_base64("AAECAwQFBgcICQoLDA0ODw==")?;
/// let mut ct = [0u8; 128]; // the ciphertext (32 bytes), then its base64 (44)
/// let ciphertext = key.encrypt_base64(br#"{"code":"10000"}"#, &mut ct)?;
/// let mut pt = [0u8; 64];
/// assert_eq!(key.decrypt_base64(ciphertext, &mut pt)?, br#"{"code":"10000"}"#);
/// assert_eq!(AesKey::from_base64("AAEC").err(), Some(AesError::KeyLength { len: 3 }));
/// # Ok::<(), AesError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AesKey(Key);

impl fmt::Debug for AesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AesKey(AES-{})", self.bits())
    }
}

/// `buf[..len]`, or the error that says how long `buf` must be.
fn prefix(buf: &mut [u8], len: usize) -> Result<&mut [u8], AesError> {
    buf.get_mut(..len)
        .ok_or(AesError::BufferTooSmall { needed: len })
}

/// The length of the base64 text of `len` bytes, padded.
const fn base64_len(len: usize) -> usize {
    len.div_ceil(3).saturating_mul(4)
}

impl AesKey {
    /// A key of 16, 24 or 32 bytes (AES-128, -192, -256).
    pub fn from_bytes(key: &[u8]) -> Result<AesKey, AesError> {
        let len = key.len();
        let bad = AesError::KeyLength { len };
        Ok(AesKey(match len {
            16 => Key::Aes128(key.try_into().map_err(|_| bad)?),
            24 => Key::Aes192(key.try_into().map_err(|_| bad)?),
            32 => Key::Aes256(key.try_into().map_err(|_| bad)?),
            _ => return Err(bad),
        }))
    }

    /// A key as the console shows it: standard base64 (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<AesKey, AesError> {
        let mut buf = [0u8; 33];
        let text = text.as_bytes().trim_ascii();
        if text.len() > MAX_KEY_BASE64_LEN {
            // Too long for any AES key: the length its base64 would decode to.
            let pad = text
                .iter()
                .rev()
                .take(2)
                .take_while(|&&b| b == b'=')
                .count();
            let len = (text.len() / 4).saturating_mul(3).saturating_sub(pad);
            return Err(AesError::KeyLength { len });
        }
        let key = Base64::decode(text, &mut buf).map_err(|_| AesError::KeyNotBase64)?;
        AesKey::from_bytes(key)
    }

    /// The key size in bits: 128, 192 or 256.
    pub const fn bits(&self) -> u32 {
        match self.0 {
            Key::Aes128(_) => 128,
            Key::Aes192(_) => 192,
            Key::Aes256(_) => 256,
        }
    }

    /// Decrypts `ciphertext` (AES-CBC, zero IV) into `out` and removes the PKCS#7 padding;
    /// returns the plaintext, a prefix of `out`. `out` must be at least as long as the
    /// ciphertext.
    pub fn decrypt<'o>(&self, ciphertext: &[u8], out: &'o mut [u8]) -> Result<&'o [u8], AesError> {
        let len = ciphertext.len();
        if len == 0 || !len.is_multiple_of(16) {
            return Err(AesError::CiphertextLength { len });
        }
        let out = prefix(out, len)?;
        let plain = match &self.0 {
            Key::Aes128(k) => cbc::Decryptor::<Aes128>::new(k.into(), &IV.into())
                .decrypt_padded_b2b::<Pkcs7>(ciphertext, out),
            Key::Aes192(k) => cbc::Decryptor::<Aes192>::new(k.into(), &IV.into())
                .decrypt_padded_b2b::<Pkcs7>(ciphertext, out),
            Key::Aes256(k) => cbc::Decryptor::<Aes256>::new(k.into(), &IV.into())
                .decrypt_padded_b2b::<Pkcs7>(ciphertext, out),
        };
        plain.map_err(|_| AesError::BadPadding)
    }

    /// Decodes the base64 `ciphertext` strictly and decrypts it into `out`, which must be at
    /// least as long as the text (the text is copied there and decoded in place).
    pub fn decrypt_base64<'o>(
        &self,
        ciphertext: &str,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], AesError> {
        let text = ciphertext.as_bytes();
        prefix(out, text.len())?.copy_from_slice(text);
        self.decrypt_base64_in_place(out, text.len())
    }

    /// Decrypts the base64 text in `buf[..len]` in place; returns the plaintext, a prefix of
    /// `buf`.
    pub(crate) fn decrypt_base64_in_place<'o>(
        &self,
        buf: &'o mut [u8],
        len: usize,
    ) -> Result<&'o [u8], AesError> {
        let text = prefix(buf, len)?;
        let len = Base64::decode_in_place(text)
            .map_err(|_| AesError::CiphertextNotBase64)?
            .len();
        if len == 0 || !len.is_multiple_of(16) {
            return Err(AesError::CiphertextLength { len });
        }
        let plain_len = self.decrypt_in_place(prefix(buf, len)?)?;
        Ok(buf.get(..plain_len).unwrap_or_default())
    }

    /// Decrypts `buf` (whole blocks) in place; returns the plaintext's length.
    fn decrypt_in_place(&self, buf: &mut [u8]) -> Result<usize, AesError> {
        let plain = match &self.0 {
            Key::Aes128(k) => {
                cbc::Decryptor::<Aes128>::new(k.into(), &IV.into()).decrypt_padded::<Pkcs7>(buf)
            }
            Key::Aes192(k) => {
                cbc::Decryptor::<Aes192>::new(k.into(), &IV.into()).decrypt_padded::<Pkcs7>(buf)
            }
            Key::Aes256(k) => {
                cbc::Decryptor::<Aes256>::new(k.into(), &IV.into()).decrypt_padded::<Pkcs7>(buf)
            }
        };
        plain.map(<[u8]>::len).map_err(|_| AesError::BadPadding)
    }

    /// Encrypts `plaintext` (PKCS#7 padding, AES-CBC, zero IV) into `out`, which must hold
    /// the padded length (`plaintext.len() / 16 * 16 + 16`); returns the ciphertext. What
    /// Alipay does to a response, and what the host does to an encrypted request's
    /// `biz_content`.
    pub fn encrypt<'o>(&self, plaintext: &[u8], out: &'o mut [u8]) -> Result<&'o [u8], AesError> {
        let needed = (plaintext.len() / 16).saturating_add(1).saturating_mul(16);
        let out = prefix(out, needed)?;
        let cipher = match &self.0 {
            Key::Aes128(k) => cbc::Encryptor::<Aes128>::new(k.into(), &IV.into())
                .encrypt_padded_b2b::<Pkcs7>(plaintext, out),
            Key::Aes192(k) => cbc::Encryptor::<Aes192>::new(k.into(), &IV.into())
                .encrypt_padded_b2b::<Pkcs7>(plaintext, out),
            Key::Aes256(k) => cbc::Encryptor::<Aes256>::new(k.into(), &IV.into())
                .encrypt_padded_b2b::<Pkcs7>(plaintext, out),
        };
        cipher.map_err(|_| AesError::BufferTooSmall { needed })
    }

    /// [`AesKey::encrypt`], then base64: the text Alipay puts in an encrypted response. `out`
    /// must hold the base64 text and, before it, the ciphertext
    /// (`(plaintext.len() / 16 + 1) * 16` bytes, then 4 for every 3 of those).
    pub fn encrypt_base64<'o>(
        &self,
        plaintext: &[u8],
        out: &'o mut [u8],
    ) -> Result<&'o str, AesError> {
        let cipher_len = (plaintext.len() / 16).saturating_add(1).saturating_mul(16);
        let needed = cipher_len.saturating_add(base64_len(cipher_len));
        let out = prefix(out, needed)?;
        let (cipher, text) = out.split_at_mut(cipher_len);
        let cipher = self.encrypt(plaintext, cipher)?;
        Base64::encode(cipher, text).map_err(|_| AesError::BufferTooSmall { needed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cbc::cipher::block_padding::NoPadding;

    fn unhex(s: &str) -> std::vec::Vec<u8> {
        let s: std::string::String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// NIST SP 800-38A, Appendix F.2: CBC-AES128/192/256 (F.2.1, F.2.3, F.2.5 encrypt;
    /// F.2.2, F.2.4, F.2.6 decrypt the same blocks). The same four plaintext blocks and IV.
    #[test]
    fn nist_sp800_38a_cbc_known_answers() {
        let iv = unhex("000102030405060708090a0b0c0d0e0f");
        let plain = unhex(
            "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
             30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710",
        );
        let cases = [
            (
                "2b7e151628aed2a6abf7158809cf4f3c",
                "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2
                 73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7",
            ),
            (
                "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
                "4f021db243bc633d7178183a9fa071e8 b4d9ada9ad7dedf4e5e738763f69145a
                 571b242012fb7ae07fa9baac3df102e0 08b0e27988598881d920a9e64f5615cd",
            ),
            (
                "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
                "f58c4c04d6e5f1ba779eabfb5f7bfbd6 9cfc4e967edb808d679f777bc6702c7d
                 39f23369a9d9bacfa530e26304231461 b2eb05e2c39be9fcda6c19078c6a9d1b",
            ),
        ];
        for (key, cipher) in cases {
            let key = AesKey::from_bytes(&unhex(key)).unwrap();
            let cipher = unhex(cipher);
            // Alipay's zero IV: the first block is XORed with the vector's IV beforehand, which
            // makes CBC with a zero IV produce exactly the vector's ciphertext blocks.
            let mut shifted = plain.clone();
            for (b, v) in shifted.iter_mut().zip(&iv) {
                *b ^= v;
            }
            let mut out = [0u8; 80];
            let encrypted = key.encrypt(&shifted, &mut out).unwrap().to_vec();
            assert_eq!(
                encrypted.len(),
                80,
                "AES-{}: a full padding block",
                key.bits()
            );
            assert_eq!(&encrypted[..64], &cipher[..], "AES-{} encrypt", key.bits());
            let mut back = [0u8; 80];
            assert_eq!(key.decrypt(&encrypted, &mut back), Ok(&shifted[..]));

            // Decryption of the vector itself, with its IV, through the same cipher crates.
            let mut buf = cipher.clone();
            let got = match &key.0 {
                Key::Aes128(k) => {
                    cbc::Decryptor::<Aes128>::new(k.into(), iv[..].try_into().unwrap())
                        .decrypt_padded::<NoPadding>(&mut buf)
                        .map(<[u8]>::to_vec)
                }
                Key::Aes192(k) => {
                    cbc::Decryptor::<Aes192>::new(k.into(), iv[..].try_into().unwrap())
                        .decrypt_padded::<NoPadding>(&mut buf)
                        .map(<[u8]>::to_vec)
                }
                Key::Aes256(k) => {
                    cbc::Decryptor::<Aes256>::new(k.into(), iv[..].try_into().unwrap())
                        .decrypt_padded::<NoPadding>(&mut buf)
                        .map(<[u8]>::to_vec)
                }
            };
            assert_eq!(got.unwrap(), plain, "AES-{} decrypt", key.bits());
        }
    }

    #[test]
    fn base64_round_trip_in_one_buffer() {
        let key = AesKey::from_base64(" aGVsbG8gd29ybGQgMTIzNA== \n").unwrap();
        assert_eq!(key.bits(), 128);
        for len in [0, 1, 15, 16, 17, 100] {
            let plain: std::vec::Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = [0u8; 512];
            let text = std::string::String::from(key.encrypt_base64(&plain, &mut out).unwrap());
            let mut exact = std::vec![0u8; text.len()];
            assert_eq!(
                key.decrypt_base64(&text, &mut exact),
                Ok(&plain[..]),
                "{len}"
            );
            let mut short = std::vec![0u8; text.len() - 1];
            assert_eq!(
                key.decrypt_base64(&text, &mut short),
                Err(AesError::BufferTooSmall { needed: text.len() })
            );
        }
        assert_eq!(std::format!("{key:?}"), "AesKey(AES-128)");
    }
}
