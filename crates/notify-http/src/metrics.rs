//! Metrics per target (label `target`), names from constants so dashboards can rely on
//! them.

/// Notifications generated from the event log.
pub const ENQUEUED: &str = "worklane_notify_enqueued_total";
/// Notifications the target accepted (2xx).
pub const DELIVERED: &str = "worklane_notify_delivered_total";
/// Notifications that failed for good (kept as failed, resendable).
pub const FAILED: &str = "worklane_notify_failed_total";
/// Failed attempts that will be retried.
pub const RETRIED: &str = "worklane_notify_retried_total";
/// Time from sending a request to its answer (or failure), in seconds.
pub const LATENCY: &str = "worklane_notify_attempt_seconds";
/// Pending and held notifications (refreshed every few seconds).
pub const BACKLOG: &str = "worklane_notify_backlog";

/// Describes the metrics once (for Prometheus HELP lines).
pub fn describe() {
    metrics::describe_counter!(ENQUEUED, "HTTP notifications generated from the event log");
    metrics::describe_counter!(DELIVERED, "HTTP notifications the target accepted");
    metrics::describe_counter!(
        FAILED,
        "HTTP notifications that failed after every allowed attempt"
    );
    metrics::describe_counter!(
        RETRIED,
        "HTTP notification attempts that failed and will be retried"
    );
    metrics::describe_histogram!(
        LATENCY,
        metrics::Unit::Seconds,
        "HTTP notification attempt latency"
    );
    metrics::describe_gauge!(BACKLOG, "Pending and held HTTP notifications");
}

/// A target's metric handles, looked up once (a lookup per request costs more than the
/// update).
#[derive(Debug, Clone)]
pub struct TargetMetrics {
    pub enqueued: metrics::Counter,
    pub delivered: metrics::Counter,
    pub failed: metrics::Counter,
    pub retried: metrics::Counter,
    pub latency: metrics::Histogram,
    pub backlog: metrics::Gauge,
}

impl TargetMetrics {
    /// The handles of target `id`.
    pub fn new(id: &str) -> Self {
        let label = || [("target", id.to_owned())];
        Self {
            enqueued: metrics::counter!(ENQUEUED, &label()),
            delivered: metrics::counter!(DELIVERED, &label()),
            failed: metrics::counter!(FAILED, &label()),
            retried: metrics::counter!(RETRIED, &label()),
            latency: metrics::histogram!(LATENCY, &label()),
            backlog: metrics::gauge!(BACKLOG, &label()),
        }
    }
}
