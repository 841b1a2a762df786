//! The HTTP side: the router, the merchant API and the providers' endpoints.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{MatchedPath, OriginalUri, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use paystate::alipay::content::SignRule;
use paystate::alipay::form::Form;
use paystate::alipay::notify::{MerchantConfig, Notification, NotifyError, Reply};
use paystate::alipay::request::TradeRequest;
use paystate::guard::ReplayGuard;
use paystate::provider::MapError;
use paystate::{Currency, EventId, Input, Money, Outcome, Payment, RefundId, Rejection, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::alipay::AlipayClient;
use crate::auth::{self, Begin, SignatureHeaders};
use crate::config::Config;
use crate::metrics::{Metrics, RequestLabels, RouteLabels};
use crate::payments::{self, ApplyError, NewPayment, Provider, Step};
use crate::store::Db;

/// The largest request body accepted, in bytes (1 MiB). Larger: `413`, nothing read.
pub const BODY_LIMIT: usize = 1 << 20;

/// How many WeChat Pay notification nonces each instance remembers (its replay guard).
const WECHAT_REPLAY_SLOTS: usize = 4096;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The configuration.
    pub config: Arc<Config>,
    /// The database.
    pub db: Db,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Alipay, if configured (shared: the state is cloned for every request).
    pub alipay: Option<Arc<AlipayClient>>,
    /// WeChat Pay's gateway (closes and refunds), if configured.
    pub wechatpay: Option<Arc<crate::wechatpay::WechatpayClient>>,
    /// WeChat Pay's notification replay guard (per instance: WeChat Pay's nonces; the engine's
    /// event ids dedupe across instances).
    pub wechat_guard: Arc<Mutex<ReplayGuard<WECHAT_REPLAY_SLOTS>>>,
}

/// Now, in seconds since the Unix epoch: the server's one clock.
pub fn now() -> Timestamp {
    Timestamp::from_secs(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

/// The router with every route and layer.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/payments", post(create_payment))
        .route("/v1/payments/{order_id}", get(get_payment))
        .route("/v1/payments/{order_id}/cancel", post(cancel_payment))
        .route("/v1/payments/{order_id}/refunds", post(refund_payment))
        .route("/notify/alipay", post(notify_alipay))
        .route("/return/alipay", get(return_alipay))
        .route("/notify/wechatpay", post(notify_wechatpay))
        .route("/webhook/stripe", post(webhook_stripe))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            std::time::Duration::from_secs(state.config.http.request_timeout_secs),
        ))
        .layer(middleware::map_response(json_errors))
        // Outside the timeout and the body limit, so what they answer is counted too.
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Gives the answers of the layers (the body limit's `413`, the timeout's empty `503`) the
/// API's JSON error shape: `{"error":"body_too_large"}`, `{"error":"timeout"}`.
async fn json_errors(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE if !is_json => error_detail(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request bodies are limited to {BODY_LIMIT} bytes"),
        ),
        StatusCode::SERVICE_UNAVAILABLE
            if !response.headers().contains_key(header::CONTENT_TYPE) =>
        {
            error(StatusCode::SERVICE_UNAVAILABLE, "timeout")
        }
        _ => response,
    }
}

/// Counts requests by route and status and observes their latency.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let start = Instant::now();
    let response = next.run(req).await;
    state
        .metrics
        .latency
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error(status: StatusCode, code: &str) -> Response {
    json_response(status, &json!({ "error": code }))
}

fn error_detail(status: StatusCode, code: &str, detail: impl std::fmt::Display) -> Response {
    json_response(
        status,
        &json!({ "error": code, "detail": detail.to_string() }),
    )
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "internal error");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal")
}

