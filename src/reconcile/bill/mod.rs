//! The provider's side of reconciliation: streaming readers of the bill files (docs/spec.md §6).
//!
//! Two formats, as the host downloads them (and unzips them):
//!
//! - [`AlipayBill`]: Alipay's trade detail CSV, the `…_业务明细.csv` of the daily bill archive
//!   (`alipay.data.dataservice.bill.downloadurl.query`, `bill_type=trade`), in GBK as
//!   downloaded or in UTF-8 (with or without a BOM);
//! - [`WechatPayBill`]: WeChat Pay's trade bill (`tradebill`, 交易账单), UTF-8, every value
//!   prefixed with a backquote, a summary block at the end.
//!
//! **One line at a time.** The host splits the file on `\n` (a `\r` left at the end of a line
//! is removed) and hands each line, as bytes, to the reader's `line` method; the reader never
//! holds the file, copies nothing and allocates nothing. Each line yields either nothing (a
//! comment, the header, the summary, a blank line) or one [`BillLine`] borrowing from the
//! line: an order's trade or refund with its amount. After the last line the host calls
//! `finish`, which tells a complete bill from a truncated one.
//!
//! **Errors name their line.** The reader counts the lines itself (the first is line 1); every
//! [`BillError`] carries the number of the line it is about, and a malformed line is an error,
//! never a silent skip. After an error the reader is spent: every later `line` and `finish`
//! returns that first error again, so a host that forgot one still cannot take the bill for
//! complete.
//!
//! **Amounts.** The files write yuan (or the currency's major unit) as decimal text
//! (`"99.90"`); a [`BillLine`] carries [`Money`] in minor units (9990 fen), parsed exactly by
//! [`Money::parse`]: never rounded, a third decimal of a CNY amount is an error. A refund
//! line's amount is the refunded amount, positive, whatever sign the file writes it with.
//!
//! **Per order.** A bill lists lines, not orders: one order may have a trade line and several
//! refund lines, anywhere in the file (Alipay sorts by time). [`reconcile`](super::reconcile)
//! needs one [`Entry`](super::Entry) per order, sorted by order id: grouping is the host's,
//! since the reader holds no state per order. With the `alloc` feature, [`BillTotals`] does
//! it in a `BTreeMap`; without a heap the host sorts the lines elsewhere (a database, a
//! sorted file) and sums consecutive lines of the same order.
//!
//! ```
//! use paystate::reconcile::bill::{AlipayBill, BillLineKind};
//! use paystate::{Currency, Money};
//!
//! let file = "#支付宝业务明细查询\n\
//!             #账号：[20880000000000000156]\n\
//!             支付宝交易号,商户订单号,业务类型,商品名称,订单金额（元）,退款批次号/请求号\n\
//!             2024010122001400000000000001\t,o-1\t,交易\t,T-shirt\t,99.90\t,\t\n\
//!             2024010122001400000000000001\t,o-1\t,退款\t,T-shirt\t,-10.00\t,r-1\t\n\
//!             #-----------------------------------------业务明细列表结束------------------------------------\n\
//!             #导出时间：[2024年01月02日 06:27:10]\n";
//! let mut bill = AlipayBill::new();
//! let mut lines = Vec::new();
//! for line in file.as_bytes().split(|&b| b == b'\n') {
//!     if let Some(found) = bill.line(line)? {
//!         lines.push((found.order_id.to_vec(), found.kind, found.amount));
//!     }
//! }
//! bill.finish()?;
//! let cny = |m| Money::from_minor(m, Currency::CNY);
//! assert_eq!(lines, [
//!     (b"o-1".to_vec(), BillLineKind::Trade, cny(9_990)),
//!     (b"o-1".to_vec(), BillLineKind::Refund, cny(1_000)),
//! ]);
//! # Ok::<(), paystate::reconcile::bill::BillError>(())
//! ```

use core::fmt;

