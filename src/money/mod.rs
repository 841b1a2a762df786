//! Money: integer minor units of an ISO 4217 currency, parsed and formatted exactly.
//!
//! There is no floating point anywhere in this crate. An amount is a `u64` count of the
//! currency's minor unit (fen for CNY, cents for USD, yen for JPY, fils for KWD), and a decimal
//! string such as `"99.99"` is converted to and from it digit by digit.

use core::fmt;

mod currency_table;

/// An ISO 4217 currency that has a minor unit, with its official exponent.
///
/// The table holds every currency of ISO 4217 List One that has a minor unit (CNY 2, USD 2,
/// JPY 0, KWD 3, CLF 4, ...). Codes without one (gold, SDR, `XXX`) and withdrawn codes are
/// unknown: [`Currency::from_code`] returns an error rather than guessing an exponent.
///
/// A `Currency` is one byte: an index into that table.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(u8);

/// Returns the index of `code` in the table (sorted by alpha code), in const context too.
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a binary search with lo < hi <= table.len() and a code of length 3, checked first; \
              const fns cannot use the iterator adaptors"
)]
const fn find(code: &[u8]) -> Option<u8> {
    let table = currency_table::TABLE;
    if code.len() != 3 {
        return None;
    }
    let (mut lo, mut hi) = (0usize, table.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let c = table[mid].0;
        let ord = cmp3(c, [code[0], code[1], code[2]]);
        if ord == 0 {
            // The table has fewer than 256 entries (checked by a test).
            return Some(mid as u8);
        } else if ord < 0 {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    None
}

#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "i < 3 indexes arrays of 3; const fns cannot iterate"
)]
const fn cmp3(a: [u8; 3], b: [u8; 3]) -> i8 {
    let mut i = 0;
    while i < 3 {
        if a[i] < b[i] {
            return -1;
        }
        if a[i] > b[i] {
            return 1;
        }
        i += 1;
    }
    0
}

#[allow(
    clippy::panic,
    reason = "only ever evaluated at compile time, for the named currency constants"
)]
const fn known(code: &[u8; 3]) -> Currency {
    match find(code) {
        Some(i) => Currency(i),
        // Evaluated at compile time only: a misspelt constant fails the build.
        None => panic!("currency constant missing from the ISO 4217 table"),
    }
}

impl Currency {
    /// Chinese yuan renminbi (exponent 2).
    pub const CNY: Currency = known(b"CNY");
    /// United States dollar (exponent 2).
    pub const USD: Currency = known(b"USD");
    /// Euro (exponent 2).
    pub const EUR: Currency = known(b"EUR");
    /// Hong Kong dollar (exponent 2).
    pub const HKD: Currency = known(b"HKD");
    /// Japanese yen (exponent 0).
    pub const JPY: Currency = known(b"JPY");
    /// Kuwaiti dinar (exponent 3).
    pub const KWD: Currency = known(b"KWD");

    /// Looks a currency up by its three-letter alpha code (`"CNY"`), case-sensitively.
    pub fn from_code(code: &str) -> Result<Currency, UnknownCurrency> {
        find(code.as_bytes()).map(Currency).ok_or(UnknownCurrency)
    }

    /// Looks a currency up by its ISO 4217 numeric code (156 for CNY).
    pub fn from_numeric(numeric: u16) -> Result<Currency, UnknownCurrency> {
        currency_table::TABLE
            .iter()
            .position(|(_, n, _)| *n == numeric)
            .and_then(|i| u8::try_from(i).ok())
            .map(Currency)
            .ok_or(UnknownCurrency)
    }

    fn entry(self) -> ([u8; 3], u16, u8) {
        // The index was produced by a lookup in the same table, so it is in range; the
        // fallback only keeps this function panic-free.
        currency_table::TABLE
            .get(usize::from(self.0))
            .copied()
            .unwrap_or((*b"XXX", 999, 0))
    }

    /// The three-letter alpha code, e.g. `"CNY"`.
    pub fn code(self) -> &'static str {
        match currency_table::TABLE.get(usize::from(self.0)) {
            Some((code, _, _)) => core::str::from_utf8(code).unwrap_or("XXX"),
            None => "XXX",
        }
    }

    /// The ISO 4217 numeric code, e.g. 156 for CNY. Snapshots store this.
    pub fn numeric(self) -> u16 {
        self.entry().1
    }

    /// The number of fractional digits of the minor unit: CNY 2, JPY 0, KWD 3.
    pub fn exponent(self) -> u8 {
        self.entry().2
    }

    /// Every currency this crate knows, in alpha-code order.
    pub fn all() -> impl Iterator<Item = Currency> {
        (0..currency_table::TABLE.len()).filter_map(|i| u8::try_from(i).ok().map(Currency))
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl core::str::FromStr for Currency {
    type Err = UnknownCurrency;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::from_code(s)
    }
}

/// The code is not an ISO 4217 currency with a minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnknownCurrency;

impl fmt::Display for UnknownCurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown currency code")
    }
}

