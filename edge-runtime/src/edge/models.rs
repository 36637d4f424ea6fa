//! The edge's loaded models: per model the served version and the previous one, swapped
//! atomically, and per version what telemetry needs (counts since the last batch, latency, and a
//! sliding window of recent rows for drift).
//!
//! [`EdgeModels`] is the [`ModelSet`] the edge's `/v2` routes run over. A swap replaces an
//! `Arc` under a short write lock: requests that already hold the old version finish on it,
//! requests after the swap get the new one, none fails in between.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use model_wasm::telemetry::{DriftMonitor, DriftSnapshot, LatencyHistogram, PredictionCounts, TelemetryReport};
use prometheus::{Histogram, IntCounter};

use edge_runtime::kserve::{ModelSet, Outcome};
use edge_runtime::{RUNTIME_LABEL, ServedModel};

use super::metrics::EdgeMetrics;

/// The served and the previous version of one model.
#[derive(Debug, Clone, Default)]
struct Slot {
    current: Option<Arc<ServedModel>>,
    previous: Option<Arc<ServedModel>>,
}

/// What one version accumulated, and its metric handles (looked up once, not per request).
#[derive(Debug)]
struct VersionStats {
    model: Arc<ServedModel>,
    counts: PredictionCounts,
    latency: LatencyHistogram,
    /// The rows of the drift window, concatenated, oldest first.
    window: VecDeque<f64>,
    /// When each request's rows entered `window`, and how many of its values are still there.
    arrivals: VecDeque<(Instant, usize)>,
    ok: IntCounter,
    invalid: IntCounter,
    error: IntCounter,
    duration: Histogram,
}

impl VersionStats {
    fn new(model: Arc<ServedModel>, metrics: &EdgeMetrics) -> Self {
        let version = model.version().to_string();
        let requests = |outcome: &str| {
            metrics.inference_requests.with_label_values(&[
                model.name(),
                &version,
                RUNTIME_LABEL,
                &metrics.node,
                outcome,
            ])
        };
        Self {
            ok: requests("ok"),
            invalid: requests("invalid"),
            error: requests("error"),
            duration: metrics.inference_duration.with_label_values(&[
                model.name(),
                &version,
                RUNTIME_LABEL,
                &metrics.node,
            ]),
            model,
            counts: PredictionCounts::default(),
            latency: LatencyHistogram::default(),
            window: VecDeque::new(),
            arrivals: VecDeque::new(),
        }
    }

    /// Adds a request's rows to the window, then trims it.
    fn push_rows(&mut self, rows: &[f64], window: &DriftWindowSpec, now: Instant) {
        let capacity = window.values(self.model.manifest().features.len());
        let keep = &rows[rows.len().saturating_sub(capacity)..];
        if !keep.is_empty() {
            self.window.extend(keep.iter().copied());
            self.arrivals.push_back((now, keep.len()));
        }
        self.trim(window, now);
    }

    /// Drops the rows that arrived more than the window's age ago, then the oldest values past
    /// its capacity.
    fn trim(&mut self, window: &DriftWindowSpec, now: Instant) {
        if let Some(cutoff) = window.max_age.and_then(|age| now.checked_sub(age)) {
            while let Some(&(at, len)) = self.arrivals.front()
                && at < cutoff
            {
                self.arrivals.pop_front();
                self.window.drain(..len);
            }
        }
        let capacity = window.values(self.model.manifest().features.len());
        let mut excess = self.window.len().saturating_sub(capacity);
        self.window.drain(..excess);
        while excess > 0
            && let Some(front) = self.arrivals.front_mut()
        {
            if front.1 <= excess {
                excess -= front.1;
                self.arrivals.pop_front();
            } else {
                front.1 -= excess;
                excess = 0;
            }
        }
    }

    /// The drift of the window as it is at `now`.
    fn drift(&mut self, window: &DriftWindowSpec, threshold: f64, now: Instant) -> DriftSnapshot {
        self.trim(window, now);
        let manifest = self.model.manifest();
        let mut monitor = DriftMonitor::with_threshold(manifest, threshold);
        monitor.observe_rows(self.window.make_contiguous(), manifest.features.len());
        monitor.snapshot()
    }
}

/// Which recent rows drift is computed over: the last `rows` rows, and (when set) only those
/// that arrived within `max_age`. With `rows` 0 no row is kept: drift is not tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriftWindowSpec {
    pub rows: usize,
    pub max_age: Option<Duration>,
}

impl DriftWindowSpec {
    /// The last `rows` rows, however old.
    pub fn rows(rows: usize) -> DriftWindowSpec {
        DriftWindowSpec { rows, max_age: None }
    }

