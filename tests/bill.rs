//! The bill readers (docs/spec.md §6): Alipay's trade detail CSV in GBK and in UTF-8, WeChat
//! Pay's trade bill, empty days, malformed lines named by their number, and a bill read,
//! grouped and reconciled against a ledger.

use paystate::reconcile::bill::{
    AlipayBill, BillError, BillErrorKind, BillLine, BillLineKind, BillReader, WechatPayBill,
};
use paystate::{AmountError, Currency, Money};

const CNY: Currency = Currency::CNY;

fn cny(minor: u64) -> Money {
    Money::from_minor(minor, CNY)
}

/// Feeds `file` line by line, as a host does: split on `\n`, `\r` left in place.
fn read<'f, R: BillReader>(reader: &mut R, file: &'f [u8]) -> Result<Vec<BillLine<'f>>, BillError> {
    let mut found = Vec::new();
    for line in file.split(|&b| b == b'\n') {
        if let Some(line) = reader.line(line)? {
            found.push(line);
        }
    }
    reader.finish()?;
    Ok(found)
}

/// The error a bill stops at, wherever: in a line or at the end.
fn error<R: BillReader>(mut reader: R, file: &str) -> BillError {
    match read(&mut reader, file.as_bytes()) {
        Ok(lines) => panic!("read {} lines, expected an error", lines.len()),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------------
// Alipay

/// The header of the trade detail CSV (业务明细), 25 columns.
const ALIPAY_HEADER: &str = "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注";

/// A trade list line as Alipay writes it: every value followed by a tab.
fn alipay_row(trade_no: &str, order: &str, kind: &str, amount: &str, refund_no: &str) -> String {
    let values = [
        trade_no,
        order,
        kind,
        "测试商品",
        "2024-01-01 10:00:00",
        "2024-01-01 10:00:05",
        "",
        "",
        "",
        "",
        "ly***@example.com",
        amount,
        amount,
        "0.00",
        "0.00",
        "0.00",
        "0.00",
        "0.00",
        "",
        "0.00",
        "0.00",
        refund_no,
        "0.00",
        "0.00",
        "",
    ];
    values.map(|v| format!("{v}\t")).join(",")
}

/// A day's trade detail, as text: the `#` block, the header, `rows`, the `#` footer.
fn alipay_bill(rows: &[String]) -> String {
    let mut lines = vec![
        "#支付宝业务明细查询".to_string(),
        "#账号：[20880000000000000156]".to_string(),
        "#起始日期：[2024年01月01日 00:00:00]   终止日期：[2024年01月02日 00:00:00]".to_string(),
        "#-----------------------------------------业务明细列表----------------------------------------".to_string(),
        ALIPAY_HEADER.to_string(),
    ];
    lines.extend(rows.iter().cloned());
    lines.extend([
        "#-----------------------------------------业务明细列表结束------------------------------------".to_string(),
        "#交易合计：1笔，商家实收共99.90元，商家优惠共0.00元".to_string(),
        "#退款合计：1笔，商家实收退款共-10.00元，商家优惠退款共0.00元".to_string(),
        "#导出时间：[2024年01月02日 06:27:10]".to_string(),
    ]);
    lines.join("\n") + "\n"
}

fn two_lines() -> Vec<String> {
    vec![
        alipay_row("2024010122001400000000000001", "o-1", "交易", "99.90", ""),
        alipay_row(
            "2024010122001400000000000001",
            "o-1",
            "退款",
            "-10.00",
            "o-1-r1",
        ),
    ]
}

fn gbk(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
    assert!(!unmappable);
    bytes.into_owned()
}

fn check_two_lines(lines: &[BillLine<'_>]) {
    assert_eq!(lines.len(), 2);
    let trade = lines[0];
    assert_eq!(trade.line, 6);
    assert_eq!(trade.order_id, b"o-1");
    assert_eq!(trade.kind, BillLineKind::Trade);
    assert_eq!(trade.amount, cny(9_990));
    assert_eq!(trade.trade_no, Some(&b"2024010122001400000000000001"[..]));
    assert_eq!(trade.refund_no, None);
    let refund = lines[1];
    assert_eq!(refund.line, 7);
    assert_eq!(refund.order_id, b"o-1");
    assert_eq!(refund.kind, BillLineKind::Refund);
    assert_eq!(refund.amount, cny(1_000));
    assert_eq!(refund.refund_no, Some(&b"o-1-r1"[..]));
}

#[test]
fn alipay_gbk_as_downloaded() {
    let file = gbk(&alipay_bill(&two_lines()));
    // The GBK file is not UTF-8: nothing was transcoded on the way.
    assert!(std::str::from_utf8(&file).is_err());
    let mut reader = AlipayBill::new();
    let lines = read(&mut reader, &file).unwrap();
    check_two_lines(&lines);
    assert_eq!(reader.charset(), Some(paystate::alipay::form::Charset::Gbk));
    // 11 lines and the empty one after the last `\n`.
    assert_eq!(reader.lines_read(), 12);
}

#[test]
fn alipay_utf8_with_bom_and_crlf() {
    let text = alipay_bill(&two_lines()).replace('\n', "\r\n");
    let file = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
    let mut reader = AlipayBill::new();
    let lines = read(&mut reader, &file).unwrap();
    check_two_lines(&lines);
    assert_eq!(
        reader.charset(),
        Some(paystate::alipay::form::Charset::Utf8)
    );
}

#[test]
fn alipay_columns_are_found_by_name_in_any_order_and_half_width_parentheses() {
    let file = "商户订单号 ,\t订单金额(元),备注,业务类型\n\
                o-7\t, 1\t,\"a, quoted note\",交易\n\
                o-8,-0.5,,退款\n\
                #end\n";
    let mut reader = AlipayBill::new();
    let lines = read(&mut reader, file.as_bytes()).unwrap();
    assert_eq!(
        lines
            .iter()
            .map(|l| (l.order_id, l.kind, l.amount, l.trade_no))
            .collect::<Vec<_>>(),
        [
            (&b"o-7"[..], BillLineKind::Trade, cny(100), None),
            (&b"o-8"[..], BillLineKind::Refund, cny(50), None),
        ]
    );
}

#[test]
fn alipay_empty_days() {
    // Only the comment block: no trades that day.
    let comments = "#支付宝业务明细查询\n#账号：[20880000000000000156]\n#导出时间：[2024年01月02日 06:27:10]\n";
    assert_eq!(
        read(&mut AlipayBill::new(), comments.as_bytes()).unwrap(),
        []
    );
    assert_eq!(read(&mut AlipayBill::new(), &gbk(comments)).unwrap(), []);
    // The header and the footer, nothing between.
    let file = gbk(&alipay_bill(&[]));
    assert_eq!(read(&mut AlipayBill::new(), &file).unwrap(), []);
    // Zero bytes is not an export: a failed download.
    let empty = error(AlipayBill::new(), "");
    assert_eq!(
        empty,
        BillError {
            line: 1,
            kind: BillErrorKind::Empty
        }
    );
    assert_eq!(
        empty.to_string(),
        "end of bill after line 1: the bill is empty"
    );
    assert_eq!(AlipayBill::new().finish().unwrap_err().line, 0);
}

#[test]
fn alipay_bill_cut_inside_the_list() {
    let text = alipay_bill(&two_lines());
    let cut: String = text.lines().take(7).map(|l| format!("{l}\n")).collect();
    let e = error(AlipayBill::new(), &cut);
    // Seven lines and the empty one after the last `\n`.
    assert_eq!(e.line, 8);
    assert!(matches!(e.kind, BillErrorKind::Truncated { .. }));
    assert!(e.is_at_end());
}

/// The bill with line 7 (the refund) replaced.
fn alipay_with_line_7(row: String) -> String {
    let mut rows = two_lines();
    rows[1] = row;
    alipay_bill(&rows)
}

#[test]
fn alipay_malformed_lines_are_named_by_number() {
    let e = error(
        AlipayBill::new(),
        &alipay_with_line_7(alipay_row("2", "o-2", "交易", "9x.00", "")),
    );
    assert_eq!(
        e,
        BillError {
            line: 7,
            kind: BillErrorKind::InvalidAmount {
                column: "订单金额（元）",
                value: paystate::reconcile::bill::Excerpt::new(b"9x.00"),
                error: AmountError::InvalidCharacter { at: 1 },
            }
        }
    );
    assert_eq!(
        e.to_string(),
        "line 7: amount \"9x.00\" in column 订单金额（元） is not an amount (invalid character at byte 1)"
    );

    let cases: Vec<(String, &str)> = vec![
        (
            alipay_row("2", "o-2", "交易", "-5.00", ""),
            "line 7: amount \"-5.00\" in column 订单金额（元） has the wrong sign for a trade line",
        ),
        (
            alipay_row("2", "o-2", "退款", "5.00", ""),
            "line 7: amount \"5.00\" in column 订单金额（元） has the wrong sign for a refund line",
        ),
        (
            alipay_row("2", "o-2", "分账", "5.00", ""),
            "line 7: unknown value \"分账\" in column 业务类型",
        ),
        (
            alipay_row("2", "", "交易", "5.00", ""),
            "line 7: no value in column 商户订单号",
        ),
        (
            alipay_row("2", "订单1", "交易", "5.00", ""),
            "line 7: \"订单1\" in column 商户订单号 is not an id (1 to 64 printable ASCII characters)",
        ),
        (
            alipay_row("2", "o-2", "交易", "5.001", ""),
            "line 7: amount \"5.001\" in column 订单金额（元） is not an amount (more than 2 fractional digits)",
        ),
        (
            alipay_row("2", "o-2", "交易", "5.00", "") + ",extra",
            "line 7: 26 fields where the header has 25",
        ),
        (
            "o-2,交易".to_string(),
            "line 7: 2 fields where the header has 25",
        ),
        (
            "\"2,o-2".to_string(),
            "line 7: a quoted field is not closed properly",
        ),
    ];
    for (row, message) in cases {
        let text = alipay_with_line_7(row);
        let e = error(AlipayBill::new(), &text);
        assert_eq!(e.to_string(), message);
        // The same line in a GBK file: the same error, the same line.
        let e_gbk = read(&mut AlipayBill::new(), &gbk(&text)).unwrap_err();
        assert_eq!(e_gbk.line, 7, "{message}");
        assert_eq!(
            std::mem::discriminant(&e_gbk.kind),
            std::mem::discriminant(&e.kind)
        );
    }
    // In GBK, an unknown business type shows as its bytes.
    let e = read(
        &mut AlipayBill::new(),
        &gbk(&alipay_with_line_7(alipay_row(
            "2", "o-2", "分账", "5.00", "",
        ))),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 7: unknown value \"\\xB7\\xD6\\xD5\\xCB\" in column 业务类型"
    );
}

#[test]
fn alipay_header_and_structure_errors() {
    let missing = "#x\n支付宝交易号,商户订单号,订单金额（元）\n";
    assert_eq!(
        error(AlipayBill::new(), missing).to_string(),
        "line 2: the header has no column 业务类型"
    );
    let missing_gbk = gbk("#x\n支付宝交易号,商户订单号,业务类型\n");
    assert_eq!(
        read(&mut AlipayBill::new(), &missing_gbk)
            .unwrap_err()
            .to_string(),
        "line 2: the header has no column 订单金额（元）"
    );
    let twice = "商户订单号,业务类型,订单金额（元）,订单金额(元)\n";
    assert_eq!(
        error(AlipayBill::new(), twice).kind,
        BillErrorKind::DuplicateColumn {
            column: "订单金额（元）"
        }
    );
    let after = "商户订单号,业务类型,订单金额（元）\no-1,交易,1.00\n#end\no-2,交易,1.00\n";
    assert_eq!(
        error(AlipayBill::new(), after).to_string(),
        "line 4: unexpected line, expected only `#` lines after the trade list"
    );
}

#[test]
fn after_an_error_the_reader_repeats_it() {
    let mut reader = AlipayBill::new();
    let first = reader.line(b"not a header").unwrap_err();
    assert_eq!(first.line, 1);
    assert_eq!(reader.line("#x".as_bytes()), Err(first));
    assert_eq!(reader.line(b"o,1,2"), Err(first));
    assert_eq!(reader.finish(), Err(first));
}

// ---------------------------------------------------------------------------------------------
// WeChat Pay

const WECHATPAY_ALL: &[u8] = include_bytes!("data/bills/wechatpay_tradebill_all.csv");

#[test]
fn wechatpay_trade_bill_with_backquotes_and_summary() {
    let mut reader = WechatPayBill::new();
    let lines = read(&mut reader, WECHATPAY_ALL).unwrap();
    let got: Vec<_> = lines
        .iter()
        .map(|l| {
            (
                l.line,
                l.order_id,
                l.kind,
                l.amount,
                l.trade_no,
                l.refund_no,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                2,
                &b"w-1"[..],
                BillLineKind::Trade,
                cny(10_000), // 订单金额, not 应结订单金额 (90.00): the total, vouchers included
                Some(&b"4200000001202401010000000001"[..]),
                None
            ),
            (
                3,
                b"w-2",
                BillLineKind::Trade,
                cny(1),
                Some(b"4200000002202401010000000002"),
                None
            ),
            (
                4,
                b"w-1",
                BillLineKind::Refund,
                cny(5_000), // 申请退款金额, paired with 订单金额
                Some(&b"4200000001202401010000000001"[..]),
                Some(&b"wr-1"[..])
            ),
        ]
    );
    // The REVOKED line moved no money: counted, skipped, and in the summary's count.
    assert_eq!((reader.trade_lines(), reader.skipped()), (4, 1));
}

/// The fixture's text with `from` replaced by `to`.
fn wechatpay_with(from: &str, to: &str) -> String {
    let text = std::str::from_utf8(WECHATPAY_ALL).unwrap();
    assert!(text.contains(from), "{from}");
    text.replacen(from, to, 1)
}

#[test]
fn wechatpay_malformed_bills() {
    let cases = [
        (
            wechatpay_with("`4,`90.01", "`5,`90.01"),
            "line 7: the summary counts 5 trade lines, the bill has 4",
        ),
        (
            wechatpay_with("`CNY,`0.01", "`XYZ,`0.01"),
            "line 3: currency \"XYZ\" in column 货币种类 is not an ISO 4217 currency",
        ),
        (
            wechatpay_with("`SUCCESS,`CMB_DEBIT", "`PAID,`CMB_DEBIT"),
            "line 3: unknown value \"PAID\" in column 交易状态",
        ),
        (
            wechatpay_with("`0.60%,`0.01", "`0.60%,`-0.01"),
            "line 3: amount \"-0.01\" in column 订单金额 has the wrong sign for a trade line",
        ),
        (
            wechatpay_with("`Sticker,`", "`Sticker"),
            "line 3: 26 fields where the header has 27",
        ),
        (
            wechatpay_with("`2024-01-01 11:30:00", "2024-01-01 11:30:00"),
            "line 3: unexpected line, expected a trade line (values after backquotes) or the summary (总交易单数)",
        ),
        (
            wechatpay_with(
                "`4,`90.01,`45.00,`0.00,`0.27000,`100.01,`50.00\r\n",
                "`4,`90.01,`45.00,`0.00,`0.27000,`100.01,`50.00\r\nmore\r\n",
            ),
            "line 8: unexpected line, expected nothing after the summary",
        ),
        (
            wechatpay_with("`4,`90.01", "`four,`90.01"),
            "line 7: \"four\" in column 总交易单数 is not a number",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(error(WechatPayBill::new(), &text).to_string(), message);
    }
}

#[test]
fn wechatpay_cut_bills_and_empty_days() {
    let text = std::str::from_utf8(WECHATPAY_ALL).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let upto = |n: usize| lines[..n].join("\n");
    let e = error(WechatPayBill::new(), &upto(5));
    assert_eq!(
        e.to_string(),
        "end of bill after line 5: the bill ended before the summary (总交易单数)"
    );
    let e = error(WechatPayBill::new(), &upto(6));
    assert_eq!(e.line, 6);
    assert!(matches!(e.kind, BillErrorKind::Truncated { .. }));
    // A day without trades has no file: nothing to read is zero lines.
    assert_eq!(read(&mut WechatPayBill::new(), b"").unwrap(), []);
    // A header and a summary of zero trades.
    let zero = format!("{}\n总交易单数,应结订单总金额\n`0,`0.00\n", lines[0]);
    assert_eq!(
        read(&mut WechatPayBill::new(), zero.as_bytes()).unwrap(),
        []
    );
    // An error answer fed as a bill is no header.
    let answer = "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[No Bill Exist]]></return_msg></xml>";
    assert_eq!(
        error(WechatPayBill::new(), answer).to_string(),
        "line 1: the header has no column 商户订单号"
    );
}

#[test]
fn wechatpay_older_and_success_only_bills() {
    // Without 订单金额: the settlement amounts, refunds in 退款金额.
    let old = "交易时间,微信订单号,商户订单号,交易状态,货币种类,应结订单金额,商户退款单号,退款金额\n\
               `2024-01-01 10:00:00,`42001,`w-1,`SUCCESS,`CNY,`90.00,`0,`0.00\n\
               `2024-01-01 12:00:00,`42001,`w-1,`REFUND,`CNY,`0.00,`wr-1,`45.00\n\
               总交易单数,应结订单总金额\n\
               `2,`90.00\n";
    let lines = read(&mut WechatPayBill::new(), old.as_bytes()).unwrap();
    assert_eq!(
        lines.iter().map(|l| (l.kind, l.amount)).collect::<Vec<_>>(),
        [
            (BillLineKind::Trade, cny(9_000)),
            (BillLineKind::Refund, cny(4_500))
        ]
    );
    // A SUCCESS bill has no refund columns: fine until a refund line needs one.
    let success = "商户订单号,交易状态,货币种类,应结订单金额,订单金额\n\
                   `w-1,`SUCCESS,`USD,`9.00,`10.00\n\
                   `w-1,`REFUND,`USD,`0.00,`0.00\n";
    let e = error(WechatPayBill::new(), success);
    assert_eq!(
        e.to_string(),
        "line 3: the header has no column 申请退款金额"
    );
    let mut reader = WechatPayBill::new();
    let first = reader.line(success.lines().next().unwrap().as_bytes());
    assert_eq!(first, Ok(None));
    let line = reader
        .line(success.lines().nth(1).unwrap().as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(line.amount, Money::from_minor(1_000, Currency::USD));
}

#[test]
fn wechatpay_refunds_that_returned_nothing_are_skipped() {
    let text = "商户订单号,交易状态,货币种类,订单金额,申请退款金额,退款状态\n\
                `w-1,`REFUND,`CNY,`0.00,`5.00,`PROCESSING\n\
                `w-2,`REFUND,`CNY,`0.00,`5.00,`SUCCESS\n\
                `w-3,`REFUND,`CNY,`0.00,`5.00,`WHATEVER\n";
    let mut reader = WechatPayBill::new();
    let mut lines = text.lines().map(str::as_bytes);
    assert_eq!(reader.line(lines.next().unwrap()), Ok(None));
    assert_eq!(reader.line(lines.next().unwrap()), Ok(None));
    assert_eq!(
        reader.line(lines.next().unwrap()).unwrap().unwrap().amount,
        cny(500)
    );
    assert_eq!(
        reader.line(lines.next().unwrap()).unwrap_err().to_string(),
        "line 4: unknown value \"WHATEVER\" in column 退款状态"
    );
    assert_eq!(reader.skipped(), 1);
}

// ---------------------------------------------------------------------------------------------
// End to end: the bill read, grouped per order, and reconciled against the ledger.

#[cfg(feature = "alloc")]
#[test]
fn alipay_bill_grouped_and_reconciled() {
    use paystate::Status;
    use paystate::reconcile::bill::BillTotals;
    use paystate::reconcile::{Discrepancy, Entry, reconcile};

    // Time order, as Alipay lists: o-3's refund comes before a later trade of o-1.
    let rows = vec![
        alipay_row("20240101220014001", "o-3", "交易", "20.00", ""),
        alipay_row("20240101220014002", "o-2", "交易", "15.00", ""),
        alipay_row("20240101220014001", "o-3", "退款", "-20.00", "o-3-r1"),
        alipay_row("20240101220014003", "o-1", "交易", "99.90", ""),
        alipay_row("20240101220014003", "o-1", "退款", "-10.00", "o-1-r1"),
        alipay_row("20240101220014004", "o-9", "交易", "7.00", ""),
    ];
    let file = gbk(&alipay_bill(&rows));
    let mut totals = BillTotals::new();
    totals
        .read(&mut AlipayBill::new(), file.split(|&b| b == b'\n'))
        .unwrap();
    assert_eq!(totals.len(), 4);
    assert_eq!(totals.get(b"o-3").unwrap().status(), Status::Refunded);

    let ledger = [
        // Agrees: paid 99.90, refunded 10.00.
        Entry::new(b"o-1", Status::Succeeded, cny(9_990), cny(1_000)),
        // The amount differs: the ledger says 15.50.
        Entry::new(b"o-2", Status::Succeeded, cny(1_550), cny(0)),
        // Agrees: fully refunded.
        Entry::new(b"o-3", Status::Refunded, cny(2_000), cny(2_000)),
        // The bill does not have it.
        Entry::new(b"o-4", Status::Succeeded, cny(300), cny(0)),
        // o-9 is on the bill only.
    ];
    let found: Vec<Discrepancy<'_>> = reconcile(ledger, totals.entries())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        found,
        [
            Discrepancy::AmountMismatch {
                local: ledger[1],
                provider: Entry::new(b"o-2", Status::Succeeded, cny(1_500), cny(0)),
            },
            Discrepancy::MissingAtProvider(ledger[3]),
            Discrepancy::MissingLocally(Entry::new(b"o-9", Status::Succeeded, cny(700), cny(0))),
        ]
    );
}

#[cfg(feature = "alloc")]
#[test]
fn totals_refuse_mixed_currencies_naming_the_line() {
    use paystate::reconcile::bill::BillTotals;
    let text = "商户订单号,交易状态,货币种类,订单金额,申请退款金额\n\
                `w-1,`SUCCESS,`CNY,`1.00,`0.00\n\
                `w-1,`REFUND,`USD,`0.00,`1.00\n\
                总交易单数\n\
                `2\n";
    let e = BillTotals::new()
        .read(&mut WechatPayBill::new(), text.split('\n'))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 3: the order's lines are in different currencies"
    );
}

#[test]
fn error_codes_are_stable() {
    let e = error(AlipayBill::new(), "");
    assert_eq!(e.code(), "empty_bill");
    let e = error(
        WechatPayBill::new(),
        &wechatpay_with("`4,`90.01", "`5,`90.01"),
    );
    assert_eq!(e.code(), "count_mismatch");
}

#[cfg(feature = "alloc")]
#[test]
fn totals_refuse_an_overflowing_sum_and_keep_what_they_had() {
    use paystate::reconcile::bill::BillTotals;
    let file = "商户订单号,业务类型,订单金额（元）\n\
                o-1,交易,184467440737095516.15\n\
                o-1,交易,0.01\n";
    let mut totals = BillTotals::new();
    let e = totals
        .read(&mut AlipayBill::new(), file.split('\n'))
        .unwrap_err();
    assert_eq!(e.to_string(), "line 3: the order's total overflows");
    assert_eq!(totals.get(b"o-1").unwrap().paid, cny(u64::MAX));
}
