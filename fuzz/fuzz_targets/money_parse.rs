//! Money parsing and formatting (docs/spec.md §1).
//!
//! `Money::parse` is compared with a reference parser written from the spec grammar (digits,
//! optionally one `.` and 1..=exponent digits; the exact value, or an error on overflow), and
//! formatting with the canonical form of what was parsed. Formatting any count of minor units
//! parses back to it. Neither allocates.
#![no_main]

use std::fmt::Write;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use paystate::{AmountError, Currency, Money};
use paystate_fuzz::no_alloc;

#[derive(Arbitrary, Debug)]
struct Case<'a> {
    currency: u8,
    minor: u64,
    /// Last, so it takes the rest of the input: seeds are readable.
    text: &'a str,
}

/// The spec grammar and value, independently of the crate: `None` for every refusal.
fn reference(s: &str, exponent: u8) -> Option<u64> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) {
        return None;
    }
    let frac = match frac {
        None => "",
        Some(f) if digits(f) && f.len() <= usize::from(exponent) => f,
        Some(_) => return None,
    };
    let pad = usize::from(exponent) - frac.len();
    let mut value: u128 = 0;
    for b in int
        .bytes()
        .chain(frac.bytes())
        .chain("0".repeat(pad).bytes())
    {
        value = value * 10 + u128::from(b - b'0');
        if value > u128::from(u64::MAX) {
            return None;
        }
    }
    Some(value as u64)
}

/// `s` as it prints after parsing: no leading zeros, exactly `exponent` fractional digits.
fn canonical(s: &str, exponent: u8) -> String {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    if exponent == 0 {
        int.to_owned()
    } else {
        format!("{int}.{frac:0<width$}", width = usize::from(exponent))
    }
}

/// A fixed buffer to format into without the heap.
struct Buf {
    bytes: [u8; 64],
    len: usize,
}

impl Write for Buf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn format(m: Money) -> String {
    let mut buf = Buf {
        bytes: [0; 64],
        len: 0,
    };
    no_alloc("formatting Money", || write!(buf, "{m}")).expect("Money fits 64 bytes");
    std::str::from_utf8(&buf.bytes[..buf.len])
        .expect("Money formats as UTF-8")
        .to_owned()
}

fuzz_target!(|case: Case<'_>| {
    let n = Currency::all().count();
    let c = Currency::all()
        .nth(usize::from(case.currency) % n)
        .expect("the table is not empty");
    let e = c.exponent();

    let parsed = no_alloc("Money::parse", || Money::parse(case.text, c));
    let want = reference(case.text, e);
    assert_eq!(
        parsed.map(Money::minor_units).ok(),
        want,
        "{:?} in {c} (exponent {e}): {parsed:?}",
        case.text
    );
    match parsed {
        Ok(m) => {
            assert_eq!(m.currency(), c);
            assert_eq!(format(m), canonical(case.text, e), "{:?} in {c}", case.text);
        }
        Err(AmountError::Empty) => assert!(case.text.is_empty()),
        Err(AmountError::InvalidCharacter { at }) => {
            let b = case.text.as_bytes().get(at).copied();
            assert!(
                b.is_some_and(|b| !b.is_ascii_digit()),
                "{:?}: invalid character at {at}",
                case.text
            );
        }
        Err(AmountError::MissingIntegerPart) => assert!(case.text.starts_with('.')),
        Err(AmountError::MissingFraction) => assert!(case.text.ends_with('.')),
        Err(AmountError::TooManyFractionDigits { max }) => assert_eq!(max, e),
        Err(_) => {}
    }

    // Any count of minor units formats with exactly `exponent` fractional digits and parses
    // back to itself.
    let m = Money::from_minor(case.minor, c);
    let s = format(m);
    match s.split_once('.') {
        None => assert_eq!(e, 0, "{s}"),
        Some((int, frac)) => {
            assert_eq!(frac.len(), usize::from(e), "{s}");
            assert!(int == "0" || !int.starts_with('0'), "{s}");
        }
    }
    assert_eq!(reference(&s, e), Some(case.minor), "{s}");
    assert_eq!(Money::parse(&s, c), Ok(m), "{s}");
});