    /// Values the window holds at most, for rows of `n_features`.
    fn values(&self, n_features: usize) -> usize {
        self.rows * n_features.max(1)
    }
}

/// The models one edge serves (a fixed list of names), their versions and statistics.
#[derive(Debug)]
pub struct EdgeModels {
    names: Vec<String>,
    slots: RwLock<HashMap<String, Slot>>,
    /// Per model name, per version.
    stats: Mutex<HashMap<String, HashMap<u64, VersionStats>>>,
    metrics: Arc<EdgeMetrics>,
    drift_window: DriftWindowSpec,
    drift_threshold: f64,
}

impl EdgeModels {
    /// An edge that will serve `names`; none is loaded yet. Drift is computed over the last
    /// `drift_window` rows of each version (0: not at all).
    pub fn new(names: Vec<String>, metrics: Arc<EdgeMetrics>, drift_window: usize) -> EdgeModels {
        EdgeModels {
            slots: RwLock::new(names.iter().map(|n| (n.clone(), Slot::default())).collect()),
            names,
            stats: Mutex::new(HashMap::new()),
            metrics,
            drift_window: DriftWindowSpec::rows(drift_window),
            drift_threshold: model_wasm::PSI_DRIFT_THRESHOLD,
        }
    }

    /// A feature drifts when its PSI reaches `threshold` (default [`model_wasm::PSI_DRIFT_THRESHOLD`]).
    pub fn with_drift_threshold(mut self, threshold: f64) -> EdgeModels {
        self.drift_threshold = threshold;
        self
    }

    /// Drift is computed over the rows of the last `max_age` only (and at most the last
    /// `drift_window` of them): a window in time rather than in count. When a version's window
    /// empties, its drift gauges are removed (no recent rows, no drift to state).
    pub fn with_drift_max_age(mut self, max_age: Duration) -> EdgeModels {
        self.drift_window.max_age = Some(max_age);
        self
    }

    pub fn metrics(&self) -> &Arc<EdgeMetrics> {
        &self.metrics
    }

    /// Serves `model` from now on; the version it replaces becomes the previous one (kept
    /// loaded for `/versions/{v}/` and an instant switch back). Installing the previous
    /// version again swaps the two.
    pub fn install(&self, model: Arc<ServedModel>) {
        let name = model.name().to_owned();
        let (old, dropped) = {
            let mut slots = self.slots.write().unwrap_or_else(PoisonError::into_inner);
            let slot = slots.entry(name.clone()).or_default();
            let old = slot.current.replace(model.clone());
            let dropped = match &old {
                Some(old) if old.version() != model.version() => slot.previous.replace(old.clone()),
                _ => None,
            };
            if slot.previous.as_ref().is_some_and(|p| p.version() == model.version()) {
                slot.previous = None;
            }
            (old, dropped.filter(|d| d.version() != model.version()))
        };
        let node = self.metrics.node.as_str();
        if let Some(old) = &old {
            let version = old.version().to_string();
            let _ = self
                .metrics
                .model_info
                .remove_label_values(&[&name, &version, node, old.sha256()]);
        }
        if old.as_ref().is_none_or(|o| o.version() != model.version()) {
            self.metrics.model_swaps.with_label_values(&[&name]).inc();
        }
        self.metrics
            .model_info
            .with_label_values(&[&name, &model.version().to_string(), node, model.sha256()])
            .set(1);
        if let Some(dropped) = dropped {
            tracing::debug!(model = %name, version = dropped.version(), "unloaded");
        }
    }

    /// The served version of `name`.
    pub fn current_version(&self, name: &str) -> Option<u64> {
        self.current(name).map(|m| m.version())
    }

    /// The previous version of `name`, if still loaded.
    pub fn previous(&self, name: &str) -> Option<Arc<ServedModel>> {
        let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
        slots.get(name).and_then(|s| s.previous.clone())
    }