async fn healthz(State(state): State<AppState>) -> Response {
    if state.db.healthy().await {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

// ------------------------------------------------------------------------------------------
// The merchant API.

/// An authenticated merchant request, with its idempotency key if it carries one.
struct Guarded {
    api_key: String,
    idem_key: Option<String>,
    /// The idempotency key was taken over from an earlier run of this request that did not
    /// finish (its instance died): that run may have done its work already.
    taken_over: bool,
    /// Renews the key's lease while the request runs; dropped (and so stopped) with the
    /// request, whether it finishes or is cancelled by the timeout.
    _renewal: Option<Renewal>,
}

/// A task renewing an in-flight idempotency key's lease every half lease, aborted on drop:
/// a request that runs longer than its lease keeps its key, and an instance that dies stops
/// renewing, so the lease runs out and the key is taken over (docs/spec.md §10).
struct Renewal(tokio::task::JoinHandle<()>);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn renew(state: &AppState, api_key: &str, idem_key: &str) -> Renewal {
    let db = state.db.clone();
    let lease = state.config.workers.lease_secs;
    let (api_key, idem_key) = (api_key.to_owned(), idem_key.to_owned());
    Renewal(tokio::spawn(async move {
        let every = std::time::Duration::from_millis(lease.saturating_mul(500).max(100));
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = auth::renew(&db, &api_key, &idem_key, now(), lease).await {
                tracing::warn!(error = %e, "renewing an idempotency key's lease failed");
            }
        }
    }))
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Authenticates, then claims the idempotency key of a `POST`. `Err` is the response to send.
async fn guard(
    state: &AppState,
    method: &Method,
    uri: &OriginalUri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Guarded, Response> {
    let now = now();
    let path_and_query = uri.0.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let sig = SignatureHeaders {
        key: header_str(headers, "x-paystate-key"),
        timestamp: header_str(headers, "x-paystate-timestamp"),
        nonce: header_str(headers, "x-paystate-nonce"),
        signature: header_str(headers, "x-paystate-signature"),
    };
    let api_key = match auth::authenticate(
        &state.config,
        &state.db,
        sig,
        method.as_str(),
        path_and_query,
        body,
        now,
    )
    .await
    {
        Err(e) => return Err(internal(e)),
        Ok(Err(e)) => {
            tracing::info!(reason = e.code(), "merchant request refused");
            return Err(error(StatusCode::UNAUTHORIZED, e.code()));
        }
        Ok(Ok(key)) => key,
    };
    let mut idem_key = None;
    let mut taken_over = false;
    if let Some(raw) = headers
        .get("idempotency-key")
        .filter(|_| method == Method::POST)
    {
        {
            let Some(key) = raw.to_str().ok().filter(|k| auth::valid_idempotency_key(k)) else {
                return Err(error_detail(
                    StatusCode::BAD_REQUEST,
                    "bad_input",
                    "Idempotency-Key must be 1..=255 bytes of visible ASCII",
                ));
            };
            let fp = auth::fingerprint(method.as_str(), path_and_query, body);
            match auth::begin(
                &state.db,
                &api_key,
                key,
                &fp,
                now,
                state.config.workers.lease_secs,
            )
            .await
            {
                Err(e) => return Err(internal(e)),
                Ok(Begin::Run { taken_over: t }) => {
                    idem_key = Some(key.to_owned());
                    taken_over = t;
                }
                Ok(Begin::Replay(status, body)) => {
                    let status =
                        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    let mut response = (status, body).into_response();
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    response
                        .headers_mut()
                        .insert("idempotent-replayed", HeaderValue::from_static("true"));
                    return Err(response);
                }
                Ok(Begin::Conflict) => {
                    return Err(error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "idempotency_conflict",
                    ));
                }
                Ok(Begin::InUse) => return Err(error(StatusCode::CONFLICT, "in_use")),
            }
        }
    }
    let renewal = idem_key.as_deref().map(|k| renew(state, &api_key, k));
    Ok(Guarded {
        api_key,
        idem_key,
        taken_over,
        _renewal: renewal,
    })
}

/// Sends `(status, body)`, first storing it under the request's idempotency key (a `5xx`
/// releases the key instead, so the client may retry).
async fn finish(state: &AppState, guarded: Guarded, status: StatusCode, body: Value) -> Response {
    let text = body.to_string();
    if let Some(key) = &guarded.idem_key {
        let stored = if status.is_server_error() {
            auth::release(&state.db, &guarded.api_key, key).await
        } else {
            auth::complete(&state.db, &guarded.api_key, key, status.as_u16(), &text).await
        };
        if let Err(e) = stored {
            return internal(e);
        }
    }
    (status, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}

/// An order id or refund id: 1..=64 of `[A-Za-z0-9_.-]` (Alipay's `out_trade_no` and
/// `out_request_no` allow letters, digits and underscores, up to 64).
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    order_id: String,
    provider: String,
    amount: String,
    currency: String,
    subject: String,
    expires_at: Option<u64>,
    late_success: Option<String>,
}

async fn create_payment(
    State(state): State<AppState>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let guarded = match guard(&state, &method, &uri, &headers, &body).await {
        Ok(g) => g,
        Err(response) => return response,
    };
    crate::workers::failpoint("create_after_claim");
    crate::workers::failpoint_sleep("create_after_claim").await;
    let (status, value) = create(&state, &body, guarded.taken_over).await;
    finish(&state, guarded, status, value).await
}

fn bad(code: &str, detail: impl std::fmt::Display) -> (StatusCode, Value) {
    (
        StatusCode::BAD_REQUEST,
        json!({"error": code, "detail": detail.to_string()}),
    )
}

/// Creates a payment. `taken_over`: the request runs again under its idempotency key after
/// an earlier run died, so the order may exist already, stored by that run.
async fn create(state: &AppState, body: &[u8], taken_over: bool) -> (StatusCode, Value) {
    let req: CreateRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return bad("bad_input", e),
    };
    if !valid_id(&req.order_id) {
        return bad(
            "bad_input",
            "order_id must be 1..=64 characters of A-Z a-z 0-9 _ . -",
        );
    }
    let Some(provider) = Provider::parse(&req.provider) else {
        return bad("bad_input", "provider must be alipay, wechatpay or stripe");
    };
    let configured = match provider {
        Provider::Alipay => state.alipay.is_some(),
        Provider::Wechatpay => state.config.wechatpay.is_some(),
        Provider::Stripe => state.config.stripe.is_some(),
    };
    if provider == Provider::Wechatpay
        && (req.order_id.len() < 6 || req.order_id.len() > 32 || req.order_id.contains('.'))
    {
        return bad(
            "bad_input",
            "a WeChat Pay order_id (out_trade_no) is 6..=32 characters of A-Z a-z 0-9 _ -",
        );
    }
    if !configured {
        return bad(
            "bad_input",
            format!("provider {} is not configured", provider.as_str()),
        );
    }
    let Ok(currency) = Currency::from_code(&req.currency) else {
        return bad(
            "unknown_currency",
            format!("{:?} is not an ISO 4217 code", req.currency),
        );
    };
    let amount = match Money::parse(&req.amount, currency) {
        Ok(m) => m,
        Err(e) => return bad("invalid_amount", e),
    };
    if req.subject.trim().is_empty() || req.subject.len() > 256 {
        return bad("bad_input", "subject must be 1..=256 bytes");
    }
    let now = now();
    let mut payment = match Payment::new(amount, now) {
        Ok(p) => p,
        Err(e) => return bad("invalid_amount", e),
    };
    // A deadline already passed is refused, unless this request runs again under its
    // idempotency key after an earlier run died: that run may have stored the payment while
    // the deadline was ahead, and then the answer is the payment (checked below).
    let mut expired = false;
    if let Some(at) = req.expires_at {
        if at <= now.as_secs() {
            if !taken_over {
                return bad("bad_input", "expires_at is not in the future");
            }
            expired = true;
        }
        payment = payment.with_deadline(Timestamp::from_secs(at));
    }
    if let Some(policy) = &req.late_success {
        let Some(policy) = payments::parse_late_success(policy) else {
            return bad("bad_input", "late_success must be refund or accept");
        };
        payment = payment.with_late_success(policy);
    }
    let mut pay_url = None;
    if provider == Provider::Alipay {
        let Some(alipay) = &state.alipay else {
            return bad("bad_input", "provider alipay is not configured");
        };
        let request = TradeRequest::PagePay {
            out_trade_no: &req.order_id,
            total_amount: amount,
            subject: &req.subject,
            time_expire: payment.expires_at(),
        };
        match alipay.pay_url(&request, now) {
            Ok(url) => pay_url = Some(url),
            Err(e) => return bad("bad_input", e),
        }
    }
    if expired {
        let refused = bad("bad_input", "expires_at is not in the future");
        return answer_earlier_run(state, &req, provider, &payment, pay_url, refused).await;
    }
    let query_at = (provider == Provider::Alipay)
        .then(|| now.saturating_add(state.config.workers.query_after_secs));
    let new = NewPayment {
        order_id: &req.order_id,
        provider,
        payment: &payment,
        subject: &req.subject,
        query_at,
    };
    let inserted = payments::insert(&state.db, &new, now).await;
    crate::workers::failpoint("create_after_insert");
    match inserted {
        Err(e) => {
            tracing::error!(error = %e, "storing a new payment failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "internal"}),
            )
        }
        // The earlier run of this very request (same key, same body) stored the payment and
        // died before answering: answer as it would have, or the merchant never gets the
        // pay_url. Only if the stored payment is exactly the one asked for.
        Ok(false) if taken_over => {
            let exists = (StatusCode::CONFLICT, json!({"error": "payment_exists"}));
            answer_earlier_run(state, &req, provider, &payment, pay_url, exists).await
        }
        Ok(false) => (StatusCode::CONFLICT, json!({"error": "payment_exists"})),
        Ok(true) => {
            tracing::info!(order_id = %req.order_id, provider = provider.as_str(), "payment created");
            let mut view = payments::view(&req.order_id, provider, &payment);
            if let (Some(url), Some(obj)) = (pay_url, view.as_object_mut()) {
                obj.insert("pay_url".to_owned(), Value::String(url));
            }
            (StatusCode::CREATED, view)
        }
    }
}

/// The answer to a create that runs again under its idempotency key after an earlier run
/// died: that run may have stored the payment before it could answer. If the stored payment
/// is exactly the one asked for, answer as that run would have (`201`, with the `pay_url`, or
/// the merchant never gets it); otherwise `otherwise`.
async fn answer_earlier_run(
    state: &AppState,
    req: &CreateRequest,
    provider: Provider,
    asked: &Payment,
    pay_url: Option<String>,
    otherwise: (StatusCode, Value),
) -> (StatusCode, Value) {
    match stored_as_requested(state, req, provider, asked).await {
        Err(e) => {
            tracing::error!(error = %e, "reading a stored payment failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "internal"}),
            )
        }
        Ok(None) => otherwise,
        Ok(Some(stored)) => {
            tracing::info!(order_id = %req.order_id, "payment created by an earlier run of the request");
            let mut view = stored.view();
            if let (Some(url), Some(obj)) = (pay_url, view.as_object_mut()) {
                obj.insert("pay_url".to_owned(), Value::String(url));
            }
            (StatusCode::CREATED, view)
        }
    }
}

/// The stored payment `req.order_id` if it is exactly the one `req` asks for (provider,
/// amount and currency, deadline, late-success policy, subject), else `None`.
async fn stored_as_requested(
    state: &AppState,
    req: &CreateRequest,
    provider: Provider,
    asked: &Payment,
) -> Result<Option<payments::Stored>, payments::LoadError> {
    let Some(stored) = payments::load(&state.db, &req.order_id).await? else {
        return Ok(None);
    };
    let p = &stored.payment;
    let same = stored.provider == provider
        && p.amount() == asked.amount()
        && p.expires_at() == asked.expires_at()
        && p.late_success() == asked.late_success()
        && payments::subject(&state.db, &req.order_id)
            .await?
            .as_deref()
            == Some(req.subject.as_str());
    Ok(same.then_some(stored))
}

async fn get_payment(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let guarded = match guard(&state, &method, &uri, &headers, &body).await {
        Ok(g) => g,
        Err(response) => return response,
    };
    let (status, value) = match payments::load(&state.db, &order_id).await {
        Err(e) => return internal(e),
        Ok(None) => (StatusCode::NOT_FOUND, json!({"error": "unknown_payment"})),
        Ok(Some(stored)) => (StatusCode::OK, stored.view()),
    };
    finish(&state, guarded, status, value).await
}

/// The merchant API's status for an engine rejection: `422` for an input that can never be
/// applied to this payment (another currency, a zero amount), `409` for one the payment's
/// state refuses (a transition, the balance, a conflict).
pub fn rejection_status(r: &Rejection) -> StatusCode {
    match r {
        Rejection::CurrencyMismatch { .. } | Rejection::InvalidAmount => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        _ => StatusCode::CONFLICT,
    }
}

async fn cancel_payment(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let guarded = match guard(&state, &method, &uri, &headers, &body).await {
        Ok(g) => g,
        Err(response) => return response,
    };
    let Ok(event) = EventId::derived(&[b"merchant.cancel", order_id.as_bytes()]) else {
        return finish(
            &state,
            guarded,
            StatusCode::NOT_FOUND,
            json!({"error": "unknown_payment"}),
        )
        .await;
    };
    let input = Input::cancel(event);
    let result =
        payments::apply::<std::convert::Infallible, _>(&state.db, &order_id, now(), |_, _| {
            Ok(Step::Apply(input))
        })
        .await;
    let (status, value) = match result {
        Err(ApplyError::UnknownPayment) => {
            (StatusCode::NOT_FOUND, json!({"error": "unknown_payment"}))
        }
        Err(e) => {
            return finish(
                &state,
                guarded,
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "internal", "detail": e.to_string()}),
            )
            .await;
        }
        Ok(applied) => match applied.outcome {
            Outcome::Rejected(r) => (
                rejection_status(&r),
                json!({"error": r.code(), "detail": r.to_string()}),
            ),
            _ => {
                tracing::info!(order_id = %order_id, outcome = applied.outcome.name(), "cancel");
                (StatusCode::OK, applied.stored.view())
            }
        },
    };
    finish(&state, guarded, status, value).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundRequest {
    refund_id: String,
    amount: String,
}

