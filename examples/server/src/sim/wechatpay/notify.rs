//! WeChat Pay's notification system: the resource sealed under the APIv3 key, the body signed
//! with the platform key, posted to the `notify_url` and delivered again, the same body signed
//! anew, until the reply is `200` or `204`, on the configured schedule. Every attempt is
//! recorded.
//!
//! Written independently of the `paystate` crate's decoders (the simulator is what the crate
//! is checked against): `aes-gcm` seals, the crate's RSA key only signs.

use std::sync::Arc;

use aes_gcm::aead::Nonce;
use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit};
use base64::Engine as _;
use paystate::signature::Rsa2PrivateKey;
use rand::Rng as _;
use serde_json::{Value, json};

use super::super::wire;
use super::gateway::Note;
use super::{Delivery, Inner, WechatSimConfig, WechatSimError};

/// A notification as it is posted: the `Wechatpay-*` headers and the JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// `Wechatpay-Timestamp`, `Wechatpay-Nonce`, `Wechatpay-Signature`, `Wechatpay-Serial`
    /// and `Wechatpay-Signature-Type`.
    pub headers: Vec<(String, String)>,
    /// The body, with the sealed `resource`.
    pub body: String,
}

/// RFC 3339 in Beijing time, WeChat Pay's format (`2026-11-30T18:34:56+08:00`).
pub(crate) fn rfc3339(millis: u64) -> String {
    format!("{}+08:00", wire::beijing(millis).replacen(' ', "T", 1))
}

/// `len` random characters of `A-Za-z0-9`.
pub(crate) fn nonce(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| {
            let i = rng.random_range(0..ALPHABET.len());
            ALPHABET.get(i).map_or('0', |&b| char::from(b))
        })
        .collect()
}

/// `len` random decimal digits.
pub(crate) fn digits(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(b'0'.saturating_add(rng.random_range(0..10u8))))
        .collect()
}

/// The notification body: `resource` sealed with AEAD_AES_256_GCM under the APIv3 key, in
/// WeChat Pay's envelope.
pub(crate) fn seal(
    config: &WechatSimConfig,
    id: &str,
    event_type: &str,
    summary: &str,
    resource: &Value,
) -> Result<String, WechatSimError> {
    let original_type = if event_type.starts_with("REFUND.") {
        "refund"
    } else {
        "transaction"
    };
    let nonce_text = nonce(12);
    let nonce =
        <&Nonce<Aes256Gcm>>::try_from(nonce_text.as_bytes()).map_err(|_| WechatSimError::Seal)?;
    let cipher = Aes256Gcm::new(&config.apiv3_key.into());
    let mut buf = resource.to_string().into_bytes();
    let tag = cipher
        .encrypt_inout_detached(nonce, original_type.as_bytes(), buf.as_mut_slice().into())
        .map_err(|_| WechatSimError::Seal)?;
    buf.extend_from_slice(&tag);
    Ok(json!({
        "id": id,
        "create_time": rfc3339(wire::now_millis()),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
        "resource": {
            "original_type": original_type,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64::engine::general_purpose::STANDARD.encode(&buf),
            "associated_data": original_type,
            "nonce": nonce_text,
        },
    })
    .to_string())
}

/// The `Wechatpay-*` headers of `body` signed with `key` at `timestamp` with `nonce`:
/// SHA256withRSA over `"{timestamp}\n{nonce}\n{body}\n"`.
pub(crate) fn signature_headers(
    key: &Rsa2PrivateKey,
    serial: &str,
    body: &[u8],
    timestamp: u64,
    nonce: &str,
) -> Vec<(String, String)> {
    let mut message = format!("{timestamp}\n{nonce}\n").into_bytes();
    message.extend_from_slice(body);
    message.push(b'\n');
    let signature = match key.sign_base64(&message) {
        Ok(signature) => signature,
        Err(e) => {
            tracing::error!(error = %e, "the WeChat Pay simulator could not sign");
            String::new()
        }
    };
    vec![
        ("Wechatpay-Timestamp".into(), timestamp.to_string()),
        ("Wechatpay-Nonce".into(), nonce.into()),
        ("Wechatpay-Signature".into(), signature),
        ("Wechatpay-Serial".into(), serial.into()),
        (
            "Wechatpay-Signature-Type".into(),
            "WECHATPAY2-SHA256-RSA2048".into(),
        ),
    ]
}

/// `note` signed now with the platform key, as a delivery sends it.
pub(crate) fn signed(inner: &Inner, note: &Note) -> Sealed {
    Sealed {
        headers: signature_headers(
            &inner.config.platform_private_key,
            &inner.config.platform_serial,
            note.body.as_bytes(),
            wire::now_millis() / 1000,
            &nonce(32),
        ),
        body: note.body.clone(),
    }
}

/// Delivers `note` in a spawned task: the first attempt now, then one after each delay of the
/// schedule while it is not acknowledged, unless notifications are turned off or the
/// simulator shut down in between.
pub(crate) fn spawn_delivery(inner: &Arc<Inner>, note: Note) {
    let inner = Arc::clone(inner);
    tokio::spawn(async move {
        let mut delays = inner.config.retry_schedule.clone().into_iter();
        loop {
            if !inner.lock().delivering() {
                return;
            }
            if deliver_once(&inner, &note).await {
                return;
            }
            match delays.next() {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return,
            }
        }
    });
}

/// One delivery attempt, signed anew and recorded; whether it was acknowledged. A refused
/// connection, a timeout or any reply but HTTP 200 or 204 is a failed attempt.
pub(crate) async fn deliver_once(inner: &Inner, note: &Note) -> bool {
    let sealed = signed(inner, note);
    let mut request = inner
        .client
        .post(&note.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(sealed.body);
    for (name, value) in &sealed.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let (http_status, reply, error) = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.bytes().await {
                Ok(body) => (
                    Some(status),
                    Some(String::from_utf8_lossy(&body).into_owned()),
                    None,
                ),
                Err(e) => (Some(status), None, Some(error_chain(&e))),
            }
        }
        Err(e) => (None, None, Some(error_chain(&e))),
    };
    let mut st = inner.lock();
    let earlier = st.deliveries.iter().filter(|d| d.id == note.id).count();
    let delivery = Delivery {
        out_trade_no: note.out_trade_no.clone(),
        id: note.id.clone(),
        event_type: note.event_type.clone(),
        out_refund_no: note.out_refund_no.clone(),
        attempt: u32::try_from(earlier).unwrap_or(u32::MAX).saturating_add(1),
        http_status,
        reply,
        error,
    };
    let acknowledged = delivery.acknowledged();
    tracing::debug!(
        id = %delivery.id,
        attempt = delivery.attempt,
        acknowledged,
        "WeChat Pay simulator notification delivery"
    );
    st.deliveries.push(delivery);
    acknowledged
}

/// An error and its causes on one line ("… connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
