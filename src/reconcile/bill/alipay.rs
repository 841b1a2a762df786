//! Alipay's trade detail CSV (`…_业务明细.csv`), GBK or UTF-8, one line at a time.

use super::{
    BillError, BillErrorKind, BillLine, BillLineKind, BillReader, Column, CsvFields, Excerpt,
    amount_with_sign, check_count, is_blank, optional_id, order_id, pick, prepare, required,
    scan_header, trim_start,
};
use crate::alipay::form::Charset;
use crate::money::Currency;

// The names the reader looks for, in UTF-8 and in GBK (checked against an encoder in the
// tests). A GBK file is matched byte for byte: no table, no transcoding.
const ORDER_ID: Column = Column {
    name: "商户订单号",
    gbk: &[0xC9, 0xCC, 0xBB, 0xA7, 0xB6, 0xA9, 0xB5, 0xA5, 0xBA, 0xC5],
};
const BUSINESS_TYPE: Column = Column {
    name: "业务类型",
    gbk: &[0xD2, 0xB5, 0xCE, 0xF1, 0xC0, 0xE0, 0xD0, 0xCD],
};
const AMOUNT: Column = Column {
    name: "订单金额（元）",
    gbk: &[
        0xB6, 0xA9, 0xB5, 0xA5, 0xBD, 0xF0, 0xB6, 0xEE, 0xA3, 0xA8, 0xD4, 0xAA, 0xA3, 0xA9,
    ],
};
const AMOUNT_HALF_WIDTH: Column = Column {
    name: "订单金额(元)",
    gbk: &[
        0xB6, 0xA9, 0xB5, 0xA5, 0xBD, 0xF0, 0xB6, 0xEE, 0x28, 0xD4, 0xAA, 0x29,
    ],
};
const TRADE_NO: Column = Column {
    name: "支付宝交易号",
    gbk: &[
        0xD6, 0xA7, 0xB8, 0xB6, 0xB1, 0xA6, 0xBD, 0xBB, 0xD2, 0xD7, 0xBA, 0xC5,
    ],
};
const REFUND_NO: Column = Column {
    name: "退款批次号/请求号",
    gbk: &[
        0xCD, 0xCB, 0xBF, 0xEE, 0xC5, 0xFA, 0xB4, 0xCE, 0xBA, 0xC5, 0x2F, 0xC7, 0xEB, 0xC7, 0xF3,
        0xBA, 0xC5,
    ],
};
/// The business type of a trade line.
const TRADE: Column = Column {
    name: "交易",
    gbk: &[0xBD, 0xBB, 0xD2, 0xD7],
};
/// The business type of a refund line.
const REFUND: Column = Column {
    name: "退款",
    gbk: &[0xCD, 0xCB, 0xBF, 0xEE],
};

/// The columns, in the order of [`Layout::at`]; the first three are required.
const WANTED: [&[Column]; 5] = [
    &[ORDER_ID],
    &[BUSINESS_TYPE],
    &[AMOUNT, AMOUNT_HALF_WIDTH],
    &[TRADE_NO],
    &[REFUND_NO],
];

/// Where the header put the columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    gbk: bool,
    /// The header's field count: every trade line has as many.
    fields: usize,
    at: [Option<usize>; 5],
    /// The amount column's name as the header writes it (full- or half-width parentheses).
    amount: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the header; whether a `#` line came.
    Start { comments: bool },
    /// After the header, in the trade list.
    List(Layout),
    /// After the `#` line that closes the list.
    End(Layout),
}

