//! The bill readers (docs/spec.md §6): never a panic on any lines, every error naming a line
//! that was read; and a random bill, written as Alipay (GBK and UTF-8, padded, columns in any
//! order) and as WeChat Pay would write it, reads back to the sums it was made from.

use std::collections::BTreeMap;

use paystate::reconcile::bill::{AlipayBill, BillLineKind, BillReader, WechatPayBill};
use paystate::{Currency, Money};
use proptest::prelude::*;

fn gbk(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
    assert!(!unmappable, "{text}");
    bytes.into_owned()
}

/// Pieces that lines of both formats are made of, in UTF-8 and GBK, and some that are not.
fn token() -> impl Strategy<Value = Vec<u8>> {
    let words = [
        "商户订单号",
        "业务类型",
        "订单金额（元）",
        "订单金额(元)",
        "支付宝交易号",
        "退款批次号/请求号",
        "交易",
        "退款",
        "分账",
        "交易状态",
        "货币种类",
        "订单金额",
        "应结订单金额",
        "申请退款金额",
        "退款金额",
        "退款状态",
        "总交易单数",
        "微信订单号",
        "商户退款单号",
    ];
    let mut pieces: Vec<Vec<u8>> = words
        .iter()
        .flat_map(|w| [w.as_bytes().to_vec(), gbk(w)])
        .collect();
    for ascii in [
        "#",
        ",",
        ",`",
        "`",
        "\t",
        " ",
        "\"",
        "\"\"",
        "\r",
        "\u{feff}",
        "o-1",
        "12.34",
        "-1.00",
        "0",
        "9x",
        "1.005",
        "CNY",
        "JPY",
        "XYZ",
        "SUCCESS",
        "REFUND",
        "REVOKED",
        "PROCESSING",
        "18446744073709551616",
    ] {
        pieces.push(ascii.as_bytes().to_vec());
    }
    prop_oneof![
        4 => prop::sample::select(pieces),
        1 => prop::collection::vec(any::<u8>(), 0..6),
    ]
}

fn line() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(token(), 0..10).prop_map(|t| t.concat())
}

/// Lines, often after a header either reader accepts, so that trade lines get read too.
fn lines() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let headers = vec![
        Vec::new(),
        "商户订单号,业务类型,订单金额（元）".as_bytes().to_vec(),
        gbk("商户订单号,业务类型,订单金额(元),退款批次号/请求号"),
        "商户订单号,交易状态,货币种类,订单金额,申请退款金额,退款状态"
            .as_bytes()
            .to_vec(),
    ];
    (
        prop::sample::select(headers),
        prop::collection::vec(line(), 0..12),
    )
        .prop_map(|(header, mut lines)| {
            if !header.is_empty() {
                lines.insert(0, header);
            }
            lines
        })
}

/// Feeds every line, checking what each answer says about its line number.
fn feed(reader: &mut dyn BillReader, lines: &[Vec<u8>]) -> Result<(), TestCaseError> {
    let mut first_error = None;
    for (index, line) in lines.iter().enumerate() {
        let number = u32::try_from(index + 1).unwrap();
        match reader.line(line) {
            Ok(Some(found)) => {
                prop_assert!(first_error.is_none());
                prop_assert_eq!(found.line, number);
                prop_assert!(!found.order_id.is_empty());
            }
            Ok(None) => prop_assert!(first_error.is_none()),
            Err(e) => {
                prop_assert!((1..=number).contains(&e.line), "{e} at line {number}");
                prop_assert!(!e.is_at_end());
                prop_assert!(e.to_string().starts_with("line "));
                prop_assert_eq!(*first_error.get_or_insert(e), e);
            }
        }
    }
    // A spent reader reads no more lines.
    let read = first_error.map_or(lines.len(), |e| e.line as usize);
    prop_assert_eq!(reader.lines_read() as usize, read);
    match (reader.finish(), first_error) {
        (Err(e), Some(first)) => prop_assert_eq!(e, first),
        (Err(e), None) => {
            prop_assert!(e.is_at_end());
            prop_assert_eq!(e.line as usize, lines.len());
            prop_assert!(!e.to_string().is_empty());
        }
        (Ok(()), first) => prop_assert!(first.is_none()),
    }
    Ok(())
}

/// One order of a generated bill: its currency, its trade (if that day had one) and refunds.
#[derive(Debug, Clone)]
struct Order {
    currency: Currency,
    trade: Option<u64>,
    refunds: Vec<u64>,
}

