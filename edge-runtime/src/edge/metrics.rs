//! The edge's Prometheus metrics, in one registry rendered by `GET /metrics`.
//!
//! Inference (the names of `docs/DESIGN.md`, shared with the control plane's exports):
//! - `wasmline_inference_duration_seconds` histogram {model, version, runtime, node}, buckets
//!   [`LATENCY_BUCKETS_SECONDS`]: time inside the module per successful request;
//! - `wasmline_inference_requests_total` counter {model, version, runtime, node, outcome}
//!   (outcome `ok`, `invalid`, `error`);
//! - `wasmline_data_drift_ratio` gauge {model, version, node} and `wasmline_feature_psi` gauge
//!   {model, version, node, feature}: over the last `--drift-window` rows;
//! - `wasmline_model_info` gauge {model, version, node, sha256} = 1 for the served version.
//!
//! Edge health: `wasmline_edge_sync_failures_total` {model}, `wasmline_edge_model_refused_total`
//! {model} (versions refused for good), `wasmline_edge_load_failures_total` {model, kind} (every
//! failed attempt to load a version: `permanent`, refused for good, or `transient`, tried again),
//! `wasmline_edge_load_retry_timestamp_seconds` {model} (when a version that failed for a
//! transient reason is tried next; absent when none waits), `wasmline_edge_model_swaps_total`
//! {model}, `wasmline_edge_telemetry_pending_batches`,
//! `wasmline_edge_telemetry_delivered_total`, `wasmline_edge_telemetry_rejected_total`,
//! `wasmline_edge_telemetry_dropped_total`, and `wasmline_http_requests_total` {method, path,
//! status} labelled by the matched route, never the raw URI.

use model_wasm::telemetry::LATENCY_BUCKETS_SECONDS;
use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Every metric the edge exports, registered once.
#[derive(Debug, Clone)]
pub struct EdgeMetrics {
    registry: Registry,
    /// The `node` label.
    pub node: String,
    pub inference_duration: HistogramVec,
    pub inference_requests: IntCounterVec,
    pub drift_ratio: GaugeVec,
    pub feature_psi: GaugeVec,
    pub model_info: IntGaugeVec,
    pub sync_failures: IntCounterVec,
    pub model_refused: IntCounterVec,
    pub load_failures: IntCounterVec,
    pub load_retry_at: GaugeVec,
    pub model_swaps: IntCounterVec,
    pub telemetry_pending: IntGauge,
    pub telemetry_delivered: IntCounter,
    pub telemetry_rejected: IntCounter,
    pub telemetry_dropped: IntCounter,
    pub http_requests: IntCounterVec,
}

impl EdgeMetrics {
    pub fn new(node: &str) -> EdgeMetrics {
        let registry = Registry::new();
        fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
            registry.register(Box::new(c.clone())).expect("metric names are unique");
            c
        }
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            register(
                &registry,
                GaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        EdgeMetrics {
            node: node.to_owned(),
            inference_duration: register(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "wasmline_inference_duration_seconds",
                        "Time inside the model module per successful inference request.",
                    )
                    .buckets(LATENCY_BUCKETS_SECONDS.to_vec()),
                    &["model", "version", "runtime", "node"],
                )
                .expect("valid metric"),
            ),
            inference_requests: counter(
                "wasmline_inference_requests_total",
                "Inference requests by outcome (ok, invalid, error).",
                &["model", "version", "runtime", "node", "outcome"],
            ),
            drift_ratio: gauge(
                "wasmline_data_drift_ratio",
                "Share of features whose PSI against the reference profile exceeds 0.2 over the recent window.",
                &["model", "version", "node"],
            ),
            feature_psi: gauge(
                "wasmline_feature_psi",
                "PSI of each feature over the recent window against the reference profile.",
                &["model", "version", "node", "feature"],
            ),
            model_info: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new("wasmline_model_info", "1 for the model version this node serves."),
                    &["model", "version", "node", "sha256"],
                )
                .expect("valid metric"),
            ),
            sync_failures: counter(
                "wasmline_edge_sync_failures_total",
                "Failed attempts to reach the control plane while syncing a model.",
                &["model"],
            ),
            model_refused: counter(
                "wasmline_edge_model_refused_total",
                "Model versions refused for good (signature, digest, manifest, module ABI or shape, smoke prediction).",
                &["model"],
            ),
            load_failures: counter(
                "wasmline_edge_load_failures_total",
                "Failed attempts to load a model version, by kind: permanent (refused for good) or transient (fetch \
                 error, no free instance, a call past its deadline; tried again after a backoff).",
                &["model", "kind"],
            ),
            load_retry_at: gauge(
                "wasmline_edge_load_retry_timestamp_seconds",
                "Unix time of the next attempt to load a version whose last attempt failed for a transient reason.",
                &["model"],
            ),
            model_swaps: counter(
                "wasmline_edge_model_swaps_total",
                "Times the served version of a model changed.",
                &["model"],
            ),
            telemetry_pending: register(
                &registry,
                IntGauge::new(
                    "wasmline_edge_telemetry_pending_batches",
                    "Telemetry batches on disk waiting for delivery.",
                )
                .expect("valid metric"),
            ),
            telemetry_delivered: register(
                &registry,
                IntCounter::new(
                    "wasmline_edge_telemetry_delivered_total",
                    "Telemetry batches the control plane accepted.",
                )
                .expect("valid metric"),
            ),
            telemetry_rejected: register(
                &registry,
                IntCounter::new(
                    "wasmline_edge_telemetry_rejected_total",
                    "Telemetry batches the control plane refused for good (moved to rejected/).",
                )
                .expect("valid metric"),
            ),
            telemetry_dropped: register(
                &registry,
                IntCounter::new(
                    "wasmline_edge_telemetry_dropped_total",
                    "Telemetry batches dropped because too many were pending.",
                )
                .expect("valid metric"),
            ),
            http_requests: counter(
                "wasmline_http_requests_total",
                "HTTP requests by method, matched route and status.",
                &["method", "path", "status"],
            ),
            registry,
        }
    }

    /// The registry in Prometheus' text format.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# error encoding metrics: {e}\n"))
    }
}