use crate::money::{AmountError, Currency, Money};
use crate::payment::input::MAX_ID_LEN;

mod alipay;
#[cfg(feature = "alloc")]
mod totals;
mod wechatpay;

pub use alipay::AlipayBill;
#[cfg(feature = "alloc")]
pub use totals::{BillTotals, OrderTotals};
pub use wechatpay::WechatPayBill;

/// What a bill line does to its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BillLineKind {
    /// A capture: Alipay's `交易`, WeChat Pay's `SUCCESS`. The amount adds to `paid`.
    Trade,
    /// A refund: Alipay's `退款`, WeChat Pay's `REFUND`. The amount adds to `refunded`.
    Refund,
}

impl BillLineKind {
    /// `"trade"` or `"refund"`.
    pub const fn name(self) -> &'static str {
        match self {
            BillLineKind::Trade => "trade",
            BillLineKind::Refund => "refund",
        }
    }
}

/// One trade or refund of a bill, borrowing its ids from the line it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BillLine<'a> {
    /// The line's number in the file, counting from 1.
    pub line: u32,
    /// The merchant's order id (Alipay's `商户订单号`, WeChat Pay's `商户订单号`:
    /// `out_trade_no`), trimmed: 1 to [`MAX_ID_LEN`] printable ASCII
    /// characters, the same bytes in GBK and UTF-8 files.
    pub order_id: &'a [u8],
    /// Trade or refund.
    pub kind: BillLineKind,
    /// The amount, in minor units, never negative: the captured amount of a trade, the
    /// refunded amount of a refund.
    pub amount: Money,
    /// The provider's trade number (Alipay's `支付宝交易号`, WeChat Pay's `微信订单号`), when
    /// the bill has that column and the line a value in it.
    pub trade_no: Option<&'a [u8]>,
    /// A refund line's refund request number (Alipay's `退款批次号/请求号`: the
    /// `out_request_no`; WeChat Pay's `商户退款单号`: the `out_refund_no`), when the bill has
    /// that column and the line a value in it. Always `None` on a trade line.
    pub refund_no: Option<&'a [u8]>,
}

/// The longest value an error keeps a copy of; a longer one is cut there.
pub const EXCERPT_LEN: usize = 32;

/// The start of the value an error is about: up to [`EXCERPT_LEN`] bytes, copied from the line
/// (a bill's text may be GBK: the bytes are kept as they were).
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Excerpt {
    bytes: [u8; EXCERPT_LEN],
    len: u8,
    cut: bool,
}

impl Excerpt {
    /// Copies the start of `value`.
    pub fn new(value: &[u8]) -> Excerpt {
        let mut bytes = [0u8; EXCERPT_LEN];
        let mut len = 0u8;
        for (slot, &b) in bytes.iter_mut().zip(value) {
            *slot = b;
            len = len.saturating_add(1);
        }
        Excerpt {
            bytes,
            len,
            cut: value.len() > EXCERPT_LEN,
        }
    }

    /// The bytes kept.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Whether the value was longer than what is kept.
    pub const fn is_cut(&self) -> bool {
        self.cut
    }
}

/// Quoted, UTF-8 shown as text (escaped like `{:?}` escapes a `str`), other bytes as `\xNN`,
/// a cut value ending in `…`.
impl fmt::Display for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for chunk in self.as_bytes().utf8_chunks() {
            for c in chunk.valid().chars() {
                write!(f, "{}", c.escape_debug())?;
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02X}")?;
            }
        }
        f.write_str(if self.cut { "…\"" } else { "\"" })
    }
}

impl fmt::Debug for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A bill that cannot be read, and the line where that became clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BillError {
    /// The line's number, counting from 1. For an error of `finish` (a truncated bill), the
    /// number of the last line read: 0 when there was none.
    pub line: u32,
    /// What is wrong.
    pub kind: BillErrorKind,
}

