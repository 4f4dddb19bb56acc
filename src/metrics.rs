//! The service's own measurements, rendered as Prometheus text at `GET /metrics`.
//!
//! Counters are atomics shared by the parts that count; nothing on the hot path locks.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::historian::HistorianStats;
use crate::telemetry::{MessageKind, RejectReason};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)] // The variant names are the label values.
pub enum Queue {
    ingest,
    commit,
    /// Acknowledgements of committed messages waiting for the broker connection.
    acks,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FromLabel {
    pub from: &'static str,
}

/// A peer instance of the exchange, by its configured name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabel {
    pub peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerOutcomeLabel {
    pub peer: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    pub queue: Queue,
}

pub struct Metrics {
    registry: Registry,
    messages: Family<KindLabel, Counter>,
    rejects: Family<ReasonLabel, Counter>,
    pub duplicates: Counter,
    /// Reports in committed transactions: what a benchmark may call stored.
    pub committed_reports: Counter,
    /// Devices restored at this start, by where their state came from.
    tracks_restored: Family<FromLabel, Gauge>,
    queue_depth: Family<QueueLabel, Gauge>,
    /// Seconds from the edge to the pipeline for the last report handled.
    pub pipeline_lag_seconds: Gauge<f64, AtomicU64>,
    pub commit_seconds: Histogram,
    pub commit_failures: Counter,
    geofence_events: Family<KindLabel, Counter>,
    historian: HistorianGauges,
    mqtt_connects: Family<OutcomeLabel, Counter>,
    /// 1 while messages wait and nothing has been committed for the configured time.
    pub intake_stalled: Gauge,
    /// Dead-letter payloads cut to their prefix, and dead letters removed for age or budget.
    dead_letters_trimmed: Family<OutcomeLabel, Counter>,
    /// Messages waiting in each peer's outbox, and the age of the oldest in seconds.
    exchange_waiting: Family<PeerLabel, Gauge>,
    exchange_oldest_seconds: Family<PeerLabel, Gauge>,
    /// Messages sent to each peer by what became of them (applied, duplicate, refused), and
    /// failed deliveries (failed).
    exchange_sent: Family<PeerOutcomeLabel, Counter>,
}

/// The historian's own figures, copied in at scrape time. Its running totals are counters
/// (a scraper computes rates from them); the rest are levels.
#[derive(Default)]
struct HistorianGauges {
    up: Gauge,
    queued_lines: Gauge,
    spilled_bytes: Gauge,
    spilled_segments: Gauge,
    dropped_lines: Counter,
    written_lines: Counter,
    lag_seconds: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("caravan");
        let messages = Family::<KindLabel, Counter>::default();
        let rejects = Family::<ReasonLabel, Counter>::default();
        let duplicates = Counter::default();
        let committed_reports = Counter::default();
        let queue_depth = Family::<QueueLabel, Gauge>::default();
        let tracks_restored = Family::<FromLabel, Gauge>::default();
        let pipeline_lag_seconds = Gauge::<f64, AtomicU64>::default();
        let commit_seconds = Histogram::new(exponential_buckets(0.0002, 2.0, 16));
        let commit_failures = Counter::default();
        registry.register(
            "messages",
            "Accepted reports by message kind",
            messages.clone(),
        );
        registry.register(
            "rejects",
            "Refused messages (or backlog fixes) by reason",
            rejects.clone(),
        );
        registry.register(
            "duplicates",
            "Reports dropped because their device and seq were already seen",
            duplicates.clone(),
        );
        registry.register(
            "committed_reports",
            "Reports the store has committed (counted after the commit, unlike messages)",
            committed_reports.clone(),
        );
        registry.register(
            "tracks_restored",
            "Devices whose tracking state this start restored: from the state saved at the last clean stop, or by replaying their last reports",
            tracks_restored.clone(),
        );
        registry.register(
            "queue_depth",
            "Items waiting in a bounded internal queue",
            queue_depth.clone(),
        );
        registry.register(
            "pipeline_lag_seconds",
            "Time from receipt at the edge to the pipeline, for the last report",
            pipeline_lag_seconds.clone(),
        );
        registry.register(
            "store_commit_seconds",
            "Duration of one group commit to the store",
            commit_seconds.clone(),
        );
        registry.register(
            "store_commit_failures",
            "Group commits that failed and were retried",
            commit_failures.clone(),
        );
        let geofence_events = Family::<KindLabel, Counter>::default();
        registry.register(
            "geofence_events",
            "Events the geofence engine raised, by kind",
            geofence_events.clone(),
        );
        let historian = HistorianGauges::default();
        let h = &historian;
        registry.register(
            "historian_up",
            "1 while the last historian write succeeded",
            h.up.clone(),
        );
        registry.register(
            "historian_queued_lines",
            "Historian lines held in memory",
            h.queued_lines.clone(),
        );
        registry.register(
            "historian_spilled_bytes",
            "Historian spill on disk",
            h.spilled_bytes.clone(),
        );
        registry.register(
            "historian_spilled_segments",
            "Historian spill segments on disk",
            h.spilled_segments.clone(),
        );
        registry.register(
            "historian_dropped_lines",
            "Historian lines lost (queue full or spill budget exceeded)",
            h.dropped_lines.clone(),
        );
        registry.register(
            "historian_written_lines",
            "Historian lines accepted by InfluxDB",
            h.written_lines.clone(),
        );
        registry.register(
            "historian_lag_seconds",
            "Age of the oldest historian line not yet written",
            h.lag_seconds.clone(),
        );
        let mqtt_connects = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "mqtt_connects",
            "Connections to the embedded MQTT endpoint, by outcome",
            mqtt_connects.clone(),
        );
        let intake_stalled = Gauge::default();
        registry.register(
            "intake_stalled",
            "1 while messages wait and nothing has been committed for [ingest] stall_after_s",
            intake_stalled.clone(),
        );
        let dead_letters_trimmed = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "dead_letters_trimmed",
            "Dead letters cut to a prefix (payload_cut) or deleted (expired, over_budget)",
            dead_letters_trimmed.clone(),
        );
        let exchange_waiting = Family::<PeerLabel, Gauge>::default();
        registry.register(
            "exchange_outbox_waiting",
            "Messages waiting in a peer instance's outbox",
            exchange_waiting.clone(),
        );
        let exchange_oldest_seconds = Family::<PeerLabel, Gauge>::default();
        registry.register(
            "exchange_outbox_oldest_seconds",
            "Age of the oldest message waiting for a peer instance",
            exchange_oldest_seconds.clone(),
        );
        let exchange_sent = Family::<PeerOutcomeLabel, Counter>::default();
        registry.register(
            "exchange_sent",
            "Messages sent to a peer instance by outcome (applied, duplicate, refused), and failed deliveries",
            exchange_sent.clone(),
        );
        // Every label is present from the start so dashboards show zeros, not gaps.
        for kind in MessageKind::ALL {
            let _ = messages.get_or_create(&KindLabel {
                kind: kind.as_str(),
            });
        }
        for reason in RejectReason::ALL {
            let _ = rejects.get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            });
        }
        Self {
            registry,
            messages,
            rejects,
            duplicates,
            committed_reports,
            tracks_restored,
            queue_depth,
            pipeline_lag_seconds,
            commit_seconds,
            commit_failures,
            geofence_events,
            historian,
            mqtt_connects,
            intake_stalled,
            dead_letters_trimmed,
            exchange_waiting,
            exchange_oldest_seconds,
            exchange_sent,
        }
    }

    /// A peer's outbox as last read.
    pub fn set_exchange_outbox(&self, peer: &str, waiting: i64, oldest_s: i64) {
        let label = PeerLabel { peer: peer.into() };
        self.exchange_waiting.get_or_create(&label).set(waiting);
        self.exchange_oldest_seconds
            .get_or_create(&label)
            .set(oldest_s);
    }

    pub fn exchange_sent(&self, peer: &str, outcome: &'static str, n: u64) {
        let label = PeerOutcomeLabel {
            peer: peer.into(),
            outcome,
        };
        self.exchange_sent.get_or_create(&label).inc_by(n);
    }

    pub fn mqtt_connect(&self, outcome: &'static str) {
        self.mqtt_connects
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    pub fn dead_letters_trimmed(&self, trimmed: &crate::store::Trimmed) {
        for (outcome, n) in [
            ("payload_cut", trimmed.payloads_cut),
            ("expired", trimmed.expired),
            ("over_budget", trimmed.over_budget),
        ] {
            if n > 0 {
                self.dead_letters_trimmed
                    .get_or_create(&OutcomeLabel { outcome })
                    .inc_by(n as u64);
            }
        }
    }

    pub fn mqtt_connects_for(&self, outcome: &'static str) -> u64 {
        self.mqtt_connects
            .get_or_create(&OutcomeLabel { outcome })
            .get()
    }

    pub fn message(&self, kind: MessageKind) {
        self.messages
            .get_or_create(&KindLabel {
                kind: kind.as_str(),
            })
            .inc();
    }

    pub fn reject(&self, reason: RejectReason) {
        self.rejects
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    pub fn rejects_for(&self, reason: RejectReason) -> u64 {
        self.rejects
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .get()
    }

    /// How this start restored its devices' state.
    pub fn set_tracks_restored(&self, saved: usize, replayed: usize) {
        for (from, n) in [("saved", saved), ("replayed", replayed)] {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            self.tracks_restored
                .get_or_create(&FromLabel { from })
                .set(n);
        }
    }

    pub fn set_queue_depth(&self, queue: Queue, depth: usize) {
        self.queue_depth
            .get_or_create(&QueueLabel { queue })
            .set(depth as i64);
    }

    pub fn observe_historian(&self, stats: &HistorianStats) {
        let h = &self.historian;
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        h.up.set(i64::from(stats.enabled && stats.up));
        h.queued_lines.set(count(stats.queued_lines));
        h.spilled_bytes.set(count(stats.spilled_bytes));
        h.spilled_segments.set(count(stats.spilled_segments));
        // The historian owns these totals; the counters only mirror them (they never go down).
        h.dropped_lines
            .inner()
            .store(stats.dropped_lines, Ordering::Relaxed);
        h.written_lines
            .inner()
            .store(stats.written_lines, Ordering::Relaxed);
        h.lag_seconds.set(stats.lag_seconds);
    }

    pub fn geofence_event(&self, kind: &'static str) {
        self.geofence_events
            .get_or_create(&KindLabel { kind })
            .inc();
    }

    /// OpenMetrics text, for scrapers that ask for it.
    pub fn render_openmetrics(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The classic Prometheus text format (0.0.4), for every other client (`curl`, `promtool`).
    pub fn render(&self) -> String {
        classic_text(&self.render_openmetrics())
    }
}

/// OpenMetrics names a counter family without its `_total` suffix, which the classic format
/// reads as a family with no samples and a sample with no help; and it ends with `# EOF`,
/// which the classic format does not have. Everything else is the same text.
pub fn classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find(|prefix| line.starts_with(prefix));
        match meta {
            Some(prefix) => {
                let rest = &line[prefix.len()..];
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let suffix = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                out.push_str(&format!("{prefix}{name}{suffix} {tail}"));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classic_text_names_counter_families_by_their_samples_and_has_no_eof() {
        let metrics = Metrics::new();
        metrics.message(MessageKind::ALL[0]);
        let text = metrics.render();
        assert!(
            text.contains("# TYPE caravan_messages_total counter\n"),
            "{text}"
        );
        assert!(text.contains("# HELP caravan_messages_total "), "{text}");
        assert!(
            text.contains("# TYPE caravan_pipeline_lag_seconds gauge\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE caravan_historian_dropped_lines_total counter\n"));
        assert!(!text.contains("# EOF"), "{text}");
        assert!(!text.contains("milliseconds"), "{text}");
        assert!(metrics.render_openmetrics().ends_with("# EOF\n"));
    }

    #[test]
    fn every_family_has_help() {
        let text = Metrics::new().render();
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split(' ').nth(2).unwrap_or_default();
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} has no help"
            );
        }
    }
}
