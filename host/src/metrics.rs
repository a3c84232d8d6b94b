//! The host's metrics, rendered at `GET /metrics` in Prometheus's text format.
//!
//! One registry per process (the counters describe this process, as its CPU time does), with a
//! typed label set per family. Labels name only things the operator controls and that are
//! bounded: connector and plugin names and versions, job kinds, outcomes and error kinds. No
//! label names a tenant, a number, a contact or an endpoint.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`render`]'s output (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What happened to one webhook request at ingress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IngressOutcome {
    /// Authentic, stored and acknowledged.
    Accepted,
    /// Answered by the connector itself (a handshake).
    Responded,
    /// Refused by the connector (bad signature, wrong token).
    Rejected,
    /// Over the body limit.
    TooLarge,
    /// Refused by a rate limit (per client or per endpoint).
    RateLimited,
    /// Refused because too much work is queued.
    Backlogged,
    /// No such endpoint.
    NotFound,
    /// The host failed (database, connector not loaded, connector call failed).
    Failed,
    /// A route self-test the host sent itself, answered before any connector runs.
    SelfTest,
}

impl IngressOutcome {
    /// Its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            IngressOutcome::Accepted => "accepted",
            IngressOutcome::Responded => "responded",
            IngressOutcome::Rejected => "rejected",
            IngressOutcome::TooLarge => "too_large",
            IngressOutcome::RateLimited => "rate_limited",
            IngressOutcome::Backlogged => "backlogged",
            IngressOutcome::NotFound => "not_found",
            IngressOutcome::Failed => "failed",
            IngressOutcome::SelfTest => "self_test",
        }
    }
}

/// Labels of ingress requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct IngressLabels {
    connector: String,
    outcome: &'static str,
}

/// A connector's name alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ConnectorLabel {
    connector: String,
}

/// Labels of finished jobs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct JobLabels {
    kind: String,
    outcome: &'static str,
}

/// Labels of the job queue's gauges.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QueueLabels {
    kind: String,
    state: &'static str,
}

/// A job kind alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// Labels of plugin calls.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PluginLabels {
    plugin: String,
    version: String,
    outcome: &'static str,
}

/// Labels of sends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SendLabels {
    connector: String,
    result: &'static str,
}

/// Labels of database waits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ModeLabel {
    mode: &'static str,
}

/// A histogram family with the same buckets for every label set.
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Buckets from 0.5 ms to about 33 s, for latencies and durations.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

/// Buckets from 1 to 256, for group sizes.
fn sizes() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 9))
}

/// Every family the host updates, registered once.
struct Metrics {
    registry: Registry,
    ingress: Family<IngressLabels, Counter>,
    ack: Histograms<ConnectorLabel>,
    jobs: Histograms<JobLabels>,
    queue: Family<QueueLabels, Gauge>,
    oldest_due: Family<KindLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    plugin_calls: Histograms<PluginLabels>,
    sends: Family<SendLabels, Counter>,
    rate_waits: Histograms<ConnectorLabel>,
    rate_deferrals: Family<ConnectorLabel, Counter>,
    db_waits: Histograms<ModeLabel>,
    receipt_groups: Histogram,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("switchyard");
        let ingress = Family::<IngressLabels, Counter>::default();
        registry.register(
            "ingress_requests",
            "Webhook requests by connector and outcome",
            ingress.clone(),
        );
        let ack = Histograms::<ConnectorLabel>::new_with_constructor(seconds);
        registry.register_with_unit(
            "ingress_ack",
            "Time from a webhook request's arrival to its acknowledgement, for accepted requests",
            Unit::Seconds,
            ack.clone(),
        );
        let jobs = Histograms::<JobLabels>::new_with_constructor(seconds);
        registry.register_with_unit(
            "job_duration",
            "How long one job ran, by kind and outcome (ok, retry, deferred, dead)",
            Unit::Seconds,
            jobs.clone(),
        );
        let queue = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "jobs",
            "Unfinished and dead jobs by kind and state (queued, running, dead), read at scrape",
            queue.clone(),
        );
        let oldest_due = Family::<KindLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register_with_unit(
            "jobs_oldest_due_age",
            "How long the oldest due, queued job of each kind has waited, read at scrape",
            Unit::Seconds,
            oldest_due.clone(),
        );
        let plugin_calls = Histograms::<PluginLabels>::new_with_constructor(seconds);
        registry.register_with_unit(
            "plugin_call",
            "Plugin calls by plugin, version and outcome (ok, trap, timeout, wall_clock, out_of_memory, busy)",
            Unit::Seconds,
            plugin_calls.clone(),
        );
        let sends = Family::<SendLabels, Counter>::default();
        registry.register(
            "sends",
            "Sends to providers by connector and result (ok, plugin-failed, or the provider error's kind)",
            sends.clone(),
        );
        let rate_waits = Histograms::<ConnectorLabel>::new_with_constructor(seconds);
        registry.register_with_unit(
            "send_rate_wait",
            "How long a send waited for its connection's send-rate slot",
            Unit::Seconds,
            rate_waits.clone(),
        );
        let rate_deferrals = Family::<ConnectorLabel, Counter>::default();
        registry.register(
            "send_rate_deferrals",
            "Sends put back in the queue because their connection's send rate was booked",
            rate_deferrals.clone(),
        );
        let db_waits = Histograms::<ModeLabel>::new_with_constructor(seconds);
        registry.register_with_unit(
            "database_wait",
            "Time to get a database connection (and on SQLite the write turn) for a transaction",
            Unit::Seconds,
            db_waits.clone(),
        );
        let receipt_groups = sizes();
        registry.register(
            "receipt_group_size",
            "Accepted webhook requests committed together by the receipt writer",
            receipt_groups.clone(),
        );
        let build = Family::<VersionLabel, Gauge>::default();
        build
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build", "The running build (always 1)", build);
        Metrics {
            registry,
            ingress,
            ack,
            jobs,
            queue,
            oldest_due,
            plugin_calls,
            sends,
            rate_waits,
            rate_deferrals,
            db_waits,
            receipt_groups,
        }
    }
}

