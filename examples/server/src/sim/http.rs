//! The simulator's HTTP face: the gateway (`/gateway.do`) and the cashier's pay button
//! (`/cashier/pay`). Every input is answered, never a panic.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use super::gateway::Reply;
use super::{AlipaySim, wire};

pub(crate) fn router(sim: AlipaySim) -> Router {
    Router::new()
        .route("/gateway.do", get(gateway_get).post(gateway_post))
        .route("/cashier/pay", post(cashier_pay))
        .fallback(not_found)
        .with_state(sim)
}

/// The signed `GET` of the cashier methods (and of any other, as Alipay allows).
async fn gateway_get(State(sim): State<AlipaySim>, RawQuery(query): RawQuery) -> Response {
    respond(sim.inner.gateway(query.as_deref(), b""))
}

/// A form body as the SDKs post it (the common parameters may be in the query string).
async fn gateway_post(
    State(sim): State<AlipaySim>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    respond(sim.inner.gateway(query.as_deref(), &body))
}

fn respond(reply: Reply) -> Response {
    match reply {
        Reply::Json { body } => (
            [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
            body,
        )
            .into_response(),
        Reply::Cashier { html } => Html(html).into_response(),
        Reply::CashierRefused { html, .. } => (StatusCode::BAD_REQUEST, Html(html)).into_response(),
        Reply::Unavailable => unavailable(),
    }
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let html = wire::html_page(
        "支付宝 - 错误",
        &format!(
            "<h1>抱歉，无法付款</h1>\n<p>{}</p>",
            wire::html_escape(message)
        ),
    );
    (status, Html(html)).into_response()
}

/// The cashier's "Pay" button: the buyer pays, and the browser goes back to the merchant's
/// `return_url` (303) with the signed return parameters, or sees a receipt without one.
async fn cashier_pay(State(sim): State<AlipaySim>, body: Bytes) -> Response {
    if sim.inner.lock().down {
        return unavailable();
    }
    let out_trade_no = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "out_trade_no")
        .map(|(_, v)| v.into_owned());
    let Some(out_trade_no) = out_trade_no else {
        return error_page(StatusCode::BAD_REQUEST, "缺少 out_trade_no");
    };
    match sim.inner.pay(&out_trade_no, false) {
        Ok(Some(location)) => match HeaderValue::from_str(&location) {
            Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
            Err(_) => error_page(
                StatusCode::BAD_REQUEST,
                "支付成功，但商户的 return_url 不是合法的地址",
            ),
        },
        Ok(None) => Html(wire::html_page(
            "支付宝 - 支付成功",
            &format!(
                "<h1>支付成功</h1>\n<p>商户订单号 <code>{}</code></p>",
                wire::html_escape(&out_trade_no)
            ),
        ))
        .into_response(),
        Err(e) => error_page(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found").into_response()
}