    /// Sets the drift gauges from each served version's window (called before a scrape).
    pub fn refresh_drift_gauges(&self) {
        let node = self.metrics.node.clone();
        let now = Instant::now();
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, versions) in stats.iter_mut() {
            for (version, stats) in versions.iter_mut() {
                let version = version.to_string();
                if stats.window.is_empty() {
                    continue;
                }
                let snapshot = stats.drift(&self.drift_window, self.drift_threshold, now);
                if stats.window.is_empty() {
                    // Every row aged out: the gauges go until new rows come.
                    let _ = self.metrics.drift_ratio.remove_label_values(&[name, &version, &node]);
                    for feature in &snapshot.features {
                        let _ = self
                            .metrics
                            .feature_psi
                            .remove_label_values(&[name, &version, &node, &feature.name]);
                    }
                    continue;
                }
                self.metrics
                    .drift_ratio
                    .with_label_values(&[name, &version, &node])
                    .set(snapshot.drifted_ratio);
                for feature in &snapshot.features {
                    self.metrics
                        .feature_psi
                        .with_label_values(&[name, &version, &node, &feature.name])
                        .set(feature.psi);
                }
            }
        }
    }

    /// One report per version that was called since the last call, with its counts (which
    /// start again from zero) and the drift of its current window. Versions no longer loaded
    /// are forgotten once reported.
    pub fn take_reports(&self) -> Vec<TelemetryReport> {
        let loaded: Vec<(String, u64)> = {
            let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
            slots
                .iter()
                .flat_map(|(name, slot)| {
                    [&slot.current, &slot.previous]
                        .into_iter()
                        .flatten()
                        .map(|m| (name.clone(), m.version()))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let now = Instant::now();
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        let mut reports = Vec::new();
        for (name, versions) in stats.iter_mut() {
            for (version, s) in versions.iter_mut() {
                if s.counts.ok + s.counts.error == 0 {
                    continue;
                }
                reports.push(TelemetryReport {
                    model: name.clone(),
                    version: *version,
                    runtime: RUNTIME_LABEL.to_owned(),
                    predictions: std::mem::take(&mut s.counts),
                    latency_seconds: std::mem::take(&mut s.latency),
                    drift: s.drift(&self.drift_window, self.drift_threshold, now),
                });
            }
            versions.retain(|version, s| {
                loaded.iter().any(|(n, v)| n == name && v == version) || s.counts.ok + s.counts.error > 0
            });
        }
        stats.retain(|_, versions| !versions.is_empty());
        reports.sort_by(|a, b| (&a.model, a.version).cmp(&(&b.model, b.version)));
        reports
    }

    /// Puts reports that could not be written back into the counts (so nothing is lost).
    pub fn restore_reports(&self, reports: Vec<TelemetryReport>) {
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        for report in reports {
            if let Some(s) = stats.get_mut(&report.model).and_then(|v| v.get_mut(&report.version)) {
                s.counts.ok += report.predictions.ok;
                s.counts.error += report.predictions.error;
                s.counts.rows += report.predictions.rows;
                for (mine, theirs) in s.latency.counts.iter_mut().zip(&report.latency_seconds.counts) {
                    *mine += theirs;
                }
                s.latency.count += report.latency_seconds.count;
                s.latency.sum += report.latency_seconds.sum;
            }
        }
    }
}

impl ModelSet for EdgeModels {
    fn server_name(&self) -> String {
        "wasmline-edge".to_owned()
    }

    fn model_names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn current(&self, name: &str) -> Option<Arc<ServedModel>> {
        let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
        slots.get(name).and_then(|s| s.current.clone())
    }

    fn versions(&self, name: &str) -> Vec<Arc<ServedModel>> {
        let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
        slots
            .get(name)
            .map(|s| [s.current.clone(), s.previous.clone()].into_iter().flatten().collect())
            .unwrap_or_default()
    }

    fn observe(&self, model: &ServedModel, outcome: &Outcome<'_>) {
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        if !stats.contains_key(model.name()) {
            stats.insert(model.name().to_owned(), HashMap::new());
        }
        let versions = stats.get_mut(model.name()).expect("inserted above");
        let s = match versions.entry(model.version()) {
            Entry::Occupied(s) => s.into_mut(),
            Entry::Vacant(vacant) => {
                let loaded = self
                    .versions(model.name())
                    .into_iter()
                    .find(|m| m.version() == model.version());
                let Some(loaded) = loaded else {
                    // Unloaded while the request ran: count it in Prometheus only.
                    let version = model.version().to_string();
                    self.metrics
                        .inference_requests
                        .with_label_values(&[
                            model.name(),
                            &version,
                            RUNTIME_LABEL,
                            &self.metrics.node,
                            outcome.label(),
                        ])
                        .inc();
                    return;
                };
                vacant.insert(VersionStats::new(loaded, &self.metrics))
            }
        };
        match outcome {
            Outcome::Ok { rows, seconds } => {
                s.ok.inc();
                s.duration.observe(*seconds);
                s.counts.ok += 1;
                let n_features = model.manifest().features.len().max(1);
                s.counts.rows += (rows.len() / n_features) as u64;
                s.latency.observe(*seconds);
                s.push_rows(rows, &self.drift_window, Instant::now());
            }
            Outcome::Invalid => {
                s.invalid.inc();
                s.counts.error += 1;
            }
            Outcome::Error => {
                s.error.inc();
                s.counts.error += 1;
            }
        }
    }
}