async fn refund_payment(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let guarded = match guard(&state, &method, &uri, &headers, &body).await {
        Ok(g) => g,
        Err(response) => return response,
    };
    let (status, value) = request_refund(&state, &order_id, &body).await;
    finish(&state, guarded, status, value).await
}

async fn request_refund(state: &AppState, order_id: &str, body: &[u8]) -> (StatusCode, Value) {
    let req: RefundRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return bad("bad_input", e),
    };
    if !valid_id(&req.refund_id) {
        return bad(
            "bad_input",
            "refund_id must be 1..=64 characters of A-Z a-z 0-9 _ . -",
        );
    }
    let Ok(refund_id) = RefundId::new(req.refund_id.as_bytes()) else {
        return bad("bad_input", "refund_id must be 1..=64 bytes");
    };
    match crate::refunds::request(
        &state.db,
        order_id,
        &req.refund_id,
        refund_id,
        &req.amount,
        now(),
    )
    .await
    {
        Err(e) => {
            tracing::error!(error = %e, "refund request failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "internal"}),
            )
        }
        Ok(crate::refunds::Requested::UnknownPayment) => {
            (StatusCode::NOT_FOUND, json!({"error": "unknown_payment"}))
        }
        Ok(crate::refunds::Requested::BadAmount(detail)) => bad("invalid_amount", detail),
        Ok(crate::refunds::Requested::Refused(status, code, detail)) => {
            (status, json!({"error": code, "detail": detail}))
        }
        Ok(crate::refunds::Requested::Accepted(stored)) => {
            tracing::info!(order_id = %order_id, refund_id = %req.refund_id, "refund requested");
            (StatusCode::ACCEPTED, stored.view())
        }
    }
}