impl core::error::Error for UnknownCurrency {}

/// An amount of money: a count of minor units and the currency they are in.
///
/// ```
/// use paystate::{Currency, Money};
///
/// let m = Money::parse("99.9", Currency::CNY)?;
/// assert_eq!(m.minor_units(), 9990);
/// assert_eq!(m.to_string(), "99.90");
/// assert_eq!(Money::parse("100", Currency::JPY)?.minor_units(), 100);
/// assert!(Money::parse("99.999", Currency::CNY).is_err());
/// # Ok::<(), paystate::AmountError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Money {
    minor: u64,
    currency: Currency,
}

/// Why a decimal amount string was refused. Every variant is a malformed or unrepresentable
/// string; nothing is ever rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AmountError {
    /// The string is empty.
    Empty,
    /// A byte other than an ASCII digit or a single `.` (signs, spaces, exponents, separators).
    InvalidCharacter {
        /// Byte offset of the offending character.
        at: usize,
    },
    /// Nothing before the `.` (`".5"`).
    MissingIntegerPart,
    /// Nothing after the `.` (`"5."`).
    MissingFraction,
    /// More fractional digits than the currency's exponent (`"99.999"` in CNY).
    TooManyFractionDigits {
        /// The currency's exponent: the most fractional digits allowed.
        max: u8,
    },
    /// The amount does not fit in a `u64` count of minor units.
    Overflow,
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmountError::Empty => f.write_str("empty amount"),
            AmountError::InvalidCharacter { at } => write!(f, "invalid character at byte {at}"),
            AmountError::MissingIntegerPart => f.write_str("no digits before the decimal point"),
            AmountError::MissingFraction => f.write_str("no digits after the decimal point"),
            AmountError::TooManyFractionDigits { max } => {
                write!(f, "more than {max} fractional digits")
            }
            AmountError::Overflow => f.write_str("amount too large"),
        }
    }
}

impl core::error::Error for AmountError {}

impl Money {
    /// `minor` minor units of `currency` (`Money::from_minor(9999, Currency::CNY)` is ¥99.99).
    pub const fn from_minor(minor: u64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    /// Zero in `currency`.
    pub const fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    /// Parses a decimal string exactly: ASCII digits, optionally one `.` followed by between one
    /// and `exponent` digits. No sign, exponent, spaces, separators or empty integer part.
    pub fn parse(s: &str, currency: Currency) -> Result<Money, AmountError> {
        let bytes = s.as_bytes();
        if bytes.is_empty() {
            return Err(AmountError::Empty);
        }
        let exponent = currency.exponent();
        let mut minor: u64 = 0;
        let mut int_digits = 0usize;
        let mut frac_digits: u8 = 0;
        let mut seen_dot = false;
        for (at, &b) in bytes.iter().enumerate() {
            match b {
                b'0'..=b'9' => {
                    if seen_dot {
                        if frac_digits >= exponent {
                            return Err(AmountError::TooManyFractionDigits { max: exponent });
                        }
                        frac_digits = frac_digits.saturating_add(1);
                    } else {
                        int_digits = int_digits.saturating_add(1);
                    }
                    minor = minor
                        .checked_mul(10)
                        .and_then(|m| m.checked_add(u64::from(b.saturating_sub(b'0'))))
                        .ok_or(AmountError::Overflow)?;
                }
                b'.' if !seen_dot => {
                    if int_digits == 0 {
                        return Err(AmountError::MissingIntegerPart);
                    }
                    seen_dot = true;
                }
                _ => return Err(AmountError::InvalidCharacter { at }),
            }
        }
        if seen_dot && frac_digits == 0 {
            return Err(AmountError::MissingFraction);
        }
        for _ in frac_digits..exponent {
            minor = minor.checked_mul(10).ok_or(AmountError::Overflow)?;
        }
        Ok(Money { minor, currency })
    }

    /// The count of minor units.
    pub const fn minor_units(self) -> u64 {
        self.minor
    }

    /// The currency.
    pub const fn currency(self) -> Currency {
        self.currency
    }

    /// `true` for zero.
    pub const fn is_zero(self) -> bool {
        self.minor == 0
    }

    /// `self + other`, or `None` on overflow or if the currencies differ.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Some(Money::from_minor(
            self.minor.checked_add(other.minor)?,
            self.currency,
        ))
    }

    /// `self − other`, or `None` if it would go below zero or the currencies differ.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Some(Money::from_minor(
            self.minor.checked_sub(other.minor)?,
            self.currency,
        ))
    }
}