fn orders() -> impl Strategy<Value = BTreeMap<String, Order>> {
    let currency = prop::sample::select(vec![Currency::CNY, Currency::USD, Currency::JPY]);
    let order = (
        currency,
        prop::option::of(0u64..10_000_000_000),
        prop::collection::vec(0u64..100_000_000, 0..3),
    )
        .prop_map(|(currency, trade, refunds)| Order {
            currency,
            trade,
            refunds,
        });
    prop::collection::btree_map("[A-Za-z0-9_-]{1,64}", order, 0..10)
}

/// What the bill must read back to: per order with a line, (paid, refunded) in minor units.
fn expected(orders: &BTreeMap<String, Order>) -> BTreeMap<Vec<u8>, (u64, u64)> {
    orders
        .iter()
        .filter(|(_, o)| o.trade.is_some() || !o.refunds.is_empty())
        .map(|(id, o)| {
            (
                id.as_bytes().to_vec(),
                (o.trade.unwrap_or(0), o.refunds.iter().sum()),
            )
        })
        .collect()
}

/// Sums what a reader yields per order.
fn sums(
    reader: &mut dyn BillReader,
    file: &[u8],
    currency: impl Fn(&[u8]) -> Currency,
) -> Result<BTreeMap<Vec<u8>, (u64, u64)>, TestCaseError> {
    let mut got: BTreeMap<Vec<u8>, (u64, u64)> = BTreeMap::new();
    for line in file.split(|&b| b == b'\n') {
        let found = reader.line(line);
        prop_assert!(found.is_ok(), "{:?}", found);
        if let Ok(Some(found)) = found {
            prop_assert_eq!(found.amount.currency(), currency(found.order_id));
            let sum = got.entry(found.order_id.to_vec()).or_default();
            match found.kind {
                BillLineKind::Trade => sum.0 += found.amount.minor_units(),
                BillLineKind::Refund => sum.1 += found.amount.minor_units(),
            }
        }
    }
    let end = reader.finish();
    prop_assert!(end.is_ok(), "{:?}", end);
    Ok(got)
}

/// A small deterministic generator for the choices of rendering (padding, order, line ends).
struct Dice(u64);

impl Dice {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pad(&mut self, value: &str) -> String {
        const PADS: [&str; 4] = ["", "\t", " ", " \t"];
        format!("{}{value}{}", PADS[self.next(2)], PADS[self.next(4)])
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.next(i + 1));
        }
    }
}

fn money(minor: u64, currency: Currency) -> String {
    Money::from_minor(minor, currency).to_string()
}

const ALIPAY_COLUMNS: [&str; 25] = [
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
];

/// The bill as Alipay's trade detail, in CNY (every order's currency is taken as CNY).
fn render_alipay(orders: &BTreeMap<String, Order>, dice: &mut Dice, half_width: bool) -> String {
    let mut columns: Vec<&str> = ALIPAY_COLUMNS.to_vec();
    dice.shuffle(&mut columns);
    let amount_name = if half_width {
        "订单金额(元)"
    } else {
        "订单金额（元）"
    };
    let header: Vec<&str> = columns
        .iter()
        .map(|c| {
            if *c == "订单金额（元）" {
                amount_name
            } else {
                c
            }
        })
        .collect();
    let mut rows = Vec::new();
    for (n, (id, order)) in orders.iter().enumerate() {
        let trade_no = format!("2024010122001{n:015}");
        let mut line = |kind: &str, amount: String, refund_no: &str| {
            let values: Vec<String> = columns
                .iter()
                .map(|c| match *c {
                    "支付宝交易号" => trade_no.clone(),
                    "商户订单号" => id.clone(),
                    "业务类型" => kind.to_string(),
                    "商品名称" => "商品, 一件".to_string(),
                    "订单金额（元）" | "商家实收（元）" => amount.clone(),
                    "退款批次号/请求号" => refund_no.to_string(),
                    _ => String::new(),
                })
                .map(|v| {
                    let v = if v.contains(',') {
                        format!("\"{v}\"")
                    } else {
                        v
                    };
                    dice.pad(&v)
                })
                .collect();
            rows.push(values.join(","));
        };
        if let Some(trade) = order.trade {
            line("交易", money(trade, Currency::CNY), "");
        }
        for (r, refund) in order.refunds.iter().enumerate() {
            line(
                "退款",
                format!("-{}", money(*refund, Currency::CNY)),
                &format!("{id}-{r}"),
            );
        }
    }
    dice.shuffle(&mut rows);
    let mut lines = vec![
        "#支付宝业务明细查询".to_string(),
        "#账号：[20880000000000000156]".to_string(),
        header.join(","),
    ];
    lines.extend(rows);
    lines.push("#-----------------------------------------业务明细列表结束------------------------------------".to_string());
    lines.push("#导出时间：[2024年01月02日 06:27:10]".to_string());
    lines.join("\n") + "\n"
}