// ------------------------------------------------------------------------------------------
// The providers' side.

fn alipay_reply(state: &AppState, outcome: &str, reply: Reply) -> Response {
    state.metrics.notification("alipay", outcome);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        reply.as_str(),
    )
        .into_response()
}

fn notify_outcome(e: &NotifyError) -> &'static str {
    match e {
        NotifyError::Map(m) => m.code(),
        other => other.code(),
    }
}

async fn notify_alipay(State(state): State<AppState>, body: Bytes) -> Response {
    let Some(alipay) = &state.alipay else {
        return (StatusCode::NOT_FOUND, "alipay is not configured").into_response();
    };
    let mut buf = vec![0u8; body.len()];
    let form: Form = match Form::decode(&body, &mut buf) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "alipay notification: unreadable form");
            return alipay_reply(&state, "bad_form", Reply::Fail);
        }
    };
    let note = match Notification::verify(&form, SignRule::V1, &alipay.config.alipay_public_key) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "alipay notification: bad signature");
            return alipay_reply(&state, "bad_signature", Reply::Fail);
        }
    };
    let order_id = match note.out_trade_no() {
        Ok(id) => id.to_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "alipay notification without out_trade_no");
            return alipay_reply(&state, e.code(), Reply::Fail);
        }
    };
    let merchant = MerchantConfig {
        app_id: &alipay.config.app_id,
        seller_id: &alipay.config.seller_id,
    };
    let result = payments::apply(&state.db, &order_id, now(), |_, facts| {
        match note.to_input(&merchant, facts) {
            Ok(input) => Ok(Step::Apply(input)),
            Err(NotifyError::Map(MapError::NothingToApply)) => Ok(Step::Nothing),
            Err(e) => Err(e),
        }
    })
    .await;
    match result {
        Ok(applied) => {
            let outcome = match &applied.outcome {
                Outcome::Rejected(r) => r.code(),
                other => other.name(),
            };
            tracing::info!(order_id = %order_id, outcome, status = applied.stored.payment.status().name(), "alipay notification");
            alipay_reply(&state, outcome, Reply::for_outcome(&applied.outcome))
        }
        Err(ApplyError::UnknownPayment) => {
            tracing::warn!(order_id = %order_id, "alipay notification for an unknown order");
            alipay_reply(&state, "unknown_payment", Reply::Fail)
        }
        Err(ApplyError::Map(e)) => {
            tracing::warn!(order_id = %order_id, error = %e, "alipay notification refused");
            alipay_reply(&state, notify_outcome(&e), Reply::Fail)
        }
        Err(e) => {
            tracing::error!(order_id = %order_id, error = %e, "alipay notification not processed");
            alipay_reply(&state, "internal", Reply::Fail)
        }
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn return_alipay(State(state): State<AppState>, uri: OriginalUri) -> Response {
    let page = |status: StatusCode, title: &str, text: &str| {
        (
            status,
            Html(format!(
                "<!doctype html><meta charset=utf-8><title>{t}</title><h1>{t}</h1><p>{x}</p>",
                t = html_escape(title),
                x = html_escape(text)
            )),
        )
            .into_response()
    };
    let Some(alipay) = &state.alipay else {
        return page(
            StatusCode::NOT_FOUND,
            "Not configured",
            "Alipay is not configured.",
        );
    };
    let query = uri.0.query().unwrap_or("");
    let mut buf = vec![0u8; query.len()];
    let Ok(form) = Form::<'_>::decode(query.as_bytes(), &mut buf) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Unreadable return",
            "The return address is malformed.",
        );
    };
    let Ok(note) = Notification::verify(&form, SignRule::V1, &alipay.config.alipay_public_key)
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "Unverified return",
            "This return could not be verified.",
        );
    };
    let Ok(order_id) = note.out_trade_no() else {
        return page(
            StatusCode::BAD_REQUEST,
            "Unverified return",
            "The return names no order.",
        );
    };
    let stored = match payments::load(&state.db, order_id).await {
        Ok(Some(s)) => s,
        Ok(None) => return page(StatusCode::NOT_FOUND, "Unknown order", "No such order."),
        Err(e) => return internal(e),
    };
    let merchant = MerchantConfig {
        app_id: &alipay.config.app_id,
        seller_id: &alipay.config.seller_id,
    };
    let ids = stored.requested_ids();
    let facts =
        paystate::provider::Facts::of(order_id, &stored.payment).with_requested_refunds(&ids);
    if let Err(e) = paystate::provider::alipay::return_to_input(&note, &merchant, &facts) {
        tracing::warn!(order_id = %order_id, error = %e, "alipay return refused");
        return page(
            StatusCode::BAD_REQUEST,
            "Unverified return",
            "This return does not match the order.",
        );
    }
    // The return is for the customer's eyes only: it never changes the payment (the
    // notification or a query does). Show what the payment is now.
    page(
        StatusCode::OK,
        &format!("Order {order_id}"),
        &format!(
            "Status: {}. Amount: {} {}.",
            stored.payment.status().name(),
            stored.payment.amount(),
            stored.payment.currency()
        ),
    )
}

