//! The simulator's HTTP face: the two APIs the server calls. Every input is answered, never a
//! panic.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::WechatSim;
use super::gateway::{Api, Reply};

pub(crate) fn router(sim: WechatSim) -> Router {
    Router::new()
        .route(
            "/v3/pay/transactions/out-trade-no/{out_trade_no}/close",
            post(close),
        )
        .route("/v3/refund/domestic/refunds", post(refund))
        .fallback(unknown)
        .with_state(sim)
}

async fn close(
    State(sim): State<WechatSim>,
    out_trade_no: Result<Path<String>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let api = match out_trade_no {
        Ok(Path(no)) => Api::Close(no),
        Err(_) => Api::Unknown,
    };
    handle(&sim, api, &method, &uri, &headers, &body)
}

async fn refund(
    State(sim): State<WechatSim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&sim, Api::Refund, &method, &uri, &headers, &body)
}

async fn unknown(
    State(sim): State<WechatSim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&sim, Api::Unknown, &method, &uri, &headers, &body)
}

fn handle(
    sim: &WechatSim,
    api: Api,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let reply = sim
        .inner
        .handle(api, method.as_str(), path, authorization, body);
    respond(reply)
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn respond(reply: Reply) -> Response {
    match reply {
        Reply::Unavailable => {
            (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
        }
        Reply::Unsigned { status: code, body } => (
            status(code),
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Reply::Signed {
            status: code,
            body,
            headers,
        } => {
            let empty = body.is_empty();
            let mut response = (status(code), body).into_response();
            let map = response.headers_mut();
            if empty {
                map.remove(header::CONTENT_TYPE);
            } else {
                map.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&value),
                ) {
                    map.insert(name, value);
                }
            }
            map.insert(
                HeaderName::from_static("request-id"),
                HeaderValue::from_str(&super::notify::nonce(32))
                    .unwrap_or_else(|_| HeaderValue::from_static("-")),
            );
            response
        }
    }
}
