//! What `/metrics` exports and `/api/v1/telemetry/summary` shows: the server's own HTTP traffic,
//! its server-side inference, and the telemetry browsers and edges post.
//!
//! Inference figures are kept per (model, version, runtime, node) as [`Series`]: counts by
//! outcome, the latency histogram ([`LATENCY_BUCKETS_SECONDS`]), the latest drift snapshot, and
//! per-minute slices of the last hour for the page's charts. `/metrics` exports the server's own
//! inference (`runtime="wasmtime"`, `node="control-plane"`) and the browsers' (`runtime="browser"`,
//! all browsers as `node="browser"`, so client ids never become label values). Edges are scraped
//! by Prometheus directly; what they push is kept for the summary (and in the store), not
//! exported again, so no request is counted twice.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::Mutex;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use model_wasm::telemetry::{LATENCY_BUCKETS_SECONDS, LatencyHistogram, TelemetryReport};
use serde::{Deserialize, Serialize};

/// The `node` label of the server's own inference.
pub(crate) const SERVER_NODE: &str = "control-plane";
/// The `node` label all browsers share.
pub(crate) const BROWSER_NODE: &str = "browser";
/// Minutes of per-minute history kept for the charts.
const HISTORY_MINUTES: usize = 60;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct SeriesKey {
    model: String,
    version: u64,
    runtime: String,
    node: String,
}

/// One minute of one series.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Minute {
    pub minute: DateTime<Utc>,
    pub ok: u64,
    pub error: u64,
    /// p95 latency of the minute's calls (seconds), from the histogram; None without calls.
    pub p95: Option<f64>,
    /// The last drift ratio reported in the minute.
    pub drift_ratio: Option<f64>,
    #[serde(skip)]
    latency: Vec<u64>,
}

#[derive(Debug, Clone, Default)]
struct Series {
    ok: u64,
    error: u64,
    invalid: u64,
    latency: LatencyHistogram,
    drift_ratio: Option<f64>,
    /// Feature -> (psi, drifted).
    features: BTreeMap<String, (f64, bool)>,
    minutes: VecDeque<Minute>,
}

/// Percentiles of a series' latency (seconds).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FeatureSummary {
    pub name: String,
    pub psi: f64,
    pub drifted: bool,
}

/// One series in `/api/v1/telemetry/summary`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SeriesSummary {
    pub model: String,
    pub version: u64,
    pub runtime: String,
    pub node: String,
    pub ok: u64,
    pub error: u64,
    pub invalid: u64,
    pub latency_seconds: Percentiles,
    pub drift_ratio: Option<f64>,
    pub features: Vec<FeatureSummary>,
    pub series: Vec<Minute>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TelemetrySummary {
    pub models: Vec<SeriesSummary>,
}

/// HTTP requests by method, matched route and status.
type HttpKey = (String, String, u16);

/// Everything `/metrics` and the summary read, behind one lock (updates are a few additions).
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<State>,
    /// Models whose browser series are exported with `trust="opted-in"` (else `"advisory"`).
    trusted_browser_models: std::collections::BTreeSet<String>,
}

#[derive(Debug, Default)]
struct State {
    series: BTreeMap<SeriesKey, Series>,
    http: BTreeMap<HttpKey, u64>,
    telemetry_batches: BTreeMap<(String, &'static str), u64>,
    /// Model -> why its production version is not served (from the last refresh).
    unavailable: BTreeMap<String, &'static str>,
}

impl Metrics {
    pub(crate) fn new(trusted_browser_models: std::collections::BTreeSet<String>) -> Metrics {
        Metrics {
            inner: Mutex::default(),
            trusted_browser_models,
        }
    }

