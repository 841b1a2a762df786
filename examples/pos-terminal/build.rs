//! Puts `memory.x` where the linker (through cortex-m-rt's `link.x`) finds it, and pins
//! Alipay's public key at build time: the key from `data/alipay-public-key.txt` (bare base64
//! of a DER `SubjectPublicKeyInfo`, as Alipay's console shows it) becomes the modulus and
//! exponent the firmware loads with `FixedRsa2048::from_modulus_and_exponent`, so the firmware
//! carries no base64 or DER key parser (about 11 KiB of flash). A key that is not an RSA
//! `SubjectPublicKeyInfo` fails the build.

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");

    let key = "data/alipay-public-key.txt";
    println!("cargo:rerun-if-changed={key}");
    let text = fs::read_to_string(key).expect("read the pinned Alipay public key");
    let der = base64(&text).expect("the pinned key is not base64");
    let (modulus, exponent) = rsa_spki(&der).expect("the pinned key is not an RSA public key");
    fs::write(
        out.join("alipay_key.rs"),
        format!(
            "/// The pinned key's modulus, big-endian.\npub const MODULUS: [u8; {}] = {:?};\n\
             /// The pinned key's public exponent, big-endian.\npub const EXPONENT: [u8; {}] = {:?};\n",
            modulus.len(),
            modulus,
            exponent.len(),
            exponent
        ),
    )
    .expect("write the pinned key");
}

/// Standard base64 with padding; whitespace anywhere is skipped.
fn base64(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        bits = bits << 6 | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    Some(out)
}

/// One DER element at the start of `der`: its tag, its content, and what follows.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        let (bytes, rest) = rest.split_at_checked(n)?;
        (bytes.iter().fold(0, |l, &b| l << 8 | usize::from(b)), rest)
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

/// The modulus (no leading zero) and exponent of an RSA `SubjectPublicKeyInfo`.
fn rsa_spki(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let (0x30, spki, []) = element(der)? else {
        return None;
    };
    let (0x30, algorithm, rest) = element(spki)? else {
        return None;
    };
    let (0x06, oid, _) = element(algorithm)? else {
        return None;
    };
    if oid != RSA_ENCRYPTION {
        return None;
    }
    let (0x03, bits, []) = element(rest)? else {
        return None;
    };
    let (0, key) = bits.split_first()? else {
        return None;
    };
    let (0x30, numbers, []) = element(key)? else {
        return None;
    };
    let (0x02, modulus, rest) = element(numbers)? else {
        return None;
    };
    let (0x02, exponent, []) = element(rest)? else {
        return None;
    };
    let modulus = modulus.strip_prefix(&[0]).unwrap_or(modulus);
    Some((modulus.to_vec(), exponent.to_vec()))
}