/// A streaming reader of Alipay's trade detail CSV: the `…_业务明细.csv` of the daily bill
/// archive (`bill_type=trade`), as downloaded (GBK) or converted to UTF-8.
///
/// The file, line by line:
///
/// 1. `#` comment lines (`#支付宝业务明细查询`, `#账号：[…]`, the dates, the
///    `#---业务明细列表---` rule) and blank lines, skipped;
/// 2. the header: the first other line. Its comma-separated names say where the columns are,
///    in any order: required `商户订单号` (the order id), `业务类型` (the business type) and
///    `订单金额（元）` (the amount in yuan; `订单金额(元)` with half-width parentheses too);
///    optional `支付宝交易号` and `退款批次号/请求号`. Every other column is ignored. The
///    names are matched as GBK bytes or as UTF-8 bytes, and that decides the file's encoding
///    ([`AlipayBill::charset`]); a UTF-8 BOM on the first line is skipped;
/// 3. the trade list: one line per trade or refund, with as many fields as the header, each
///    value trimmed of spaces and tabs (Alipay pads values with a tab) and optionally
///    double-quoted. Business type `交易` is a trade, its amount positive; `退款` a refund,
///    its amount negative in the file and positive in the [`BillLine`]. A trade with a
///    negative amount or a refund with a positive one is [`BillErrorKind::WrongSign`]; any
///    other business type is [`BillErrorKind::UnknownValue`] (a trade detail has only these
///    two: another type means another file, or money the reader cannot place on an order);
/// 4. the first `#` line after the header closes the list (`#---业务明细列表结束---`); the
///    footer's `#` lines (`#交易合计：…`, `#导出时间：…`) follow, and nothing else may.
///
/// Blank lines are skipped anywhere. The amounts are CNY. Order ids must be 1 to 64 printable
/// ASCII characters (a line without one, such as a payment to a personal collection code,
/// cannot be reconciled by order id: [`BillErrorKind::EmptyValue`]).
///
/// [`finish`](AlipayBill::finish): a bill whose list was closed is complete, and so is one of
/// nothing but `#` lines (a day without trades: the comment block and no header). A bill that
/// ended inside the list is [`BillErrorKind::Truncated`]; one without a single line
/// [`BillErrorKind::Empty`] (every export starts with its `#` lines: zero bytes is a failed
/// download, not a quiet day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlipayBill {
    number: u32,
    state: State,
    failed: Option<BillError>,
}

impl Default for AlipayBill {
    fn default() -> Self {
        AlipayBill::new()
    }
}

impl AlipayBill {
    /// A reader before the first line.
    pub const fn new() -> AlipayBill {
        AlipayBill {
            number: 0,
            state: State::Start { comments: false },
            failed: None,
        }
    }

    /// Reads the next line (without its `\n`; a trailing `\r` is ignored): the trade or
    /// refund it holds, or `None` for a comment, the header or a blank line. After an error
    /// every call returns that error again.
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
        let at_end = |kind| Err(BillError::new(self.number, kind));
        match self.state {
            State::Start { comments: true } | State::End(_) => Ok(()),
            State::Start { comments: false } => at_end(BillErrorKind::Empty),
            State::List(_) => at_end(BillErrorKind::Truncated {
                expected: "the `#` line that closes the trade list",
            }),
        }
    }

    /// How many lines were read: after an error, up to and including its line.
    pub const fn lines_read(&self) -> u32 {
        self.number
    }

    /// The file's encoding as its header showed it; `None` before the header.
    pub const fn charset(&self) -> Option<Charset> {
        match self.state {
            State::Start { .. } => None,
            State::List(layout) | State::End(layout) => Some(if layout.gbk {
                Charset::Gbk
            } else {
                Charset::Utf8
            }),
        }
    }

    fn read<'l>(
        &mut self,
        line: &'l [u8],
        number: u32,
    ) -> Result<Option<BillLine<'l>>, BillErrorKind> {
        if is_blank(line) {
            return Ok(None);
        }
        let comment = trim_start(line).first() == Some(&b'#');
        match self.state {
            State::Start { .. } if comment => {
                self.state = State::Start { comments: true };
                Ok(None)
            }
            State::Start { .. } => {
                self.state = State::List(header(line)?);
                Ok(None)
            }
            State::List(layout) if comment => {
                self.state = State::End(layout);
                Ok(None)
            }
            State::List(layout) => trade(&layout, line, number).map(Some),
            State::End(_) if comment => Ok(None),
            State::End(_) => Err(BillErrorKind::UnexpectedLine {
                expected: "only `#` lines after the trade list",
            }),
        }
    }
}