impl BillError {
    pub(crate) const fn new(line: u32, kind: BillErrorKind) -> BillError {
        BillError { line, kind }
    }

    /// The kind's stable code ([`BillErrorKind::code`]).
    pub const fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// Whether the bill ended too early ([`BillErrorKind::Truncated`] or
    /// [`BillErrorKind::Empty`]: an error of `finish`) rather than having a bad line.
    pub const fn is_at_end(&self) -> bool {
        matches!(
            self.kind,
            BillErrorKind::Truncated { .. } | BillErrorKind::Empty
        )
    }
}

/// What is wrong with a bill. Column names are shown in UTF-8 whatever the file's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BillErrorKind {
    /// A line the reader did not expect where it is: not the header where the header must be,
    /// a trade line after the list ended, text after WeChat Pay's summary.
    UnexpectedLine {
        /// What was expected there.
        expected: &'static str,
    },
    /// The header lacks a column the reader needs, or a refund line needs a refund amount
    /// column the header does not have.
    MissingColumn {
        /// The column's name.
        column: &'static str,
    },
    /// The header names a column the reader uses twice: which one holds the value is
    /// ambiguous.
    DuplicateColumn {
        /// The column's name.
        column: &'static str,
    },
    /// A line with another number of fields than the header has.
    ColumnCount {
        /// The header's field count.
        expected: u32,
        /// The line's (saturating at `u32::MAX`).
        found: u32,
    },
    /// A `"` opens a field and nothing closes it on the line, or text follows the closing
    /// one before the next comma.
    BadQuote,
    /// A column the line needs a value in is empty.
    EmptyValue {
        /// The column's name.
        column: &'static str,
    },
    /// An id that is not 1 to [`MAX_ID_LEN`] printable ASCII characters
    /// (an order id), or not printable ASCII (a trade or refund number).
    InvalidId {
        /// The column's name.
        column: &'static str,
        /// The value.
        value: Excerpt,
    },
    /// A value that is not an amount in the line's currency ([`Money::parse`], after an
    /// optional leading `-`).
    InvalidAmount {
        /// The column's name.
        column: &'static str,
        /// The value.
        value: Excerpt,
        /// Why it is not one.
        error: AmountError,
    },
    /// An amount with the wrong sign for its line: a negative trade anywhere, a positive
    /// Alipay refund (Alipay writes refunds negative), a negative WeChat Pay refund (WeChat
    /// Pay writes them positive). Zero has no wrong sign.
    WrongSign {
        /// The column's name.
        column: &'static str,
        /// The value.
        value: Excerpt,
        /// The line's kind.
        kind: BillLineKind,
    },
    /// A currency code that is not an ISO 4217 currency with a minor unit.
    UnknownCurrency {
        /// The column's name.
        column: &'static str,
        /// The value.
        value: Excerpt,
    },
    /// A business type (Alipay) or trade or refund state (WeChat Pay) the reader does not
    /// know what to do with.
    UnknownValue {
        /// The column's name.
        column: &'static str,
        /// The value.
        value: Excerpt,
    },
    /// A count that is not a decimal number (WeChat Pay's `总交易单数`).
    InvalidNumber {
        /// The column's name.
        column: &'static str,
        /// The value.
        value: Excerpt,
    },
    /// WeChat Pay's summary counts another number of trade lines than the bill has.
    CountMismatch {
        /// The summary's `总交易单数`.
        summary: u64,
        /// The trade lines read.
        counted: u64,
    },
    /// An error of `finish`: the bill ended before it was complete.
    Truncated {
        /// What was still to come.
        expected: &'static str,
    },
    /// An error of `finish`: no line at all (Alipay's file always starts with its `#` lines).
    Empty,
    /// [`BillTotals`] only: an order's lines are in different currencies.
    CurrencyMismatch,
    /// [`BillTotals`] only: an order's total does not fit in a `u64` of minor units.
    Overflow,
}