    /// The `trust` label of a series: browsers' figures are advisory unless the model was opted
    /// in; the server's own have none (alert rules select `trust!="advisory"`).
    fn trust(&self, k: &SeriesKey) -> &'static str {
        match (k.runtime == "browser", self.trusted_browser_models.contains(&k.model)) {
            (false, _) => "",
            (true, true) => ",trust=\"opted-in\"",
            (true, false) => ",trust=\"advisory\"",
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// One HTTP request, by the route it matched (`/api/v1/models/{name}`), never the raw path.
    pub(crate) fn http(&self, method: &str, route: &str, status: u16) {
        self.with(|s| *s.http.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1);
    }

    /// A telemetry batch from `source` (`edge` or `browser`): `accepted`, `duplicate` or `rejected`.
    pub(crate) fn batch(&self, source: &str, outcome: &'static str) {
        self.with(|s| *s.telemetry_batches.entry((source.to_owned(), outcome)).or_default() += 1);
    }

    /// The models whose production version cannot be served, and why.
    pub(crate) fn unavailable(&self, models: BTreeMap<String, &'static str>) {
        self.with(|s| s.unavailable = models);
    }

    /// A server-side inference call.
    pub(crate) fn observe(&self, model: &str, version: u64, outcome: &str, seconds: Option<f64>) {
        let key = SeriesKey {
            model: model.to_owned(),
            version,
            runtime: edge_runtime::RUNTIME_LABEL.to_owned(),
            node: SERVER_NODE.to_owned(),
        };
        let now = Utc::now();
        self.with(|s| {
            let series = s.series.entry(key).or_default();
            match outcome {
                "ok" => {
                    series.ok += 1;
                    if let Some(seconds) = seconds {
                        series.latency.observe(seconds);
                    }
                    let minute = series.minute(now);
                    minute.ok += 1;
                    if let Some(seconds) = seconds {
                        minute.latency[bucket_of(seconds)] += 1;
                    }
                }
                "invalid" => series.invalid += 1,
                _ => {
                    series.error += 1;
                    series.minute(now).error += 1;
                }
            }
        });
    }

    /// Adds a checked report posted by `node` (browsers: all counted as [`BROWSER_NODE`]).
    pub(crate) fn ingest(&self, node: &str, report: &TelemetryReport) {
        let node = if report.runtime == "browser" {
            BROWSER_NODE
        } else {
            node
        };
        let key = SeriesKey {
            model: report.model.clone(),
            version: report.version,
            runtime: report.runtime.clone(),
            node: node.to_owned(),
        };
        let now = Utc::now();
        // Reports were checked (counts consistent), but their values are the client's: every
        // addition saturates rather than overflow.
        self.with(|s| {
            let series = s.series.entry(key).or_default();
            series.ok = series.ok.saturating_add(report.predictions.ok);
            series.error = series.error.saturating_add(report.predictions.error);
            let h = &report.latency_seconds;
            for (total, c) in series.latency.counts.iter_mut().zip(&h.counts) {
                *total = total.saturating_add(*c);
            }
            series.latency.sum += h.sum;
            series.latency.count = series.latency.count.saturating_add(h.count);
            if report.drift.features.iter().any(|f| f.observed > 0) {
                series.drift_ratio = Some(report.drift.drifted_ratio);
                for f in &report.drift.features {
                    series.features.insert(f.name.clone(), (f.psi, f.drifted));
                }
            }
            let drift = series.drift_ratio;
            let minute = series.minute(now);
            minute.ok = minute.ok.saturating_add(report.predictions.ok);
            minute.error = minute.error.saturating_add(report.predictions.error);
            for (total, c) in minute.latency.iter_mut().zip(&h.counts) {
                *total = total.saturating_add(*c);
            }
            minute.drift_ratio = drift;
        });
    }

    pub(crate) fn summary(&self, model: Option<&str>) -> TelemetrySummary {
        self.with(|s| TelemetrySummary {
            models: s
                .series
                .iter()
                .filter(|(k, _)| model.is_none_or(|m| k.model == m))
                .map(|(k, v)| SeriesSummary {
                    model: k.model.clone(),
                    version: k.version,
                    runtime: k.runtime.clone(),
                    node: k.node.clone(),
                    ok: v.ok,
                    error: v.error,
                    invalid: v.invalid,
                    latency_seconds: Percentiles {
                        p50: quantile(&v.latency.counts, 0.5),
                        p95: quantile(&v.latency.counts, 0.95),
                        p99: quantile(&v.latency.counts, 0.99),
                    },
                    drift_ratio: v.drift_ratio,
                    features: v
                        .features
                        .iter()
                        .map(|(name, (psi, drifted))| FeatureSummary {
                            name: name.clone(),
                            psi: *psi,
                            drifted: *drifted,
                        })
                        .collect(),
                    series: v
                        .minutes
                        .iter()
                        .map(|m| Minute {
                            p95: quantile(&m.latency, 0.95),
                            ..m.clone()
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        self.with(|s| {
            let mut out = String::new();
            let exported: Vec<(&SeriesKey, &Series)> = s
                .series
                .iter()
                .filter(|(k, _)| k.node == SERVER_NODE || k.runtime == "browser")
                .collect();
            let labels = |k: &SeriesKey| {
                format!(
                    "model=\"{}\",version=\"{}\",runtime=\"{}\",node=\"{}\"{}",
                    escape(&k.model),
                    k.version,
                    escape(&k.runtime),
                    escape(&k.node),
                    self.trust(k)
                )
            };
            out.push_str("# HELP wasmline_inference_duration_seconds Time inside the model per predict call.\n");
            out.push_str("# TYPE wasmline_inference_duration_seconds histogram\n");
            for (k, v) in &exported {
                let l = labels(k);
                let mut cumulative = 0;
                for (le, c) in LATENCY_BUCKETS_SECONDS.iter().zip(&v.latency.counts) {
                    cumulative += c;
                    let _ = writeln!(
                        out,
                        "wasmline_inference_duration_seconds_bucket{{{l},le=\"{le}\"}} {cumulative}"
                    );
                }
                let _ = writeln!(
                    out,
                    "wasmline_inference_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}",
                    v.latency.count
                );
                let _ = writeln!(out, "wasmline_inference_duration_seconds_sum{{{l}}} {}", v.latency.sum);
                let _ = writeln!(
                    out,
                    "wasmline_inference_duration_seconds_count{{{l}}} {}",
                    v.latency.count
                );
            }
            out.push_str("# HELP wasmline_inference_requests_total Predict requests by outcome.\n");
            out.push_str("# TYPE wasmline_inference_requests_total counter\n");
            for (k, v) in &exported {
                let l = labels(k);
                for (outcome, n) in [("ok", v.ok), ("error", v.error), ("invalid", v.invalid)] {
                    let _ = writeln!(
                        out,
                        "wasmline_inference_requests_total{{{l},outcome=\"{outcome}\"}} {n}"
                    );
                }
            }
            let drift_labels = |k: &SeriesKey| {
                format!(
                    "model=\"{}\",version=\"{}\",node=\"{}\"{}",
                    escape(&k.model),
                    k.version,
                    escape(&k.node),
                    self.trust(k)
                )
            };
            out.push_str("# HELP wasmline_data_drift_ratio Share of features whose PSI is at or over the threshold.\n");
            out.push_str("# TYPE wasmline_data_drift_ratio gauge\n");
            for (k, v) in &exported {
                if let Some(r) = v.drift_ratio {
                    let _ = writeln!(out, "wasmline_data_drift_ratio{{{}}} {r}", drift_labels(k));
                }
            }
            out.push_str("# HELP wasmline_feature_psi PSI of the recent window against the reference profile.\n");
            out.push_str("# TYPE wasmline_feature_psi gauge\n");
            for (k, v) in &exported {
                for (feature, (psi, _)) in &v.features {
                    let _ = writeln!(
                        out,
                        "wasmline_feature_psi{{{},feature=\"{}\"}} {psi}",
                        drift_labels(k),
                        escape(feature)
                    );
                }
            }
            out.push_str(
                "# HELP wasmline_model_unavailable Models whose production version the server cannot serve, by reason.\n",
            );
            out.push_str("# TYPE wasmline_model_unavailable gauge\n");
            for (model, reason) in &s.unavailable {
                let _ = writeln!(
                    out,
                    "wasmline_model_unavailable{{model=\"{}\",reason=\"{reason}\"}} 1",
                    escape(model)
                );
            }
            out.push_str(
                "# HELP wasmline_telemetry_batches_total Telemetry batches received, by source and outcome.\n",
            );
            out.push_str("# TYPE wasmline_telemetry_batches_total counter\n");
            for ((source, outcome), n) in &s.telemetry_batches {
                let _ = writeln!(
                    out,
                    "wasmline_telemetry_batches_total{{source=\"{source}\",outcome=\"{outcome}\"}} {n}"
                );
            }
            out.push_str("# HELP wasmline_http_requests_total HTTP requests by method, matched route and status.\n");
            out.push_str("# TYPE wasmline_http_requests_total counter\n");
            for ((method, route, status), n) in &s.http {
                let _ = writeln!(
                    out,
                    "wasmline_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
            out
        })
    }
}

impl Series {
    /// The slice of the current minute (older than an hour dropped).
    fn minute(&mut self, now: DateTime<Utc>) -> &mut Minute {
        let start = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
        if self.minutes.back().is_none_or(|m| m.minute != start) {
            self.minutes.push_back(Minute {
                minute: start,
                ok: 0,
                error: 0,
                p95: None,
                drift_ratio: self.drift_ratio,
                latency: vec![0; LATENCY_BUCKETS_SECONDS.len() + 1],
            });
            while self.minutes.len() > HISTORY_MINUTES {
                self.minutes.pop_front();
            }
        }
        self.minutes.back_mut().expect("pushed")
    }
}

fn bucket_of(seconds: f64) -> usize {
    LATENCY_BUCKETS_SECONDS
        .iter()
        .position(|le| seconds <= *le)
        .unwrap_or(LATENCY_BUCKETS_SECONDS.len())
}

/// The `q` quantile of bucket counts, interpolated linearly inside the bucket (as Prometheus's
/// `histogram_quantile`); the last (open) bucket answers its lower bound.
fn quantile(counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut seen = 0u64;
    for (i, c) in counts.iter().enumerate() {
        if *c > 0 && (seen + c) as f64 >= rank {
            let lower = if i == 0 { 0.0 } else { LATENCY_BUCKETS_SECONDS[i - 1] };
            let Some(upper) = LATENCY_BUCKETS_SECONDS.get(i) else {
                return Some(lower);
            };
            return Some(lower + (upper - lower) * ((rank - seen as f64) / *c as f64));
        }
        seen += c;
    }
    LATENCY_BUCKETS_SECONDS.last().copied()
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_inside_buckets() {
        let mut counts = vec![0; LATENCY_BUCKETS_SECONDS.len() + 1];
        assert_eq!(quantile(&counts, 0.5), None);
        // 100 calls between 50 and 100 us.
        counts[2] = 100;
        let p50 = quantile(&counts, 0.5).unwrap();
        assert!((p50 - 0.000_075).abs() < 1e-12, "{p50}");
        counts[LATENCY_BUCKETS_SECONDS.len()] = 100;
        assert_eq!(
            quantile(&counts, 0.99),
            Some(2.5),
            "the open bucket answers its lower bound"
        );
    }
}