impl BillReader for AlipayBill {
    fn line<'l>(&mut self, line: &'l [u8]) -> Result<Option<BillLine<'l>>, BillError> {
        AlipayBill::line(self, line)
    }

    fn finish(&self) -> Result<(), BillError> {
        AlipayBill::finish(self)
    }

    fn lines_read(&self) -> u32 {
        AlipayBill::lines_read(self)
    }
}

/// The header, in UTF-8 or else in GBK. When neither has every required column, the missing
/// one is named in the encoding that matched more names.
fn header(line: &[u8]) -> Result<Layout, BillErrorKind> {
    let mut best: Option<(usize, &'static str)> = None;
    for gbk in [false, true] {
        let (found, fields) = scan_header(CsvFields::new(line), &WANTED, gbk)?;
        let [order, kind, amount, trade_no, refund_no] = found;
        if let (Some(order), Some(kind), Some(amount)) = (order, kind, amount) {
            return Ok(Layout {
                gbk,
                fields,
                at: [
                    Some(order.0),
                    Some(kind.0),
                    Some(amount.0),
                    trade_no.map(|c| c.0),
                    refund_no.map(|c| c.0),
                ],
                amount: amount.1.name,
            });
        }
        let missing = [
            (order, ORDER_ID.name),
            (kind, BUSINESS_TYPE.name),
            (amount, AMOUNT.name),
        ]
        .into_iter()
        .find_map(|(found, name)| found.is_none().then_some(name))
        .unwrap_or(ORDER_ID.name);
        let matched = found.iter().flatten().count();
        if best.is_none_or(|(most, _)| matched > most) {
            best = Some((matched, missing));
        }
    }
    Err(BillErrorKind::MissingColumn {
        column: best.map_or(ORDER_ID.name, |(_, missing)| missing),
    })
}

/// A line of the trade list.
fn trade<'l>(layout: &Layout, line: &'l [u8], number: u32) -> Result<BillLine<'l>, BillErrorKind> {
    let (values, fields) = pick(CsvFields::new(line), &layout.at)?;
    check_count(layout.fields, fields)?;
    let [order, kind, amount, trade_no, refund_no] = values;
    let order_id = order_id(order, ORDER_ID.name)?;
    let kind_value = required(kind, BUSINESS_TYPE.name)?;
    let kind = if kind_value == TRADE.bytes(layout.gbk) {
        BillLineKind::Trade
    } else if kind_value == REFUND.bytes(layout.gbk) {
        BillLineKind::Refund
    } else {
        return Err(BillErrorKind::UnknownValue {
            column: BUSINESS_TYPE.name,
            value: Excerpt::new(kind_value),
        });
    };
    let refund = kind == BillLineKind::Refund;
    let amount = amount_with_sign(
        required(amount, layout.amount)?,
        Currency::CNY,
        layout.amount,
        refund,
        kind,
    )?;
    let trade_no = optional_id(trade_no, TRADE_NO.name)?;
    let refund_no = if refund {
        optional_id(refund_no, REFUND_NO.name)?
    } else {
        None
    };
    Ok(BillLine {
        line: number,
        order_id,
        kind,
        amount,
        trade_no,
        refund_no,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gbk_constants_are_what_an_encoder_writes() {
        for column in [
            ORDER_ID,
            BUSINESS_TYPE,
            AMOUNT,
            AMOUNT_HALF_WIDTH,
            TRADE_NO,
            REFUND_NO,
            TRADE,
            REFUND,
        ] {
            assert_eq!(column.bytes(false), column.name.as_bytes());
            let (gbk, _, unmappable) = encoding_rs::GBK.encode(column.name);
            assert!(!unmappable, "{}", column.name);
            assert_eq!(column.bytes(true), &*gbk, "{}", column.name);
        }
    }
}