impl BillErrorKind {
    /// A short stable code for logs (`"invalid_amount"`).
    pub const fn code(&self) -> &'static str {
        match self {
            BillErrorKind::UnexpectedLine { .. } => "unexpected_line",
            BillErrorKind::MissingColumn { .. } => "missing_column",
            BillErrorKind::DuplicateColumn { .. } => "duplicate_column",
            BillErrorKind::ColumnCount { .. } => "column_count",
            BillErrorKind::BadQuote => "bad_quote",
            BillErrorKind::EmptyValue { .. } => "empty_value",
            BillErrorKind::InvalidId { .. } => "invalid_id",
            BillErrorKind::InvalidAmount { .. } => "invalid_amount",
            BillErrorKind::WrongSign { .. } => "wrong_sign",
            BillErrorKind::UnknownCurrency { .. } => "unknown_currency",
            BillErrorKind::UnknownValue { .. } => "unknown_value",
            BillErrorKind::InvalidNumber { .. } => "invalid_number",
            BillErrorKind::CountMismatch { .. } => "count_mismatch",
            BillErrorKind::Truncated { .. } => "truncated",
            BillErrorKind::Empty => "empty_bill",
            BillErrorKind::CurrencyMismatch => "currency_mismatch",
            BillErrorKind::Overflow => "overflow",
        }
    }
}

impl fmt::Display for BillErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BillErrorKind::UnexpectedLine { expected } => {
                write!(f, "unexpected line, expected {expected}")
            }
            BillErrorKind::MissingColumn { column } => {
                write!(f, "the header has no column {column}")
            }
            BillErrorKind::DuplicateColumn { column } => {
                write!(f, "the header has column {column} more than once")
            }
            BillErrorKind::ColumnCount { expected, found } => {
                write!(f, "{found} fields where the header has {expected}")
            }
            BillErrorKind::BadQuote => f.write_str("a quoted field is not closed properly"),
            BillErrorKind::EmptyValue { column } => write!(f, "no value in column {column}"),
            BillErrorKind::InvalidId { column, value } => write!(
                f,
                "{value} in column {column} is not an id (1 to {MAX_ID_LEN} printable ASCII characters)"
            ),
            BillErrorKind::InvalidAmount {
                column,
                value,
                error,
            } => write!(
                f,
                "amount {value} in column {column} is not an amount ({error})"
            ),
            BillErrorKind::WrongSign {
                column,
                value,
                kind,
            } => write!(
                f,
                "amount {value} in column {column} has the wrong sign for a {} line",
                kind.name()
            ),
            BillErrorKind::UnknownCurrency { column, value } => write!(
                f,
                "currency {value} in column {column} is not an ISO 4217 currency"
            ),
            BillErrorKind::UnknownValue { column, value } => {
                write!(f, "unknown value {value} in column {column}")
            }
            BillErrorKind::InvalidNumber { column, value } => {
                write!(f, "{value} in column {column} is not a number")
            }
            BillErrorKind::CountMismatch { summary, counted } => write!(
                f,
                "the summary counts {summary} trade lines, the bill has {counted}"
            ),
            BillErrorKind::Truncated { expected } => {
                write!(f, "the bill ended before {expected}")
            }
            BillErrorKind::Empty => f.write_str("the bill is empty"),
            BillErrorKind::CurrencyMismatch => {
                f.write_str("the order's lines are in different currencies")
            }
            BillErrorKind::Overflow => f.write_str("the order's total overflows"),
        }
    }
}

/// `line 7: amount "9x.00" in column 订单金额（元） is not an amount (...)`; an error of
/// `finish` reads `end of bill after line 12: ...`.
impl fmt::Display for BillError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_at_end() {
            write!(f, "end of bill after line {}: {}", self.line, self.kind)
        } else {
            write!(f, "line {}: {}", self.line, self.kind)
        }
    }
}

impl core::error::Error for BillError {}

