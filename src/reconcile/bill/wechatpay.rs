//! WeChat Pay's trade bill (`tradebill`, 交易账单), one line at a time.

use super::{
    BillError, BillErrorKind, BillLine, BillLineKind, BillReader, Column, CsvFields, Excerpt,
    amount_with_sign, check_count, is_blank, optional_id, order_id, pick, prepare, required,
    scan_header, trim, trim_start,
};
use crate::money::Currency;

const ORDER_ID: Column = Column::utf8("商户订单号");
const TRADE_STATE: Column = Column::utf8("交易状态");
const CURRENCY: Column = Column::utf8("货币种类");
const TRADE_NO: Column = Column::utf8("微信订单号");
const REFUND_NO: Column = Column::utf8("商户退款单号");
/// The order's total, vouchers included: what a payment notification's `amount.total` says.
const TOTAL: Column = Column::utf8("订单金额");
/// The settlement amount (应结: the total less non-recharge vouchers); older bills have only it.
const SETTLEMENT: Column = Column::utf8("应结订单金额");
/// The refund as requested: what a refund notification's `amount.refund` says.
const REFUND_REQUESTED: Column = Column::utf8("申请退款金额");
/// The settlement refund amount; older bills have only it.
const REFUND_SETTLEMENT: Column = Column::utf8("退款金额");
const REFUND_STATE: Column = Column::utf8("退款状态");
/// The first column of the summary block's header.
const SUMMARY_COUNT: Column = Column::utf8("总交易单数");

const WANTED: [&[Column]; 10] = [
    &[ORDER_ID],
    &[TRADE_STATE],
    &[CURRENCY],
    &[TRADE_NO],
    &[REFUND_NO],
    &[TOTAL],
    &[SETTLEMENT],
    &[REFUND_REQUESTED],
    &[REFUND_SETTLEMENT],
    &[REFUND_STATE],
];

/// Trade states of lines that moved no money: read, counted, and skipped.
const NO_MONEY_TRADE_STATES: [&[u8]; 5] =
    [b"NOTPAY", b"CLOSED", b"REVOKED", b"USERPAYING", b"PAYERROR"];
/// Refund states of `REFUND` lines whose refund has not (or not yet) returned money.
const NO_MONEY_REFUND_STATES: [&[u8]; 6] = [
    b"PROCESSING",
    b"FAIL",
    b"NOTSURE",
    b"CHANGE",
    b"REFUNDCLOSE",
    b"ABNORMAL",
];

/// Where the header put the columns, in the order of [`Layout::at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    fields: usize,
    /// Order id, trade state, currency, trade number, refund number, trade amount, refund
    /// amount, refund state.
    at: [Option<usize>; 8],
    trade_amount: &'static str,
    refund_amount: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the header.
    Start,
    /// In the trade list.
    List(Layout),
    /// After the summary's header: its values line is next.
    Summary {
        /// The summary header's field count.
        fields: usize,
        /// Where `总交易单数` is.
        count_at: usize,
    },
    /// After the summary's values.
    Done,
}

