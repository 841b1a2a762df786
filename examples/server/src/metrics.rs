//! Prometheus metrics (`GET /metrics`, text exposition format), with `prometheus-client`.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `route` and `status` of an HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The matched route (`/v1/payments/{order_id}`), or `unmatched`.
    pub route: String,
    /// The HTTP status code.
    pub status: u16,
}

/// `route` of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The matched route.
    pub route: String,
}

/// `provider` and `outcome` of a notification.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    /// `alipay`, `wechatpay`, `stripe`.
    pub provider: String,
    /// `applied`, `duplicate`, `ignored`, `rejected`, `nothing_to_apply`, or the refusal's
    /// code (`bad_signature`, `unknown_payment`, `wrong_merchant`…).
    pub outcome: String,
}

/// `kind` of an outbox effect.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EffectLabels {
    /// `close_trade` or `refund`.
    pub kind: String,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// `paystate_http_requests_total{route,status}`.
    pub requests: Family<RequestLabels, Counter>,
    /// `paystate_http_request_duration_seconds{route}`.
    pub latency: Family<RouteLabels, Histogram>,
    /// `paystate_notifications_total{provider,outcome}`.
    pub notifications: Family<NotificationLabels, Counter>,
    /// `paystate_outbox_backlog`: open outbox rows, as last counted by this instance.
    pub outbox_backlog: Gauge,
    /// `paystate_outbox_failures_total{kind}`: attempts that failed (provider down, an error
    /// answer, a refused confirmation); the row is retried with backoff.
    pub outbox_failures: Family<EffectLabels, Counter>,
    /// `paystate_outbox_done_total{kind}`: effects carried out and confirmed.
    pub outbox_done: Family<EffectLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("paystate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route, in seconds",
            latency.clone(),
        );
        let notifications = Family::<NotificationLabels, Counter>::default();
        registry.register(
            "notifications",
            "Provider notifications by provider and outcome",
            notifications.clone(),
        );
        let outbox_backlog = Gauge::default();
        registry.register("outbox_backlog", "Open outbox rows", outbox_backlog.clone());
        let outbox_failures = Family::<EffectLabels, Counter>::default();
        registry.register(
            "outbox_failures",
            "Outbox attempts that failed and will be retried",
            outbox_failures.clone(),
        );
        let outbox_done = Family::<EffectLabels, Counter>::default();
        registry.register(
            "outbox_done",
            "Outbox effects carried out and confirmed",
            outbox_done.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            notifications,
            outbox_backlog,
            outbox_failures,
            outbox_done,
        }
    }

    /// Counts one notification.
    pub fn notification(&self, provider: &str, outcome: &str) {
        self.notifications
            .get_or_create(&NotificationLabels {
                provider: provider.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = match self.registry.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}