/// What both readers do, for hosts (and [`BillTotals::read`]) that take either.
pub trait BillReader {
    /// Reads the next line of the file (without its `\n`; a trailing `\r` is ignored).
    fn line<'l>(&mut self, line: &'l [u8]) -> Result<Option<BillLine<'l>>, BillError>;
    /// Checks, after the last line, that the bill was complete.
    fn finish(&self) -> Result<(), BillError>;
    /// How many lines were read: after an error, up to and including its line.
    fn lines_read(&self) -> u32;
}

// ---------------------------------------------------------------------------------------------
// Shared by both readers: line preparation, field splitting, header scanning, values.

/// A column a reader looks for: its name in UTF-8 and, for Alipay, in GBK.
#[derive(Clone, Copy)]
struct Column {
    name: &'static str,
    gbk: &'static [u8],
}

impl Column {
    const fn utf8(name: &'static str) -> Column {
        Column { name, gbk: &[] }
    }

    /// The name's bytes in `gbk` or UTF-8.
    const fn bytes(&self, gbk: bool) -> &'static [u8] {
        if gbk { self.gbk } else { self.name.as_bytes() }
    }
}

/// Counts a line and removes a trailing `\r`, and on the first line a UTF-8 BOM.
fn prepare(line: &[u8], number: u32) -> &[u8] {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if number == 1 {
        line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
    } else {
        line
    }
}

/// Removes spaces and tabs at both ends (Alipay pads every value with a tab).
fn trim(value: &[u8]) -> &[u8] {
    let pad = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !pad(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !pad(b))
        .map_or(start, |i| i.saturating_add(1));
    value.get(start..end).unwrap_or(&[])
}

/// Whether a line is empty once trimmed.
fn is_blank(line: &[u8]) -> bool {
    trim(line).is_empty()
}

/// The comma-separated fields of a CSV line, trimmed; a field may be double-quoted (`""` inside
/// is a quote, and is left doubled in the value). Works on GBK too: its trail bytes are never
/// `,`, `"`, a space or a tab.
struct CsvFields<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> CsvFields<'a> {
    fn new(line: &'a [u8]) -> Self {
        CsvFields { rest: Some(line) }
    }
}

impl<'a> Iterator for CsvFields<'a> {
    type Item = Result<&'a [u8], BillErrorKind>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest.take()?;
        let lead = trim_start(rest);
        if let Some(quoted) = lead.strip_prefix(b"\"") {
            // The closing quote: a `"` not followed by another one.
            let mut at = 0usize;
            let close = loop {
                let Some(offset) = quoted
                    .get(at..)
                    .unwrap_or(&[])
                    .iter()
                    .position(|&b| b == b'"')
                else {
                    self.rest = None;
                    return Some(Err(BillErrorKind::BadQuote));
                };
                let quote = at.saturating_add(offset);
                if quoted.get(quote.saturating_add(1)) == Some(&b'"') {
                    at = quote.saturating_add(2);
                } else {
                    break quote;
                }
            };
            let (value, after) = quoted.split_at_checked(close).unwrap_or((quoted, &[]));
            let after = trim_start(after.get(1..).unwrap_or(&[]));
            match after.split_first() {
                None => Some(Ok(value)),
                Some((b',', tail)) => {
                    self.rest = Some(tail);
                    Some(Ok(value))
                }
                Some(_) => Some(Err(BillErrorKind::BadQuote)),
            }
        } else {
            match rest.iter().position(|&b| b == b',') {
                Some(comma) => {
                    let (value, tail) = rest.split_at_checked(comma).unwrap_or((rest, &[]));
                    self.rest = Some(tail.get(1..).unwrap_or(&[]));
                    Some(Ok(trim(value)))
                }
                None => Some(Ok(trim(rest))),
            }
        }
    }
}

fn trim_start(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(value.len());
    value.get(start..).unwrap_or(&[])
}