/// A streaming reader of WeChat Pay's trade bill (`tradebill`: the v3 `/v3/bill/tradebill`
/// download, and the v2 `downloadbill` text, `bill_type` `ALL`, `SUCCESS` or `REFUND`).
///
/// The file (UTF-8; a BOM on the first line is skipped), line by line:
///
/// 1. the header: comma-separated names (a leading backquote on a name is ignored) saying where
///    the columns are, in any order: required `商户订单号` (the order id), `交易状态` (the
///    trade state), `货币种类` (the currency), and a trade amount; optional `微信订单号`,
///    `商户退款单号`, a refund amount and `退款状态`. The amounts pair up, never one of each:
///    a bill with `订单金额` (the total, as the payment notification's `amount.total`) takes
///    its refunds from `申请退款金额` (the refund as requested, as the refund notification's
///    `amount.refund`); an older bill without it reads the settlement amounts
///    `应结订单金额` and `退款金额`. The refund amount column is needed only by a refund
///    line ([`BillErrorKind::MissingColumn`] there: a `SUCCESS` bill has none);
/// 2. the trade lines, every value prefixed with a backquote (`` `SUCCESS ``), values
///    separated by `` ,` `` (so a comma inside a product name does not split it), as many as
///    the header has, trimmed of spaces and tabs. By `交易状态`:
///    - `SUCCESS`: a trade of the trade amount;
///    - `REFUND`: a refund of the refund amount, when `退款状态` is `SUCCESS`, empty or not a
///      column; a refund still `PROCESSING`, or `FAIL`, `NOTSURE`, `CHANGE`, `REFUNDCLOSE`,
///      `ABNORMAL`, returned no money to the customer and is skipped (counted in
///      [`skipped`](WechatPayBill::skipped)), like the engine, which records a refund only
///      once it succeeded;
///    - `NOTPAY`, `CLOSED`, `REVOKED`, `USERPAYING`, `PAYERROR`: no money captured, skipped
///      and counted the same way;
///    - anything else: [`BillErrorKind::UnknownValue`].
///
///    Amounts are decimal text in the currency's major unit, never negative
///    ([`BillErrorKind::WrongSign`]); the currency is the line's `货币种类`;
/// 3. the summary: a header line starting with `总交易单数` and one line of backquoted
///    values. `总交易单数` must equal the number of trade lines read (skipped ones included),
///    else [`BillErrorKind::CountMismatch`] on the values line.
///
/// Blank lines are skipped anywhere; nothing else may follow the summary.
///
/// [`finish`](WechatPayBill::finish): a bill that reached the summary's values is complete,
/// and so is one without any line (WeChat Pay answers a day without trades with no file, so
/// the host has nothing to feed). One that ended in the trade list or between the summary's
/// two lines is [`BillErrorKind::Truncated`]. (An error answer fed as a bill, such as the v2
/// XML `No Bill Exist`, is no header: [`BillErrorKind::MissingColumn`] on line 1.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WechatPayBill {
    number: u32,
    state: State,
    trade_lines: u64,
    skipped: u64,
    failed: Option<BillError>,
}

impl Default for WechatPayBill {
    fn default() -> Self {
        WechatPayBill::new()
    }
}

impl WechatPayBill {
    /// A reader before the first line.
    pub const fn new() -> WechatPayBill {
        WechatPayBill {
            number: 0,
            state: State::Start,
            trade_lines: 0,
            skipped: 0,
            failed: None,
        }
    }