/// The build's version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

/// This process's metrics.
static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Count one webhook request; `connector` is `None` when no endpoint matched. Accepted requests
/// also record how long the provider waited for the acknowledgement.
pub fn ingress(connector: Option<&str>, outcome: IngressOutcome, waited: Duration) {
    let connector = connector.unwrap_or("none").to_string();
    if outcome == IngressOutcome::Accepted {
        METRICS
            .ack
            .get_or_create(&ConnectorLabel {
                connector: connector.clone(),
            })
            .observe(waited.as_secs_f64());
    }
    METRICS
        .ingress
        .get_or_create(&IngressLabels {
            connector,
            outcome: outcome.as_str(),
        })
        .inc();
}

/// Record one finished job run of `kind` (one of the host's job kinds: only the host writes
/// them); `outcome` is `ok`, `retry`, `deferred` or `dead`.
pub fn job(kind: &str, outcome: &'static str, took: Duration) {
    METRICS
        .jobs
        .get_or_create(&JobLabels {
            kind: kind.to_string(),
            outcome,
        })
        .observe(took.as_secs_f64());
}

/// One row of the job queue's summary: kind, state, how many, and for queued jobs the earliest
/// `run_at` among those due (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRow {
    /// The job kind.
    pub kind: String,
    /// `queued`, `running` or `dead`.
    pub state: String,
    /// How many.
    pub count: i64,
    /// For queued jobs, the earliest `run_at` of those due now.
    pub oldest_due_ms: Option<i64>,
}

/// Replace the queue gauges with `rows`, read from the database at `now_ms`; every one of
/// `kinds` is shown, at zero when it has no row.
pub fn set_queue(kinds: &[&str], rows: &[QueueRow], now_ms: i64) {
    METRICS.queue.clear();
    METRICS.oldest_due.clear();
    for kind in kinds {
        for state in ["queued", "running", "dead"] {
            let kind = kind.to_string();
            METRICS
                .queue
                .get_or_create(&QueueLabels { kind, state })
                .set(0);
        }
        let kind = kind.to_string();
        METRICS
            .oldest_due
            .get_or_create(&KindLabel { kind })
            .set(0.0);
    }
    for row in rows {
        let state = match row.state.as_str() {
            "queued" => "queued",
            "running" => "running",
            "dead" => "dead",
            _ => continue,
        };
        let kind = row.kind.clone();
        METRICS
            .queue
            .get_or_create(&QueueLabels {
                kind: kind.clone(),
                state,
            })
            .inc_by(row.count);
        if let Some(at) = row.oldest_due_ms {
            let age = ((now_ms - at).max(0) as f64) / 1000.0;
            let gauge = METRICS.oldest_due.get_or_create(&KindLabel { kind });
            if age > gauge.get() {
                gauge.set(age);
            }
        }
    }
}