/// Formats the amount with exactly `exponent` fractional digits and no currency code:
/// `"99.90"` for 9990 CNY, `"100"` for 100 JPY, `"0.005"` for 5 KWD.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exponent = u32::from(self.currency.exponent());
        // 10^exponent: exponents in the table are at most 4, so this cannot overflow.
        let scale = 10u64.checked_pow(exponent).unwrap_or(1);
        let whole = self.minor.checked_div(scale).unwrap_or(self.minor);
        let frac = self.minor.checked_rem(scale).unwrap_or(0);
        if exponent == 0 {
            write!(f, "{whole}")
        } else {
            write!(f, "{whole}.{frac:0width$}", width = exponent as usize)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn table_fits_an_index_byte_and_is_sorted() {
        assert!(currency_table::TABLE.len() < 256);
        assert!(currency_table::TABLE.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn exponents_match_iso_4217() {
        for (code, exp, num) in [
            ("CNY", 2, 156),
            ("USD", 2, 840),
            ("JPY", 0, 392),
            ("KWD", 3, 414),
            ("BHD", 3, 48),
            ("CLF", 4, 990),
            ("KRW", 0, 410),
            ("ISK", 0, 352),
        ] {
            let c = Currency::from_code(code).unwrap();
            assert_eq!((c.code(), c.exponent(), c.numeric()), (code, exp, num));
            assert_eq!(Currency::from_numeric(num), Ok(c));
        }
        for unknown in ["XAU", "XXX", "HRK", "cny", "", "CNYY", "ABC"] {
            assert_eq!(
                Currency::from_code(unknown),
                Err(UnknownCurrency),
                "{unknown}"
            );
        }
        assert_eq!(Currency::CNY.code(), "CNY");
        assert_eq!(Currency::JPY.exponent(), 0);
    }

    #[test]
    fn parses_exactly() {
        let p = |s, c| Money::parse(s, c).map(Money::minor_units);
        assert_eq!(p("99.99", Currency::CNY), Ok(9999));
        assert_eq!(p("99.9", Currency::CNY), Ok(9990));
        assert_eq!(p("99", Currency::CNY), Ok(9900));
        assert_eq!(p("0.01", Currency::CNY), Ok(1));
        assert_eq!(p("100", Currency::JPY), Ok(100));
        assert_eq!(p("1.005", Currency::KWD), Ok(1005));
        assert_eq!(p("007.5", Currency::USD), Ok(750));
        assert_eq!(p("184467440737095516.15", Currency::USD), Ok(u64::MAX));
    }

    #[test]
    fn rejects_every_malformed_string() {
        use AmountError::*;
        let p = |s| Money::parse(s, Currency::CNY).map(Money::minor_units);
        assert_eq!(p(""), Err(Empty));
        assert_eq!(p(".5"), Err(MissingIntegerPart));
        assert_eq!(p("5."), Err(MissingFraction));
        assert_eq!(p("99.999"), Err(TooManyFractionDigits { max: 2 }));
        assert_eq!(p("-1"), Err(InvalidCharacter { at: 0 }));
        assert_eq!(p("+1"), Err(InvalidCharacter { at: 0 }));
        assert_eq!(p("1e3"), Err(InvalidCharacter { at: 1 }));
        assert_eq!(p(" 1"), Err(InvalidCharacter { at: 0 }));
        assert_eq!(p("1 "), Err(InvalidCharacter { at: 1 }));
        assert_eq!(p("1,000"), Err(InvalidCharacter { at: 1 }));
        assert_eq!(p("1.0.0"), Err(InvalidCharacter { at: 3 }));
        assert_eq!(p("１"), Err(InvalidCharacter { at: 0 }));
        assert_eq!(p("184467440737095516.16"), Err(Overflow));
        assert_eq!(p("99999999999999999999"), Err(Overflow));
        assert_eq!(
            Money::parse("1.0", Currency::JPY),
            Err(TooManyFractionDigits { max: 0 })
        );
    }

    #[test]
    fn formats_with_exactly_exponent_digits() {
        let f = |m, c| Money::from_minor(m, c).to_string();
        assert_eq!(f(9990, Currency::CNY), "99.90");
        assert_eq!(f(1, Currency::CNY), "0.01");
        assert_eq!(f(0, Currency::CNY), "0.00");
        assert_eq!(f(100, Currency::JPY), "100");
        assert_eq!(f(5, Currency::KWD), "0.005");
        assert_eq!(f(u64::MAX, Currency::USD), "184467440737095516.15");
    }

    #[test]
    fn format_then_parse_is_identity_for_every_currency() {
        for c in Currency::all() {
            for m in [0, 1, 9, 10, 99, 12345, u64::MAX] {
                let s = Money::from_minor(m, c).to_string();
                assert_eq!(Money::parse(&s, c), Ok(Money::from_minor(m, c)), "{c} {s}");
            }
        }
    }

    #[test]
    fn checked_arithmetic() {
        let a = Money::from_minor(5, Currency::CNY);
        assert_eq!(a.checked_sub(Money::from_minor(6, Currency::CNY)), None);
        assert_eq!(a.checked_add(Money::from_minor(1, Currency::USD)), None);
        assert_eq!(
            Money::from_minor(u64::MAX, Currency::CNY).checked_add(a),
            None
        );
        assert_eq!(a.checked_add(a), Some(Money::from_minor(10, Currency::CNY)));
    }
}