    /// Reads the next line (without its `\n`; a trailing `\r` is ignored): the trade or
    /// refund it holds, or `None` for the header, the summary, a skipped trade line or a blank
    /// line. After an error every call returns that error again.
    pub fn line<'l>(&mut self, line: &'l [u8]) -> Result<Option<BillLine<'l>>, BillError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        self.number = self.number.saturating_add(1);
        let number = self.number;
        self.read(prepare(line, number), number).map_err(|kind| {
            let error = BillError::new(number, kind);
            self.failed = Some(error);
            error
        })
    }

    /// After the last line: `Ok` for a complete bill (see the type's docs), the first error
    /// again if there was one.
    pub fn finish(&self) -> Result<(), BillError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let at_end = |expected| {
            Err(BillError::new(
                self.number,
                BillErrorKind::Truncated { expected },
            ))
        };
        match self.state {
            State::Start | State::Done => Ok(()),
            State::List(_) => at_end("the summary (总交易单数)"),
            State::Summary { .. } => at_end("the summary's values"),
        }
    }

    /// How many lines were read: after an error, up to and including its line.
    pub const fn lines_read(&self) -> u32 {
        self.number
    }

    /// How many trade lines were read: those yielded and those skipped.
    pub const fn trade_lines(&self) -> u64 {
        self.trade_lines
    }

    /// How many trade lines were skipped because they moved no money (see the type's docs).
    pub const fn skipped(&self) -> u64 {
        self.skipped
    }

    fn read<'l>(
        &mut self,
        line: &'l [u8],
        number: u32,
    ) -> Result<Option<BillLine<'l>>, BillErrorKind> {
        if is_blank(line) {
            return Ok(None);
        }
        let line = trim_start(line);
        match self.state {
            State::Start => {
                self.state = State::List(header(line)?);
                Ok(None)
            }
            State::List(layout) => {
                if let Some(values) = line.strip_prefix(b"`") {
                    self.trade_lines = self.trade_lines.saturating_add(1);
                    let found = trade(&layout, values, number)?;
                    if found.is_none() {
                        self.skipped = self.skipped.saturating_add(1);
                    }
                    Ok(found)
                } else if line.starts_with(SUMMARY_COUNT.name.as_bytes()) {
                    let (found, fields) =
                        scan_header(CsvFields::new(line), &[&[SUMMARY_COUNT]], false)?;
                    let [count_at] = found;
                    let count_at = count_at.map(|c| c.0).ok_or(BillErrorKind::MissingColumn {
                        column: SUMMARY_COUNT.name,
                    })?;
                    self.state = State::Summary { fields, count_at };
                    Ok(None)
                } else {
                    Err(BillErrorKind::UnexpectedLine {
                        expected: "a trade line (values after backquotes) or the summary (总交易单数)",
                    })
                }
            }
            State::Summary { fields, count_at } => {
                let Some(values) = line.strip_prefix(b"`") else {
                    return Err(BillErrorKind::UnexpectedLine {
                        expected: "the summary's values (after backquotes)",
                    });
                };
                let (found, count) = pick(TickFields::new(values), &[Some(count_at)])?;
                check_count(fields, count)?;
                let [value] = found;
                let value = required(value, SUMMARY_COUNT.name)?;
                let summary = decimal(value).ok_or(BillErrorKind::InvalidNumber {
                    column: SUMMARY_COUNT.name,
                    value: Excerpt::new(value),
                })?;
                if summary != self.trade_lines {
                    return Err(BillErrorKind::CountMismatch {
                        summary,
                        counted: self.trade_lines,
                    });
                }
                self.state = State::Done;
                Ok(None)
            }
            State::Done => Err(BillErrorKind::UnexpectedLine {
                expected: "nothing after the summary",
            }),
        }
    }
}

impl BillReader for WechatPayBill {
    fn line<'l>(&mut self, line: &'l [u8]) -> Result<Option<BillLine<'l>>, BillError> {
        WechatPayBill::line(self, line)
    }

    fn finish(&self) -> Result<(), BillError> {
        WechatPayBill::finish(self)
    }

    fn lines_read(&self) -> u32 {
        WechatPayBill::lines_read(self)
    }
}

/// The values of a trade or summary line after its first backquote: split at every `` ,` ``,
/// trimmed.
struct TickFields<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> TickFields<'a> {
    fn new(values: &'a [u8]) -> Self {
        TickFields { rest: Some(values) }
    }
}

impl<'a> Iterator for TickFields<'a> {
    type Item = Result<&'a [u8], BillErrorKind>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest.take()?;
        match rest.windows(2).position(|w| w == b",`") {
            Some(at) => {
                let (value, tail) = rest.split_at_checked(at).unwrap_or((rest, &[]));
                self.rest = Some(tail.get(2..).unwrap_or(&[]));
                Some(Ok(trim(value)))
            }
            None => Some(Ok(trim(rest))),
        }
    }
}

/// A `u64` of decimal digits.
fn decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