/// Record one plugin call: `outcome` is `ok`, `trap`, `timeout`, `wall_clock`,
/// `out_of_memory` or `busy`.
pub fn plugin_call(plugin: &str, version: &str, outcome: &'static str, took: Duration) {
    METRICS
        .plugin_calls
        .get_or_create(&PluginLabels {
            plugin: plugin.to_string(),
            version: version.to_string(),
            outcome,
        })
        .observe(took.as_secs_f64());
}

/// Count one send through `connector`: `result` is `ok`, `plugin-failed` or the provider
/// error's kind (`rate-limited`, `window-closed`, …).
pub fn send(connector: &str, result: &'static str) {
    METRICS
        .sends
        .get_or_create(&SendLabels {
            connector: connector.to_string(),
            result,
        })
        .inc();
}

/// Record a send's wait for its connection's rate slot.
pub fn send_rate_wait(connector: &str, waited: Duration) {
    METRICS
        .rate_waits
        .get_or_create(&ConnectorLabel {
            connector: connector.to_string(),
        })
        .observe(waited.as_secs_f64());
}

/// Count a send put back because its connection's rate was booked too far ahead.
pub fn send_rate_deferred(connector: &str) {
    METRICS
        .rate_deferrals
        .get_or_create(&ConnectorLabel {
            connector: connector.to_string(),
        })
        .inc();
}

/// Record the wait for a transaction's connection; `write` for a write.
pub fn database_wait(write: bool, waited: Duration) {
    METRICS
        .db_waits
        .get_or_create(&ModeLabel {
            mode: if write { "write" } else { "read" },
        })
        .observe(waited.as_secs_f64());
}

/// Record how many accepted requests one receipt-writer commit carried.
pub fn receipt_group(size: usize) {
    METRICS.receipt_groups.observe(size as f64);
}

/// Every metric in Prometheus's text format.
pub fn render() -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &METRICS.registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample `line_start` (name and labels) in `text`.
    fn sample(text: &str, line_start: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(line_start))
            .and_then(|v| v.trim().parse().ok())
    }

    #[test]
    fn counts_show_up_in_the_text_format_with_bounded_labels() {
        let before = render();
        let key = "switchyard_ingress_requests_total{connector=\"unit-test\",outcome=\"accepted\"}";
        let n = sample(&before, key).unwrap_or(0.0);
        ingress(
            Some("unit-test"),
            IngressOutcome::Accepted,
            Duration::from_millis(3),
        );
        job("send", "ok", Duration::from_millis(20));
        job("unit-test-kind", "dead", Duration::from_millis(1));
        plugin_call("unit-test", "1.2.3", "trap", Duration::from_micros(50));
        let text = render();
        assert_eq!(sample(&text, key), Some(n + 1.0));
        assert!(
            text.contains("switchyard_ingress_ack_seconds_count{connector=\"unit-test\"}"),
            "{text}"
        );
        assert!(text.contains(
            "switchyard_job_duration_seconds_count{kind=\"unit-test-kind\",outcome=\"dead\"}"
        ));
        assert!(text.contains(
            "switchyard_plugin_call_seconds_count{plugin=\"unit-test\",version=\"1.2.3\",outcome=\"trap\"}"
        ));
        assert!(text.contains("# TYPE switchyard_ingress_requests_total counter"));
        assert!(text.contains("switchyard_build{version="));
    }

    #[test]
    fn the_queue_gauges_are_replaced_on_each_read() {
        let rows = [
            QueueRow {
                kind: "decide".into(),
                state: "queued".into(),
                count: 7,
                oldest_due_ms: Some(1_000),
            },
            QueueRow {
                kind: "unit-kind".into(),
                state: "queued".into(),
                count: 2,
                oldest_due_ms: Some(4_000),
            },
        ];
        set_queue(&["decide", "send"], &rows, 11_000);
        let text = render();
        assert_eq!(
            sample(&text, "switchyard_jobs{kind=\"decide\",state=\"queued\"}"),
            Some(7.0)
        );
        assert_eq!(
            sample(
                &text,
                "switchyard_jobs_oldest_due_age_seconds{kind=\"decide\"}"
            ),
            Some(10.0)
        );
        assert_eq!(
            sample(
                &text,
                "switchyard_jobs{kind=\"unit-kind\",state=\"queued\"}"
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, "switchyard_jobs{kind=\"send\",state=\"dead\"}"),
            Some(0.0)
        );
        set_queue(&["decide", "send"], &[], 11_000);
        let text = render();
        assert_eq!(
            sample(&text, "switchyard_jobs{kind=\"decide\",state=\"queued\"}"),
            Some(0.0)
        );
    }
}