/// Per wanted column of a header: its index and the name that matched.
type Found<const N: usize> = [Option<(usize, Column)>; N];

/// Per wanted column of a data line: its value.
type Values<'a, const N: usize> = [Option<&'a [u8]>; N];

/// Scans a header: for each wanted column (one or more accepted names), where it is and which
/// name matched; and the number of fields. A wanted column found twice is an error.
fn scan_header<'a, const N: usize>(
    fields: impl Iterator<Item = Result<&'a [u8], BillErrorKind>>,
    wanted: &[&[Column]; N],
    gbk: bool,
) -> Result<(Found<N>, usize), BillErrorKind> {
    let mut found: Found<N> = [None; N];
    let mut count = 0usize;
    for (index, field) in fields.enumerate() {
        let field = field?;
        count = index.saturating_add(1);
        for (slot, names) in found.iter_mut().zip(wanted) {
            if let Some(column) = names.iter().find(|c| c.bytes(gbk) == field) {
                if slot.is_some() {
                    let first = names.first().map_or(column.name, |c| c.name);
                    return Err(BillErrorKind::DuplicateColumn { column: first });
                }
                *slot = Some((index, *column));
            }
        }
    }
    Ok((found, count))
}

/// The values of the columns at `at` on a data line, and its field count.
fn pick<'a, const N: usize>(
    fields: impl Iterator<Item = Result<&'a [u8], BillErrorKind>>,
    at: &[Option<usize>; N],
) -> Result<(Values<'a, N>, usize), BillErrorKind> {
    let mut values: Values<'a, N> = [None; N];
    let mut count = 0usize;
    for (index, field) in fields.enumerate() {
        let field = field?;
        count = index.saturating_add(1);
        for (value, column) in values.iter_mut().zip(at) {
            if *column == Some(index) {
                *value = Some(field);
            }
        }
    }
    Ok((values, count))
}

/// `ColumnCount` unless `found == expected`.
fn check_count(expected: usize, found: usize) -> Result<(), BillErrorKind> {
    if found == expected {
        Ok(())
    } else {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Err(BillErrorKind::ColumnCount {
            expected: clamp(expected),
            found: clamp(found),
        })
    }
}

/// A required value: present and not empty.
fn required<'a>(value: Option<&'a [u8]>, column: &'static str) -> Result<&'a [u8], BillErrorKind> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(BillErrorKind::EmptyValue { column }),
    }
}

/// An order id: 1 to `MAX_ID_LEN` printable ASCII bytes.
fn order_id<'a>(value: Option<&'a [u8]>, column: &'static str) -> Result<&'a [u8], BillErrorKind> {
    let value = required(value, column)?;
    if value.len() <= MAX_ID_LEN && value.iter().all(u8::is_ascii_graphic) {
        Ok(value)
    } else {
        Err(BillErrorKind::InvalidId {
            column,
            value: Excerpt::new(value),
        })
    }
}

/// An optional number: `None` when empty, else printable ASCII.
fn optional_id<'a>(
    value: Option<&'a [u8]>,
    column: &'static str,
) -> Result<Option<&'a [u8]>, BillErrorKind> {
    match value {
        None => Ok(None),
        Some([]) => Ok(None),
        Some(v) if v.iter().all(u8::is_ascii_graphic) => Ok(Some(v)),
        Some(v) => Err(BillErrorKind::InvalidId {
            column,
            value: Excerpt::new(v),
        }),
    }
}

