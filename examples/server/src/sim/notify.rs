//! Alipay's notification system: a notification is posted as a form to the `notify_url` and
//! redelivered, with the same `notify_id` and body, until the reply body is exactly
//! `success`, on the configured schedule. Every attempt is recorded.

use std::sync::Arc;

use super::gateway::Note;
use super::{Delivery, Inner};

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

/// One delivery attempt, recorded; whether it was acknowledged. A refused connection, a
/// timeout or any reply but HTTP 200 with the body `success` is a failed attempt.
pub(crate) async fn deliver_once(inner: &Inner, note: &Note) -> bool {
    let sent = inner
        .client
        .post(&note.url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(note.body.clone())
        .send()
        .await;
    let (http_status, reply, error) = match sent {
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
    let earlier = st
        .deliveries
        .iter()
        .filter(|d| d.notify_id == note.notify_id)
        .count();
    let delivery = Delivery {
        out_trade_no: note.out_trade_no.clone(),
        notify_id: note.notify_id.clone(),
        trade_status: note.trade_status.clone(),
        out_biz_no: note.out_biz_no.clone(),
        attempt: u32::try_from(earlier).unwrap_or(u32::MAX).saturating_add(1),
        http_status,
        reply,
        error,
    };
    let acknowledged = delivery.acknowledged();
    tracing::debug!(
        notify_id = %delivery.notify_id,
        attempt = delivery.attempt,
        acknowledged,
        "Alipay simulator notification delivery"
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