async fn notify_wechatpay(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use paystate::provider::wechatpay::{
        Keys, Merchant, NotificationResource, Reply as WxReply, verify_notification,
    };
    use paystate::webhook::wechatpay::Headers;
    let reply = |state: &AppState, outcome: &str, r: WxReply| {
        state.metrics.notification("wechatpay", outcome);
        let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = r.body().to_string();
        if body.is_empty() {
            status.into_response()
        } else {
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
    };
    let Some(wx) = &state.config.wechatpay else {
        return (StatusCode::NOT_FOUND, "wechatpay is not configured").into_response();
    };
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let wx_headers = match Headers::from_pairs(pairs) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "wechatpay notification: signature headers");
            return (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"code":"FAIL","message":"signature_headers"}"#,
            )
                .into_response();
        }
    };
    let keys = Keys {
        platform: &wx.platform_keys,
        api_v3: &wx.apiv3_key,
    };
    let mut buf = vec![0u8; body.len()];
    let verified = {
        let mut guard = match state.wechat_guard.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        verify_notification(&wx_headers, &body, &keys, &mut guard, now(), &mut buf)
    };
    let note = match verified {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "wechatpay notification refused");
            return reply(&state, e.code(), WxReply::for_error(&e));
        }
    };
    let order_id = match note.message().resource() {
        NotificationResource::Transaction(t) => t.out_trade_no(),
        NotificationResource::Refund(r) => r.out_trade_no(),
        _ => None,
    };
    let Some(order_id) = order_id.map(str::to_owned) else {
        return reply(
            &state,
            "unknown_status",
            WxReply::for_map_error(&MapError::UnknownStatus),
        );
    };
    let merchant = Merchant {
        mchid: &wx.mchid,
        appid: &wx.appid,
    };
    let result = payments::apply(&state.db, &order_id, now(), |_, facts| {
        match note.to_input(&merchant, facts) {
            Ok(input) => Ok(Step::Apply(input)),
            Err(MapError::NothingToApply) | Err(MapError::RefundFailed) => Ok(Step::Nothing),
            Err(e) => Err(e),
        }
    })
    .await;
    match result {
        Ok(applied) => {
            let name = match &applied.outcome {
                Outcome::Rejected(r) => r.code(),
                o => o.name(),
            };
            reply(&state, name, WxReply::for_outcome(&applied.outcome))
        }
        Err(ApplyError::UnknownPayment) => reply(
            &state,
            "unknown_payment",
            WxReply::Fail {
                status: 500,
                message: "unknown_payment",
            },
        ),
        Err(ApplyError::Map(e)) => reply(&state, e.code(), WxReply::for_map_error(&e)),
        Err(e) => {
            tracing::error!(error = %e, "wechatpay notification not processed");
            reply(
                &state,
                "internal",
                WxReply::Fail {
                    status: 500,
                    message: "internal",
                },
            )
        }
    }
}