/// An amount with an optional leading `-`: whether it was negative, and its magnitude.
fn signed_amount(
    value: &[u8],
    currency: Currency,
    column: &'static str,
) -> Result<(bool, Money), BillErrorKind> {
    let (negative, digits) = match value.strip_prefix(b"-") {
        Some(digits) => (true, digits),
        None => (false, value),
    };
    let invalid = |error| BillErrorKind::InvalidAmount {
        column,
        value: Excerpt::new(value),
        error,
    };
    let shift = usize::from(negative);
    // Money::parse takes text; a non-ASCII byte is an invalid character there too.
    let text = match core::str::from_utf8(digits) {
        Ok(text) if digits.is_ascii() => text,
        _ => {
            let at = digits
                .iter()
                .position(|b| !b.is_ascii())
                .unwrap_or(0)
                .saturating_add(shift);
            return Err(invalid(AmountError::InvalidCharacter { at }));
        }
    };
    match Money::parse(text, currency) {
        Ok(money) => Ok((negative, money)),
        Err(AmountError::InvalidCharacter { at }) => Err(invalid(AmountError::InvalidCharacter {
            at: at.saturating_add(shift),
        })),
        Err(error) => Err(invalid(error)),
    }
}

/// An amount that must be `negative` (or zero).
fn amount_with_sign(
    value: &[u8],
    currency: Currency,
    column: &'static str,
    negative: bool,
    kind: BillLineKind,
) -> Result<Money, BillErrorKind> {
    let (is_negative, money) = signed_amount(value, currency, column)?;
    if is_negative != negative && !money.is_zero() {
        return Err(BillErrorKind::WrongSign {
            column,
            value: Excerpt::new(value),
            kind,
        });
    }
    Ok(money)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    fn split(line: &[u8]) -> Vec<Result<&[u8], BillErrorKind>> {
        CsvFields::new(line).collect()
    }

    #[test]
    fn csv_fields_trim_and_unquote() {
        assert_eq!(split(b""), [Ok(&b""[..])]);
        assert_eq!(
            split(b"a\t, b ,,"),
            [Ok(&b"a"[..]), Ok(&b"b"[..]), Ok(&b""[..]), Ok(&b""[..])]
        );
        assert_eq!(
            split(b"\"x,y\"\t,\"q\"\"q\""),
            [Ok(&b"x,y"[..]), Ok(&b"q\"\"q"[..])]
        );
        assert_eq!(split(b"\"open"), [Err(BillErrorKind::BadQuote)]);
        assert_eq!(split(b"\"a\"b,c"), [Err(BillErrorKind::BadQuote)]);
    }

    #[test]
    fn amounts_keep_the_offset_of_the_bad_byte() {
        let col = "c";
        let e = |v: &[u8]| signed_amount(v, Currency::CNY, col).unwrap_err();
        assert!(matches!(
            e(b"-9x.00"),
            BillErrorKind::InvalidAmount {
                error: AmountError::InvalidCharacter { at: 2 },
                ..
            }
        ));
        assert!(matches!(
            e(b"9\xC9.00"),
            BillErrorKind::InvalidAmount {
                error: AmountError::InvalidCharacter { at: 1 },
                ..
            }
        ));
        assert_eq!(
            signed_amount(b"-0.01", Currency::CNY, col),
            Ok((true, Money::from_minor(1, Currency::CNY)))
        );
    }

    #[test]
    fn excerpts_show_text_and_escape_other_bytes() {
        assert_eq!(Excerpt::new(b"9x.00").to_string(), "\"9x.00\"");
        assert_eq!(Excerpt::new("分账".as_bytes()).to_string(), "\"分账\"");
        assert_eq!(
            Excerpt::new(b"\xB7\xD6\"").to_string(),
            "\"\\xB7\\xD6\\\"\""
        );
        let long = Excerpt::new(&[b'a'; 40]);
        assert!(long.is_cut());
        assert_eq!(long.as_bytes().len(), EXCERPT_LEN);
        assert!(long.to_string().ends_with("a…\""));
    }

    #[test]
    fn trim_removes_spaces_and_tabs_only() {
        assert_eq!(trim(b" \t a b\t \t"), b"a b");
        assert_eq!(trim(b" \t "), b"");
        assert_eq!(trim(b"\r"), b"\r");
    }
}