fn header(line: &[u8]) -> Result<Layout, BillErrorKind> {
    let names = CsvFields::new(line).map(|f| f.map(|name| name.strip_prefix(b"`").unwrap_or(name)));
    let (found, fields) = scan_header(names, &WANTED, false)?;
    let [
        order,
        state,
        currency,
        trade_no,
        refund_no,
        total,
        settlement,
        refund_requested,
        refund_settlement,
        refund_state,
    ] = found.map(|c| c.map(|c| c.0));
    let missing = |column: Column| BillErrorKind::MissingColumn {
        column: column.name,
    };
    let order = order.ok_or(missing(ORDER_ID))?;
    let state = state.ok_or(missing(TRADE_STATE))?;
    let currency = currency.ok_or(missing(CURRENCY))?;
    // Totals when the bill has them, else settlement amounts: never one of each.
    let (trade_amount, refund_amount) = match (total, settlement) {
        (Some(total), _) => ((total, TOTAL), (refund_requested, REFUND_REQUESTED)),
        (None, Some(settlement)) => (
            (settlement, SETTLEMENT),
            (refund_settlement, REFUND_SETTLEMENT),
        ),
        (None, None) => return Err(missing(TOTAL)),
    };
    Ok(Layout {
        fields,
        at: [
            Some(order),
            Some(state),
            Some(currency),
            trade_no,
            refund_no,
            Some(trade_amount.0),
            refund_amount.0,
            refund_state,
        ],
        trade_amount: trade_amount.1.name,
        refund_amount: refund_amount.1.name,
    })
}

/// A trade line's values (after the first backquote): the line, or `None` for one that moved
/// no money.
fn trade<'l>(
    layout: &Layout,
    values: &'l [u8],
    number: u32,
) -> Result<Option<BillLine<'l>>, BillErrorKind> {
    let (values, fields) = pick(TickFields::new(values), &layout.at)?;
    check_count(layout.fields, fields)?;
    let [
        order,
        state,
        currency,
        trade_no,
        refund_no,
        trade_amount,
        refund_amount,
        refund_state,
    ] = values;
    let state = required(state, TRADE_STATE.name)?;
    let unknown = |column: Column, value: &[u8]| BillErrorKind::UnknownValue {
        column: column.name,
        value: Excerpt::new(value),
    };
    let (kind, amount, amount_column) = match state {
        b"SUCCESS" => (BillLineKind::Trade, trade_amount, layout.trade_amount),
        b"REFUND" => {
            match refund_state {
                None | Some(b"" | b"SUCCESS") => {}
                Some(s) if NO_MONEY_REFUND_STATES.contains(&s) => return Ok(None),
                Some(s) => return Err(unknown(REFUND_STATE, s)),
            }
            if layout.at.get(6).copied().flatten().is_none() {
                return Err(BillErrorKind::MissingColumn {
                    column: layout.refund_amount,
                });
            }
            (BillLineKind::Refund, refund_amount, layout.refund_amount)
        }
        s if NO_MONEY_TRADE_STATES.contains(&s) => return Ok(None),
        s => return Err(unknown(TRADE_STATE, s)),
    };
    let order_id = order_id(order, ORDER_ID.name)?;
    let code = required(currency, CURRENCY.name)?;
    let currency = core::str::from_utf8(code)
        .ok()
        .and_then(|code| Currency::from_code(code).ok())
        .ok_or(BillErrorKind::UnknownCurrency {
            column: CURRENCY.name,
            value: Excerpt::new(code),
        })?;
    let amount = amount_with_sign(
        required(amount, amount_column)?,
        currency,
        amount_column,
        false,
        kind,
    )?;
    let trade_no = optional_id(trade_no, TRADE_NO.name)?;
    let refund_no = match kind {
        BillLineKind::Refund => optional_id(refund_no, REFUND_NO.name)?,
        BillLineKind::Trade => None,
    };
    Ok(Some(BillLine {
        line: number,
        order_id,
        kind,
        amount,
        trade_no,
        refund_no,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn tick_fields_split_at_comma_backquote_only() {
        let got: Vec<_> = TickFields::new(b"a,b ,`c\t,`,`")
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, [&b"a,b"[..], b"c", b"", b""]);
    }

    #[test]
    fn decimal_counts() {
        assert_eq!(decimal(b"0"), Some(0));
        assert_eq!(decimal(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(decimal(b"18446744073709551616"), None);
        assert_eq!(decimal(b""), None);
        assert_eq!(decimal(b"1.0"), None);
    }
}
