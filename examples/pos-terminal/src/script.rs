//! The scripted shift: what the cashier does and what Alipay answers, second by second.
//!
//! Every provider answer is a signed Alipay synchronous response from `data/` (see its
//! README), embedded byte for byte.

use paystate::provider::alipay::Request;

/// Seconds since the Unix epoch at the start of the shift: 2025-06-17 10:00:00 (UTC+8).
pub const SHIFT_START: u64 = 1_750_125_600;

/// How long a customer has to pay, from the moment the order is opened.
pub const PAY_WINDOW: u64 = 300;
/// The short window of the two orders whose deadline passes during the shift.
pub const SHORT_WINDOW: u64 = 90;

/// One thing that happens at the till.
pub enum Action {
    /// The cashier rings up an order: a new payment of `amount` CNY, to be paid within
    /// `window` seconds.
    Open { amount: &'static str, window: u64 },
    /// The cashier scans the customer's payment barcode; `alipay.trade.pay` goes out.
    Scan,
    /// An answer from Alipay to `request` arrives. An answer to `alipay.trade.close`, which the
    /// terminal sends to carry out a `close_trade` obligation, arrives only if that request is
    /// in flight (see `Gateway` in `main.rs`).
    Answer {
        request: Request<'static>,
        file: &'static str,
        raw: &'static str,
    },
    /// The terminal asks Alipay to refund `amount` under the refund request number `request`,
    /// and the answer arrives.
    Refund {
        request: &'static str,
        amount: &'static str,
        file: &'static str,
        raw: &'static str,
    },
    /// The answer to the refund the terminal sent for the order's `refund_required`
    /// obligation, under the request number the obligation names. It arrives only if that
    /// request is in flight.
    RefundAnswer {
        file: &'static str,
        raw: &'static str,
    },
    /// Time passes with nothing to do but the deadlines.
    Wait,
    /// The power will fail in the middle of the next flash write (a test fixture: it fires
    /// once per run).
    PowerFailsDuringNextWrite,
}

/// One step of the shift.
pub struct Step {
    /// Seconds into the shift.
    pub at: u64,
    /// The order it concerns (empty for none).
    pub order: &'static str,
    /// What happens.
    pub action: Action,
}

macro_rules! answer {
    ($request:ident, $file:literal) => {
        Action::Answer {
            request: Request::$request,
            file: $file,
            raw: include_str!(concat!("../data/", $file)),
        }
    };
}

macro_rules! refund {
    ($request:literal, $amount:literal, $file:literal) => {
        Action::Refund {
            request: $request,
            amount: $amount,
            file: $file,
            raw: include_str!(concat!("../data/", $file)),
        }
    };
}

const fn step(at: u64, order: &'static str, action: Action) -> Step {
    Step { at, order, action }
}

/// The shift. Seven customers; the terminal holds six open payments.
pub static SHIFT: &[Step] = &[
    // A customer pays at once.
    step(
        0,
        "T1-0001",
        Action::Open {
            amount: "25.00",
            window: PAY_WINDOW,
        },
    ),
    step(5, "T1-0001", Action::Scan),
    step(7, "T1-0001", answer!(Pay, "t1-0001-pay-success.json")),
    // A customer confirms on the phone: the terminal polls, and one answer arrives twice.
    step(
        30,
        "T1-0002",
        Action::Open {
            amount: "88.80",
            window: PAY_WINDOW,
        },
    ),
    step(34, "T1-0002", Action::Scan),
    step(36, "T1-0002", answer!(Pay, "t1-0002-pay-inprocess.json")),
    step(41, "T1-0002", answer!(Query, "t1-0002-query-wait.json")),
    step(46, "T1-0002", answer!(Query, "t1-0002-query-success.json")),
    step(52, "T1-0002", answer!(Query, "t1-0002-query-success.json")),
    // A customer who never pays: the deadline cancels the order and the trade is closed.
    step(
        60,
        "T1-0003",
        Action::Open {
            amount: "12.00",
            window: SHORT_WINDOW,
        },
    ),
    step(63, "T1-0003", Action::Scan),
    step(65, "T1-0003", answer!(Pay, "t1-0003-pay-inprocess.json")),
    step(70, "T1-0003", answer!(Query, "t1-0003-query-wait.json")),
    // A customer whose payment goes through only after the deadline cancelled the order.
    step(
        80,
        "T1-0004",
        Action::Open {
            amount: "45.50",
            window: SHORT_WINDOW,
        },
    ),
    step(83, "T1-0004", Action::Scan),
    step(85, "T1-0004", answer!(Pay, "t1-0004-pay-inprocess.json")),
    // Meanwhile the next customer pays at once.
    step(
        100,
        "T1-0005",
        Action::Open {
            amount: "199.00",
            window: PAY_WINDOW,
        },
    ),
    step(104, "T1-0005", Action::Scan),
    step(106, "T1-0005", answer!(Pay, "t1-0005-pay-success.json")),
    // T1-0003's deadline passes; the trade is closed at Alipay.
    step(150, "", Action::Wait),
    step(152, "T1-0003", answer!(Close, "t1-0003-close-ok.json")),
    // T1-0004's deadline passes while T1-0005's customer brings one item back: one step, two
    // records (the deadline's, then the partial refund's).
    step(
        170,
        "T1-0005",
        refund!("T1-0005-R1", "50.00", "t1-0005-refund-partial.json"),
    ),
    // Alipay refuses to close T1-0004: the customer has paid meanwhile.
    step(172, "T1-0004", answer!(Close, "t1-0004-close-refused.json")),
    step(173, "", Action::PowerFailsDuringNextWrite),
    step(175, "T1-0004", answer!(Query, "t1-0004-query-success.json")),
    // The answer to the refund the late capture's obligation sent.
    step(
        180,
        "T1-0004",
        Action::RefundAnswer {
            file: "t1-0004-refund-full.json",
            raw: include_str!("../data/t1-0004-refund-full.json"),
        },
    ),
    // A forged and a truncated answer before the genuine one.
    step(
        230,
        "T1-0006",
        Action::Open {
            amount: "66.00",
            window: PAY_WINDOW,
        },
    ),
    step(234, "T1-0006", Action::Scan),
    step(236, "T1-0006", answer!(Pay, "t1-0006-pay-inprocess.json")),
    step(
        241,
        "T1-0006",
        answer!(Query, "t1-0006-query-success-forged.json"),
    ),
    step(
        246,
        "T1-0006",
        answer!(Query, "t1-0006-query-success-truncated.json"),
    ),
    step(251, "T1-0006", answer!(Query, "t1-0006-query-success.json")),
    // The table is full: the seventh order is refused, and the shift goes on.
    step(
        260,
        "T1-0007",
        Action::Open {
            amount: "10.00",
            window: PAY_WINDOW,
        },
    ),
    step(600, "", Action::Wait),
];