const WECHATPAY_COLUMNS: [&str; 27] = [
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
];

/// The bill as WeChat Pay's trade bill, with a `REVOKED` line now and then.
fn render_wechatpay(orders: &BTreeMap<String, Order>, dice: &mut Dice) -> String {
    let mut columns: Vec<&str> = WECHATPAY_COLUMNS.to_vec();
    dice.shuffle(&mut columns);
    let mut rows = Vec::new();
    for (n, (id, order)) in orders.iter().enumerate() {
        let c = order.currency;
        let mut line = |state: &str, total: u64, refund: u64, refund_no: &str| {
            let values: Vec<String> = columns
                .iter()
                .map(|col| match *col {
                    "微信订单号" => format!("42000{n:023}"),
                    "商户订单号" => id.clone(),
                    "交易状态" => state.to_string(),
                    "货币种类" => c.code().to_string(),
                    // Settlement amounts differ from the totals: the reader must not take them.
                    "应结订单金额" => money(total / 2, c),
                    "退款金额" => money(refund / 2, c),
                    "订单金额" => money(total, c),
                    "申请退款金额" => money(refund, c),
                    "商户退款单号" => refund_no.to_string(),
                    "退款状态" if state == "REFUND" => "SUCCESS".to_string(),
                    "商品名称" => "a, b".to_string(),
                    "费率" => "0.60%".to_string(),
                    _ => String::new(),
                })
                .map(|v| format!("`{}", dice.pad(&v)))
                .collect();
            rows.push(values.join(","));
        };
        if let Some(trade) = order.trade {
            line("SUCCESS", trade, 0, "0");
        }
        for (r, refund) in order.refunds.iter().enumerate() {
            line("REFUND", 0, *refund, &format!("{id}-{r}"));
        }
        if n % 3 == 0 {
            line("REVOKED", 0, 0, "0");
        }
    }
    dice.shuffle(&mut rows);
    let count = rows.len();
    let mut lines = vec![columns.join(",")];
    lines.extend(rows);
    lines.push("总交易单数,应结订单总金额,退款总金额".to_string());
    lines.push(format!("`{count},`0.00,`0.00"));
    lines.join("\n") + "\n"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_lines_no_panic_and_errors_name_a_line_read(lines in lines()) {
        feed(&mut AlipayBill::new(), &lines)?;
        feed(&mut WechatPayBill::new(), &lines)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn alipay_bills_read_back_to_their_sums(
        orders in orders(),
        seed in 1u64..,
        half_width: bool,
        bom: bool,
        crlf: bool,
    ) {
        let want = expected(&orders);
        let text = render_alipay(&orders, &mut Dice(seed), half_width);
        let gbk_file = gbk(&text);
        let got = sums(&mut AlipayBill::new(), &gbk_file, |_| Currency::CNY)?;
        prop_assert_eq!(&got, &want);

        let text = if crlf { text.replace('\n', "\r\n") } else { text };
        let utf8_file = [if bom { &b"\xEF\xBB\xBF"[..] } else { &b""[..] }, text.as_bytes()].concat();
        let got = sums(&mut AlipayBill::new(), &utf8_file, |_| Currency::CNY)?;
        prop_assert_eq!(&got, &want);
    }

    #[test]
    fn wechatpay_bills_read_back_to_their_sums(orders in orders(), seed in 1u64.., crlf: bool) {
        let want = expected(&orders);
        let text = render_wechatpay(&orders, &mut Dice(seed));
        let text = if crlf { text.replace('\n', "\r\n") } else { text };
        let currency_of = |id: &[u8]| orders[std::str::from_utf8(id).unwrap()].currency;
        let mut reader = WechatPayBill::new();
        let got = sums(&mut reader, text.as_bytes(), currency_of)?;
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(reader.skipped(), orders.len().div_ceil(3) as u64);
    }
}