async fn webhook_stripe(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use paystate::provider::stripe::{Merchant, Reply as StripeReply, verify};
    let reply = |state: &AppState, outcome: &str, r: StripeReply| {
        state.metrics.notification("stripe", outcome);
        match r {
            StripeReply::Received => StatusCode::OK.into_response(),
            StripeReply::Fail { status, code } => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                error(status, code)
            }
        }
    };
    let Some(stripe) = &state.config.stripe else {
        return (StatusCode::NOT_FOUND, "stripe is not configured").into_response();
    };
    let key = &stripe.webhook_key;
    let Some(signature) = header_str(&headers, "stripe-signature") else {
        return reply(
            &state,
            "missing_signature",
            StripeReply::Fail {
                status: 400,
                code: "missing_signature",
            },
        );
    };
    let event = match verify(
        key,
        signature,
        &body,
        now(),
        paystate::Duration::DEFAULT_TOLERANCE,
    ) {
        Ok(e) => e,
        Err(e) => return reply(&state, e.code(), StripeReply::for_error(&e)),
    };
    let merchant = Merchant::DEFAULT;
    let order_id = match event.message().order_id(&merchant) {
        Ok(id) => id.to_owned(),
        Err(MapError::MissingField(_)) => {
            // An event about an object this server did not create: nothing to do.
            return reply(&state, "nothing_to_apply", StripeReply::Received);
        }
        Err(e) => return reply(&state, e.code(), StripeReply::for_map_error(&e)),
    };
    let result = payments::apply(&state.db, &order_id, now(), |_, facts| {
        match event.to_input(&merchant, facts) {
            Ok(input) => Ok(Step::Apply(input)),
            Err(MapError::NothingToApply) | Err(MapError::RefundFailed) => Ok(Step::Nothing),
            Err(e) => Err(e),
        }
    })
    .await;
    match result {
        Ok(applied) => {
            let name = match &applied.outcome {
                Outcome::Rejected(r) => r.code(),
                o => o.name(),
            };
            reply(&state, name, StripeReply::for_outcome(&applied.outcome))
        }
        Err(ApplyError::UnknownPayment) => reply(
            &state,
            "unknown_payment",
            StripeReply::Fail {
                status: 500,
                code: "unknown_payment",
            },
        ),
        Err(ApplyError::Map(e)) => reply(&state, e.code(), StripeReply::for_map_error(&e)),
        Err(e) => {
            tracing::error!(error = %e, "stripe event not processed");
            reply(
                &state,
                "internal",
                StripeReply::Fail {
                    status: 500,
                    code: "internal",
                },
            )
        }
    }
}
