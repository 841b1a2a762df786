//! How long one Alipay notification takes end to end — decode the body, build the signed
//! content, check the RSA2 signature, run the business checks and map it to an input — on
//! Alipay's real V1 trade notification. Run it optimised:
//!
//! ```text
//! cargo run --release --example alipay_timing
//! ```

use std::time::Instant;

use paystate::alipay::content::{SignRule, SignedContent};
use paystate::alipay::form::Form;
use paystate::alipay::notify::{MerchantConfig, Notification};
use paystate::signature::Rsa2PublicKey;
use paystate::{Currency, Money, Payment, Timestamp};

const BODY: &str = include_str!("../tests/data/alipay/trade_notify_v1.form_body.txt");
const KEY: &str = include_str!("../tests/data/alipay/alipay-public-key-trade-notify-v1.pem");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = Rsa2PublicKey::from_pem(KEY)?;
    let merchant = MerchantConfig {
        app_id: "2019073166072302",
        seller_id: "2088531891668739",
    };
    let payment: Payment = Payment::new(
        Money::parse("0.10", Currency::CNY)?,
        Timestamp::from_secs(0),
    )?;
    let order = "20190815155618536-564-57";

    let rounds: u32 = 2_000;
    let mut buf = vec![0u8; BODY.len()];

    // Without the signature check: decoding, the signed content's digest, the mapping.
    let start = Instant::now();
    for _ in 0..rounds {
        let form = Form::decode(BODY.as_bytes(), &mut buf)?;
        std::hint::black_box(SignedContent::new(&form, SignRule::V1).digest());
    }
    let parse = start.elapsed() / rounds;

    let start = Instant::now();
    for _ in 0..rounds {
        let form = Form::decode(BODY.as_bytes(), &mut buf)?;
        let note = Notification::verify(&form, SignRule::V1, &key)?;
        std::hint::black_box(
            note.to_input(&merchant, &paystate::provider::Facts::of(order, &payment))?,
        );
    }
    let total = start.elapsed() / rounds;

    println!(
        "one notification ({} bytes, {}-bit key), mean of {rounds}:",
        BODY.len(),
        key.bits()
    );
    println!("  decode + signed-content digest: {parse:?}");
    println!("  end to end (with RSA2 verify and mapping): {total:?}");
    Ok(())
}
